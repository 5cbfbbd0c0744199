"""`bench`: the whole suite in one command, at fixed sizes, each benchmark in
a process of its own (`python -m loadtest <command> --json …`) against the
same Redis and Postgres: holds (the server against redis-py and the Postgres
row-lock design), fanout, connections, snapshot, checkout and a drop. It
prints one table of the headline figures and rewrites the section of
docs/benchmarks.md between `<!-- bench:begin -->` and `<!-- bench:end -->`
with them, the machine (cores, CPU model, RAM) and the git commit; the
hand-written sections around it are left as they are.

`--quick` takes a few minutes (small sizes: figures for checking the
machinery, not for comparing); the full run takes 20-30 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .report import REPO, fmt, run_info, table, write_json
from .stack import add_stack_arguments, open_stack
from .system import raise_fd_limit

BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"
ORDER = ("holds", "fanout", "connections", "snapshot", "checkout", "drop")

SIZES: dict[str, dict[str, list[str]]] = {
    "quick": {
        "holds": ["--duration", "3", "--warmup", "0.5", "--concurrency", "32", "--phases", "server,redis,postgres"],
        "fanout": ["--clients", "1000", "--processes", "2", "--duration", "3", "--warmup", "1"],
        "connections": ["--clients", "2000", "--processes", "2", "--settle", "1", "--references", "websockets"],
        "snapshot": ["--iterations", "50", "--connections", "2"],
        "checkout": ["--concurrency", "8", "--duration", "5", "--warmup", "1", "--seats", "2000"],
        "drop": ["--clients", "1000", "--processes", "2", "--seats", "2000", "--ramp", "3", "--watch", "1",
                 "--hold-seconds", "10", "--checkout-seconds", "8", "--duration", "40"],
    },
    "full": {
        "holds": [],
        "fanout": [],
        "connections": [],
        "snapshot": [],
        "checkout": ["--concurrency", "16", "--duration", "20"],
        "drop": ["--clients", "10000", "--processes", "4", "--seats", "2000", "--ramp", "10", "--watch", "3",
                 "--hold-seconds", "20", "--checkout-seconds", "15", "--duration", "120"],
    },
}  # fmt: skip


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true", help="small sizes, a few minutes (default: full, 20-30 min)")
    parser.add_argument("--only", help=f"comma-separated subset of {','.join(ORDER)}")
    parser.add_argument("--docs", default=str(REPO / "docs" / "benchmarks.md"), help="the file to rewrite")
    parser.add_argument("--no-docs", action="store_true", help="print the table only, leave the docs alone")
    parser.add_argument("--json", metavar="PATH", help="write every benchmark's result to this JSON file")
    parser.add_argument("--keep", metavar="DIR", help="keep each benchmark's JSON and HTML in DIR")
    add_stack_arguments(parser)


def main(args: argparse.Namespace) -> int:
    raise_fd_limit()
    chosen = [n.strip() for n in (args.only or ",".join(ORDER)).split(",") if n.strip()]
    unknown = set(chosen) - set(ORDER)
    if unknown:
        raise SystemExit(f"unknown benchmarks {sorted(unknown)}; choose from {', '.join(ORDER)}")
    size = "quick" if args.quick else "full"
    results: dict[str, Any] = {}
    failures: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="seatmap-bench-") as tmp, open_stack(args, _say) as stack:
        out = Path(args.keep or tmp)
        out.mkdir(parents=True, exist_ok=True)
        for name in chosen:
            command = [sys.executable, "-m", "loadtest", name, *SIZES[size][name],
                       "--redis-url", stack.redis_url, "--database-url", stack.database_url,
                       "--json", str(out / f"{name}.json")]  # fmt: skip
            if name in ("drop", "checkout"):
                command += ["--html", str(out / f"{name}.html")]
            _say(f"running {name}: {' '.join(command[3:])}")
            started = time.monotonic()
            done = subprocess.run(command, cwd=REPO, stdout=subprocess.PIPE, text=True)
            print(done.stdout, flush=True)
            try:
                results[name] = json.loads((out / f"{name}.json").read_text())
                results[name]["wall_s"] = time.monotonic() - started
            except (OSError, ValueError):
                failures[name] = f"exit status {done.returncode}, no result"
                continue
            if done.returncode != 0:
                failures[name] = f"exit status {done.returncode}"
    info = run_info()
    rows = headline(results)
    print(table(["benchmark", "figure", "value"], [[b, f, v] for b, f, v in rows]))
    for name, why in failures.items():
        print(f"{name}: FAILED ({why})")
    write_json(args.json, {"command": "bench", "size": size, **info, "results": results, "failures": failures})
    if not args.no_docs:
        path = Path(args.docs)
        path.write_text(replace_section(path.read_text(), figures_markdown(rows, info, size, failures)))
        _say(f"rewrote the figures section of {path}")
    return 1 if failures else 0


def _say(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def _get(result: dict[str, Any], *path: Any) -> Any:
    for key in path:
        if not isinstance(result, dict | list):
            return None
        try:
            result = result[key]
        except (KeyError, IndexError, TypeError):
            return None
    return result


def _n(value: Any, digits: int = 1, unit: str = "") -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    return f"{fmt(float(value), digits)}{unit}"


def headline(results: dict[str, Any]) -> list[tuple[str, str, str]]:
    """The few figures of each benchmark worth a line in the table, as text."""
    rows: list[tuple[str, str, str]] = []
    holds = results.get("holds")
    if holds:
        r = holds.get("results", {})
        rows += [
            ("holds", "(a) server over websocket, holds/s", _n(_get(r, "server", "holds_per_s"), 0)),
            ("holds", "(a) hold p50 / p99 ms", f"{_n(_get(r, 'server', 'latency_ms', 'p50'), 2)} / "
                                             f"{_n(_get(r, 'server', 'latency_ms', 'p99'), 2)}"),
            ("holds", "(b) redis-py → hold.lua, holds/s", _n(_get(r, "redis", "holds_per_s"), 0)),
            ("holds", "(c) Postgres row locks, holds/s", _n(_get(r, "postgres", "holds_per_s"), 0)),
            ("holds", "a/c (server vs Postgres row-lock design)", _n(_get(holds, "ratios", "a/c"), 2)),
        ]  # fmt: skip
    fanout = results.get("fanout")
    for run in (fanout or {}).get("runs", []):
        s = run.get("seatmap", {})
        rows.append((
            "fanout", f"{run.get('clients', 0):,} clients: µs/frame server / raw, p50 / p99 ms",
            f"{_n(s.get('cpu_us_per_frame'), 2)} / {_n(_get(run, 'raw', 'cpu_us_per_frame'), 2)}, "
            f"{_n(_get(s, 'latency_ms', 'p50'), 0)} / {_n(_get(s, 'latency_ms', 'p99'), 0)}",
        ))  # fmt: skip
    connections = results.get("connections")
    if connections:
        for name, row in connections.get("results", {}).items():
            rows.append(("connections", f"{name}: RSS KiB per idle websocket", _n(row.get("rss_per_connection_kib"))))
    snapshot = results.get("snapshot")
    if snapshot:
        rows.append(("snapshot", f"{_get(snapshot, 'wire', 'compact', 'seats') or 0:,} seats compact: bytes, encode µs",
                     f"{_n(_get(snapshot, 'wire', 'compact', 'bytes'), 0)}, "
                     f"{_n(_get(snapshot, 'encode', 'compact', 'us'), 0)}"))  # fmt: skip
    checkout = results.get("checkout")
    if checkout:
        shares = ", ".join(
            f"{step} {_n(100 * (row.get('share') or 0), 0)}%" for step, row in checkout.get("steps", {}).items()
        )
        rows += [
            ("checkout", f"purchases/s at concurrency {_get(checkout, 'params', 'concurrency')}",
             _n(checkout.get("purchases_per_s"), 1)),
            ("checkout", "purchase p50 / p99 ms", f"{_n(_get(checkout, 'latency_ms', 'p50'), 0)} / "
                                                  f"{_n(_get(checkout, 'latency_ms', 'p99'), 0)}"),
            ("checkout", "share of time per step", shares),
        ]  # fmt: skip
    drop = results.get("drop")
    if drop:
        s = drop.get("summary", {})
        hold = _get(drop, "latency", "hold (request to reply)", "summary") or {}
        fan = _get(drop, "latency", "fan-out (grant to each client's receipt)", "summary") or {}
        rows += [
            ("drop", "buyers connected / holds granted / refused",
             f"{s.get('connected', 0):,} / {s.get('holds_granted', 0):,} / {s.get('holds_refused', 0):,}"),
            ("drop", "hold p50 / p95 / p99 / max ms",
             " / ".join(_n(hold.get(k), 1) for k in ("p50", "p95", "p99", "max"))),
            ("drop", "grant→client p50 / p99 ms", f"{_n(fan.get('p50'), 0)} / {_n(fan.get('p99'), 0)}"),
            ("drop", "peak frames/s, peak holds/s",
             f"{_n(s.get('peak_frames_per_s'), 0)}, {_n(s.get('peak_holds_per_s'), 0)}"),
            ("drop", "invariant violations", str(len(drop.get("violations", [])))),
        ]  # fmt: skip
    return rows


def figures_markdown(
    rows: list[tuple[str, str, str]], info: dict[str, Any], size: str, failures: dict[str, str]
) -> str:
    """The generated section: headline figures, where they were measured, what failed."""
    machine = info.get("machine", {})
    lines = [
        BEGIN,
        "",
        f"Generated by `python -m loadtest bench{' --quick' if size == 'quick' else ''}` on {info.get('date')}, "
        f"commit `{info.get('commit')}`"
        + (" (server code modified in the work tree)" if info.get("server_code_modified") else "")
        + f"; machine: {machine.get('cores')} cores, {machine.get('cpu')}, {machine.get('ram_gib')} GiB RAM, "
        f"Python {machine.get('python')}. "
        + ("Quick sizes: these check the machinery and are not comparable with full runs."
           if size == "quick" else "Full sizes."),
        "",
        "| benchmark | figure | value |",
        "|---|---|---|",
    ]  # fmt: skip
    lines += [f"| {b} | {f} | {v.replace('|', '/')} |" for b, f, v in rows]
    for name, why in failures.items():
        lines.append(f"| {name} | **failed** | {why} |")
    lines += ["", END]
    return "\n".join(lines)


def replace_section(text: str, section: str) -> str:
    """`text` with the generated section replaced (or added at the end under its heading)."""
    pattern = re.compile(re.escape(BEGIN) + r".*?" + re.escape(END), re.S)
    if pattern.search(text):
        return pattern.sub(lambda _: section, text, count=1)
    return text.rstrip("\n") + "\n\n## Latest `bench` run\n\n" + section + "\n"
