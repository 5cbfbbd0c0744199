"""The ASGI application: routes, error handlers and the lifespan that owns
every shared resource (pools, scripts, hub, background tasks), started and
stopped in one place."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path

from redis.asyncio import Redis
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from . import db, traffic_log
from .api import events, health, holds, live, pages
from .api import orders as order_routes
from .api.common import DEPENDENCY_ERRORS, on_dependency_error, on_http_exception, on_seatmap_error, on_unexpected
from .api.context import RequestContext
from .auth import TokenSigner
from .catalog import EventCatalog
from .errors import SeatmapError
from .guards import ConnectionLimiter
from .holds import HoldEngine
from .hub import Hub
from .live import LiveState
from .metrics import METRICS
from .migrate import apply_migrations
from .orders import Orders
from .outbox import Outbox
from .payments import Payments
from .ratelimit import RateLimiter
from .reservations import Reservations
from .script_channel import ScriptChannel
from .scripts import Scripts
from .services import Services
from .settings import Settings
from .supervise import Supervisor
from .sweeper import Sweeper
from .wire import CLOSE_SERVICE_RESTART

log = logging.getLogger("seatmap.app")
STATIC_DIR = Path(__file__).resolve().parent.parent / "static"


class ConfigurationError(RuntimeError):
    """The app cannot start with these settings."""


@contextlib.asynccontextmanager
async def open_services(settings: Settings, *, background: bool = True) -> AsyncIterator[Services]:
    """Connect to Redis and Postgres, apply migrations, load scripts, start
    the background tasks (unless `background` is False, for one-off jobs);
    undo all of it on exit."""
    if not settings.redis_url or not settings.database_url:
        raise ConfigurationError(
            "SEATMAP_REDIS_URL and SEATMAP_DATABASE_URL must be set for the app "
            "(`seatmap serve` starts embedded servers when they are not)"
        )
    settings = settings.with_secrets()
    assert settings.secret and settings.admin_token
    redis_url, database_url = settings.redis_url, settings.database_url
    assert redis_url and database_url
    redis = Redis.from_url(redis_url, decode_responses=True, health_check_interval=30)
    pool = await db.create_pool(database_url)
    supervisor = Supervisor()
    try:
        await apply_migrations(settings.database_url)
        channel = ScriptChannel(redis_url)
        scripts = Scripts(redis, channel=channel)
        await scripts.register()
        catalog = EventCatalog(pool)
        live_state = LiveState(scripts, db.owned_loader(pool))
        hold_engine = HoldEngine(scripts, settings, on_state_missing=live_state.rebuild)
        hub = Hub(redis_url, live_state, catalog.get)
        payments = Payments(settings)
        reservations = Reservations(scripts, settings.stream_maxlen, on_state_missing=live_state.rebuild)
        outbox = Outbox(pool, payments, reservations, catalog)
        orders = Orders(pool, catalog, hold_engine, reservations, payments, outbox, settings)
        services = Services(
            settings=settings,
            redis=redis,
            pool=pool,
            scripts=scripts,
            catalog=catalog,
            live=live_state,
            holds=hold_engine,
            hub=hub,
            signer=TokenSigner(settings.secret, settings.admin_token),
            orders=orders,
            rate_limiter=RateLimiter.from_settings(
                scripts, settings, on_refused=lambda rule: METRICS.rate_limited.inc(1, rule)
            ),
            connections=ConnectionLimiter(settings.max_connections, settings.max_connections_per_ip),
            extra={},
        )
        sweeper = Sweeper(hold_engine, live_state, catalog, settings.sweep_interval, settings.redis_watch_interval)
        services.extra["sweeper"] = sweeper
        hold_engine.expiry_listener = sweeper.expect
        if background:
            supervisor.start("hub-reader", hub.run_reader)
            supervisor.start("hub-watch", lambda: hub.run_watch(settings.redis_watch_interval))
            supervisor.start("sweeper", sweeper.run)
            supervisor.start("outbox", outbox.run)
            supervisor.start("order-expiry", lambda: expire_orders(orders, settings.sweep_interval * 4))
        yield services
    finally:
        with contextlib.suppress(NameError):
            closed = hub.close_all(CLOSE_SERVICE_RESTART, "server restarting: reconnect to resume")
            if closed:
                log.info("closed %d websocket client(s) with 1012 (resume elsewhere)", closed)
        await supervisor.stop()
        with contextlib.suppress(NameError):
            await payments.close()
        await pool.close()
        with contextlib.suppress(NameError):
            channel.close()
        await redis.aclose()


async def expire_orders(orders: Orders, interval: float) -> None:
    """Expire lapsed checkouts (their seats go back on sale) every `interval`."""
    while True:
        while await orders.expire_due():
            pass
        await asyncio.sleep(interval)


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or Settings.from_env()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Services]]:
        async with open_services(settings) as services:
            app.state.services = services
            yield {"services": services}

    return Starlette(
        routes=[
            *events.routes,
            *holds.routes,
            *order_routes.routes,
            *health.routes,
            *pages.routes,
            Mount("/static", StaticFiles(directory=STATIC_DIR, check_dir=False), name="static"),
        ],
        # Outermost first: the traffic log (when on) sees HTTP and websockets alike.
        middleware=[
            *traffic_log.middleware(settings.traffic_log),
            Middleware(RequestContext),
            Middleware(live.LiveRoute),
        ],
        exception_handlers={
            SeatmapError: on_seatmap_error,
            **dict.fromkeys(DEPENDENCY_ERRORS, on_dependency_error),
            HTTPException: on_http_exception,
            Exception: on_unexpected,
        },
        lifespan=lifespan,
    )


def app_from_env() -> Starlette:
    """uvicorn factory (`server.app:app_from_env`), used by each worker process."""
    return create_app(Settings.from_env())
