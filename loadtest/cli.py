"""`seatmap-loadtest` / `python -m loadtest`: one subcommand per benchmark.

A thin dispatcher: each command lives in its own module, which adds its
arguments, runs, and renders its result. A benchmark module provides
`add_arguments(parser)`, `async run(args, stack, progress) -> dict` and
`render(result) -> str`; this module gives it Redis, Postgres and the server
(`stack.open_stack`), prints its table and writes its JSON. A module with its
own `main(args) -> int` (a command that is not a benchmark) is handed the
arguments instead.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import sys
from types import ModuleType

from .report import Progress, run_info, write_html, write_json
from .stack import add_stack_arguments, open_stack
from .system import raise_fd_limit

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "holds": (
        "loadtest.holds",
        "holds/s and latency: server vs redis-py vs Postgres row locks vs redis-benchmark",
    ),
    "fanout": (
        "loadtest.fanout",
        "server CPU per delivered diff and change-to-last-client latency at 5k/10k clients",
    ),
    "connections": ("loadtest.connections", "server memory per idle websocket at 10k clients"),
    "snapshot": ("loadtest.snapshot", "first-frame bytes and encode time for a 20,000-seat venue"),
    "drop": (
        "loadtest.drop",
        "an on-sale drop: buyers connect, watch, race for seats, pay or walk away; invariants checked",
    ),
    "record": ("loadtest.record", "a drop whose buyers' traffic is recorded to FILE (JSON lines) for replay"),
    "replay": (
        "loadtest.replay",
        "replay a recording or a server traffic log (SEATMAP_TRAFFIC_LOG) at 1x, Nx or max speed",
    ),
    "checkout": (
        "loadtest.checkout",
        "completed purchases/s end to end (hold, checkout, pay, webhook, confirmed) and each step's share",
    ),
    "bench": ("loadtest.bench", "the whole suite at fixed sizes; rewrites docs/benchmarks.md's figures"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="seatmap-loadtest",
        description="Seatmap benchmarks. Each starts what it needs (embedded Redis/Postgres unless "
        "URLs are given, and the server) and compares against a reference measured in the same run.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        sub = commands.add_parser(name, help=help_text, description=help_text)
        module = importlib.import_module(module_name)
        module.add_arguments(sub)
        if not hasattr(module, "main"):
            add_stack_arguments(sub)
            sub.add_argument("--json", metavar="PATH", help="write every figure to this JSON file")
            sub.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    return parser


def run_benchmark(module: ModuleType, args: argparse.Namespace) -> int:
    raise_fd_limit()
    progress = Progress(args.command, args.quiet)
    with open_stack(args, progress) as stack:
        body = asyncio.run(module.run(args, stack, progress))
    result = {"command": args.command, **run_info(), **body}
    print(module.render(result), flush=True)
    write_json(args.json, result)
    if getattr(args, "html", None):
        write_html(args.html, result)
    return int(result.get("exit_code", 0))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    module = importlib.import_module(COMMANDS[args.command][0])
    if hasattr(module, "main"):
        return int(module.main(args))
    return run_benchmark(module, args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
