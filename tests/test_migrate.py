"""Migrations against a real Postgres: applied once, in order, and refused when history disagrees."""

from __future__ import annotations

import asyncio
import hashlib
import re
from pathlib import Path

import asyncpg
import pytest

from server.migrate import (
    MigrationError,
    Status,
    apply_migrations,
    migration_status,
    run_cli,
)


def write(directory: Path, filename: str, sql: str) -> Path:
    path = directory / filename
    path.write_text(sql)
    return path


@pytest.fixture
def migrations_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "migrations"
    directory.mkdir()
    write(directory, "0001_widgets.sql", "CREATE TABLE widgets (id int PRIMARY KEY);\n")
    write(directory, "0002_gadgets.sql", "CREATE TABLE gadgets (id int);\nINSERT INTO widgets VALUES (1);\n")
    write(directory, "README.md", "not a migration: ignored\n")
    return directory


async def tables(url: str) -> set[str]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    finally:
        await conn.close()
    return {row["tablename"] for row in rows}


async def fetch(url: str, query: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetch(query)
    finally:
        await conn.close()


async def test_apply_runs_files_in_order_and_records_them(empty_database_url: str, migrations_dir: Path):
    applied = await apply_migrations(empty_database_url, migrations_dir)

    assert [m.filename for m in applied] == ["0001_widgets.sql", "0002_gadgets.sql"]
    assert {"widgets", "gadgets", "schema_migrations"} <= await tables(empty_database_url)
    records = await fetch(
        empty_database_url, "SELECT version, name, checksum FROM schema_migrations ORDER BY 1"
    )
    assert [(r["version"], r["name"]) for r in records] == [(1, "widgets"), (2, "gadgets")]
    expected = hashlib.sha256((migrations_dir / "0001_widgets.sql").read_bytes()).hexdigest()
    assert records[0]["checksum"] == expected


async def test_second_apply_does_nothing_and_new_files_apply_later(
    empty_database_url: str, migrations_dir: Path
):
    await apply_migrations(empty_database_url, migrations_dir)
    assert await apply_migrations(empty_database_url, migrations_dir) == []
    assert len(await fetch(empty_database_url, "SELECT * FROM widgets")) == 1  # 0002 ran once

    write(migrations_dir, "0003_sprockets.sql", "CREATE TABLE sprockets (id int);")
    applied = await apply_migrations(empty_database_url, migrations_dir)
    assert [m.version for m in applied] == [3]


async def test_status_shows_applied_and_pending(empty_database_url: str, migrations_dir: Path):
    before = await migration_status(empty_database_url, migrations_dir)
    assert [(s.version, s.status) for s in before] == [(1, Status.PENDING), (2, Status.PENDING)]

    await apply_migrations(empty_database_url, migrations_dir)
    write(migrations_dir, "0003_sprockets.sql", "CREATE TABLE sprockets (id int);")
    after = await migration_status(empty_database_url, migrations_dir)

    assert [(s.filename, s.status) for s in after] == [
        ("0001_widgets.sql", Status.APPLIED),
        ("0002_gadgets.sql", Status.APPLIED),
        ("0003_sprockets.sql", Status.PENDING),
    ]
    assert after[0].applied_at is not None and after[2].applied_at is None


async def test_dry_run_reports_pending_and_changes_nothing(empty_database_url: str, migrations_dir: Path):
    would = await apply_migrations(empty_database_url, migrations_dir, dry_run=True)

    assert [m.filename for m in would] == ["0001_widgets.sql", "0002_gadgets.sql"]
    assert await tables(empty_database_url) == set()


async def test_edited_applied_migration_is_refused_and_nothing_applied(
    empty_database_url: str, migrations_dir: Path
):
    await apply_migrations(empty_database_url, migrations_dir)
    recorded = hashlib.sha256((migrations_dir / "0001_widgets.sql").read_bytes()).hexdigest()
    edited = write(migrations_dir, "0001_widgets.sql", "CREATE TABLE widgets (id bigint PRIMARY KEY);\n")
    write(migrations_dir, "0003_sprockets.sql", "CREATE TABLE sprockets (id int);")

    with pytest.raises(MigrationError) as caught:
        await apply_migrations(empty_database_url, migrations_dir)

    message = str(caught.value)
    assert "0001_widgets.sql" in message
    assert recorded in message and hashlib.sha256(edited.read_bytes()).hexdigest() in message
    assert "sprockets" not in await tables(empty_database_url)
    states = await migration_status(empty_database_url, migrations_dir)
    assert [s.status for s in states] == [Status.CHANGED, Status.APPLIED, Status.PENDING]


async def test_applied_migration_without_its_file_is_reported(empty_database_url: str, migrations_dir: Path):
    await apply_migrations(empty_database_url, migrations_dir)
    (migrations_dir / "0002_gadgets.sql").unlink()

    states = await migration_status(empty_database_url, migrations_dir)
    assert [(s.filename, s.status) for s in states][1] == ("0002_gadgets.sql", Status.MISSING)
    with pytest.raises(MigrationError, match=re.escape("0002_gadgets.sql is missing")):
        await apply_migrations(empty_database_url, migrations_dir)


async def test_failing_migration_is_rolled_back(empty_database_url: str, migrations_dir: Path):
    write(migrations_dir, "0003_broken.sql", "CREATE TABLE half_done (id int);\nSELECT 1 / 0;\n")

    with pytest.raises(MigrationError, match=re.escape("0003_broken.sql failed")):
        await apply_migrations(empty_database_url, migrations_dir)

    assert "half_done" not in await tables(empty_database_url)
    states = await migration_status(empty_database_url, migrations_dir)
    assert [s.status for s in states] == [Status.APPLIED, Status.APPLIED, Status.PENDING]


async def test_badly_named_file_is_refused(empty_database_url: str, migrations_dir: Path):
    write(migrations_dir, "3_sprockets.sql", "CREATE TABLE sprockets (id int);")

    with pytest.raises(MigrationError, match=re.escape("3_sprockets.sql")):
        await apply_migrations(empty_database_url, migrations_dir)


async def test_concurrent_appliers_apply_each_migration_once(empty_database_url: str, tmp_path: Path):
    directory = tmp_path / "concurrent"
    directory.mkdir()
    # No IF NOT EXISTS and a counter: a second run of any file would fail or double a row.
    write(directory, "0001_counter.sql", "CREATE TABLE counter (version int);")
    write(directory, "0002_slow.sql", "SELECT pg_sleep(0.2); INSERT INTO counter VALUES (2);")
    write(directory, "0003_after.sql", "INSERT INTO counter VALUES (3);")

    results = await asyncio.gather(*(apply_migrations(empty_database_url, directory) for _ in range(4)))

    assert sorted(m.version for result in results for m in result) == [1, 2, 3]
    rows = await fetch(empty_database_url, "SELECT version FROM counter ORDER BY version")
    assert [r["version"] for r in rows] == [2, 3]


def test_cli_prints_status_dry_run_and_apply(
    empty_database_url: str, migrations_dir: Path, capsys: pytest.CaptureFixture[str]
):
    assert run_cli(empty_database_url, status=True, dry_run=False, directory=migrations_dir) == 0
    status = capsys.readouterr().out
    assert "0001" in status and "widgets" in status and "pending" in status

    assert run_cli(empty_database_url, status=False, dry_run=True, directory=migrations_dir) == 0
    assert "would apply 0001_widgets.sql" in capsys.readouterr().out

    assert run_cli(empty_database_url, status=False, dry_run=False, directory=migrations_dir) == 0
    assert "applied 0002_gadgets.sql" in capsys.readouterr().out

    assert run_cli(empty_database_url, status=False, dry_run=False, directory=migrations_dir) == 0
    assert "nothing to apply" in capsys.readouterr().out


def test_cli_reports_an_unreachable_database(capsys: pytest.CaptureFixture[str]):
    assert run_cli("postgresql://postgres@127.0.0.1:1/nowhere", status=False, dry_run=False) == 1
    assert "cannot connect to postgresql://postgres@127.0.0.1:1/nowhere" in capsys.readouterr().err


# --- the project's own migrations -------------------------------------------------------------------------


async def test_project_migrations_are_applied(database_url: str):
    states = await migration_status(database_url)
    assert states and all(state.status is Status.APPLIED for state in states)


async def test_events_and_seats_enforce_their_rules(database_url: str):
    event = "INSERT INTO events (id, name, currency, focal_x, focal_y) VALUES ($1, 'Gala', 'usd', 0, 0)"
    seat = (
        "INSERT INTO seats (event_id, position, id, section, row, number, x, y, tier, price_cents)"
        " VALUES ('gala-2026', $1, $2, 'Stalls', 'A', $3, 0, 0, $4, $5)"
    )
    conn = await asyncpg.connect(database_url)
    outer = conn.transaction()  # rolled back at the end: the session database is shared
    await outer.start()
    try:
        await conn.execute(event, "gala-2026")
        await conn.execute(seat, 0, "A-1", 1, "VIP", 5000)
        for statement, args, error in [
            (seat, (1, "A-1", 2, "VIP", 5000), asyncpg.UniqueViolationError),  # seat id taken
            (seat, (0, "A-2", 2, "VIP", 5000), asyncpg.UniqueViolationError),  # position taken
            (seat, (1, "A-2", 2, "GOLD", 5000), asyncpg.CheckViolationError),
            (seat, (1, "A-2", 2, "VIP", -1), asyncpg.CheckViolationError),
            (event, ("no spaces",), asyncpg.CheckViolationError),
        ]:
            with pytest.raises(error):
                async with conn.transaction():
                    await conn.execute(statement, *args)

        await conn.execute("DELETE FROM events WHERE id = 'gala-2026'")
        assert await conn.fetchval("SELECT count(*) FROM seats WHERE event_id = 'gala-2026'") == 0
    finally:
        await outer.rollback()
        await conn.close()
