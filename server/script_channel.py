"""A pipelined channel for script calls: one Redis connection on which every
EVALSHA is written the moment it is made, replies parsed by hiredis (C) and
handed back in order.

Why: the hold path is one script call per request, and redis-py's asyncio
client spends more CPU per call (pool checkout, command packing, a
send/receive round per command) than Redis spends running the script. Here
concurrent calls share one socket and pipeline by themselves — no batching
delay, no pool — which is what redis-benchmark's pipelined figure measures.
Everything else (admin commands, blocking stream reads) stays on redis-py.

Replies arrive in the order commands were written (RESP guarantees it), so
a FIFO of futures is the whole bookkeeping. A lost connection fails every
call in flight with redis-py's ConnectionError; the next call reconnects.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from typing import Any
from urllib.parse import unquote, urlsplit

import hiredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError

CONNECT_TIMEOUT = 10.0


def _bulk(value: Any) -> bytes:
    if isinstance(value, bytes):
        data = value
    elif isinstance(value, str):
        data = value.encode()
    else:
        data = str(value).encode()
    return b"$%d\r\n%s\r\n" % (len(data), data)


def pack(*parts: Any) -> bytes:
    """One RESP command."""
    return b"*%d\r\n" % len(parts) + b"".join(_bulk(part) for part in parts)


class _Protocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.reader = hiredis.Reader(encoding="utf-8")
        self.waiters: deque[asyncio.Future[Any]] = deque()
        self.transport: asyncio.Transport | None = None
        self.lost: BaseException | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        while (reply := self.reader.gets()) is not False:
            waiter = self.waiters.popleft()
            if waiter.done():
                continue  # the caller was cancelled; the reply is dropped
            if isinstance(reply, hiredis.ReplyError):
                message = str(reply)
                error = NoScriptError(message) if message.startswith("NOSCRIPT") else ResponseError(message)
                waiter.set_exception(error)
            else:
                waiter.set_result(reply)

    def connection_lost(self, exc: BaseException | None) -> None:
        self.lost = RedisConnectionError(f"connection to Redis lost: {exc or 'closed'}")
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_exception(self.lost)


class ScriptChannel:
    def __init__(self, url: str) -> None:
        self.url = url
        self._protocol: _Protocol | None = None
        self._connecting = asyncio.Lock()

    async def execute(self, *command: Any) -> Any:
        protocol = self._protocol
        if protocol is None or protocol.lost is not None:
            protocol = await self._connect()
        waiter = asyncio.get_running_loop().create_future()
        protocol.waiters.append(waiter)
        assert protocol.transport is not None
        protocol.transport.write(pack(*command))
        return await waiter

    async def evalsha(self, sha: str, keys: tuple[str, ...] | list[str], args: list[Any]) -> Any:
        return await self.execute("EVALSHA", sha, len(keys), *keys, *args)

    async def _connect(self) -> _Protocol:
        async with self._connecting:
            if self._protocol is not None and self._protocol.lost is None:
                return self._protocol
            parts = urlsplit(self.url)
            loop = asyncio.get_running_loop()
            try:
                if parts.scheme == "unix":
                    _, protocol = await asyncio.wait_for(
                        loop.create_unix_connection(_Protocol, parts.path), CONNECT_TIMEOUT
                    )
                else:
                    context = ssl.create_default_context() if parts.scheme == "rediss" else None
                    _, protocol = await asyncio.wait_for(
                        loop.create_connection(
                            _Protocol, parts.hostname or "127.0.0.1", parts.port or 6379, ssl=context
                        ),
                        CONNECT_TIMEOUT,
                    )
            except (OSError, TimeoutError) as error:
                raise RedisConnectionError(
                    f"cannot connect to Redis at {parts.hostname}:{parts.port}: {error}"
                ) from None
            self._protocol = protocol
            if parts.password:
                user = unquote(parts.username) if parts.username else None
                auth = ("AUTH", user, unquote(parts.password)) if user else ("AUTH", unquote(parts.password))
                await self._direct(protocol, *auth)
            database = (parts.path or "/0").lstrip("/") or "0"
            if database != "0":
                await self._direct(protocol, "SELECT", database)
            return protocol

    @staticmethod
    async def _direct(protocol: _Protocol, *command: Any) -> Any:
        waiter = asyncio.get_running_loop().create_future()
        protocol.waiters.append(waiter)
        assert protocol.transport is not None
        protocol.transport.write(pack(*command))
        return await waiter

    def close(self) -> None:
        if self._protocol is not None and self._protocol.transport is not None:
            self._protocol.transport.close()
        self._protocol = None
