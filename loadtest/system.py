"""What the machine allows: open files per process and ephemeral ports.

Every process of a benchmark (the parent, each client process, each server
it starts) raises its own open-file limit to the hard limit, because
10,000 connections need 10,000 descriptors on each side. This module only
reads and raises limits; it never changes system-wide settings.
"""

from __future__ import annotations

import resource
from pathlib import Path


def raise_fd_limit() -> int:
    """Raise this process's soft RLIMIT_NOFILE to its hard limit; returns the new soft limit.

    Children inherit it, so call this before spawning servers and clients."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = 1 << 20
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def ephemeral_ports() -> int:
    """How many local ports outgoing connections to one destination can use."""
    try:
        low, high = (int(part) for part in Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    except (OSError, ValueError):
        return 28_232  # Linux's default range, 32768-60999
    return high - low + 1


def capacity_warnings(connections: int, client_processes: int) -> list[str]:
    """Why `connections` may not fit on this machine (empty when they should)."""
    warnings = []
    limit = raise_fd_limit()
    per_client = -(-connections // max(1, client_processes))
    if limit < connections + 100:
        warnings.append(
            f"open-file limit {limit} is below {connections} connections plus headroom for the "
            "server process: raise `ulimit -Hn`"
        )
    if limit < per_client + 100:
        warnings.append(f"open-file limit {limit} is below {per_client} connections per client process")
    ports = ephemeral_ports()
    if ports < connections * 1.2:
        warnings.append(
            f"only {ports} ephemeral ports (net.ipv4.ip_local_port_range) for {connections} "
            "connections to one address: expect connect errors"
        )
    return warnings
