"""The ledger: orders and everything recorded about them in Postgres.

Owns the SQL of orders, order seats, tickets, payments, refunds, webhook
events, the outbox and the audit log. Every status change goes through
`change_status`, which checks the transition table, keeps the seats' `live`
flag (the unique index that refuses a second live booking) and the tickets
in step, and appends the audit row, all in the caller's transaction. It
never calls Redis or Stripe.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from .order_states import HOLDS_SEATS, OWNS_SEATS, OrderStatus, PaymentRecord, transition

ORDER_COLUMNS = (
    "o.id, o.event_id, o.buyer_id, o.hold_id, o.status, o.amount_cents, o.refunded_cents, o.currency,"
    " o.payment_intent_id, o.client_secret, o.created_at, o.expires_at, o.confirmed_at,"
    " ARRAY(SELECT seat_id FROM order_seats WHERE order_id = o.id ORDER BY seat_id) AS seats,"
    " ARRAY(SELECT seat_id FROM tickets WHERE order_id = o.id AND voided_at IS NULL ORDER BY seat_id) AS ticket_seats,"
    " ARRAY(SELECT code FROM tickets WHERE order_id = o.id AND voided_at IS NULL ORDER BY seat_id) AS ticket_codes"
)
# One round trip per order read, its seats and tickets included; `FOR UPDATE OF o` locks just the order row.
SELECT_ORDERS = f"SELECT {ORDER_COLUMNS} FROM orders o"
# What the API shows (never used to decide): the order plus what was recorded
# about its money, read into a PaymentRecord (server/order_states.py). The
# release is the outbox's `cancel-<order id>` action (the key both places that
# decide a release use), carried out: its result (kept in `last_error` once
# done, see server/outbox.py) is NULL when it cancelled the authorization, or
# 'already released'; a skipped or turned-into-a-refund cancel released nothing.
CANCEL_KEY_PREFIX = "cancel-"
ALREADY_RELEASED = "already released"


def cancel_key(order_id: str) -> str:
    """The outbox key of releasing an order's authorization (the API reads it back)."""
    return CANCEL_KEY_PREFIX + order_id


SELECT_ORDER_VIEWS = (
    f"SELECT {ORDER_COLUMNS},"
    " p.status AS payment_status, coalesce(p.captured_cents, 0) AS captured_cents,"
    " coalesce(r.refunded, 0) AS refunds_cents,"
    f" exists(SELECT 1 FROM outbox x WHERE x.idempotency_key = '{CANCEL_KEY_PREFIX}' || o.id"
    f" AND x.done_at IS NOT NULL AND (x.last_error IS NULL OR x.last_error = '{ALREADY_RELEASED}')) AS released"
    " FROM orders o LEFT JOIN payments p ON p.order_id = o.id"
    " LEFT JOIN (SELECT order_id, sum(amount_cents) AS refunded FROM refunds GROUP BY order_id) r ON r.order_id = o.id"
)


@dataclass
class Order:
    id: str
    event_id: str
    buyer_id: str
    hold_id: str
    status: OrderStatus
    amount_cents: int
    refunded_cents: int
    currency: str
    payment_intent_id: str | None
    client_secret: str | None
    created_at: datetime
    expires_at: datetime
    confirmed_at: datetime | None
    seats: list[str]
    tickets: list[tuple[str, str]]  # (seat, code), only while the order owns its seats
    payment: PaymentRecord | None = None  # read for the API only (read_order, list_orders)


def new_order_id() -> str:
    return "ord_" + secrets.token_urlsafe(12)


def new_ticket_code() -> str:
    # 128 random bits: what a QR code carries; unguessable, unique by construction.
    return secrets.token_urlsafe(16)


def _order(row: asyncpg.Record | dict[str, Any]) -> Order:
    fields = dict(row)
    codes, ticket_seats = fields.pop("ticket_codes"), fields.pop("ticket_seats")
    fields["status"] = OrderStatus(fields["status"])
    return Order(**fields, tickets=list(zip(ticket_seats, codes, strict=True)))


def _order_view(row: asyncpg.Record) -> Order:
    fields = dict(row)
    refunds = fields.pop("refunds_cents")
    payment = PaymentRecord(
        amount_cents=fields["amount_cents"],
        intent_status=fields.pop("payment_status"),
        captured_cents=fields.pop("captured_cents"),
        refunded_cents=max(fields["refunded_cents"], refunds),
        released=fields.pop("released"),
        was_confirmed=fields["confirmed_at"] is not None,
    )
    return _order({**fields, "payment": payment})


