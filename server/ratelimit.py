"""Rate limits shared by every worker and node, counted in Redis.

This module owns the kinds of limit, their Redis keys (`sm:rl:<kind>:<identity>`,
global rather than per event: a flood is a flood whichever event it aims at)
and the calls of `lua/rate_limit.lua` (GCRA: a burst of `limit`, then one
request every period/limit). The rules come from settings; a kind without a
rule is not limited and costs no Redis call.

It never decides who the client is (`server.clientip` does), and it never
fails a request because Redis cannot be reached: a limiter that cannot count
lets the request through and says so in the log (once in a while), since the
request itself meets the same Redis and answers 503 if it needs it, while
sessions, which need no Redis, keep working.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from redis.exceptions import NoScriptError, RedisError

from .clientip import ip_bucket
from .errors import LimitExceeded
from .scripts import Scripts
from .settings import Rate, Settings

log = logging.getLogger("seatmap.ratelimit")

SCRIPT = "rate_limit"
KEY_PREFIX = "sm:rl:"
REDIS_TIMEOUT = 1.0
_FAILURE_LOG_EVERY = 30.0


class Limit(StrEnum):
    HOLDS_PER_BUYER = "holds_per_buyer"
    HOLDS_PER_IP = "holds_per_ip"
    SESSIONS_PER_IP = "sessions_per_ip"
    WEBSOCKETS_PER_IP = "websockets_per_ip"


PER_IP = frozenset({Limit.HOLDS_PER_IP, Limit.SESSIONS_PER_IP, Limit.WEBSOCKETS_PER_IP})

_WHAT = {
    Limit.HOLDS_PER_BUYER: "hold requests from this buyer",
    Limit.HOLDS_PER_IP: "hold requests from this address",
    Limit.SESSIONS_PER_IP: "new sessions from this address",
    Limit.WEBSOCKETS_PER_IP: "websocket connections from this address",
}


def rules_from_settings(settings: Settings) -> dict[str, Rate | None]:
    return {
        Limit.HOLDS_PER_BUYER: settings.rate_holds_per_buyer,
        Limit.HOLDS_PER_IP: settings.rate_holds_per_ip,
        Limit.SESSIONS_PER_IP: settings.rate_sessions_per_ip,
        Limit.WEBSOCKETS_PER_IP: settings.rate_websockets_per_ip,
    }


def limiter_key(kind: str, identity: str) -> str:
    return f"{KEY_PREFIX}{kind}:{identity}"


@dataclass(frozen=True)
class Decision:
    """One answer of the limiter. `retry_after` (seconds) is 0 when allowed, inf when never."""

    kind: str
    allowed: bool
    retry_after: float
    remaining: int
    reset_after: float

    @classmethod
    def from_reply(cls, kind: str, reply: list[int]) -> Decision:
        allowed, retry_ms, remaining, reset_ms = (int(value) for value in reply)
        retry = math.inf if retry_ms < 0 else retry_ms / 1000
        return cls(kind, allowed == 1, retry, remaining, reset_ms / 1000)


def _describe(rate: Rate) -> str:
    period = f"{rate.period:g} s" if rate.period < 60 else f"{rate.period / 60:g} min"
    return f"at most {rate.limit} per {period}"


class RateLimiter:
    """Checks requests against the rules; every worker's limiter counts in the same Redis keys."""

    def __init__(
        self,
        scripts: Scripts,
        rules: Mapping[str, Rate | None],
        *,
        timeout: float = REDIS_TIMEOUT,
        on_refused: Callable[[str], None] | None = None,
    ) -> None:
        self.scripts = scripts
        self.rules = {Limit(kind): rate for kind, rate in rules.items() if rate is not None}
        self.timeout = timeout
        self.on_refused = on_refused
        self._last_failure_log = -math.inf

    @classmethod
    def from_settings(
        cls, scripts: Scripts, settings: Settings, *, on_refused: Callable[[str], None] | None = None
    ) -> RateLimiter:
        return cls(scripts, rules_from_settings(settings), on_refused=on_refused)

    def enabled(self, kind: str) -> bool:
        return kind in self.rules

    def _target(self, kind: str, identity: str | None) -> tuple[Limit, Rate, str] | None:
        """The rule and key one request counts against; None when it is not limited."""
        limit = Limit(kind)  # an unknown kind is a bug, not "no limit"
        rate = self.rules.get(limit)
        if rate is None or not identity:
            return None
        if limit in PER_IP:
            identity = ip_bucket(identity)
            if identity is None:
                return None
        return limit, rate, limiter_key(limit, identity)

    async def hit(self, kind: str, identity: str | None, cost: int = 1) -> Decision | None:
        """Count one request; the decision, or None when nothing was counted (no rule, exempt, no Redis)."""
        decisions = await self._hit_all([(kind, identity)], cost)
        return decisions[0] if decisions else None

    async def check(self, kind: str, identity: str | None) -> None:
        """Count one request of `identity` (a buyer id, or a client address for the per-IP kinds);
        raise LimitExceeded (429, with retry_after) when it is over its limit."""
        await self.check_all((kind, identity))

    async def check_all(self, *requests: tuple[str, str | None]) -> None:
        """Count one request against several rules in one Redis round trip (e.g. per buyer and per
        address); raise LimitExceeded for the rule that frees up last when any refuses. Rules that
        allowed it have counted it even so: a refused flood still spends its other allowances."""
        refused = [decision for decision in await self._hit_all(list(requests)) if not decision.allowed]
        if not refused:
            return
        worst = max(refused, key=lambda decision: decision.retry_after)
        if self.on_refused is not None:
            for decision in refused:
                self.on_refused(decision.kind)
        raise self.error(worst)

    def error(self, decision: Decision) -> LimitExceeded:
        kind = Limit(decision.kind)
        rate = self.rules[kind]
        if math.isinf(decision.retry_after):
            return LimitExceeded(f"too many {_WHAT[kind]}: {_describe(rate)}", rule=kind.value)
        wait = max(1, math.ceil(decision.retry_after))
        return LimitExceeded(
            f"too many {_WHAT[kind]}: {_describe(rate)}; try again in {wait} s",
            retry_after=decision.retry_after,
            rule=kind.value,
            retry_after_ms=math.ceil(decision.retry_after * 1000),
        )

    async def _hit_all(self, requests: list[tuple[str, str | None]], cost: int = 1) -> list[Decision]:
        targets = [target for kind, identity in requests if (target := self._target(kind, identity))]
        if not targets:
            return []
        calls = [(key, [rate.limit, max(1, round(rate.period * 1000)), cost]) for _, rate, key in targets]
        try:
            async with asyncio.timeout(self.timeout):
                replies = await self._evaluate(calls)
        except (RedisError, OSError, TimeoutError) as error:
            self._log_failure(error)
            return []
        return [Decision.from_reply(kind, reply) for (kind, _, _), reply in zip(targets, replies, strict=True)]

    async def _evaluate(self, calls: list[tuple[str, list[int]]]) -> list[list[int]]:
        if len(calls) == 1:
            key, args = calls[0]
            return [await self.scripts.call(SCRIPT, (key,), args)]
        script = self.scripts.by_name[SCRIPT]
        redis = self.scripts.redis
        for attempt in range(2):
            pipe = redis.pipeline(transaction=False)
            for key, args in calls:
                pipe.evalsha(script.sha, 1, key, *args)
            try:
                return list(await pipe.execute())
            except NoScriptError:
                if attempt:
                    raise
                # Redis restarted or ran SCRIPT FLUSH: load it again and retry once.
                await redis.script_load(script.source)
        raise AssertionError("unreachable")  # pragma: no cover

    def _log_failure(self, error: BaseException) -> None:
        now = time.monotonic()
        if now - self._last_failure_log >= _FAILURE_LOG_EVERY:
            self._last_failure_log = now
            log.warning(
                "rate limits cannot be counted (%s: %s); letting requests through until Redis answers",
                type(error).__name__,
                error,
            )
