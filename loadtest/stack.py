"""What a benchmark runs against: Redis and Postgres (given by URL, or
embedded ones started for the run), and the Seatmap server under test (a
`seatmap serve` subprocess on a free port, or one given by `--server`).

Everything started here is stopped when the `Stack` closes; a URL given on
the command line is used as it is and left running. The server's own logs go
to a file in the run's temporary directory and are shown when it fails.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from server.embedded import EmbeddedPostgres, EmbeddedRedis

from .measure import pid_listening_on

ADMIN_TOKEN = "loadtest-admin-token"


def add_stack_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("what to run against")
    group.add_argument("--redis-url", help="Redis to use (default: an embedded one started for the run)")
    group.add_argument(
        "--database-url", help="Postgres to use (default: an embedded one started for the run)"
    )
    group.add_argument(
        "--server",
        help="benchmark a Seatmap server already running at this URL instead of starting one "
        "(give its --redis-url too; CPU/memory figures need its pid: --server-pid or a visible listener)",
    )
    group.add_argument("--server-pid", type=int, help="pid of the --server process, for CPU and memory")
    group.add_argument(
        "--admin-token",
        default=os.environ.get("SEATMAP_ADMIN_TOKEN"),
        help="admin token of the --server (default $SEATMAP_ADMIN_TOKEN)",
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


DEFAULT_PORTS = {"http": 80, "ws": 80, "https": 443, "wss": 443, "redis": 6379, "postgresql": 5432}


def host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or DEFAULT_PORTS.get(parts.scheme, 80)


class ServerFailed(RuntimeError):
    """The Seatmap server did not start or died; the message has its log's tail."""


@dataclass
class SeatmapProcess:
    """`seatmap serve --port P` as a child process, with its environment."""

    redis_url: str
    database_url: str
    data_dir: Path
    admin_token: str = ADMIN_TOKEN
    workers: int = 1
    extra_env: dict[str, str] = field(default_factory=dict)
    port: int = 0
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "server.log"

    def start(self, timeout: float = 60.0) -> None:
        self.port = self.port or free_port()
        env = {
            **os.environ,
            "SEATMAP_REDIS_URL": self.redis_url,
            "SEATMAP_DATABASE_URL": self.database_url,
            "SEATMAP_ADMIN_TOKEN": self.admin_token,
            "SEATMAP_DATA_DIR": str(self.data_dir),
            # A key stops `seatmap serve` from starting the bundled payment gateway.
            "STRIPE_SECRET_KEY": "sk_test_unused",
            "SEATMAP_LOG_LEVEL": "warning",
            # Benchmarks drive each buyer far past a person's pace: measure capacity, not the limiter.
            "SEATMAP_RATE_HOLDS_PER_BUYER": "off",
            **self.extra_env,
        }
        command = [sys.executable, "-m", "server.cli", "serve", "--port", str(self.port)]
        if self.workers > 1:
            command += ["--workers", str(self.workers)]
        log = self.log_path.open("ab")
        try:
            self.process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        finally:
            log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServerFailed(f"seatmap serve exited with {self.process.returncode}:\n{self.log_tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/health/ready", timeout=2).status_code == 200:
                    return
            time.sleep(0.1)
        self.stop()
        raise ServerFailed(f"seatmap serve did not become ready in {timeout:.0f} s:\n{self.log_tail()}")

    def stop(self, timeout: float = 15.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


@dataclass
class Stack:
    """Redis, Postgres and (once `start_server` is called) the server under test."""

    redis_url: str
    database_url: str
    workdir: Path
    server_url: str | None = None
    server_pid: int | None = None
    admin_token: str = ADMIN_TOKEN
    seatmap: SeatmapProcess | None = None

    def start_server(self, workers: int = 1, **extra_env: str) -> str:
        """Start `seatmap serve` (unless a --server was given); returns its URL."""
        if self.server_url is not None:
            return self.server_url
        self.seatmap = SeatmapProcess(
            self.redis_url,
            self.database_url,
            self.workdir / f"server-{secrets.token_hex(3)}",
            self.admin_token,
            workers,
            dict(extra_env),
        )
        self.seatmap.data_dir.mkdir(parents=True)
        self.seatmap.start()
        assert self.seatmap.process is not None
        self.server_url = self.seatmap.url
        self.server_pid = self.seatmap.process.pid
        return self.server_url

    def stop_server(self) -> None:
        if self.seatmap is not None:
            self.seatmap.stop()
            self.seatmap = None
            self.server_url = None
            self.server_pid = None

    @property
    def ws_url(self) -> str:
        assert self.server_url is not None
        return self.server_url.replace("http", "ws", 1)

    def admin(self) -> httpx.AsyncClient:
        assert self.server_url is not None
        return httpx.AsyncClient(
            base_url=self.server_url, headers={"Authorization": f"Bearer {self.admin_token}"}, timeout=120
        )

    async def create_event(self, body: dict[str, Any]) -> str:
        async with self.admin() as client:
            response = await client.post("/api/events", json=body)
            if response.status_code != 201:
                raise RuntimeError(f"creating the event failed: {response.status_code} {response.text[:300]}")
            return response.json()["id"]

    async def buyers(self, count: int) -> list[tuple[str, str]]:
        """`count` anonymous buyers: (buyer_id, token)."""
        async with self.admin() as client:
            found = []
            for _ in range(count):
                response = await client.post("/api/sessions")
                response.raise_for_status()
                body = response.json()
                found.append((body["buyer_id"], body["token"]))
            return found

    async def availability(self, event_id: str) -> dict[str, Any]:
        async with self.admin() as client:
            response = await client.get(f"/api/events/{event_id}/availability")
            response.raise_for_status()
            return response.json()

    async def layout(self, event_id: str) -> list[str]:
        """Seat ids in layout order (the order of compact snapshots)."""
        async with self.admin() as client:
            response = await client.get(f"/api/events/{event_id}")
            response.raise_for_status()
            return [seat["id"] for seat in response.json()["seats"]]


@contextlib.contextmanager
def open_stack(args: argparse.Namespace, progress: Any = None) -> Iterator[Stack]:
    """Redis and Postgres for the run: the URLs given, or embedded servers in a temporary directory."""
    with tempfile.TemporaryDirectory(prefix="seatmap-loadtest-") as tmp, contextlib.ExitStack() as stack:
        workdir = Path(tmp)
        redis_url = args.redis_url
        if redis_url is None:
            if progress:
                progress("starting an embedded Redis")
            redis_url = stack.enter_context(EmbeddedRedis(workdir / "redis")).url
        database_url = args.database_url
        if database_url is None:
            if progress:
                progress("starting an embedded Postgres")
            database_url = stack.enter_context(EmbeddedPostgres(workdir / "postgres")).url
        given = Stack(redis_url, database_url, workdir)
        if args.server:
            given.server_url = args.server.rstrip("/")
            given.admin_token = args.admin_token or ADMIN_TOKEN
            given.server_pid = args.server_pid or pid_listening_on(host_port(given.server_url)[1])
        try:
            yield given
        finally:
            given.stop_server()


def unique_event_id(prefix: str) -> str:
    return f"lt-{prefix}-{secrets.token_hex(4)}"
