"""The gateway's memory: one SQLite file holding everything it must not forget.

This module owns the schema and every SQL statement: stored objects
(PaymentIntents, PaymentMethods, Charges, Refunds), idempotency keys with the
response they produced, events, the webhook delivery queue and the log of
delivery attempts. A restarted gateway reads the same file, so it still knows
its PaymentIntents and still delivers what it owed.

Calls are synchronous, on purpose. Each is a sub-millisecond statement on a
local WAL-mode file, and a request handler that reads, decides and writes
without an `await` in between is atomic on the event loop without any lock
(two confirms of one PaymentIntent cannot interleave). Moving them to a
thread would buy little latency and cost that guarantee. This module never
decides anything about payments and never touches the network.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE objects (
    id       TEXT PRIMARY KEY,
    kind     TEXT NOT NULL,            -- Stripe's "object": payment_intent, charge, refund, ...
    created  INTEGER NOT NULL,
    body     BLOB NOT NULL             -- the object's JSON as the API returns it
);
CREATE TABLE idempotency (
    key          TEXT PRIMARY KEY,
    method       TEXT NOT NULL,
    path         TEXT NOT NULL,
    fingerprint  TEXT NOT NULL,        -- digest of the request's parameters
    status       INTEGER NOT NULL,
    body         BLOB NOT NULL,        -- the response replayed to a retry
    request_id   TEXT NOT NULL,
    created      REAL NOT NULL
);
CREATE TABLE events (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    id              TEXT NOT NULL UNIQUE,
    type            TEXT NOT NULL,
    created         INTEGER NOT NULL,
    object_id       TEXT NOT NULL,     -- data.object.id
    payment_intent  TEXT,              -- the PaymentIntent the object belongs to, for filtering
    body            BLOB NOT NULL      -- the exact bytes every delivery sends
);
CREATE INDEX events_payment_intent ON events (payment_intent);
CREATE TABLE deliveries (
    event_id         TEXT PRIMARY KEY REFERENCES events (id),
    state            TEXT NOT NULL CHECK (state IN ('pending', 'delivered')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  REAL,             -- unix seconds; NULL once delivered
    delivered_at     REAL
);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE state = 'pending';
CREATE TABLE attempts (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id     TEXT NOT NULL REFERENCES events (id),
    attempt      INTEGER NOT NULL,
    at           REAL NOT NULL,
    url          TEXT NOT NULL,
    status       INTEGER,              -- HTTP status, NULL when no response came
    error        TEXT,                 -- why it failed, NULL on a 2xx
    duration_ms  REAL NOT NULL
);
CREATE INDEX attempts_event ON attempts (event_id);
"""

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode


class StoreError(RuntimeError):
    """The database file cannot be used (e.g. written by a newer gateway)."""


@dataclass(frozen=True)
class SavedResponse:
    method: str
    path: str
    fingerprint: str
    status: int
    body: bytes
    request_id: str


@dataclass(frozen=True)
class PendingDelivery:
    event_id: str
    event_type: str
    body: bytes
    attempts: int
    next_attempt_at: float


@dataclass(frozen=True)
class Attempt:
    event_id: str
    attempt: int
    at: float
    url: str
    status: int | None
    error: str | None
    duration_ms: float


