"""What a benchmark tells its reader: live progress on stderr, a table on
stdout, and a JSON file with every figure, the run's parameters and where it
ran (date, commit, machine)."""

from __future__ import annotations

import datetime
import json
import math
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil

REPO = Path(__file__).resolve().parent.parent


class Progress:
    """Prints `loadtest <command>: <message>` lines to stderr (quiet: nothing)."""

    def __init__(self, command: str, quiet: bool = False) -> None:
        self.command = command
        self.quiet = quiet
        self.started = time.monotonic()

    def __call__(self, message: str) -> None:
        if not self.quiet:
            elapsed = time.monotonic() - self.started
            print(f"[{elapsed:6.1f}s] {self.command}: {message}", file=sys.stderr, flush=True)


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", *args], cwd=REPO, capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return out


def run_info() -> dict[str, Any]:
    """Where and when: the same block heads every result file."""
    cpu_model = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    # The server runs from the work tree: say when its code differs from the commit.
    changed = _git("status", "--porcelain", "--", "server", "lua", "migrations")
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "commit": _git("rev-parse", "--short", "HEAD"),
        "server_code_modified": bool(changed),
        "machine": {
            "cores": os.cpu_count(),
            "ram_gib": round(psutil.virtual_memory().total / 2**30, 1),
            "cpu": cpu_model,
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
    }


def fmt(value: Any, digits: int = 1) -> str:
    """A figure for a table: thousands separators, fixed decimals, '—' for missing."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


def table(headers: list[str], rows: list[list[Any]]) -> str:
    cells = [[str(h) for h in headers]] + [[c if isinstance(c, str) else fmt(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = []
    for n, row in enumerate(cells):
        lines.append(
            "  ".join(
                cell.rjust(w) if i else cell.ljust(w)
                for i, (cell, w) in enumerate(zip(row, widths, strict=True))
            )
        )
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def verdict(value: float | None, target: float, *, at_most: bool = False) -> str:
    """'met' / 'missed' / 'n/a' for a ratio against its target."""
    if value is None:
        return "n/a"
    met = value <= target if at_most else value >= target
    return "met" if met else "MISSED"


def write_html(path: str, result: dict[str, Any]) -> None:
    """The result as a self-contained HTML page (`loadtest.htmlreport`)."""
    from .htmlreport import render

    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render(_clean(result)))


def write_json(path: str | None, result: dict[str, Any]) -> None:
    if not path:
        return
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(_clean(result), indent=2, allow_nan=False) + "\n")


def _clean(value: Any) -> Any:
    """NaN and infinities become null (JSON has neither); paths become strings."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(key): _clean(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(item) for item in value]
    if isinstance(value, Path):
        return str(value)
    return value
