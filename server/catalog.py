"""The event catalog: events and their seat layouts, stored in Postgres.

An event's layout never changes after creation, so each process keeps the
events it has seen in memory, with the encoded `GET /api/events/{id}` body
made once. This module owns the `events` and `seats` tables and that cache;
it never touches Redis.
"""

from __future__ import annotations

import gzip
import hashlib
import secrets
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

import asyncpg

from .errors import Conflict, NotFound, ValidationError
from .layout import SeatGeometry, default_focal_point
from .protocol import CreateEvent, EventOut, Limits, Point, SeatSpec, encoder


@dataclass(eq=False)
class Event:
    id: str
    name: str
    starts_at: datetime | None
    currency: str
    focal: tuple[float, float]
    seats: list[SeatSpec]
    index: dict[str, int] = field(init=False)  # seat id -> position in layout order
    sections: frozenset[str] = field(init=False)
    _body: EncodedBody | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.index = {seat.id: position for position, seat in enumerate(self.seats)}
        self.sections = frozenset(seat.section for seat in self.seats)

    def geometry(self) -> list[SeatGeometry]:
        return [SeatGeometry(s.id, s.section, s.row, s.number, s.x, s.y, s.tier) for s in self.seats]

    def price_of(self, seat_id: str) -> int:
        return self.seats[self.index[seat_id]].price_cents

    def body(self, limits: Limits) -> EncodedBody:
        """The `GET /api/events/{id}` answer, encoded and compressed once:
        a layout never changes, and 20,000 seats are 2.4 MB of JSON."""
        if self._body is None:
            out = EventOut(
                id=self.id,
                name=self.name,
                starts_at=self.starts_at,
                currency=self.currency,
                focal_point=Point(x=self.focal[0], y=self.focal[1]),
                limits=limits,
                seats=self.seats,
            )
            raw = encoder.encode(out)
            self._body = EncodedBody(raw, gzip.compress(raw, 6), '"' + hashlib.sha1(raw).hexdigest()[:20] + '"')
        return self._body


@dataclass(frozen=True, slots=True)
class EncodedBody:
    raw: bytes
    gzipped: bytes
    etag: str


def event_from_request(spec: CreateEvent) -> Event:
    """Validate a create-event request (pure) and build the event it describes."""
    if not spec.seats:
        raise ValidationError("an event needs at least one seat")
    duplicates = sorted(seat_id for seat_id, n in Counter(s.id for s in spec.seats).items() if n > 1)
    if duplicates:
        raise ValidationError("seat ids must be unique within an event", seats=duplicates[:50])
    places = Counter((s.section, s.row, s.number) for s in spec.seats)
    clashes = [f"{sec}/{row}/{num}" for (sec, row, num), n in places.items() if n > 1]
    if clashes:
        raise ValidationError("two seats share a section, row and number", places=clashes[:50])
    seats = list(spec.seats)
    event = Event(
        id=spec.id or "ev-" + secrets.token_hex(5),
        name=spec.name,
        starts_at=spec.starts_at,
        currency=spec.currency,
        focal=(0.0, 0.0),
        seats=seats,
    )
    if spec.focal_point is not None:
        event.focal = (spec.focal_point.x, spec.focal_point.y)
    else:
        event.focal = default_focal_point(event.geometry())
    return event


class EventCatalog:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self._events: dict[str, Event] = {}

    async def create(self, event: Event) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            try:
                await conn.execute(
                    "INSERT INTO events (id, name, starts_at, currency, focal_x, focal_y)"
                    " VALUES ($1, $2, $3, $4, $5, $6)",
                    event.id,
                    event.name,
                    event.starts_at,
                    event.currency,
                    event.focal[0],
                    event.focal[1],
                )
            except asyncpg.UniqueViolationError:
                raise Conflict(f"an event with id {event.id!r} already exists") from None
            await conn.copy_records_to_table(
                "seats",
                columns=[
                    "event_id",
                    "position",
                    "id",
                    "section",
                    "row",
                    "number",
                    "x",
                    "y",
                    "tier",
                    "price_cents",
                ],
                records=[
                    (event.id, i, s.id, s.section, s.row, s.number, s.x, s.y, s.tier, s.price_cents)
                    for i, s in enumerate(event.seats)
                ],
            )
        self._events[event.id] = event

    async def get(self, event_id: str) -> Event:
        event = self._events.get(event_id)
        if event is None:
            event = await self._load(event_id)
            if event is None:
                raise NotFound(f"no event {event_id!r}")
            self._events[event_id] = event
        return event

    async def _load(self, event_id: str) -> Event | None:
        async with self.pool.acquire() as conn:
            row = await conn.fetchrow(
                "SELECT id, name, starts_at, currency, focal_x, focal_y FROM events WHERE id = $1", event_id
            )
            if row is None:
                return None
            seat_rows = await conn.fetch(
                "SELECT id, section, row, number, x, y, tier, price_cents FROM seats"
                " WHERE event_id = $1 ORDER BY position",
                event_id,
            )
        seats = [SeatSpec(*seat) for seat in seat_rows]
        return Event(
            id=row["id"],
            name=row["name"],
            starts_at=row["starts_at"],
            currency=row["currency"],
            focal=(row["focal_x"], row["focal_y"]),
            seats=seats,
        )

    async def event_ids(self) -> list[str]:
        async with self.pool.acquire() as conn:
            return [r["id"] for r in await conn.fetch("SELECT id FROM events ORDER BY created_at")]

    async def list_events(self) -> list[dict]:
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT e.id, e.name, e.starts_at, e.currency, count(s.id) AS seats"
                " FROM events e JOIN seats s ON s.event_id = e.id"
                " GROUP BY e.id ORDER BY e.starts_at NULLS LAST, e.created_at"
            )
        return [dict(r) for r in rows]
