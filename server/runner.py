"""Running Seatmap: the parent process of `seatmap serve` / `seatmap demo`.

It starts what has no URL (embedded Redis and Postgres, the bundled payment
gateway), fills in generated secrets, prints where everything is, and runs
uvicorn with one or several worker processes, each building the app from
the environment. On exit it stops what it started.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
from collections.abc import Iterator
from dataclasses import replace

import uvicorn

from . import logs
from .embedded import EmbeddedServerError, embedded_services
from .gateway_process import GatewayStartError, gateway_process
from .guards import keepalive
from .settings import Settings
from .ws_protocol import LeanWebSocketProtocol

DEMO_EVENT_ID = "demo"


def uvicorn_options(settings: Settings) -> dict:
    """Server options every worker shares."""
    return {
        # uvicorn's sans-I/O websocket protocol with less kept per connection.
        "ws": LeanWebSocketProtocol,
        # Diffs are framed once for all clients; per-client compression would undo that.
        "ws_per_message_deflate": False,
        # Frames over our own limit get an error reply; far larger ones are cut at the protocol.
        "ws_max_size": min(16 * settings.max_frame_bytes, 16 << 20),
        # SEATMAP_IDLE_TIMEOUT: ping every half of it, close after the other half without a pong.
        **keepalive(settings.idle_timeout),
        # X-Forwarded-For/-Proto only from SEATMAP_TRUSTED_PROXIES (uvicorn's default trusts loopback).
        "proxy_headers": bool(settings.trusted_proxies),
        "forwarded_allow_ips": list(settings.trusted_proxies) or None,
        "timeout_graceful_shutdown": 10,
        "access_log": False,
        "log_config": None,
        "lifespan": "on",
    }


@contextlib.contextmanager
def _gateway(settings: Settings, server_url: str) -> Iterator[None]:
    if not settings.uses_gateway:
        yield
        return
    with gateway_process(settings, server_url):
        yield


async def _prepare_demo(settings: Settings, seats: int) -> str:
    """Create the demo event unless it exists; returns its id."""
    from .app import open_services
    from .catalog import event_from_request
    from .errors import NotFound
    from .protocol import create_event_decoder, encoder
    from .venues import fan_venue

    async with open_services(settings, background=False) as services:
        try:
            await services.catalog.get(DEMO_EVENT_ID)
        except NotFound:
            body = fan_venue(seats, event_id=DEMO_EVENT_ID, name="Seatmap Hall — demo night")
            event = event_from_request(create_event_decoder.decode(encoder.encode(body)))
            await services.catalog.create(event)
            await services.live.create(event)
    return DEMO_EVENT_ID


class PortInUse(RuntimeError):
    """A port the server needs is taken."""


def _check_free(host: str, port: int, what: str, hint: str) -> None:
    """Fail early and clearly rather than half-starting on a taken port."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            raise PortInUse(f"{what} port {host}:{port} is in use ({error.strerror}); {hint}") from None


def _exit_on_sigterm(signum: int, frame: object) -> None:
    # uvicorn re-raises the SIGTERM it handled once it has shut down; without
    # this handler the default action would kill us before the embedded
    # servers and the gateway are stopped by the `with` blocks below.
    raise SystemExit(0)


def serve(settings: Settings, *, host: str, port: int, workers: int, demo_seats: int | None = None) -> int:
    logs.configure(settings.log_level, settings.log_format)
    admin_given = settings.admin_token is not None
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        _check_free(host, port, "the server's", "choose another with --port")
        if settings.uses_gateway and settings.stripe_api_base:
            from .gateway.config import address_of

            gateway_host, gateway_port = address_of(settings.stripe_api_base)
            _check_free(
                gateway_host,
                gateway_port,
                "the payment test gateway's",
                "is another Seatmap running? set STRIPE_API_BASE to http://127.0.0.1:<free port>",
            )
        with embedded_services(settings) as (redis_url, database_url):
            settings = replace(settings, redis_url=redis_url, database_url=database_url).with_secrets()
            shown_host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
            public = settings.public_url or f"http://{shown_host}:{port}"
            settings = replace(settings, public_url=public)
            demo_event = asyncio.run(_prepare_demo(settings, demo_seats)) if demo_seats else None
            with _gateway(settings, f"http://{shown_host}:{port}"):
                _banner(settings, public, demo_event, admin_given, workers)
                os.environ.update(settings.as_env())
                uvicorn.run(
                    "server.app:app_from_env",
                    factory=True,
                    host=host,
                    port=port,
                    workers=workers if workers > 1 else None,
                    log_level=settings.log_level,
                    **uvicorn_options(settings),
                )
    except (EmbeddedServerError, GatewayStartError, PortInUse) as error:
        print(f"seatmap: {error}", file=sys.stderr)
        return 1
    return 0


def _banner(settings: Settings, public: str, demo_event: str | None, admin_given: bool, workers: int) -> None:
    payments = f"bundled test gateway at {settings.stripe_api_base}" if settings.uses_gateway else "Stripe"
    lines = [
        "",
        f"  Seatmap is starting on {public} ({workers} worker{'s' if workers != 1 else ''})",
        f"    events        {public}/",
    ]
    if demo_event:
        lines.append(f"    demo event    {public}/events/{demo_event}")
        lines.append(f"    live map      {public.replace('http', 'ws', 1)}/ws/events/{demo_event}")
    lines += [
        f"    health        {public}/health/ready",
        f"    redis         {settings.redis_url}",
        f"    postgres      {settings.database_url}",
        f"    payments      {payments}",
    ]
    if not admin_given:
        lines.append(f"    admin token   {settings.admin_token}   (set SEATMAP_ADMIN_TOKEN to choose one)")
    lines.append("")
    print("\n".join(lines), flush=True)


def migrate(settings: Settings, *, status: bool, dry_run: bool) -> int:
    from .migrate import run_cli

    try:
        with embedded_services(settings) as (_redis_url, database_url):
            return run_cli(database_url, status=status, dry_run=dry_run)
    except EmbeddedServerError as error:
        print(f"seatmap migrate: {error}", file=sys.stderr)
        return 1


def check(settings: Settings) -> int:
    from .check import run_checks

    return run_checks(settings)
