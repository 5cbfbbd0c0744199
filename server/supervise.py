"""Background tasks of a server process, supervised: a task that crashes is
logged with its traceback and restarted after a growing pause, never lost
silently. Stopping cancels them all and waits for them."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger("seatmap.tasks")


class Supervisor:
    def __init__(self) -> None:
        self.tasks: dict[str, asyncio.Task[None]] = {}

    def start(self, name: str, run: Callable[[], Awaitable[None]]) -> None:
        self.tasks[name] = asyncio.get_running_loop().create_task(self._keep_running(name, run), name=name)

    async def _keep_running(self, name: str, run: Callable[[], Awaitable[None]]) -> None:
        pause = 0.1
        while True:
            try:
                await run()
                log.warning("background task %s returned; restarting it", name)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("background task %s crashed; restarting in %.1fs", name, pause)
            await asyncio.sleep(pause)
            pause = min(pause * 2, 5.0)

    async def stop(self) -> None:
        for task in self.tasks.values():
            task.cancel()
        for task in self.tasks.values():
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.tasks.clear()
