"""Events: create (admin), read the layout, read live availability."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..catalog import event_from_request
from ..protocol import AvailabilityOut, Limits, Summary, create_event_decoder, encoder
from ..services import services_of
from .common import decode_body, json_response, require_admin


async def create_event(request: Request) -> Response:
    require_admin(request)
    spec = await decode_body(request, create_event_decoder)
    assert spec is not None
    event = event_from_request(spec)
    services = services_of(request)
    await services.catalog.create(event)
    await services.live.create(event)
    return json_response({"id": event.id, "seats": len(event.seats)}, 201)


async def list_events(request: Request) -> Response:
    return json_response({"events": await services_of(request).catalog.list_events()})


async def get_event(request: Request) -> Response:
    services = services_of(request)
    event = await services.catalog.get(request.path_params["event_id"])
    settings = services.settings
    body = event.body(Limits(settings.max_seats_per_buyer, settings.hold_seconds, settings.checkout_seconds))
    headers = {"ETag": body.etag, "Cache-Control": "public, max-age=3600", "Vary": "Accept-Encoding"}
    if request.headers.get("if-none-match") == body.etag:
        return Response(status_code=304, headers=headers)
    if "gzip" in request.headers.get("accept-encoding", ""):
        headers["Content-Encoding"] = "gzip"
        return Response(body.gzipped, media_type="application/json", headers=headers)
    return Response(body.raw, media_type="application/json", headers=headers)


async def availability(request: Request) -> Response:
    services = services_of(request)
    event = await services.catalog.get(request.path_params["event_id"])
    snap = await services.live.snapshot(event.id)
    if snap is None:
        await services.live.rebuild(event)
        snap = await services.live.snapshot(event.id)
        assert snap is not None
    taken = snap.taken
    seats = {seat.id: taken.get(seat.id, "available") for seat in event.seats}
    held = sum(1 for state in taken.values() if state == "held")
    booked = len(taken) - held
    body = AvailabilityOut(
        event_id=event.id,
        epoch=snap.epoch,
        version=snap.version,
        seats=seats,
        summary=Summary(available=len(seats) - len(taken), held=held, booked=booked),
    )
    return json_response(encoder.encode(body))


routes = [
    Route("/api/events", create_event, methods=["POST"]),
    Route("/api/events", list_events, methods=["GET"]),
    Route("/api/events/{event_id}", get_event, methods=["GET"]),
    Route("/api/events/{event_id}/availability", availability, methods=["GET"]),
]
