"""Graceful shutdown and restarts: SIGTERM closes websockets with 1012 and
exits cleanly, and clients resume from their version afterwards; restarting
the workers of a multi-worker server (SIGHUP) loses no client's place."""

from __future__ import annotations

import asyncio
import json
import signal

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from server.venues import grid_venue
from tests.support import MapFollower, ServerProcess, receive_json, unique_id

pytestmark = pytest.mark.slow


async def follow_until_closed(ws, follower: MapFollower) -> int:
    try:
        while True:
            follower.apply(await receive_json(ws, timeout=30))
    except ConnectionClosed as closed:
        assert closed.rcvd is not None
        return closed.rcvd.code


async def resume(url: str, event_id: str, follower: MapFollower) -> list[str]:
    """Reconnect with epoch+since; returns the frame types received until current."""
    kinds = []
    async with connect(f"{url}/ws/events/{event_id}?epoch={follower.epoch}&since={follower.version}") as ws:
        while True:
            frame = await receive_json(ws, timeout=30)
            kinds.append(frame["type"])
            follower.apply(frame)
            if frame["type"] in ("resumed", "snapshot"):
                return kinds


async def test_sigterm_closes_sockets_with_1012_and_clients_resume(server_settings):
    process = ServerProcess(server_settings())
    await process.start()
    client = process.client()
    event_id = await client.create_event(grid_venue(1, 6, event_id=unique_id()))
    _, token = await client.buyer()
    follower = MapFollower()
    ws = await connect(f"{process.ws_url}/ws/events/{event_id}")
    follower.apply(await receive_json(ws))
    async with client.http(token) as http:
        assert (await http.post(f"/api/events/{event_id}/holds", json={"seats": ["A-1"]})).status_code == 201
    watching = asyncio.create_task(follow_until_closed(ws, follower))
    await asyncio.sleep(0.3)
    assert await process.stop(signal.SIGTERM) == 0  # drained and exited cleanly
    assert await watching == 1012  # "service restart": resume elsewhere
    assert follower.version == 1

    await process.start()  # the same port, Redis and Postgres
    try:
        async with client.http(token) as http:
            assert (await http.post(f"/api/events/{event_id}/holds", json={"seats": ["A-2"]})).status_code == 201
        kinds = await resume(process.ws_url, event_id, follower)
        assert kinds == ["diff", "resumed"]  # its place kept: no new snapshot
        assert follower.seats == (await client.availability(event_id))["seats"]
    finally:
        await process.stop()


async def test_restarting_workers_loses_no_clients_place(server_settings):
    process = ServerProcess(server_settings(), workers=2)
    await process.start()
    client = process.client()
    try:
        event_id = await client.create_event(grid_venue(2, 10, event_id=unique_id()))
        _, token = await client.buyer()
        sockets = [await connect(f"{process.ws_url}/ws/events/{event_id}") for _ in range(8)]
        followers = [MapFollower() for _ in sockets]
        for ws, follower in zip(sockets, followers, strict=True):
            follower.apply(await receive_json(ws))
            await ws.send(json.dumps({"type": "ping"}))
            await receive_json(ws)
        watching = [asyncio.create_task(follow_until_closed(ws, f)) for ws, f in zip(sockets, followers, strict=True)]
        process.process.send_signal(signal.SIGHUP)  # uvicorn replaces its workers one by one
        codes = await asyncio.wait_for(asyncio.gather(*watching), 60)
        assert set(codes) == {1012}
        for _ in range(100):  # the new workers are up
            try:
                async with client.http() as http:
                    if (await http.get("/health/ready")).status_code == 200:
                        break
            except Exception:
                pass
            await asyncio.sleep(0.1)
        async with client.http(token) as http:
            assert (await http.post(f"/api/events/{event_id}/holds", json={"seats": ["B-5"]})).status_code == 201
        final = (await client.availability(event_id))["seats"]
        for follower in followers:
            assert await resume(process.ws_url, event_id, follower) == ["diff", "resumed"]
            assert follower.seats == final
    finally:
        await process.stop()
