"""uvicorn's sans-I/O websocket protocol, made lean for tens of thousands of
idle connections per process.

uvicorn keeps, for every connection's whole life, an `asyncio.Queue` (four
deques of ~760 bytes each) for at most a few pending messages, an
`asyncio.Event` for write flow control, and the handshake's request and
response with all their headers. This subclass swaps the first two for
minimal single-consumer equivalents and lets the handshake objects go once
the connection is accepted. The wire behaviour is uvicorn's own; only memory
changes (measured in loadtest `connections`). Passed to uvicorn as its `ws`
protocol class by server/runner.py.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.protocol import Protocol, State


class Inbox:
    """The ASGI receive queue: many producers (protocol callbacks), one consumer (the app)."""

    __slots__ = ("items", "waiter")

    def __init__(self) -> None:
        self.items: list[Any] = []
        self.waiter: asyncio.Future[None] | None = None

    def put_nowait(self, item: Any) -> None:
        self.items.append(item)
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def get(self) -> Any:
        while not self.items:
            self.waiter = asyncio.get_running_loop().create_future()
            try:
                await self.waiter
            finally:
                self.waiter = None
        return self.items.pop(0)

    def empty(self) -> bool:
        return not self.items


class Gate:
    """An open/closed flag with waiters: what uvicorn uses its `writable` Event for."""

    __slots__ = ("is_open", "waiters")

    def __init__(self) -> None:
        self.is_open = True
        self.waiters: list[asyncio.Future[None]] | None = None

    def set(self) -> None:
        self.is_open = True
        waiters, self.waiters = self.waiters, None
        for waiter in waiters or ():
            if not waiter.done():
                waiter.set_result(None)

    def clear(self) -> None:
        self.is_open = False

    def is_set(self) -> bool:
        return self.is_open

    async def wait(self) -> bool:
        if self.is_open:
            return True
        waiter = asyncio.get_running_loop().create_future()
        if self.waiters is None:
            self.waiters = []
        self.waiters.append(waiter)
        await waiter
        return True


class LeanWebSocketProtocol(WebSocketsSansIOProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.queue = Inbox()  # type: ignore[assignment]
        self.writable = Gate()  # type: ignore[assignment]

    async def send(self, message: Any) -> None:
        await super().send(message)
        if message["type"] == "websocket.accept" and self.handshake_complete:
            # The handshake is over: its request, response and headers are not needed again.
            self.request = None  # type: ignore[assignment]
            self.response = None  # type: ignore[assignment]
            conn = self.conn
            if conn.state is State.OPEN and not conn.reader.buffer:
                # websockets' server parser is a generator that parsed the request
                # and keeps it as a local for the connection's life. Between frames
                # (a client may not send any before the 101 answer) the frame
                # parser can be restarted without it.
                conn.parser = Protocol.parse(conn)
                next(conn.parser)
