"""The commands and flags of live state: `gslb checker`, `gslb override`, `gslb rtt`, and
the store flags of `gslb serve` and `gslb explain` (`--redis` and how to judge it)."""

from __future__ import annotations

import argparse
import getpass
import socket
import sys
import time
from pathlib import Path

from gslb.settings import StoreSettings, env_default

STALE_POLICIES = ("keep", "up")


def add_store_flags(parser: argparse.ArgumentParser) -> None:
    """`--redis` and the rules for judging what is in it."""
    defaults = StoreSettings()
    parser.add_argument(
        "--redis", metavar="URL", default=env_default("REDIS"),
        help="shared state in Redis: redis://HOST:PORT/DB, rediss:// (TLS) or "
        "redis+sentinel://HOST:PORT[,HOST:PORT]/SERVICE[/DB]; health then comes from the "
        "`gslb checker` agents' verdicts (default: none, the embedded checker; env GSLB_REDIS)")
    parser.add_argument(
        "--verdict-expiry", type=float, metavar="SECONDS", default=defaults.verdict_expiry,
        help=f"an agent's verdict counts for this long after its probe (default: "
        f"{defaults.verdict_expiry:g})")
    parser.add_argument(
        "--quorum", type=int, metavar="N", default=defaults.quorum,
        help="fresh 'down' verdicts that take a member down; 0 = a majority of the fresh "
        "verdicts (default: 0)")
    parser.add_argument(
        "--resync", type=float, metavar="SECONDS", default=defaults.resync,
        help=f"full re-read of the shared state, besides pub/sub (default: {defaults.resync:g})")
    parser.add_argument(
        "--max-state-age", type=float, metavar="SECONDS", default=defaults.max_age,
        help="with Redis unreachable this long, --stale-state applies; 0 = never (default: 0)")
    parser.add_argument(
        "--stale-state", choices=STALE_POLICIES, default=defaults.stale,
        help="past --max-state-age: keep the last known state, or count every member up "
        "(default: keep)")
    parser.add_argument(
        "--rtt-min-samples", type=int, metavar="N", default=defaults.rtt_min_samples,
        help=f"samples an RTT figure needs before `latency` uses it (default: "
        f"{defaults.rtt_min_samples})")


def store_settings_from(args: argparse.Namespace) -> StoreSettings:
    """ValueError for an invalid URL or value."""
    if args.redis:
        from gslb.state.redis import parse_url
        parse_url(args.redis)
    for flag, value in (("--verdict-expiry", args.verdict_expiry), ("--resync", args.resync)):
        if not value > 0:
            raise ValueError(f"{flag} {value}: must be more than 0 seconds")
    if args.quorum < 0 or args.max_state_age < 0 or args.rtt_min_samples < 1:
        raise ValueError("--quorum and --max-state-age must be >= 0, --rtt-min-samples >= 1")
    return StoreSettings(redis=args.redis or None, verdict_expiry=args.verdict_expiry,
                         quorum=args.quorum, resync=args.resync, max_age=args.max_state_age,
                         stale=args.stale_state, rtt_min_samples=args.rtt_min_samples)


def add_commands(commands: argparse._SubParsersAction, zones_flag) -> None:
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
    checker.add_argument("--rtt-min-samples", type=int, default=5, metavar="N",
                         help="samples before a figure is announced as usable (default: 5)")
    checker.add_argument("--log-format", default=env_default("LOG_FORMAT", "text"),
                         choices=["text", "json", "logfmt"], type=str.lower,
                         help="log lines as text, json or logfmt (default: text; env "
                         "GSLB_LOG_FORMAT)")
    checker.add_argument("--log-level", default="INFO", type=str.upper,
                         choices=["DEBUG", "INFO", "WARNING", "ERROR"], help="(default: INFO)")
    checker.set_defaults(func=run_checker)

    override = commands.add_parser(
        "override", help="force a member up, down or drained until a time",
        description="Manual overrides on a member value (an address, or a CNAME target), "
        "for every record that has it. Each carries an expiry, after which it no longer "
        "counts: a forgotten override reverts by itself. In Redis (--redis) every node "
        "applies it within a second; with --state FILE the node watching that file does.")
    override.add_argument("action", choices=["set", "clear", "list"])
    override.add_argument("value", nargs="?", metavar="VALUE", help="the member value")
    override.add_argument("mode", nargs="?", choices=["up", "down", "drain"],
                          help="for set: up, down, or drain (answered only when nothing "
                          "else in its pool is up)")
    override.add_argument("--for", dest="duration", metavar="DURATION",
                          help="for set: how long, e.g. 90s, 10m, 2h, 1d (required)")
    override.add_argument("--reason", default="", help="for set: a note shown by list")
    _target_flags(override)
    override.set_defaults(func=run_override)

    rtt = commands.add_parser(
        "rtt", help="push latency samples (client, datacenter, milliseconds) to Redis",
        description="Ingest RTT samples for the latency policy: each is CLIENT (a network "
        "such as 10.0.0.0/8, or a region code such as EU) DATACENTER MS. Samples are "
        "aggregated per (client, datacenter) into an EWMA; nodes use a figure once it has "
        "--rtt-min-samples samples. At most --limit samples per second per client are "
        "accepted; the rest are counted as rate-limited.")
    rtt.add_argument("sample", nargs="*", metavar="CLIENT DATACENTER MS",
                     help="one sample as three words; or use --file")
    rtt.add_argument("--file", type=Path, metavar="FILE",
                     help="samples, one 'CLIENT DATACENTER MS' per line ('-' for stdin)")
    rtt.add_argument("--redis", required=True, metavar="URL", help="where to store them")
    rtt.add_argument("--limit", type=int, default=50, metavar="N",
                     help="samples per second per client accepted (default: 50)")
    rtt.set_defaults(func=run_rtt)


