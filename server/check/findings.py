"""What `seatmap check` concludes from what it found: pure judgments, no I/O.

Each function takes facts (a version string, an INFO field, a limit) and
returns a Finding: ok, warn or FAIL, with one sentence saying what is so and,
unless ok, one sentence saying what to do. The probes (`probes.py`) gather the
facts; tests call these directly.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import urlsplit

from server.guards import normalize_origin
from server.migrate import MigrationState
from server.migrate import Status as MigrationStatus
from server.settings import Settings

MIN_REDIS = (6, 2)
MIN_POSTGRES = 14
POOL_SIZE = 10  # server.db.create_pool's max_size, per worker
FD_HEADROOM = 256  # descriptors a worker needs besides websockets: pools, listeners, files
MIN_SOMAXCONN = 1024
SHORT_SECRET = 16


class Status(StrEnum):
    OK = "ok"
    WARN = "warn"
    FAIL = "FAIL"


@dataclass(frozen=True)
class Finding:
    name: str
    status: Status
    message: str
    fix: str = ""

    def as_dict(self) -> dict[str, str]:
        return {"name": self.name, "status": self.status.value, "message": self.message, "fix": self.fix}


def ok(name: str, message: str) -> Finding:
    return Finding(name, Status.OK, message)


def warn(name: str, message: str, fix: str) -> Finding:
    return Finding(name, Status.WARN, message, fix)


def fail(name: str, message: str, fix: str) -> Finding:
    return Finding(name, Status.FAIL, message, fix)


def version_tuple(text: str) -> tuple[int, ...]:
    """`6.2.14` → (6, 2, 14); whatever follows the leading digits and dots is ignored."""
    match = re.match(r"\d+(?:\.\d+)*", text.strip())
    return tuple(int(part) for part in match.group().split(".")) if match else ()


def redact(url: str) -> str:
    """`url` without its password, fit to print."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return "<unparseable URL>"
    if not password:
        return url
    return parts._replace(netloc=parts.netloc.replace(f":{password}@", ":***@", 1)).geturl()


# --- Redis ---------------------------------------------------------------------------------------------


def judge_redis_version(version: str, where: str) -> Finding:
    if version_tuple(version) >= MIN_REDIS:
        return ok("redis version", f"Redis {version} {where}")
    return fail(
        "redis version",
        f"Redis {version} {where} is older than {'.'.join(map(str, MIN_REDIS))}",
        "upgrade to Redis 6.2 or newer (the scripts need its commands and effects replication).",
    )


def judge_redis_role(role: str, cluster_enabled: bool) -> Finding:
    if cluster_enabled:
        return fail(
            "redis role",
            "this Redis runs in cluster mode, and the server's client speaks to a single Redis",
            "point SEATMAP_REDIS_URL at a standalone primary (keys are cluster-ready; see docs/deploy.md).",
        )
    if role != "master":
        return fail(
            "redis role",
            f"this Redis is a read-only {role}",
            "point SEATMAP_REDIS_URL at the primary.",
        )
    return ok("redis role", "a writable primary")


def judge_redis_persistence(aof_enabled: bool, save: str | None, appendfsync: str | None) -> Finding:
    if aof_enabled:
        fsync = f", appendfsync {appendfsync}" if appendfsync else ""
        return ok("redis persistence", f"append-only file on{fsync}")
    if save:
        return ok(
            "redis persistence",
            f"RDB snapshots only (save {save}): a crash loses the holds made since the last one "
            "(bookings are rebuilt from Postgres); appendonly yes loses at most a second",
        )
    if save is None:
        return warn(
            "redis persistence",
            "no append-only file, and the snapshot schedule cannot be read (CONFIG is not allowed)",
            "make sure the provider persists this Redis (appendonly yes), or holds vanish on restart.",
        )
    return warn(
        "redis persistence",
        "Redis keeps nothing on disk: a restart loses every hold, and every booked seat "
        "until it is rebuilt from Postgres under a new epoch",
        "set appendonly yes (appendfsync everysec) in the Redis configuration.",
    )


def judge_redis_eviction(policy: str, maxmemory: int, used: int) -> Finding:
    if policy != "noeviction" and not policy.startswith("volatile-"):
        return warn(
            "redis eviction",
            f"maxmemory-policy {policy} may evict seat state (seat keys have no expiry) when memory runs out",
            "set maxmemory-policy noeviction (or a volatile-* policy) in the Redis configuration.",
        )
    if maxmemory and used > 0.8 * maxmemory:
        return warn(
            "redis eviction",
            f"{policy}, and {used / maxmemory:.0%} of maxmemory ({maxmemory // 2**20} MB) is in use: "
            "when it is full, holds fail with 503",
            "raise maxmemory or free memory before the drop.",
        )
    limit = f"maxmemory {maxmemory // 2**20} MB" if maxmemory else "no maxmemory"
    return ok("redis eviction", f"{policy}, {limit}: seat state is never evicted")


