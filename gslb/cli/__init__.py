"""The `gslb` command, one module per command: serve, api, check, explain, checker,
override, rtt, status, token; `main` builds the parser and dispatches, `flags` holds the
flags several commands share. Each command imports what it runs (the server, Redis, the
API) only when it runs, so `gslb --help` stays fast."""

from gslb.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
