"""Redis key names: every key of one event shares the `{event_id}` hash tag,
so all of an event's live state sits in one Redis Cluster slot and every Lua
script touches a single slot. This module owns the naming and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache


@dataclass(frozen=True, slots=True)
class EventKeys:
    state: str  # hash: epoch, version
    seats: str  # hash: seat id -> owner ("h<hold>", "r<order>", "b<order>"); absent = available
    holds: str  # hash: hold id -> cjson hold record
    buyers: str  # hash: buyer id -> live hold id
    expiry: str  # zset: hold id by expiry (ms)
    owned: str  # hash: buyer id -> seats owned through orders
    stream: str  # stream: one entry per version
    layout: str  # hash: msgpack seat layout for best-available

    def for_holds(self) -> tuple[str, ...]:
        """The keys of the scripts that grant, reserve or book seats."""
        return (self.state, self.seats, self.holds, self.buyers, self.expiry, self.owned, self.stream)

    def for_release(self) -> tuple[str, ...]:
        """The keys of release.lua and sweep.lua."""
        return (self.state, self.seats, self.holds, self.buyers, self.expiry, self.stream)

    def all(self) -> tuple[str, ...]:
        return (
            self.state,
            self.seats,
            self.holds,
            self.buyers,
            self.expiry,
            self.owned,
            self.stream,
            self.layout,
        )


@lru_cache(maxsize=4096)
def event_keys(event_id: str) -> EventKeys:
    tag = f"sm:{{{event_id}}}"
    return EventKeys(
        state=f"{tag}:state",
        seats=f"{tag}:seats",
        holds=f"{tag}:holds",
        buyers=f"{tag}:buyers",
        expiry=f"{tag}:expiry",
        owned=f"{tag}:owned",
        stream=f"{tag}:stream",
        layout=f"{tag}:layout",
    )
