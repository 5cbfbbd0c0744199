"""Helpers every HTTP handler shares: body decoding (decoding is validation),
JSON responses, and the contract's error bodies."""

from __future__ import annotations

import logging
from typing import Any, TypeVar

import asyncpg
import msgspec
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from ..auth import bearer
from ..errors import BadRequest, Forbidden, SeatmapError, Unauthorized, Unavailable, ValidationError
from ..protocol import encoder
from ..services import services_of

log = logging.getLogger("seatmap.http")
T = TypeVar("T")
MAX_BODY_BYTES = 16 * 1024 * 1024


def json_response(content: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    body = content if isinstance(content, bytes) else encoder.encode(content)
    return Response(body, status_code=status, media_type="application/json", headers=headers)


async def decode_body(request: Request, decoder: msgspec.json.Decoder[T], *, empty_ok: bool = False) -> T | None:
    body = await request.body()
    if not body.strip():
        if empty_ok:
            return None
        raise BadRequest("the request needs a JSON body")
    if len(body) > MAX_BODY_BYTES:
        raise BadRequest(f"the body is larger than {MAX_BODY_BYTES} bytes")
    try:
        return decoder.decode(body)
    except msgspec.ValidationError as exc:
        raise ValidationError(str(exc)) from None
    except msgspec.DecodeError as exc:
        raise BadRequest(f"the body is not valid JSON: {exc}") from None


def buyer_id(request: Request) -> str:
    token = bearer(request.headers.get("authorization"))
    if token is None:
        raise Unauthorized("send the buyer token as 'Authorization: Bearer <token>' (POST /api/sessions makes one)")
    return services_of(request).signer.buyer_of(token)


def require_admin(request: Request) -> None:
    token = bearer(request.headers.get("authorization"))
    if token is None:
        raise Unauthorized("this route needs 'Authorization: Bearer <SEATMAP_ADMIN_TOKEN>'")
    if not services_of(request).signer.is_admin(token):
        raise Forbidden("this route is for the organizer's admin token")


def is_admin(request: Request) -> bool:
    token = bearer(request.headers.get("authorization"))
    return token is not None and services_of(request).signer.is_admin(token)


def error_response(error: SeatmapError) -> Response:
    headers = None
    retry_after = getattr(error, "retry_after", None)
    if retry_after is not None:
        headers = {"Retry-After": str(max(1, round(retry_after)))}
    return json_response(error.body(), error.status, headers)


async def on_seatmap_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SeatmapError)
    if exc.status >= 500:
        log.warning("%s %s -> %s: %s", request.method, request.url.path, exc.code, exc.details)
    return error_response(exc)


async def on_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = {404: "not_found", 401: "unauthorized", 403: "forbidden"}.get(exc.status_code, "bad_request")
    details = {404: "no such route", 405: f"{request.method} is not allowed here"}.get(exc.status_code, str(exc.detail))
    return json_response({"error": code, "details": details}, exc.status_code, dict(exc.headers or {}))


# A dependency that does not answer is the contract's 503, not a server bug.
DEPENDENCY_ERRORS: tuple[type[BaseException], ...] = (
    RedisConnectionError,
    RedisTimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    ConnectionError,
    TimeoutError,
)


def dependency_down(exc: BaseException) -> Unavailable:
    log.warning("a dependency failed: %s: %s", type(exc).__name__, exc)
    return Unavailable(f"a service Seatmap depends on did not answer ({type(exc).__name__}); retry shortly")


async def on_dependency_error(request: Request, exc: Exception) -> Response:
    return error_response(dependency_down(exc))


async def on_unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return json_response({"error": "internal_error", "details": "the server failed; it has been logged"}, 500)
