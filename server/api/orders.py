"""Checkout, orders, refunds and Stripe's webhooks over HTTP."""

from __future__ import annotations

from collections.abc import Iterable

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..catalog import Event
from ..errors import NotFound, ValidationError
from ..ledger import Order
from ..order_states import OrderStatus, payment_state
from ..protocol import (
    CheckoutOut,
    EventId,
    OrderEvent,
    OrderOut,
    OrderSeat,
    SeatSpec,
    Ticket,
    refund_request_decoder,
)
from ..services import services_of
from .common import buyer_id, decode_body, is_admin, json_response, require_admin


def order_out(request: Request, order: Order, event: Event, *, to_buyer: bool = False) -> OrderOut:
    """The order's answer; seat details and the event come from the catalog's
    cached layout. `to_buyer`: the order's own buyer asks, so a pending order
    carries what a payment page needs (`client_secret`, the publishable key)."""
    layout = [event.seats[event.index[seat]] for seat in order.seats]
    by_id = {spec.id: spec for spec in layout}
    out = OrderOut(
        order_id=order.id,
        event_id=order.event_id,
        buyer_id=order.buyer_id,
        status=order.status,
        seats=order.seats,
        amount_cents=order.amount_cents,
        refunded_cents=order.refunded_cents,
        currency=order.currency,
        created_at=order.created_at,
        expires_at=order.expires_at,
        tickets=[_ticket(by_id[seat], code) for seat, code in order.tickets],
        confirmed_at=order.confirmed_at,
        payment_intent_id=order.payment_intent_id,
        event=OrderEvent(event.id, event.name, event.starts_at),
        seat_details=[OrderSeat(s.id, s.section, s.row, s.number, s.tier, s.price_cents) for s in layout],
    )
    if order.payment is not None:
        out.payment = payment_state(order.payment).value
    if order.status == OrderStatus.PENDING:
        services = services_of(request)
        out.payment_url = services.orders.payment_url(order)
        if to_buyer:
            if order.client_secret:
                out.client_secret = order.client_secret
            if services.settings.stripe_publishable_key:
                out.stripe_publishable_key = services.settings.stripe_publishable_key
    return out


def _ticket(seat: SeatSpec, code: str) -> Ticket:
    return Ticket(seat.id, code, seat.section, seat.row, seat.number, seat.tier, seat.price_cents)


async def orders_out(request: Request, orders: Iterable[Order]) -> dict[str, list[OrderOut]]:
    catalog = services_of(request).catalog
    events: dict[str, Event] = {}
    answer = []
    for order in orders:
        event = events.get(order.event_id)
        if event is None:
            event = events[order.event_id] = await catalog.get(order.event_id)
        answer.append(order_out(request, order, event))
    return {"orders": answer}


async def checkout(request: Request) -> Response:
    buyer = buyer_id(request)
    orders = services_of(request).orders
    order = await orders.checkout(buyer, request.path_params["hold_id"])
    body = CheckoutOut(
        order_id=order.id,
        status=order.status,
        amount_cents=order.amount_cents,
        currency=order.currency,
        payment_intent_id=order.payment_intent_id,
        client_secret=order.client_secret,
        payment_url=orders.payment_url(order),
        expires_at=order.expires_at,
        seats=order.seats,
    )
    return json_response(body, 201)


async def get_order(request: Request) -> Response:
    services = services_of(request)
    order = await services.orders.get(request.path_params["order_id"])
    admin = is_admin(request)
    if not admin and order.buyer_id != buyer_id(request):
        raise NotFound("no such order")
    event = await services.catalog.get(order.event_id)
    return json_response(order_out(request, order, event, to_buyer=not admin))


async def my_orders(request: Request) -> Response:
    buyer = buyer_id(request)
    event_id = request.query_params.get("event_id")
    if event_id is not None:
        try:
            msgspec.convert(event_id, EventId)
        except msgspec.ValidationError:
            raise ValidationError(
                f"event_id {event_id!r} is not an event id (1 to 64 letters, digits, '_' or '-')"
            ) from None
    # An event with no orders of this buyer, or no such event: an empty list either way.
    orders = await services_of(request).orders.list(buyer_id=buyer, event_id=event_id)
    return json_response(await orders_out(request, orders))


async def event_orders(request: Request) -> Response:
    require_admin(request)
    services = services_of(request)
    event = await services.catalog.get(request.path_params["event_id"])
    status = request.query_params.get("status")
    if status is not None and status not in {s.value for s in OrderStatus}:
        raise ValidationError(f"unknown status {status!r}", statuses=[s.value for s in OrderStatus])
    orders = await services.orders.list(event_id=event.id, status=status, limit=100_000)
    return json_response(await orders_out(request, orders))


async def refund(request: Request) -> Response:
    require_admin(request)
    body = await decode_body(request, refund_request_decoder, empty_ok=True)
    amount = body.amount_cents if body is not None else None
    services = services_of(request)
    order = await services.orders.refund(request.path_params["order_id"], amount)
    return json_response(order_out(request, order, await services.catalog.get(order.event_id)))


async def stripe_webhook(request: Request) -> Response:
    payload = await request.body()
    result = await services_of(request).orders.handle_webhook(payload, request.headers.get("stripe-signature"))
    return json_response(result)


routes = [
    Route("/api/holds/{hold_id}/checkout", checkout, methods=["POST"]),
    Route("/api/orders", my_orders, methods=["GET"]),
    Route("/api/orders/{order_id}", get_order, methods=["GET"]),
    Route("/api/orders/{order_id}/refund", refund, methods=["POST"]),
    Route("/api/events/{event_id}/orders", event_orders, methods=["GET"]),
    Route("/api/webhooks/stripe", stripe_webhook, methods=["POST"]),
]
