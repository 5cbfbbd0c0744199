"""The live seat map over real websockets: snapshots, diffs, resume,
commands, refusals and slow clients."""

from __future__ import annotations

import asyncio
import json
import random
import socket

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from server.venues import fan_venue, grid_venue
from tests.support import MapFollower, receive_json, receive_until, running_server, unique_id


@pytest.fixture
async def event_id(server) -> str:
    return await server.create_event(grid_venue(4, 10, event_id=unique_id()))


async def http_hold(server, token, event_id, seats):
    async with server.http(token) as client:
        return await client.post(f"/api/events/{event_id}/holds", json={"seats": seats})


async def test_snapshot_then_diffs_in_both_forms(server, event_id):
    _, token = await server.buyer()
    async with server.socket(event_id) as full, server.socket(event_id, compact=1) as compact:
        snapshot = await receive_json(full)
        packed = await receive_json(compact)
        assert snapshot["type"] == packed["type"] == "snapshot"
        assert snapshot["version"] == packed["version"] == 0 and snapshot["epoch"] == packed["epoch"]
        assert "states" not in snapshot and "seats" not in packed
        assert len(snapshot["seats"]) == 40 and packed["states"] == "a" * 40
        await http_hold(server, token, event_id, ["B-3"])
        for ws in (full, compact):
            diff = await receive_json(ws)
            assert diff == {
                "type": "diff",
                "event_id": event_id,
                "epoch": snapshot["epoch"],
                "prev": 0,
                "version": 1,
                "changes": {"B-3": "held"},
            }
    # the compact form follows the layout order of GET /api/events/{id}
    async with server.http() as client:
        order = [s["id"] for s in (await client.get(f"/api/events/{event_id}")).json()["seats"]]
    async with server.socket(event_id, compact=1) as compact:
        states = (await receive_json(compact))["states"]
    assert [seat for seat, state in zip(order, states, strict=True) if state == "h"] == ["B-3"]


async def test_commands_over_the_socket(server, event_id):
    _, token = await server.buyer()
    async with server.socket(event_id, token=token) as ws, server.socket(event_id) as watcher:
        await receive_json(ws)
        await receive_json(watcher)
        await ws.send(json.dumps({"type": "hold", "ref": "r1", "seats": ["A-1", "A-2"]}))
        reply = await receive_until(ws, lambda f: f.get("ref") == "r1")
        assert reply["type"] == "hold_ok" and reply["seats"] == ["A-1", "A-2"] and reply["hold_id"]
        assert (await receive_json(watcher))["changes"] == {"A-1": "held", "A-2": "held"}

        await ws.send(json.dumps({"type": "hold", "ref": "r2", "count": 2}))
        best = await receive_until(ws, lambda f: f.get("ref") == "r2")
        assert best["type"] == "hold_ok" and best["adjacent"] is True and len(best["seats"]) == 4

        await ws.send(json.dumps({"type": "release", "ref": "r3", "hold_id": reply["hold_id"], "seats": ["A-1"]}))
        released = await receive_until(ws, lambda f: f.get("ref") == "r3")
        assert released["type"] == "release_ok" and "A-1" not in released["seats"]

        _, other = await server.buyer()
        taken = await http_hold(server, other, event_id, ["A-2"])
        assert taken.status_code == 409

        await ws.send(json.dumps({"type": "ping", "ref": "p"}))
        pong = await receive_until(ws, lambda f: f.get("ref") == "p")
        assert pong["type"] == "pong" and isinstance(pong["worker"], int)


async def test_diffs_chain_and_converge_under_concurrent_traffic(server):
    event_id = await server.create_event(grid_venue(6, 20, event_id=unique_id()))
    seats = [f"{row}-{n}" for row in "ABCDEF" for n in range(1, 21)]
    followers = [MapFollower() for _ in range(5)]
    sockets = [server.socket(event_id, compact=0) for _ in followers]
    opened = [await s.__aenter__() for s in sockets]
    try:
        for ws, follower in zip(opened, followers, strict=True):
            follower.apply(await receive_json(ws))

        async def buyer_traffic(seed: int) -> None:
            rng = random.Random(seed)
            _, token = await server.buyer()
            async with server.http(token) as client:
                hold_id = None
                for _ in range(15):
                    picked = rng.sample(seats, 2)
                    response = await client.post(f"/api/events/{event_id}/holds", json={"seats": picked})
                    if response.status_code == 201:
                        hold_id = response.json()["hold_id"]
                    if hold_id and rng.random() < 0.4:
                        await client.delete(f"/api/holds/{hold_id}")
                        hold_id = None

        await asyncio.gather(*(buyer_traffic(i) for i in range(12)))
        final = await server.availability(event_id)

        async def follow(ws, follower):
            while follower.version != final["version"]:
                follower.apply(await receive_json(ws))

        await asyncio.gather(*(follow(ws, f) for ws, f in zip(opened, followers, strict=True)))
        for follower in followers:
            assert follower.seats == final["seats"]
    finally:
        for s in sockets:
            await s.__aexit__(None, None, None)


