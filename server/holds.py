"""The hold engine: buyers' seat holds over the Lua scripts in `lua/`.

Owns the translation between a buyer's request and a script call: it
validates seat ids against the event's layout (so a script never sees an
unknown or duplicate seat), picks the keys and arguments, and maps each
script reply to a result or a typed error. Deciding who gets a seat is the
scripts' job, atomically inside Redis; this module never decides it.
"""

from __future__ import annotations

import secrets
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import partial

import msgspec

from .catalog import Event
from .errors import LimitExceeded, NotFound, SeatmapError, SeatsUnavailable, ValidationError
from .keys import event_keys
from .metrics import METRICS
from .scripts import Scripts
from .settings import Settings

TIER_LETTER = {"REGULAR": "R", "PREMIUM": "P", "VIP": "V"}


@dataclass(frozen=True, slots=True)
class HoldGranted:
    hold_id: str
    event_id: str
    seats: list[str]
    expires_ms: int
    version: int
    picked: list[str]
    adjacent: bool | None  # None for explicit seats


@dataclass(frozen=True, slots=True)
class HoldRecord:
    hold_id: str
    event_id: str
    buyer_id: str
    seats: list[str]
    expires_ms: int


class _StoredHold(msgspec.Struct):
    b: str
    x: int
    s: list[str] | dict[str, str]  # cjson writes an empty list as {}


_stored_hold = msgspec.json.Decoder(_StoredHold)


def new_hold_id(event_id: str) -> str:
    """Hold ids carry their event (after the dot) so `/api/holds/{id}` needs no index."""
    return f"h{secrets.token_urlsafe(12)}.{event_id}"


def event_of_hold(hold_id: str) -> str:
    _, sep, event_id = hold_id.partition(".")
    if not sep or not event_id:
        raise NotFound("no such hold")
    return event_id


def check_seat_ids(event: Event, seats: Sequence[str]) -> None:
    """Refuse (422) an empty request, duplicates and ids the event does not have."""
    if not seats:
        raise ValidationError("name at least one seat")
    duplicates = sorted(seat for seat, times in Counter(seats).items() if times > 1)
    if duplicates:
        raise ValidationError("each seat may be named once", seats=duplicates)
    unknown = [seat for seat in seats if seat not in event.index]
    if unknown:
        raise ValidationError(f"{len(unknown)} seat id(s) do not exist in this event", seats=unknown)


def parse_granted(event_id: str, reply: list) -> HoldGranted:
    _, hold_id, expires_ms, version, adjacent, count, *rest = reply
    count = int(count)
    return HoldGranted(
        hold_id=hold_id,
        event_id=event_id,
        seats=rest[:count],
        expires_ms=int(expires_ms),
        version=int(version),
        picked=rest[count:],
        adjacent=None if adjacent == "" else adjacent == "1",
    )


def _refusal(reply: list, max_seats: int) -> Exception:
    status = reply[0]
    if status == "unavailable":
        seats = list(reply[2:])
        if seats:
            return SeatsUnavailable(f"{len(seats)} seat(s) are held or booked by someone else", seats=seats)
        return SeatsUnavailable("not enough seats are left for this request", seats=[])
    if status == "limit":
        _, _, held, owned, requested = reply
        return LimitExceeded(
            f"a buyer may hold or own at most {max_seats} seats of an event "
            f"(holding {held}, owning {owned}, asked for {requested} more)",
            limit=max_seats,
        )
    return RuntimeError(f"unexpected script reply {reply!r}")


