"""Orders' seats in Redis: a checkout's reservation, a booking, and giving
seats back, over reserve.lua, book.lua and free_order.lua. Like the hold
engine it only carries requests to the scripts and maps their replies; the
scripts decide, atomically, and every change is a diff like any other."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from functools import partial

from .catalog import Event
from .keys import event_keys
from .scripts import Scripts


class Reservations:
    def __init__(
        self,
        scripts: Scripts,
        maxlen: int,
        on_state_missing: Callable[[Event], Awaitable[None]] | None = None,
    ) -> None:
        self.scripts = scripts
        self.maxlen = maxlen
        self.on_state_missing = on_state_missing

    async def _call(self, event: Event, name: str, keys: tuple[str, ...], args: list) -> list:
        rebuild = partial(self.on_state_missing, event) if self.on_state_missing else None
        return await self.scripts.call_live(name, keys, args, rebuild)

    @staticmethod
    def _keys(event_id: str) -> tuple[str, ...]:
        return event_keys(event_id).for_holds()

    async def reserve(self, event: Event, buyer: str, hold_id: str, order_id: str, seats: Sequence[str]) -> list[str]:
        """Move the hold's seats to the order; returns the seats that were not
        in the live hold (empty on success)."""
        reply = await self._call(
            event, "reserve", self._keys(event.id), [buyer, hold_id, order_id, self.maxlen, *seats]
        )
        return [] if reply[0] == "ok" else list(reply[2:])

    async def book(self, event: Event, buyer: str, order_id: str, seats: Sequence[str]) -> list[str]:
        """Book the order's seats, all or nothing; returns the seats someone else has (empty on success)."""
        reply = await self._call(event, "book", self._keys(event.id), [buyer, order_id, self.maxlen, *seats])
        return [] if reply[0] == "ok" else list(reply[2:])

    async def free(self, event: Event, buyer: str, order_id: str, seats: Sequence[str]) -> int:
        """Put back on sale the seats the order still reserves or owns; returns how many."""
        k = event_keys(event.id)
        reply = await self.scripts.call(
            "free_order", (k.state, k.seats, k.owned, k.stream), [buyer, order_id, self.maxlen, *seats]
        )
        if reply[0] == "no_event":
            # Nothing to free: a rebuild from Postgres will not restore this order's seats.
            return 0
        return int(reply[2])
