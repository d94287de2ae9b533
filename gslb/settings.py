"""One typed settings object for `gslb serve`: defaults live here and nowhere else.

Every setting comes from a command-line flag, else a `GSLB_*` environment variable,
else the default below.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from pathlib import Path

from gslb.dns.handler import IPNetwork, Options
from gslb.dns.rrl import RrlSettings

DEFAULT_LISTEN = "127.0.0.1:5353"


@dataclass(frozen=True)
class ListenAddress:
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_listen(text: str) -> ListenAddress:
    """`HOST:PORT`, `[V6]:PORT`, or a bare port (meaning all IPv4 and IPv6 addresses)."""
    text = text.strip()
    if text.isdigit():
        return ListenAddress("", _port(text, text))
    if text.startswith("["):
        host, sep, port = text[1:].partition("]:")
        if not sep:
            raise ValueError(f"listen address {text!r}: expected [IPV6]:PORT")
    else:
        host, sep, port = text.rpartition(":")
        if not sep or ":" in host:
            raise ValueError(f"listen address {text!r}: expected HOST:PORT or [IPV6]:PORT")
    return ListenAddress(host, _port(port, text))


def _port(port: str, text: str) -> int:
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"listen address {text!r}: port must be 1-65535")
    return int(port)


@dataclass(frozen=True)
class StoreSettings:
    """Shared state in Redis and how a node judges it (see README "Shared state")."""

    redis: str | None = None  # URL (gslb/state/redis.py); None = embedded checker, in process
    verdict_expiry: float = 10.0  # seconds an agent's verdict counts after its probe
    quorum: int = 0  # fresh "down" verdicts that take a member down; 0 = a majority
    resync: float = 2.0  # seconds between full reads (pub/sub carries changes in between)
    max_age: float = 0.0  # Redis unreachable this long: the `stale` policy applies; 0 = never
    stale: str = "keep"  # keep (the last known state) | up (every member up)
    rtt_min_samples: int = 5  # samples an RTT figure needs before `latency` trusts it


@dataclass(frozen=True)
class Settings:
    zones_dir: Path = Path("zones")
    listen: tuple[ListenAddress, ...] = (parse_listen(DEFAULT_LISTEN),)
    max_udp_payload: int = Options.max_udp_payload  # 1232, the responder's default
    nsid: bytes | None = None
    identity: str | None = None
    version: str | None = None
    xfr_allow: tuple[IPNetwork, ...] = field(default_factory=lambda: Options().xfr_allow)
    tcp_idle_timeout: float = 10.0
    tcp_message_timeout: float = 2.0  # from a message's first byte to its last
    tcp_max_connections: int = 1000
    log_level: str = "INFO"
    workers: int = field(default_factory=lambda: default_workers())
    geoip: tuple[Path, ...] = ()  # MaxMind City/Country/ASN databases for geo steering
    geoip_check_interval: float = 10.0  # seconds between looks at --geoip and --cookie-secret
    state: Path | None = None  # health/latency state file (the in-process store)
    store: StoreSettings = field(default_factory=StoreSettings)
    prewarm: int = 1000  # answers rendered into the cache at load, before any query
    api: ListenAddress | None = None  # serve the control-plane REST API here
    redis: str | None = None  # configuration of record in Redis (distributed mode)
    api_hosts: tuple[str, ...] = ()  # Host names the API answers to besides its address
    console: bool = True  # the web console at /ui/ on the API's port
    udp: str = "auto"  # UDP loop: native (C extension), python, or auto (native if built)
    log_format: str = "text"  # text, json or logfmt
    metrics: ListenAddress | None = None  # --metrics HOST:PORT (/metrics, /ready, /live)
    metrics_dir: Path | None = None  # where processes report; default: a private temp dir
    query_log: bool = False  # the query log is on from the start (else: SIGUSR1)
    query_log_every: int = 1  # log one query in N while the query log is on
    latency_sample: int = 16  # time one query in N for the latency histogram
    dnstap: str | None = None  # unix:PATH or tcp:HOST:PORT of a Frame Streams collector
    dnstap_every: int = 1  # send one query/response pair in N
    dnstap_queue: int = 10_000  # frames waiting for the collector; beyond, dropped
    heartbeat: float = 2.0  # seconds between fleet heartbeats to Redis (with --redis)
    rrl: RrlSettings = field(default_factory=RrlSettings)  # response rate limiting (UDP)
    cookie_secret: Path | None = None  # DNS cookie secrets (hex, one a line); None: random

    @property
    def config_follows_store(self) -> bool:
        """Another process may change the configuration (through the API, or in Redis):
        every process that serves or probes it follows the configuration store."""
        return self.api is not None or self.redis is not None

    def responder_options(self) -> Options:
        return Options(
            max_udp_payload=self.max_udp_payload,
            nsid=self.nsid,
            identity=self.identity,
            version=self.version,
            xfr_allow=self.xfr_allow,
        )


def default_workers() -> int:
    """One worker per CPU."""
    return os.cpu_count() or 1


def env_default(name: str, fallback: str | None = None) -> str | None:
    return os.environ.get(f"GSLB_{name}", fallback)


def parse_networks(values: list[str]) -> tuple[IPNetwork, ...]:
    networks = []
    for value in values:
        for item in value.split(","):
            if item.strip():
                networks.append(ipaddress.ip_network(item.strip(), strict=False))
    return tuple(networks)
