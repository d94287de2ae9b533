"""The `gslb` command: serve zones, or check them."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

from gslb import __version__
from gslb.cli_state import add_commands, add_store_flags, store_settings_from
from gslb.observability import setup_logging
from gslb.observability.logs import FORMATS
from gslb.steering.front import DRAW_SLOTS
from gslb.settings import (
    DEFAULT_LISTEN,
    Settings,
    default_workers,
    env_default,
    parse_listen,
    parse_networks,
)
from gslb.load.zonefile import load_zones


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gslb",
        description="Authoritative DNS server with global server load balancing.",
    )
    parser.add_argument("--version", action="version", version=f"gslb {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser(
        "serve",
        help="answer DNS queries for the zones in a folder",
        description="Serve every *.zone file in the zones folder over UDP and TCP. "
        "Ready when it answers SOA for each zone. SIGHUP reloads the zones (a zone that "
        "fails to load keeps its last good version); SIGTERM or SIGINT stops.",
    )
    _zones_flag(serve)
    serve.add_argument(
        "--listen", action="append", metavar="HOST:PORT",
        help=f"address to serve on, repeatable; [V6]:PORT for IPv6, a bare PORT for all "
        f"addresses (default: {DEFAULT_LISTEN}; env GSLB_LISTEN, comma-separated)",
    )
    serve.add_argument(
        "--max-udp-payload", type=int, default=int(env_default("MAX_UDP_PAYLOAD", "1232") or 1232),
        metavar="BYTES", help="largest UDP response sent to EDNS clients (default: 1232)",
    )
    serve.add_argument("--nsid", default=env_default("NSID"), metavar="TEXT",
                       help="NSID (RFC 5001) sent to clients that ask (default: none)")
    serve.add_argument("--identity", default=env_default("IDENTITY"), metavar="TEXT",
                       help="answer for CH TXT id.server and hostname.bind (default: REFUSED)")
    serve.add_argument("--version-string", default=env_default("VERSION_STRING"), metavar="TEXT",
                       help="answer for CH TXT version.bind and version.server (default: REFUSED)")
    serve.add_argument(
        "--xfr-allow", action="append", metavar="CIDR",
        help="networks allowed to AXFR over TCP, repeatable (default: 127.0.0.0/8 and ::1; "
        "env GSLB_XFR_ALLOW, comma-separated)",
    )
    serve.add_argument("--tcp-idle-timeout", type=float, metavar="SECONDS",
                       default=float(env_default("TCP_IDLE_TIMEOUT", "10") or 10),
                       help="close TCP connections quiet for this long (default: 10)")
    serve.add_argument("--tcp-message-timeout", type=float, metavar="SECONDS",
                       default=float(env_default("TCP_MESSAGE_TIMEOUT", "2") or 2),
                       help="close a TCP connection that takes longer than this to send one "
                       "whole message, from its first byte (default: 2; env "
                       "GSLB_TCP_MESSAGE_TIMEOUT)")
    serve.add_argument("--tcp-max-connections", type=int, metavar="N",
                       default=int(env_default("TCP_MAX_CONNECTIONS", "1000") or 1000),
                       help="concurrent TCP connections; beyond it the quietest is closed "
                       "(default: 1000)")
    serve.add_argument("--workers", type=int, metavar="N",
                       default=int(env_default("WORKERS", str(default_workers())) or 1),
                       help="worker processes sharing the listen addresses with SO_REUSEPORT; "
                       "1 serves from a single process (default: the number of CPUs; "
                       "env GSLB_WORKERS)")
    serve.add_argument("--log-level", default=env_default("LOG_LEVEL", "INFO"),
                       choices=["DEBUG", "INFO", "WARNING", "ERROR"], type=str.upper,
                       help="log verbosity (default: INFO)")
    _observability_flags(serve)
    serve.add_argument("--prewarm", type=int, metavar="N",
                       default=int(env_default("PREWARM", "1000") or 1000),
                       help="answers to render into the cache at each load, apex first, so "
                       "the first queries after a start or reload are fast; 0 turns it off "
                       "(default: 1000)")
    serve.add_argument("--api", metavar="HOST:PORT", default=env_default("API"),
                       help="serve the REST API (zones, records, steering, versions) here; "
                       "the zones folder stays the configuration of record; every request "
                       "but /livez needs a token from `gslb token create` (env GSLB_API; "
                       "default: off)")
    serve.add_argument("--udp", default=env_default("UDP", "auto"),
                       choices=["auto", "native", "python"],
                       help="UDP loop: native (the C extension: recvmmsg/sendmmsg batches, "
                       "cached answers served without Python), python (a blocking Python "
                       "loop), or auto: native when the extension is built, else python, "
                       "logged once (default: auto; env GSLB_UDP)")
    _steering_flags(serve)
    add_store_flags(serve)
    serve.set_defaults(func=run_serve)

    api = commands.add_parser(
        "api", help="serve the REST API alone, the configuration of record in Redis",
        description="The control-plane REST API without DNS: zones, RRsets and steering live "
        "in Redis, and every `gslb serve --redis URL` node applies the changes. Several "
        "replicas may run against one Redis.",
    )
    api.add_argument("--redis", required=True, metavar="URL", help="redis://HOST:PORT/DB")
    api.add_argument("--listen", default="127.0.0.1:8080", metavar="HOST:PORT",
                     help="where the API listens (default: 127.0.0.1:8080)")
    api.add_argument("--import", dest="import_dir", type=Path, metavar="DIR",
                     help="when Redis holds no configuration yet, load this zones folder "
                     "(zone files and steering YAML) as version 1")
    api.add_argument("--log-level", default=env_default("LOG_LEVEL", "INFO"),
                     choices=["DEBUG", "INFO", "WARNING", "ERROR"], type=str.upper)
    api.add_argument("--geoip", action="append", type=Path, metavar="PATH",
                     help="GeoIP databases for explain and previews, repeatable")
    api.set_defaults(func=run_api)

    check = commands.add_parser(
        "check",
        help="validate zone files and steering configuration without serving them",
        description="Load and validate every *.zone file and every *.gslb.yaml (or "
        "*.gslb.yml) steering file beside them, a steering file even when its zone file has "
        "problems. Prints one 'file:line: message' line per problem and exits 1 if there is "
        "any, else prints a summary and exits 0. Warnings (rules that can never match with "
        "the given --geoip databases) are printed as 'file:line: warning: ...' and do not "
        "change the exit status.",
    )
    _zones_flag(check)
    check.add_argument(
        "--geoip", action="append", type=Path, metavar="PATH",
        help="the MaxMind databases `gslb serve` will use, repeatable: geos and asns rules "
        "that none of them can match are warned about (env GSLB_GEOIP, comma-separated)",
    )
    check.set_defaults(func=run_check)

    explain = commands.add_parser(
        "explain",
        help="show, step by step, how a steered name is answered for a client",
        description="Print the steering decision for NAME as the DNS path makes it: the "
        "client identity (ECS or resolver address, truncated to /24 or /56), the geo lookup, "
        "the rule, each policy's candidates and reason, health with its source and age, "
        "fallbacks, the answer, its ECS scope and TTL. For a name that is not steered it "
        "prints the static answer.",
    )
    explain.add_argument("name", metavar="NAME", help="the name to explain, e.g. www2.example.com")
    explain.add_argument("type", metavar="TYPE", nargs="?", default="A",
                         help="A, AAAA or CNAME (default: A)")
    explain.add_argument("--client", required=True, metavar="IP",
                         help="the resolver's address as the server would see it")
    explain.add_argument("--ecs", metavar="CIDR",
                         help="an EDNS Client Subnet the resolver sends (RFC 7871)")
    explain.add_argument("--draw", type=int, default=0, metavar="SLOT",
                         help=f"which of the {DRAW_SLOTS} equal slots of the weighted draw to "
                         f"decide with, 0 to {DRAW_SLOTS - 1}: the server picks one at random "
                         "per query, so each slot stands for 1/64 of the traffic (default: 0)")
    _zones_flag(explain)
    _steering_flags(explain)
    add_store_flags(explain)
    explain.set_defaults(func=run_explain)
    add_commands(commands, _zones_flag)

    status = commands.add_parser(
        "status", help="one screen on the fleet: nodes, zones, state store, member health",
        description="With --redis: every DNS node's last heartbeat (version, configuration "
        "digest, snapshot, state epoch, zones and serials, queries per second, uptime), "
        "flagging nodes that stopped reporting (no heartbeat for five of their intervals: 10 s "
        "by default) or lag the newest "
        "zone serials; the state store's epoch and agents; each health key's verdicts and "
        "quorum. Without: the one embedded node, through its --metrics endpoint. Exit 0, "
        "1 when a node is flagged, 2 when the source cannot be read.")
    status.add_argument("--redis", metavar="URL", default=env_default("REDIS"),
                        help="the fleet's Redis (as given to gslb serve; env GSLB_REDIS)")
    status.add_argument("--metrics", metavar="HOST:PORT",
                        default=env_default("METRICS", "127.0.0.1:9153"),
                        help="without --redis: the node's --metrics address (default: "
                        "127.0.0.1:9153; env GSLB_METRICS)")
    status.add_argument("--verdict-expiry", type=float, default=10.0, metavar="SECONDS",
                        help="a verdict older than this is stale (default: 10, as gslb serve)")
    status.set_defaults(func=run_status)
    _token_commands(commands)
    return parser


def _observability_flags(serve: argparse.ArgumentParser) -> None:
    serve.add_argument("--log-format", default=env_default("LOG_FORMAT", "text"),
                       choices=list(FORMATS), type=str.lower,
                       help="log lines as text, json or logfmt (default: text; env "
                       "GSLB_LOG_FORMAT)")
    serve.add_argument("--metrics", metavar="HOST:PORT", default=env_default("METRICS"),
                       help="serve Prometheus metrics at http://HOST:PORT/metrics, with "
                       "/ready (200 when every zone answers SOA on the DNS port) and /live "
                       "(default: off; env GSLB_METRICS)")
    serve.add_argument("--metrics-dir", type=Path, metavar="DIR",
                       default=env_default("METRICS_DIR"),
                       help="where each process writes its counts for the metrics to merge "
                       "(default: a private temporary folder; env GSLB_METRICS_DIR)")
    serve.add_argument("--query-log", action="store_true",
                       default=env_default("QUERY_LOG", "") in ("1", "true", "on"),
                       help="log queries from the start (logger gslb.query: client, ECS, "
                       "name, type, rcode, zone, steering decision); SIGUSR1 turns the "
                       "query log on at run time, SIGUSR2 off (default: off; env "
                       "GSLB_QUERY_LOG=1)")
    _number_flag(serve, "--query-log-sample", int, 1, "N",
                 "while the query log is on, log one query in N")
    _number_flag(serve, "--latency-sample", int, 16, "N",
                 "time one query in N (a power of two) for the answer latency histogram; "
                 "every query while the query log or dnstap is on")
    serve.add_argument("--dnstap", metavar="unix:PATH|tcp:HOST:PORT",
                       default=env_default("DNSTAP"),
                       help="send AUTH_QUERY and AUTH_RESPONSE dnstap messages over Frame "
                       "Streams to a collector (fstrm_capture, dnstap-read, vector...); "
                       "reconnects by itself (default: off; env GSLB_DNSTAP)")
    _number_flag(serve, "--heartbeat", float, 2, "SECONDS",
                 "with --redis: publish this node's heartbeat (versions, zones and serials, "
                 "qps, uptime) for `gslb status` this often")
    _number_flag(serve, "--dnstap-sample", int, 1, "N", "send one query/response pair in N")
    _number_flag(serve, "--dnstap-queue", int, 10000, "FRAMES",
                 "frames waiting for a slow collector; more are dropped and counted, answers "
                 "never wait")


def _number_flag(parser: argparse.ArgumentParser, flag: str, kind: type, default: float,
                 metavar: str, text: str) -> None:
    """A numeric flag whose default comes from GSLB_<FLAG> when set."""
    env = flag.lstrip("-").upper().replace("-", "_")
    parser.add_argument(flag, type=kind, metavar=metavar,
                        default=kind(env_default(env) or default),
                        help=f"{text} (default: {default}; env GSLB_{env})")


def _token_commands(commands: argparse._SubParsersAction) -> None:
    token = commands.add_parser(
        "token", help="create, list and revoke API bearer tokens",
        description="Tokens for the REST API. Roles: read (GET), write (records, steered "
        "records, members, datacenters), admin (zones, rollback). A token may be limited to "
        "zones. Only a hash is stored (zones/.gslb/tokens.json); the token is shown once.",
    )
    actions = token.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = actions.add_parser("create", help="create a token and print it (once)")
    create.add_argument("--name", required=True, help="who uses it; recorded as the author of changes")
    create.add_argument("--role", required=True, choices=["read", "write", "admin"])
    create.add_argument("--zone", action="append", default=[], metavar="ZONE",
                        help="limit the token to this zone, repeatable (default: every zone)")
    listing = actions.add_parser("list", help="list tokens (never their secrets)")
    revoke = actions.add_parser("revoke", help="revoke a token by its id")
    revoke.add_argument("id", help="the id shown by `gslb token list`")
    for sub in (create, listing, revoke):
        _zones_flag(sub)
        sub.add_argument("--redis", metavar="URL", default=env_default("REDIS"),
                         help="keep the tokens in Redis, for `gslb api --redis` (env GSLB_REDIS)")
    token.set_defaults(func=run_token)


def run_token(args: argparse.Namespace) -> int:
    from gslb.config.tokens import TokenStore

    if args.redis:
        from gslb.config.redisstore import RedisTokens, connect

        store = TokenStore(RedisTokens(connect(args.redis)))
    else:
        store = TokenStore.for_zones(args.zones)
    if args.action == "create":
        if not args.redis and not args.zones.is_dir():
            print(f"gslb token: --zones {args.zones}: no such folder", file=sys.stderr)
            return 2
        token, secret = store.create(args.name, args.role, args.zone)
        scope = ", ".join(token.zones) if token.zones else "every zone"
        print(secret)
        print(f"token {token.id} ({token.name}, {token.role}, {scope}); shown once: keep it",
              file=sys.stderr)
        return 0
    if args.action == "list":
        for token in store.list():
            scope = ",".join(token.zones) if token.zones else "*"
            print(f"{token.id}\t{token.name}\t{token.role}\t{scope}")
        return 0
    if not store.revoke(args.id):
        print(f"gslb token revoke: no token {args.id}", file=sys.stderr)
        return 1
    print(f"revoked {args.id}")
    return 0


def _zones_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--zones", type=Path, default=Path(env_default("ZONES", "zones") or "zones"),
        metavar="DIR", help="folder of *.zone files (default: zones; env GSLB_ZONES)",
    )


def _steering_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--geoip", action="append", type=Path, metavar="PATH",
        help="MaxMind GeoIP2/GeoLite2 City, Country or ASN database, repeatable; `serve` "
        "checks the files every 10 s and on SIGHUP, and re-reads one whose size, time or "
        "inode changed (a file that fails to open keeps the previous one serving); env "
        "GSLB_GEOIP, comma-separated",
    )
    parser.add_argument(
        "--state", type=Path, metavar="FILE", default=env_default("STATE"),
        help="health and latency state (YAML: 'health: {check: up|down}', "
        "'rtt: {client-net-or-region: {datacenter: ms}}'); env GSLB_STATE",
    )


def _geoip_paths(args: argparse.Namespace) -> tuple[Path, ...]:
    if args.geoip:
        return tuple(args.geoip)
    env = env_default("GEOIP")
    return tuple(Path(p) for p in env.split(",") if p) if env else ()


def settings_from(args: argparse.Namespace) -> Settings:
    listen_env = env_default("LISTEN")
    listen = args.listen or (listen_env.split(",") if listen_env else [DEFAULT_LISTEN])
    xfr_env = env_default("XFR_ALLOW")
    defaults = Settings()
    return Settings(
        zones_dir=args.zones,
        listen=tuple(parse_listen(item) for item in listen),
        max_udp_payload=max(512, min(args.max_udp_payload, 65535)),
        nsid=args.nsid.encode() if args.nsid else None,
        identity=args.identity,
        version=args.version_string,
        xfr_allow=parse_networks(args.xfr_allow) if args.xfr_allow
        else parse_networks([xfr_env]) if xfr_env else defaults.xfr_allow,
        tcp_idle_timeout=args.tcp_idle_timeout,
        tcp_message_timeout=_positive("--tcp-message-timeout", args.tcp_message_timeout),
        tcp_max_connections=max(1, args.tcp_max_connections),
        log_level=args.log_level,
        workers=_workers(args.workers),
        prewarm=max(0, args.prewarm),
        geoip=_geoip_paths(args),
        state=Path(args.state) if args.state else None,
        udp=args.udp,
        log_format=args.log_format,
        metrics=parse_listen(args.metrics) if args.metrics else None,
        metrics_dir=Path(args.metrics_dir) if args.metrics_dir else None,
        query_log=args.query_log,
        query_log_every=_at_least_one("--query-log-sample", args.query_log_sample),
        latency_sample=_power_of_two("--latency-sample", args.latency_sample),
        dnstap=_dnstap_target(args.dnstap),
        dnstap_every=_at_least_one("--dnstap-sample", args.dnstap_sample),
        dnstap_queue=_at_least_one("--dnstap-queue", args.dnstap_queue),
        heartbeat=_positive("--heartbeat", args.heartbeat),
        store=store_settings_from(args),
        api=parse_listen(args.api) if args.api else None,
        redis=args.redis,
    )


def _at_least_one(flag: str, value: int) -> int:
    if value < 1:
        raise ValueError(f"{flag} {value}: must be at least 1")
    return value


def _power_of_two(flag: str, value: int) -> int:
    if value < 1 or value & (value - 1):
        raise ValueError(f"{flag} {value}: must be a power of two (1, 2, 4, ... )")
    return value


def _dnstap_target(text: str | None) -> str | None:
    if not text:
        return None
    if text.startswith("unix:") and len(text) > 5:
        return text
    if text.startswith("tcp:"):
        parse_listen(text[4:])
        return text
    raise ValueError(f"--dnstap {text!r}: expected unix:PATH or tcp:HOST:PORT")


def _positive(flag: str, seconds: float) -> float:
    if not seconds > 0:
        raise ValueError(f"{flag} {seconds}: must be more than 0 seconds")
    return seconds


def _workers(count: int) -> int:
    if count < 1:
        raise ValueError(f"--workers {count}: must be at least 1")
    return count


def run_serve(args: argparse.Namespace) -> int:
    from gslb.server.run import run_loop, serve
    from gslb.server.workers import supervise

    try:
        settings = settings_from(args)
    except ValueError as exc:
        print(f"gslb serve: {exc}", file=sys.stderr)
        return 2
    setup_logging(settings.log_level, settings.log_format)
    if settings.udp == "native":
        from gslb.server import fastpath

        if not fastpath.available():
            print("gslb serve: --udp native: the C extension gslb.server._fastpath is not "
                  "built (install gcc and the Python headers, then pip install .)",
                  file=sys.stderr)
            return 2
    for path in settings.geoip:
        if not path.is_file():
            print(f"gslb serve: --geoip {path}: no such file", file=sys.stderr)
            return 2
    api_factory = None
    if settings.api is not None:  # the control plane is wired in only when asked for
        from api.serve import embedded_api

        api_factory = embedded_api
    if settings.workers > 1:
        return supervise(settings, api_factory)
    return run_loop(serve(settings, api_factory))


def run_status(args: argparse.Namespace) -> int:
    from gslb.status import flagged, gather, render_fleet

    try:
        fleet = gather(args.redis, args.metrics, args.verdict_expiry)
    except Exception as exc:  # Redis or the node unreachable, or garbage: say which
        source = f"Redis {args.redis}" if args.redis else f"http://{args.metrics}/metrics"
        print(f"gslb status: cannot read {source}: {exc}", file=sys.stderr)
        return 2
    print(render_fleet(fleet))
    return 1 if flagged(fleet) else 0
def run_api(args: argparse.Namespace) -> int:
    from api.standalone import serve_api
    from gslb.load.geoip import GeoIPError, open_databases
    from gslb.server.run import run_loop

    setup_logging(args.log_level)
    try:
        listen = parse_listen(args.listen)
        geo = open_databases(tuple(args.geoip)) if args.geoip else None
    except (ValueError, GeoIPError) as exc:
        print(f"gslb api: {exc}", file=sys.stderr)
        return 2
    try:
        return run_loop(serve_api(args.redis, listen, args.import_dir, geo))
    except Exception as exc:  # Redis unreachable at start, the port taken
        print(f"gslb api: {exc}", file=sys.stderr)
        return 1


def run_explain(args: argparse.Namespace) -> int:
    from gslb.explain import NotExplained, explain

    try:
        text = explain(args.zones, args.name, args.type, args.client, args.ecs,
                       _geoip_paths(args), Path(args.state) if args.state else None, args.draw,
                       store_settings_from(args))
    except ValueError as exc:
        print(f"gslb explain: {exc}", file=sys.stderr)
        return 2
    except NotExplained as exc:
        print(f"gslb explain: {exc}", file=sys.stderr)
        return 1
    print(text)
    return 0


def run_check(args: argparse.Namespace) -> int:
    from gslb.load.geoip import GeoIPError, open_databases
    from gslb.load.steering import geo_warnings, load_all_steering

    report = load_zones(args.zones, partial=True)
    steered, steering_problems = (load_all_steering(args.zones, report.zones + report.partial)
                                  if args.zones.is_dir() else ({}, []))
    for warning in report.warnings:
        print(f"{warning.file}:{warning.line}: warning: {warning.message}")
    problems = report.problems + steering_problems
    for problem in problems:
        print(problem)
    try:
        geo = open_databases(_geoip_paths(args))
    except GeoIPError as exc:
        print(f"gslb check: --geoip {exc}", file=sys.stderr)
        return 1
    for warning in geo_warnings(steered, geo.types if geo else []):
        print(f"{warning.file}:{warning.line}: warning: {warning.message}")
    if problems:
        return 1
    for zone in report.zones:
        signed = ""
        if zone.signed:
            denial = zone.denial
            kind = "NSEC3" if denial is not None and denial.nsec3 else "NSEC"
            signed = f", DNSSEC-signed ({kind})"
        print(f"{zone.source}: zone {zone.origin} serial {zone.serial()}, "
              f"{zone.record_count()} records{signed}: ok")
    files: dict[str, int] = {}
    for record in steered.values():
        file = record.source.rsplit(":", 1)[0]
        files[file] = files.get(file, 0) + 1
    for file, count in files.items():
        print(f"{file}: {count} steered record{'s' if count != 1 else ''}: ok")
    return 0


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


if __name__ == "__main__":
    sys.exit(main())
