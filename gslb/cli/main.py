"""The `gslb` parser and its dispatch: each command adds its own sub-parser and names
its run function (`gslb/cli/<command>.py`)."""

from __future__ import annotations

import argparse
import os
import signal
import sys

from gslb import __version__
from gslb.cli import api, check, checker, explain, override, rtt, serve, status, token


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gslb",
        description="Authoritative DNS server with global server load balancing.",
    )
    parser.add_argument("--version", action="version", version=f"gslb {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in (serve, api, check, explain, checker, override, rtt, status, token):
        command.add_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)  # --help writes too
        status = args.func(args)
        sys.stdout.flush()  # inside the try: a closed pipe shows up here at the latest
    except BrokenPipeError:
        # Whoever read our output went away (`gslb explain ... | head`): stop quietly, as
        # a program killed by SIGPIPE would, and keep the interpreter's own final flush
        # from failing again on the dead pipe.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + signal.SIGPIPE
    return status
