"""`gslb api`: the REST API alone, the configuration of record in Redis."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gslb.cli.flags import LOG_LEVELS
from gslb.observability.logs import FORMATS
from gslb.settings import Settings, env_default, parse_listen


def add_parser(commands: argparse._SubParsersAction) -> None:
    api = commands.add_parser(
        "api", help="serve the REST API alone, the configuration of record in Redis",
        description="The control-plane REST API without DNS: zones, RRsets and steering live "
        "in Redis, and every `gslb serve --redis URL` node applies the changes. Several "
        "replicas may run against one Redis.",
    )
    api.add_argument("--redis", required=True, metavar="URL", help="redis://HOST:PORT/DB")
    api.add_argument("--listen", default="127.0.0.1:8080", metavar="HOST:PORT",
                     help="where the API listens (default: 127.0.0.1:8080)")
    api.add_argument("--api-host", action="append", metavar="NAME", dest="api_hosts",
                     help="a name the API is reached by (its Host header), besides its "
                     "address and loopback names; others get 400 (repeatable)")
    api.add_argument("--no-console", action="store_false", dest="console",
                     help="do not serve the web console at /ui/ on the API's port (it is on by "
                     "default; it uses the API with the user's token, and nothing else)")
    api.add_argument("--import", dest="import_dir", type=Path, metavar="DIR",
                     help="when Redis holds no configuration yet, load this zones folder "
                     "(zone files and steering YAML) as version 1")
    api.add_argument("--log-level", default=env_default("LOG_LEVEL", Settings.log_level),
                     choices=LOG_LEVELS, type=str.upper)
    api.add_argument("--log-format", default=env_default("LOG_FORMAT", Settings.log_format),
                     choices=list(FORMATS), type=str.lower,
                     help=f"log lines as text, json or logfmt (default: {Settings.log_format}; "
                     "env GSLB_LOG_FORMAT)")
    api.add_argument("--geoip", action="append", type=Path, metavar="PATH",
                     help="GeoIP databases for explain and previews, repeatable")
    api.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from api.standalone import serve_api
    from gslb.load.geoip import GeoIPError, open_databases
    from gslb.observability import setup_logging
    from gslb.server.single import run_loop

    setup_logging(args.log_level, args.log_format)
    try:
        listen = parse_listen(args.listen)
        geo = open_databases(tuple(args.geoip)) if args.geoip else None
    except (ValueError, GeoIPError) as exc:
        print(f"gslb api: {exc}", file=sys.stderr)
        return 2
    try:
        return run_loop(serve_api(args.redis, listen, args.import_dir, geo,
                                  tuple(args.api_hosts or ()), args.console))
    except Exception as exc:  # Redis unreachable at start, the port taken
        print(f"gslb api: {exc}", file=sys.stderr)
        return 1
