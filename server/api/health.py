"""Liveness, readiness and metrics."""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from ..metrics import METRICS
from ..services import services_of
from .common import json_response

READY_TIMEOUT = 2.0


async def live(request: Request) -> Response:
    return json_response({"status": "ok"})


async def ready(request: Request) -> Response:
    services = services_of(request)
    problems = {}

    async def redis_ok() -> None:
        await services.redis.ping()

    async def postgres_ok() -> None:
        async with services.pool.acquire() as conn:
            await conn.fetchval("SELECT 1")

    for name, check in (("redis", redis_ok), ("postgres", postgres_ok)):
        try:
            await asyncio.wait_for(check(), READY_TIMEOUT)
        except Exception as exc:  # any failure means not ready; say which
            problems[name] = f"{type(exc).__name__}: {exc}"[:200]
    if problems:
        details = "; ".join(f"{name} does not answer ({why})" for name, why in problems.items())
        return json_response({"error": "unavailable", "details": details, "checks": problems}, 503)
    return json_response({"status": "ok", "checks": {"redis": "ok", "postgres": "ok"}})


async def metrics(request: Request) -> Response:
    return PlainTextResponse(METRICS.render(), media_type="text/plain; version=0.0.4")


routes = [
    Route("/health/live", live, methods=["GET"]),
    Route("/health/ready", ready, methods=["GET"]),
    Route("/metrics", metrics, methods=["GET"]),
]
