"""Websocket protections (origins, connection counts, idle peers) and the
client address they key on; the idle timeout through a real uvicorn."""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import struct
import time

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect
from websockets.asyncio.client import connect

from server.clientip import client_ip, forwarded_for, ip_bucket, parse_address
from server.errors import LimitExceeded, Unavailable
from server.guards import ConnectionLimiter, keepalive, normalize_origin, origin_allowed
from server.runner import uvicorn_options
from server.settings import Settings, SettingsError

# --- origins ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("origin", "host"),
    [
        # Behind a TLS-terminating balancer the server speaks http, the browser's page is https.
        ("https://tickets.example.com", "tickets.example.com"),
        ("https://tickets.example.com", "tickets.example.com:443"),
        ("http://127.0.0.1:8000", "127.0.0.1:8000"),
        ("HTTP://LocalHost:8000", "localhost:8000"),
        ("http://[::1]:8000", "[::1]:8000"),
    ],
)
def test_same_origin_is_always_allowed(origin: str, host: str):
    assert origin_allowed(origin, host, ())


@pytest.mark.parametrize(
    ("origin", "host"),
    [
        ("https://evil.example", "tickets.example.com"),
        ("https://tickets.example.com.evil.example", "tickets.example.com"),
        ("http://127.0.0.1:9000", "127.0.0.1:8000"),
        ("https://tickets.example.com:8443", "tickets.example.com"),
        ("https://tickets.example.com", None),
        ("not an origin", "tickets.example.com"),
        ("null", "tickets.example.com"),
    ],
)
def test_other_origins_are_refused_unless_listed(origin: str, host: str | None):
    assert not origin_allowed(origin, host, ())


def test_listed_origins_are_allowed_exactly():
    allowed = ("https://Shop.Example.com:443/", "http://localhost:3000")
    assert origin_allowed("https://shop.example.com", "api.example.com", allowed)
    assert origin_allowed("http://localhost:3000", "api.example.com", allowed)
    assert not origin_allowed("http://shop.example.com", "api.example.com", allowed)  # scheme differs
    assert not origin_allowed("https://www.shop.example.com", "api.example.com", allowed)
    assert not origin_allowed("http://localhost:3001", "api.example.com", allowed)


def test_a_star_allows_every_origin_and_null_must_be_listed():
    assert origin_allowed("https://anyone.example", "api.example.com", ("*",))
    assert origin_allowed("null", "api.example.com", ("*",))
    assert origin_allowed("null", "api.example.com", ("null",))


def test_clients_that_are_not_browsers_send_no_origin_and_are_allowed():
    assert origin_allowed(None, "api.example.com", ())
    assert origin_allowed("", None, ())


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("https://Example.COM", "https://example.com"),
        ("https://example.com:443", "https://example.com"),
        ("http://example.com:80/", "http://example.com"),
        ("http://example.com:8080", "http://example.com:8080"),
        ("http://[::1]:8000", "http://[::1]:8000"),
        ("example.com", None),
        ("https://example.com/path", None),
        ("https://user@example.com", None),
        ("ftp://example.com", None),
        ("https://example.com:99999", None),
    ],
)
def test_origins_are_normalized_or_refused(raw: str, normal: str | None):
    assert normalize_origin(raw) == normal


# --- client address ---------------------------------------------------------------------------------


def scope(peer: str | None, *forwarded: str) -> dict:
    return {
        "type": "http",
        "client": (peer, 5000) if peer else None,
        "headers": [(b"x-forwarded-for", value.encode()) for value in forwarded],
    }


def test_without_trusted_proxies_the_peer_is_the_client_whatever_the_headers_say():
    assert client_ip(scope("203.0.113.9", "198.51.100.1"), ()) == "203.0.113.9"
    assert client_ip(scope("127.0.0.1", "198.51.100.1"), ()) == "127.0.0.1"


