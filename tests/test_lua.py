"""Each Lua script called directly against the session's real Redis."""

from __future__ import annotations

import asyncio
import json
import re

import pytest
from redis.asyncio import Redis

from server.keys import event_keys
from server.layout import SeatGeometry, default_focal_point, live_layout
from server.scripts import Scripts
from tests.support import unique_id

HOLD_MS = 60_000
MAX = 8
MAXLEN = 1000


def grid(rows: str, per_row: int, tiers: dict[str, str] | None = None) -> list[SeatGeometry]:
    return [
        SeatGeometry(f"{row}-{n}", "Stalls", row, n, float(n), float(i + 1), (tiers or {}).get(row, "REGULAR"))
        for i, row in enumerate(rows)
        for n in range(1, per_row + 1)
    ]


class LuaEvent:
    """An event's keys plus one-line calls of each script."""

    def __init__(self, scripts: Scripts, event_id: str) -> None:
        self.scripts = scripts
        self.keys = event_keys(event_id)
        self.id = event_id

    async def init(self, seats: list[SeatGeometry], owned=(), counts=None, epoch="e1"):
        layout = live_layout(seats, default_focal_point(seats))
        args = [epoch, len(layout.rows), layout.meta, *layout.rows, len(owned)]
        for seat, owner in owned:
            args += [seat, owner]
        for buyer, count in (counts or {}).items():
            args += [buyer, count]
        return await self.scripts.call("init_event", self.keys.all(), args)

    async def hold(self, buyer, *seats, hold_ms=HOLD_MS, max_seats=MAX):
        k = self.keys
        keys = (k.state, k.seats, k.holds, k.buyers, k.expiry, k.owned, k.stream)
        return await self.scripts.call(
            "hold", keys, [buyer, f"h-{buyer}-{unique_id('h')}", hold_ms, max_seats, MAXLEN, *seats]
        )

    async def best(self, buyer, count, tier="", section="", request_id="", max_seats=MAX):
        k = self.keys
        args = [
            buyer,
            f"h-{buyer}-{unique_id('h')}",
            HOLD_MS,
            max_seats,
            MAXLEN,
            request_id,
            count,
            tier,
            section,
        ]
        return await self.scripts.call("best_available", (*k.all()[:7], k.layout), args)

    async def release(self, buyer, hold_id, *seats):
        k = self.keys
        keys = (k.state, k.seats, k.holds, k.buyers, k.expiry, k.stream)
        return await self.scripts.call("release", keys, [buyer, hold_id, MAXLEN, *seats])

    async def sweep(self, limit=100):
        k = self.keys
        keys = (k.state, k.seats, k.holds, k.buyers, k.expiry, k.stream)
        return await self.scripts.call("sweep", keys, [MAXLEN, limit])

    async def snapshot(self):
        reply = await self.scripts.call("snapshot", (self.keys.state, self.keys.seats), [])
        epoch, version, *pairs = reply
        return epoch, version, dict(zip(pairs[::2], pairs[1::2], strict=True))

    async def stream(self):
        return await self.scripts.redis.xrange(self.keys.stream)


@pytest.fixture
async def event(scripts: Scripts) -> LuaEvent:
    ev = LuaEvent(scripts, unique_id())
    await ev.init(grid("ABC", 10, {"A": "VIP"}))
    return ev


def seats_of(reply) -> list[str]:
    """All seats of the hold in an 'ok' reply."""
    return reply[6 : 6 + int(reply[5])]


def picked_of(reply) -> list[str]:
    return reply[6 + int(reply[5]) :]


# --------------------------------------------------------------------------- init_event


async def test_init_event_creates_once(scripts: Scripts):
    ev = LuaEvent(scripts, unique_id())
    assert await ev.init(grid("A", 4), epoch="first") == ["created", "first"]
    assert await ev.init(grid("A", 4), epoch="second") == ["exists", "first"]
    assert await ev.snapshot() == ("first", 0, {})


async def test_init_event_restores_owned_seats(scripts: Scripts):
    ev = LuaEvent(scripts, unique_id())
    await ev.init(grid("A", 4), owned=[("A-1", "bord1"), ("A-2", "rord2")], counts={"buyer": 2})
    _, _, taken = await ev.snapshot()
    assert taken == {"A-1": "booked", "A-2": "held"}
    # the restored ownership counts against the buyer's limit
    assert (await ev.hold("buyer", "A-3", max_seats=2))[0] == "limit"


# --------------------------------------------------------------------------- hold


