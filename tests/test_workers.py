"""`seatmap serve --workers N`: every client sees every diff, whichever
worker process made it and whichever one the client is connected to."""

from __future__ import annotations

import asyncio
import json

import pytest

from server.venues import grid_venue
from tests.support import ADMIN_TOKEN, MapFollower, ServerProcess, receive_json, unique_id

pytestmark = pytest.mark.slow


async def test_two_workers_deliver_each_others_diffs(server_settings):
    async with ServerProcess(server_settings(), workers=2) as running:
        import httpx

        event_id = unique_id()
        async with httpx.AsyncClient(
            base_url=running.url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
        ) as admin:
            assert (
                await admin.post("/api/events", json=grid_venue(4, 10, event_id=event_id))
            ).status_code == 201
            tokens = [(await admin.post("/api/sessions")).json()["token"] for _ in range(24)]

        from websockets.asyncio.client import connect

        sockets, workers, followers = [], [], []
        for token in tokens:
            ws = await connect(f"{running.ws_url}/ws/events/{event_id}?token={token}")
            follower = MapFollower()
            follower.apply(await receive_json(ws))
            await ws.send(json.dumps({"type": "ping", "ref": "who"}))
            workers.append((await receive_json(ws))["worker"])
            sockets.append(ws)
            followers.append(follower)
        assert len(set(workers)) == 2, "the kernel spread 24 connections over both workers"

        # every socket holds one seat through its own worker
        seats = [f"{row}-{n}" for row in "ABCD" for n in range(1, 11)]
        for i, ws in enumerate(sockets):
            await ws.send(json.dumps({"type": "hold", "ref": f"h{i}", "seats": [seats[i]]}))

        async def follow(ws, follower):
            while follower.version is None or follower.version < len(sockets):
                frame = await receive_json(ws)
                if frame["type"] == "hold_ok":
                    continue
                assert frame["type"] != "error", frame
                follower.apply(frame)

        await asyncio.wait_for(
            asyncio.gather(*(follow(ws, f) for ws, f in zip(sockets, followers, strict=True))), 30
        )
        async with httpx.AsyncClient(base_url=running.url) as client:
            final = (await client.get(f"/api/events/{event_id}/availability")).json()
        assert final["version"] == len(sockets)
        for follower in followers:
            assert follower.seats == final["seats"]
        for ws in sockets:
            await ws.close()