# --- Postgres ------------------------------------------------------------------------------------------


def judge_postgres_version(major: int, text: str) -> Finding:
    if major >= MIN_POSTGRES:
        return ok("postgres version", f"PostgreSQL {text}")
    return fail(
        "postgres version",
        f"PostgreSQL {text} is older than {MIN_POSTGRES}",
        f"upgrade to PostgreSQL {MIN_POSTGRES} or newer.",
    )


def judge_migrations(states: list[MigrationState]) -> Finding:
    broken = [s for s in states if s.status in (MigrationStatus.CHANGED, MigrationStatus.MISSING)]
    if broken:
        names = ", ".join(f"{s.filename} ({s.status.value})" for s in broken)
        return fail(
            "migrations",
            f"the database's history disagrees with migrations/: {names}",
            "run `seatmap migrate --status` and restore the files this database was migrated with.",
        )
    pending = [s for s in states if s.status is MigrationStatus.PENDING]
    applied = len(states) - len(pending)
    if not pending:
        return ok("migrations", f"all {applied} applied")
    if not applied:
        return ok("migrations", f"an empty database: `seatmap serve` applies all {len(pending)} at start")
    return warn(
        "migrations",
        f"{len(pending)} pending ({', '.join(s.filename for s in pending)})",
        "run `seatmap migrate` before starting the new version on every node (serve also applies them).",
    )


def judge_postgres_connections(max_connections: int, reserved: int, workers: int) -> Finding:
    usable = max_connections - reserved
    wanted = workers * POOL_SIZE
    if wanted > usable:
        return warn(
            "postgres connections",
            f"{workers} worker(s) may open {wanted} connections; the server allows {usable}",
            "raise max_connections, or put PgBouncer in front (transaction pooling is not supported).",
        )
    return ok("postgres connections", f"{wanted} for {workers} worker(s) of {usable} allowed")


# --- payments ------------------------------------------------------------------------------------------


def judge_stripe(settings: Settings) -> list[Finding]:
    """With a Stripe key: the key's shape and mode, and the webhook secret beside it."""
    key = settings.stripe_secret_key or ""
    where = f" through {settings.stripe_api_base}" if settings.stripe_api_base else ""
    if key.startswith(("pk_test_", "pk_live_")):
        key_finding = fail(
            "payments",
            "STRIPE_SECRET_KEY holds a publishable key (pk_…)",
            "use the secret key (sk_…) from the Stripe dashboard's API keys page.",
        )
    elif key.startswith(("sk_test_", "rk_test_")):
        key_finding = ok("payments", f"Stripe in test mode{where}: no real money moves")
    elif key.startswith(("sk_live_", "rk_live_")):
        key_finding = ok("payments", f"Stripe in LIVE mode{where}: buyers are really charged")
    else:
        key_finding = fail(
            "payments",
            "STRIPE_SECRET_KEY does not look like a Stripe secret key (sk_test_… or sk_live_…)",
            "copy the secret key from the Stripe dashboard, or unset it to use the bundled test gateway.",
        )
    secret = settings.stripe_webhook_secret
    if not secret:
        hook = fail(
            "webhooks",
            "STRIPE_WEBHOOK_SECRET is not set, so no payment can ever be confirmed",
            "add the endpoint <public url>/api/webhooks/stripe in Stripe and set its whsec_… signing secret.",
        )
    elif not secret.startswith("whsec_"):
        hook = fail(
            "webhooks",
            "STRIPE_WEBHOOK_SECRET does not start with whsec_",
            "use the endpoint's signing secret (whsec_…), not an API key.",
        )
    else:
        hook = ok("webhooks", "signing secret set (whsec_…)")
    return [key_finding, hook]


# --- this machine --------------------------------------------------------------------------------------


def judge_fd_limit(soft: int, hard: int, max_connections: int) -> Finding:
    infinite = soft < 0  # RLIM_INFINITY
    if max_connections == 0:
        if infinite:
            return ok("fd limit", "no descriptor limit and no connection cap")
        return warn(
            "fd limit",
            f"SEATMAP_MAX_CONNECTIONS is 0 (no cap): past {soft - FD_HEADROOM} websockets a worker "
            "runs out of descriptors and fails to accept anyone, HTTP included",
            f"set SEATMAP_MAX_CONNECTIONS below {max(1, soft - FD_HEADROOM)}, or raise `ulimit -n`.",
        )
    needed = max_connections + FD_HEADROOM
    if infinite or soft >= needed:
        shown = "unlimited" if infinite else str(soft)
        return ok("fd limit", f"ulimit -n {shown} covers {max_connections} connections per worker")
    can = "" if hard < 0 or hard >= needed else f" (the hard limit is {hard}: raise it too)"
    return warn(
        "fd limit",
        f"ulimit -n is {soft}, below the {needed} that SEATMAP_MAX_CONNECTIONS={max_connections} needs{can}",
        f"raise it to {needed} or more (ulimit -n, systemd LimitNOFILE=, docker --ulimit nofile=), "
        "or lower SEATMAP_MAX_CONNECTIONS.",
    )


