"""The buyer's pages: `/` lists events, `/events/{event_id}` shows one,
`/orders/{order_id}` shows an order, `/pay/{order_id}` is where it is paid.
They are static files; the page's JavaScript talks to the API."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response
from starlette.routing import Route

from ..order_states import OrderStatus
from ..services import services_of

STATIC_DIR = Path(__file__).resolve().parent.parent.parent / "static"


async def index(request: Request) -> Response:
    return FileResponse(STATIC_DIR / "index.html")


async def event_page(request: Request) -> Response:
    return FileResponse(STATIC_DIR / "event.html")


async def order_page(request: Request) -> Response:
    return FileResponse(STATIC_DIR / "order.html")


async def pay_page(request: Request) -> Response:
    """Where a buyer pays an order. With Stripe (`STRIPE_SECRET_KEY` set) it is
    `payment_url`: a page whose script reads the order with the buyer's token
    and mounts Stripe's Payment Element (the page itself holds no secret, so it
    is served to anyone). With the bundled gateway it sends the browser on to
    the gateway's own page for the order (303), or to the order's page when
    there is nothing to pay; an unknown order is a 404."""
    services = services_of(request)
    if not services.settings.uses_gateway:
        return FileResponse(STATIC_DIR / "pay.html", headers={"Cache-Control": "no-store"})
    order = await services.orders.get(request.path_params["order_id"])
    target = services.orders.payment_url(order) if order.status == OrderStatus.PENDING else None
    return RedirectResponse(target or f"/orders/{quote(order.id, safe='')}", status_code=303)


routes = [
    Route("/", index, methods=["GET"]),
    Route("/events/{event_id}", event_page, methods=["GET"]),
    Route("/orders/{order_id}", order_page, methods=["GET"]),
    Route("/pay/{order_id}", pay_page, methods=["GET"]),
]
