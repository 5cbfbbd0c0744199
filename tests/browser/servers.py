"""Servers for browser tests.

`RestartableServer`: a Seatmap server that can be stopped and started again
on the same port, as a real restart looks to a browser: its websocket closes
(1012), the port refuses connections for a while, then a new process answers
at the same address. `tests.support.running_server` always takes a fresh
port, so this is the same thing with the port kept.

`stripe_mode_server`: Seatmap configured as for real Stripe (secret and
publishable keys set), its stripe SDK pointed at the bundled gateway because
api.stripe.com cannot be reached from here."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from dataclasses import replace

import uvicorn

from server.app import create_app
from server.gateway import GatewayConfig
from server.gateway.runner import BackgroundGateway
from server.runner import uvicorn_options
from server.settings import Settings
from tests.support import RunningServer, running_server

STRIPE_SECRET_KEY = "sk_test_seatmap_stripe_mode"
STRIPE_PUBLISHABLE_KEY = "pk_test_seatmap_stripe_mode"


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


@contextlib.asynccontextmanager
async def stripe_mode_server(settings: Settings) -> AsyncIterator[RunningServer]:
    """The app with `STRIPE_SECRET_KEY` and `STRIPE_PUBLISHABLE_KEY` set, so it
    behaves as with Stripe (`payment_url` is its own `/pay/{order_id}`), while
    `STRIPE_API_BASE` is a bundled gateway delivering signed webhooks to it."""
    port = free_port()
    config = GatewayConfig.from_settings(
        settings, webhook_url=f"http://127.0.0.1:{port}/api/webhooks/stripe", retry_base=0.1, retry_cap=1.0
    )
    gateway = await asyncio.to_thread(BackgroundGateway(config).start)
    keyed = replace(
        settings,
        stripe_secret_key=STRIPE_SECRET_KEY,
        stripe_publishable_key=STRIPE_PUBLISHABLE_KEY,
        stripe_api_base=gateway.url,
    )
    try:
        async with running_server(keyed, port=port) as server:
            yield server
    finally:
        await asyncio.to_thread(gateway.stop)
