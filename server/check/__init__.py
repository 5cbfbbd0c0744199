"""`seatmap check`: diagnose a deployment before the drop, one line per check.

    ok    redis version: Redis 7.2.4 at redis://redis:6379/0
    warn  redis persistence: Redis keeps nothing on disk: … Fix: set appendonly yes …
    FAIL  postgres: cannot reach Postgres at postgresql://…: … Fix: start Postgres, or …

Exit status 0 when nothing FAILs (warnings included), 1 otherwise; `--json`
prints `{"ok", "failures", "warnings", "checks": [{"name", "status",
"message", "fix"}]}` instead. The judgments are in `findings.py` (pure), the
looking in `probes.py`; this module picks the checks that apply, runs them
concurrently and prints. It never starts a server: with no URLs it checks
that the embedded ones could start.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TextIO

from server.settings import DEFAULT_GATEWAY_BASE, Settings, SettingsError

from .findings import (
    Finding,
    Status,
    fail,
    judge_limits,
    judge_origins,
    judge_proxies,
    judge_public_url,
    judge_secrets,
    judge_stripe,
    ok,
)
from .probes import (
    probe_data_dir,
    probe_embedded_postgres,
    probe_embedded_redis,
    probe_gateway,
    probe_postgres,
    probe_redis,
    probe_system,
)

__all__ = ["Finding", "Status", "gather", "main", "render_json", "render_text", "run_checks"]


async def gather(
    settings: Settings,
    *,
    workers: int = 1,
    redis_binary: Path | None = None,
    postgres_bin_dir: Path | None = None,
) -> list[Finding]:
    """Every check that applies to `settings`, in a stable order."""
    shared = settings.redis_url is not None or settings.database_url is not None
    findings: list[Finding] = [ok("settings", "every variable parses")]
    findings += judge_secrets(settings, shared)
    findings.append(probe_data_dir(settings.data_dir))

    async def redis() -> list[Finding]:
        if settings.redis_url:
            return await probe_redis(settings.redis_url)
        return [probe_embedded_redis(settings, redis_binary)]

    async def postgres() -> list[Finding]:
        if settings.database_url:
            return await probe_postgres(settings.database_url, workers)
        return [probe_embedded_postgres(settings, postgres_bin_dir)]

    async def payments() -> list[Finding]:
        if settings.stripe_secret_key:
            return judge_stripe(settings)
        return [await probe_gateway(settings.stripe_api_base or DEFAULT_GATEWAY_BASE)]

    for group in await asyncio.gather(redis(), postgres(), payments()):
        findings += group
    findings.append(judge_limits(settings))
    findings.append(judge_origins(settings.allowed_origins))
    findings.append(judge_proxies(settings.trusted_proxies))
    if (public := judge_public_url(settings.public_url)) is not None:
        findings.append(public)
    findings += probe_system(settings)
    return findings


def render_text(findings: list[Finding]) -> str:
    width = max(len(finding.name) for finding in findings)
    lines = []
    for finding in findings:
        line = f"{finding.status.value:<4}  {finding.name + ':':<{width + 1}} {finding.message.rstrip('.')}"
        if finding.fix:
            line += f". Fix: {finding.fix}"
        lines.append(line)
    failures, warnings = _count(findings, Status.FAIL), _count(findings, Status.WARN)
    verdict = "not ready" if failures else "ready"
    lines.append(f"\n{verdict}: {failures} failure(s), {warnings} warning(s), {len(findings)} checks")
    return "\n".join(lines)


def render_json(findings: list[Finding]) -> str:
    failures = _count(findings, Status.FAIL)
    return json.dumps(
        {
            "ok": failures == 0,
            "failures": failures,
            "warnings": _count(findings, Status.WARN),
            "checks": [finding.as_dict() for finding in findings],
        },
        indent=2,
    )


def _count(findings: list[Finding], status: Status) -> int:
    return sum(1 for finding in findings if finding.status is status)


def run_checks(
    settings: Settings | None = None,
    *,
    as_json: bool = False,
    workers: int = 1,
    env: Mapping[str, str] | None = None,
    out: TextIO | None = None,
) -> int:
    """Run every check, print the report, return the exit status (0: no FAIL).

    With `settings` None they are read from `env` (default os.environ) here, so a
    variable that does not parse is reported as a failed check like the rest.
    """
    out = out or sys.stdout
    if settings is None:
        try:
            settings = Settings.from_env(env)
        except SettingsError as error:
            findings = [fail("settings", str(error), "fix that variable and run seatmap check again.")]
            print(render_json(findings) if as_json else render_text(findings), file=out)
            return 1
    findings = asyncio.run(gather(settings, workers=workers))
    print(render_json(findings) if as_json else render_text(findings), file=out)
    return 1 if any(finding.status is Status.FAIL for finding in findings) else 0


def main(argv: list[str] | None = None) -> int:
    """`seatmap check [--json] [--workers N]` (also `python -m server.check`)."""
    parser = argparse.ArgumentParser(prog="seatmap check", description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument(
        "--workers", type=int, default=1, help="workers per node you will run (sizes the Postgres check)"
    )
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    return run_checks(None, as_json=args.json, workers=max(1, args.workers))
