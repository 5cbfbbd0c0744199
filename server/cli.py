"""`seatmap` command line: serve, demo, migrate, gateway, check.

Parses arguments and hands over to `server.runner` (serving), `server.migrate`
(migrations) or the gateway's runner; it holds no logic of its own.
"""

from __future__ import annotations

import argparse
import sys

from .settings import Settings, SettingsError


def _serve_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")
    parser.add_argument("--workers", type=int, default=1, help="server processes sharing the port (default 1)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="seatmap",
        description="Real-time seat-map server. Configuration is by environment variable (see README).",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the server (embedded Redis/Postgres when no URL is set)")
    _serve_arguments(serve)

    demo = commands.add_parser("demo", help="serve with a demo venue already created and print its URL")
    _serve_arguments(demo)
    demo.add_argument("--seats", type=int, default=3000, help="seats in the demo venue (default 3000)")

    migrate = commands.add_parser("migrate", help="apply database migrations")
    group = migrate.add_mutually_exclusive_group()
    group.add_argument("--status", action="store_true", help="list applied and pending migrations")
    group.add_argument("--dry-run", action="store_true", help="show what would be applied; change nothing")

    commands.add_parser("gateway", help="run only the bundled Stripe-compatible test gateway", add_help=False)
    commands.add_parser("check", help="diagnose configuration and dependencies", add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["gateway"]:
        from .gateway.runner import main as gateway_main

        return gateway_main(argv[1:])
    if argv[:1] == ["check"]:  # before Settings.from_env: a bad variable is one of its findings
        from .check import main as check_main

        return check_main(argv[1:])
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.from_env()
    except SettingsError as error:
        print(f"seatmap: {error}", file=sys.stderr)
        return 2

    from . import runner

    if args.command == "serve":
        return runner.serve(settings, host=args.host, port=args.port, workers=args.workers)
    if args.command == "demo":
        return runner.serve(settings, host=args.host, port=args.port, workers=args.workers, demo_seats=args.seats)
    if args.command == "migrate":
        return runner.migrate(settings, status=args.status, dry_run=args.dry_run)
    if args.command == "check":
        return runner.check(settings)
    return 2  # pragma: no cover - argparse refuses unknown commands


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