def judge_somaxconn(value: int) -> Finding:
    if value < MIN_SOMAXCONN:
        return warn(
            "somaxconn",
            f"net.core.somaxconn is {value}: a wave of connections at the drop's start overflows the "
            "accept queue and clients retry after a second or more",
            "sysctl -w net.core.somaxconn=4096 (and persist it in /etc/sysctl.d).",
        )
    return ok("somaxconn", f"net.core.somaxconn {value}")


# --- settings ------------------------------------------------------------------------------------------


def judge_secrets(settings: Settings, shared: bool) -> list[Finding]:
    """`shared`: Redis/Postgres are external, so other nodes may serve the same buyers."""
    findings = []
    for name, label, value, kept, consequence in (
        (
            "SEATMAP_SECRET",
            "secret",
            settings.secret,
            settings.data_dir / "secret",
            "a buyer token made on one node is refused by the others",
        ),
        (
            "SEATMAP_ADMIN_TOKEN",
            "admin token",
            settings.admin_token,
            settings.data_dir / "admin_token",
            "the organizer's token works on one node only",
        ),
    ):
        if value and len(value) < SHORT_SECRET:
            findings.append(
                warn(
                    label,
                    f"{name} is set but only {len(value)} characters long",
                    "use 32 or more random characters (python -c 'import secrets; print(secrets.token_urlsafe(32))').",
                )
            )
        elif value:
            findings.append(ok(label, f"{name} set explicitly"))
        elif shared:
            findings.append(
                warn(
                    label,
                    f"{name} is unset, so each node generates its own in {kept}: {consequence}",
                    f"set {name} to the same random value on every node.",
                )
            )
        else:
            findings.append(ok(label, f"generated and kept in {kept}, shared by this node's workers"))
    return findings


def judge_limits(settings: Settings) -> Finding:
    def rate(value: object) -> str:
        return str(value) if value else "off"

    message = (
        f"holds {rate(settings.rate_holds_per_buyer)} per buyer and {rate(settings.rate_holds_per_ip)} "
        f"per address, sessions {rate(settings.rate_sessions_per_ip)} and websockets "
        f"{rate(settings.rate_websockets_per_ip)} per address; per worker at most "
        f"{settings.max_connections or 'unlimited'} sockets, "
        f"{settings.max_connections_per_ip or 'unlimited'} per address; "
        f"idle sockets closed after {settings.idle_timeout:g} s"
    )
    if not settings.idle_timeout:
        return warn(
            "limits",
            message.replace("closed after 0 s", "never closed"),
            "set SEATMAP_IDLE_TIMEOUT (e.g. 40) so vanished clients do not hold sockets for hours.",
        )
    return ok("limits", message)


def judge_origins(allowed: Iterable[str]) -> Finding:
    allowed = tuple(allowed)
    bad = [item for item in allowed if item not in ("*", "null") and normalize_origin(item) is None]
    if bad:
        return warn(
            "origins",
            f"SEATMAP_ALLOWED_ORIGINS has entries that are not origins: {', '.join(bad)}",
            "write each as scheme://host[:port], without a path (e.g. https://tickets.example.com).",
        )
    if "*" in allowed:
        return ok("origins", "pages of any site may open the live seat map")
    if allowed:
        return ok("origins", f"same origin, and {', '.join(allowed)}")
    return ok("origins", "only pages served by this server may open websockets")


def judge_proxies(trusted: Iterable[str]) -> Finding:
    trusted = tuple(trusted)
    if not trusted:
        return ok("proxies", "no trusted proxies: X-Forwarded-For is ignored, the TCP peer is the client")
    everyone = [item for item in trusted if ipaddress.ip_network(item).prefixlen == 0]
    if everyone:
        return warn(
            "proxies",
            f"SEATMAP_TRUSTED_PROXIES trusts every address ({', '.join(everyone)}): "
            "any client can claim any address and dodge per-address limits",
            "list only your load balancers' addresses or subnet.",
        )
    return ok("proxies", f"X-Forwarded-For is believed from {', '.join(trusted)}")


def judge_public_url(url: str | None) -> Finding | None:
    if url is None:
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        return fail(
            "public url",
            f"SEATMAP_PUBLIC_URL {url!r} is not an http(s) URL",
            "set it to the address buyers use, e.g. https://tickets.example.com.",
        )
    local = parts.hostname in ("localhost", "127.0.0.1", "::1")
    if parts.scheme == "http" and not local:
        return warn(
            "public url",
            f"{url} is plain http: tokens and payment pages would cross the internet unencrypted",
            "terminate TLS at the load balancer and set SEATMAP_PUBLIC_URL to the https address.",
        )
    return ok("public url", url)
