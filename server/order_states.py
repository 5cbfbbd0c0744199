"""Order states, their allowed transitions, and what a payment means for an
order. Pure: no I/O. Everything that changes an order's status goes through
`transition()`, so the table below is the only place the rules live (and
docs/protocol.md repeats it for readers).

    pending ──────────► confirmed ──► partially_refunded ──► refunded
       │  ▲                 │   ▲               │
       │  └── (never) ──    │   └── late payment, seats still free ◄── expired
       ├──► expired ────────┼──► cancelled / refunded (late payment given back)
       ├──► cancelled       └──► cancelled (capture failed: nothing was paid)
       └──► refunded (captured, but the seats could not be booked)
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class OrderStatus(StrEnum):
    PENDING = "pending"
    CONFIRMED = "confirmed"
    EXPIRED = "expired"
    CANCELLED = "cancelled"
    REFUNDED = "refunded"
    PARTIALLY_REFUNDED = "partially_refunded"


S = OrderStatus
ALLOWED: dict[OrderStatus, frozenset[OrderStatus]] = {
    S.PENDING: frozenset({S.CONFIRMED, S.EXPIRED, S.CANCELLED, S.REFUNDED}),
    S.EXPIRED: frozenset({S.CONFIRMED, S.CANCELLED, S.REFUNDED}),
    S.CONFIRMED: frozenset({S.PARTIALLY_REFUNDED, S.REFUNDED, S.CANCELLED}),
    S.PARTIALLY_REFUNDED: frozenset({S.PARTIALLY_REFUNDED, S.REFUNDED}),
    S.CANCELLED: frozenset(),
    S.REFUNDED: frozenset(),
}
# States whose seats the order reserves or owns (order_seats.live).
HOLDS_SEATS = frozenset({S.PENDING, S.CONFIRMED, S.PARTIALLY_REFUNDED})
# States in which the buyer has the seats.
OWNS_SEATS = frozenset({S.CONFIRMED, S.PARTIALLY_REFUNDED})


class ForbiddenTransition(Exception):
    """A status change the table does not allow: a bug, never silently ignored."""


def transition(current: OrderStatus, target: OrderStatus) -> OrderStatus:
    if target not in ALLOWED[current]:
        raise ForbiddenTransition(f"an order cannot go from {current} to {target}")
    return target


# ------------------------------------------------------------ payments


class PaymentStep(StrEnum):
    """What to do about an order given its payment as Stripe now reports it."""

    NOTHING = "nothing"  # no money moved, or already reconciled
    BOOK_THEN_CAPTURE = "book_then_capture"  # authorized: book, then capture
    BOOK = "book"  # captured: book
    CANCEL_PAYMENT = "cancel_payment"  # authorized, but cannot or must not book: release it
    REFUND = "refund"  # captured, but cannot or must not book: give it back
    CANCEL_ORDER = "cancel_order"  # the payment is gone (canceled) while the order waits or holds seats


@dataclass(frozen=True, slots=True)
class PaymentView:
    """The parts of a Stripe PaymentIntent that decide an order's fate."""

    status: str
    amount: int
    currency: str
    amount_received: int = 0


def payment_step(
    order_status: OrderStatus,
    order_amount: int,
    order_currency: str,
    pi: PaymentView,
    *,
    given_back: bool = False,
) -> PaymentStep:
    """The next step for an order whose PaymentIntent is `pi`; idempotent and
    independent of the order in which Stripe's events arrive. `given_back`:
    a refund of this payment was decided; it is final (a refund does not
    change a PaymentIntent's status, so `pi` alone cannot tell)."""
    matches = pi.amount == order_amount and pi.currency.lower() == order_currency.lower()
    if given_back and pi.status == "succeeded":
        return PaymentStep.NOTHING
    if pi.status == "requires_capture":
        if matches and order_status in (S.PENDING, S.EXPIRED):
            return PaymentStep.BOOK_THEN_CAPTURE
        if matches and order_status in OWNS_SEATS:
            return PaymentStep.BOOK_THEN_CAPTURE  # booked already; the capture is still owed
        return PaymentStep.CANCEL_PAYMENT
    if pi.status == "succeeded":
        if not matches:
            return PaymentStep.REFUND
        if order_status in (S.PENDING, S.EXPIRED):
            return PaymentStep.BOOK
        if order_status in OWNS_SEATS or order_status == S.REFUNDED:
            return PaymentStep.NOTHING
        return PaymentStep.REFUND  # cancelled: the money must go back
    if pi.status == "canceled":
        if order_status in (S.PENDING, S.CONFIRMED):
            return PaymentStep.CANCEL_ORDER
        return PaymentStep.NOTHING
    return PaymentStep.NOTHING  # requires_payment_method (failed: retry), processing, …


def refund_status(amount: int, refunded: int) -> OrderStatus:
    return S.REFUNDED if refunded >= amount else S.PARTIALLY_REFUNDED


# ------------------------------------------------------------ what the buyer paid


class PaymentState(StrEnum):
    """Where the order's money is, as a buyer would ask it (`"payment"` on an order)."""

    NONE = "none"  # nothing authorized or taken (no payment yet, declined, or cancelled unused)
    AUTHORIZED = "authorized"  # held on the card, not taken yet
    CAPTURED = "captured"  # taken
    RELEASED = "released"  # was held, then let go: nothing taken
    REFUNDED = "refunded"  # taken, then all given back
    PARTIALLY_REFUNDED = "partially_refunded"  # taken, then part given back


@dataclass(frozen=True, slots=True)
class PaymentRecord:
    """What Seatmap recorded about an order's money (server/ledger.py reads it).

    `intent_status`: the PaymentIntent's status as last seen (`payments.status`),
    None before there is one. `captured_cents`: the most it was seen to have
    received. `refunded_cents`: the larger of the order's `refunded_cents` (which
    follows Stripe's `charge.refunded`) and the refunds Seatmap made. `released`:
    an outbox `cancel_payment` was carried out (or found the authorization gone).
    `was_confirmed`: the order was ever booked (a booking is made on an
    authorization, so a later cancel released one)."""

    amount_cents: int
    intent_status: str | None = None
    captured_cents: int = 0
    refunded_cents: int = 0
    released: bool = False
    was_confirmed: bool = False


def payment_state(record: PaymentRecord) -> PaymentState:
    """The order's payment state, first match wins: money given back, money
    taken, an authorization let go, one still held, else none. A refund or
    release that is decided but not yet carried out does not count: until
    Stripe has done it, the money is where it was."""
    if record.refunded_cents > 0:
        basis = record.captured_cents or record.amount_cents
        return PaymentState.REFUNDED if record.refunded_cents >= basis else PaymentState.PARTIALLY_REFUNDED
    if record.captured_cents > 0 or record.intent_status == "succeeded":
        return PaymentState.CAPTURED
    if record.released:
        return PaymentState.RELEASED
    if record.intent_status == "canceled":
        # Cancelled in Stripe, not by Seatmap: it had been authorized only if the order was booked on it.
        return PaymentState.RELEASED if record.was_confirmed else PaymentState.NONE
    if record.intent_status == "requires_capture":
        return PaymentState.AUTHORIZED
    return PaymentState.NONE  # requires_payment_method (new or declined), requires_action, processing
