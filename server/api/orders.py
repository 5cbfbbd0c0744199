"""Checkout, orders, refunds and Stripe's webhooks over HTTP."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..errors import NotFound, ValidationError
from ..ledger import Order
from ..order_states import OrderStatus
from ..protocol import CheckoutOut, OrderOut, Ticket, refund_request_decoder
from ..services import services_of
from .common import buyer_id, decode_body, is_admin, json_response, require_admin


def order_out(request: Request, order: Order) -> OrderOut:
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
        tickets=[Ticket(seat, code) for seat, code in order.tickets],
        confirmed_at=order.confirmed_at,
        payment_intent_id=order.payment_intent_id,
    )
    if order.status == OrderStatus.PENDING:
        out.payment_url = services_of(request).orders.payment_url(order)
    return out


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
    order = await services_of(request).orders.get(request.path_params["order_id"])
    if not is_admin(request) and order.buyer_id != buyer_id(request):
        raise NotFound("no such order")
    return json_response(order_out(request, order))


async def my_orders(request: Request) -> Response:
    orders = await services_of(request).orders.list(buyer_id=buyer_id(request))
    return json_response({"orders": [order_out(request, order) for order in orders]})


async def event_orders(request: Request) -> Response:
    require_admin(request)
    services = services_of(request)
    event = await services.catalog.get(request.path_params["event_id"])
    status = request.query_params.get("status")
    if status is not None and status not in {s.value for s in OrderStatus}:
        raise ValidationError(f"unknown status {status!r}", statuses=[s.value for s in OrderStatus])
    orders = await services.orders.list(event_id=event.id, status=status, limit=100_000)
    return json_response({"orders": [order_out(request, order) for order in orders]})


async def refund(request: Request) -> Response:
    require_admin(request)
    body = await decode_body(request, refund_request_decoder, empty_ok=True)
    amount = body.amount_cents if body is not None else None
    order = await services_of(request).orders.refund(request.path_params["order_id"], amount)
    return json_response(order_out(request, order))


async def stripe_webhook(request: Request) -> Response:
    payload = await request.body()
    result = await services_of(request).orders.handle_webhook(
        payload, request.headers.get("stripe-signature")
    )
    return json_response(result)


routes = [
    Route("/api/holds/{hold_id}/checkout", checkout, methods=["POST"]),
    Route("/api/orders", my_orders, methods=["GET"]),
    Route("/api/orders/{order_id}", get_order, methods=["GET"]),
    Route("/api/orders/{order_id}/refund", refund, methods=["POST"]),
    Route("/api/events/{event_id}/orders", event_orders, methods=["GET"]),
    Route("/api/webhooks/stripe", stripe_webhook, methods=["POST"]),
]
