"""Running the gateway: the command line, a uvicorn server, a background thread, a child process.

This module owns the ways to start the gateway app from `app.create_app`:

- ``python -m server.gateway [--host H] [--port P] [--db PATH] [--webhook-url URL]
  [--webhook-secret whsec_…] [--success-rate R] [--webhook-delay S] [--retry-base S]
  [--retry-cap S] [--max-in-flight N] [--log-level L]``: `main(argv)`. Defaults
  come from Seatmap's settings (``STRIPE_API_BASE`` for host and port,
  ``STRIPE_WEBHOOK_SECRET``, ``SEATMAP_GATEWAY_SUCCESS_RATE``,
  ``SEATMAP_GATEWAY_WEBHOOK_DELAY``, ``SEATMAP_DATA_DIR``/gateway.sqlite3).
- `make_server(config, host=, port=)`: a `uvicorn.Server` to ``await
  server.serve()`` in a running event loop (stop it with ``should_exit``); it
  leaves SIGINT/SIGTERM to the host process.
- `BackgroundGateway(config)`: the gateway serving from a thread with its own
  event loop, on a free port if asked for port 0; for tests and for code that
  talks to it synchronously (the stripe SDK is synchronous).
- `command(config, host=, port=)`: the argv of a child process running it;
  the child reads the webhook secret from ``STRIPE_WEBHOOK_SECRET`` in its
  environment, so the secret never shows in a process list.

Logging: one line per API call (``seatmap.gateway.api``), per checkout page
payment (``seatmap.gateway.page``) and per webhook delivery attempt
(``seatmap.gateway.webhooks``); uvicorn's access log is off to avoid saying it
twice.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import socket
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType

import uvicorn

from server.gateway.app import create_app
from server.gateway.config import DB_FILENAME, GatewayConfig, GatewayConfigError, address_of
from server.settings import DEFAULT_GATEWAY_BASE, Settings, SettingsError

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


class EmbeddedServer(uvicorn.Server):
    """A uvicorn server that leaves signals to its host process.

    A plain `uvicorn.Server.serve()` in the main thread takes over SIGINT and
    SIGTERM while it runs; inside Seatmap's own server that would steal them.
    Stop this one with ``should_exit = True``.
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def make_server(
    config: GatewayConfig,
    *,
    host: str = "127.0.0.1",
    port: int = 12111,
    log_level: str = "info",
    handle_signals: bool = False,
) -> uvicorn.Server:
    """A uvicorn server for the gateway; only the CLI (`handle_signals=True`) lets it take signals."""
    uv_config = uvicorn.Config(
        create_app(config),
        host=host,
        port=port,
        lifespan="on",
        ws="none",
        access_log=False,
        log_config=None,
        log_level=log_level,
        timeout_graceful_shutdown=5,
    )
    return uvicorn.Server(uv_config) if handle_signals else EmbeddedServer(uv_config)