async def test_resume_sends_only_what_was_missed(server, event_id):
    _, token = await server.buyer()
    follower = MapFollower()
    async with server.socket(event_id) as ws:
        follower.apply(await receive_json(ws))
        await http_hold(server, token, event_id, ["C-1"])
        follower.apply(await receive_json(ws))
    # changes while disconnected
    await http_hold(server, token, event_id, ["C-2"])
    await http_hold(server, token, event_id, ["C-3"])
    async with server.socket(event_id, epoch=follower.epoch, since=follower.version) as ws:
        frames = [await receive_json(ws)]
        while frames[-1]["type"] != "resumed":
            frames.append(await receive_json(ws))
    assert all(f["type"] in ("diff", "resumed") for f in frames)
    for frame in frames:
        follower.apply(frame)
    assert follower.seats == (await server.availability(event_id))["seats"]


async def test_resume_when_up_to_date_sends_just_resumed(server, event_id):
    async with server.socket(event_id) as ws:
        snapshot = await receive_json(ws)
    async with server.socket(event_id, epoch=snapshot["epoch"], since=snapshot["version"]) as ws:
        assert (await receive_json(ws))["type"] == "resumed"


async def test_resume_with_a_stale_epoch_gets_a_snapshot(server, event_id):
    async with server.socket(event_id, epoch="not-the-epoch", since=0) as ws:
        frame = await receive_json(ws)
    assert frame["type"] == "snapshot"


async def test_resume_from_the_stream_on_a_fresh_process(server, event_id):
    """Another process has no diffs in memory: it reads the missed ones from the Redis stream."""
    _, token = await server.buyer()
    async with server.socket(event_id) as ws:
        first = await receive_json(ws)
    for seat in ("D-1", "D-2", "D-3"):
        await http_hold(server, token, event_id, [seat])
    async with running_server(server.settings) as other:  # the same Redis and Postgres
        async with other.socket(event_id, epoch=first["epoch"], since=first["version"]) as ws:
            diff = await receive_json(ws)
            assert diff["type"] == "diff" and diff["prev"] == first["version"]
            assert diff["changes"] == {"D-1": "held", "D-2": "held", "D-3": "held"}
            assert (await receive_json(ws))["type"] == "resumed"


async def test_resume_past_the_kept_history_gets_a_snapshot(server_settings):
    async with running_server(server_settings(stream_maxlen=100)) as short:
        event_id = await short.create_event(grid_venue(1, 2, event_id=unique_id()))
        _, token = await short.buyer()
        async with short.http(token) as client:
            for _ in range(260):
                hold_id = (await client.post(f"/api/events/{event_id}/holds", json={"seats": ["A-1"]})).json()[
                    "hold_id"
                ]
                await client.delete(f"/api/holds/{hold_id}")
        async with running_server(short.settings) as fresh:
            async with fresh.socket(event_id, epoch=(await short.availability(event_id))["epoch"], since=1) as ws:
                assert (await receive_json(ws))["type"] == "snapshot"


@pytest.mark.parametrize(
    ("frame", "ref"),
    [
        ("{not json", None),
        ('{"type": "dance", "ref": "x1"}', "x1"),
        ('{"type": "hold", "ref": "x2", "seats": "A-1"}', "x2"),
        ('{"type": "hold", "ref": "x3", "count": "two"}', "x3"),
        ('{"type": "release", "ref": "x4"}', "x4"),
        ("[1, 2, 3]", None),
        ('"just a string"', None),
    ],
)
async def test_malformed_frames_get_bad_request_and_the_socket_stays_open(server, event_id, frame, ref):
    _, token = await server.buyer()
    async with server.socket(event_id, token=token) as ws:
        await receive_json(ws)
        await ws.send(frame)
        error = await receive_json(ws)
        assert error["type"] == "error" and error["error"] == "bad_request" and error["details"]
        assert error["ref"] == ref
        await ws.send(json.dumps({"type": "ping", "ref": "still-there"}))
        assert (await receive_json(ws))["type"] == "pong"
    assert (await server.availability(event_id))["version"] == 0


