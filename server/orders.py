"""Orders: checkout, settling payments, refunds and lapsed checkouts.

The sequence that keeps every promise:

* checkout: order row (pending, seats live) in Postgres first, then the
  hold's seats move to a reservation in Redis, then the PaymentIntent
  (idempotency key from the order). A repeat finds the order by its hold.
* a Stripe event: verified, recorded and acted on in one transaction that
  holds the order's row lock. The decision uses the PaymentIntent as Stripe
  reports it *now* (`payment_step`), so duplicates, reordering and
  concurrency all end in the same state. Booking claims the seats in Redis
  first (atomic, idempotent), then confirms in Postgres, whose unique index
  is the last word. Money moves (capture, cancel, refund) and seat releases
  go to the outbox in that same transaction and run after it commits.
* a lapsed checkout: expired in Postgres, then its seats are freed through
  the outbox. A payment that arrives later books the seats if they are still
  free, and is given back otherwise.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import asyncpg
import stripe

from . import ledger
from .catalog import Event, EventCatalog
from .errors import Conflict, NotFound, SeatsUnavailable, ValidationError
from .holds import HoldEngine, event_of_hold
from .ledger import Order
from .metrics import METRICS
from .order_states import OWNS_SEATS, OrderStatus, PaymentStep, PaymentView, payment_step, refund_status
from .outbox import Outbox
from .payments import Intent, Payments
from .reservations import Reservations
from .settings import Settings

log = logging.getLogger("seatmap.orders")
S = OrderStatus
PAYMENT_EVENTS = {
    "payment_intent.succeeded",
    "payment_intent.amount_capturable_updated",
    "payment_intent.payment_failed",
    "payment_intent.canceled",
}


class Orders:
    def __init__(
        self,
        pool: asyncpg.Pool,
        catalog: EventCatalog,
        holds: HoldEngine,
        reservations: Reservations,
        payments: Payments,
        outbox: Outbox,
        settings: Settings,
    ) -> None:
        self.pool = pool
        self.catalog = catalog
        self.holds = holds
        self.reservations = reservations
        self.payments = payments
        self.outbox = outbox
        self.settings = settings

    # ------------------------------------------------------------------ reading

    async def get(self, order_id: str) -> Order:
        """The order as shown to buyers and organizers, its PaymentRecord included."""
        async with self.pool.acquire() as conn:
            order = await ledger.read_order(conn, order_id)
        if order is None:
            raise NotFound("no such order")
        return order

    async def list(self, **filters: Any) -> list[Order]:
        async with self.pool.acquire() as conn:
            return await ledger.list_orders(conn, **filters)

    def payment_url(self, order: Order) -> str | None:
        if not order.payment_intent_id:
            return None
        return_url = f"{self.settings.public_url or ''}/orders/{order.id}"
        intent = Intent(order.payment_intent_id, order.client_secret or "", PaymentView("", 0, ""))
        return self.payments.payment_url(intent, return_url)

    # ------------------------------------------------------------------ checkout

    async def checkout(self, buyer_id: str, hold_id: str) -> Order:
        event = await self.catalog.get(event_of_hold(hold_id))
        async with self.pool.acquire() as conn:
            existing = await ledger.fetch_order_by_hold(conn, hold_id)
        if existing is not None:
            if existing.buyer_id != buyer_id:
                raise NotFound("no such hold")
            return await self._finish_checkout(event, existing)

        hold = await self.holds.get_hold(event, hold_id)
        if hold is None or hold.buyer_id != buyer_id:
            # A concurrent checkout of this hold may have just turned it into an order.
            async with self.pool.acquire() as conn:
                existing = await ledger.fetch_order_by_hold(conn, hold_id)
            if existing is not None and existing.buyer_id == buyer_id:
                return await self._finish_checkout(event, existing)
            raise NotFound("no such hold: it expired, was released, or is not yours")
        order_id = ledger.new_order_id()
        priced = [(seat, event.price_of(seat)) for seat in hold.seats]
        try:
            async with self.pool.acquire() as conn, conn.transaction():
                await ledger.insert_order(
                    conn,
                    order_id=order_id,
                    event_id=event.id,
                    buyer_id=buyer_id,
                    hold_id=hold_id,
                    seats=priced,
                    currency=event.currency,
                    checkout_seconds=self.settings.checkout_seconds,
                )
        except asyncpg.UniqueViolationError as error:
            if error.constraint_name == "orders_hold_id_key":  # a concurrent checkout of the same hold won
                return await self.checkout(buyer_id, hold_id)
            raise SeatsUnavailable("a seat of this hold is already in another order", seats=[]) from None
        async with self.pool.acquire() as conn:
            order = await ledger.fetch_order(conn, order_id)
        assert order is not None
        return await self._finish_checkout(event, order)

    async def _finish_checkout(self, event: Event, order: Order) -> Order:
        """Reserve the seats and make the PaymentIntent, each only if not done yet."""
        if order.status != S.PENDING:
            return order
        missing = await self.reservations.reserve(event, order.buyer_id, order.hold_id, order.id, order.seats)
        if missing:
            # The hold lapsed or changed before its seats could be reserved: the
            # order never held them.
            async with self.pool.acquire() as conn, conn.transaction():
                locked = await ledger.fetch_order(conn, order.id, lock=True)
                assert locked is not None
                if locked.status == S.PENDING:
                    await ledger.change_status(conn, locked, S.CANCELLED, "checkout:hold_lost", {"seats": missing})
            raise NotFound("the hold expired or changed before checkout; hold the seats again")
        if order.amount_cents == 0:
            return await self._confirm_free(event, order)
        if order.payment_intent_id is None:
            # Under the order's row lock: concurrent checkouts of one hold wait here
            # and find the PaymentIntent made, rather than racing Stripe with one
            # idempotency key (Stripe answers such a race with 409).
            async with self.pool.acquire() as conn, conn.transaction():
                locked = await ledger.fetch_order(conn, order.id, lock=True)
                assert locked is not None
                if locked.payment_intent_id is None:
                    intent = await self.payments.create_intent(
                        order.id,
                        order.amount_cents,
                        order.currency,
                        {"event_id": order.event_id, "buyer_id": order.buyer_id},
                        f"{event.name}: {len(order.seats)} seat(s)",
                    )
                    await ledger.set_payment_intent(conn, order.id, intent.id, intent.client_secret)
                    locked.payment_intent_id, locked.client_secret = intent.id, intent.client_secret
                    view = intent.view
                    await ledger.record_payment(conn, locked, view.status, view.amount, view.currency, 0)
            order.payment_intent_id, order.client_secret = locked.payment_intent_id, locked.client_secret
        return order

    async def _confirm_free(self, event: Event, order: Order) -> Order:
        taken = await self.reservations.book(event, order.buyer_id, order.id, order.seats)
        async with self.pool.acquire() as conn, conn.transaction():
            locked = await ledger.fetch_order(conn, order.id, lock=True)
            assert locked is not None
            if locked.status == S.PENDING and not taken:
                await ledger.change_status(conn, locked, S.CONFIRMED, "checkout:free")
        return await self.get(order.id)

    # ------------------------------------------------------------------ webhooks

    async def handle_webhook(self, payload: bytes, signature: str | None) -> dict[str, Any]:
        event = self.payments.verify(payload, signature)
        event_type = str(event.type)
        obj = event.data.object
        if event_type in PAYMENT_EVENTS:
            intent_id = obj.id
        elif event_type == "charge.refunded":
            intent_id = getattr(obj, "payment_intent", None)
        else:
            intent_id = None
        body = json.loads(payload)
        touched: str | None = None
        async with self.pool.acquire() as conn, conn.transaction():
            if not await ledger.claim_webhook(conn, "stripe", event.id, event_type, body):
                METRICS.webhooks.inc(1, event_type, "duplicate")
                return {"received": True, "duplicate": True}
            outcome = "ignored"
            order_id = await self._order_of(conn, obj, intent_id)
            if order_id is not None:
                touched = order_id
                if event_type == "charge.refunded":
                    outcome = await self._sync_refund(conn, order_id, obj, event.id)
                else:
                    error = getattr(getattr(obj, "last_payment_error", None), "message", None)
                    outcome = await self._settle(conn, order_id, str(intent_id), f"webhook:{event.id}", error)
            await ledger.set_webhook_outcome(conn, "stripe", event.id, outcome)
        METRICS.webhooks.inc(1, event_type, outcome)
        log.info("stripe event %s %s: %s", event.id, event_type, outcome)
        if touched is not None:
            self.outbox.kick(touched)
        return {"received": True, "outcome": outcome}

    async def _order_of(self, conn: asyncpg.Connection, obj: Any, intent_id: str | None) -> str | None:
        if not intent_id:
            return None
        found = await ledger.fetch_order_id_by_intent(conn, intent_id)
        if found:
            return found
        metadata = getattr(obj, "metadata", None)
        claimed = getattr(metadata, "order_id", None) if metadata is not None else None
        if claimed and await conn.fetchval("SELECT 1 FROM orders WHERE id = $1", claimed):
            return str(claimed)  # a payment naming an order it is not the PaymentIntent of
        return None

    async def _settle(
        self, conn: asyncpg.Connection, order_id: str, intent_id: str, cause: str, error: str | None = None
    ) -> str:
        """Bring the order in line with its PaymentIntent as Stripe reports it now."""
        order = await ledger.fetch_order(conn, order_id, lock=True)
        assert order is not None
        intent = await self.payments.retrieve(intent_id)
        view = intent.view
        if intent_id != order.payment_intent_id:
            # Money that is not this order's payment: never book on it, give it back.
            return await self._give_back_foreign(conn, order, intent, cause)
        await ledger.record_payment(conn, order, view.status, view.amount, view.currency, view.amount_received, error)
        given_back = await conn.fetchval(
            "SELECT exists(SELECT 1 FROM outbox WHERE order_id = $1 AND action = 'refund')", order.id
        )
        step = payment_step(order.status, order.amount_cents, order.currency, view, given_back=given_back)
        mismatch = view.amount != order.amount_cents or view.currency.lower() != order.currency.lower()
        if step in (PaymentStep.BOOK, PaymentStep.BOOK_THEN_CAPTURE):
            return await self._book(conn, order, step, cause)
        if step is PaymentStep.CANCEL_PAYMENT:
            await ledger.enqueue(conn, order.id, "cancel_payment", ledger.cancel_key(order.id))
            return "amount_mismatch" if mismatch else "authorization_released"
        if step is PaymentStep.REFUND:
            await ledger.enqueue(conn, order.id, "refund", f"giveback-{order.id}", view.amount_received)
            return "amount_mismatch" if mismatch else "payment_refunded"
        if step is PaymentStep.CANCEL_ORDER:
            await ledger.change_status(conn, order, S.CANCELLED, cause, {"payment": "canceled"})
            await ledger.enqueue(conn, order.id, "free_seats", f"free-{order.id}-cancelled")
            return "order_cancelled"
        if view.status == "requires_payment_method":
            return "payment_failed"
        return "no_change"

    async def _book(self, conn: asyncpg.Connection, order: Order, step: PaymentStep, cause: str) -> str:
        captured = step is PaymentStep.BOOK
        if order.status in OWNS_SEATS:
            if not captured:
                await ledger.enqueue(conn, order.id, "capture", f"capture-{order.id}")
            return "already_booked"
        event = await self.catalog.get(order.event_id)
        taken = await self.reservations.book(event, order.buyer_id, order.id, order.seats)
        if not taken:
            try:
                async with conn.transaction():  # savepoint: the unique index may refuse
                    await ledger.change_status(conn, order, S.CONFIRMED, cause)
            except asyncpg.UniqueViolationError:
                taken = order.seats
                await self.reservations.free(event, order.buyer_id, order.id, order.seats)
            else:
                if not captured:
                    await ledger.enqueue(conn, order.id, "capture", f"capture-{order.id}")
                return "booked"
        # Lost the race (the checkout lapsed and a seat went to someone else):
        # nobody is double-booked and the money goes back.
        details = {"taken": taken}
        if captured:
            await ledger.change_status(conn, order, S.REFUNDED, cause, details)
            await ledger.enqueue(conn, order.id, "refund", f"giveback-{order.id}", order.amount_cents)
        else:
            await ledger.change_status(conn, order, S.CANCELLED, cause, details)
            await ledger.enqueue(conn, order.id, "cancel_payment", ledger.cancel_key(order.id))
        await ledger.enqueue(conn, order.id, "free_seats", f"free-{order.id}-lost")
        return "seats_taken_payment_returned"

    async def _give_back_foreign(self, conn: asyncpg.Connection, order: Order, intent: Intent, cause: str) -> str:
        log.warning("payment %s names order %s but is not its PaymentIntent: giving it back", intent.id, order.id)
        await ledger.audit(conn, order.id, order.status, order.status, cause, {"foreign_payment": intent.id})
        if intent.view.status == "requires_capture":
            await self.payments.cancel(intent.id, f"cancel-foreign-{intent.id}")
        elif intent.view.status == "succeeded":
            await self.payments.refund(intent.id, intent.view.amount_received, f"refund-foreign-{intent.id}")
        return "amount_mismatch"

    async def _sync_refund(self, conn: asyncpg.Connection, order_id: str, charge: Any, event_id: str) -> str:
        """`charge.refunded`: the order's refund state follows Stripe's."""
        order = await ledger.fetch_order(conn, order_id, lock=True)
        assert order is not None
        refunded = min(int(getattr(charge, "amount_refunded", 0) or 0), order.amount_cents)
        if refunded <= order.refunded_cents:
            return "no_change"
        await ledger.set_refunded(conn, order.id, refunded)
        if order.status in OWNS_SEATS:
            target = refund_status(order.amount_cents, refunded)
            await ledger.change_status(conn, order, target, f"webhook:{event_id}", {"refunded_cents": refunded})
            if target == S.REFUNDED:
                await ledger.enqueue(conn, order.id, "free_seats", f"free-{order.id}-refunded")
        return "refund_recorded"

    # ------------------------------------------------------------------ refunds

    async def refund(self, order_id: str, amount: int | None, reason: str = "requested_by_organizer") -> Order:
        async with self.pool.acquire() as conn:
            async with conn.transaction():
                order = await ledger.fetch_order(conn, order_id, lock=True)
                if order is None:
                    raise NotFound("no such order")
                if order.status not in OWNS_SEATS:
                    raise Conflict(f"only a confirmed order can be refunded; this one is {order.status}")
                left = order.amount_cents - order.refunded_cents
                amount = left if amount is None else amount
                if amount <= 0 or amount > left:
                    raise ValidationError(
                        f"a refund must be between 1 and the {left} cents not yet refunded",
                        refundable_cents=left,
                    )
                assert order.payment_intent_id
                key = f"refund-{order.id}-{order.refunded_cents}-{amount}"
                try:
                    refund_id = await self.payments.refund(order.payment_intent_id, amount, key, reason)
                except stripe.StripeError as error:
                    raise Conflict(f"the payment provider refused the refund: {error.user_message or error}") from None
                refunded = order.refunded_cents + amount
                await ledger.record_refund(conn, refund_id, order.id, amount, reason)
                await ledger.set_refunded(conn, order.id, refunded)
                target = refund_status(order.amount_cents, refunded)
                await ledger.change_status(conn, order, target, "refund:admin", {"refund": refund_id, "amount": amount})
                if target == S.REFUNDED:
                    await ledger.enqueue(conn, order.id, "free_seats", f"free-{order.id}-refunded")
            await self.outbox.run_for(order.id)
        return await self.get(order_id)

    # ------------------------------------------------------------------ lapsed checkouts

    async def expire_due(self, limit: int = 200) -> int:
        """Expire pending orders past `expires_at`; their seats go back on sale.
        Returns how many due orders were looked at."""
        async with self.pool.acquire() as conn:
            ids = [
                row["id"]
                for row in await conn.fetch(
                    "SELECT id FROM orders WHERE status = 'pending' AND expires_at <= now()"
                    " ORDER BY expires_at LIMIT $1",
                    limit,
                )
            ]
        expired = 0
        for order_id in ids:
            expired += await self._expire_one(order_id)
            self.outbox.kick(order_id)
        if expired:
            log.info("expired %d unpaid order(s)", expired)
        return len(ids)

    async def _expire_one(self, order_id: str) -> bool:
        async with self.pool.acquire() as conn, conn.transaction():
            due = await conn.fetchval(
                "SELECT true FROM orders WHERE id = $1 AND status = 'pending' AND expires_at <= now() FOR UPDATE",
                order_id,
            )
            if not due:
                return False  # paid or expired meanwhile
            order = await ledger.fetch_order(conn, order_id)
            assert order is not None
            if order.payment_intent_id and await self._paid(order.payment_intent_id):
                # The buyer paid but the webhook has not arrived (delayed, or still
                # queued in a drop): settle now rather than tell a paying buyer
                # "expired". The webhook, when it comes, finds it done.
                await self._settle(conn, order.id, order.payment_intent_id, "expiry:paid")
                return False
            await ledger.change_status(conn, order, S.EXPIRED, "expiry")
            await ledger.enqueue(conn, order.id, "free_seats", f"free-{order.id}-expired")
            # The PaymentIntent stays open: a buyer who pays late still gets the
            # seats if they are free, and otherwise the payment goes back at once
            # (see _book). No money moves until then.
            return True

    async def _paid(self, payment_intent_id: str) -> bool:
        try:
            intent = await self.payments.retrieve(payment_intent_id)
        except stripe.StripeError as error:
            # Stripe down must not stop checkouts from lapsing: a late payment is still handled.
            log.warning("could not read %s before expiring its order: %s", payment_intent_id, error)
            return False
        return intent.view.status in ("requires_capture", "succeeded")
