"""The app's shared resources, made once in the lifespan and handed to every
handler as typed state (never module globals)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncpg
from redis.asyncio import Redis

from .auth import TokenSigner
from .catalog import EventCatalog
from .guards import ConnectionLimiter
from .holds import HoldEngine
from .hub import Hub
from .live import LiveState
from .orders import Orders
from .ratelimit import RateLimiter
from .scripts import Scripts
from .settings import Settings


@dataclass
class Services:
    settings: Settings
    redis: Redis
    pool: asyncpg.Pool
    scripts: Scripts
    catalog: EventCatalog
    live: LiveState
    holds: HoldEngine
    hub: Hub
    signer: TokenSigner
    orders: Orders
    rate_limiter: RateLimiter
    connections: ConnectionLimiter
    extra: dict[str, Any]


def services_of(connection: Any) -> Services:
    """The Services of a Starlette Request or WebSocket."""
    return connection.state.services