async def fetch_order(conn: asyncpg.Connection, order_id: str, *, lock: bool = False) -> Order | None:
    suffix = " FOR UPDATE OF o" if lock else ""
    row = await conn.fetchrow(f"{SELECT_ORDERS} WHERE o.id = $1{suffix}", order_id)
    return _order(row) if row else None


async def read_order(conn: asyncpg.Connection, order_id: str) -> Order | None:
    """An order as the API shows it, with its PaymentRecord; for showing, never for deciding (no lock)."""
    row = await conn.fetchrow(f"{SELECT_ORDER_VIEWS} WHERE o.id = $1", order_id)
    return _order_view(row) if row else None


async def fetch_order_by_hold(conn: asyncpg.Connection, hold_id: str) -> Order | None:
    row = await conn.fetchrow(f"{SELECT_ORDERS} WHERE o.hold_id = $1", hold_id)
    return _order(row) if row else None


async def fetch_order_id_by_intent(conn: asyncpg.Connection, payment_intent_id: str) -> str | None:
    return await conn.fetchval("SELECT id FROM orders WHERE payment_intent_id = $1", payment_intent_id)


async def list_orders(
    conn: asyncpg.Connection,
    *,
    buyer_id: str | None = None,
    event_id: str | None = None,
    status: str | None = None,
    limit: int = 1000,
) -> list[Order]:
    """Orders as the API shows them (with their PaymentRecord), oldest first."""
    clauses: list[str] = []
    args: list[str | int] = []
    for column, value in (("buyer_id", buyer_id), ("event_id", event_id), ("status", status)):
        if value is not None:
            args.append(value)
            clauses.append(f"o.{column} = ${len(args)}")
    where = " WHERE " + " AND ".join(clauses) if clauses else ""
    args.append(limit)
    rows = await conn.fetch(f"{SELECT_ORDER_VIEWS}{where} ORDER BY o.created_at, o.id LIMIT ${len(args)}", *args)
    return [_order_view(row) for row in rows]


async def insert_order(
    conn: asyncpg.Connection,
    *,
    order_id: str,
    event_id: str,
    buyer_id: str,
    hold_id: str,
    seats: list[tuple[str, int]],
    currency: str,
    checkout_seconds: int,
) -> None:
    """A pending order reserving `seats` (id, price). Raises UniqueViolationError
    on a hold that already checked out, or on a seat another live order has."""
    amount = sum(price for _, price in seats)
    await conn.execute(
        "INSERT INTO orders (id, event_id, buyer_id, hold_id, status, amount_cents, currency, expires_at)"
        " VALUES ($1, $2, $3, $4, 'pending', $5, $6, now() + make_interval(secs => $7))",
        order_id,
        event_id,
        buyer_id,
        hold_id,
        amount,
        currency,
        float(checkout_seconds),
    )
    await conn.executemany(
        "INSERT INTO order_seats (order_id, event_id, seat_id, price_cents, live) VALUES ($1, $2, $3, $4, true)",
        [(order_id, event_id, seat, price) for seat, price in seats],
    )
    await audit(conn, order_id, None, OrderStatus.PENDING, "checkout", {"hold_id": hold_id, "seats": len(seats)})


async def set_payment_intent(conn: asyncpg.Connection, order_id: str, pi_id: str, client_secret: str) -> None:
    await conn.execute(
        "UPDATE orders SET payment_intent_id = $2, client_secret = $3, updated_at = now() WHERE id = $1",
        order_id,
        pi_id,
        client_secret,
    )


async def audit(
    conn: asyncpg.Connection,
    order_id: str,
    from_status: OrderStatus | None,
    to_status: OrderStatus,
    cause: str,
    details: dict[str, Any] | None = None,
) -> None:
    await conn.execute(
        "INSERT INTO order_audit (order_id, from_status, to_status, cause, details) VALUES ($1, $2, $3, $4, $5)",
        order_id,
        from_status,
        to_status,
        cause,
        details or {},
    )


