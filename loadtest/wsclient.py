"""A light websocket client on a bare asyncio Protocol, for thousands of
connections per process.

It does the RFC 6455 opening handshake itself, parses the server's
(unmasked) frames straight out of `data_received` and hands each text
payload to a callback, answers pings, and sends masked text frames. There is
no task, queue or reader object per connection, so 10,000 connections cost
a client process little more than their sockets; the `websockets` library
would spend several times the CPU per frame, which on a 2-core machine would
be taken from the server under test. It does not verify
`Sec-WebSocket-Accept` (the server is ours) or support fragmented or
compressed messages (Seatmap sends neither).
"""

from __future__ import annotations

import asyncio
import base64
import os
import time
from collections.abc import Callable
from typing import Any

OP_TEXT, OP_CLOSE, OP_PING, OP_PONG = 0x1, 0x8, 0x9, 0xA

FrameHandler = Callable[["WsClient", bytes, float], None]


def _ignore(client: WsClient, payload: bytes, received: float) -> None:
    return None


def client_frame(opcode: int, payload: bytes) -> bytes:
    """A masked, unfragmented client frame."""
    size = len(payload)
    if size < 126:
        header = bytes((0x80 | opcode, 0x80 | size))
    elif size < 65536:
        header = bytes((0x80 | opcode, 0x80 | 126)) + size.to_bytes(2, "big")
    else:
        header = bytes((0x80 | opcode, 0x80 | 127)) + size.to_bytes(8, "big")
    mask = os.urandom(4)
    if size:
        key = (mask * (size // 4 + 1))[:size]
        payload = (int.from_bytes(payload, "big") ^ int.from_bytes(key, "big")).to_bytes(size, "big")
    return header + mask + payload


class HandshakeError(ConnectionError):
    """The server answered the upgrade with something other than 101."""


class WsClient(asyncio.Protocol):
    """One websocket connection. `on_frame(client, payload, received_at)` gets
    every text payload, `received_at` being `time.time()` when its bytes arrived."""

    def __init__(self, host: str, port: int, path: str, on_frame: FrameHandler = _ignore) -> None:
        key = base64.b64encode(os.urandom(16)).decode()
        self.request = (
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
        self.on_frame = on_frame
        self.transport: Any = None
        loop = asyncio.get_running_loop()
        self.opened: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[int | None] = loop.create_future()
        self.is_open = False
        self.close_code: int | None = None
        self._buffer = b""
        self.frames = 0
        self.bytes = 0
        self.state: Any = None  # free for the caller (per-connection benchmark state)

    # ---------------------------------------------------------------- asyncio callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # uvloop's transports are not asyncio.Transport subclasses
        self.transport.write(self.request)

    def connection_lost(self, exc: Exception | None) -> None:
        self.is_open = False
        if not self.opened.done():
            self.opened.set_exception(exc or ConnectionError("closed during the handshake"))
        if not self.closed.done():
            self.closed.set_result(self.close_code)

    def data_received(self, data: bytes) -> None:
        received = time.time()
        if self._buffer:
            data = self._buffer + data
            self._buffer = b""
        if not self.is_open:
            end = data.find(b"\r\n\r\n")
            if end < 0:
                self._buffer = data
                return
            status = data[: data.find(b"\r\n")]
            if b" 101 " not in status + b" ":
                if not self.opened.done():
                    self.opened.set_exception(HandshakeError(status.decode(errors="replace")))
                assert self.transport is not None
                self.transport.close()
                return
            self.is_open = True
            self.opened.set_result(None)
            data = data[end + 4 :]
        size = len(data)
        pos = 0
        while size - pos >= 2:
            first, length = data[pos], data[pos + 1] & 0x7F
            start = pos + 2
            if length == 126:
                if size - pos < 4:
                    break
                length = int.from_bytes(data[pos + 2 : pos + 4], "big")
                start = pos + 4
            elif length == 127:
                if size - pos < 10:
                    break
                length = int.from_bytes(data[pos + 2 : pos + 10], "big")
                start = pos + 10
            end = start + length
            if end > size:
                break
            opcode = first & 0x0F
            if opcode == OP_TEXT:
                self.frames += 1
                self.bytes += end - pos
                self.on_frame(self, data[start:end], received)
            elif opcode == OP_PING:
                self.send(OP_PONG, data[start:end])
            elif opcode == OP_CLOSE:
                payload = data[start:end]
                self.close_code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else None
                self.send(OP_CLOSE, payload[:2])
                assert self.transport is not None
                self.transport.close()
                return
            pos = end
        if pos < size:
            # An unfinished frame: keep it (large snapshots arrive in several reads).
            self._buffer = data[pos:]

    # ---------------------------------------------------------------- sending

    def send(self, opcode: int, payload: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(client_frame(opcode, payload))

    def send_text(self, payload: bytes) -> None:
        self.send(OP_TEXT, payload)

    def close(self, code: int = 1000) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        self.send(OP_CLOSE, code.to_bytes(2, "big"))
        self.transport.close()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()


async def connect(
    host: str, port: int, path: str, on_frame: FrameHandler = _ignore, timeout: float = 30.0
) -> WsClient:
    """Open a connection and complete the handshake (raises HandshakeError on a refusal)."""
    loop = asyncio.get_running_loop()
    _, client = await asyncio.wait_for(
        loop.create_connection(lambda: WsClient(host, port, path, on_frame), host, port), timeout
    )
    try:
        await asyncio.wait_for(asyncio.shield(client.opened), timeout)
    except BaseException:
        client.abort()
        raise
    return client


async def connect_many(
    count: int,
    host: str,
    port: int,
    path_of: Callable[[int], str],
    on_frame: FrameHandler = _ignore,
    *,
    parallel: int = 64,
    retries: int = 3,
    on_each: Callable[[int, WsClient], None] | None = None,
) -> tuple[list[WsClient], int]:
    """Open `count` connections, at most `parallel` handshakes at a time, each
    retried on failure; returns the open clients and how many could not connect."""
    clients: list[WsClient | None] = [None] * count
    failed = 0
    next_index = 0

    async def opener() -> None:
        nonlocal next_index, failed
        while next_index < count:
            index = next_index
            next_index += 1
            for attempt in range(retries + 1):
                try:
                    client = await connect(host, port, path_of(index), on_frame)
                except (TimeoutError, OSError):
                    if attempt == retries:
                        failed += 1
                    else:
                        await asyncio.sleep(0.2 * (attempt + 1))
                    continue
                clients[index] = client
                if on_each is not None:
                    on_each(index, client)
                break

    await asyncio.gather(*(opener() for _ in range(max(1, min(parallel, count)))))
    return [c for c in clients if c is not None], failed


async def close_all(clients: list[WsClient], timeout: float = 30) -> int:
    """Close every client politely, give them `timeout` to finish, abort the rest; returns how many."""
    for client in clients:
        client.close()
    if clients:
        await asyncio.wait([c.closed for c in clients], timeout=timeout)
    for client in clients:
        client.abort()
    return len(clients)
