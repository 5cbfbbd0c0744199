"""Inspection routes under ``/_gateway/``: what the gateway did, for tests and debugging.

This module owns the gateway's non-Stripe read-only endpoints. They need no
API key (the gateway is a local test double) and change nothing:

- ``GET /_gateway/health`` → ``{"status": "ok", "webhook_url", "success_rate",
  "webhook_delay", "pending_deliveries", "api_version"}``
- ``GET /_gateway/events[?type=&payment_intent=&limit=]`` → ``{"object": "list",
  "data": [<event>, ...]}``, newest first
- ``GET /_gateway/deliveries[?event_id=&state=pending|delivered&limit=]`` →
  ``{"object": "list", "data": [{"event_id", "type", "state", "attempts",
  "next_attempt_at", "delivered_at", "attempt_log": [{"attempt", "at", "url",
  "status", "error", "duration_ms"}, ...]}, ...]}``
"""

from __future__ import annotations

from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from server.gateway.service import Gateway

_encode = msgspec.json.Encoder().encode
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


def _json(body: Any, status: int = 200) -> Response:
    return Response(_encode(body), status_code=status, media_type="application/json")


def _limit(request: Request) -> int | Response:
    raw = request.query_params.get("limit", str(DEFAULT_LIMIT))
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        return _json({"error": {"type": "invalid_request_error", "message": f"limit must be 1..{MAX_LIMIT}"}}, 400)
    return int(raw)


async def health(request: Request) -> Response:
    gateway: Gateway = request.state.gateway
    config = gateway.config
    return _json(
        {
            "status": "ok",
            "api_version": config.api_version,
            "webhook_url": config.webhook_url,
            "success_rate": config.success_rate,
            "webhook_delay": config.webhook_delay,
            "pending_deliveries": gateway.store.pending_count(),
        }
    )


async def events(request: Request) -> Response:
    gateway: Gateway = request.state.gateway
    limit = _limit(request)
    if isinstance(limit, Response):
        return limit
    data = gateway.store.events(
        limit=limit,
        event_type=request.query_params.get("type"),
        payment_intent=request.query_params.get("payment_intent"),
    )
    return _json({"object": "list", "data": data})


async def deliveries(request: Request) -> Response:
    gateway: Gateway = request.state.gateway
    limit = _limit(request)
    if isinstance(limit, Response):
        return limit
    data = gateway.store.deliveries(
        event_id=request.query_params.get("event_id"),
        state=request.query_params.get("state"),
        limit=limit,
    )
    return _json({"object": "list", "data": data})


def routes() -> list[Route]:
    return [
        Route("/_gateway/health", health, methods=["GET"]),
        Route("/_gateway/events", events, methods=["GET"]),
        Route("/_gateway/deliveries", deliveries, methods=["GET"]),
    ]
