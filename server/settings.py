"""Settings: every knob Seatmap reads from the environment, parsed once.

This module owns the names and defaults of the configuration (the contract's
"Running" table plus Seatmap's own extensions) and nothing else: it never
starts servers or touches the network. `Settings.from_env()` is the only
place that reads `os.environ` for configuration.
"""

from __future__ import annotations

import ipaddress
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

DEFAULT_GATEWAY_BASE = "http://127.0.0.1:12111"


class SettingsError(ValueError):
    """A configuration value that cannot be used; the message names the variable."""


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 1) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a whole number, got {raw!r}") from None
    if value < minimum:
        raise SettingsError(f"{name} must be at least {minimum}, got {value}")
    return value


def _float(env: Mapping[str, str], name: str, default: float, minimum: float = 0.0) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number, got {raw!r}") from None
    if value < minimum:
        raise SettingsError(f"{name} must be at least {minimum}, got {value}")
    return value


def _list(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    raw = env.get(name, "")
    return tuple(part.strip() for part in raw.split(",") if part.strip())


@dataclass(frozen=True)
class Rate:
    """A rate limit: `limit` requests per `period` seconds (a burst of `limit`, then evenly spread).

    Written `<limit>/<window>` in the environment: `20/10s`, `600/1m`, `5/500ms`, `100/m`
    (a bare number is seconds); `off` or `0` disables the limit.
    """

    limit: int
    period: float

    def __str__(self) -> str:
        period = int(self.period) if float(self.period).is_integer() else self.period
        return f"{self.limit}/{period}s"


_RATE = re.compile(r"^(\d+)\s*/\s*(\d+(?:\.\d+)?)?\s*(ms|s|m|h)?$")
_RATE_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def _rate(env: Mapping[str, str], name: str, default: Rate | None) -> Rate | None:
    raw = (env.get(name) or "").strip().lower()
    if raw == "":
        return default
    if raw in ("0", "off", "none"):
        return None
    match = _RATE.match(raw)
    if match is None or (match[2] is None and match[3] is None):
        raise SettingsError(
            f"{name} must be '<requests>/<window>' like '20/10s' or '600/1m' (units ms, s, m, h), or 'off', got {raw!r}"
        )
    limit = int(match[1])
    period = float(match[2] or 1) * _RATE_UNITS[match[3] or "s"]
    if limit == 0:
        return None
    if not 0.001 <= period <= 86_400:
        raise SettingsError(f"{name}: the window must be between 1ms and 24h, got {raw!r}")
    return Rate(limit, round(period, 6))


def _networks(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    """IP addresses or CIDR networks, canonicalised (so they round-trip through the environment)."""
    networks = []
    for part in _list(env, name):
        try:
            networks.append(str(ipaddress.ip_network(part, strict=False)))
        except ValueError:
            raise SettingsError(f"{name} lists {part!r}, which is not an IP address or network") from None
    return tuple(networks)


@dataclass(frozen=True)
class Settings:
    # Contract settings.
    redis_url: str | None = None
    database_url: str | None = None
    data_dir: Path = Path(".seatmap")
    admin_token: str | None = None
    secret: str | None = None
    hold_seconds: int = 300
    checkout_seconds: int = 900
    max_seats_per_buyer: int = 8
    stripe_secret_key: str | None = None
    stripe_api_base: str | None = None
    stripe_webhook_secret: str | None = None

    # Seatmap's own extensions (documented in docs/protocol.md).
    public_url: str | None = None
    stripe_publishable_key: str | None = None  # pk_…: what the payment page gives Stripe.js
    stream_maxlen: int = 10_000
    client_buffer_bytes: int = 1 << 20
    socket_send_buffer: int = 256 * 1024
    max_frame_bytes: int = 64 * 1024
    sweep_interval: float = 0.25
    redis_watch_interval: float = 1.0
    allowed_origins: tuple[str, ...] = ()
    log_level: str = "info"
    log_format: str = "text"
    gateway_success_rate: float = 1.0
    gateway_webhook_delay: float = 0.0
    traffic_log: Path | None = None
    # Abuse limits (docs/protocol.md, docs/deploy.md). Rates are shared by every
    # worker through Redis; connection caps are per process. None/0: off.
    rate_holds_per_buyer: Rate | None = Rate(60, 10.0)
    rate_holds_per_ip: Rate | None = Rate(600, 10.0)
    rate_sessions_per_ip: Rate | None = Rate(120, 60.0)
    rate_websockets_per_ip: Rate | None = Rate(600, 60.0)
    trusted_proxies: tuple[str, ...] = ()
    max_connections: int = 20_000
    max_connections_per_ip: int = 1_000
    idle_timeout: float = 40.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        stripe_key = env.get("STRIPE_SECRET_KEY") or None
        api_base = env.get("STRIPE_API_BASE") or None
        if stripe_key is None and api_base is None:
            api_base = DEFAULT_GATEWAY_BASE
        log_format = env.get("SEATMAP_LOG_FORMAT", "text").lower()
        if log_format not in ("text", "json"):
            raise SettingsError(f"SEATMAP_LOG_FORMAT must be 'text' or 'json', got {log_format!r}")
        publishable_key = env.get("STRIPE_PUBLISHABLE_KEY") or None
        if publishable_key is not None and not publishable_key.startswith("pk_"):
            # It is handed to every buyer's browser: a secret key put here by mistake must not be.
            raise SettingsError("STRIPE_PUBLISHABLE_KEY must be a publishable key (pk_…), never the secret key")
        success_rate = _float(env, "SEATMAP_GATEWAY_SUCCESS_RATE", 1.0)
        if success_rate > 1.0:
            raise SettingsError(f"SEATMAP_GATEWAY_SUCCESS_RATE must be between 0 and 1, got {success_rate}")
        return cls(
            redis_url=env.get("SEATMAP_REDIS_URL") or None,
            database_url=env.get("SEATMAP_DATABASE_URL") or None,
            data_dir=Path(env.get("SEATMAP_DATA_DIR") or ".seatmap"),
            admin_token=env.get("SEATMAP_ADMIN_TOKEN") or None,
            secret=env.get("SEATMAP_SECRET") or None,
            hold_seconds=_int(env, "SEATMAP_HOLD_SECONDS", 300),
            checkout_seconds=_int(env, "SEATMAP_CHECKOUT_SECONDS", 900),
            max_seats_per_buyer=_int(env, "SEATMAP_MAX_SEATS_PER_BUYER", 8),
            stripe_secret_key=stripe_key,
            stripe_api_base=api_base,
            stripe_webhook_secret=env.get("STRIPE_WEBHOOK_SECRET") or None,
            public_url=env.get("SEATMAP_PUBLIC_URL") or None,
            stripe_publishable_key=publishable_key,
            stream_maxlen=_int(env, "SEATMAP_STREAM_MAXLEN", 10_000, minimum=100),
            client_buffer_bytes=_int(env, "SEATMAP_CLIENT_BUFFER_BYTES", 1 << 20, minimum=4096),
            socket_send_buffer=_int(env, "SEATMAP_SOCKET_SEND_BUFFER", 256 * 1024, minimum=0),
            max_frame_bytes=_int(env, "SEATMAP_MAX_FRAME_BYTES", 64 * 1024, minimum=1024),
            sweep_interval=_float(env, "SEATMAP_SWEEP_INTERVAL", 0.25, minimum=0.01),
            redis_watch_interval=_float(env, "SEATMAP_REDIS_WATCH_INTERVAL", 1.0, minimum=0.05),
            allowed_origins=_list(env, "SEATMAP_ALLOWED_ORIGINS"),
            log_level=(env.get("SEATMAP_LOG_LEVEL") or "info").lower(),
            log_format=log_format,
            gateway_success_rate=success_rate,
            gateway_webhook_delay=_float(env, "SEATMAP_GATEWAY_WEBHOOK_DELAY", 0.0),
            traffic_log=Path(env["SEATMAP_TRAFFIC_LOG"]) if env.get("SEATMAP_TRAFFIC_LOG") else None,
            rate_holds_per_buyer=_rate(env, "SEATMAP_RATE_HOLDS_PER_BUYER", cls.rate_holds_per_buyer),
            rate_holds_per_ip=_rate(env, "SEATMAP_RATE_HOLDS_PER_IP", cls.rate_holds_per_ip),
            rate_sessions_per_ip=_rate(env, "SEATMAP_RATE_SESSIONS_PER_IP", cls.rate_sessions_per_ip),
            rate_websockets_per_ip=_rate(env, "SEATMAP_RATE_WEBSOCKETS_PER_IP", cls.rate_websockets_per_ip),
            trusted_proxies=_networks(env, "SEATMAP_TRUSTED_PROXIES"),
            max_connections=_int(env, "SEATMAP_MAX_CONNECTIONS", 20_000, minimum=0),
            max_connections_per_ip=_int(env, "SEATMAP_MAX_CONNECTIONS_PER_IP", 1_000, minimum=0),
            idle_timeout=_float(env, "SEATMAP_IDLE_TIMEOUT", 40.0),
        )

    @property
    def uses_gateway(self) -> bool:
        """True when no Stripe key is set: the bundled test gateway stands in for Stripe."""
        return self.stripe_secret_key is None

    def with_secrets(self) -> Settings:
        """Fill in the secrets that default to "generated": kept in the data dir so restarts agree."""
        secret = self.secret or _kept_secret(self.data_dir / "secret", 32)
        webhook = self.stripe_webhook_secret or "whsec_" + _kept_secret(self.data_dir / "webhook_secret", 24)
        admin = self.admin_token or _kept_secret(self.data_dir / "admin_token", 18)
        return replace(self, secret=secret, stripe_webhook_secret=webhook, admin_token=admin)

    def as_env(self) -> dict[str, str]:
        """The environment that reproduces these settings in a child process (workers, gateway)."""
        pairs = {
            "SEATMAP_REDIS_URL": self.redis_url,
            "SEATMAP_DATABASE_URL": self.database_url,
            "SEATMAP_DATA_DIR": str(self.data_dir),
            "SEATMAP_ADMIN_TOKEN": self.admin_token,
            "SEATMAP_SECRET": self.secret,
            "SEATMAP_HOLD_SECONDS": str(self.hold_seconds),
            "SEATMAP_CHECKOUT_SECONDS": str(self.checkout_seconds),
            "SEATMAP_MAX_SEATS_PER_BUYER": str(self.max_seats_per_buyer),
            "STRIPE_SECRET_KEY": self.stripe_secret_key,
            "STRIPE_API_BASE": self.stripe_api_base,
            "STRIPE_WEBHOOK_SECRET": self.stripe_webhook_secret,
            "SEATMAP_PUBLIC_URL": self.public_url,
            "STRIPE_PUBLISHABLE_KEY": self.stripe_publishable_key,
            "SEATMAP_STREAM_MAXLEN": str(self.stream_maxlen),
            "SEATMAP_CLIENT_BUFFER_BYTES": str(self.client_buffer_bytes),
            "SEATMAP_SOCKET_SEND_BUFFER": str(self.socket_send_buffer),
            "SEATMAP_MAX_FRAME_BYTES": str(self.max_frame_bytes),
            "SEATMAP_SWEEP_INTERVAL": str(self.sweep_interval),
            "SEATMAP_REDIS_WATCH_INTERVAL": str(self.redis_watch_interval),
            "SEATMAP_ALLOWED_ORIGINS": ",".join(self.allowed_origins) or None,
            "SEATMAP_LOG_LEVEL": self.log_level,
            "SEATMAP_LOG_FORMAT": self.log_format,
            "SEATMAP_GATEWAY_SUCCESS_RATE": str(self.gateway_success_rate),
            "SEATMAP_GATEWAY_WEBHOOK_DELAY": str(self.gateway_webhook_delay),
            "SEATMAP_TRAFFIC_LOG": str(self.traffic_log) if self.traffic_log else None,
            "SEATMAP_RATE_HOLDS_PER_BUYER": str(self.rate_holds_per_buyer or "off"),
            "SEATMAP_RATE_HOLDS_PER_IP": str(self.rate_holds_per_ip or "off"),
            "SEATMAP_RATE_SESSIONS_PER_IP": str(self.rate_sessions_per_ip or "off"),
            "SEATMAP_RATE_WEBSOCKETS_PER_IP": str(self.rate_websockets_per_ip or "off"),
            "SEATMAP_TRUSTED_PROXIES": ",".join(self.trusted_proxies) or None,
            "SEATMAP_MAX_CONNECTIONS": str(self.max_connections),
            "SEATMAP_MAX_CONNECTIONS_PER_IP": str(self.max_connections_per_ip),
            "SEATMAP_IDLE_TIMEOUT": str(self.idle_timeout),
        }
        return {name: value for name, value in pairs.items() if value is not None}


def _kept_secret(path: Path, nbytes: int) -> str:
    """Read a generated secret from `path`, creating it (mode 0600) the first time."""
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(nbytes)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first: theirs wins
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(value + "\n")
    return value
