"""`holds`: seat holds per second and hold latency, the server against the
stores underneath it, at the same concurrency for the same time.

Every operation is a real, successful all-or-nothing hold of 4 seats
followed by its release, so the venue never fills and every hold does the
full work (check 4 seats, take them, record the hold, append the diff). Each
of the `concurrency` tasks owns its own blocks of 4 seats (disjoint from every
other task's), so a hold never collides; a refused hold is counted as an
error, never as a hold. The phases:

  (a)  server: the websocket `hold` / `release` frames of Seatmap, one
       connection (one buyer) per task, in client processes apart from the
       server. Every connection also receives the diffs every hold makes.
  (b)  redis: redis-py asyncio calling the same `hold.lua` / `release.lua`
       (by SHA, through `server.scripts.Scripts`), one call at a time per task.
  (b') redis-pipelined: the same, 8 hold+release pairs per pipeline.
  (c)  postgres: the row-locking design: a transaction doing
       `SELECT … FOR UPDATE` on the 4 seat rows, checking they are free, then
       `UPDATE`; release is one `UPDATE` (asyncpg pool, default durability).
  (c') postgres-async: the same with `synchronous_commit = off` (a commit no
       longer waits for its WAL flush: about what Redis's everysec AOF promises).
  (d)  redis-benchmark: `EVALSHA` of `hold.lua` with fresh random buyer, hold
       and seat ids per call (holds only, no release: it cannot chain calls),
       unpipelined and with `-P 16`, when `redis-benchmark` is installed.

Phases (b) to (d) use scratch events no server watches, so the idle server
does not relay their diffs; (a) uses an event created through the API.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import itertools
import secrets
import shutil
import subprocess
import time
from array import array
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import msgspec
from redis.asyncio import Redis

from server.holds import new_hold_id
from server.keys import event_keys
from server.scripts import Scripts
from server.settings import Settings

from . import wsclient
from .measure import CpuWindow, Profiler, pid_listening_on
from .procs import Workers, split
from .report import Progress, fmt, table, verdict
from .seating import blocks_for_task, blocks_of, create_scratch_event, drop_events, venue
from .stack import Stack, host_port, unique_event_id
from .stats import ratio, summarize

PHASES = ("server", "engine", "redis", "redis-pipelined", "postgres", "postgres-async", "redis-benchmark")
SEATS_PER_HOLD = 4
PIPELINE_DEPTH = 8  # hold+release pairs per pipeline in (b')
HOLD_MS = 300_000
DEFAULTS = Settings()
TARGET_A_OVER_B = 0.5
TARGET_OVER_POSTGRES = 10.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--concurrency", type=int, default=64, help="holds in flight at once (default 64)")
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds per phase (default 10)")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds before each phase")
    parser.add_argument("--processes", type=int, default=2, help="client processes (default 2)")
    parser.add_argument("--seats", type=int, default=4000, help="venue size (default 4000)")
    parser.add_argument(
        "--phases",
        default=",".join(PHASES),
        help=f"comma-separated phases to run (default all: {','.join(PHASES)})",
    )
    parser.add_argument(
        "--rb-requests",
        type=int,
        default=100_000,
        help="redis-benchmark requests unpipelined (pipelined: 3x) (default 100000)",
    )
    parser.add_argument(
        "--profile",
        metavar="PATH",
        help="sample the server with py-spy over phase (a) into PATH (collapsed stacks)",
    )


# ---------------------------------------------------------------------------- in the client processes


class _ServerPhase:
    """(a): one websocket per task, holds and releases as frames."""

    def __init__(self, url: str, event_id: str, tokens: list[str], blocks: list[list[list[str]]]) -> None:
        self.url, self.event_id, self.tokens, self.blocks = url, event_id, tokens, blocks
        self.clients: list[wsclient.WsClient] = []
        self.waiting: dict[wsclient.WsClient, asyncio.Future[dict[str, Any]]] = {}
        self.turn = [0] * len(tokens)
        self.refs = itertools.count()
        self.diffs = 0

    def _on_frame(self, client: wsclient.WsClient, payload: bytes, received: float) -> None:
        if payload.startswith(b'{"type":"diff"') or payload.startswith(b'{"type":"snapshot"'):
            self.diffs += 1
            return
        future = self.waiting.pop(client, None)
        if future is not None and not future.done():
            future.set_result(msgspec.json.decode(payload))

    async def open(self) -> None:
        host, port = host_port(self.url)
        for token in self.tokens:
            path = f"/ws/events/{self.event_id}?token={token}&compact=1"
            self.clients.append(await wsclient.connect(host, port, path, self._on_frame))

    async def _request(self, client: wsclient.WsClient, frame: dict[str, Any]) -> dict[str, Any]:
        future = asyncio.get_running_loop().create_future()
        self.waiting[client] = future
        client.send_text(msgspec.json.encode(frame))
        return await asyncio.wait_for(future, 30)

    async def cycle(self, task: int) -> tuple[int, float]:
        client = self.clients[task]
        blocks = self.blocks[task]
        seats = blocks[self.turn[task] % len(blocks)]
        self.turn[task] += 1
        started = time.perf_counter()
        reply = await self._request(client, {"type": "hold", "ref": f"h{next(self.refs)}", "seats": seats})
        latency = time.perf_counter() - started
        if reply.get("type") != "hold_ok" or len(reply.get("picked", ())) != SEATS_PER_HOLD:
            return 0, latency
        released = await self._request(
            client, {"type": "release", "ref": f"r{next(self.refs)}", "hold_id": reply["hold_id"]}
        )
        if released.get("type") != "release_ok":
            raise RuntimeError(f"release refused: {released}")
        return 1, latency

    async def close(self) -> None:
        for client in self.clients:
            client.close()
        await asyncio.gather(*(c.closed for c in self.clients), return_exceptions=True)


class _RedisPhase:
    """(b) and (b'): redis-py asyncio calling hold.lua and release.lua by SHA."""

    def __init__(
        self, redis_url: str, event_id: str, buyers: list[str], blocks: list[list[list[str]]], depth: int
    ) -> None:
        self.redis = Redis.from_url(redis_url, decode_responses=True, max_connections=len(buyers) + 4)
        self.scripts = Scripts(self.redis)
        self.event_id, self.buyers, self.blocks, self.depth = event_id, buyers, blocks, depth
        keys = event_keys(event_id)
        self.hold_keys = (
            keys.state,
            keys.seats,
            keys.holds,
            keys.buyers,
            keys.expiry,
            keys.owned,
            keys.stream,
        )
        self.release_keys = (keys.state, keys.seats, keys.holds, keys.buyers, keys.expiry, keys.stream)
        self.turn = [0] * len(buyers)
        self.diffs = 0

    async def open(self) -> None:
        await self.scripts.register()
        # Open every connection now, not during the measured window.
        await asyncio.gather(*(self.redis.ping() for _ in self.buyers))

    def _hold_args(self, task: int, hold_id: str) -> list[Any]:
        blocks = self.blocks[task]
        seats = blocks[self.turn[task] % len(blocks)]
        self.turn[task] += 1
        return [
            self.buyers[task],
            hold_id,
            HOLD_MS,
            DEFAULTS.max_seats_per_buyer,
            DEFAULTS.stream_maxlen,
            *seats,
        ]

    async def cycle(self, task: int) -> tuple[int, float]:
        if self.depth > 1:
            return await self._pipelined(task)
        hold_id = new_hold_id(self.event_id)
        args = self._hold_args(task, hold_id)
        started = time.perf_counter()
        reply = await self.scripts.call("hold", self.hold_keys, args)
        latency = time.perf_counter() - started
        if reply[0] != "ok" or len(reply) - 6 - int(reply[5]) != SEATS_PER_HOLD:
            return 0, latency
        released = await self.scripts.call(
            "release", self.release_keys, [self.buyers[task], reply[1], DEFAULTS.stream_maxlen]
        )
        if released[0] != "ok":
            raise RuntimeError(f"release refused: {released}")
        return 1, latency

    async def _pipelined(self, task: int) -> tuple[int, float]:
        hold_sha = self.scripts.by_name["hold"].sha
        release_sha = self.scripts.by_name["release"].sha
        buyer = self.buyers[task]
        async with self.redis.pipeline(transaction=False) as pipe:
            for _ in range(self.depth):
                hold_id = new_hold_id(self.event_id)
                pipe.evalsha(hold_sha, len(self.hold_keys), *self.hold_keys, *self._hold_args(task, hold_id))
                pipe.evalsha(
                    release_sha,
                    len(self.release_keys),
                    *self.release_keys,
                    buyer,
                    hold_id,
                    DEFAULTS.stream_maxlen,
                )
            started = time.perf_counter()
            replies = await pipe.execute()
            latency = time.perf_counter() - started
        held = sum(1 for reply in replies[::2] if reply[0] == "ok" and len(reply) - 6 - int(reply[5]) == SEATS_PER_HOLD)
        if any(reply[0] != "ok" for reply in replies[1::2]):
            raise RuntimeError("a pipelined release was refused")
        return held, latency

    async def close(self) -> None:
        await self.redis.aclose()


class _EnginePhase:
    """(e): the server's own hold engine (server.holds.HoldEngine over its
    pipelined ScriptChannel), driven in process: the hold path without the
    websocket edge, beside the Postgres row-lock design at the same concurrency."""

    def __init__(self, redis_url: str, body: dict[str, Any], buyers: list[str], blocks: list[list[list[str]]]) -> None:
        from server.catalog import event_from_request
        from server.holds import HoldEngine
        from server.protocol import create_event_decoder
        from server.script_channel import ScriptChannel

        self.redis = Redis.from_url(redis_url, decode_responses=True)
        self.channel = ScriptChannel(redis_url)
        self.engine = HoldEngine(Scripts(self.redis, channel=self.channel), DEFAULTS)
        self.event = event_from_request(create_event_decoder.decode(msgspec.json.encode(body)))
        self.buyers, self.blocks = buyers, blocks
        self.turn = [0] * len(buyers)
        self.diffs = 0

    async def open(self) -> None:
        await self.engine.scripts.register()
        await self.channel.execute("PING")

    async def cycle(self, task: int) -> tuple[int, float]:
        blocks = self.blocks[task]
        seats = blocks[self.turn[task] % len(blocks)]
        self.turn[task] += 1
        started = time.perf_counter()
        granted = await self.engine.hold_seats(self.event, self.buyers[task], seats)
        latency = time.perf_counter() - started
        await self.engine.release(self.event, self.buyers[task], granted.hold_id)
        return (1 if len(granted.picked) == SEATS_PER_HOLD else 0), latency

    async def close(self) -> None:
        self.channel.close()
        await self.redis.aclose()


LOCK_SQL = (
    "SELECT seat_id, (hold_id IS NULL OR expires_at <= now()) AND NOT booked AS free FROM {table} "
    "WHERE event_id = $1 AND seat_id = ANY($2::text[]) ORDER BY seat_id FOR UPDATE"
)
HOLD_SQL = (
    "UPDATE {table} SET hold_id = $3, buyer_id = $4, expires_at = now() + make_interval(secs => $5) "
    "WHERE event_id = $1 AND seat_id = ANY($2::text[])"
)
RELEASE_SQL = (
    "UPDATE {table} SET hold_id = NULL, buyer_id = NULL, expires_at = NULL "
    "WHERE event_id = $1 AND seat_id = ANY($2::text[]) AND hold_id = $3"
)


class _PostgresPhase:
    """(c) and (c'): the same hold as a row-locking Postgres transaction."""

    def __init__(
        self,
        database_url: str,
        table_name: str,
        event_id: str,
        buyers: list[str],
        blocks: list[list[list[str]]],
        synchronous_commit: bool,
    ) -> None:
        self.database_url, self.event_id, self.buyers, self.blocks = database_url, event_id, buyers, blocks
        self.synchronous_commit = synchronous_commit
        self.lock_sql = LOCK_SQL.format(table=table_name)
        self.hold_sql = HOLD_SQL.format(table=table_name)
        self.release_sql = RELEASE_SQL.format(table=table_name)
        self.turn = [0] * len(buyers)
        self.pool: asyncpg.Pool | None = None
        self.diffs = 0

    async def open(self) -> None:
        async def init(conn: asyncpg.Connection) -> None:
            if not self.synchronous_commit:
                await conn.execute("SET synchronous_commit = off")

        size = len(self.buyers)
        self.pool = await asyncpg.create_pool(self.database_url, min_size=size, max_size=size, init=init)

    async def cycle(self, task: int) -> tuple[int, float]:
        assert self.pool is not None
        blocks = self.blocks[task]
        seats = blocks[self.turn[task] % len(blocks)]
        self.turn[task] += 1
        hold_id = new_hold_id(self.event_id)
        async with self.pool.acquire() as conn:
            started = time.perf_counter()
            async with conn.transaction():
                rows = await conn.fetch(self.lock_sql, self.event_id, seats)
                granted = len(rows) == len(seats) and all(row["free"] for row in rows)
                if granted:
                    await conn.execute(self.hold_sql, self.event_id, seats, hold_id, self.buyers[task], HOLD_MS / 1000)
            latency = time.perf_counter() - started
            if not granted:
                return 0, latency
            await conn.execute(self.release_sql, self.event_id, seats, hold_id)
        return 1, latency

    async def close(self) -> None:
        if self.pool is not None:
            await self.pool.close()


class HoldClient:
    """One client process: runs a phase's tasks and reports what they did."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.phase: Any = None
        self.tasks = 0
        self.holds = 0

    async def open(self, kind: str, tasks: int, **options: Any) -> int:
        if kind == "server":
            self.phase = _ServerPhase(options["url"], options["event_id"], options["tokens"], options["blocks"])
        elif kind == "redis":
            self.phase = _RedisPhase(
                options["redis_url"],
                options["event_id"],
                options["buyers"],
                options["blocks"],
                options["depth"],
            )
        elif kind == "engine":
            self.phase = _EnginePhase(options["redis_url"], options["body"], options["buyers"], options["blocks"])
        elif kind == "postgres":
            self.phase = _PostgresPhase(
                options["database_url"],
                options["table"],
                options["event_id"],
                options["buyers"],
                options["blocks"],
                options["synchronous_commit"],
            )
        else:
            raise ValueError(kind)
        self.tasks = tasks
        await self.phase.open()
        return tasks

    async def run(self, start_at: float, warmup: float, duration: float) -> dict[str, Any]:
        await asyncio.sleep(max(0.0, start_at - time.time()))
        window_start = start_at + warmup
        window_end = window_start + duration
        latencies = array("d")
        self.holds = 0
        errors = 0
        phase = self.phase

        async def loop(task: int) -> None:
            nonlocal errors
            while True:
                began = time.time()
                if began >= window_end:
                    return
                held, latency = await phase.cycle(task)
                if began >= window_start and time.time() <= window_end:
                    if held:
                        self.holds += held
                        latencies.append(latency * 1000)
                    else:
                        errors += 1

        await asyncio.gather(*(loop(task) for task in range(self.tasks)))
        return {
            "holds": self.holds,
            "errors": errors,
            "latencies_ms": latencies.tolist(),
            "diffs": phase.diffs,
        }

    async def progress(self) -> int:
        return self.holds

    async def close(self) -> None:
        if self.phase is not None:
            await self.phase.close()
            self.phase = None

    async def aclose(self) -> None:
        await self.close()


# ---------------------------------------------------------------------------- in the parent


async def _timed_phase(
    workers: Workers,
    label: str,
    args: argparse.Namespace,
    progress: Progress,
    server_pid: int | None,
    redis: Redis,
    postgres_pid: int | None = None,
) -> dict[str, Any]:
    """Run the workers' tasks; measure CPU of the server, Redis, Postgres and clients over the window."""
    start_at = time.time() + 0.5
    window_start = start_at + args.warmup
    window_end = window_start + args.duration
    windows = [CpuWindow(pid) for pid in workers.pids]
    server_cpu = CpuWindow(server_pid) if server_pid else None
    profiler = Profiler(server_pid, args.profile) if server_pid and args.profile else None
    if server_cpu:
        windows.append(server_cpu)
    postgres_cpu = CpuWindow(postgres_pid) if postgres_pid else None
    if postgres_cpu:
        windows.append(postgres_cpu)
    run = asyncio.ensure_future(workers.call("run", start_at=start_at, warmup=args.warmup, duration=args.duration))
    await asyncio.wait([run], timeout=max(0.0, window_start - time.time()))
    redis_before = await _redis_cpu(redis)
    for window in windows:
        window.start()
    if profiler:
        profiler.start(args.duration)
    while not run.done() and time.time() < window_end:
        await asyncio.wait([run], timeout=min(2.0, max(0.0, window_end - time.time())))
        elapsed = time.time() - window_start
        if not run.done() and elapsed < args.duration - 0.1:
            so_far = sum(await workers.call("progress"))
            progress(f"{label}: {elapsed:4.1f}/{args.duration:g} s, {so_far:,} holds")
    for window in windows:
        window.stop()
    redis_cpu = await _redis_cpu(redis) - redis_before
    results = await run
    holds = sum(r["holds"] for r in results)
    latencies = [x for r in results for x in r["latencies_ms"]]
    summary = summarize(latencies)
    per_second = holds / args.duration
    clients_cpu = sum(w.cpu for w in windows if w is not server_cpu and w is not postgres_cpu)
    row: dict[str, Any] = {
        "holds": holds,
        "holds_per_s": per_second,
        "errors": sum(r["errors"] for r in results),
        "latency_ms": {k: summary[k] for k in ("p50", "p90", "p99", "max", "mean")},
        "redis_cpu_us_per_hold": redis_cpu / holds * 1e6 if holds else None,
        "clients_cpu_us_per_hold": clients_cpu / holds * 1e6 if holds else None,
    }
    if profiler:
        top = await asyncio.to_thread(profiler.stop)
        row["profile"] = {"path": args.profile, "top_self": [[round(s, 4), frame] for s, frame in top]}
        for share, frame in top[:6]:
            progress(f"{label}: profile {share:6.1%} {frame}")
    if postgres_cpu:
        row["postgres_cpu_us_per_hold"] = postgres_cpu.cpu / holds * 1e6 if holds else None
        row["postgres_cores_busy"] = postgres_cpu.utilisation
    if server_cpu:
        row["server_cpu_us_per_hold"] = server_cpu.cpu / holds * 1e6 if holds else None
        row["server_cores_busy"] = server_cpu.utilisation
    if any(r["diffs"] for r in results):
        row["diff_frames_received"] = sum(r["diffs"] for r in results)
    progress(
        f"{label}: {per_second:,.0f} holds/s, p50 {summary['p50']:.2f} ms, p99 {summary['p99']:.2f} ms, "
        f"{row['errors']} errors"
    )
    return row


async def _redis_cpu(redis: Redis) -> float:
    info = await redis.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def _task_blocks(seat_ids: list[str], concurrency: int) -> list[list[list[str]]]:
    blocks = blocks_of(seat_ids, SEATS_PER_HOLD)
    per_task = max(1, min(8, len(blocks) // concurrency))
    return [blocks_for_task(blocks, task, concurrency, per_task) for task in range(concurrency)]


async def _phase(
    label: str,
    kind: str,
    args: argparse.Namespace,
    stack: Stack,
    progress: Progress,
    per_task: dict[str, list[Any]],
    server_pid: int | None,
    redis: Redis,
    postgres_pid: int | None = None,
    **shared: Any,
) -> dict[str, Any]:
    """Spread the tasks over the client processes, open, run, close."""
    counts = split(args.concurrency, args.processes)
    workers = Workers(HoldClient, len(counts))
    try:
        calls = []
        start = 0
        for count in counts:
            options = {name: values[start : start + count] for name, values in per_task.items()}
            calls.append({"kind": kind, "tasks": count, **shared, **options})
            start += count
        await workers.call_each("open", calls, timeout=120)
        row = await _timed_phase(workers, label, args, progress, server_pid, redis, postgres_pid)
        await workers.call("close", timeout=60)
        return row
    finally:
        await workers.aclose()


def _redis_benchmark(
    stack: Stack, event_id: str, requests: int, concurrency: int, pipeline: int, sha: str
) -> dict[str, Any] | None:
    binary = shutil.which("redis-benchmark")
    if binary is None:
        return None
    url = urlsplit(stack.redis_url)
    keys = event_keys(event_id)
    hold_keys = [keys.state, keys.seats, keys.holds, keys.buyers, keys.expiry, keys.owned, keys.stream]
    command = [
        binary,
        "-h", url.hostname or "127.0.0.1",
        "-p", str(url.port or 6379),
        "--dbnum", (url.path or "/0").lstrip("/") or "0",
        "-c", str(concurrency),
        "-n", str(requests),
        "-P", str(pipeline),
        "-r", "2000000000",
        "--csv",
        "EVALSHA", sha, str(len(hold_keys)), *hold_keys,
        "b:__rand_int__", f"h__rand_int__.{event_id}",
        str(HOLD_MS), str(DEFAULTS.max_seats_per_buyer), str(DEFAULTS.stream_maxlen),
        *(f"s{i}:__rand_int__" for i in range(SEATS_PER_HOLD)),
    ]  # fmt: skip
    if url.password:
        command[1:1] = ["-a", url.password]
    out = subprocess.run(command, capture_output=True, text=True, timeout=600, check=True).stdout
    rows = list(csv.DictReader(io.StringIO(out)))
    if not rows:
        raise RuntimeError(f"redis-benchmark printed no result: {out[:300]}")
    row = rows[-1]
    return {
        "requests": requests,
        "holds_per_s": float(row["rps"]),
        "latency_ms": {
            "p50": float(row.get("p50_latency_ms", "nan")),
            "p99": float(row.get("p99_latency_ms", "nan")),
            "max": float(row.get("max_latency_ms", "nan")),
            "mean": float(row.get("avg_latency_ms", "nan")),
        },
    }


async def _run_redis_benchmark(stack: Stack, args: argparse.Namespace, progress: Progress) -> dict[str, Any]:
    if shutil.which("redis-benchmark") is None:
        progress("redis-benchmark is not installed: skipping (d)")
        return {}
    found: dict[str, Any] = {}
    for label, pipeline, requests in (
        ("redis-benchmark", 1, args.rb_requests),
        ("redis-benchmark-P16", 16, 3 * args.rb_requests),
    ):
        event = await create_scratch_event(stack.redis_url, venue(SEATS_PER_HOLD * 2, unique_event_id("rb")))
        redis = Redis.from_url(stack.redis_url, decode_responses=True)
        try:
            sha = Scripts(redis).by_name["hold"].sha
            progress(f"{label}: {requests:,} EVALSHA hold.lua, -c {args.concurrency} -P {pipeline}")
            result = await asyncio.to_thread(
                _redis_benchmark, stack, event.id, requests, args.concurrency, pipeline, sha
            )
            assert result is not None
            granted = await redis.hlen(event_keys(event.id).holds)
            result["granted"] = granted  # holds that succeeded (random ids rarely collide)
            found[label] = result
            progress(f"{label}: {result['holds_per_s']:,.0f} holds/s, {granted:,} granted")
        finally:
            await redis.aclose()
            await drop_events(stack.redis_url, [event.id])
    return found


async def run(args: argparse.Namespace, stack: Stack, progress: Progress) -> dict[str, Any]:
    phases = [p.strip() for p in args.phases.split(",") if p.strip()]
    unknown = set(phases) - set(PHASES)
    if unknown:
        raise SystemExit(f"unknown phases {sorted(unknown)}; choose from {', '.join(PHASES)}")
    seats = max(args.seats, SEATS_PER_HOLD * args.concurrency)
    results: dict[str, Any] = {}
    redis = Redis.from_url(stack.redis_url, decode_responses=True)
    made: list[str] = []
    try:
        if "server" in phases:
            url = await asyncio.to_thread(stack.start_server)
            # The server's event stays: it lives in Postgres too, and a server
            # rebuilds the live state of any event whose Redis keys vanish.
            event_id = await stack.create_event(venue(seats, unique_event_id("holds")))
            seat_ids = await stack.layout(event_id)
            tokens = [token for _, token in await stack.buyers(args.concurrency)]
            progress(f"(a) server at {url}: {args.concurrency} websocket clients in {args.processes} processes")
            results["server"] = await _phase(
                "(a) server",
                "server",
                args,
                stack,
                progress,
                {"tokens": tokens, "blocks": _task_blocks(seat_ids, args.concurrency)},
                stack.server_pid,
                redis,
                url=url,
                event_id=event_id,
            )
        buyers = [f"lt-buyer-{i}-{secrets.token_hex(3)}" for i in range(args.concurrency)]
        if "engine" in phases:
            body = venue(seats, unique_event_id("engine"))
            event = await create_scratch_event(stack.redis_url, body)
            made.append(event.id)
            results["engine"] = await _phase(
                "(e) engine",
                "engine",
                args,
                stack,
                progress,
                {"buyers": buyers, "blocks": _task_blocks([s.id for s in event.seats], args.concurrency)},
                None,
                redis,
                redis_url=stack.redis_url,
                body=body,
            )
        for phase, label, depth in (
            ("redis", "(b) redis", 1),
            ("redis-pipelined", "(b') redis pipelined", PIPELINE_DEPTH),
        ):
            if phase not in phases:
                continue
            event = await create_scratch_event(stack.redis_url, venue(seats, unique_event_id("ref")))
            made.append(event.id)
            results[phase] = await _phase(
                label,
                "redis",
                args,
                stack,
                progress,
                {"buyers": buyers, "blocks": _task_blocks([s.id for s in event.seats], args.concurrency)},
                None,
                redis,
                redis_url=stack.redis_url,
                event_id=event.id,
                depth=depth,
            )
            if depth > 1:
                results[phase]["pipeline_pairs"] = depth
        for phase, label, sync in (
            ("postgres", "(c) postgres", True),
            ("postgres-async", "(c') postgres async commit", False),
        ):
            if phase in phases:
                results[phase] = await _postgres_phase(label, args, stack, progress, buyers, seats, sync, redis)
        if "redis-benchmark" in phases:
            results.update(await _run_redis_benchmark(stack, args, progress))
    finally:
        await redis.aclose()
        await drop_events(stack.redis_url, made)
    return _summary(args, results)


async def _postgres_phase(
    label: str,
    args: argparse.Namespace,
    stack: Stack,
    progress: Progress,
    buyers: list[str],
    seats: int,
    synchronous_commit: bool,
    redis: Redis,
) -> dict[str, Any]:
    table_name = f"loadtest_seats_{secrets.token_hex(4)}"
    body = venue(seats, unique_event_id("pg"))
    seat_ids = [seat["id"] for seat in body["seats"]]
    conn = await asyncpg.connect(stack.database_url)
    try:
        await conn.execute(
            f"CREATE TABLE {table_name} (event_id text NOT NULL, seat_id text NOT NULL, hold_id text, "
            "buyer_id text, expires_at timestamptz, booked boolean NOT NULL DEFAULT false, "
            "PRIMARY KEY (event_id, seat_id))"
        )
        await conn.copy_records_to_table(
            table_name, records=[(body["id"], s) for s in seat_ids], columns=["event_id", "seat_id"]
        )
        await conn.execute(f"ANALYZE {table_name}")
        row = await _phase(
            label,
            "postgres",
            args,
            stack,
            progress,
            {"buyers": buyers, "blocks": _task_blocks(seat_ids, args.concurrency)},
            None,
            redis,
            postgres_pid=_local_pid(stack.database_url),
            database_url=stack.database_url,
            table=table_name,
            event_id=body["id"],
            synchronous_commit=synchronous_commit,
        )
        row["synchronous_commit"] = "on" if synchronous_commit else "off"
        return row
    finally:
        await conn.execute(f"DROP TABLE IF EXISTS {table_name}")
        await conn.close()


def _local_pid(url: str) -> int | None:
    """The pid of the server at `url` when it runs on this machine (its CPU can then be read)."""
    host, port = host_port(url)
    return pid_listening_on(port) if host in ("127.0.0.1", "localhost", "::1") else None


LABELS = {
    "server": "(a) Seatmap over websocket",
    "engine": "(e) Seatmap's hold engine, in process",
    "redis": "(b) redis-py → hold.lua",
    "redis-pipelined": f"(b') redis-py → hold.lua, pipelined x{PIPELINE_DEPTH}",
    "postgres": "(c) Postgres SELECT … FOR UPDATE",
    "postgres-async": "(c') the same, synchronous_commit=off",
    "redis-benchmark": "(d) redis-benchmark EVALSHA hold.lua",
    "redis-benchmark-P16": "(d') redis-benchmark -P 16",
}


def _summary(args: argparse.Namespace, results: dict[str, Any]) -> dict[str, Any]:
    def rate(name: str) -> float | None:
        return results.get(name, {}).get("holds_per_s")

    ratios = {
        "a/b": ratio(rate("server"), rate("redis")),
        "b/c": ratio(rate("redis"), rate("postgres")),
        "a/c": ratio(rate("server"), rate("postgres")),
        "b/c'": ratio(rate("redis"), rate("postgres-async")),
        "a/c'": ratio(rate("server"), rate("postgres-async")),
        "a/d": ratio(rate("server"), rate("redis-benchmark")),
        "e/c": ratio(rate("engine"), rate("postgres")),
    }
    targets = {
        "a/b": TARGET_A_OVER_B,
        "e/c": TARGET_OVER_POSTGRES,
        "b/c": TARGET_OVER_POSTGRES,
        "a/c": TARGET_OVER_POSTGRES,
    }
    return {
        "params": {
            "concurrency": args.concurrency,
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "client_processes": args.processes,
            "seats": max(args.seats, SEATS_PER_HOLD * args.concurrency),
            "seats_per_hold": SEATS_PER_HOLD,
        },
        "results": results,
        "ratios": ratios,
        "targets": {
            name: {"at_least": value, "verdict": verdict(ratios[name], value)} for name, value in targets.items()
        },
    }


def render(result: dict[str, Any]) -> str:
    rows = []
    for name, label in LABELS.items():
        row = result["results"].get(name)
        if row is None:
            continue
        latency = row.get("latency_ms", {})
        rows.append(
            [
                label,
                row["holds_per_s"],
                fmt(latency.get("p50"), 2),
                fmt(latency.get("p99"), 2),
                row.get("errors", "—"),
                fmt(row.get("server_cpu_us_per_hold")),
                fmt(row.get("redis_cpu_us_per_hold")),
                fmt(row.get("postgres_cpu_us_per_hold")),
                fmt(row.get("clients_cpu_us_per_hold")),
            ]
        )
    out = [
        table(
            [
                "phase",
                "holds/s",
                "p50 ms",
                "p99 ms",
                "errors",
                "CPU µs/hold: server",
                "Redis",
                "Postgres",
                "clients",
            ],
            rows,
        ),
        "",
    ]
    ratio_rows = []
    for name, value in result["ratios"].items():
        target = result["targets"].get(name)
        ratio_rows.append(
            [
                name,
                fmt(value, 2),
                f"≥ {target['at_least']:g}" if target else "",
                target["verdict"] if target else "",
            ]
        )
    out.append(table(["ratio", "value", "target", ""], ratio_rows))
    return "\n".join(out)