class BackgroundGateway:
    """A gateway serving from a daemon thread of this process. Use as a context manager."""

    def __init__(self, config: GatewayConfig, *, host: str = "127.0.0.1", port: int = 0, log_level: str = "warning"):
        self.config = config
        self.host = host
        self.port = port
        self._log_level = log_level
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The base URL to give the stripe SDK (``STRIPE_API_BASE``)."""
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> BackgroundGateway:
        # Bind here, not in uvicorn, so port 0 gives a free port we know before serving.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
        except OSError:
            sock.close()
            raise
        self.port = sock.getsockname()[1]
        server = make_server(self.config, host=self.host, port=self.port, log_level=self._log_level)
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="gateway", daemon=True)
        self._server, self._thread = server, thread
        thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                sock.close()
                raise RuntimeError(f"the test gateway did not start on {self.url}; see its log")
            time.sleep(0.01)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving: the lifespan stops the delivery worker and closes the store."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
        self._server = self._thread = None

    def __enter__(self) -> BackgroundGateway:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def command(config: GatewayConfig, *, host: str = "127.0.0.1", port: int = 12111, log_level: str = "info") -> list[str]:
    """The argv of a child process serving `config`; give it STRIPE_WEBHOOK_SECRET in its environment."""
    argv = [
        sys.executable,
        "-m",
        "server.gateway",
        "--host",
        host,
        "--port",
        str(port),
        "--db",
        str(config.db_path),
        "--success-rate",
        repr(config.success_rate),
        "--webhook-delay",
        repr(config.webhook_delay),
        "--retry-base",
        repr(config.retry_base),
        "--retry-cap",
        repr(config.retry_cap),
        "--max-in-flight",
        str(config.max_in_flight),
        "--log-level",
        log_level,
    ]
    if config.webhook_url is not None:
        argv += ["--webhook-url", config.webhook_url]
    return argv


def _parser(settings: Settings) -> argparse.ArgumentParser:
    base = settings.stripe_api_base or DEFAULT_GATEWAY_BASE
    try:
        host, port = address_of(base)
    except GatewayConfigError:  # STRIPE_API_BASE is real Stripe: listen where the gateway usually does
        host, port = address_of(DEFAULT_GATEWAY_BASE)
    parser = argparse.ArgumentParser(
        prog="python -m server.gateway",
        description="Seatmap's Stripe-compatible test gateway: PaymentIntents, refunds and signed webhooks.",
    )
    parser.add_argument("--host", default=host, help=f"address to listen on (default {host})")
    parser.add_argument("--port", type=int, default=port, help=f"port to listen on (default {port})")
    parser.add_argument(
        "--db",
        type=Path,
        default=settings.data_dir / DB_FILENAME,
        help="SQLite file keeping the gateway's state (default <SEATMAP_DATA_DIR>/gateway.sqlite3)",
    )
    parser.add_argument("--webhook-url", help="where to POST signed events (default: record them only)")
    parser.add_argument(
        "--webhook-secret",
        default=settings.stripe_webhook_secret,
        help="whsec_… secret that signs webhooks (default STRIPE_WEBHOOK_SECRET)",
    )
    parser.add_argument(
        "--success-rate",
        type=float,
        default=settings.gateway_success_rate,
        help="chance in [0, 1] that a good test card is approved (default SEATMAP_GATEWAY_SUCCESS_RATE or 1)",
    )
    parser.add_argument(
        "--webhook-delay",
        type=float,
        default=settings.gateway_webhook_delay,
        help="seconds before an event's first delivery (default SEATMAP_GATEWAY_WEBHOOK_DELAY or 0)",
    )
    parser.add_argument("--retry-base", type=float, default=0.5, help="first retry delay in seconds (doubles)")
    parser.add_argument("--retry-cap", type=float, default=60.0, help="longest retry delay in seconds")
    parser.add_argument("--max-in-flight", type=int, default=8, help="deliveries sent concurrently")
    parser.add_argument(
        "--log-level",
        type=str.lower,
        choices=LOG_LEVELS,
        default=settings.log_level if settings.log_level in LOG_LEVELS else "info",
        help="how much to log (default SEATMAP_LOG_LEVEL or info)",
    )
    return parser


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    try:
        settings = Settings.from_env(env)
    except SettingsError as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        return 2
    parser = _parser(settings)
    args = parser.parse_args(argv)
    try:
        config = GatewayConfig(
            db_path=args.db,
            webhook_url=args.webhook_url,
            webhook_secret=args.webhook_secret,
            success_rate=args.success_rate,
            webhook_delay=args.webhook_delay,
            retry_base=args.retry_base,
            retry_cap=args.retry_cap,
            max_in_flight=args.max_in_flight,
        )
    except GatewayConfigError as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        return 2
    level = logging.getLevelNamesMapping()[args.log_level.upper()]
    logging.basicConfig(level=level, format=LOG_FORMAT)
    # httpx logs every request at INFO; the delivery worker already says it better.
    logging.getLogger("httpx").setLevel(max(logging.WARNING, level))
    server = make_server(config, host=args.host, port=args.port, log_level=args.log_level, handle_signals=True)
    logging.getLogger("seatmap.gateway").info(
        "serving the Stripe-compatible test gateway at http://%s:%d", args.host, args.port
    )
    server.run()
    return 0
