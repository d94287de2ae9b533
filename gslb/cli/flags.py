"""Flags that several commands share: `--zones`, `--geoip` and `--state`, numeric flags
read from `GSLB_*`, and the store flags of `gslb serve` and `gslb explain` (`--redis` and
how to judge it). Every default comes from `gslb.settings`, where it is written once."""

from __future__ import annotations

import argparse
from pathlib import Path

from gslb.settings import Settings, StoreSettings, env_default

STALE_POLICIES = ("keep", "up")
LOG_LEVELS = ["DEBUG", "INFO", "WARNING", "ERROR"]


def zones_flag(parser: argparse.ArgumentParser) -> None:
    default = Settings.zones_dir
    parser.add_argument(
        "--zones", type=Path, default=Path(env_default("ZONES", str(default)) or default),
        metavar="DIR", help=f"folder of *.zone files (default: {default}; env GSLB_ZONES)",
    )


def steering_flags(parser: argparse.ArgumentParser, serving: bool = True) -> None:
    """`--geoip` and `--state`; `serving`: for `gslb serve` (which follows them), else for
    a command that reads them once."""
    watched = ("; checked every --geoip-check-interval seconds and on SIGHUP, and re-read "
               "when a file's size, time or inode changed (a file that fails to open keeps "
               "the previous one serving)" if serving else "; read once")
    parser.add_argument(
        "--geoip", action="append", type=Path, metavar="PATH",
        help=f"MaxMind GeoIP2/GeoLite2 City, Country or ASN database, repeatable{watched}; "
        "env GSLB_GEOIP, comma-separated",
    )
    if serving:
        number_flag(parser, "--geoip-check-interval", float, Settings.geoip_check_interval,
                    "SECONDS", "how often the --geoip files (and the --cookie-secret file) "
                    "are looked at for a new version, one stat() each; a new database is "
                    "then walked and the steering rebuilt over it. SIGHUP looks at once. "
                    "At least 0.1")
    parser.add_argument(
        "--state", type=Path, metavar="FILE", default=env_default("STATE"),
        help="health and latency state (YAML: 'health: {check: up|down}', "
        "'rtt: {client-net-or-region: {datacenter: ms}}'); env GSLB_STATE",
    )


def geoip_paths(args: argparse.Namespace) -> tuple[Path, ...]:
    if args.geoip:
        return tuple(args.geoip)
    env = env_default("GEOIP")
    return tuple(Path(p) for p in env.split(",") if p) if env else ()


def number_flag(parser: argparse.ArgumentParser, flag: str, kind: type, default: float,
                metavar: str, text: str) -> None:
    """A numeric flag whose default comes from GSLB_<FLAG> when set."""
    env = flag.lstrip("-").upper().replace("-", "_")
    parser.add_argument(flag, type=kind, metavar=metavar,
                        default=kind(env_default(env) or default),
                        help=f"{text} (default: {default:g}; env GSLB_{env})")


def add_store_flags(parser: argparse.ArgumentParser, serving: bool = True) -> None:
    """`--redis` and the rules for judging what is in it; `serving`: for `gslb serve`."""
    defaults = StoreSettings()
    where = ("changes apply within a second (a Redis without one: the zones folder, until "
             "the import lands)" if serving else "read once (a Redis without one: the "
             "zones folder)")
    parser.add_argument(
        "--redis", metavar="URL", default=env_default("REDIS"),
        help="shared state in Redis: redis://HOST:PORT/DB, rediss:// (TLS) or "
        "redis+sentinel://HOST:PORT[,HOST:PORT]/SERVICE[/DB]; health then comes from the "
        "`gslb checker` agents' verdicts (default: none, the embedded checker; env GSLB_REDIS). "
        "It is also where the configuration comes from when `gslb api --redis` keeps it "
        f"there: {where}")
    parser.add_argument(
        "--verdict-expiry", type=float, metavar="SECONDS", default=defaults.verdict_expiry,
        help=f"an agent's verdict counts for this long after its probe (default: "
        f"{defaults.verdict_expiry:g})")
    parser.add_argument(
        "--quorum", type=int, metavar="N", default=defaults.quorum,
        help="fresh 'down' verdicts that take a member down; 0 = a majority of the fresh "
        f"verdicts (default: {defaults.quorum})")
    parser.add_argument(
        "--resync", type=float, metavar="SECONDS", default=defaults.resync,
        help=f"full re-read of the shared state, besides pub/sub (default: {defaults.resync:g})")
    parser.add_argument(
        "--max-state-age", type=float, metavar="SECONDS", default=defaults.max_age,
        help="with Redis unreachable this long, --stale-state applies; 0 = never (default: "
        f"{defaults.max_age:g})")
    parser.add_argument(
        "--stale-state", choices=STALE_POLICIES, default=defaults.stale,
        help="past --max-state-age: keep the last known state, or count every member up "
        f"(default: {defaults.stale})")
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
