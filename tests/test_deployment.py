"""The deployment files and the command line, checked without Docker: the
compose file parses, has the services the app needs, and gives the app only
settings it really reads."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import yaml

from server.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def settings_variables() -> set[str]:
    source = (ROOT / "server" / "settings.py").read_text()
    return set(re.findall(r'"((?:SEATMAP|STRIPE)_[A-Z_]+)"', source))


def test_compose_has_redis_postgres_and_the_app():
    services = compose()["services"]
    assert set(services) == {"redis", "postgres", "app"}
    assert "--appendonly" in services["redis"]["command"]  # persistence on
    assert any("/var/lib/postgresql/data" in volume for volume in services["postgres"]["volumes"])
    app = services["app"]
    assert app["ports"] == ["8000:8000"]
    assert "--workers" in app["command"] and "seatmap serve" in app["command"]
    assert set(app["depends_on"]) == {"redis", "postgres"}


def test_compose_app_environment_is_what_the_app_reads():
    environment = compose()["services"]["app"]["environment"]
    assert set(environment) <= settings_variables(), set(environment) - settings_variables()
    assert environment["SEATMAP_REDIS_URL"].startswith("redis://redis:6379")
    assert "@postgres:5432/" in environment["SEATMAP_DATABASE_URL"]


def test_every_setting_round_trips_through_the_environment(tmp_path):
    settings = Settings.from_env(
        {"SEATMAP_DATA_DIR": str(tmp_path), "SEATMAP_HOLD_SECONDS": "42"}
    ).with_secrets()
    again = Settings.from_env(settings.as_env())
    assert again == settings
    assert set(settings.as_env()) <= settings_variables()


def test_bad_settings_are_named():
    result = subprocess.run(
        [sys.executable, "-m", "server.cli", "migrate", "--status"],
        env={"SEATMAP_HOLD_SECONDS": "soon", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "SEATMAP_HOLD_SECONDS" in result.stderr


def test_cli_help_lists_the_commands():
    result = subprocess.run(
        [sys.executable, "-m", "server.cli", "--help"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0
    for command in ("serve", "demo", "migrate", "gateway", "check"):
        assert command in result.stdout
