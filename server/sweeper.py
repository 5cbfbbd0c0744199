"""The sweeper: expires holds on time and notices lost live state.

Every process runs one. For each event it calls sweep.lua when the event's
next hold is due (the script answers the next expiry), and at least every
`watch_interval`, which is also how a Redis that lost its data is noticed:
sweep.lua answers "no state" and the event is rebuilt from Postgres.
Correctness never depends on this timing; promptness of pushed expiries does.
"""

from __future__ import annotations

import asyncio
import logging
import time

from .catalog import EventCatalog
from .holds import HoldEngine
from .live import LiveState
from .metrics import METRICS

log = logging.getLogger("seatmap.sweeper")
EVENT_LIST_REFRESH = 5.0


class Sweeper:
    def __init__(
        self,
        holds: HoldEngine,
        live: LiveState,
        catalog: EventCatalog,
        interval: float,
        watch_interval: float,
    ) -> None:
        self.holds = holds
        self.live = live
        self.catalog = catalog
        self.interval = interval
        self.watch_interval = watch_interval
        self.due: dict[str, float] = {}  # event id -> monotonic time of its next sweep

    async def run(self) -> None:
        refreshed = 0.0
        while True:
            now = time.monotonic()
            if now - refreshed > EVENT_LIST_REFRESH:
                for event_id in await self.catalog.event_ids():
                    self.due.setdefault(event_id, now)
                refreshed = now
            for event_id, due in list(self.due.items()):
                if due <= now:
                    self.due[event_id] = await self._sweep(event_id, now)
            await asyncio.sleep(self.interval)

    def expect(self, event_id: str, expires_ms: int) -> None:
        """A hold of this event expires at `expires_ms` (Redis clock): sweep then,
        even if the event is new to this process's list."""
        now = time.monotonic()
        due = now + max(0.0, expires_ms / 1000.0 - time.time())
        self.due[event_id] = min(self.due.get(event_id, due), due)

    async def _sweep(self, event_id: str, now: float) -> float:
        result = await self.holds.sweep(event_id)
        if result is None:
            METRICS.rebuilds.inc()
            log.warning("live state of event %s is missing in Redis: rebuilding it from Postgres", event_id)
            await self.live.rebuild(await self.catalog.get(event_id))
            return now
        expired, next_expiry_ms = result
        if expired:
            log.debug("expired %d hold(s) of %s", expired, event_id)
        if next_expiry_ms < 0:
            return now + self.watch_interval
        # Redis's clock decides expiry; sweep soon after the next one is due.
        wall_ms = time.time() * 1000
        wait = max(0.0, (next_expiry_ms - wall_ms) / 1000.0)
        return now + min(wait, self.watch_interval)
