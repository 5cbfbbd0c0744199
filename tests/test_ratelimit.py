"""Rate limits: lua/rate_limit.lua called directly against the session's real
Redis, and RateLimiter as the workers use it (two limiters on two Redis
clients standing for two worker processes)."""

from __future__ import annotations

import asyncio
import logging
import math
import random

import pytest
from redis.asyncio import Redis

from server.api.common import error_response
from server.errors import LimitExceeded
from server.ratelimit import Limit, RateLimiter, limiter_key, rules_from_settings
from server.scripts import Scripts
from server.settings import Rate, Settings, SettingsError
from tests.support import free_port, unique_id


def some_ip() -> str:
    """An address from the benchmarking range, different in each test."""
    return f"198.18.{random.randrange(256)}.{random.randrange(1, 255)}"


async def call(scripts: Scripts, key: str, limit: int, period_ms: int, cost: int = 1) -> list[int]:
    return await scripts.call("rate_limit", (key,), [limit, period_ms, cost])


# --- the script ---------------------------------------------------------------------------------------


async def test_a_burst_of_limit_is_allowed_then_refused_with_the_wait(scripts: Scripts, redis: Redis):
    key = limiter_key("test", unique_id("burst"))
    replies = [await call(scripts, key, 3, 1000) for _ in range(3)]
    assert [reply[0] for reply in replies] == [1, 1, 1]
    assert [reply[2] for reply in replies] == [2, 1, 0]  # remaining after each
    stored = await redis.get(key)

    refused = await call(scripts, key, 3, 1000)
    assert refused[0] == 0
    assert 1 <= refused[1] <= 334  # one request frees up every 1000/3 ms
    assert await redis.get(key) == stored  # a refusal changes nothing
    assert 0 < await redis.pttl(key) <= 1000  # gone once the limiter is full again


async def test_the_steady_rate_comes_back_after_the_wait(scripts: Scripts):
    key = limiter_key("test", unique_id("steady"))
    for _ in range(4):
        assert (await call(scripts, key, 4, 400))[0] == 1
    refused = await call(scripts, key, 4, 400)
    assert refused[0] == 0
    await asyncio.sleep(refused[1] / 1000 + 0.01)
    assert (await call(scripts, key, 4, 400))[0] == 1
    assert (await call(scripts, key, 4, 400))[0] == 0  # only one came back, not the burst


async def test_an_idle_limiter_costs_no_memory(scripts: Scripts, redis: Redis):
    key = limiter_key("test", unique_id("idle"))
    assert (await call(scripts, key, 2, 100))[0] == 1
    await asyncio.sleep(0.15)
    assert await redis.exists(key) == 0
    assert (await call(scripts, key, 2, 100))[2] == 1  # a full burst again


async def test_a_cost_over_the_limit_is_refused_for_good(scripts: Scripts, redis: Redis):
    key = limiter_key("test", unique_id("cost"))
    assert await call(scripts, key, 2, 1000, cost=3) == [0, -1, 0, 0]
    assert await redis.exists(key) == 0
    assert (await call(scripts, key, 2, 1000, cost=2))[:3] == [1, 0, 0]


async def test_the_script_is_reloaded_after_script_flush(scripts: Scripts, redis: Redis):
    key = limiter_key("test", unique_id("flush"))
    assert (await call(scripts, key, 5, 1000))[0] == 1
    await redis.script_flush()
    assert (await call(scripts, key, 5, 1000))[:3] == [1, 0, 3]
    # The pipelined path (several rules at once) reloads it too.
    await redis.script_flush()
    limiter = RateLimiter(scripts, {Limit.HOLDS_PER_BUYER: Rate(1, 10.0), Limit.HOLDS_PER_IP: Rate(1, 10.0)})
    buyer, ip = unique_id("b"), some_ip()
    await limiter.check_all((Limit.HOLDS_PER_BUYER, buyer), (Limit.HOLDS_PER_IP, ip))
    with pytest.raises(LimitExceeded):
        await limiter.check_all((Limit.HOLDS_PER_BUYER, buyer), (Limit.HOLDS_PER_IP, ip))


