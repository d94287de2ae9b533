"""`gslb checker`: a health agent that writes its verdicts to Redis."""

from __future__ import annotations

import argparse
import sys

from gslb.cli.flags import LOG_LEVELS, zones_flag
from gslb.observability.logs import FORMATS
from gslb.settings import Settings, StoreSettings, env_default


def add_parser(commands: argparse._SubParsersAction) -> None:
    checker = commands.add_parser(
        "checker", help="run a health agent that writes its verdicts to Redis",
        description="Probe every check the steered members name (checks: in the steering "
        "files), and write each verdict, with its time, to Redis for the DNS nodes. Run one "
        "per region; nodes take the quorum of the fresh verdicts. SIGHUP re-reads the "
        "zones and steering files; SIGTERM stops.")
    zones_flag(checker)
    checker.add_argument("--redis", required=True, metavar="URL",
                         help="redis://, rediss:// or redis+sentinel:// URL (see gslb serve)")
    checker.add_argument("--agent", required=True, metavar="NAME",
                         help="this agent's name, unique among the agents (e.g. eu-1)")
    checker.add_argument("--region", metavar="CODE",
                         help="the region its probe RTTs are reported for (default: the name)")
    min_samples = StoreSettings.rtt_min_samples
    checker.add_argument("--rtt-min-samples", type=int, default=min_samples, metavar="N",
                         help="samples before a figure is announced as usable (default: "
                         f"{min_samples})")
    checker.add_argument("--log-format", default=env_default("LOG_FORMAT", Settings.log_format),
                         choices=list(FORMATS), type=str.lower,
                         help=f"log lines as text, json or logfmt (default: {Settings.log_format}; "
                         "env GSLB_LOG_FORMAT)")
    checker.add_argument("--log-level", default=Settings.log_level, type=str.upper,
                         choices=LOG_LEVELS, help=f"(default: {Settings.log_level})")
    checker.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from gslb.health.checker import run_checker as main
    from gslb.observability import setup_logging
    from gslb.server.single import run_loop
    from gslb.state.redis import parse_url

    try:
        parse_url(args.redis)
    except ValueError as exc:
        print(f"gslb checker: {exc}", file=sys.stderr)
        return 2
    setup_logging(args.log_level, args.log_format)
    return run_loop(main(args.zones, args.redis, args.agent, args.region or args.agent,
                         max(1, args.rtt_min_samples)))
