"""Websocket frames on the wire, written straight to the connection's transport.

Server-to-client frames are unmasked, so the bytes of one text frame are the
same for every client: the hub frames a diff once and hands the same bytes to
thousands of transports, with no per-client encoding, task or queue. This is
the fast path (measured in loadtest `fanout`); it needs uvicorn's websocket
protocol, whose ASGI `send` is a bound method of an object with `.transport`.
Under any other ASGI server `QueuedSink` carries frames through ASGI `send`
instead, one writer task per client.

A sink never waits on a slow client: `write()` returns False once the
client has more than its allowance of bytes unsent, and the caller cuts the
client off with `CLOSE_TOO_SLOW` (it resumes with epoch/since).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from typing import Any, Protocol

# Close codes (also in docs/protocol.md).
CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_SERVICE_RESTART = 1012
CLOSE_TOO_SLOW = 4000  # fell behind: reconnect with epoch+since to resume
# Refusals close with 4000 + the HTTP status of the error frame sent first:
# 4400 bad_request, 4401 unauthorized, 4403 forbidden, 4404 not_found, 4429 limit_exceeded.


def text_frame(payload: bytes) -> bytes:
    """One unmasked, unfragmented RFC 6455 text frame carrying `payload`."""
    size = len(payload)
    if size < 126:
        header = bytes((0x81, size))
    elif size < 65536:
        header = struct.pack("!BBH", 0x81, 126, size)
    else:
        header = struct.pack("!BBQ", 0x81, 127, size)
    return header + payload


def close_frame(code: int, reason: str = "") -> bytes:
    payload = struct.pack("!H", code) + reason.encode()[:120]
    return bytes((0x88, len(payload))) + payload


class Sink(Protocol):
    def write(self, frame: bytes) -> bool: ...
    def close(self, code: int, reason: str) -> None: ...
    def discard(self) -> None: ...


class TransportSink:
    """Writes framed bytes to the socket's transport; the transport's buffer
    is the client's bounded queue."""

    __slots__ = ("limit", "transport")

    def __init__(self, transport: asyncio.WriteTransport, limit: int) -> None:
        self.transport = transport
        self.limit = limit

    def write(self, frame: bytes) -> bool:
        transport = self.transport
        if transport.is_closing():
            return True  # the receive loop will see the disconnect
        if transport.get_write_buffer_size() > self.limit:
            return False
        transport.write(frame)
        return True

    def close(self, code: int, reason: str) -> None:
        transport = self.transport
        if transport.is_closing():
            return
        # The close frame queues behind what is unsent; a client that never
        # reads it is dropped when the flush times out.
        transport.write(close_frame(code, reason))
        loop = asyncio.get_running_loop()
        loop.call_later(5.0, transport.abort)
        transport.close()

    def discard(self) -> None:
        """The connection ended: nothing to free (the transport is uvicorn's)."""


class QueuedSink:
    """Portable path through ASGI `send`, one writer task per client."""

    def __init__(self, send: Any, limit: int) -> None:
        self.send = send
        self.limit = limit
        self.pending = 0
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.task = asyncio.get_running_loop().create_task(self._drain())
        self.closed = False

    def write(self, frame: bytes) -> bool:
        if self.closed:
            return True
        if self.pending > self.limit:
            return False
        self.pending += len(frame)
        self.queue.put_nowait(frame)
        return True

    def close(self, code: int, reason: str) -> None:
        if not self.closed:
            self.closed = True
            self.queue.put_nowait(None)
            self.close_with = (code, reason)

    def discard(self) -> None:
        self.task.cancel()

    async def _drain(self) -> None:
        while True:
            frame = await self.queue.get()
            if frame is None:
                code, reason = self.close_with
                await self.send({"type": "websocket.close", "code": code, "reason": reason})
                return
            self.pending -= len(frame)
            await self.send({"type": "websocket.send", "text": _payload(frame).decode()})


def _payload(frame: bytes) -> bytes:
    length = frame[1]
    if length < 126:
        return frame[2:]
    if length == 126:
        return frame[4:]
    return frame[10:]


def sink_for(send: Any, limit: int, kernel_buffer: int = 0) -> Sink:
    """The fastest sink this connection allows. `kernel_buffer` > 0 caps the
    socket's kernel send buffer: Linux otherwise grows it to 4 MB per socket,
    which hides a stalled client from `limit` and can cost GBs at 10,000 clients."""
    transport: Any = getattr(getattr(send, "__self__", None), "transport", None)
    # Duck-typed: uvloop's transports are not asyncio.WriteTransport subclasses.
    usable = all(hasattr(transport, name) for name in ("write", "get_write_buffer_size", "is_closing", "abort"))
    if transport is not None and usable and not transport.is_closing():
        sock = transport.get_extra_info("socket")
        if kernel_buffer > 0 and sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, kernel_buffer)
        return TransportSink(transport, limit)
    return QueuedSink(send, limit)
