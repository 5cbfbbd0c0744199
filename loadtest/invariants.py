"""The promises a drop or a replay checks at its end, as plain functions over
what the clients saw and what the server says, each returning violations
with their evidence (empty: the promise held).

1. No seat granted to two live holds at once (`double_grants`): from every
   grant the clients received, with its expiry, and the releases and
   checkouts that ended it. A hold's own grant time is exact (`expires_at`
   minus the hold's life, on Redis's clock, the same host clock the clients
   use); a hold *definitely* owns its seats from then until the earliest of
   its expiry, the sending of its release, or the sending of its checkout,
   after which the order definitely owns them until the order's
   `expires_at` (or forever, once confirmed). A grant of the same seat to
   another hold inside such a window is a violation. Only certain overlaps
   count (a tolerance absorbs millisecond rounding), so a correct server is
   never accused.
2. The server's state agrees (`server_state`): the seats shown `booked` are
   exactly the seats of confirmed orders.
3. No seat in two confirmed orders (`double_orders`).
4. Every successful payment is booked or given back (`payments`): each
   PaymentIntent a client confirmed successfully is, once settled,
   `succeeded` with its order `confirmed` (or refunded in full), or
   `canceled` with its order not confirmed.
5. Every client's map equals `GET …/availability` (`maps`), from the
   verification of each client's snapshot plus diffs (`maps.MapTracker`).
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

TOLERANCE_MS = 5.0
FOREVER = math.inf
OWNER_FIELDS = ("owner", "client", "hold_id", "order_id", "status")


def _iso(ms: float) -> str:
    import datetime

    if math.isinf(ms):
        return "∞"
    return datetime.datetime.fromtimestamp(ms / 1000, datetime.UTC).strftime("%H:%M:%S.%f")[:-3] + "Z"


def ownership(
    grants: list[dict[str, Any]],
    releases: list[dict[str, Any]],
    checkouts: list[dict[str, Any]],
    orders: dict[str, dict[str, Any]],
    hold_ms: int,
) -> dict[str, list[dict[str, Any]]]:
    """Per seat, the windows (ms) in which a hold or its order certainly owned it."""
    released: dict[tuple[str, str], float] = {}
    for release in releases:
        if release.get("ok"):
            for seat in release["seats"]:
                key = (release["hold_id"], seat)
                released[key] = min(released.get(key, FOREVER), release["send"] * 1000)
    checked_out: dict[str, dict[str, Any]] = {c["hold_id"]: c for c in checkouts}
    windows: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for grant in grants:
        granted_at = grant["expires_ms"] - hold_ms if grant.get("new_hold") else grant["reply"] * 1000
        checkout = checked_out.get(grant["hold_id"])
        for seat in grant["seats"]:
            end = min(grant["expires_ms"], released.get((grant["hold_id"], seat), FOREVER))
            if checkout is not None:
                end = min(end, checkout["send"] * 1000)
            windows[seat].append(
                {"owner": "hold", "client": grant["client"], "hold_id": grant["hold_id"],
                 "start": granted_at, "end": end, "grant": grant}
            )  # fmt: skip
            if checkout is not None and seat in checkout["seats"]:
                order = orders.get(checkout["order_id"], {})
                status = order.get("status")
                if status in ("confirmed", "partially_refunded"):
                    order_end = FOREVER
                elif status == "expired":
                    order_end = checkout["expires_ms"]
                else:
                    continue  # pending, cancelled, refunded: no certain end, so no claim
                windows[seat].append(
                    {"owner": "order", "client": checkout["client"], "hold_id": grant["hold_id"],
                     "order_id": checkout["order_id"], "status": status,
                     "start": checkout["reply"] * 1000, "end": order_end}
                )  # fmt: skip
    return windows


def double_grants(
    grants: list[dict[str, Any]],
    releases: list[dict[str, Any]],
    checkouts: list[dict[str, Any]],
    orders: dict[str, dict[str, Any]],
    hold_ms: int,
    tolerance_ms: float = TOLERANCE_MS,
) -> list[dict[str, Any]]:
    """Grants of a seat made while another hold or order certainly owned it."""
    windows = ownership(grants, releases, checkouts, orders, hold_ms)
    violations = []
    for seat, owned in windows.items():
        holds = [w for w in owned if w["owner"] == "hold"]
        for grant in holds:
            # when this grant happened: exact for a new hold, else between its request and reply
            first = grant["grant"]
            early = grant["start"] if first.get("new_hold") else first["send"] * 1000
            late = grant["start"] if first.get("new_hold") else first["reply"] * 1000
            for other in owned:
                if other["hold_id"] == grant["hold_id"]:
                    continue
                if other["start"] + tolerance_ms <= early and late <= other["end"] - tolerance_ms:
                    violations.append(
                        {
                            "invariant": "no seat granted to two live holds at once",
                            "seat": seat,
                            "granted_to": {"client": grant["client"], "hold_id": grant["hold_id"],
                                           "at": _iso(early)},
                            "while_owned_by": {k: v for k, v in other.items() if k in OWNER_FIELDS}
                            | {"from": _iso(other["start"]), "until": _iso(other["end"])},
                        }
                    )  # fmt: skip
    violations.sort(key=lambda v: (v["seat"], v["granted_to"]["at"]))
    return violations


def double_orders(confirmed: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Seats that appear in more than one confirmed order."""
    by_seat: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for order in confirmed:
        for seat in order["seats"]:
            by_seat[seat].append(order)
    return [
        {
            "invariant": "no seat in two confirmed orders",
            "seat": seat,
            "orders": [
                {"order_id": o["order_id"], "buyer_id": o["buyer_id"], "confirmed_at": o.get("confirmed_at")}
                for o in orders
            ],
        }
        for seat, orders in sorted(by_seat.items())
        if len(orders) > 1
    ]


