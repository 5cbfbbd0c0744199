"""Helper processes: client fleets and reference servers, each an asyncio
event loop (uvloop when installed) in its own process, driven by the parent
over a pipe.

The parent calls named async methods of a handler object living in the
child (`await workers.call("connect", count=2500)`), on every worker at once;
each call runs as its own task in the child, so a long `run` and a quick
`progress` can overlap. Replies and errors come back by call id; an error in
a child is raised in the parent with the child's traceback.

Children are started with the `spawn` method (a clean interpreter, no
inherited event loop or sockets) and raise their open-file limit first.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import multiprocessing
import os
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from .system import raise_fd_limit

_CONTEXT = multiprocessing.get_context("spawn")


class WorkerError(RuntimeError):
    """A call failed in a helper process; the message carries its traceback."""


def use_fast_loop() -> None:
    """Run asyncio on uvloop when it is installed, as uvicorn does."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def _child_main(conn: Connection, factory: Callable[..., Any], index: int, options: dict[str, Any]) -> None:
    raise_fd_limit()
    use_fast_loop()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve_calls(conn, factory(index, **options)))


async def _serve_calls(conn: Connection, handler: Any) -> None:
    loop = asyncio.get_running_loop()
    inbox: asyncio.Queue[Any] = asyncio.Queue()

    def readable() -> None:
        try:
            inbox.put_nowait(conn.recv())
        except EOFError:
            loop.remove_reader(conn.fileno())
            inbox.put_nowait(None)

    loop.add_reader(conn.fileno(), readable)
    os.set_blocking(conn.fileno(), True)  # uvloop made it non-blocking; recv() must read whole messages
    tasks: set[asyncio.Task[None]] = set()

    async def run_call(call_id: int, name: str, kwargs: dict[str, Any]) -> None:
        try:
            result = await getattr(handler, name)(**kwargs)
            reply = (call_id, True, result)
        except Exception:
            reply = (call_id, False, traceback.format_exc())
        conn.send(reply)

    try:
        while True:
            message = await inbox.get()
            if message is None:
                break  # the parent went away
            call_id, name, kwargs = message
            if name == "__exit__":
                conn.send((call_id, True, None))
                break
            task = loop.create_task(run_call(call_id, name, kwargs))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
    finally:
        loop.remove_reader(conn.fileno())
        for task in tasks:
            task.cancel()
        closer = getattr(handler, "aclose", None)
        if closer is not None:
            with contextlib.suppress(Exception):
                await closer()


class Workers:
    """`count` helper processes, each running `factory(index, **options)`."""

    def __init__(self, factory: Callable[..., Any], count: int, **options: Any) -> None:
        self._ids = itertools.count()
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._conns: list[Connection] = []
        self.processes: list[multiprocessing.process.BaseProcess] = []
        for index in range(count):
            parent_end, child_end = _CONTEXT.Pipe()
            process = _CONTEXT.Process(
                target=_child_main, args=(child_end, factory, index, options), daemon=True
            )
            process.start()
            child_end.close()
            self._conns.append(parent_end)
            self.processes.append(process)
        self._attached = False

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.processes if p.pid is not None]

    def __len__(self) -> int:
        return len(self._conns)

    def _attach(self) -> None:
        if self._attached:
            return
        loop = asyncio.get_running_loop()
        for conn in self._conns:
            loop.add_reader(conn.fileno(), self._readable, conn)
            os.set_blocking(conn.fileno(), True)  # recv() must read whole messages
        self._attached = True

    def _readable(self, conn: Connection) -> None:
        try:
            call_id, ok, value = conn.recv()
        except EOFError:
            asyncio.get_running_loop().remove_reader(conn.fileno())
            for waiting in self._pending.values():
                if not waiting.done():
                    waiting.set_exception(WorkerError("a helper process exited unexpectedly"))
            return
        future = self._pending.pop(call_id, None)
        if future is None or future.done():
            return
        if ok:
            future.set_result(value)
        else:
            future.set_exception(WorkerError(value))

    async def call_one(self, index: int, name: str, timeout: float | None = None, **kwargs: Any) -> Any:
        self._attach()
        call_id = next(self._ids)
        future = asyncio.get_running_loop().create_future()
        self._pending[call_id] = future
        self._conns[index].send((call_id, name, kwargs))
        try:
            return await asyncio.wait_for(future, timeout)
        finally:
            self._pending.pop(call_id, None)

    async def call(self, name: str, timeout: float | None = None, **kwargs: Any) -> list[Any]:
        """Call `name(**kwargs)` on every worker; their results in worker order."""
        return list(
            await asyncio.gather(*(self.call_one(i, name, timeout, **kwargs) for i in range(len(self))))
        )

    async def call_each(
        self, name: str, per_worker: list[dict[str, Any]], timeout: float | None = None
    ) -> list[Any]:
        """Call `name` on every worker with its own arguments."""
        return list(
            await asyncio.gather(
                *(self.call_one(i, name, timeout, **kwargs) for i, kwargs in enumerate(per_worker))
            )
        )

    async def aclose(self, timeout: float = 10.0) -> None:
        """Ask every worker to exit, then make sure it has."""
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.call("__exit__"), timeout)
        self.close()

    def close(self) -> None:
        if self._attached:
            with contextlib.suppress(RuntimeError):
                loop = asyncio.get_running_loop()
                for conn in self._conns:
                    loop.remove_reader(conn.fileno())
            self._attached = False
        for process in self.processes:
            process.join(timeout=5)
            if process.is_alive():
                process.terminate()
                process.join(timeout=5)
        for conn in self._conns:
            conn.close()


def split(total: int, parts: int) -> list[int]:
    """`total` spread as evenly as possible over `parts` (earlier parts get the remainder)."""
    base, extra = divmod(total, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]
