"""Postgres connections: the asyncpg pool with its codecs set once per
connection in the pool's `init` hook."""

from __future__ import annotations

import json
from typing import Any

import asyncpg

from .ledger import owned_seats
from .live import OwnedLoader, OwnedSeats
from .metrics import METRICS


def _observe(query: Any) -> None:
    METRICS.postgres_latency.observe(query.elapsed)


async def _init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")
    conn.add_query_logger(_observe)


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Seatmap sets no session state (no LISTEN, SET or session advisory locks),
    so the default reset on release (`RESET ALL`, `UNLISTEN *`, … one round trip
    each time) is skipped; asyncpg still rolls back an unfinished transaction."""


async def create_pool(dsn: str, *, min_size: int = 1, max_size: int = 10) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(
        dsn, min_size=min_size, max_size=max_size, init=_init_connection, reset=_keep_session
    )
    assert pool is not None
    return pool


def owned_loader(pool: asyncpg.Pool) -> OwnedLoader:
    """What orders reserve or own of an event, as live state needs it after a rebuild."""

    async def load(event_id: str) -> OwnedSeats:
        async with pool.acquire() as conn:
            return await owned_seats(conn, event_id)

    return load
