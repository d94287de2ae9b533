"""`gslb serve`: answer DNS queries for the zones in a folder; its flags and the
`Settings` they make."""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
from pathlib import Path

from gslb.cli.flags import (LOG_LEVELS, add_store_flags, geoip_paths, number_flag,
                            steering_flags, store_settings_from, zones_flag)
from gslb.dns.rrl import RrlSettings
from gslb.observability.logs import FORMATS
from gslb.settings import (
    DEFAULT_LISTEN,
    Settings,
    default_workers,
    env_default,
    parse_listen,
    parse_networks,
)

# Each check of --geoip-check-interval is a stat() of every file: more than ten a second
# would buy nothing.
MIN_CHECK_INTERVAL = 0.1


def add_parser(commands: argparse._SubParsersAction) -> None:
    defaults = Settings()
    serve = commands.add_parser(
        "serve",
        help="answer DNS queries for the zones in a folder",
        description="Serve every *.zone file in the zones folder over UDP and TCP. "
        "Ready when it answers SOA for each zone. SIGHUP reloads the zones (a zone that "
        "fails to load keeps its last good version); SIGTERM or SIGINT stops.",
    )
    zones_flag(serve)
    serve.add_argument(
        "--listen", action="append", metavar="HOST:PORT",
        help=f"address to serve on, repeatable; [V6]:PORT for IPv6, a bare PORT for all "
        f"addresses (default: {DEFAULT_LISTEN}; env GSLB_LISTEN, comma-separated)",
    )
    serve.add_argument(
        "--max-udp-payload", type=int,
        default=int(env_default("MAX_UDP_PAYLOAD") or defaults.max_udp_payload),
        metavar="BYTES", help="largest UDP response sent to EDNS clients (default: "
        f"{defaults.max_udp_payload})",
    )
    serve.add_argument("--nsid", default=env_default("NSID"), metavar="TEXT",
                       help="NSID (RFC 5001) sent to clients that ask (default: none)")
    serve.add_argument("--identity", default=env_default("IDENTITY"), metavar="TEXT",
                       help="answer for CH TXT id.server and hostname.bind (default: REFUSED)")
    serve.add_argument("--version-string", default=env_default("VERSION_STRING"), metavar="TEXT",
                       help="answer for CH TXT version.bind and version.server (default: REFUSED)")
    serve.add_argument(
        "--xfr-allow", action="append", metavar="CIDR",
        help="networks allowed to AXFR over TCP, repeatable (default: "
        f"{' and '.join(str(n).removesuffix('/128') for n in defaults.xfr_allow)}; "
        "env GSLB_XFR_ALLOW, comma-separated)",
    )
    serve.add_argument("--tcp-idle-timeout", type=float, metavar="SECONDS",
                       default=float(env_default("TCP_IDLE_TIMEOUT")
                                     or defaults.tcp_idle_timeout),
                       help="close TCP connections quiet for this long (default: "
                       f"{defaults.tcp_idle_timeout:g})")
    serve.add_argument("--tcp-message-timeout", type=float, metavar="SECONDS",
                       default=float(env_default("TCP_MESSAGE_TIMEOUT")
                                     or defaults.tcp_message_timeout),
                       help="close a TCP connection that takes longer than this to send one "
                       f"whole message, from its first byte (default: "
                       f"{defaults.tcp_message_timeout:g}; env GSLB_TCP_MESSAGE_TIMEOUT)")
    serve.add_argument("--tcp-max-connections", type=int, metavar="N",
                       default=int(env_default("TCP_MAX_CONNECTIONS")
                                   or defaults.tcp_max_connections),
                       help="concurrent TCP connections; beyond it the quietest is closed "
                       f"(default: {defaults.tcp_max_connections})")
    serve.add_argument("--workers", type=int, metavar="N",
                       default=int(env_default("WORKERS", str(default_workers())) or 1),
                       help="worker processes sharing the listen addresses with SO_REUSEPORT; "
                       "1 serves from a single process (default: the number of CPUs; "
                       "env GSLB_WORKERS)")
    serve.add_argument("--log-level", default=env_default("LOG_LEVEL", defaults.log_level),
                       choices=LOG_LEVELS, type=str.upper,
                       help=f"log verbosity (default: {defaults.log_level})")
    _observability_flags(serve, defaults)
    serve.add_argument("--prewarm", type=int, metavar="N",
                       default=int(env_default("PREWARM") or defaults.prewarm),
                       help="with --udp python only (the native loop builds any answer "
                       "in C on first ask): answers to render into the cache at each load, "
                       "apex first, so the first queries after a start or reload are fast; "
                       f"0 turns it off (default: {defaults.prewarm})")
    serve.add_argument("--api", metavar="HOST:PORT", default=env_default("API"),
                       help="serve the REST API (zones, records, steering, versions) here; "
                       "the zones folder stays the configuration of record; every request "
                       "but /livez needs a token from `gslb token create` (env GSLB_API; "
                       "default: off)")
    serve.add_argument("--api-host", action="append", metavar="NAME", dest="api_hosts",
                       help="a name the API is reached by (its Host header), besides its "
                       "address and loopback names; others get 400 (repeatable; env "
                       "GSLB_API_HOSTS, comma-separated)")
    serve.add_argument("--no-console", action="store_false", dest="console",
                       default=defaults.console,
                       help="with --api: do not serve the web console at /ui/ on the API's "
                       "port (default: served; it uses the API with the user's token, and "
                       "nothing else)")
    serve.add_argument("--udp", default=env_default("UDP", defaults.udp),
                       choices=["auto", "native", "python"],
                       help="UDP loop: native (the C extension: recvmmsg/sendmmsg batches, "
                       "cached answers served without Python), python (a blocking Python "
                       "loop), or auto: native when the extension is built, else python, "
                       f"logged once (default: {defaults.udp}; env GSLB_UDP)")
    serve.add_argument("--cookie-secret", type=Path, metavar="FILE",
                       default=env_default("COOKIE_SECRET"),
                       help="DNS cookie secrets (RFC 7873, RFC 9018 server cookies): 32 hex "
                       "digits a line, the first signs, all verify; re-read on SIGHUP and "
                       "when it changes. Every node of a fleet needs the same file (default: "
                       "a random secret per process; env GSLB_COOKIE_SECRET)")
    _rrl_flags(serve, defaults)
    steering_flags(serve)
    add_store_flags(serve)
    serve.set_defaults(func=run)


