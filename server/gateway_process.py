"""The bundled payment gateway as a child of `seatmap serve`: started before
the workers (which reach it through the stripe SDK at `STRIPE_API_BASE`),
waited for until it answers, stopped after them. Its state lives in the data
dir, so undelivered webhooks survive a restart."""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import time
from collections.abc import Iterator

import httpx

from .gateway.config import GatewayConfig, address_of
from .gateway.runner import command
from .settings import Settings

log = logging.getLogger("seatmap.gateway")
START_TIMEOUT = 20.0


class GatewayStartError(RuntimeError):
    """The gateway did not come up; the message says why."""


@contextlib.contextmanager
def gateway_process(settings: Settings, server_url: str) -> Iterator[None]:
    assert settings.stripe_api_base and settings.stripe_webhook_secret
    host, port = address_of(settings.stripe_api_base)
    config = GatewayConfig.from_settings(settings, webhook_url=f"{server_url}/api/webhooks/stripe")
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "STRIPE_WEBHOOK_SECRET": settings.stripe_webhook_secret}
    child = subprocess.Popen(command(config, host=host, port=port, log_level=settings.log_level), env=env)
    try:
        _wait_until_healthy(child, settings.stripe_api_base)
        log.info("payment test gateway at %s (pid %d)", settings.stripe_api_base, child.pid)
        yield
    finally:
        child.terminate()
        try:
            child.wait(10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def _wait_until_healthy(child: subprocess.Popen[bytes], base: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if child.poll() is not None:
            raise GatewayStartError(
                f"the payment test gateway exited with {child.returncode} at start "
                f"(is {base} already in use? set STRIPE_API_BASE to another port)"
            )
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{base}/_gateway/health", timeout=1.0).status_code == 200:
                return
        time.sleep(0.1)
    child.kill()
    raise GatewayStartError(f"the payment test gateway did not answer at {base} within {START_TIMEOUT:.0f}s")
