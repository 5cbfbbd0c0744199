"""The end of a drop or a replay: let payments settle, bring every client's
map to the server's final version, and check the invariants
(`loadtest.invariants`) against what the clients saw and what the server
and the payment gateway say."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any

import stripe

from . import invariants
from .procs import Workers
from .report import Progress
from .stack import Stack

SETTLED_ORDER = {"confirmed", "cancelled", "refunded", "expired", "partially_refunded"}


async def orders_of(stack: Stack, event_id: str) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
    """Every order of the event by id, and the confirmed ones (`?status=confirmed`)."""
    async with stack.admin() as admin:
        everything = await admin.get(f"/api/events/{event_id}/orders")
        everything.raise_for_status()
        confirmed = await admin.get(f"/api/events/{event_id}/orders", params={"status": "confirmed"})
        confirmed.raise_for_status()
    return {o["order_id"]: o for o in everything.json()["orders"]}, confirmed.json()["orders"]


def gateway_client(gateway: str) -> stripe.StripeClient:
    return stripe.StripeClient(
        "sk_test_loadtest",
        base_addresses={"api": gateway},  # type: ignore[typeddict-item]
        http_client=stripe.HTTPXClient(timeout=30),
    )


async def settle_payments(
    stack: Stack, gateway: str | None, payments: list[dict[str, Any]], timeout: float, progress: Progress
) -> list[dict[str, Any]]:
    """Wait (up to `timeout`) until each successful payment's PaymentIntent and
    order are final; returns them as `invariants.payments` takes them."""
    paid = [p for p in payments if p.get("ok")]
    if not paid:
        return []
    if gateway is None:
        raise RuntimeError("payments were made but the gateway's URL is unknown")
    client = gateway_client(gateway)
    settled: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + timeout
    async with stack.admin() as admin:
        while True:
            for payment in paid:
                pi_id = payment["payment_intent"]
                if pi_id in settled:
                    continue
                intent = await client.v1.payment_intents.retrieve_async(pi_id, {"expand": ["latest_charge"]})
                response = await admin.get(f"/api/orders/{payment['order_id']}")
                order = response.json() if response.status_code == 200 else {"status": f"http {response.status_code}"}
                final_pi = intent.status in ("succeeded", "canceled")
                if (final_pi and order.get("status") in SETTLED_ORDER) or time.monotonic() > deadline:
                    charge = intent.latest_charge if not isinstance(intent.latest_charge, str) else None
                    settled[pi_id] = {
                        "payment_intent": pi_id,
                        "order_id": payment["order_id"],
                        "pi_status": intent.status,
                        "order_status": order.get("status"),
                        "amount": intent.amount,
                        "amount_refunded": getattr(charge, "amount_refunded", 0) if charge else 0,
                    }
            if len(settled) == len(paid) or time.monotonic() > deadline:
                break
            progress(f"settling payments: {len(settled)}/{len(paid)} final")
            await asyncio.sleep(0.5)
    return list(settled.values())


async def converge(
    workers: Workers, stack: Stack, event_id: str, clients: int, progress: Progress, timeout: float = 30.0
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Read the server's map and compare every client's with it at that version.

    Retried while the map keeps changing (holds expire on their own) or a
    coalesced diff spans the version read; returns (verdicts, availability)."""
    deadline = time.monotonic() + timeout
    verdicts: dict[str, Any] = {"counts": {}, "evidence": [], "mismatched_frames": 0}
    availability: dict[str, Any] = {}
    while True:
        availability = await stack.availability(event_id)
        target = availability["version"]
        while time.monotonic() < deadline:
            found = await workers.call("versions")
            if all(r["min"] >= target or r["open"] == 0 for r in found):
                break
            await asyncio.sleep(0.1)
        parts = await workers.call(
            "verify", expected=availability["seats"], version=target, epoch=availability["epoch"]
        )
        counts: Counter[str] = Counter()
        evidence: list[dict[str, Any]] = []
        for part in parts:
            counts.update(part["counts"])
            evidence += part["evidence"]
        verdicts = {
            "counts": dict(counts),
            "evidence": evidence[:10],
            "mismatched_frames": sum(p["mismatched_frames"] for p in parts),
            "version": target,
            "epoch": availability["epoch"],
        }
        unsettled = counts.get("indeterminate", 0) + counts.get("behind", 0)
        if not unsettled or time.monotonic() > deadline:
            break
        progress(f"maps: {unsettled} client(s) not comparable at version {target} yet, retrying")
        await asyncio.sleep(0.3)
    progress(
        f"maps at version {verdicts.get('version')}: {verdicts['counts'].get('converged', 0):,}/{clients:,} "
        f"equal to GET /availability"
    )
    return verdicts, availability


async def check(
    stack: Stack,
    event_id: str,
    done: dict[str, list[dict[str, Any]]],
    verdicts: dict[str, Any],
    availability: dict[str, Any],
    settled: list[dict[str, Any]],
    hold_ms: int,
    clients: int,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Every invariant; (violations, what was checked)."""
    orders, confirmed = await orders_of(stack, event_id)
    violations = []
    violations += invariants.double_grants(done["grants"], done["releases"], done["checkouts"], orders, hold_ms)
    violations += invariants.double_orders(confirmed)
    violations += invariants.server_state(availability, confirmed)
    violations += invariants.payments(settled)
    violations += invariants.maps(verdicts, clients)
    statuses = Counter(o["status"] for o in orders.values())
    checked = {
        "grants": len(done["grants"]),
        "releases": len(done["releases"]),
        "checkouts": len(done["checkouts"]),
        "payments_succeeded": len(settled),
        "orders": dict(statuses),
        "confirmed_seats": sum(len(o["seats"]) for o in confirmed),
        "maps": verdicts,
        "final": availability.get("summary"),
    }
    return violations, checked
