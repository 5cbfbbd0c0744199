"""The gateway as an ASGI app: its routes, and its resources in the lifespan.

This module owns assembling the gateway: `create_app(config)` returns a
Starlette app whose lifespan opens the SQLite store, forgets idempotency keys
older than Stripe's 24 hours, starts the webhook delivery worker (when a
webhook URL is configured) and stops it all again, in that one place. The
lifespan state gives handlers the `Gateway` core; there are no module
globals, so several gateways may run in one process (as the tests do).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TypedDict

import httpx
from starlette.applications import Starlette

from server.gateway import api, inspection, page
from server.gateway.config import GatewayConfig
from server.gateway.service import Gateway
from server.gateway.store import Store
from server.gateway.webhooks import DeliveryWorker

log = logging.getLogger("seatmap.gateway")


class State(TypedDict):
    gateway: Gateway


def create_app(
    config: GatewayConfig,
    *,
    rng: random.Random | None = None,
    clock: Callable[[], float] = time.time,
) -> Starlette:
    """The gateway app; serve it with uvicorn (see `runner`) with the lifespan on."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[State]:
        store = Store(config.db_path)
        worker: DeliveryWorker | None = None
        client: httpx.AsyncClient | None = None
        try:
            if config.webhook_url is not None:
                assert config.webhook_secret is not None  # GatewayConfig insists
                # trust_env=False: a proxy from the environment must not sit
                # between the gateway and a receiver on localhost.
                client = httpx.AsyncClient(trust_env=False)
                worker = DeliveryWorker(
                    store,
                    client,
                    url=config.webhook_url,
                    secret=config.webhook_secret,
                    retry_base=config.retry_base,
                    retry_cap=config.retry_cap,
                    timeout=config.delivery_timeout,
                    max_in_flight=config.max_in_flight,
                    clock=clock,
                )
            gateway = Gateway(store, config, rng=rng, clock=clock, on_queued=worker.notify if worker else lambda: None)
            gateway.forget_old_keys()
            if worker is not None:
                worker.start()
            log.info(
                "test gateway ready: db %s, webhooks to %s, %d pending, success rate %g, delay %g s",
                config.db_path,
                config.webhook_url or "nowhere",
                store.pending_count(),
                config.success_rate,
                config.webhook_delay,
            )
            yield {"gateway": gateway}
        finally:
            if worker is not None:
                await worker.stop()
            if client is not None:
                await client.aclose()
            store.close()

    return Starlette(routes=[*api.routes(), *page.routes(), *inspection.routes()], lifespan=lifespan)