async def test_hold_is_all_or_nothing(event: LuaEvent):
    first = await event.hold("ann", "A-1", "A-2")
    assert first[0] == "ok" and seats_of(first) == ["A-1", "A-2"]
    refused = await event.hold("bob", "A-3", "A-2", "A-4")
    assert refused[0] == "unavailable" and refused[2:] == ["A-2"]
    _, _, taken = await event.snapshot()
    assert taken == {"A-1": "held", "A-2": "held"}  # bob got nothing


async def test_hold_is_a_cart_keeping_its_expiry(event: LuaEvent):
    first = await event.hold("ann", "A-1")
    second = await event.hold("ann", "B-1", "B-2")
    assert second[1] == first[1]  # same hold
    assert second[2] == first[2]  # same expiry
    assert seats_of(second) == ["A-1", "B-1", "B-2"]
    assert picked_of(second) == ["B-1", "B-2"]


async def test_retried_hold_neither_holds_twice_nor_fails(event: LuaEvent):
    first = await event.hold("ann", "A-1", "A-2")
    again = await event.hold("ann", "A-1", "A-2")
    assert again[0] == "ok" and seats_of(again) == ["A-1", "A-2"] and picked_of(again) == []
    # no new version for a retry that changed nothing
    assert again[3] == first[3]
    assert len(await event.stream()) == 1


async def test_per_buyer_limit_counts_held_and_owned(scripts: Scripts):
    ev = LuaEvent(scripts, unique_id())
    await ev.init(grid("AB", 10), owned=[("B-1", "bo1")], counts={"ann": 1})
    assert (await ev.hold("ann", "A-1", "A-2", max_seats=3))[0] == "ok"
    limit = await ev.hold("ann", "A-3", max_seats=3)
    assert limit[0] == "limit" and limit[2:] == [2, 1, 1]
    # re-asking for seats already held does not count twice
    assert (await ev.hold("ann", "A-1", "A-2", max_seats=3))[0] == "ok"


async def test_expired_hold_is_free_before_any_sweep(event: LuaEvent):
    await event.hold("ann", "A-1", "A-2", hold_ms=1)
    await asyncio.sleep(0.01)
    taken_over = await event.hold("bob", "A-2")
    assert taken_over[0] == "ok"
    _, _, taken = await event.snapshot()
    # ann's whole hold was expired by bob's call, not just the seat bob wanted
    assert taken == {"A-2": "held"}
    stream = await event.stream()
    assert [entry[0] for entry in stream] == ["1-0", "2-0"]


async def test_fifty_buyers_race_for_one_seat(event: LuaEvent):
    replies = await asyncio.gather(*(event.hold(f"buyer{i}", "C-5") for i in range(50)))
    assert sorted(reply[0] for reply in replies).count("ok") == 1


async def test_missing_event_state(scripts: Scripts):
    ev = LuaEvent(scripts, unique_id())
    assert await ev.hold("ann", "A-1") == ["no_event"]
    assert await ev.best("ann", 2) == ["no_event"]
    assert await ev.release("ann", "h1") == ["no_event"]
    assert await ev.sweep() == [-1]
    assert await scripts.call("snapshot", (ev.keys.state, ev.keys.seats), []) == []


# --------------------------------------------------------------------------- release and sweep


async def test_release_some_then_all(event: LuaEvent):
    held = await event.hold("ann", "A-1", "A-2", "A-3")
    hold_id = held[1]
    assert await event.release("bob", hold_id) == ["not_found", held[3]]
    partial = await event.release("ann", hold_id, "A-2")
    assert partial[0] == "ok" and partial[2:] == ["A-1", "A-3"]
    assert (await event.release("ann", hold_id, "B-9"))[0] == "not_in_hold"
    assert (await event.release("ann", hold_id))[0] == "ok"
    assert (await event.snapshot())[2] == {}
    assert (await event.release("ann", hold_id))[0] == "not_found"


async def test_sweep_expires_due_holds_as_one_diff(event: LuaEvent):
    await event.hold("ann", "A-1", hold_ms=300)
    await event.hold("bob", "B-1", "B-2", hold_ms=300)
    await event.hold("cat", "C-1")  # long hold stays
    await asyncio.sleep(0.35)
    expired, version, next_expiry = await event.sweep()
    assert expired == 2 and version == 4 and next_expiry > 0
    assert (await event.snapshot())[2] == {"C-1": "held"}
    last = (await event.stream())[-1][1]
    assert last["e"] == "e1"
    assert sorted(json.loads(last["c"]).items()) == [
        ("A-1", "available"),
        ("B-1", "available"),
        ("B-2", "available"),
    ]
    assert (await event.sweep())[:2] == [0, 4]


