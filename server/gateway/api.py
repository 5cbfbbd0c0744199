"""The REST edge: Stripe's v1 routes the gateway answers, over HTTP.

This module owns translating HTTP to `service` calls and back: the API key
check (any ``Authorization: Bearer <key>``, or Basic with the key as user,
as Stripe accepts), reading form-encoded parameters from the body (POST) or
query (GET), the ``Idempotency-Key`` header, Stripe's response headers
(``Request-Id``, ``Idempotent-Replayed``), one log line per call, and never
leaking a traceback (a bug answers Stripe's 500 ``api_error``). It decides
nothing about payments.
"""

from __future__ import annotations

import base64
import binascii
import logging
import time
from collections.abc import Awaitable, Callable
from urllib.parse import parse_qsl

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from server.gateway import objects
from server.gateway.errors import GatewayError, InvalidRequest, Unauthenticated
from server.gateway.service import Call, Gateway, Reply

log = logging.getLogger("seatmap.gateway.api")

_encode = msgspec.json.Encoder().encode

Handler = Callable[[Gateway, Call, Request], Reply]

_NO_KEY = (
    "You did not provide an API key. You need to provide your API key in the Authorization header, "
    "using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See https://stripe.com/docs/api#"
    "authentication for details, or we can help at https://support.stripe.com/."
)


def api_key(authorization: str | None) -> str:
    """The API key of an Authorization header; the gateway takes any non-empty key."""
    scheme, _, credentials = (authorization or "").partition(" ")
    key = ""
    if scheme.lower() == "bearer":
        key = credentials.strip()
    elif scheme.lower() == "basic":
        try:
            key = base64.b64decode(credentials.strip(), validate=True).decode().partition(":")[0]
        except (binascii.Error, UnicodeDecodeError):
            key = ""
    if not key:
        raise Unauthenticated(_NO_KEY)
    return key


def stripe_endpoint(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """Wrap a handler in Stripe's HTTP conventions: auth, parameters, headers, errors, the log line."""

    async def endpoint(request: Request) -> Response:
        started = time.perf_counter()
        gateway: Gateway = request.state.gateway
        request_id = objects.new_id("req")
        key = request.headers.get("idempotency-key") if request.method == "POST" else None
        try:
            api_key(request.headers.get("authorization"))
            if request.method == "GET":
                raw = request.url.query
            else:
                try:
                    raw = (await request.body()).decode()
                except UnicodeDecodeError:
                    raise InvalidRequest("The request body is not valid UTF-8.") from None
            pairs = parse_qsl(raw, keep_blank_values=True)
            reply = handler(gateway, Call(request.method, request.url.path, pairs, request_id, key), request)
        except GatewayError as exc:
            reply = Reply(exc.status, _encode(exc.body()), request_id, error=exc)
        except Exception:
            log.exception("%s %s failed (%s)", request.method, request.url.path, request_id)
            bug = GatewayError("An unexpected error occurred in the test gateway; see its log.")
            reply = Reply(bug.status, _encode(bug.body()), request_id, error=bug)
        headers = {
            "Request-Id": reply.request_id,
            "Stripe-Version": request.headers.get("stripe-version") or gateway.config.api_version,
        }
        if key:
            headers["Idempotency-Key"] = key
        if reply.replayed:
            headers["Idempotent-Replayed"] = "true"
            headers["Original-Request"] = reply.request_id
        if reply.status == 401:
            headers["WWW-Authenticate"] = 'Basic realm="Stripe"'
        log.info(
            "%s %s -> %d%s %s%s (%.1f ms)",
            request.method,
            request.url.path,
            reply.status,
            f" {reply.error.code or reply.error.type}" if reply.error else "",
            reply.request_id,
            " replayed" if reply.replayed else "",
            (time.perf_counter() - started) * 1000,
        )
        return Response(reply.body, status_code=reply.status, media_type="application/json", headers=headers)

    return endpoint


def _retrieve(kind: str) -> Handler:
    return lambda gateway, call, request: gateway.retrieve(call, request.path_params["id"], kind)


def _unrecognized(gateway: Gateway, call: Call, request: Request) -> Reply:
    exc = InvalidRequest(
        f"Unrecognized request URL ({call.method}: {call.path}). Please see https://stripe.com/docs "
        "or we can help at https://support.stripe.com/."
    )
    return Reply(404, _encode(exc.body()), call.request_id, error=exc)


def routes() -> list[Route]:
    def on_intent(method: Callable[[Gateway, Call, str], Reply]) -> Handler:
        return lambda gateway, call, request: method(gateway, call, request.path_params["id"])

    return [
        Route(
            "/v1/payment_intents",
            stripe_endpoint(lambda gateway, call, request: gateway.create_payment_intent(call)),
            methods=["POST"],
        ),
        Route("/v1/payment_intents/{id}", stripe_endpoint(_retrieve("payment_intent")), methods=["GET"]),
        Route(
            "/v1/payment_intents/{id}/confirm",
            stripe_endpoint(on_intent(Gateway.confirm_payment_intent)),
            methods=["POST"],
        ),
        Route(
            "/v1/payment_intents/{id}/capture",
            stripe_endpoint(on_intent(Gateway.capture_payment_intent)),
            methods=["POST"],
        ),
        Route(
            "/v1/payment_intents/{id}/cancel",
            stripe_endpoint(on_intent(Gateway.cancel_payment_intent)),
            methods=["POST"],
        ),
        Route(
            "/v1/refunds",
            stripe_endpoint(lambda gateway, call, request: gateway.create_refund(call)),
            methods=["POST"],
        ),
        Route("/v1/refunds/{id}", stripe_endpoint(_retrieve("refund")), methods=["GET"]),
        Route("/v1/charges/{id}", stripe_endpoint(_retrieve("charge")), methods=["GET"]),
        Route("/v1/payment_methods/{id}", stripe_endpoint(_retrieve("payment_method")), methods=["GET"]),
        Route("/v1/events/{id}", stripe_endpoint(_retrieve("event")), methods=["GET"]),
        Route(
            "/v1/{path:path}",
            stripe_endpoint(_unrecognized),
            methods=["GET", "POST", "DELETE", "PUT", "PATCH"],
        ),
    ]