def server_state(availability: dict[str, Any], confirmed: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The map's booked seats must be exactly the confirmed orders' seats."""
    booked = {seat for seat, state in availability["seats"].items() if state == "booked"}
    owned = {seat: o["order_id"] for o in confirmed for seat in o["seats"]}
    violations = []
    for seat in sorted(booked - set(owned)):
        violations.append(
            {"invariant": "booked seats are confirmed orders' seats", "seat": seat,
             "problem": "shown booked but in no confirmed order", "version": availability["version"]}
        )  # fmt: skip
    for seat in sorted(set(owned) - booked):
        violations.append(
            {"invariant": "booked seats are confirmed orders' seats", "seat": seat, "order_id": owned[seat],
             "problem": f"in a confirmed order but shown {availability['seats'].get(seat)}",
             "version": availability["version"]}
        )  # fmt: skip
    return violations


def payments(settled: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each successful payment, settled: `{"payment_intent", "order_id", "pi_status", "order_status",
    "amount", "amount_refunded"}`; booked or given back."""
    violations = []
    for p in settled:
        pi, order = p["pi_status"], p["order_status"]
        if pi == "succeeded" and order == "confirmed":
            continue
        if pi == "succeeded" and order in ("refunded", "cancelled") and p.get("amount_refunded") == p.get("amount"):
            continue
        if pi == "canceled" and order != "confirmed":
            continue
        if pi == "succeeded" and order == "partially_refunded":
            continue
        violations.append(
            {
                "invariant": "every successful payment booked or given back",
                "payment_intent": p["payment_intent"],
                "order_id": p["order_id"],
                "payment_intent_status": pi,
                "order_status": order,
                "amount": p.get("amount"),
                "amount_refunded": p.get("amount_refunded"),
            }
        )
    return violations


def maps(verdicts: dict[str, Any], clients: int) -> list[dict[str, Any]]:
    """Clients whose map differs from the server's, or could not be compared."""
    counts = verdicts["counts"]
    # "indeterminate": a coalesced diff spans the compared version (retried by the caller, not a fault)
    bad = {k: v for k, v in counts.items() if k not in ("converged", "indeterminate") and v}
    if not bad and not verdicts.get("mismatched_frames"):
        return []
    return [
        {
            "invariant": "every client's map equals GET /availability",
            "converged": counts.get("converged", 0),
            "clients": clients,
            "others": bad,
            "mismatched_frames": verdicts.get("mismatched_frames", 0),
            "evidence": verdicts.get("evidence", []),
        }
    ]


def describe(violation: dict[str, Any]) -> str:
    """One readable line per violation, for the terminal."""
    name = violation["invariant"]
    rest = {k: v for k, v in violation.items() if k != "invariant"}
    return f"VIOLATION {name}: {rest}"
