"""Lua scripts: loaded from `lua/` once, registered with SCRIPT LOAD, called
by SHA, and reloaded transparently when Redis answers NOSCRIPT (after a
restart or SCRIPT FLUSH).

A script may splice shared Lua from `lua/include/<name>.lua` with a line
`--- @include "<name>"` (the bullmq convention), so each script keeps one job
without copying the helpers every state change needs. This module owns
loading and calling; what a script's reply means belongs to its caller.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import NoScriptError

from .errors import Unavailable
from .metrics import METRICS
from .script_channel import ScriptChannel

LUA_DIR = Path(__file__).resolve().parent.parent / "lua"
_INCLUDE = re.compile(r'^--- @include "([a-z_]+)"\s*$', re.MULTILINE)


class ScriptSourceError(RuntimeError):
    """A script or include is missing or includes itself."""


@dataclass(frozen=True)
class LuaScript:
    name: str
    source: str
    sha: str


def expand_includes(source: str, include_dir: Path, seen: tuple[str, ...] = ()) -> str:
    def splice(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in seen:
            raise ScriptSourceError(f"include cycle: {' -> '.join((*seen, name))}")
        path = include_dir / f"{name}.lua"
        if not path.exists():
            raise ScriptSourceError(f"missing Lua include {path}")
        return expand_includes(path.read_text(), include_dir, (*seen, name))

    return _INCLUDE.sub(splice, source)


def load_scripts(directory: Path = LUA_DIR) -> dict[str, LuaScript]:
    scripts = {}
    for path in sorted(directory.glob("*.lua")):
        source = expand_includes(path.read_text(), directory / "include")
        sha = hashlib.sha1(source.encode()).hexdigest()
        scripts[path.stem] = LuaScript(path.stem, source, sha)
    return scripts


class Scripts:
    """The project's Lua scripts bound to one Redis client. With a
    `ScriptChannel`, calls go through its pipelined connection (the server's
    hot path); without one, through redis-py."""

    def __init__(self, redis: Redis, directory: Path = LUA_DIR, channel: ScriptChannel | None = None) -> None:
        self.redis = redis
        self.channel = channel
        self.by_name = load_scripts(directory)

    async def register(self) -> None:
        for script in self.by_name.values():
            sha = await self.redis.script_load(script.source)
            if sha != script.sha:  # pragma: no cover - would mean a Redis bug
                raise ScriptSourceError(f"Redis hashed {script.name} as {sha}, expected {script.sha}")

    async def call(self, name: str, keys: tuple[str, ...] | list[str], args: list[Any]) -> Any:
        script = self.by_name[name]
        try:
            return await self._evalsha(script.sha, keys, args)
        except NoScriptError:
            # Redis restarted or ran SCRIPT FLUSH: load it again and retry once.
            await self.redis.script_load(script.source)
            return await self._evalsha(script.sha, keys, args)

    async def call_live(
        self,
        name: str,
        keys: tuple[str, ...] | list[str],
        args: list[Any],
        rebuild: Callable[[], Awaitable[None]] | None,
    ) -> Any:
        """A script over an event's live state. The scripts answer `['no_event']`
        when Redis has lost that state: then `rebuild()` restores it from
        Postgres and the call is made once more; still missing is Unavailable."""
        reply = await self.call(name, keys, args)
        if reply and reply[0] == "no_event" and rebuild is not None:
            await rebuild()
            reply = await self.call(name, keys, args)
        if reply and reply[0] == "no_event":
            raise Unavailable("live seat state is being rebuilt; retry shortly")
        return reply

    async def _evalsha(self, sha: str, keys: tuple[str, ...] | list[str], args: list[Any]) -> Any:
        started = time.perf_counter()
        if self.channel is not None:
            reply = await self.channel.evalsha(sha, keys, args)
        else:
            reply = await self.redis.evalsha(sha, len(keys), *keys, *args)
        METRICS.redis_latency.observe(time.perf_counter() - started)
        return reply
