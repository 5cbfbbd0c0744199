"""Venue generators (pure): seat layouts for the demo, tests and benchmarks.

`fan_venue` lays rows out in arcs facing a stage at (0, 0), split into
sections with tiers by distance: VIP in the front centre, PREMIUM behind,
REGULAR elsewhere. Any size from a handful of seats to tens of thousands.
"""

from __future__ import annotations

import math
from typing import Any

TIER_PRICES = {"VIP": 15000, "PREMIUM": 9000, "REGULAR": 5000}


def _row_label(index: int) -> str:
    """A, B, ..., Z, AA, AB, ... (spreadsheet style)."""
    label = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        label = chr(ord("A") + rest) + label
    return label


def fan_venue(
    target_seats: int = 3000,
    *,
    event_id: str | None = None,
    name: str = "Seatmap Hall",
    starts_at: str = "2026-12-31T20:00:00Z",
    currency: str = "usd",
) -> dict[str, Any]:
    """A create-event body with about `target_seats` seats (exactly, for small targets)."""
    sections = [("Stalls Left", -1), ("Stalls Centre", 0), ("Stalls Right", 1)]
    # Rows grow by two seats per section per row, up to a cap, until the target is met.
    first_row_seats = max(4, min(24, target_seats // 60 or 4))
    widest = max(first_row_seats, 40)
    rows = 0
    while sum(len(sections) * min(widest, first_row_seats + 2 * r) for r in range(rows)) < target_seats:
        rows += 1
    seats: list[dict[str, Any]] = []
    spread = math.radians(26)  # angle each section covers
    for r in range(rows):
        radius = 8.0 + 1.0 * r
        per_section = min(widest, first_row_seats + 2 * r)
        row = _row_label(r)
        for section, side in sections:
            centre = side * (spread + math.radians(2))
            for n in range(per_section):
                if len(seats) >= target_seats:
                    break
                angle = centre + spread * ((n + 0.5) / per_section - 0.5)
                tier = (
                    "VIP" if side == 0 and r < max(1, rows // 6) else "PREMIUM" if r < max(2, rows // 3) else "REGULAR"
                )
                seats.append(
                    {
                        "id": f"{section.split()[-1][0]}{row}-{n + 1}",
                        "section": section,
                        "row": row,
                        "number": n + 1,
                        "x": round(radius * math.sin(angle), 3),
                        "y": round(radius * math.cos(angle), 3),
                        "tier": tier,
                        "price_cents": TIER_PRICES[tier],
                    }
                )
    body: dict[str, Any] = {
        "name": name,
        "starts_at": starts_at,
        "currency": currency,
        "focal_point": {"x": 0.0, "y": 0.0},
        "seats": seats,
    }
    if event_id is not None:
        body["id"] = event_id
    return body


def grid_venue(
    rows: int,
    per_row: int,
    *,
    event_id: str | None = None,
    section: str = "Stalls",
    tier_of_row: dict[int, str] | None = None,
) -> dict[str, Any]:
    """A plain rectangle: rows A.. at y = 1.., seats 1..per_row at x = 1..; stage at y = 0."""
    seats = []
    for r in range(rows):
        tier = (tier_of_row or {}).get(r, "REGULAR")
        for n in range(1, per_row + 1):
            seats.append(
                {
                    "id": f"{_row_label(r)}-{n}",
                    "section": section,
                    "row": _row_label(r),
                    "number": n,
                    "x": float(n),
                    "y": float(r + 1),
                    "tier": tier,
                    "price_cents": TIER_PRICES[tier],
                }
            )
    body: dict[str, Any] = {"name": f"{rows}x{per_row} grid", "currency": "usd", "seats": seats}
    if event_id is not None:
        body["id"] = event_id
    body["focal_point"] = {"x": (per_row + 1) / 2, "y": 0.0}
    return body
