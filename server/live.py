"""Live seat state of an event in Redis: creating it, reading it whole, and
rebuilding it from Postgres after Redis lost it.

Owns the epoch: a fresh random epoch marks every (re)creation, so a client
holding versions of an older epoch knows its history is gone. Rebuilding
restores what Postgres records (seats reserved for a checkout or booked);
holds are ephemeral and are not restored.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from .catalog import Event
from .keys import event_keys
from .layout import live_layout
from .scripts import Scripts

log = logging.getLogger("seatmap.live")

# seat -> owner ("r<order>"/"b<order>") and buyer -> seats owned, from Postgres.
OwnedSeats = tuple[list[tuple[str, str]], dict[str, int]]
OwnedLoader = Callable[[str], Awaitable[OwnedSeats]]


async def _nothing_owned(event_id: str) -> OwnedSeats:
    return [], {}


@dataclass(frozen=True, slots=True)
class LiveSnapshot:
    epoch: str
    version: int
    taken: dict[str, str]  # seat id -> "held" | "booked"; absent seats are available


class LiveState:
    def __init__(self, scripts: Scripts, owned_loader: OwnedLoader = _nothing_owned) -> None:
        self.scripts = scripts
        self.owned_loader = owned_loader
        self._locks: dict[str, asyncio.Lock] = {}

    async def create(self, event: Event, owned: OwnedSeats = ([], {})) -> str:
        """Give the event live state unless it has some; returns the epoch in force."""
        layout = live_layout(event.geometry(), event.focal)
        owners, counts = owned
        args: list[object] = [secrets.token_hex(4), len(layout.rows), layout.meta, *layout.rows, len(owners)]
        for seat, owner in owners:
            args += [seat, owner]
        for buyer, count in counts.items():
            args += [buyer, count]
        status, epoch = await self.scripts.call("init_event", event_keys(event.id).all(), args)
        if status == "created" and (owners or counts):
            log.warning(
                "rebuilt live state of %s from Postgres: %d owned seats, epoch %s",
                event.id,
                len(owners),
                epoch,
            )
        return epoch

    async def rebuild(self, event: Event) -> None:
        """Recreate lost live state from Postgres. Safe to race: creation only
        happens if the state is still absent, and callers in this process queue."""
        async with self._locks.setdefault(event.id, asyncio.Lock()):
            await self.create(event, await self.owned_loader(event.id))

    async def snapshot(self, event_id: str) -> LiveSnapshot | None:
        keys = event_keys(event_id)
        reply = await self.scripts.call("snapshot", (keys.state, keys.seats), [])
        if not reply:
            return None
        epoch, version, *pairs = reply
        return LiveSnapshot(epoch, int(version), dict(zip(pairs[::2], pairs[1::2], strict=True)))
