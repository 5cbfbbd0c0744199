"""Shared fixtures: real servers for the whole test session.

Set SEATMAP_TEST_REDIS_URL / SEATMAP_TEST_DATABASE_URL to test against servers
of your own (the Redis URL is used as given: pick a database number you can
spare; on the Postgres server a fresh database is created for the session and
dropped at its end). Unset, embedded servers are started in a temporary
directory and stopped at the end.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import pytest

from server.embedded import EmbeddedPostgres, EmbeddedRedis
from server.migrate import apply_migrations


def _database_url_for(server_url: str, database: str) -> str:
    """`server_url` pointing at another database on the same server."""
    return urlsplit(server_url)._replace(path=f"/{database}").geturl()


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Redis for the session."""
    if url := os.environ.get("SEATMAP_TEST_REDIS_URL"):
        yield url
        return
    with EmbeddedRedis(tmp_path_factory.mktemp("redis")) as redis:
        yield redis.url


@pytest.fixture(scope="session")
def postgres_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Postgres server for the session, as a URL to a database there; tests may create their own."""
    if url := os.environ.get("SEATMAP_TEST_DATABASE_URL"):
        yield url
        return
    with EmbeddedPostgres(tmp_path_factory.mktemp("postgres")) as postgres:
        yield postgres.url


@pytest.fixture(scope="session")
async def database_url(postgres_url: str) -> AsyncIterator[str]:
    """A fresh database for the session with Seatmap's migrations applied."""
    async with _scratch_database(postgres_url, "seatmap_test") as url:
        await apply_migrations(url)
        yield url


@pytest.fixture
async def empty_database_url(postgres_url: str) -> AsyncIterator[str]:
    """A fresh database with nothing in it (no migrations) for one test."""
    async with _scratch_database(postgres_url, "seatmap_empty") as url:
        yield url


@asynccontextmanager
async def _scratch_database(server_url: str, prefix: str, template: str | None = None) -> AsyncIterator[str]:
    """A new, uniquely named database on the server of `server_url` (a copy of
    `template` if given), dropped on exit."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(server_url)
    try:
        copy = f' TEMPLATE "{template}"' if template else ""
        await admin.execute(f'CREATE DATABASE "{name}"{copy}')
    finally:
        await admin.close()
    try:
        yield _database_url_for(server_url, name)
    finally:
        admin = await asyncpg.connect(server_url)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


# --- Redis clients for tests that call the Lua scripts directly ----------------------------------


@pytest.fixture
async def redis(redis_url: str):
    from redis.asyncio import Redis

    client = Redis.from_url(redis_url, decode_responses=True)
    yield client
    await client.aclose()


@pytest.fixture
async def scripts(redis):
    """The project's scripts, registered, on a plain redis-py client."""
    from server.scripts import Scripts

    loaded = Scripts(redis)
    await loaded.register()
    return loaded


# --- a running Seatmap server ------------------------------------------------------------------


@pytest.fixture(scope="session")
async def server(redis_url: str, database_url: str, tmp_path_factory: pytest.TempPathFactory):
    """The production app on a free port for the whole session, with default settings."""
    from tests.support import running_server, test_settings

    settings = test_settings(redis_url, database_url, tmp_path_factory.mktemp("server"))
    async with running_server(settings) as running:
        yield running


@pytest.fixture(scope="session")
async def template_database(postgres_url: str) -> AsyncIterator[str]:
    """A migrated database to copy: `CREATE DATABASE … TEMPLATE` takes a fraction of migrating."""
    async with _scratch_database(postgres_url, "seatmap_template") as url:
        await apply_migrations(url)
        yield urlsplit(url).path.lstrip("/")


@pytest.fixture
async def fresh_database_url(postgres_url: str, template_database: str) -> AsyncIterator[str]:
    """A migrated database of this test's own."""
    async with _scratch_database(postgres_url, "seatmap_test", template=template_database) as url:
        yield url


@pytest.fixture
def server_settings(redis_url: str, fresh_database_url: str, tmp_path: Path):
    """Settings for a test that starts its own server(s) (e.g. with short holds),
    on a database of the test's own: the session server's background jobs
    (order expiry, the outbox) then never act on this test's orders through
    another payment gateway than theirs."""
    from tests.support import test_settings

    def make(**overrides):
        return test_settings(redis_url, fresh_database_url, tmp_path, **overrides)

    return make


def pytest_asyncio_loop_factories(config, item):
    """uvloop, as `seatmap serve` runs (uvicorn picks it when installed), so the
    tests exercise the same transports as production."""
    import uvloop

    return {"uvloop": uvloop.new_event_loop}