class Store:
    def __init__(self, path: Path | str):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: we issue BEGIN/COMMIT ourselves. The
        # connection is used from the event loop's thread only, but uvicorn
        # may build the app in another thread than the one serving it.
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._in_transaction = False
        self._db.execute("PRAGMA journal_mode = WAL")
        # NORMAL in WAL mode survives a crash of the process; only a power
        # loss may drop the last commits, acceptable for a test gateway.
        self._db.execute("PRAGMA synchronous = NORMAL")
        self._db.execute("PRAGMA busy_timeout = 5000")
        self._db.execute("PRAGMA foreign_keys = ON")
        self._migrate()

    def _migrate(self) -> None:
        (version,) = self._db.execute("PRAGMA user_version").fetchone()
        if version == SCHEMA_VERSION:
            return
        if version != 0:
            raise StoreError(f"{self.path} has schema version {version}; this gateway knows {SCHEMA_VERSION}")
        # One script, one transaction: a half-created schema is never left behind.
        self._db.executescript(f"BEGIN IMMEDIATE; {_SCHEMA}; PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;")

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All writes inside commit together or not at all (a failed request changes nothing)."""
        if self._in_transaction:
            raise StoreError("transactions do not nest")
        self._db.execute("BEGIN IMMEDIATE")
        self._in_transaction = True
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        else:
            self._db.execute("COMMIT")
        finally:
            self._in_transaction = False

    # -- objects -------------------------------------------------------------

    def get(self, obj_id: str) -> dict[str, Any] | None:
        row = self._db.execute("SELECT body FROM objects WHERE id = ?", (obj_id,)).fetchone()
        return None if row is None else _decode(row[0])

    def put(self, obj: dict[str, Any]) -> None:
        self._db.execute(
            "INSERT INTO objects (id, kind, created, body) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (id) DO UPDATE SET body = excluded.body",
            (obj["id"], obj["object"], obj["created"], _encode(obj)),
        )

    # -- idempotency ---------------------------------------------------------

    def saved_response(self, key: str) -> SavedResponse | None:
        row = self._db.execute(
            "SELECT method, path, fingerprint, status, body, request_id FROM idempotency WHERE key = ?",
            (key,),
        ).fetchone()
        return None if row is None else SavedResponse(*row)

    def save_response(self, key: str, saved: SavedResponse, now: float) -> None:
        self._db.execute(
            "INSERT INTO idempotency (key, method, path, fingerprint, status, body, request_id, created)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                key,
                saved.method,
                saved.path,
                saved.fingerprint,
                saved.status,
                saved.body,
                saved.request_id,
                now,
            ),
        )

    def forget_responses(self, before: float) -> int:
        """Drop idempotency keys older than `before`: Stripe keeps them 24 hours."""
        with self.transaction():
            return self._db.execute("DELETE FROM idempotency WHERE created < ?", (before,)).rowcount

    # -- events and deliveries -----------------------------------------------

    def add_event(self, event: dict[str, Any], deliver_at: float | None) -> bytes:
        """Record an event and, unless `deliver_at` is None, queue its delivery; returns the body bytes."""
        body = _encode(event)
        obj = event["data"]["object"]
        payment_intent = obj["id"] if obj["object"] == "payment_intent" else obj.get("payment_intent")
        self._db.execute(
            "INSERT INTO events (id, type, created, object_id, payment_intent, body) VALUES (?, ?, ?, ?, ?, ?)",
            (event["id"], event["type"], event["created"], obj["id"], payment_intent, body),
        )
        if deliver_at is not None:
            self._db.execute(
                "INSERT INTO deliveries (event_id, state, next_attempt_at) VALUES (?, 'pending', ?)",
                (event["id"], deliver_at),
            )
        return body

    def events(
        self, *, limit: int = 100, event_type: str | None = None, payment_intent: str | None = None
    ) -> list[dict[str, Any]]:
        """Newest first."""
        sql = "SELECT body FROM events WHERE 1 = 1"
        args: list[Any] = []
        if event_type is not None:
            sql += " AND type = ?"
            args.append(event_type)
        if payment_intent is not None:
            sql += " AND payment_intent = ?"
            args.append(payment_intent)
        sql += " ORDER BY seq DESC LIMIT ?"
        args.append(limit)
        return [_decode(row[0]) for row in self._db.execute(sql, args)]

    def event(self, event_id: str) -> dict[str, Any] | None:
        row = self._db.execute("SELECT body FROM events WHERE id = ?", (event_id,)).fetchone()
        return None if row is None else _decode(row[0])

    def upcoming(self, limit: int) -> list[PendingDelivery]:
        """Pending deliveries, soonest first (due or not: the caller compares with the clock)."""
        rows = self._db.execute(
            "SELECT d.event_id, e.type, e.body, d.attempts, d.next_attempt_at"
            " FROM deliveries d JOIN events e ON e.id = d.event_id"
            " WHERE d.state = 'pending' ORDER BY d.next_attempt_at LIMIT ?",
            (limit,),
        ).fetchall()
        return [PendingDelivery(*row) for row in rows]

    def record_attempt(self, attempt: Attempt, next_attempt_at: float | None) -> None:
        """Log an attempt; `next_attempt_at` None means it was delivered."""
        with self.transaction():
            self._db.execute(
                "INSERT INTO attempts (event_id, attempt, at, url, status, error, duration_ms)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    attempt.event_id,
                    attempt.attempt,
                    attempt.at,
                    attempt.url,
                    attempt.status,
                    attempt.error,
                    attempt.duration_ms,
                ),
            )
            if next_attempt_at is None:
                self._db.execute(
                    "UPDATE deliveries SET state = 'delivered', attempts = ?, next_attempt_at = NULL,"
                    " delivered_at = ? WHERE event_id = ?",
                    (attempt.attempt, attempt.at, attempt.event_id),
                )
            else:
                self._db.execute(
                    "UPDATE deliveries SET attempts = ?, next_attempt_at = ? WHERE event_id = ?",
                    (attempt.attempt, next_attempt_at, attempt.event_id),
                )

    def deliveries(
        self, *, event_id: str | None = None, state: str | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        """Deliveries newest event first, each with its attempts in order."""
        sql = (
            "SELECT d.event_id, e.type, d.state, d.attempts, d.next_attempt_at, d.delivered_at"
            " FROM deliveries d JOIN events e ON e.id = d.event_id WHERE 1 = 1"
        )
        args: list[Any] = []
        if event_id is not None:
            sql += " AND d.event_id = ?"
            args.append(event_id)
        if state is not None:
            sql += " AND d.state = ?"
            args.append(state)
        sql += " ORDER BY e.seq DESC LIMIT ?"
        args.append(limit)
        result = []
        for ev_id, ev_type, st, attempts, next_at, delivered_at in self._db.execute(sql, args).fetchall():
            log = self._db.execute(
                "SELECT attempt, at, url, status, error, duration_ms FROM attempts WHERE event_id = ? ORDER BY id",
                (ev_id,),
            ).fetchall()
            result.append(
                {
                    "event_id": ev_id,
                    "type": ev_type,
                    "state": st,
                    "attempts": attempts,
                    "next_attempt_at": next_at,
                    "delivered_at": delivered_at,
                    "attempt_log": [
                        dict(zip(("attempt", "at", "url", "status", "error", "duration_ms"), row, strict=True))
                        for row in log
                    ],
                }
            )
        return result

    def pending_count(self) -> int:
        (count,) = self._db.execute("SELECT count(*) FROM deliveries WHERE state = 'pending'").fetchone()
        return int(count)
