"""Websocket protections, as pure functions and small in-process objects.

This module owns three decisions about a websocket, and does no I/O:

- whose pages may open one (`origin_allowed`: the browser's `Origin` against
  the `Host` it connected to and `SEATMAP_ALLOWED_ORIGINS`);
- how many may be open at once, in this process and per client address
  (`ConnectionLimiter`: `SEATMAP_MAX_CONNECTIONS`, `SEATMAP_MAX_CONNECTIONS_PER_IP`);
- when a silent one is closed (`keepalive`: `SEATMAP_IDLE_TIMEOUT` turned into
  uvicorn's protocol ping settings).

The rate of new connections per address, shared by all workers, is
`server.ratelimit`'s business; who the client is, `server.clientip`'s.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from .clientip import ip_bucket
from .errors import LimitExceeded, SeatmapError, Unavailable

_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


# --- origins ----------------------------------------------------------------------------------------


def normalize_origin(origin: str) -> str | None:
    """`scheme://host[:port]` in lower case without the scheme's default port; None when `origin`
    is not a web origin (no scheme or host, or a path, query or credentials in it)."""
    try:
        parts = urlsplit(origin.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username or parts.password:
        return None
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    if port is None or port == _DEFAULT_PORTS[scheme]:
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def _split_host(host_header: str) -> tuple[str, int | None] | None:
    """The host name and port of a `Host` header (`example.com`, `example.com:8000`, `[::1]:8000`)."""
    try:
        parts = urlsplit("//" + host_header.strip())
        return (parts.hostname or "").lower(), parts.port
    except ValueError:
        return None


def _same_origin(origin: str, host_header: str | None) -> bool:
    if not host_header:
        return False
    parts = urlsplit(origin)
    host = _split_host(host_header)
    if host is None or not parts.hostname:
        return False
    name, port = host
    if parts.hostname.lower() != name:
        return False
    origin_port = parts.port or _DEFAULT_PORTS[parts.scheme]
    if port is None:
        # The Host header leaves out the default port of the scheme the browser used; behind a
        # TLS-terminating load balancer that scheme is not ours to know, so either default will do.
        return parts.port is None
    return origin_port == port


def origin_allowed(origin_header: str | None, host_header: str | None, allowed: tuple[str, ...]) -> bool:
    """May a page from `origin_header` open a websocket here?

    A request without `Origin` is not from a browser page (curl, a load tester, a
    server) and is allowed: the check protects buyers' browsers from other sites'
    scripts, and anything else can forge the header anyway. A page of the same
    origin as the server (by the `Host` it connected to) is always allowed; other
    origins only when listed in `allowed` (exact `scheme://host[:port]`), or when
    `allowed` holds `*`. The opaque origin `null` (sandboxed frames, files) is
    allowed only by `*` or by listing `null`.
    """
    if origin_header is None or origin_header.strip() == "":
        return True
    if "*" in allowed:
        return True
    if origin_header.strip().lower() == "null":
        return "null" in allowed
    origin = normalize_origin(origin_header)
    if origin is None:
        return False
    if _same_origin(origin, host_header):
        return True
    return origin in _normalized(allowed)


@lru_cache(maxsize=16)
def _normalized(allowed: tuple[str, ...]) -> frozenset[str]:
    return frozenset(filter(None, (normalize_origin(item) for item in allowed)))


# --- connection counts ----------------------------------------------------------------------------------


class ConnectionLimiter:
    """Open websockets of this process, in total and per client address (0: no limit).

    `acquire` before serving a connection, `release` exactly once when it ends
    (only if `acquire` said True). Addresses are counted as `ip_bucket` counts
    them: loopback peers only against the total, IPv6 clients by their /64.
    Per process: with W workers behind one port a client can hold up to W times
    `max_per_ip`, which is what it is for (no single client takes a process's
    capacity), not an exact quota.
    """

    def __init__(self, max_total: int, max_per_ip: int) -> None:
        self.max_total = max_total
        self.max_per_ip = max_per_ip
        self.total = 0
        self._per_ip: dict[str, int] = {}

    def count(self, ip: str | None) -> int:
        bucket = ip_bucket(ip)
        return self._per_ip.get(bucket, 0) if bucket is not None else 0

    def acquire(self, ip: str | None) -> bool:
        if self.max_total and self.total >= self.max_total:
            return False
        bucket = ip_bucket(ip)
        if bucket is not None:
            held = self._per_ip.get(bucket, 0)
            if self.max_per_ip and held >= self.max_per_ip:
                return False
            self._per_ip[bucket] = held + 1
        self.total += 1
        return True

    def release(self, ip: str | None) -> None:
        if self.total <= 0:
            raise RuntimeError("ConnectionLimiter.release() without a matching acquire()")
        self.total -= 1
        bucket = ip_bucket(ip)
        if bucket is None:
            return
        held = self._per_ip.get(bucket, 0)
        if held <= 1:
            self._per_ip.pop(bucket, None)
        else:
            self._per_ip[bucket] = held - 1

    def refusal(self, ip: str | None) -> SeatmapError:
        """Why `acquire(ip)` says no right now, as the error to send before closing."""
        if self.max_total and self.total >= self.max_total:
            return Unavailable(
                f"this server process is at its limit of {self.max_total} connections; try again in a few seconds"
            )
        return LimitExceeded(f"too many open websocket connections from this address (at most {self.max_per_ip})")


# --- idle connections ----------------------------------------------------------------------------------


def keepalive(idle_timeout: float) -> dict[str, Any]:
    """uvicorn's websocket ping settings for `SEATMAP_IDLE_TIMEOUT` (0: no pings, nothing is closed).

    A browser answers protocol pings by itself, so a live client is never idle,
    however quiet; what this closes is a peer that has gone (a sleeping laptop,
    a dropped NAT entry, a client that vanished without a FIN), whose socket,
    buffer and subscription would otherwise be held until TCP gives up, which
    can take hours. uvicorn pings every `idle_timeout / 2` seconds whatever the
    traffic and closes the connection (1011) when the pong is not back within
    another `idle_timeout / 2`, so a peer is closed about `idle_timeout` seconds
    after its last pong (never later). Client frames do not postpone the ping:
    a client that sends frames but does not answer pings is not a websocket
    client and is closed too.
    """
    if idle_timeout <= 0:
        return {"ws_ping_interval": None, "ws_ping_timeout": None}
    half = idle_timeout / 2
    return {"ws_ping_interval": half, "ws_ping_timeout": half}
