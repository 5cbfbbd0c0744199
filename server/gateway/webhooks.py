"""Webhooks: signing events as Stripe does, and delivering them at least once.

This module owns the ``Stripe-Signature`` header (``t=<unix>,v1=<hex
HMAC-SHA256(secret, "<t>.<raw body>")>``, the whole ``whsec_…`` string being
the key, as the stripe SDK verifies it), the retry schedule, and the
`DeliveryWorker` that drains the persisted queue in `store`.

Delivery is at least once: a delivery leaves the queue only when the
receiver answers 2xx, so a crash or restart mid-attempt means it is sent
again. Each attempt is signed afresh (a retry an hour later must still pass a
300-second tolerance) and goes to the URL configured now, not the one
configured when the event happened. Up to `max_in_flight` deliveries run
concurrently, so, as with Stripe, events may arrive out of order.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import time
from collections.abc import Callable

import httpx

from server.gateway.store import Attempt, PendingDelivery, Store

log = logging.getLogger("seatmap.gateway.webhooks")

# Stripe's own User-Agent for webhook requests; some receivers look at it.
USER_AGENT = "Stripe/1.0 (+https://stripe.com/docs/webhooks)"
# How long the worker sleeps at most between looks at the queue, so a
# delivery queued by something it was not told about is still picked up.
IDLE_POLL = 5.0


def sign(payload: bytes, secret: str, timestamp: int) -> str:
    """The Stripe-Signature header for `payload` sent at `timestamp`."""
    signed = f"{timestamp}.".encode() + payload
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def backoff(failures: int, base: float, cap: float) -> float:
    """Seconds to wait after the `failures`-th failed attempt: base, 2 base, 4 base, ... at most cap."""
    # The exponent is bounded so a delivery failing for days cannot overflow.
    return min(base * 2 ** min(max(failures - 1, 0), 62), cap)


class DeliveryWorker:
    """Sends queued events to `url`, retrying until a 2xx; start() in the app's lifespan, stop() after."""

    def __init__(
        self,
        store: Store,
        client: httpx.AsyncClient,
        *,
        url: str,
        secret: str,
        retry_base: float,
        retry_cap: float,
        timeout: float,
        max_in_flight: int,
        clock: Callable[[], float] = time.time,
    ):
        self._store = store
        self._client = client
        self._url = url
        self._secret = secret
        self._retry_base = retry_base
        self._retry_cap = retry_cap
        self._timeout = timeout
        self._max_in_flight = max_in_flight
        self._clock = clock
        self._wake = asyncio.Event()
        self._in_flight: dict[str, asyncio.Task[None]] = {}
        self._supervisor: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._supervisor = asyncio.create_task(self._supervise(), name="gateway-webhooks")

    async def stop(self) -> None:
        """Stop sending; attempts cut short stay queued and are sent again after a restart."""
        tasks = [t for t in (self._supervisor, *self._in_flight.values()) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._supervisor = None

    def notify(self) -> None:
        """New deliveries were queued: look at the queue now rather than at the next poll."""
        self._wake.set()

    async def _supervise(self) -> None:
        while True:
            try:
                await self._run()
            except Exception:
                # A crashed loop must not silently end delivery: log, breathe, go on.
                log.exception("webhook delivery loop crashed; restarting in 1 s")
                await asyncio.sleep(1.0)

    async def _run(self) -> None:
        while True:
            # Clear before looking: a notify() arriving while we look wakes the next wait.
            self._wake.clear()
            now = self._clock()
            free = self._max_in_flight - len(self._in_flight)
            wait = IDLE_POLL
            for delivery in self._store.upcoming(limit=free + len(self._in_flight) + 1):
                if delivery.event_id in self._in_flight:
                    continue
                if delivery.next_attempt_at > now:
                    wait = min(wait, delivery.next_attempt_at - now)
                    break
                if free == 0:
                    # Full: the next attempt to finish sets _wake and frees a slot.
                    break
                free -= 1
                self._in_flight[delivery.event_id] = asyncio.create_task(
                    self._attempt(delivery), name=f"webhook-{delivery.event_id}"
                )
            try:
                async with asyncio.timeout(wait):
                    await self._wake.wait()
            except TimeoutError:
                pass

    async def _attempt(self, delivery: PendingDelivery) -> None:
        try:
            await self._send(delivery)
        except Exception:
            log.exception("webhook %s: delivery attempt failed unexpectedly", delivery.event_id)
        finally:
            self._in_flight.pop(delivery.event_id, None)
            self._wake.set()

    async def _send(self, delivery: PendingDelivery) -> None:
        number = delivery.attempts + 1
        started_at = self._clock()
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": USER_AGENT,
            "Cache-Control": "no-cache",
            "Stripe-Signature": sign(delivery.body, self._secret, int(started_at)),
        }
        status: int | None = None
        error: str | None = None
        begin = time.perf_counter()
        try:
            response = await self._client.post(self._url, content=delivery.body, headers=headers, timeout=self._timeout)
            status = response.status_code
            if not 200 <= status < 300:
                error = f"HTTP {status}: {response.text[:200]}"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        duration_ms = (time.perf_counter() - begin) * 1000
        delivered = error is None
        retry_in = None if delivered else backoff(number, self._retry_base, self._retry_cap)
        self._store.record_attempt(
            Attempt(delivery.event_id, number, started_at, self._url, status, error, duration_ms),
            next_attempt_at=None if retry_in is None else self._clock() + retry_in,
        )
        if delivered:
            log.info(
                "webhook %s %s attempt %d -> %s in %.0f ms",
                delivery.event_id,
                delivery.event_type,
                number,
                status,
                duration_ms,
            )
        else:
            log.warning(
                "webhook %s %s attempt %d failed (%s); retry in %.2f s",
                delivery.event_id,
                delivery.event_type,
                number,
                error,
                retry_in,
            )
