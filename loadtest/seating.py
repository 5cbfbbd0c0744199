"""Venues and scratch events for benchmarks: the create-event body, the
event built in-process the way the server builds it, blocks of seats to
hold, and live state in Redis for events no server watches."""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis

from server.catalog import Event, event_from_request
from server.keys import event_keys
from server.live import LiveState
from server.protocol import create_event_decoder, encoder
from server.scripts import Scripts
from server.venues import fan_venue


def venue(seats: int, event_id: str) -> dict[str, Any]:
    return fan_venue(seats, event_id=event_id, name=f"loadtest {event_id}")


def event_of(body: dict[str, Any]) -> Event:
    """The event the server would build from this create-event body."""
    return event_from_request(create_event_decoder.decode(encoder.encode(body)))


def blocks_of(seat_ids: list[str], size: int = 4) -> list[list[str]]:
    """Consecutive groups of `size` seats in layout order (mostly side by side in one row)."""
    return [seat_ids[i : i + size] for i in range(0, len(seat_ids) - size + 1, size)]


def blocks_for_task(blocks: list[list[str]], task: int, tasks: int, per_task: int) -> list[list[str]]:
    """The blocks task `task` of `tasks` cycles through: disjoint from every other task's."""
    mine = blocks[task::tasks][:per_task]
    if not mine:
        raise ValueError(f"the venue has {len(blocks)} blocks of seats, too few for {tasks} tasks")
    return mine


async def create_scratch_event(redis_url: str, body: dict[str, Any]) -> Event:
    """Live state in Redis for an event that only a benchmark's own clients touch."""
    event = event_of(body)
    redis = Redis.from_url(redis_url, decode_responses=True)
    try:
        scripts = Scripts(redis)
        await scripts.register()
        await LiveState(scripts).create(event)
    finally:
        await redis.aclose()
    return event


async def drop_events(redis_url: str, event_ids: list[str]) -> None:
    """Delete the live state of events a benchmark made (its own ids only)."""
    if not event_ids:
        return
    redis = Redis.from_url(redis_url, decode_responses=True)
    try:
        for event_id in event_ids:
            await redis.delete(*event_keys(event_id).all())
    finally:
        await redis.aclose()
