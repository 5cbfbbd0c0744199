"""GatewayConfig: every knob of the bundled Stripe-compatible test gateway.

This module owns the gateway's configuration and its validation, nothing
else: it never reads the environment (``server.settings`` does that, and
``GatewayConfig.from_settings`` translates), opens files or binds sockets.
Where the gateway listens is the runner's business, not the app's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from server.settings import Settings

# The API version the gateway stamps on events. Stripe renders events at the
# account's version; the gateway has no account, so it claims the version the
# stripe SDK it ships beside is pinned to (the shapes it answers follow that
# version: `capture_method` defaults to `automatic_async`, automatic payment
# methods are on by default).
DEFAULT_API_VERSION = "2026-10-28.endive"

DB_FILENAME = "gateway.sqlite3"


class GatewayConfigError(ValueError):
    """A gateway setting that cannot be used; the message names it."""


@dataclass(frozen=True)
class GatewayConfig:
    db_path: Path
    # Where signed events are POSTed. None: events are recorded (see
    # /_gateway/events) but nobody is told.
    webhook_url: str | None = None
    webhook_secret: str | None = None
    # Load-test knobs: the chance a good test card is approved, and how long
    # an event waits before its first delivery attempt.
    success_rate: float = 1.0
    webhook_delay: float = 0.0
    # Failed deliveries are retried after retry_base * 2**(failures - 1)
    # seconds, never more than retry_cap; forever, until a 2xx.
    retry_base: float = 0.5
    retry_cap: float = 60.0
    delivery_timeout: float = 10.0
    max_in_flight: int = 8
    api_version: str = DEFAULT_API_VERSION
    merchant_name: str = "Seatmap"

    def __post_init__(self) -> None:
        if not 0.0 <= self.success_rate <= 1.0:
            raise GatewayConfigError(f"success_rate must be between 0 and 1, got {self.success_rate}")
        for name in ("webhook_delay", "retry_base", "retry_cap", "delivery_timeout"):
            value = getattr(self, name)
            if value < 0:
                raise GatewayConfigError(f"{name} must not be negative, got {value}")
        if self.retry_base == 0:
            raise GatewayConfigError("retry_base must be more than 0")
        if self.max_in_flight < 1:
            raise GatewayConfigError(f"max_in_flight must be at least 1, got {self.max_in_flight}")
        if self.webhook_url is not None:
            scheme = urlsplit(self.webhook_url).scheme
            if scheme not in ("http", "https"):
                raise GatewayConfigError(f"webhook_url must be an http(s) URL, got {self.webhook_url!r}")
            if not self.webhook_secret:
                raise GatewayConfigError("webhook_secret is required when webhook_url is set")

    @classmethod
    def from_settings(cls, settings: Settings, *, webhook_url: str | None, **overrides: object) -> GatewayConfig:
        """The gateway Seatmap's own settings call for: database in the data dir, shared secret, knobs.

        `settings` should have its secrets filled in (`Settings.with_secrets()`)
        so the gateway signs with the secret the server verifies with.
        """
        fields: dict[str, object] = {
            "db_path": settings.data_dir / DB_FILENAME,
            "webhook_url": webhook_url,
            "webhook_secret": settings.stripe_webhook_secret,
            "success_rate": settings.gateway_success_rate,
            "webhook_delay": settings.gateway_webhook_delay,
        }
        fields.update(overrides)
        return cls(**fields)  # type: ignore[arg-type]


def address_of(api_base: str) -> tuple[str, int]:
    """The (host, port) a gateway must listen on to be reached at `api_base`, e.g. STRIPE_API_BASE."""
    parts = urlsplit(api_base)
    if parts.scheme != "http" or not parts.hostname:
        raise GatewayConfigError(f"the test gateway serves plain http, got {api_base!r}")
    return parts.hostname, parts.port or 80
