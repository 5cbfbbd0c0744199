"""Abuse limits through the real app: rate limits over HTTP and websocket,
origins, connection caps and the idle timeout, each as a client meets it."""

from __future__ import annotations

import asyncio
import json

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Origin

from server.settings import Rate
from server.venues import grid_venue
from tests.support import running_server, unique_id

PROXY = ("127.0.0.1/32",)  # the test client is "the load balancer": it says who the client is


def from_address(address: str) -> dict[str, str]:
    return {"X-Forwarded-For": address}


async def refusal(ws) -> tuple[dict, int | None]:
    """The error frame a refused websocket gets, and its close code."""
    frame = json.loads(await asyncio.wait_for(ws.recv(), 10))
    with pytest.raises(ConnectionClosed):
        await asyncio.wait_for(ws.recv(), 10)
    return frame, ws.close_code


async def test_sessions_per_address_behind_a_trusted_proxy(server_settings):
    settings = server_settings(trusted_proxies=PROXY, rate_sessions_per_ip=Rate(3, 60.0))
    async with running_server(settings) as server, server.http() as client:
        client_a = from_address("203.0.113.7")
        for _ in range(3):
            assert (await client.post("/api/sessions", headers=client_a)).status_code == 201
        refused = await client.post("/api/sessions", headers=client_a)
        assert refused.status_code == 429
        assert refused.json()["error"] == "limit_exceeded" and refused.json()["rule"] == "sessions_per_ip"
        assert 15 <= int(refused.headers["retry-after"]) <= 20
        # Another client behind the same proxy is not affected; the proxy itself is not limited.
        assert (await client.post("/api/sessions", headers=from_address("203.0.113.8"))).status_code == 201
        for _ in range(5):
            assert (await client.post("/api/sessions")).status_code == 201


async def test_holds_per_buyer_over_http_and_websocket(server_settings):
    settings = server_settings(rate_holds_per_buyer=Rate(3, 60.0))
    async with running_server(settings) as server:
        event_id = await server.create_event(grid_venue(2, 5, event_id=unique_id()))
        _, token = await server.buyer()
        async with server.http(token) as client:
            for seat in ("A-1", "A-2", "A-3"):
                response = await client.post(f"/api/events/{event_id}/holds", json={"seats": [seat]})
                assert response.status_code == 201
            refused = await client.post(f"/api/events/{event_id}/holds", json={"seats": ["A-4"]})
            assert refused.status_code == 429 and refused.json()["rule"] == "holds_per_buyer"
            assert "retry-after" in refused.headers
        async with server.socket(event_id, token=token) as ws:
            await ws.recv()  # snapshot
            await ws.send(json.dumps({"type": "hold", "ref": "r9", "seats": ["B-1"]}))
            while True:
                frame = json.loads(await asyncio.wait_for(ws.recv(), 10))
                if frame.get("ref") == "r9":
                    break
            assert frame["type"] == "error" and frame["error"] == "limit_exceeded"
            assert frame["rule"] == "holds_per_buyer" and frame["retry_after_ms"] > 0
        assert (await server.availability(event_id))["seats"]["A-4"] == "available"


async def test_websocket_connections_per_address_per_minute(server_settings):
    settings = server_settings(trusted_proxies=PROXY, rate_websockets_per_ip=Rate(2, 60.0))
    async with running_server(settings) as server:
        event_id = await server.create_event(grid_venue(1, 3, event_id=unique_id()))
        url = f"{server.ws_url}/ws/events/{event_id}"
        for _ in range(2):
            async with connect(url, additional_headers=from_address("198.51.100.9")) as ws:
                assert json.loads(await ws.recv())["type"] == "snapshot"
        async with connect(url, additional_headers=from_address("198.51.100.9")) as ws:
            frame, code = await refusal(ws)
        assert frame["error"] == "limit_exceeded" and code == 4429


async def test_other_origins_are_refused_unless_allowed(server_settings):
    settings = server_settings(allowed_origins=("https://shop.example.com",))
    async with running_server(settings) as server:
        event_id = await server.create_event(grid_venue(1, 3, event_id=unique_id()))
        url = f"{server.ws_url}/ws/events/{event_id}"
        async with connect(url, origin=Origin("https://evil.example")) as ws:
            frame, code = await refusal(ws)
        assert frame["error"] == "forbidden" and code == 4403
        for allowed in (server.url, "https://shop.example.com"):
            async with connect(url, origin=Origin(allowed)) as ws:
                assert json.loads(await ws.recv())["type"] == "snapshot"


async def test_a_full_process_refuses_with_4503_and_frees_slots_on_close(server_settings):
    settings = server_settings(max_connections=2)
    async with running_server(settings) as server:
        event_id = await server.create_event(grid_venue(1, 3, event_id=unique_id()))
        async with server.socket(event_id) as first, server.socket(event_id) as second:
            await first.recv()
            await second.recv()
            async with server.socket(event_id) as third:
                frame, code = await refusal(third)
            assert frame["error"] == "unavailable" and code == 4503
        await asyncio.sleep(0.2)  # the server sees both closes
        async with server.socket(event_id) as again:
            assert json.loads(await again.recv())["type"] == "snapshot"


async def test_open_connections_per_address(server_settings):
    settings = server_settings(trusted_proxies=PROXY, max_connections_per_ip=1)
    async with running_server(settings) as server:
        event_id = await server.create_event(grid_venue(1, 3, event_id=unique_id()))
        url = f"{server.ws_url}/ws/events/{event_id}"
        async with connect(url, additional_headers=from_address("192.0.2.1")) as first:
            await first.recv()
            async with connect(url, additional_headers=from_address("192.0.2.1")) as second:
                frame, code = await refusal(second)
            assert frame["error"] == "limit_exceeded" and code == 4429
            async with connect(url, additional_headers=from_address("192.0.2.2")) as other:
                assert json.loads(await other.recv())["type"] == "snapshot"


async def test_a_listener_that_answers_pings_outlives_the_idle_timeout(server_settings):
    async with running_server(server_settings(idle_timeout=1.0)) as server:
        event_id = await server.create_event(grid_venue(1, 3, event_id=unique_id()))
        async with connect(f"{server.ws_url}/ws/events/{event_id}", ping_interval=None) as ws:
            await ws.recv()
            await asyncio.sleep(2.5)
            await ws.send(json.dumps({"type": "ping", "ref": "p"}))
            assert json.loads(await asyncio.wait_for(ws.recv(), 5))["type"] == "pong"