def _rrl_flags(serve: argparse.ArgumentParser, defaults: Settings) -> None:
    """Response rate limiting (docs/operator-guide.md, "Response rate limiting")."""
    rrl = defaults.rrl
    number_flag(serve, "--rrl-rate", int, rrl.rate, "N",
                "response rate limiting over UDP: replies a second to one client network "
                "for one class (the same answer; NXDOMAIN for one zone; referrals into one "
                "delegation; errors); more are dropped or slipped, TCP is never limited. 0 "
                "turns it off, the default: resolvers ask a steering server, and one "
                "public resolver's /24 sends thousands of legitimate queries a second "
                "(one per client subnet with ECS): exempt those, or set a rate above "
                "their peaks")
    number_flag(serve, "--rrl-slip", int, rrl.slip, "N",
                "of the limited replies, send every Nth truncated (TC, no records) so a "
                "real client retries over TCP: 0 never, 1 always; 2 (BIND's default) halves "
                "what a spoofed flood reflects while a real client gets through within two "
                "tries")
    number_flag(serve, "--rrl-window", int, rrl.window, "SECONDS",
                "the rate is averaged over this long: a network that was quiet may get "
                "rate x window replies at once before it is held to the rate (4 s, as Knot "
                "DNS: a resolver farm's caches expiring together fit in it)")
    number_flag(serve, "--rrl-ipv4-prefix", int, rrl.ipv4_prefix, "BITS",
                "IPv4 clients are limited per network of this length (/24 as Knot and BIND: "
                "a spoofer cannot escape by varying the last octet)")
    number_flag(serve, "--rrl-ipv6-prefix", int, rrl.ipv6_prefix, "BITS",
                "IPv6 clients are limited per network of this length (/56 as Knot and "
                "BIND: a typical end-site allocation)")
    serve.add_argument("--rrl-exempt", action="append", metavar="CIDR",
                       help="a network never rate limited (your own resolvers, monitoring, "
                       "big public resolvers you trust), repeatable (default: none; env "
                       "GSLB_RRL_EXEMPT, comma-separated)")