# --- RateLimiter -------------------------------------------------------------------------------------


async def test_a_buyer_over_the_limit_gets_429_with_retry_after_and_recovers(scripts: Scripts):
    limiter = RateLimiter(scripts, {Limit.HOLDS_PER_BUYER: Rate(3, 0.6)})
    buyer = unique_id("buyer")
    for _ in range(3):
        await limiter.check(Limit.HOLDS_PER_BUYER, buyer)
    with pytest.raises(LimitExceeded) as refused:
        await limiter.check(Limit.HOLDS_PER_BUYER, buyer)
    error = refused.value
    assert 0 < error.retry_after <= 0.2 + 0.01
    body = error.body()
    assert body["error"] == "limit_exceeded" and body["rule"] == "holds_per_buyer"
    assert "at most 3 per 0.6 s" in body["details"]
    response = error_response(error)
    assert response.status_code == 429 and response.headers["retry-after"] == "1"

    other = unique_id("buyer")  # limits are per buyer
    await limiter.check(Limit.HOLDS_PER_BUYER, other)

    await asyncio.sleep(error.retry_after + 0.01)
    await limiter.check(Limit.HOLDS_PER_BUYER, buyer)


async def test_two_workers_share_one_limit(redis_url: str):
    """Two limiters on two Redis connections (two worker processes) count in the same key."""
    rules = {Limit.SESSIONS_PER_IP: Rate(4, 10.0)}
    clients = [Redis.from_url(redis_url, decode_responses=True) for _ in range(2)]
    try:
        workers = []
        for client in clients:
            loaded = Scripts(client)
            await loaded.register()
            workers.append(RateLimiter(loaded, rules))
        ip = some_ip()
        await clients[0].delete(limiter_key(Limit.SESSIONS_PER_IP, ip))
        for worker in (workers[0], workers[1], workers[0], workers[1]):
            await worker.check(Limit.SESSIONS_PER_IP, ip)
        for worker in workers:
            with pytest.raises(LimitExceeded):
                await worker.check(Limit.SESSIONS_PER_IP, ip)
    finally:
        for client in clients:
            await client.aclose()


async def test_several_rules_in_one_round_trip_refuse_on_the_tightest(scripts: Scripts):
    limiter = RateLimiter(
        scripts, {Limit.HOLDS_PER_BUYER: Rate(100, 10.0), Limit.HOLDS_PER_IP: Rate(2, 10.0)}
    )
    ip = some_ip()
    await limiter.check_all((Limit.HOLDS_PER_BUYER, unique_id("b")), (Limit.HOLDS_PER_IP, ip))
    await limiter.check_all((Limit.HOLDS_PER_BUYER, unique_id("b")), (Limit.HOLDS_PER_IP, ip))
    with pytest.raises(LimitExceeded) as refused:
        await limiter.check_all((Limit.HOLDS_PER_BUYER, unique_id("b")), (Limit.HOLDS_PER_IP, ip))
    assert refused.value.extra["rule"] == "holds_per_ip"
    assert 4.9 < refused.value.retry_after <= 5.0


async def test_addresses_are_counted_as_clients_not_as_proxies_or_loopback(scripts: Scripts, redis: Redis):
    limiter = RateLimiter(scripts, {Limit.WEBSOCKETS_PER_IP: Rate(2, 10.0)})
    # Loopback peers are not limited per address (a local tool, or a proxy not yet trusted).
    for _ in range(5):
        await limiter.check(Limit.WEBSOCKETS_PER_IP, "127.0.0.1")
        await limiter.check(Limit.WEBSOCKETS_PER_IP, "::1")
    assert await redis.exists(limiter_key(Limit.WEBSOCKETS_PER_IP, "127.0.0.1")) == 0
    # An IPv6 client counts as its /64: hopping addresses within it does not help.
    prefix = f"2001:db8:{random.randrange(65536):x}:{random.randrange(65536):x}"
    await limiter.check(Limit.WEBSOCKETS_PER_IP, f"{prefix}::1")
    await limiter.check(Limit.WEBSOCKETS_PER_IP, f"{prefix}:ffff::2")
    with pytest.raises(LimitExceeded):
        await limiter.check(Limit.WEBSOCKETS_PER_IP, f"{prefix}::3")
    # An unknown peer is not limited per address either.
    await limiter.check(Limit.WEBSOCKETS_PER_IP, None)


