"""The buyer's pages: `/` lists events, `/events/{event_id}` shows one. Both
are static files; the page's JavaScript talks to the API."""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

STATIC_DIR = Path(__file__).resolve().parent.parent.parent / "static"


async def index(request: Request) -> Response:
    return FileResponse(STATIC_DIR / "index.html")


async def event_page(request: Request) -> Response:
    return FileResponse(STATIC_DIR / "event.html")


async def order_page(request: Request) -> Response:
    return FileResponse(STATIC_DIR / "order.html")


routes = [
    Route("/", index, methods=["GET"]),
    Route("/events/{event_id}", event_page, methods=["GET"]),
    Route("/orders/{order_id}", order_page, methods=["GET"]),
]