async def test_versions_are_gap_free_and_stream_ids_are_versions(event: LuaEvent):
    await event.hold("ann", "A-1")
    await event.hold("bob", "A-1")  # refused: no version
    await event.hold("bob", "A-2")
    ids = [entry[0] for entry in await event.stream()]
    assert ids == ["1-0", "2-0"]


# --------------------------------------------------------------------------- best available


async def test_best_available_prefers_centre_of_nearest_row(event: LuaEvent):
    reply = await event.best("ann", 2)
    assert reply[0] == "ok" and reply[4] == "1"
    assert sorted(picked_of(reply)) == ["A-5", "A-6"]


async def test_best_available_leaves_no_single_seat_stranded(scripts: Scripts):
    ev = LuaEvent(scripts, unique_id())
    await ev.init(grid("AB", 10))
    await ev.hold("x", "A-2")
    # Nearest block of 4 by distance would be A-4..A-7, stranding A-3 between.
    reply = await ev.best("ann", 4)
    picked = sorted(picked_of(reply), key=lambda s: int(s.split("-")[1]))
    assert picked == ["A-3", "A-4", "A-5", "A-6"]


async def test_best_available_allows_orphans_before_splitting(scripts: Scripts):
    ev = LuaEvent(scripts, unique_id())
    await ev.init(grid("A", 5))
    await ev.hold("x", "A-1")
    # Four free seats A-2..A-5: three together must strand one; still adjacent.
    reply = await ev.best("ann", 3)
    assert reply[4] == "1" and len(picked_of(reply)) == 3


async def test_best_available_splits_rather_than_fails(scripts: Scripts):
    ev = LuaEvent(scripts, unique_id())
    await ev.init(grid("AB", 4))
    await ev.hold("x", "A-2", "B-3")
    await ev.hold("y", "A-4", "B-1")
    # free, B-2, B-4: no two adjacent anywhere
    reply = await ev.best("ann", 3)
    assert reply[0] == "ok" and reply[4] == "0" and len(picked_of(reply)) == 3
    assert (await ev.best("bob", 2))[0] == "unavailable"


async def test_best_available_same_row_before_anywhere(scripts: Scripts):
    ev = LuaEvent(scripts, unique_id())
    await ev.init(grid("AB", 5))
    await ev.hold("x", "A-2", "A-4", "B-2", "B-3", "B-4")
    # A has free (none adjacent); step 3 picks three in row A.
    reply = await ev.best("ann", 3)
    assert reply[4] == "0" and sorted(picked_of(reply)) == ["A-1", "A-3", "A-5"]


async def test_best_available_respects_tier_and_section(event: LuaEvent):
    vip = await event.best("ann", 2, tier="V")
    assert all(seat.startswith("A-") for seat in picked_of(vip))
    regular = await event.best("bob", 3, tier="R")
    assert all(seat.startswith("B-") for seat in picked_of(regular))
    assert (await event.best("cat", 2, section="Balcony"))[0] == "unavailable"


async def test_best_available_retry_with_request_id_picks_nothing_new(event: LuaEvent):
    first = await event.best("ann", 2, request_id="r1")
    again = await event.best("ann", 2, request_id="r1")
    assert seats_of(again) == seats_of(first) and picked_of(again) == picked_of(first)
    more = await event.best("ann", 2, request_id="r2")
    assert len(seats_of(more)) == 4


async def test_best_available_limit(event: LuaEvent):
    assert (await event.best("ann", 3, max_seats=2))[0] == "limit"


# --------------------------------------------------------------------------- loading


async def test_scripts_reload_after_script_flush(event: LuaEvent, redis: Redis):
    await redis.script_flush()
    reply = await event.hold("ann", "A-1")
    assert reply[0] == "ok"
    assert (await redis.script_exists(event.scripts.by_name["hold"].sha)) == [True]


def test_includes_are_spliced_and_every_script_names_its_keys():
    from server.scripts import load_scripts

    for script in load_scripts().values():
        assert not re.search(r"^--- @include", script.source, re.MULTILINE), script.name
        assert "KEYS[1]" in script.source, script.name


# --------------------------------------------------------------------------- orders' seats


async def order_call(event: LuaEvent, script: str, *args):
    k = event.keys
    if script == "free_order":
        return await event.scripts.call(script, (k.state, k.seats, k.owned, k.stream), list(args))
    return await event.scripts.call(script, k.all()[:7], list(args))