class HoldEngine:
    def __init__(
        self,
        scripts: Scripts,
        settings: Settings,
        on_state_missing: Callable[[Event], Awaitable[None]] | None = None,
    ) -> None:
        self.scripts = scripts
        self.redis = scripts.redis
        self.settings = settings
        self.on_state_missing = on_state_missing
        self.hold_ms = settings.hold_seconds * 1000
        self.max_seats = settings.max_seats_per_buyer
        self.maxlen = settings.stream_maxlen
        # Told of every granted hold's expiry, so the sweeper frees it on time.
        self.expiry_listener: Callable[[str, int], None] | None = None

    async def _call(self, event: Event, name: str, keys: tuple[str, ...], args: list) -> list:
        rebuild = partial(self.on_state_missing, event) if self.on_state_missing else None
        return await self.scripts.call_live(name, keys, args, rebuild)

    async def hold_seats(self, event: Event, buyer_id: str, seats: Sequence[str]) -> HoldGranted:
        check_seat_ids(event, seats)
        keys = event_keys(event.id)
        reply = await self._call(
            event,
            "hold",
            keys.for_holds(),
            [buyer_id, new_hold_id(event.id), self.hold_ms, self.max_seats, self.maxlen, *seats],
        )
        return self._granted(event, reply)

    def _granted(self, event: Event, reply: list) -> HoldGranted:
        if reply[0] != "ok":
            raise _refusal(reply, self.max_seats)
        granted = parse_granted(event.id, reply)
        if self.expiry_listener is not None:
            self.expiry_listener(event.id, granted.expires_ms)
        return granted

    async def hold_best(
        self,
        event: Event,
        buyer_id: str,
        count: int,
        tier: str | None = None,
        section: str | None = None,
        request_id: str = "",
    ) -> HoldGranted:
        if section is not None and section not in event.sections:
            raise ValidationError(f"the event has no section {section!r}", sections=sorted(event.sections))
        keys = event_keys(event.id)
        reply = await self._call(
            event,
            "best_available",
            (*keys.for_holds(), keys.layout),
            [
                buyer_id,
                new_hold_id(event.id),
                self.hold_ms,
                self.max_seats,
                self.maxlen,
                request_id,
                count,
                TIER_LETTER[tier] if tier else "",
                section or "",
            ],
        )
        return self._granted(event, reply)

    async def release(self, event: Event, buyer_id: str, hold_id: str, seats: Sequence[str] | None = None) -> list[str]:
        """Release some or all seats of the buyer's hold; returns the seats still held."""
        if seats is not None:
            check_seat_ids(event, seats)
        keys = event_keys(event.id)
        reply = await self._call(
            event,
            "release",
            keys.for_release(),
            [buyer_id, hold_id, self.maxlen, *(seats or ())],
        )
        status = reply[0]
        if status == "not_found":
            raise NotFound("no such hold")
        if status == "not_in_hold":
            raise ValidationError("these seats are not in the hold", seats=list(reply[2:]))
        return list(reply[2:])

    async def get_hold(self, event: Event, hold_id: str) -> HoldRecord | None:
        """The live hold, or None when it does not exist or has expired."""
        keys = event_keys(event.id)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hget(keys.holds, hold_id)
            pipe.time()
            raw, (seconds, micros) = await pipe.execute()
        if raw is None:
            return None
        stored = _stored_hold.decode(raw)
        now_ms = seconds * 1000 + micros // 1000
        if stored.x <= now_ms:
            return None
        seats = stored.s if isinstance(stored.s, list) else []
        return HoldRecord(hold_id, event.id, stored.b, seats, stored.x)

    async def sweep(self, event_id: str, limit: int = 1000) -> tuple[int, int] | None:
        """Expire due holds; (expired, next expiry ms or -1), or None if the state is missing."""
        keys = event_keys(event_id)
        reply = await self.scripts.call(
            "sweep",
            keys.for_release(),
            [self.maxlen, limit],
        )
        if reply[0] == -1:
            return None
        return int(reply[0]), int(reply[2])

    async def request(
        self,
        event: Event,
        buyer_id: str,
        *,
        seats: Sequence[str] | None,
        count: int | None,
        tier: str | None,
        section: str | None,
        request_id: str = "",
        path: str = "http",
    ) -> HoldGranted:
        """A hold request as clients send it: explicit `seats`, or `count`
        (+ `tier`, `section`) for the best available. Counted and timed by
        outcome and by the edge it came through (`path`)."""
        started = time.perf_counter()
        try:
            granted = await self._request(event, buyer_id, seats, count, tier, section, request_id)
        except SeatmapError as error:
            METRICS.holds.inc(1, error.code)
            raise
        METRICS.holds.inc(1, "granted")
        METRICS.hold_latency.observe(time.perf_counter() - started, path)
        return granted

    async def _request(
        self,
        event: Event,
        buyer_id: str,
        seats: Sequence[str] | None,
        count: int | None,
        tier: str | None,
        section: str | None,
        request_id: str,
    ) -> HoldGranted:
        if seats is not None and count is not None:
            raise ValidationError("send either 'seats' or 'count', not both")
        if seats is not None:
            if tier is not None or section is not None:
                raise ValidationError("'tier' and 'section' go with 'count', not with 'seats'")
            return await self.hold_seats(event, buyer_id, seats)
        if count is None:
            raise ValidationError("send 'seats' (a list of seat ids) or 'count' (how many best seats)")
        return await self.hold_best(event, buyer_id, count, tier, section, request_id)
