"""Test helpers: a real Seatmap server (uvicorn, in this process's event
loop, on a free 127.0.0.1 port) and small clients for its HTTP and websocket
surfaces. Nothing here is a fake: the server runs the production app
against the session's real Redis and Postgres."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from websockets.asyncio.client import ClientConnection, connect

from server.app import create_app
from server.runner import uvicorn_options
from server.settings import Settings

ADMIN_TOKEN = "admin-token-for-tests"
# Building an SSL context costs ~20 ms; every test client reuses this one.
_SSL_CONTEXT = ssl.create_default_context()


@dataclass
class RunningServer:
    url: str
    settings: Settings
    server: uvicorn.Server

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://", 1)

    def http(self, token: str | None = None) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.AsyncClient(base_url=self.url, headers=headers, timeout=30, verify=_SSL_CONTEXT)

    def admin(self) -> httpx.AsyncClient:
        return self.http(ADMIN_TOKEN)

    async def create_event(self, body: dict[str, Any]) -> str:
        async with self.admin() as client:
            response = await client.post("/api/events", json=body)
            assert response.status_code == 201, response.text
            return response.json()["id"]

    async def buyer(self) -> tuple[str, str]:
        async with self.http() as client:
            response = await client.post("/api/sessions")
            assert response.status_code == 201
            body = response.json()
            return body["buyer_id"], body["token"]

    async def availability(self, event_id: str) -> dict[str, Any]:
        async with self.http() as client:
            response = await client.get(f"/api/events/{event_id}/availability")
            assert response.status_code == 200, response.text
            return response.json()

    def socket(self, event_id: str, **query: Any) -> Any:
        params = "&".join(f"{k}={v}" for k, v in query.items() if v is not None)
        url = f"{self.ws_url}/ws/events/{event_id}" + (f"?{params}" if params else "")
        return connect(url, max_size=None, open_timeout=10)


def test_settings(redis_url: str, database_url: str, data_dir: Path, **overrides: Any) -> Settings:
    base = Settings(
        redis_url=redis_url,
        database_url=database_url,
        data_dir=data_dir,
        admin_token=ADMIN_TOKEN,
        secret="secret-for-tests",
        stripe_webhook_secret="whsec_" + "t" * 32,
        sweep_interval=0.05,
        redis_watch_interval=0.2,
        # Tests hammer holds as one buyer; tests of the limit itself turn it back on.
        rate_holds_per_buyer=None,
    )
    return replace(base, **overrides)


@contextlib.asynccontextmanager
async def running_server(settings: Settings, *, port: int = 0) -> AsyncIterator[RunningServer]:
    """The app on `port` (0: a free one). Without a Stripe key, the bundled
    gateway runs beside it (in a thread, on its own free port), delivering
    its signed webhooks to this server, as `seatmap serve` arranges."""
    import socket

    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    port = sock.getsockname()[1]
    gateway = None
    if settings.uses_gateway:
        from server.gateway import GatewayConfig
        from server.gateway.runner import BackgroundGateway

        config = GatewayConfig.from_settings(
            settings,
            webhook_url=f"http://127.0.0.1:{port}/api/webhooks/stripe",
            retry_base=0.1,
            retry_cap=1.0,
        )
        gateway = await asyncio.to_thread(BackgroundGateway(config).start)
        settings = replace(settings, stripe_api_base=gateway.url)
    settings = replace(settings, public_url=f"http://127.0.0.1:{port}")
    app = create_app(settings)
    options = uvicorn_options(settings)
    options["log_level"] = "warning"
    server = uvicorn.Server(uvicorn.Config(app, **options))
    task = asyncio.get_running_loop().create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()  # raises the startup error
                raise RuntimeError("server exited during startup")
            await asyncio.sleep(0.01)
        yield RunningServer(f"http://127.0.0.1:{port}", settings, server)
    finally:
        server.should_exit = True
        await task
        sock.close()
        if gateway is not None:
            await asyncio.to_thread(gateway.stop)


def unique_id(prefix: str = "ev") -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


async def receive_json(ws: ClientConnection, timeout: float = 10.0) -> dict[str, Any]:
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def receive_until(ws: ClientConnection, predicate: Any, timeout: float = 10.0) -> dict[str, Any]:
    """Frames until one matches `predicate`; returns it (the others are dropped)."""
    async with asyncio.timeout(timeout):
        while True:
            frame = json.loads(await ws.recv())
            if predicate(frame):
                return frame


class MapFollower:
    """Applies a socket's snapshot and diffs the way a client must, checking
    that diffs chain (`prev` equals the version before)."""

    def __init__(self) -> None:
        self.seats: dict[str, str] = {}
        self.epoch: str | None = None
        self.version: int | None = None

    def apply(self, frame: dict[str, Any]) -> None:
        if frame["type"] == "snapshot":
            self.seats = dict(frame["seats"])
            self.epoch, self.version = frame["epoch"], frame["version"]
        elif frame["type"] == "diff":
            assert frame["epoch"] == self.epoch, "diff of another epoch without a snapshot"
            assert frame["prev"] == self.version, f"diff chain broken: prev {frame['prev']} after {self.version}"
            self.seats.update(frame["changes"])
            self.version = frame["version"]
        elif frame["type"] == "resumed":
            assert frame["epoch"] == self.epoch and frame["version"] == self.version


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ServerProcess:
    """`seatmap serve` as a real child process (workers, signals, SIGKILL)."""

    def __init__(self, settings: Settings, *, workers: int = 1, port: int | None = None) -> None:
        if settings.uses_gateway and settings.stripe_api_base is None:
            # fixed for this object, so a restart finds the same gateway (and its state)
            settings = replace(settings, stripe_api_base=f"http://127.0.0.1:{free_port()}")
        self.port = port or free_port()
        self.settings = replace(settings, public_url=f"http://127.0.0.1:{self.port}")
        self.workers = workers
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = self.url.replace("http://", "ws://", 1)
        self.process: Any = None

    def client(self) -> RunningServer:
        """The same helpers as for an in-process server."""
        return RunningServer(self.url, self.settings, None)  # type: ignore[arg-type]

    def env(self) -> dict[str, str]:
        import os

        return {**os.environ, **self.settings.as_env(), "SEATMAP_LOG_LEVEL": "warning"}

    async def crash(self) -> None:
        """SIGKILL the server and its gateway at once, like a machine dying."""
        import os
        import signal

        os.killpg(self.process.pid, signal.SIGKILL)
        await asyncio.to_thread(self.process.wait)

    async def start(self) -> None:
        import subprocess
        import sys

        self.process = subprocess.Popen(  # noqa: ASYNC220 - starting it does not block
            [
                sys.executable,
                "-m",
                "server.cli",
                "serve",
                "--port",
                str(self.port),
                "--workers",
                str(self.workers),
            ],
            env=self.env(),
            start_new_session=True,  # its own process group: crash() kills it whole
        )
        async with httpx.AsyncClient(verify=_SSL_CONTEXT) as client:
            for _ in range(600):
                if self.process.poll() is not None:
                    raise RuntimeError(f"seatmap serve exited with {self.process.returncode}")
                try:
                    if (await client.get(f"{self.url}/health/ready", timeout=1)).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.1)
        raise RuntimeError("seatmap serve did not become ready")

    async def stop(self, sig: int | None = None) -> int:
        import signal

        if self.process is None:
            return 0
        self.process.send_signal(sig or signal.SIGTERM)
        for _ in range(300):
            if self.process.poll() is not None:
                break
            await asyncio.sleep(0.05)
        else:
            self.process.kill()
        return self.process.wait()

    async def __aenter__(self) -> ServerProcess:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
