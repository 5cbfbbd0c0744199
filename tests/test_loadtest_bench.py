"""The benchmark commands, each run tiny against the session's Redis and
Postgres: they must complete, count real work and converge. Timings are
never asserted (this machine is shared and noisy); docs/benchmarks.md has
the figures of full-size runs."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent


def run_command(tmp_path: Path, redis_url: str, database_url: str, *args: str) -> dict[str, Any]:
    """`python -m loadtest <args>` in a process of its own; returns its JSON result."""
    result_path = tmp_path / f"{args[0]}.json"
    command = [
        sys.executable,
        "-m",
        "loadtest",
        *args,
        "--redis-url",
        redis_url,
        "--database-url",
        database_url,
        "--json",
        str(result_path),
        "--quiet",
    ]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"{' '.join(args)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    assert done.stdout.strip(), "the command printed no table"
    result = json.loads(result_path.read_text())
    assert result["command"] == args[0] and result["machine"]["cores"]
    return result


def test_holds(tmp_path: Path, redis_url: str, database_url: str) -> None:
    result = run_command(
        tmp_path,
        redis_url,
        database_url,
        "holds",
        "--duration", "1",
        "--warmup", "0.2",
        "--concurrency", "4",
        "--processes", "1",
        "--seats", "200",
        "--rb-requests", "2000",
    )  # fmt: skip
    phases = result["results"]
    for name in ("server", "redis", "redis-pipelined", "postgres", "postgres-async"):
        assert phases[name]["holds"] > 0, name
        assert phases[name]["errors"] == 0, name  # every hold was a granted 4-seat hold
        assert phases[name]["latency_ms"]["p50"] > 0, name
    assert phases["server"]["diff_frames_received"] > 0  # the clients also followed the map
    if shutil.which("redis-benchmark"):
        assert phases["redis-benchmark"]["holds_per_s"] > 0
        assert phases["redis-benchmark-P16"]["granted"] > 0
    assert result["ratios"]["a/b"] is not None and result["ratios"]["b/c"] is not None


def test_fanout(tmp_path: Path, redis_url: str, database_url: str) -> None:
    result = run_command(
        tmp_path,
        redis_url,
        database_url,
        "fanout",
        "--clients", "20",
        "--processes", "2",
        "--duration", "1",
        "--warmup", "0.5",
        "--seats", "200",
        "--rate", "400",
    )  # fmt: skip
    (run,) = result["runs"]
    seatmap = run["seatmap"]
    assert seatmap["connected"] == 20
    assert seatmap["frames"] > 0 and seatmap["cpu_us_per_frame"] > 0
    assert seatmap["latency_ms"]["count"] > 0
    convergence = seatmap["convergence"]
    assert convergence["converged"] == 20, convergence
    assert convergence["mismatched_frames"] == 0
    assert run["raw"]["connected"] == 20 and run["raw"]["frames"] > 0
    assert result["targets"]["all_converged"] is True


def test_connections(tmp_path: Path, redis_url: str, database_url: str) -> None:
    result = run_command(
        tmp_path,
        redis_url,
        database_url,
        "connections",
        "--clients", "50",
        "--processes", "2",
        "--settle", "0.3",
    )  # fmt: skip
    for name in ("seatmap", "websockets", "starlette"):
        row = result["results"][name]
        assert row["connected"] == 50, name
        assert row["open_after_settle"] == 50, name
        assert row["received_first_frame"] == 50, name
        assert row["rss_before"] > 0 and row["rss_after"] > 0, name


def test_snapshot(tmp_path: Path, redis_url: str, database_url: str) -> None:
    result = run_command(
        tmp_path,
        redis_url,
        database_url,
        "snapshot",
        "--seats", "2000",
        "--iterations", "5",
        "--connections", "1",
    )  # fmt: skip
    wire = result["wire"]
    assert wire["contract"]["seats"] == wire["compact"]["seats"] == 2000
    assert wire["compact"]["bytes"] > 2000  # one character per seat, plus the envelope
    assert wire["contract"]["bytes"] > wire["compact"]["bytes"]
    # The in-process encoder makes the frame the server sent.
    assert result["encode"]["compact"]["bytes"] == wire["compact"]["bytes"]
    assert result["encode"]["contract"]["bytes"] == wire["contract"]["bytes"]
    assert result["encode"]["compact"]["us"] > 0
