"""Migrations: the numbered SQL files in `migrations/` and each database's record of which it has applied.

This module owns the `schema_migrations` table and the rules around it:

- files are named `NNNN_<name>.sql` and applied in order of `NNNN`, each in its
  own transaction (so a file must not contain BEGIN/COMMIT, nor statements
  that cannot run in a transaction such as CREATE INDEX CONCURRENTLY);
- each transaction first takes a transaction-level advisory lock and checks
  again whether the migration is recorded, so servers starting together apply
  every migration exactly once;
- a database whose history disagrees with the files is refused before
  anything is applied: an applied file that was edited since (its sha256
  differs) or an applied version whose file is gone (this code is older than
  the schema). History is only ever appended to; nothing here edits a record.

It never runs SQL other than the migration files and its own bookkeeping.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import sys
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from server.errors import SeatmapError

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"

# Shared by every Seatmap server applying migrations to one database; "seatmap" in ASCII.
ADVISORY_LOCK_KEY = 0x73_65_61_74_6D_61_70

_FILE_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")

_CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    int PRIMARY KEY,
    name       text NOT NULL,
    checksum   text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


class MigrationError(SeatmapError):
    """Migrations cannot be read, checked or applied; the message names the file and what to do."""


@dataclass(frozen=True)
class Migration:
    """One migration file."""

    version: int
    name: str
    path: Path
    checksum: str  # sha256 of the file's bytes, hex
    sql: str = field(repr=False)

    @property
    def filename(self) -> str:
        return self.path.name


class Status(StrEnum):
    APPLIED = "applied"  # recorded, and the file is unchanged
    PENDING = "pending"  # a file not yet recorded
    CHANGED = "changed"  # recorded, but the file was edited since
    MISSING = "missing"  # recorded, but no file for it


@dataclass(frozen=True)
class MigrationState:
    """What a database holds of one migration version, next to what the files say."""

    version: int
    name: str
    status: Status
    checksum: str | None  # the file's, None when it is missing
    applied_checksum: str | None = None
    applied_at: datetime | None = None

    @property
    def filename(self) -> str:
        return f"{self.version:04d}_{self.name}.sql"


@dataclass(frozen=True)
class _Record:
    version: int
    name: str
    checksum: str
    applied_at: datetime


# --- the files (no database) -----------------------------------------------------------------------------


def load_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """Read every `NNNN_<name>.sql` in `directory`, ordered by version."""
    try:
        paths = sorted(path for path in Path(directory).iterdir() if path.suffix == ".sql")
    except OSError as err:
        raise MigrationError(f"cannot read migrations from {directory}: {err.strerror or err}") from None
    migrations: dict[int, Migration] = {}
    for path in paths:
        match = _FILE_NAME.match(path.name)
        if match is None:
            raise MigrationError(f"{path.name} in {directory} is not named like a migration (NNNN_lowercase_name.sql)")
        version, name = int(match[1]), match[2]
        if version in migrations:
            other = migrations[version].filename
            raise MigrationError(f"{other} and {path.name} share version {version:04d}")
        content = path.read_bytes()
        try:
            sql = content.decode("utf-8")
        except UnicodeDecodeError:
            raise MigrationError(f"{path.name} is not UTF-8 text") from None
        migrations[version] = Migration(version, name, path, hashlib.sha256(content).hexdigest(), sql)
    return [migrations[version] for version in sorted(migrations)]


def _compare(migrations: Iterable[Migration], records: Iterable[_Record]) -> list[MigrationState]:
    """The state of every version known to the files or the database, ordered by version."""
    files = {migration.version: migration for migration in migrations}
    recorded = {record.version: record for record in records}
    states = []
    for version in sorted(files.keys() | recorded.keys()):
        migration, record = files.get(version), recorded.get(version)
        if record is None:
            assert migration is not None
            states.append(MigrationState(version, migration.name, Status.PENDING, migration.checksum))
        elif migration is None:
            states.append(
                MigrationState(version, record.name, Status.MISSING, None, record.checksum, record.applied_at)
            )
        else:
            status = Status.APPLIED if migration.checksum == record.checksum else Status.CHANGED
            states.append(
                MigrationState(version, migration.name, status, migration.checksum, record.checksum, record.applied_at)
            )
    return states


def _changed_message(filename: str, applied_checksum: str, file_checksum: str) -> str:
    return (
        f"{filename} was edited after it was applied (applied sha256 {applied_checksum}, "
        f"file sha256 {file_checksum}); restore the file and put the change in a new migration"
    )


def _refuse_disagreement(states: Iterable[MigrationState], directory: Path) -> None:
    problems = []
    for state in states:
        if state.status is Status.CHANGED:
            assert state.applied_checksum is not None and state.checksum is not None
            problems.append(_changed_message(state.filename, state.applied_checksum, state.checksum))
        elif state.status is Status.MISSING:
            problems.append(
                f"version {state.version:04d} is applied to the database but {state.filename} is missing "
                f"from {directory} (is this code older than the database?)"
            )
    if problems:
        raise MigrationError("refusing to migrate, nothing was applied: " + "; ".join(problems))


# --- the database ----------------------------------------------------------------------------------------


def _redacted(dsn: str) -> str:
    parts = urlsplit(dsn)
    if parts.password is None:
        return dsn
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


@asynccontextmanager
async def _connection(conn_or_dsn: asyncpg.Connection | str) -> AsyncIterator[asyncpg.Connection]:
    if not isinstance(conn_or_dsn, str):
        yield conn_or_dsn
        return
    try:
        conn = await asyncpg.connect(conn_or_dsn)
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as err:
        raise MigrationError(f"cannot connect to {_redacted(conn_or_dsn)}: {err}") from None
    try:
        yield conn
    finally:
        await conn.close()


async def _records(conn: asyncpg.Connection) -> list[_Record]:
    if not await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL"):
        return []
    rows = await conn.fetch("SELECT version, name, checksum, applied_at FROM schema_migrations")
    return [_Record(row["version"], row["name"], row["checksum"], row["applied_at"]) for row in rows]


async def _apply_one(conn: asyncpg.Connection, migration: Migration) -> bool:
    """Apply one migration unless another server did meanwhile; True when this call applied it."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", ADVISORY_LOCK_KEY)
        await conn.execute(_CREATE_TABLE)  # under the lock: concurrent CREATE ... IF NOT EXISTS can collide
        recorded = await conn.fetchval("SELECT checksum FROM schema_migrations WHERE version = $1", migration.version)
        if recorded is not None:
            if recorded != migration.checksum:
                raise MigrationError(_changed_message(migration.filename, recorded, migration.checksum))
            return False
        try:
            await conn.execute(migration.sql)
        except asyncpg.PostgresError as err:
            raise MigrationError(f"{migration.filename} failed and was rolled back: {err}") from err
        await conn.execute(
            "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
            migration.version,
            migration.name,
            migration.checksum,
        )
        return True


