"""`fanout`: what it costs the server to deliver a diff to each of thousands
of clients, and how long a change takes to reach the last of them.

For each client count (default 5,000 and 10,000), in client processes apart
from the server:

1. Seatmap: the clients connect to one event (`?compact=1` snapshots, so
   connecting 10,000 clients is quick) while a driver process makes
   `--rate` seat changes a second (default 2,000) with holds and releases of
   4 seats straight through `hold.lua` / `release.lua`, stamping each change
   with the time its call was sent. Over a steady window the server
   process's CPU time (psutil) is divided by the frames the clients received.
   Every client notes when each diff arrived; per change, the latest arrival
   over all clients minus the change's stamp is its change-to-last-client
   latency (same host clock). After the driver stops, every client's map
   (its snapshot plus the diffs it applied, which must chain) is compared
   with `GET /availability`.
2. The reference: the same client processes connect the same number of
   clients to a raw asyncio server (`refservers.RawFanout`) that writes the
   same diff frames (recorded from step 1) to every connection at the same
   frames per second; its CPU per delivered frame is measured the same way.

Target: Seatmap's CPU per frame at most 1.2x the raw server's; p99
change-to-last-client latency at most 250 ms at 10,000 clients.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import time
from collections import deque
from typing import Any

import msgspec
from redis.asyncio import Redis

from server.holds import new_hold_id
from server.keys import event_keys
from server.scripts import Scripts
from server.settings import Settings
from server.wire import text_frame

from . import wsclient
from .measure import CpuWindow, Profiler
from .procs import Workers, split
from .refservers import RawFanout
from .report import Progress, fmt, table, verdict
from .seating import blocks_of, venue
from .stack import Stack, host_port, unique_event_id
from .stats import ratio, summarize
from .system import capacity_warnings

TARGET_CPU_RATIO = 1.2
TARGET_P99_MS = 250.0
SEATS_PER_OP = 4
DEFAULTS = Settings()
STATE_NAMES = {"a": "available", "h": "held", "b": "booked"}
DIFF_PREFIX = b'{"type":"diff"'


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--clients", default="5000,10000", help="comma-separated client counts (default 5000,10000)"
    )
    parser.add_argument("--processes", type=int, default=4, help="client processes (default 4)")
    parser.add_argument("--rate", type=float, default=2000.0, help="seat changes per second (default 2000)")
    parser.add_argument(
        "--tick",
        type=float,
        default=0.01,
        help="seconds between the driver's batches of changes (default 0.01)",
    )
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds per run (default 10)")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of changes before measuring")
    parser.add_argument("--seats", type=int, default=2000, help="venue size (default 2000)")
    parser.add_argument(
        "--full-snapshots", action="store_true", help="clients take contract-form snapshots (not compact=1)"
    )
    parser.add_argument("--no-reference", action="store_true", help="skip the raw asyncio reference server")
    parser.add_argument(
        "--profile",
        metavar="PREFIX",
        help="sample the server with py-spy over each measured window into PREFIX-<clients>.txt "
        "(collapsed stacks; figures of a profiled run are not comparable)",
    )


# ---------------------------------------------------------------------------- client processes


class FanoutClients:
    """Many connections in one process, following one event's map.

    Per connection only its snapshot, last version and a broken-chain count
    are kept; the diff frames themselves are kept once per process, keyed by
    `prev` (every client of a server process gets the same bytes for the same
    diff; a client that got different bytes is counted as a mismatch). A
    client's map is then its snapshot with the process's diffs applied from
    its snapshot's version to its last one."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.clients: list[wsclient.WsClient] = []
        self.connecting = 0
        self.diffs: dict[int, bytes] = {}  # prev -> the diff frame's payload
        self.arrived: dict[int, float] = {}  # prev -> latest arrival of that diff at any client here
        self.snapshots: dict[bytes, bytes] = {}  # interned snapshot payloads
        self.mismatches = 0
        self.closed = 0

    def _on_frame(self, client: wsclient.WsClient, payload: bytes, received: float) -> None:
        if payload.startswith(DIFF_PREFIX):
            i = payload.find(b',"prev":', 14)
            j = payload.find(b',"version":', i)
            k = payload.find(b',"changes":', j)
            prev = int(payload[i + 8 : j])
            state = client.state
            if state[1] != prev:
                state[2] += 1  # the chain broke: a diff is missing or out of order
            state[1] = int(payload[j + 11 : k])
            known = self.diffs.get(prev)
            if known is None:
                self.diffs[prev] = payload
            elif known != payload:
                self.mismatches += 1
            self.arrived[prev] = received
        elif payload.startswith(b'{"type":"snapshot"'):
            payload = self.snapshots.setdefault(payload, payload)
            version = msgspec.json.decode(payload)["version"]
            client.state = [payload, version, 0]

    def _on_closed(self, future: asyncio.Future[Any]) -> None:
        self.closed += 1

    async def connect(
        self, host: str, port: int, path: str, count: int, parallel: int = 50
    ) -> dict[str, int]:
        self.closed = 0

        def opened(index: int, client: wsclient.WsClient) -> None:
            if client.state is None:
                client.state = [b"", -1, 0]
            client.closed.add_done_callback(self._on_closed)
            self.connecting += 1

        self.connecting = 0
        clients, failed = await wsclient.connect_many(
            count, host, port, lambda i: path, self._on_frame, parallel=parallel, on_each=opened
        )
        self.clients = clients
        return {"connected": len(clients), "failed": failed}

    async def progress(self) -> int:
        return self.connecting

    async def frames(self) -> dict[str, int]:
        return {
            "frames": sum(c.frames for c in self.clients),
            "bytes": sum(c.bytes for c in self.clients),
            "closed": self.closed,
        }

    async def versions(self) -> dict[str, Any]:
        open_clients = [c for c in self.clients if c.is_open]
        versions = [c.state[1] for c in open_clients]
        return {"min": min(versions, default=-1), "max": max(versions, default=-1), "open": len(open_clients)}

    async def verify(self, seat_ids: list[str], expected: dict[str, str], version: int) -> dict[str, int]:
        """How many clients' maps equal `expected` at `version`, and why the others do not."""
        counts = {"converged": 0, "diverged": 0, "behind": 0, "broken": 0, "closed": 0, "no_snapshot": 0}
        maps: dict[tuple[int, int], bool] = {}
        for client in self.clients:
            snapshot, last, broken = client.state
            if not client.is_open:
                counts["closed"] += 1
            elif not snapshot:
                counts["no_snapshot"] += 1
            elif broken:
                counts["broken"] += 1
            elif last != version:
                counts["behind"] += 1
            else:
                key = (id(snapshot), last)
                if key not in maps:
                    maps[key] = self._rebuild(snapshot, last, seat_ids) == expected
                counts["converged" if maps[key] else "diverged"] += 1
        counts["mismatched_frames"] = self.mismatches
        return counts

    def _rebuild(self, snapshot: bytes, last: int, seat_ids: list[str]) -> dict[str, str] | None:
        frame = msgspec.json.decode(snapshot)
        if "states" in frame:
            seats = {seat: STATE_NAMES[code] for seat, code in zip(seat_ids, frame["states"], strict=True)}
        else:
            seats = dict(frame["seats"])
        at = frame["version"]
        while at < last:
            payload = self.diffs.get(at)
            if payload is None:
                return None
            diff = msgspec.json.decode(payload)
            seats.update(diff["changes"])
            at = diff["version"]
        return seats

    async def arrivals(self) -> list[tuple[int, int, float]]:
        """(prev, version, latest arrival here) of every diff seen."""
        found = []
        for prev, received in self.arrived.items():
            payload = self.diffs[prev]
            j = payload.find(b',"version":')
            k = payload.find(b',"changes":', j)
            found.append((prev, int(payload[j + 11 : k]), received))
        return found

    async def sample_frames(self, count: int) -> list[bytes]:
        """Up to `count` diffs as framed on the wire (for the raw reference to replay)."""
        return [text_frame(payload) for payload in list(self.diffs.values())[:count]]

    async def disconnect(self) -> int:
        count = await wsclient.close_all(self.clients)
        self.clients = []
        self.diffs.clear()
        self.arrived.clear()
        self.snapshots.clear()
        self.mismatches = 0
        return count

    async def aclose(self) -> None:
        for client in self.clients:
            client.abort()


