"""A Seatmap server that can be stopped and started again on the same port,
as a real restart looks to a browser: its websocket closes (1012), the
port refuses connections for a while, then a new process answers at the
same address. `tests.support.running_server` always takes a fresh port, so
this is the same thing with the port kept."""

from __future__ import annotations

import asyncio
import socket

import uvicorn

from server.app import create_app
from server.runner import uvicorn_options
from server.settings import Settings
from tests.support import RunningServer


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class RestartableServer:
    def __init__(self, settings: Settings, port: int | None = None) -> None:
        self.settings = settings
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> RunningServer:
        options = uvicorn_options(self.settings)
        options["log_level"] = "warning"
        config = uvicorn.Config(create_app(self.settings), host="127.0.0.1", port=self.port, **options)
        server = uvicorn.Server(config)
        task = asyncio.get_running_loop().create_task(server.serve())
        while not server.started:
            if task.done():
                task.result()
                raise RuntimeError("server exited during startup")
            await asyncio.sleep(0.01)
        self._server, self._task = server, task
        return RunningServer(self.url, self.settings, server)

    async def stop(self) -> None:
        if self._server is None or self._task is None:
            return
        self._server.should_exit = True
        await self._task
        self._server = self._task = None