def test_a_trusted_proxy_is_believed_about_its_own_peer_only():
    trusted = ("10.0.0.0/8",)
    # The client wrote "1.1.1.1" itself; the proxy appended the address it saw.
    assert client_ip(scope("10.0.0.2", "1.1.1.1, 203.0.113.9"), trusted) == "203.0.113.9"
    # Two of our proxies in a row: skip both.
    assert client_ip(scope("10.0.0.2", "203.0.113.9, 10.0.0.7"), trusted) == "203.0.113.9"
    # Several headers count as one list, in order.
    assert client_ip(scope("10.0.0.2", "1.1.1.1", "203.0.113.9"), trusted) == "203.0.113.9"
    # A peer that is not our proxy is the client, header or not.
    assert client_ip(scope("198.51.100.4", "203.0.113.9"), trusted) == "198.51.100.4"
    # Only our proxies in the chain: the farthest one is all we know.
    assert client_ip(scope("10.0.0.2", "10.0.0.9"), trusted) == "10.0.0.9"
    # A trusted proxy with no header: the proxy itself.
    assert client_ip(scope("10.0.0.2"), trusted) == "10.0.0.2"
    # Something that is not an address stops the walk at the last hop vouched for.
    assert client_ip(scope("10.0.0.2", "203.0.113.9, garbage"), trusted) == "10.0.0.2"


def test_addresses_are_read_as_proxies_write_them():
    trusted = ("127.0.0.1",)
    assert client_ip(scope("127.0.0.1", "203.0.113.9:51000"), trusted) == "203.0.113.9"
    assert client_ip(scope("127.0.0.1", "[2001:db8::7]:443"), trusted) == "2001:db8::7"
    assert client_ip(scope("::ffff:127.0.0.1", "2001:db8::7"), trusted) == "2001:db8::7"
    assert client_ip(scope("::ffff:203.0.113.9"), ()) == "203.0.113.9"
    assert client_ip(scope(None), trusted) is None
    assert parse_address("fe80::1%eth0") == parse_address("fe80::1")
    assert forwarded_for([(b"X-Forwarded-For", b" a , ,b"), (b"host", b"x")]) == ["a", "b"]


def test_trusted_proxies_are_a_setting_of_addresses_and_networks():
    settings = Settings.from_env({"SEATMAP_TRUSTED_PROXIES": "10.0.0.1, 192.168.0.0/16, ::1"})
    assert settings.trusted_proxies == ("10.0.0.1/32", "192.168.0.0/16", "::1/128")
    assert Settings.from_env(settings.as_env()).trusted_proxies == settings.trusted_proxies
    assert client_ip(scope("192.168.4.4", "203.0.113.9"), settings.trusted_proxies) == "203.0.113.9"
    with pytest.raises(SettingsError, match="SEATMAP_TRUSTED_PROXIES"):
        Settings.from_env({"SEATMAP_TRUSTED_PROXIES": "loadbalancer.internal"})


def test_per_address_limits_count_clients_by_address_or_ipv6_prefix():
    assert ip_bucket("203.0.113.9") == "203.0.113.9"
    assert ip_bucket("2001:db8:1:2:3:4:5:6") == ip_bucket("2001:db8:1:2::9") == "2001:db8:1:2::/64"
    assert ip_bucket("2001:db8:1:3::9") != ip_bucket("2001:db8:1:2::9")
    for exempt in ("127.0.0.1", "127.8.0.1", "::1", "::ffff:127.0.0.1", None, "", "/run/seatmap.sock"):
        assert ip_bucket(exempt) is None, exempt


# --- connection counts ----------------------------------------------------------------------------------


def test_connections_are_capped_per_process_and_per_address():
    limiter = ConnectionLimiter(max_total=4, max_per_ip=2)
    assert limiter.acquire("203.0.113.1") and limiter.acquire("203.0.113.1")
    assert not limiter.acquire("203.0.113.1")
    assert isinstance(limiter.refusal("203.0.113.1"), LimitExceeded)
    assert limiter.acquire("203.0.113.2")
    assert limiter.acquire("127.0.0.1")  # loopback: counted in the total only
    assert limiter.total == 4 and limiter.count("203.0.113.1") == 2 and limiter.count("127.0.0.1") == 0
    assert not limiter.acquire("203.0.113.3")
    refusal = limiter.refusal("203.0.113.3")
    assert isinstance(refusal, Unavailable) and "4 connections" in refusal.details

    limiter.release("203.0.113.1")
    assert limiter.acquire("203.0.113.3")
    assert not limiter.acquire("203.0.113.4")


def test_released_connections_free_their_slots_and_leave_nothing_behind():
    limiter = ConnectionLimiter(max_total=0, max_per_ip=1)  # 0: no total cap
    addresses = [f"198.51.100.{n}" for n in range(1, 200)]
    for address in addresses:
        assert limiter.acquire(address)
        assert not limiter.acquire(address)
    for address in addresses:
        limiter.release(address)
    assert limiter.total == 0 and limiter._per_ip == {}
    with pytest.raises(RuntimeError):
        limiter.release("198.51.100.1")


