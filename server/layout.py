"""Seat layout geometry: pure functions, no I/O.

Turns an event's seats into what the live side needs: the layout order
(the order of `GET /api/events/{id}` seats, which the compact snapshot
follows), rows of side-by-side seats in seat-number order, each seat's
distance to the focal point (the stage), and the msgpack rows that
best_available.lua scans nearest row first.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import msgspec

TIER_LETTERS = {"REGULAR": "R", "PREMIUM": "P", "VIP": "V"}
# Distances go to Lua as integers (thousandths of a layout unit): exact sums,
# no float formatting between Python and Lua.
DISTANCE_SCALE = 1000


@dataclass(frozen=True, slots=True)
class SeatGeometry:
    id: str
    section: str
    row: str
    number: int
    x: float
    y: float
    tier: str


def default_focal_point(seats: Sequence[SeatGeometry]) -> tuple[float, float]:
    """The stage is where the seats' smallest y lies, centred across the seats' x range."""
    xs = [seat.x for seat in seats]
    return ((min(xs) + max(xs)) / 2.0, min(seat.y for seat in seats))


@dataclass(frozen=True)
class LiveLayout:
    """The layout as best_available.lua reads it (see its header)."""

    meta: bytes
    rows: list[bytes]


def live_layout(seats: Sequence[SeatGeometry], focal: tuple[float, float]) -> LiveLayout:
    fx, fy = focal
    rows: dict[tuple[str, str], list[SeatGeometry]] = {}
    for seat in seats:
        rows.setdefault((seat.section, seat.row), []).append(seat)

    built = []
    for (section, _row), members in rows.items():
        members.sort(key=lambda seat: seat.number)
        distances = [round(math.hypot(seat.x - fx, seat.y - fy) * DISTANCE_SCALE) for seat in members]
        tiers = "".join(TIER_LETTERS[seat.tier] for seat in members)
        built.append((min(distances), section, members, distances, tiers))
    # Nearest row first, so the Lua scan can stop early; ties broken stably.
    built.sort(key=lambda row: (row[0], row[1], row[2][0].row))

    encode = msgspec.msgpack.encode
    meta = encode(
        {
            "rows": len(built),
            "sec": [row[1] for row in built],
            "tiers": ["".join(sorted(set(row[4]))) for row in built],
            "min": [row[0] for row in built],
        }
    )
    blobs = [encode({"ids": [s.id for s in row[2]], "d": row[3], "t": row[4]}) for row in built]
    return LiveLayout(meta=meta, rows=blobs)
