"""Reference servers, each run in a helper process of its own, measured side
by side with Seatmap in the same command:

- `RawFanout`: a bare asyncio (uvloop) TCP server that answers the websocket
  upgrade with a canned 101 and then does nothing per client but
  `transport.write(frame)` of the same pre-framed bytes to every connection,
  at a given rate: the floor for Seatmap's fan-out.
- `BareWebsockets`: the `websockets` library's own asyncio server sending one
  text message (the same snapshot) to each client, then idling: the reference
  for memory per idle connection.
- `BareStarlette`: a minimal Starlette websocket endpoint on uvicorn with
  Seatmap's uvicorn options, doing the same: what the framework stack alone
  costs per connection.

Each is a helper-process handler (see `procs.Workers`): `listen()` returns
its port, `connected()` how many clients it holds.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import time
from typing import Any

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def accept_key(key: bytes) -> bytes:
    return base64.b64encode(hashlib.sha1(key + GUID).digest())


class _RawConnection(asyncio.Protocol):
    def __init__(self, owner: RawFanout) -> None:
        self.owner = owner
        self.transport: Any = None
        self.pending = b""
        self.upgraded = False

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if self.upgraded:
            return  # pongs and close frames: nothing to do
        self.pending += data
        end = self.pending.find(b"\r\n\r\n")
        if end < 0:
            return
        key = b""
        for line in self.pending[:end].split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"sec-websocket-key":
                key = value.strip()
        self.transport.write(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: " + accept_key(key) + b"\r\n\r\n"
        )
        self.upgraded = True
        self.pending = b""
        self.owner.transports.add(self.transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.owner.transports.discard(self.transport)


class RawFanout:
    """The fan-out floor: the same frame bytes written to every transport."""

    def __init__(self, index: int) -> None:
        self.transports: set[Any] = set()
        self.server: asyncio.AbstractServer | None = None
        self.writes = 0

    async def listen(self) -> int:
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(lambda: _RawConnection(self), "127.0.0.1", 0, backlog=4096)
        return self.server.sockets[0].getsockname()[1]

    async def connected(self) -> int:
        return len(self.transports)

    async def stream(self, frames: list[bytes], rate: float, duration: float) -> int:
        """Write frames[i] (cycling) to every client, `rate` times a second, for `duration` s."""
        loop = asyncio.get_running_loop()
        interval = 1.0 / rate
        started = loop.time()
        tick = 0
        self.writes = 0
        while True:
            due = started + tick * interval
            if due - started >= duration:
                return self.writes
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            frame = frames[tick % len(frames)]
            for transport in self.transports:
                transport.write(frame)
            self.writes += len(self.transports)
            tick += 1

    async def aclose(self) -> None:
        for transport in list(self.transports):
            transport.abort()
        if self.server is not None:
            self.server.close()


class BareWebsockets:
    """`websockets`' own server: send the snapshot, then hold the connection idle."""

    def __init__(self, index: int) -> None:
        self.clients = 0
        self.server: Any = None

    async def listen(self, payload: str, ping_interval: float = 20.0) -> int:
        from websockets.asyncio.server import serve

        async def handler(connection: Any) -> None:
            self.clients += 1
            try:
                await connection.send(payload)
                await connection.wait_closed()
            finally:
                self.clients -= 1

        self.server = await serve(
            handler,
            "127.0.0.1",
            0,
            compression=None,
            ping_interval=ping_interval,
            ping_timeout=ping_interval,
            max_size=1 << 20,
            backlog=4096,
        )
        return self.server.sockets[0].getsockname()[1]

    async def connected(self) -> int:
        return self.clients

    async def aclose(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


class BareStarlette:
    """A Starlette websocket endpoint on uvicorn (Seatmap's options): send the snapshot, then idle."""

    def __init__(self, index: int) -> None:
        self.clients = 0
        self.server: Any = None
        self.task: asyncio.Task[None] | None = None

    async def listen(self, payload: str) -> int:
        import uvicorn
        from starlette.applications import Starlette
        from starlette.routing import WebSocketRoute
        from starlette.websockets import WebSocket

        from server.runner import uvicorn_options
        from server.settings import Settings

        async def endpoint(websocket: WebSocket) -> None:
            await websocket.accept()
            self.clients += 1
            try:
                await websocket.send_text(payload)
                while (await websocket.receive())["type"] != "websocket.disconnect":
                    pass
            finally:
                self.clients -= 1

        app = Starlette(routes=[WebSocketRoute("/ws/events/{event_id}", endpoint)])
        options = uvicorn_options(Settings())
        options.update(log_level="warning", lifespan="off", backlog=4096)
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, **options))
        self.task = asyncio.get_running_loop().create_task(self.server.serve())
        deadline = time.monotonic() + 30
        while not self.server.started:
            if self.task.done() or time.monotonic() > deadline:
                raise RuntimeError("the Starlette reference server did not start")
            await asyncio.sleep(0.02)
        return self.server.servers[0].sockets[0].getsockname()[1]

    async def connected(self) -> int:
        return self.clients

    async def aclose(self) -> None:
        if self.server is not None and self.task is not None:
            self.server.should_exit = True
            self.server.force_exit = True
            await asyncio.wait([self.task], timeout=10)
