"""`record FILE`: a drop whose buyers' traffic is recorded to FILE (the same
as `drop --record FILE`), for `replay`. The format is described in
`loadtest.recording` and docs/loadtest.md."""

from __future__ import annotations

import argparse
from typing import Any

from . import drop
from .report import Progress
from .stack import Stack


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="where to write the recording (JSON lines)")
    drop.add_drop_arguments(parser)


async def run(args: argparse.Namespace, stack: Stack, progress: Progress) -> dict[str, Any]:
    args.record = args.file
    return await drop.run(args, stack, progress)


render = drop.render