def test_no_limits_means_no_limits():
    limiter = ConnectionLimiter(max_total=0, max_per_ip=0)
    assert all(limiter.acquire("203.0.113.1") for _ in range(10_000))


def test_connection_settings_parse_and_round_trip():
    settings = Settings.from_env(
        {"SEATMAP_MAX_CONNECTIONS": "0", "SEATMAP_MAX_CONNECTIONS_PER_IP": "50", "SEATMAP_IDLE_TIMEOUT": "90"}
    )
    assert (settings.max_connections, settings.max_connections_per_ip, settings.idle_timeout) == (0, 50, 90.0)
    assert Settings.from_env(settings.as_env()) == settings
    with pytest.raises(SettingsError, match="SEATMAP_MAX_CONNECTIONS_PER_IP"):
        Settings.from_env({"SEATMAP_MAX_CONNECTIONS_PER_IP": "-1"})


# --- idle peers -----------------------------------------------------------------------------------------


def test_idle_timeout_becomes_uvicorn_pings_that_close_within_it():
    assert keepalive(40) == {"ws_ping_interval": 20.0, "ws_ping_timeout": 20.0}
    assert keepalive(0) == {"ws_ping_interval": None, "ws_ping_timeout": None}
    # The default keeps the ping uvicorn ran with before the setting existed.
    assert keepalive(Settings().idle_timeout) == {"ws_ping_interval": 20.0, "ws_ping_timeout": 20.0}


async def _quiet_endpoint(websocket: WebSocket) -> None:
    await websocket.accept()
    try:
        while True:
            await websocket.receive_text()
    except WebSocketDisconnect:
        pass


@pytest.fixture
async def idle_server():
    """uvicorn with Seatmap's websocket options and a 1-second idle timeout, serving a socket that
    never sends anything."""
    options = {**uvicorn_options(Settings()), **keepalive(1.0), "log_level": "warning", "lifespan": "off"}
    app = Starlette(routes=[WebSocketRoute("/ws", _quiet_endpoint)])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, **options))
    task = asyncio.get_running_loop().create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()  # raises the startup error
        await asyncio.sleep(0.01)
    yield server.servers[0].sockets[0].getsockname()[1]
    server.should_exit = True
    await task


def _raw_handshake(port: int) -> socket.socket:
    """A websocket client that completes the handshake and then never answers a ping."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    response = b""
    while b"\r\n\r\n" not in response:
        response += sock.recv(4096)
    assert response.startswith(b"HTTP/1.1 101"), response
    return sock


def _frames_until_closed(sock: socket.socket, deadline: float) -> tuple[list[int], int | None, float]:
    """Opcodes received, the close code (if a close frame came) and when the server hung up."""
    opcodes: list[int] = []
    data = b""
    close_code = None
    while time.monotonic() < deadline:
        chunk = sock.recv(4096)
        if not chunk:
            return opcodes, close_code, time.monotonic()
        data += chunk
        while len(data) >= 2 and len(data) >= 2 + (data[1] & 0x7F):
            opcode, size = data[0] & 0x0F, data[1] & 0x7F
            payload, data = data[2 : 2 + size], data[2 + size :]
            opcodes.append(opcode)
            if opcode == 0x8 and len(payload) >= 2:
                close_code = struct.unpack("!H", payload[:2])[0]
    raise AssertionError(f"still open at the deadline; frames so far {opcodes}")


async def test_a_peer_that_stops_answering_pings_is_closed_after_the_idle_timeout(idle_server: int):
    sock = await asyncio.to_thread(_raw_handshake, idle_server)
    started = time.monotonic()
    try:
        opcodes, code, closed_at = await asyncio.to_thread(_frames_until_closed, sock, started + 5)
    finally:
        sock.close()
    assert 0x9 in opcodes  # the server pinged
    assert code == 1011  # keepalive ping timeout
    assert 0.8 <= closed_at - started <= 3.0  # ~1 s; slack for a loaded machine


async def test_a_silent_client_that_answers_pings_stays_open(idle_server: int):
    async with connect(f"ws://127.0.0.1:{idle_server}/ws", ping_interval=None) as ws:
        await asyncio.sleep(2.5)  # more than twice the idle timeout, without sending a frame
        await ws.send("still here")
        await ws.ping()
        assert ws.close_code is None
