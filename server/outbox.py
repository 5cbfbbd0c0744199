"""The outbox: effects decided inside an order's transaction and carried out
after it commits — capturing, cancelling or refunding a payment through
Stripe, and putting an order's seats back on sale in Redis.

Each action runs under the order's row lock and first re-reads the order, so
an action that a later decision made obsolete (a release of seats the order
has since booked again, a capture of an order since cancelled) is skipped
rather than done. Stripe calls carry the action's idempotency key, so a
retry after a crash never moves money twice. Failures are retried with
backoff by `run()`, which every server process runs.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import asyncpg
import stripe

from . import ledger
from .catalog import EventCatalog
from .order_states import HOLDS_SEATS, OWNS_SEATS, OrderStatus
from .payments import Payments
from .reservations import Reservations

log = logging.getLogger("seatmap.outbox")
MAX_BACKOFF = 300.0


class Outbox:
    def __init__(
        self, pool: asyncpg.Pool, payments: Payments, reservations: Reservations, catalog: EventCatalog
    ) -> None:
        self.pool = pool
        self.payments = payments
        self.reservations = reservations
        self.catalog = catalog
        self.wake = asyncio.Event()
        self._kicked: set[asyncio.Task[None]] = set()

    async def run(self, interval: float = 1.0) -> None:
        """Carry out due actions forever (supervised by the app)."""
        while True:
            while await self.run_due():
                pass
            self.wake.clear()
            try:
                await asyncio.wait_for(self.wake.wait(), interval)
            except TimeoutError:
                pass

    def kick(self, order_id: str) -> None:
        """Carry out an order's actions soon, without making the caller wait
        (a webhook answers first); `run()` retries whatever this leaves."""
        task = asyncio.get_running_loop().create_task(self._run_quietly(order_id))
        self._kicked.add(task)
        task.add_done_callback(self._kicked.discard)

    async def _run_quietly(self, order_id: str) -> None:
        try:
            await self.run_for(order_id)
        except Exception:
            log.exception("outbox run for %s failed; the background loop will retry", order_id)

    async def run_for(self, order_id: str) -> None:
        """Carry out an order's pending actions now (right after its transaction)."""
        await self._run("order_id = $1 AND done_at IS NULL", order_id)

    async def run_due(self, limit: int = 50) -> int:
        return await self._run("done_at IS NULL AND next_attempt_at <= now()", None, limit)

    async def _run(self, where: str, arg: Any, limit: int = 50) -> int:
        args = [arg] if arg is not None else []
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(f"SELECT id FROM outbox WHERE {where} ORDER BY id LIMIT {int(limit)}", *args)
        done = 0
        for row in rows:
            done += await self._run_one(row["id"])
        return done

    async def _run_one(self, action_id: int) -> int:
        async with self.pool.acquire() as conn, conn.transaction():
            action = await conn.fetchrow(
                "SELECT * FROM outbox WHERE id = $1 AND done_at IS NULL FOR UPDATE SKIP LOCKED", action_id
            )
            if action is None:
                return 0  # done meanwhile, or another process is doing it
            order = await ledger.fetch_order(conn, action["order_id"], lock=True)
            assert order is not None
            try:
                result = await self._carry_out(conn, action, order)
            except Exception as error:  # retried with backoff; a lost action would lose money or seats
                attempts = action["attempts"] + 1
                delay = min(MAX_BACKOFF, 0.5 * 2**attempts)
                log.warning(
                    "outbox %s for %s failed (attempt %d, retry in %.0fs): %s",
                    action["action"],
                    order.id,
                    attempts,
                    delay,
                    error,
                )
                await conn.execute(
                    "UPDATE outbox SET attempts = $2, last_error = $3,"
                    " next_attempt_at = now() + make_interval(secs => $4) WHERE id = $1",
                    action_id,
                    attempts,
                    f"{type(error).__name__}: {error}"[:500],
                    delay,
                )
                return 0
            await conn.execute(
                "UPDATE outbox SET done_at = now(), attempts = attempts + 1, last_error = $2 WHERE id = $1",
                action_id,
                result,
            )
            log.info("outbox %s for %s: %s", action["action"], order.id, result or "done")
            return 1

    async def _carry_out(self, conn: asyncpg.Connection, action: asyncpg.Record, order: ledger.Order) -> str | None:
        kind, key = action["action"], action["idempotency_key"]
        if kind == "free_seats":
            if order.status in HOLDS_SEATS:
                return "skipped: the order holds its seats again"
            event = await self.catalog.get(order.event_id)
            freed = await self.reservations.free(event, order.buyer_id, order.id, order.seats)
            return f"freed {freed}"
        assert order.payment_intent_id
        pi = order.payment_intent_id
        if kind == "capture":
            if order.status not in OWNS_SEATS:
                return "skipped: the order no longer owns its seats"
            try:
                intent = await self.payments.capture(pi, key)
            except stripe.InvalidRequestError:
                intent = await self.payments.retrieve(pi)
                if intent.view.status == "succeeded":
                    return "already captured"
                if intent.view.status == "canceled":
                    # The authorization is gone: nothing was paid, so no seats either.
                    await ledger.change_status(conn, order, OrderStatus.CANCELLED, "capture_failed")
                    await ledger.enqueue(conn, order.id, "free_seats", f"free-{order.id}-capture-failed")
                    return "authorization gone: order cancelled"
                raise
            await ledger.record_payment(
                conn,
                order,
                intent.view.status,
                intent.view.amount,
                intent.view.currency,
                intent.view.amount_received,
            )
            return None
        if kind == "cancel_payment":
            if order.status in OWNS_SEATS:
                return "skipped: the order was booked since"
            try:
                await self.payments.cancel(pi, key)
            except stripe.InvalidRequestError:
                intent = await self.payments.retrieve(pi)
                if intent.view.status == "succeeded":
                    # Captured after all: give it back as a refund instead.
                    await ledger.enqueue(conn, order.id, "refund", f"giveback-{order.id}", intent.view.amount_received)
                    return "already captured: refunding instead"
                if intent.view.status == "canceled":
                    return ledger.ALREADY_RELEASED
                raise
            return None
        if kind == "refund":
            amount = action["amount_cents"] or order.amount_cents
            if order.status in OWNS_SEATS:
                return "skipped: the order was booked since"
            refund_id = await self.payments.refund(pi, amount, key, "seats_unavailable")
            await ledger.record_refund(conn, refund_id, order.id, amount, "seats_unavailable")
            if order.status == OrderStatus.REFUNDED:
                await ledger.set_refunded(conn, order.id, min(amount, order.amount_cents))
            return None
        raise ValueError(f"unknown outbox action {kind!r}")