async def test_reserve_moves_a_hold_to_an_order_idempotently(event: LuaEvent):
    held = await event.hold("ann", "A-1", "A-2")
    hold_id = held[1]
    assert (await order_call(event, "reserve", "ann", hold_id, "o1", MAXLEN, "A-1", "A-2"))[0] == "ok"
    _, _, taken = await event.snapshot()
    assert taken == {"A-1": "held", "A-2": "held"}  # reserved seats look held to everyone
    assert await event.scripts.redis.hget(event.keys.seats, "A-1") == "ro1"
    assert await event.scripts.redis.hget(event.keys.owned, "ann") == "2"
    assert await event.scripts.redis.hget(event.keys.holds, hold_id) is None  # the hold ended
    # again (a retried checkout): still fine, nothing counted twice
    assert (await order_call(event, "reserve", "ann", hold_id, "o1", MAXLEN, "A-1", "A-2"))[0] == "ok"
    assert await event.scripts.redis.hget(event.keys.owned, "ann") == "2"
    # the seats count against ann's limit
    assert (await event.hold("ann", "B-1", max_seats=2))[0] == "limit"


async def test_reserve_refuses_seats_not_in_the_live_hold(event: LuaEvent):
    held = await event.hold("ann", "A-3", hold_ms=300)
    await asyncio.sleep(0.35)  # the hold lapsed
    reply = await order_call(event, "reserve", "ann", held[1], "o2", MAXLEN, "A-3")
    assert reply[0] == "not_held" and reply[2:] == ["A-3"]
    other = await event.hold("bob", "A-4")
    assert (await order_call(event, "reserve", "ann", other[1], "o3", MAXLEN, "A-4"))[0] == "not_held"


async def test_book_is_all_or_nothing_and_idempotent(event: LuaEvent):
    held = await event.hold("ann", "B-1", "B-2")
    await order_call(event, "reserve", "ann", held[1], "o4", MAXLEN, "B-1", "B-2")
    assert (await order_call(event, "book", "ann", "o4", MAXLEN, "B-1", "B-2"))[0] == "ok"
    assert (await order_call(event, "book", "ann", "o4", MAXLEN, "B-1", "B-2"))[0] == "ok"
    assert (await event.snapshot())[2] == {"B-1": "booked", "B-2": "booked"}
    assert await event.scripts.redis.hget(event.keys.owned, "ann") == "2"
    # a late order whose seat someone holds: nothing booked
    await event.hold("cat", "B-4")
    refused = await order_call(event, "book", "dan", "o5", MAXLEN, "B-3", "B-4")
    assert refused[0] == "taken" and refused[2:] == ["B-4"]
    assert await event.scripts.redis.hget(event.keys.seats, "B-3") is None
    # free seats book directly (a late payment whose seats are still free)
    assert (await order_call(event, "book", "dan", "o6", MAXLEN, "B-3"))[0] == "ok"
    assert await event.scripts.redis.hget(event.keys.owned, "dan") == "1"


async def test_free_order_frees_only_what_the_order_still_has(event: LuaEvent):
    held = await event.hold("ann", "C-1", "C-2")
    await order_call(event, "reserve", "ann", held[1], "o7", MAXLEN, "C-1", "C-2")
    await order_call(event, "book", "ann", "o7", MAXLEN, "C-1", "C-2")
    reply = await order_call(event, "free_order", "ann", "o7", MAXLEN, "C-1", "C-2")
    assert reply[0] == "ok" and reply[2] == 2
    assert (await event.snapshot())[2] == {}
    assert await event.scripts.redis.hget(event.keys.owned, "ann") is None
    # the seat went to someone else meanwhile: a second free leaves it alone
    await event.hold("bob", "C-1")
    assert (await order_call(event, "free_order", "ann", "o7", MAXLEN, "C-1", "C-2"))[2] == 0
    assert (await event.snapshot())[2] == {"C-1": "held"}


async def test_order_scripts_without_live_state(scripts: Scripts):
    ev = LuaEvent(scripts, unique_id())
    assert await order_call(ev, "reserve", "a", "h", "o", MAXLEN, "A-1") == ["no_event"]
    assert await order_call(ev, "book", "a", "o", MAXLEN, "A-1") == ["no_event"]
    assert await order_call(ev, "free_order", "a", "o", MAXLEN, "A-1") == ["no_event"]


async def test_stream_entries_carry_their_time(event: LuaEvent):
    await event.hold("ann", "A-9")
    fields = (await event.stream())[-1][1]
    now_ms = int((await event.scripts.redis.time())[0]) * 1000
    assert abs(int(fields["t"]) - now_ms) < 5000