def _observability_flags(serve: argparse.ArgumentParser, defaults: Settings) -> None:
    serve.add_argument("--log-format", default=env_default("LOG_FORMAT", defaults.log_format),
                       choices=list(FORMATS), type=str.lower,
                       help=f"log lines as text, json or logfmt (default: {defaults.log_format}; "
                       "env GSLB_LOG_FORMAT)")
    serve.add_argument("--metrics", metavar="HOST:PORT", default=env_default("METRICS"),
                       help="serve Prometheus metrics at http://HOST:PORT/metrics, with "
                       "/ready (200 when every zone answers SOA on the DNS port) and /live "
                       "(default: off; env GSLB_METRICS)")
    serve.add_argument("--metrics-dir", type=Path, metavar="DIR",
                       default=env_default("METRICS_DIR"),
                       help="where each process writes its counts for the metrics to merge "
                       "(default: a private temporary folder; env GSLB_METRICS_DIR)")
    serve.add_argument("--query-log", action="store_true",
                       default=env_default("QUERY_LOG", "") in ("1", "true", "on")
                       or defaults.query_log,
                       help="log queries from the start (logger gslb.query: client, ECS, "
                       "name, type, rcode, zone, steering decision); SIGUSR1 turns the "
                       "query log on at run time, SIGUSR2 off (default: off; env "
                       "GSLB_QUERY_LOG=1)")
    number_flag(serve, "--query-log-sample", int, defaults.query_log_every, "N",
                "while the query log is on, log one query in N")
    number_flag(serve, "--latency-sample", int, defaults.latency_sample, "N",
                "time one query in N (a power of two) for the answer latency histogram; "
                "every query while the query log or dnstap is on")
    serve.add_argument("--dnstap", metavar="unix:PATH|tcp:HOST:PORT",
                       default=env_default("DNSTAP"),
                       help="send AUTH_QUERY and AUTH_RESPONSE dnstap messages over Frame "
                       "Streams to a collector (fstrm_capture, dnstap-read, vector...); "
                       "reconnects by itself (default: off; env GSLB_DNSTAP)")
    number_flag(serve, "--heartbeat", float, defaults.heartbeat, "SECONDS",
                "with --redis: publish this node's heartbeat (versions, zones and serials, "
                "qps, uptime) for `gslb status` this often")
    number_flag(serve, "--dnstap-sample", int, defaults.dnstap_every, "N",
                "send one query/response pair in N")
    number_flag(serve, "--dnstap-queue", int, defaults.dnstap_queue, "FRAMES",
                "frames waiting for a slow collector; more are dropped and counted, answers "
                "never wait")


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
        geoip=geoip_paths(args),
        geoip_check_interval=_at_least("--geoip-check-interval", args.geoip_check_interval,
                                       MIN_CHECK_INTERVAL),
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
        api_hosts=tuple(args.api_hosts or (env_default("API_HOSTS") or "").split(",")),
        console=args.console,
        redis=args.redis,
        cookie_secret=Path(args.cookie_secret) if args.cookie_secret else None,
        rrl=_rrl_settings(args),
    )


def _rrl_settings(args: argparse.Namespace) -> RrlSettings:
    exempt_env = env_default("RRL_EXEMPT")
    exempt = args.rrl_exempt or ([exempt_env] if exempt_env else [])
    for flag, value, low, high in (("--rrl-rate", args.rrl_rate, 0, 1_000_000),
                                   ("--rrl-slip", args.rrl_slip, 0, 1000),
                                   ("--rrl-window", args.rrl_window, 1, 3600),
                                   ("--rrl-ipv4-prefix", args.rrl_ipv4_prefix, 0, 32),
                                   ("--rrl-ipv6-prefix", args.rrl_ipv6_prefix, 0, 128)):
        if not low <= value <= high:
            raise ValueError(f"{flag} {value}: must be {low} to {high}")
    return RrlSettings(rate=args.rrl_rate, slip=args.rrl_slip, window=args.rrl_window,
                       ipv4_prefix=args.rrl_ipv4_prefix, ipv6_prefix=args.rrl_ipv6_prefix,
                       exempt=parse_networks(exempt))


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


def _at_least(flag: str, seconds: float, least: float) -> float:
    if not least <= seconds < math.inf:  # NaN and infinity too
        raise ValueError(f"{flag} {seconds:g}: must be at least {least:g} seconds, and finite")
    return seconds


def _positive(flag: str, seconds: float) -> float:
    if not seconds > 0:
        raise ValueError(f"{flag} {seconds}: must be more than 0 seconds")
    return seconds


def _workers(count: int) -> int:
    if count < 1:
        raise ValueError(f"--workers {count}: must be at least 1")
    return count


def with_override_store(settings: Settings) -> Settings:
    """The API's overrides need a store: with neither --state nor --redis, the zones
    folder's own state file (zones/.gslb/state.yaml, made empty when missing, mode 600),
    which the server then watches like any --state file."""
    if settings.state is not None or settings.redis is not None:
        return settings
    path = settings.zones_dir / ".gslb" / "state.yaml"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text("# health pins, RTT figures and overrides (gslb override, the API)\n{}\n")
    return dataclasses.replace(settings, state=path)


def _geoip_error() -> type[Exception]:
    """What a GeoIP database that does not open raises. An except clause names it only
    when something was raised, so a server without --geoip never imports the reader."""
    from gslb.load.geoip import GeoIPError

    return GeoIPError


def run(args: argparse.Namespace) -> int:
    from gslb.observability import setup_logging
    from gslb.server.single import run_loop, serve

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
    if settings.cookie_secret is not None:
        from gslb.server.cookiefile import CookieSecretError, read_secrets

        try:
            read_secrets(settings.cookie_secret)
        except CookieSecretError as exc:
            print(f"gslb serve: --cookie-secret {exc}", file=sys.stderr)
            return 2
    api_factory = None
    if settings.api is not None:  # the control plane is wired in only when asked for
        from api.serve import embedded_api

        api_factory = embedded_api
        settings = with_override_store(settings)
    try:
        if settings.workers > 1 or api_factory is not None:  # the API runs in its own process
            from gslb.server.workers import supervise

            return supervise(settings, api_factory)
        return run_loop(serve(settings))
    except _geoip_error() as exc:  # at start, before anything listens or forks
        print(f"gslb serve: --geoip {exc}", file=sys.stderr)
        return 2