async def migration_status(
    conn_or_dsn: asyncpg.Connection | str, directory: Path = MIGRATIONS_DIR
) -> list[MigrationState]:
    """Each migration version, applied, pending, changed or missing; changes nothing."""
    migrations = load_migrations(directory)
    async with _connection(conn_or_dsn) as conn:
        return _compare(migrations, await _records(conn))


async def apply_migrations(
    conn_or_dsn: asyncpg.Connection | str, directory: Path = MIGRATIONS_DIR, *, dry_run: bool = False
) -> list[Migration]:
    """Apply pending migrations in order; return those applied by this call (with dry_run: that would be).

    Raises MigrationError, applying nothing, when the database's history disagrees with the files.
    A migration that fails is rolled back and raised; those before it stay applied.
    """
    migrations = load_migrations(directory)
    async with _connection(conn_or_dsn) as conn:
        states = _compare(migrations, await _records(conn))
        _refuse_disagreement(states, directory)
        pending_versions = {state.version for state in states if state.status is Status.PENDING}
        pending = [migration for migration in migrations if migration.version in pending_versions]
        if dry_run:
            return pending
        return [migration for migration in pending if await _apply_one(conn, migration)]


# --- `seatmap migrate` ----------------------------------------------------------------------------------


def format_status(states: list[MigrationState]) -> str:
    rows = [("version", "name", "status", "applied at")]
    for state in states:
        applied_at = state.applied_at.isoformat(sep=" ", timespec="seconds") if state.applied_at else "-"
        rows.append((f"{state.version:04d}", state.name, state.status.value, applied_at))
    widths = [max(len(row[column]) for row in rows) for column in range(3)]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row[:3], widths, strict=True)) + "  " + row[3]
        for row in rows
    )


def run_cli(database_url: str, *, status: bool, dry_run: bool, directory: Path = MIGRATIONS_DIR) -> int:
    """`seatmap migrate [--status|--dry-run]`: print what happened; 0 on success, 1 on any problem.

    With status, 1 also means the history disagrees with the files (a changed or missing migration).
    """
    try:
        if status:
            states = asyncio.run(migration_status(database_url, directory))
            print(format_status(states) if states else f"no migrations in {directory}")
            troubled = [state for state in states if state.status in (Status.CHANGED, Status.MISSING)]
            for state in troubled:
                print(f"seatmap migrate: {state.filename} is {state.status.value}", file=sys.stderr)
            return 1 if troubled else 0
        migrations = asyncio.run(apply_migrations(database_url, directory, dry_run=dry_run))
    except MigrationError as err:
        print(f"seatmap migrate: {err}", file=sys.stderr)
        return 1
    verb = "would apply" if dry_run else "applied"
    for migration in migrations:
        print(f"{verb} {migration.filename}")
    if not migrations:
        print("nothing to apply: the database is up to date")
    return 0