class ChangeDriver:
    """Makes seat changes at a steady rate through the Lua scripts, stamping each."""

    def __init__(self, index: int) -> None:
        self.changes = 0

    async def run(
        self,
        redis_url: str,
        event_id: str,
        blocks: list[list[str]],
        rate: float,
        tick: float,
        duration: float,
    ) -> dict[str, Any]:
        redis = Redis.from_url(redis_url, decode_responses=True)
        scripts = Scripts(redis)
        await scripts.register()
        keys = event_keys(event_id)
        hold_keys = (keys.state, keys.seats, keys.holds, keys.buyers, keys.expiry, keys.owned, keys.stream)
        release_keys = (keys.state, keys.seats, keys.holds, keys.buyers, keys.expiry, keys.stream)
        hold_sha, release_sha = scripts.by_name["hold"].sha, scripts.by_name["release"].sha
        run_id = secrets.token_hex(3)
        free = deque(range(len(blocks)))
        held: deque[tuple[int, str, str]] = deque()  # (block, buyer, hold id)
        keep = max(1, min(len(blocks) // 2, 200))
        per_tick = rate * tick / SEATS_PER_OP
        stamps: list[tuple[int, float]] = []
        self.changes = 0
        loop = asyncio.get_running_loop()
        started = loop.time()
        owed = 0.0
        n = 0
        seconds = 0.0
        try:
            while loop.time() - started < duration:
                owed += per_tick
                ops = int(owed)
                owed -= ops
                if ops:
                    async with redis.pipeline(transaction=False) as pipe:
                        for _ in range(ops):
                            if len(held) >= keep or not free:
                                self._release(pipe, release_sha, release_keys, held, free)
                            else:
                                block = free.popleft()
                                buyer, hold_id = f"drv-{run_id}-{block}", new_hold_id(event_id)
                                pipe.evalsha(
                                    hold_sha,
                                    len(hold_keys),
                                    *hold_keys,
                                    buyer,
                                    hold_id,
                                    DEFAULTS.hold_seconds * 1000,
                                    DEFAULTS.max_seats_per_buyer,
                                    DEFAULTS.stream_maxlen,
                                    *blocks[block],
                                )
                                held.append((block, buyer, hold_id))
                        await self._send(pipe, stamps)
                n += 1
                delay = started + n * tick - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
            seconds = loop.time() - started
            # Leave the venue as it was: release what is still held (after the measured window).
            while held:
                async with redis.pipeline(transaction=False) as pipe:
                    for _ in range(min(len(held), 50)):
                        self._release(pipe, release_sha, release_keys, held, free)
                    await self._send(pipe, stamps)
        finally:
            await redis.aclose()
        return {"stamps": stamps, "changes": len(stamps) * SEATS_PER_OP, "seconds": seconds}

    @staticmethod
    def _release(pipe: Any, sha: str, keys: tuple[str, ...], held: deque[Any], free: deque[int]) -> None:
        block, buyer, hold_id = held.popleft()
        pipe.evalsha(sha, len(keys), *keys, buyer, hold_id, DEFAULTS.stream_maxlen)
        free.append(block)

    async def _send(self, pipe: Any, stamps: list[tuple[int, float]]) -> None:
        """Send a batch; stamp each change's version with the time the batch left."""
        sent = time.time()
        for reply in await pipe.execute():
            # hold: ['ok', hold_id, expires_ms, version, …]; release: ['ok', version, …]
            if reply[0] != "ok":
                raise RuntimeError(f"the driver's change was refused: {reply}")
            version = int(reply[3]) if isinstance(reply[1], str) else int(reply[1])
            stamps.append((version, sent))
            self.changes += SEATS_PER_OP

    async def progress(self) -> int:
        return self.changes


# ---------------------------------------------------------------------------- the parent


async def _connect(
    clients: Workers, host: str, port: int, path: str, count: int, label: str, progress: Progress
) -> int:
    per = split(count, len(clients))
    task = asyncio.ensure_future(
        clients.call_each("connect", [{"host": host, "port": port, "path": path, "count": n} for n in per])
    )
    while not task.done():
        await asyncio.wait([task], timeout=2.0)
        if not task.done():
            progress(f"{label}: {sum(await clients.call('progress')):,}/{count:,} connected")
    results = task.result()
    connected = sum(r["connected"] for r in results)
    failed = sum(r["failed"] for r in results)
    progress(f"{label}: {connected:,} connected, {failed:,} failed")
    return connected


async def _frames(clients: Workers) -> dict[str, int]:
    found = await clients.call("frames")
    return {key: sum(r[key] for r in found) for key in ("frames", "bytes", "closed")}


async def _window(
    clients: Workers,
    pid: int | None,
    seconds: float,
    label: str,
    progress: Progress,
    profile_path: str | None = None,
) -> dict[str, Any]:
    """Frames the clients received and the CPU `pid` used over `seconds`."""
    cpu = CpuWindow(pid) if pid else None
    profiler = Profiler(pid, profile_path) if pid and profile_path else None
    before = await _frames(clients)
    began = time.time()
    if cpu:
        cpu.start()
    if profiler:
        profiler.start(seconds)
    end = began + seconds
    while time.time() < end:
        await asyncio.sleep(min(2.0, end - time.time()))
        if time.time() < end - 0.2:
            progress(f"{label}: {time.time() - began:4.1f}/{seconds:g} s")
    if cpu:
        cpu.stop()
    after = await _frames(clients)
    ended = time.time()
    frames = after["frames"] - before["frames"]
    result: dict[str, Any] = {
        "window_s": ended - began,
        "window": (began, ended),
        "frames": frames,
        "bytes": after["bytes"] - before["bytes"],
        "closed_during": after["closed"] - before["closed"],
    }
    if profiler:
        top = await asyncio.to_thread(profiler.stop)
        result["profile"] = {
            "path": profile_path,
            "top_self": [[round(share, 4), frame] for share, frame in top],
        }
        for share, frame in top[:6]:
            progress(f"{label}: profile {share:6.1%} {frame}")
    if cpu:
        result["cpu_s"] = cpu.cpu
        result["cores_busy"] = cpu.utilisation
        result["cpu_us_per_frame"] = cpu.cpu / frames * 1e6 if frames else None
    return result


def _latencies(
    arrivals: list[list[tuple[int, int, float]]], stamps: list[tuple[int, float]], window: tuple[float, float]
) -> list[float]:
    """Per change stamped inside the window: latest arrival at any client minus its stamp, in ms."""
    latest: dict[int, tuple[int, float]] = {}
    for found in arrivals:
        for prev, version, received in found:
            known = latest.get(prev)
            if known is None or received > known[1]:
                latest[prev] = (version, received)
    sent = {version: at for version, at in stamps if window[0] <= at <= window[1]}
    result = []
    for prev, (version, received) in latest.items():
        for change in range(prev + 1, version + 1):
            at = sent.pop(change, None)
            if at is not None:
                result.append((received - at) * 1000)
    missing = len(sent)
    if missing:
        result.extend([float("inf")] * missing)  # never arrived anywhere: counts as worst
    return result


async def _converge(
    clients: Workers,
    stack: Stack,
    event_id: str,
    seat_ids: list[str],
    progress: Progress,
    timeout: float = 60.0,
) -> dict[str, Any]:
    availability = await stack.availability(event_id)
    target = availability["version"]
    deadline = time.monotonic() + timeout
    waited_from = time.monotonic()
    while time.monotonic() < deadline:
        found = await clients.call("versions")
        if all(r["min"] >= target or r["open"] == 0 for r in found):
            break
        await asyncio.sleep(0.2)
    waited = time.monotonic() - waited_from
    verdicts = await clients.call("verify", seat_ids=seat_ids, expected=availability["seats"], version=target)
    totals = {key: sum(v[key] for v in verdicts) for key in verdicts[0]}
    totals["version"] = target
    totals["waited_s"] = waited
    progress(
        f"convergence at version {target}: {totals['converged']:,} converged, {totals['diverged']} diverged, "
        f"{totals['behind']} behind, {totals['broken']} broken chains, {totals['closed']} closed"
    )
    return totals


async def _seatmap_run(
    args: argparse.Namespace,
    stack: Stack,
    clients: Workers,
    driver: Workers,
    event_id: str,
    seat_ids: list[str],
    count: int,
    progress: Progress,
) -> dict[str, Any]:
    assert stack.server_url is not None
    host, port = host_port(stack.server_url)
    path = f"/ws/events/{event_id}" + ("" if args.full_snapshots else "?compact=1")
    label = f"seatmap {count:,}"
    connected = await _connect(clients, host, port, path, count, label, progress)
    blocks = blocks_of(seat_ids, SEATS_PER_OP)
    run_for = args.warmup + args.duration + 1.0
    progress(f"{label}: driving {args.rate:,.0f} seat changes/s for {run_for:g} s")
    drive = asyncio.ensure_future(
        driver.call_one(
            0,
            "run",
            redis_url=stack.redis_url,
            event_id=event_id,
            blocks=blocks,
            rate=args.rate,
            tick=args.tick,
            duration=run_for,
        )
    )
    await asyncio.wait([drive], timeout=args.warmup)
    if drive.done():
        drive.result()  # raises the driver's error
    profile = f"{args.profile}-{count}.txt" if args.profile else None
    window = await _window(clients, stack.server_pid, args.duration, label, progress, profile)
    driven = await drive
    convergence = await _converge(clients, stack, event_id, seat_ids, progress)
    arrivals = await clients.call("arrivals")
    latencies = _latencies(arrivals, driven["stamps"], window["window"])
    sample = (await clients.call_one(0, "sample_frames", count=256)) or []
    summary = summarize(latencies)
    frames_per_client_s = window["frames"] / max(1, connected) / window["window_s"]
    result = {
        "clients": count,
        "connected": connected,
        "changes_per_s": SEATS_PER_OP
        * sum(1 for _, at in driven["stamps"] if window["window"][0] <= at <= window["window"][1])
        / window["window_s"],
        "frames_per_client_per_s": frames_per_client_s,
        "mean_frame_bytes": window["bytes"] / window["frames"] if window["frames"] else None,
        "latency_ms": {k: summary[k] for k in ("count", "p50", "p90", "p99", "max")},
        "convergence": convergence,
        **{k: v for k, v in window.items() if k != "window"},
    }
    progress(
        f"{label}: {window['frames']:,} frames in {window['window_s']:.1f} s "
        f"({frames_per_client_s:.1f}/client/s), "
        f"server CPU {fmt(window.get('cpu_us_per_frame'), 2)} µs/frame, "
        f"latency p50 {summary['p50']:.0f} ms p99 {summary['p99']:.0f} ms"
    )
    await clients.call("disconnect", timeout=120)
    return {"seatmap": result, "sample": sample}


async def _raw_run(
    args: argparse.Namespace,
    clients: Workers,
    count: int,
    frames: list[bytes],
    rate: float,
    progress: Progress,
) -> dict[str, Any]:
    label = f"raw {count:,}"
    server = Workers(RawFanout, 1)
    try:
        port = await server.call_one(0, "listen")
        connected = await _connect(clients, "127.0.0.1", port, "/raw", count, label, progress)
        progress(f"{label}: writing {len(frames)} recorded diff frames round-robin at {rate:.1f} frames/s")
        stream = asyncio.ensure_future(
            server.call_one(0, "stream", frames=frames, rate=rate, duration=args.warmup + args.duration + 1.0)
        )
        await asyncio.wait([stream], timeout=args.warmup)
        window = await _window(clients, server.pids[0], args.duration, label, progress)
        writes = await stream
        result = {
            "clients": count,
            "connected": connected,
            "frames_per_client_per_s": window["frames"] / max(1, connected) / window["window_s"],
            "writes": writes,
            **{k: v for k, v in window.items() if k != "window"},
        }
        progress(f"{label}: raw server CPU {fmt(result.get('cpu_us_per_frame'), 2)} µs/frame")
        await clients.call("disconnect", timeout=120)
        return result
    finally:
        await server.aclose()


async def run(args: argparse.Namespace, stack: Stack, progress: Progress) -> dict[str, Any]:
    counts = [int(c) for c in args.clients.split(",") if c.strip()]
    warnings = capacity_warnings(max(counts), args.processes)
    for warning in warnings:
        progress(f"warning: {warning}")
    await asyncio.to_thread(stack.start_server)
    event_id = await stack.create_event(venue(args.seats, unique_event_id("fanout")))
    seat_ids = await stack.layout(event_id)
    progress(
        f"event {event_id} ({len(seat_ids):,} seats) on {stack.server_url}, server pid {stack.server_pid}"
    )
    clients = Workers(FanoutClients, args.processes)
    driver = Workers(ChangeDriver, 1)
    runs = []
    try:
        for count in counts:
            found = await _seatmap_run(args, stack, clients, driver, event_id, seat_ids, count, progress)
            run_result: dict[str, Any] = {"clients": count, "seatmap": found["seatmap"]}
            rate = found["seatmap"]["frames_per_client_per_s"]
            if not args.no_reference and found["sample"] and rate > 0:
                run_result["raw"] = await _raw_run(args, clients, count, found["sample"], rate, progress)
                run_result["cpu_ratio"] = ratio(
                    found["seatmap"].get("cpu_us_per_frame"), run_result["raw"].get("cpu_us_per_frame")
                )
            runs.append(run_result)
    finally:
        await clients.aclose()
        await driver.aclose()
    return _summary(args, runs, warnings)


def _summary(args: argparse.Namespace, runs: list[dict[str, Any]], warnings: list[str]) -> dict[str, Any]:
    largest = runs[-1] if runs else {}
    p99 = largest.get("seatmap", {}).get("latency_ms", {}).get("p99")
    worst_ratio = max((r["cpu_ratio"] for r in runs if r.get("cpu_ratio") is not None), default=None)
    converged = all(
        r["seatmap"]["convergence"]["converged"] == r["seatmap"]["connected"]
        and r["seatmap"]["connected"] > 0
        for r in runs
    )
    return {
        "params": {
            "clients": [r["clients"] for r in runs],
            "client_processes": args.processes,
            "changes_per_s": args.rate,
            "driver_tick_s": args.tick,
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "seats": args.seats,
            "snapshots": "contract" if args.full_snapshots else "compact",
        },
        "warnings": warnings,
        "runs": runs,
        "targets": {
            "cpu_ratio": {
                "at_most": TARGET_CPU_RATIO,
                "value": worst_ratio,
                "verdict": verdict(worst_ratio, TARGET_CPU_RATIO, at_most=True),
            },
            "p99_ms_at_largest": {
                "at_most": TARGET_P99_MS,
                "value": p99,
                "verdict": verdict(p99, TARGET_P99_MS, at_most=True),
            },
            "all_converged": converged,
        },
    }


def render(result: dict[str, Any]) -> str:
    rows = []
    for r in result["runs"]:
        s = r["seatmap"]
        raw = r.get("raw", {})
        c = s["convergence"]
        rows.append(
            [
                r["clients"],
                s["connected"],
                fmt(s["changes_per_s"], 0),
                fmt(s["frames_per_client_per_s"], 1),
                fmt(s.get("cpu_us_per_frame"), 2),
                fmt(raw.get("cpu_us_per_frame"), 2),
                fmt(r.get("cpu_ratio"), 2),
                fmt(s["latency_ms"]["p50"], 0),
                fmt(s["latency_ms"]["p99"], 0),
                f"{c['converged']:,}/{s['connected']:,}",
            ]
        )
    targets = result["targets"]
    lines = [
        table(
            [
                "clients",
                "connected",
                "changes/s",
                "frames/client/s",
                "server µs/frame",
                "raw µs/frame",
                "ratio",
                "p50 ms",
                "p99 ms",
                "converged",
            ],
            rows,
        ),
        "",
        f"CPU ratio (worst) {fmt(targets['cpu_ratio']['value'], 2)}, target ≤ {TARGET_CPU_RATIO}: "
        f"{targets['cpu_ratio']['verdict']}",
        f"p99 change-to-last-client at the largest count {fmt(targets['p99_ms_at_largest']['value'], 0)} ms, "
        f"target ≤ {TARGET_P99_MS:g} ms: {targets['p99_ms_at_largest']['verdict']}",
        f"every client converged: {fmt(targets['all_converged'])}",
    ]
    return "\n".join(lines)
