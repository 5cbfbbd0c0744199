"""CPU time and memory of server processes, read with psutil.

CPU is the user+system time the kernel charged to a process and its live
children between two readings, so other processes on a noisy machine do not
count against it (they only slow it down). Memory is RSS and, where
/proc/<pid>/smaps is readable, USS (pages only this process maps).
"""

from __future__ import annotations

import contextlib
import math
import shutil
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil


def _tree(pid: int) -> list[psutil.Process]:
    root = psutil.Process(pid)
    processes = [root]
    with contextlib.suppress(psutil.Error):
        processes += root.children(recursive=True)
    return processes


def cpu_seconds(pid: int) -> float:
    """User+system CPU seconds of the process and its live children so far."""
    total = 0.0
    for process in _tree(pid):
        with contextlib.suppress(psutil.NoSuchProcess):
            times = process.cpu_times()
            total += times.user + times.system
    return total


@dataclass
class CpuWindow:
    """CPU seconds one process tree used over a wall-clock window."""

    pid: int
    started_cpu: float = 0.0
    started_wall: float = 0.0
    cpu: float = 0.0
    wall: float = 0.0

    def start(self) -> None:
        self.started_cpu = cpu_seconds(self.pid)
        self.started_wall = time.monotonic()

    def stop(self) -> None:
        self.cpu = cpu_seconds(self.pid) - self.started_cpu
        self.wall = time.monotonic() - self.started_wall

    @property
    def utilisation(self) -> float:
        """Average cores busy over the window (1.0 = one core all the time)."""
        return self.cpu / self.wall if self.wall else 0.0


def memory(pid: int) -> dict[str, Any]:
    """RSS and USS in bytes of the process and its children (USS None where unreadable)."""
    rss = 0
    uss: int | None = 0
    for process in _tree(pid):
        try:
            try:
                info = process.memory_full_info()
                rss += info.rss
                if uss is not None:
                    uss += info.uss
            except psutil.AccessDenied:
                rss += process.memory_info().rss
                uss = None
        except psutil.NoSuchProcess:
            continue
    return {"rss": rss, "uss": uss}


def pid_listening_on(port: int) -> int | None:
    """The pid of the process listening on a local TCP port, when the OS tells us."""
    with contextlib.suppress(psutil.Error):
        for conn in psutil.net_connections(kind="tcp"):
            if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port and conn.pid:
                return conn.pid
    return None


class Profiler:
    """py-spy sampling a process over a window, writing collapsed stacks
    (`py-spy record -f raw`) to `path`. py-spy is not a dependency: install
    it (`pip install py-spy`) to use `--profile`; it needs ptrace rights."""

    def __init__(self, pid: int, path: str, rate: int = 200) -> None:
        self.pid, self.path, self.rate = pid, path, rate
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, seconds: float) -> None:
        beside = Path(sys.executable).parent / "py-spy"  # a virtualenv's, when it is not activated
        binary = shutil.which("py-spy") or (str(beside) if beside.exists() else None)
        if binary is None:
            raise RuntimeError("--profile needs py-spy: pip install py-spy")
        command = [binary, "record", "-p", str(self.pid), "-d", str(max(1, round(seconds)))]
        command += ["-r", str(self.rate), "-f", "raw", "-o", self.path, "--nonblocking"]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stop(self, timeout: float = 30.0) -> list[tuple[float, str]]:
        """Wait for py-spy; the hottest frames by own time, as (share, frame)."""
        if self.process is None:
            return []
        self.process.wait(timeout)
        return top_frames(self.path)


def top_frames(path: str, count: int = 12) -> list[tuple[float, str]]:
    """Frames with the most own (self) samples in a collapsed-stack file, as (share, frame)."""
    own: Counter[str] = Counter()
    total = 0
    try:
        lines = Path(path).read_text().splitlines()
    except OSError:
        return []
    for line in lines:
        stack, _, samples = line.rpartition(" ")
        if not stack or not samples.isdigit():
            continue
        total += int(samples)
        own[stack.split(";")[-1]] += int(samples)
    return [(n / total, frame) for frame, n in own.most_common(count)] if total else []


class Sampler:
    """CPU (cores busy) and RSS of named process trees, read once a second
    into a time series: `{"t": [...], "<name>": {"cpu": [...], "rss_mib": [...]}}`."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = {name: pid for name, pid in pids.items() if pid}
        self.series: dict[str, Any] = {"t": []}
        for name in self.pids:
            self.series[name] = {"cpu": [], "rss_mib": []}
        self._last: dict[str, tuple[float, float]] = {}

    def sample(self) -> dict[str, tuple[float, float]]:
        """Take one reading; returns {name: (cores busy since the last reading, RSS MiB)}."""
        now = time.monotonic()
        found: dict[str, tuple[float, float]] = {}
        for name, pid in self.pids.items():
            try:
                cpu = cpu_seconds(pid)
                rss = memory(pid)["rss"] / 2**20
            except psutil.Error:
                continue
            last = self._last.get(name)
            busy = (cpu - last[1]) / (now - last[0]) if last and now > last[0] else 0.0
            self._last[name] = (now, cpu)
            found[name] = (busy, rss)
        if self._last:
            self.series["t"].append(time.time())
            for name in self.pids:
                busy, rss = found.get(name, (math.nan, math.nan))
                self.series[name]["cpu"].append(round(busy, 3))
                self.series[name]["rss_mib"].append(round(rss, 1))
        return found