async def test_binary_and_oversized_frames(server, event_id):
    async with server.socket(event_id) as ws:
        await receive_json(ws)
        await ws.send(b"\x00\x01binary")
        assert (await receive_json(ws))["error"] == "bad_request"
        await ws.send(json.dumps({"type": "ping", "ref": "x" * 100, "pad": "y" * 70_000}))
        too_big = await receive_json(ws)
        assert too_big["error"] == "bad_request" and "at most" in too_big["details"]
        await ws.send(json.dumps({"type": "ping", "ref": "ok"}))
        assert (await receive_json(ws))["type"] == "pong"
    async with server.socket(event_id) as ws:
        await receive_json(ws)
        await ws.send("x" * (17 * 64 * 1024))
        with pytest.raises(ConnectionClosed) as closed:
            await receive_json(ws)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009


async def test_semantic_refusals_over_the_socket(server, event_id):
    _, token = await server.buyer()
    async with server.socket(event_id) as anonymous:
        await receive_json(anonymous)
        await anonymous.send(json.dumps({"type": "hold", "ref": "a", "seats": ["A-1"]}))
        assert (await receive_json(anonymous))["error"] == "unauthorized"
    async with server.socket(event_id, token=token) as ws:
        await receive_json(ws)
        await ws.send(json.dumps({"type": "hold", "ref": "b", "seats": ["Q-1", "A-1", "A-1"]}))
        assert (await receive_json(ws))["error"] == "validation_error"
        await ws.send(json.dumps({"type": "release", "ref": "c", "hold_id": "hnope." + event_id}))
        assert (await receive_json(ws))["error"] == "not_found"
    assert (await server.availability(event_id))["version"] == 0


async def test_refusals_are_an_error_frame_then_a_close_code(server, event_id):
    _, token = await server.buyer()
    cases = [
        ("/ws/events/no-such-event", 4404, "not_found"),
        (f"/ws/events/{event_id}?token={token}tampered", 4401, "unauthorized"),
        (f"/ws/events/{event_id}?since=minus", 4400, "bad_request"),
    ]
    for path, close_code, code in cases:
        async with connect(server.ws_url + path) as ws:
            frame = await receive_json(ws)
            assert frame["type"] == "error" and frame["error"] == code and frame["details"]
            with pytest.raises(ConnectionClosed) as closed:
                await receive_json(ws)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == close_code


async def test_expiry_is_pushed_to_clients(server_settings):
    async with running_server(server_settings(hold_seconds=1)) as short:
        event_id = await short.create_event(grid_venue(1, 3, event_id=unique_id()))
        _, token = await short.buyer()
        async with short.socket(event_id) as ws:
            await receive_json(ws)
            await http_hold(short, token, event_id, ["A-1", "A-2"])
            assert (await receive_json(ws))["changes"] == {"A-1": "held", "A-2": "held"}
            expired = await receive_json(ws, timeout=5)
            assert expired["changes"] == {"A-1": "available", "A-2": "available"}


async def test_a_client_that_stops_reading_is_cut_off_and_others_keep_flowing(server_settings):
    settings = server_settings(client_buffer_bytes=32 * 1024, socket_send_buffer=8192)
    async with running_server(settings) as small:
        venue = fan_venue(6_000, event_id=unique_id())
        event_id = await small.create_event(venue)
        seat_ids = [s["id"] for s in venue["seats"]]
        port = int(small.url.rsplit(":", 1)[1])
        # A client that upgrades and then never reads a byte: the ~150 KB
        # contract-form snapshot alone overflows the kernel buffers and its allowance.
        stalled = socket.socket()
        stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stalled.connect(("127.0.0.1", port))
        stalled.sendall(
            f"GET /ws/events/{event_id} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        try:
            async with small.socket(event_id, compact=1) as healthy:
                await receive_json(healthy)
                for i in range(10):
                    _, token = await small.buyer()
                    await http_hold(small, token, event_id, seat_ids[i * 4 : i * 4 + 4])
                last = await receive_until(healthy, lambda f: f.get("version") == 10)
                assert last["type"] == "diff"  # the others kept flowing

            def read_all() -> bytes:
                stalled.settimeout(10)
                chunks = []
                while chunk := stalled.recv(65536):
                    chunks.append(chunk)
                return b"".join(chunks)

            received = await asyncio.to_thread(read_all)
        finally:
            stalled.close()
        # what it was sent ends with a close frame: 4000, resume with epoch and since
        assert b"\x0f\xa0too slow" in received[-200:]