async def change_status(
    conn: asyncpg.Connection,
    order: Order,
    target: OrderStatus,
    cause: str,
    details: dict[str, Any] | None = None,
) -> None:
    """Move `order` to `target` in the caller's transaction, with its seats,
    tickets and audit row. Raises ForbiddenTransition, and UniqueViolationError
    when re-taking seats another live order has (the caller rolls back)."""
    transition(order.status, target)
    was_live, now_live = order.status in HOLDS_SEATS, target in HOLDS_SEATS
    if now_live != was_live:
        await conn.execute("UPDATE order_seats SET live = $2 WHERE order_id = $1", order.id, now_live)
    if target == OrderStatus.CONFIRMED:
        await conn.executemany(
            "INSERT INTO tickets (code, order_id, event_id, seat_id) VALUES ($1, $2, $3, $4)"
            " ON CONFLICT (order_id, seat_id) DO NOTHING",
            [(new_ticket_code(), order.id, order.event_id, seat) for seat in order.seats],
        )
    elif order.status in OWNS_SEATS and target not in OWNS_SEATS:
        await conn.execute("UPDATE tickets SET voided_at = now() WHERE order_id = $1 AND voided_at IS NULL", order.id)
    await conn.execute(
        "UPDATE orders SET status = $2, updated_at = now(),"
        " confirmed_at = CASE WHEN $2 = 'confirmed' THEN coalesce(confirmed_at, now()) ELSE confirmed_at END"
        " WHERE id = $1",
        order.id,
        target,
    )
    await audit(conn, order.id, order.status, target, cause, details)
    order.status = target


async def set_refunded(conn: asyncpg.Connection, order_id: str, refunded_cents: int) -> None:
    await conn.execute(
        "UPDATE orders SET refunded_cents = greatest(refunded_cents, $2), updated_at = now() WHERE id = $1",
        order_id,
        refunded_cents,
    )


async def record_payment(
    conn: asyncpg.Connection,
    order: Order,
    status: str,
    amount: int,
    currency: str,
    captured: int,
    error: str | None = None,
) -> None:
    await conn.execute(
        "INSERT INTO payments (payment_intent_id, order_id, status, amount_cents, currency, captured_cents, last_error)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7)"
        " ON CONFLICT (payment_intent_id) DO UPDATE SET status = $3, amount_cents = $4, currency = $5,"
        " captured_cents = greatest(payments.captured_cents, $6), last_error = coalesce($7, payments.last_error),"
        " updated_at = now()",
        order.payment_intent_id,
        order.id,
        status,
        amount,
        currency,
        captured,
        error,
    )


async def record_refund(
    conn: asyncpg.Connection, refund_id: str, order_id: str, amount: int, reason: str | None
) -> None:
    await conn.execute(
        "INSERT INTO refunds (id, order_id, amount_cents, reason) VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO NOTHING",
        refund_id,
        order_id,
        amount,
        reason,
    )


async def claim_webhook(
    conn: asyncpg.Connection, provider: str, event_id: str, event_type: str, payload: dict[str, Any]
) -> bool:
    """Record a provider event in the caller's transaction; False if it was
    recorded before (a redelivery: act on nothing). Concurrent deliveries of
    one event wait here on the primary key until the first commits."""
    inserted = await conn.fetchval(
        "INSERT INTO webhook_events (provider, event_id, type, outcome, payload) VALUES ($1, $2, $3, 'received', $4)"
        " ON CONFLICT (provider, event_id) DO NOTHING RETURNING true",
        provider,
        event_id,
        event_type,
        payload,
    )
    return bool(inserted)


async def set_webhook_outcome(conn: asyncpg.Connection, provider: str, event_id: str, outcome: str) -> None:
    await conn.execute(
        "UPDATE webhook_events SET outcome = $3 WHERE provider = $1 AND event_id = $2",
        provider,
        event_id,
        outcome,
    )


async def enqueue(conn: asyncpg.Connection, order_id: str, action: str, key: str, amount: int | None = None) -> None:
    """An effect to carry out once this transaction commits (see server/outbox.py)."""
    await conn.execute(
        "INSERT INTO outbox (order_id, action, amount_cents, idempotency_key) VALUES ($1, $2, $3, $4)"
        " ON CONFLICT (idempotency_key) DO NOTHING",
        order_id,
        action,
        amount,
        key,
    )


async def owned_seats(conn: asyncpg.Connection, event_id: str) -> tuple[list[tuple[str, str]], dict[str, int]]:
    """What orders reserve or own of an event: seat -> Redis owner, buyer -> count."""
    rows = await conn.fetch(
        "SELECT s.seat_id, o.id, o.status, o.buyer_id FROM order_seats s JOIN orders o ON o.id = s.order_id"
        " WHERE s.event_id = $1 AND s.live",
        event_id,
    )
    owners: list[tuple[str, str]] = []
    counts: dict[str, int] = {}
    for row in rows:
        prefix = "r" if row["status"] == OrderStatus.PENDING else "b"
        owners.append((row["seat_id"], prefix + row["id"]))
        counts[row["buyer_id"]] = counts.get(row["buyer_id"], 0) + 1
    return owners, counts
