"""Who the client is, as far as per-address limits are concerned.

This module owns two decisions and no I/O:

- `client_ip(scope, trusted_proxies)`: the client's address. It is the TCP peer
  of the ASGI scope, unless that peer is one of `SEATMAP_TRUSTED_PROXIES`: then
  `X-Forwarded-For` is read from the right, skipping our own proxies, and the
  first address not among them is the client. What a client writes in the
  header itself (to the left of what our proxies appended) is never believed,
  and with no trusted proxies the header is ignored altogether.
- `ip_bucket(ip)`: what per-address limits count an address as. An IPv6
  address counts as its /64, the share one subscriber gets (a client can
  switch addresses within it at will). Loopback and unknown peers are not
  limited per address: a peer on this machine is a local tool or a proxy
  that is not in `SEATMAP_TRUSTED_PROXIES`, behind which every buyer would
  share one address, and limiting them together would throttle the whole drop.

uvicorn applies the same rule to `scope["client"]` when it is given the same
trusted list (`forwarded_allow_ips`); running both is harmless, since a
rewritten client address is no longer a trusted proxy.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

IPV6_BUCKET_PREFIX = 64


@lru_cache(maxsize=16)
def _networks(trusted: tuple[str, ...]) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(item, strict=False) for item in trusted)


def parse_address(text: str) -> IPAddress | None:
    """An address as proxies write it (`1.2.3.4`, `1.2.3.4:5678`, `[2001:db8::1]:443`), or None."""
    text = text.strip()
    if text.startswith("["):
        end = text.find("]")
        text = text[1:end] if end > 0 else text
    elif text.count(":") == 1:  # IPv4 with a port; a bare IPv6 address has several colons
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0])  # drop an IPv6 zone id
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _is_trusted(address: IPAddress, networks: Iterable[IPNetwork]) -> bool:
    return any(address in network for network in networks)


def forwarded_for(headers: Iterable[tuple[bytes, bytes]]) -> list[str]:
    """Every hop of every `X-Forwarded-For` header, in order (the nearest proxy's last)."""
    hops: list[str] = []
    for name, value in headers:
        if name.lower() == b"x-forwarded-for":
            hops.extend(part.strip() for part in value.decode("latin-1").split(","))
    return [hop for hop in hops if hop]


def client_ip(scope: Mapping[str, Any], trusted_proxies: tuple[str, ...] = ()) -> str | None:
    """The client's address for an ASGI HTTP or websocket scope; None when the server gave no peer."""
    client = scope.get("client")
    peer_text = client[0] if client else None
    if not peer_text:
        return None
    peer = parse_address(peer_text)
    if peer is None:
        return peer_text  # a unix socket path or the like: use it as it is
    if not trusted_proxies:
        return str(peer)
    networks = _networks(trusted_proxies)
    if not _is_trusted(peer, networks):
        return str(peer)
    candidate = peer
    for hop in reversed(forwarded_for(scope.get("headers") or ())):
        address = parse_address(hop)
        if address is None:
            break  # not an address: stop at the last hop our proxies vouch for
        candidate = address
        if not _is_trusted(address, networks):
            break
    return str(candidate)


@lru_cache(maxsize=65536)
def ip_bucket(ip: str | None) -> str | None:
    """What per-address limits count `ip` as; None for addresses those limits do not apply to."""
    if not ip:
        return None
    address = parse_address(ip)
    if address is None:
        return None
    if address.is_loopback:
        return None
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((address, IPV6_BUCKET_PREFIX), strict=False))
    return str(address)