def _target_flags(parser: argparse.ArgumentParser) -> None:
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--redis", metavar="URL", help="the shared store")
    where.add_argument("--state", type=Path, metavar="FILE", help="a state file a server watches")


def run_checker(args: argparse.Namespace) -> int:
    from gslb.health.checker import run_checker as main
    from gslb.observability import setup_logging
    from gslb.server.run import run_loop
    from gslb.state.redis import parse_url

    try:
        parse_url(args.redis)
    except ValueError as exc:
        print(f"gslb checker: {exc}", file=sys.stderr)
        return 2
    setup_logging(args.log_level, args.log_format)
    return run_loop(main(args.zones, args.redis, args.agent, args.region or args.agent,
                         max(1, args.rtt_min_samples)))


def run_override(args: argparse.Namespace) -> int:
    from gslb.state import overrides
    from gslb.state.redis import ERRORS, connect_sync, parse_url
    from gslb.state.store import StateFileError, format_time

    try:
        if args.action != "list" and not args.value:
            raise ValueError(f"override {args.action} needs VALUE")
        client = connect_sync(parse_url(args.redis)) if args.redis else None
        if args.action == "set":
            if args.mode is None or args.duration is None:
                raise ValueError("override set needs VALUE, a mode (up, down, drain) and --for")
            until = time.time() + overrides.parse_duration(args.duration)
            if client is not None:
                by = f"{getpass.getuser()}@{socket.gethostname()}"
                overrides.set_in_redis(client, args.value, args.mode, until, by, args.reason)
            else:
                overrides.set_in_file(args.state, args.value, args.mode, until)
            print(f"{args.value}: {args.mode} until {format_time(until)}")
        elif args.action == "clear":
            removed = (overrides.clear_in_redis(client, args.value) if client is not None
                       else overrides.clear_in_file(args.state, args.value))
            print(f"{args.value}: {'cleared' if removed else 'had no override'}")
        else:
            active = (overrides.list_in_redis(client) if client is not None
                      else overrides.list_in_file(args.state))
            for value, entry in sorted(active.items()):
                note = f" ({entry['reason']})" if entry.get("reason") else ""
                by = f" by {entry['by']}" if entry.get("by") else ""
                print(f"{value} {entry['mode']} until {format_time(float(entry['until']))}{by}{note}")
    except (ValueError, StateFileError, OSError) as exc:
        print(f"gslb override: {exc}", file=sys.stderr)
        return 2
    except ERRORS as exc:
        print(f"gslb override: Redis: {exc}", file=sys.stderr)
        return 1
    return 0


def run_rtt(args: argparse.Namespace) -> int:
    from gslb.state.redis import ERRORS, connect_sync, parse_url
    from gslb.state.telemetry import Sample, ingest

    words = list(args.sample)
    if args.file is not None:
        text = sys.stdin.read() if str(args.file) == "-" else args.file.read_text()
        words += [w for line in text.splitlines() if not line.startswith("#") for w in line.split()]
    if not words or len(words) % 3:
        print("gslb rtt: expected samples as CLIENT DATACENTER MS, three words each", file=sys.stderr)
        return 2
    try:
        samples = [Sample(words[i], words[i + 1], float(words[i + 2])) for i in range(0, len(words), 3)]
        result = ingest(connect_sync(parse_url(args.redis)), samples, limit=max(1, args.limit))
    except ValueError as exc:
        print(f"gslb rtt: {exc}", file=sys.stderr)
        return 2
    except ERRORS as exc:
        print(f"gslb rtt: Redis: {exc}", file=sys.stderr)
        return 1
    for problem in result.invalid or []:
        print(f"gslb rtt: refused: {problem}", file=sys.stderr)
    print(f"{result.accepted} accepted, {result.limited} rate-limited, "
          f"{len(result.invalid or [])} refused")
    return 1 if result.invalid else 0