async def test_a_rule_that_is_off_costs_nothing_and_unknown_kinds_are_bugs(scripts: Scripts, redis: Redis):
    limiter = RateLimiter(scripts, {Limit.HOLDS_PER_BUYER: None})
    buyer = unique_id("b")
    assert not limiter.enabled(Limit.HOLDS_PER_BUYER)
    for _ in range(50):
        await limiter.check(Limit.HOLDS_PER_BUYER, buyer)
    assert await limiter.hit(Limit.HOLDS_PER_BUYER, buyer) is None
    assert await redis.exists(limiter_key(Limit.HOLDS_PER_BUYER, buyer)) == 0
    with pytest.raises(ValueError):
        await limiter.check("holds_per_byuer", buyer)


async def test_without_redis_requests_are_let_through_and_logged(caplog: pytest.LogCaptureFixture):
    closed = Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", decode_responses=True)
    try:
        limiter = RateLimiter(Scripts(closed), {Limit.SESSIONS_PER_IP: Rate(1, 10.0)}, timeout=2.0)
        with caplog.at_level(logging.WARNING, logger="seatmap.ratelimit"):
            for _ in range(3):
                await limiter.check(Limit.SESSIONS_PER_IP, some_ip())
        warnings = [record for record in caplog.records if record.name == "seatmap.ratelimit"]
        assert len(warnings) == 1  # once in a while, not once per request
        assert "letting requests through" in warnings[0].getMessage()
    finally:
        await closed.aclose()


async def test_refusals_are_reported_for_metrics(scripts: Scripts):
    refused: list[str] = []
    limiter = RateLimiter(scripts, {Limit.HOLDS_PER_BUYER: Rate(1, 10.0)}, on_refused=refused.append)
    buyer = unique_id("b")
    await limiter.check(Limit.HOLDS_PER_BUYER, buyer)
    with pytest.raises(LimitExceeded):
        await limiter.check(Limit.HOLDS_PER_BUYER, buyer)
    assert refused == ["holds_per_buyer"]


# --- settings -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "rate"),
    [
        ("20/10s", Rate(20, 10.0)),
        ("600/1m", Rate(600, 60.0)),
        ("100/m", Rate(100, 60.0)),
        ("5/500ms", Rate(5, 0.5)),
        ("30/10", Rate(30, 10.0)),
        ("1000/1h", Rate(1000, 3600.0)),
        (" 7 / 2.5s ", Rate(7, 2.5)),
        ("off", None),
        ("0", None),
        ("0/10s", None),
    ],
)
def test_rates_are_written_as_requests_per_window(raw: str, rate: Rate | None):
    settings = Settings.from_env({"SEATMAP_RATE_HOLDS_PER_BUYER": raw})
    assert settings.rate_holds_per_buyer == rate
    assert Settings.from_env(settings.as_env()).rate_holds_per_buyer == rate


@pytest.mark.parametrize("raw", ["20", "20/", "20 per 10s", "-1/10s", "20/0s", "20/2d", "20/10x"])
def test_bad_rates_are_refused_by_name(raw: str):
    with pytest.raises(SettingsError, match="SEATMAP_RATE_SESSIONS_PER_IP"):
        Settings.from_env({"SEATMAP_RATE_SESSIONS_PER_IP": raw})


def test_default_rules_cover_every_kind_and_are_generous():
    rules = rules_from_settings(Settings())
    assert set(rules) == set(Limit)
    for rate in rules.values():
        assert rate is not None
        per_second = rate.limit / rate.period
        assert rate.limit >= 60 and per_second >= 2, rate  # a human, or a NAT full of them, never meets them
    assert math.isclose(rules[Limit.HOLDS_PER_BUYER].period, 10.0)
