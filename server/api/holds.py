"""Buyer sessions and holds over HTTP."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..clientip import client_ip
from ..errors import NotFound, ValidationError
from ..holds import HoldGranted, event_of_hold
from ..protocol import HoldOut, SessionOut, hold_request_decoder, iso_ms
from ..ratelimit import Limit
from ..services import services_of
from .common import buyer_id, decode_body, json_response


async def create_session(request: Request) -> Response:
    services = services_of(request)
    ip = client_ip(request.scope, services.settings.trusted_proxies)
    await services.rate_limiter.check(Limit.SESSIONS_PER_IP, ip)
    buyer, token = services.signer.issue()
    return json_response(SessionOut(buyer_id=buyer, token=token), 201)


def hold_out(granted: HoldGranted) -> HoldOut:
    out = HoldOut(
        hold_id=granted.hold_id,
        event_id=granted.event_id,
        seats=granted.seats,
        expires_at=iso_ms(granted.expires_ms),
        picked=granted.picked,
    )
    if granted.adjacent is not None:
        out.adjacent = granted.adjacent
    return out


async def create_hold(request: Request) -> Response:
    buyer = buyer_id(request)
    services = services_of(request)
    ip = client_ip(request.scope, services.settings.trusted_proxies)
    await services.rate_limiter.check_all((Limit.HOLDS_PER_BUYER, buyer), (Limit.HOLDS_PER_IP, ip))
    event = await services.catalog.get(request.path_params["event_id"])
    body = await decode_body(request, hold_request_decoder)
    assert body is not None
    granted = await services.holds.request(
        event,
        buyer,
        seats=body.seats,
        count=body.count,
        tier=body.tier,
        section=body.section,
        request_id=request.headers.get("idempotency-key", "")[:128],
    )
    return json_response(hold_out(granted), 201)


async def get_hold(request: Request) -> Response:
    buyer = buyer_id(request)
    services = services_of(request)
    hold_id = request.path_params["hold_id"]
    event = await services.catalog.get(event_of_hold(hold_id))
    record = await services.holds.get_hold(event, hold_id)
    if record is None or record.buyer_id != buyer:
        raise NotFound("no such hold")
    out = HoldOut(
        hold_id=hold_id,
        event_id=event.id,
        seats=record.seats,
        expires_at=iso_ms(record.expires_ms),
        buyer_id=record.buyer_id,
    )
    return json_response(out)


async def release_hold(request: Request) -> Response:
    buyer = buyer_id(request)
    services = services_of(request)
    hold_id = request.path_params["hold_id"]
    try:
        event = await services.catalog.get(event_of_hold(hold_id))
    except NotFound:
        raise NotFound("no such hold") from None
    seats = None
    if "seats" in request.query_params:
        seats = [seat for seat in request.query_params["seats"].split(",") if seat]
        if not seats:
            raise ValidationError("'seats' names no seat; leave it out to release the whole hold")
    await services.holds.release(event, buyer, hold_id, seats)
    return Response(status_code=204)


routes = [
    Route("/api/sessions", create_session, methods=["POST"]),
    Route("/api/events/{event_id}/holds", create_hold, methods=["POST"]),
    Route("/api/holds/{hold_id}", get_hold, methods=["GET"]),
    Route("/api/holds/{hold_id}", release_hold, methods=["DELETE"]),
]
