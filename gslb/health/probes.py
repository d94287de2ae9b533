"""One probe, one outcome: HTTP(S) with httpx, TCP connect, DNS with dnspython.

Each probe is a coroutine that never raises: every failure (refused, timeout, wrong
status, missing body text, wrong rcode) becomes a failed `Outcome` whose `detail` says
why, for the log and `gslb explain`. `rtt_ms` is the time the probe took, which agents
also report as latency telemetry.
"""

from __future__ import annotations

import asyncio
import ipaddress
import ssl
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import dns.exception
import dns.message
import dns.rcode
import dns.rdatatype

from gslb.steering.model import CheckSpec, Probe

if TYPE_CHECKING:  # imported where a probe runs: a node that probes nothing never loads it
    import httpx

DEFAULT_PORTS = {"http": 80, "https": 443, "dns": 53}


@dataclass(frozen=True)
class Outcome:
    ok: bool
    detail: str
    rtt_ms: float


async def run_probe(probe: Probe, client: httpx.AsyncClient | None = None) -> Outcome:
    """Probe once, bounded by the check's timeout."""
    import httpx

    spec = probe.check
    started = time.monotonic()
    try:
        async with asyncio.timeout(spec.timeout):
            if spec.kind == "tcp":
                detail = await _tcp(spec, probe.address)
            elif spec.kind == "dns":
                detail = await _dns(spec, probe.address)
            else:
                detail = await _http(spec, probe.address, client)
    except TimeoutError:
        detail = f"no answer within {spec.timeout:g} s"
    except (OSError, httpx.HTTPError, dns.exception.DNSException, ssl.SSLError) as exc:
        detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    except Exception as exc:  # a library's surprise is a failed probe, never a dead prober
        detail = f"unexpected {type(exc).__name__}: {exc}"
    rtt = (time.monotonic() - started) * 1000
    ok = detail.startswith("ok")
    return Outcome(ok, detail, rtt)


async def probe_all(probes: list[Probe]) -> list[Outcome]:
    """Each probe once, all at the same time (for `gslb explain`)."""
    return list(await asyncio.gather(*(run_probe(probe) for probe in probes)))


def _port(spec: CheckSpec) -> int:
    return spec.port if spec.port is not None else DEFAULT_PORTS[spec.kind]


def _host(address: str) -> str:
    """An address as it goes into a URL (IPv6 in brackets)."""
    try:
        return f"[{address}]" if ipaddress.ip_address(address).version == 6 else address
    except ValueError:
        return address


async def _tcp(spec: CheckSpec, address: str) -> str:
    _, writer = await asyncio.open_connection(address, _port(spec))
    writer.close()
    try:
        await writer.wait_closed()
    except OSError:
        pass
    return "ok: connected"


async def _http(spec: CheckSpec, address: str, client: httpx.AsyncClient | None) -> str:
    url = f"{spec.kind}://{_host(address)}:{_port(spec)}{spec.path}"
    headers = {"Host": spec.host} if spec.host else {}
    extensions = {"sni_hostname": spec.host} if spec.host and spec.kind == "https" else {}
    owned = client is None
    http = client or new_http_client(spec.tls_verify)
    try:
        response = await http.get(url, headers=headers, follow_redirects=spec.follow_redirects,
                                   timeout=spec.timeout, extensions=extensions)
    finally:
        if owned:
            await http.aclose()
    if response.status_code not in spec.expect_status:
        return f"status {response.status_code}, expected {_codes(spec.expect_status)}"
    if spec.body is not None and spec.body not in response.text:
        return f"status {response.status_code} but the body lacks {spec.body!r}"
    return f"ok: status {response.status_code}"


def new_http_client(verify: bool = True) -> httpx.AsyncClient:
    """A client for probes: no connection reuse (each probe proves a fresh connect), no
    proxies from the environment."""
    import httpx

    limits = httpx.Limits(max_keepalive_connections=0)
    return httpx.AsyncClient(verify=verify, limits=limits, trust_env=False)


def _codes(codes: tuple[int, ...]) -> str:
    return ", ".join(map(str, codes))


async def _dns(spec: CheckSpec, address: str) -> str:
    import dns.asyncquery  # with dns.query and dns.transaction: only for DNS checks

    assert spec.query is not None  # the loader requires it
    query = dns.message.make_query(spec.query, spec.query_type)
    send = dns.asyncquery.tcp if spec.transport == "tcp" else dns.asyncquery.udp
    reply = await send(query, address, port=_port(spec), timeout=spec.timeout)
    rcode = dns.rcode.to_text(reply.rcode())
    if rcode != spec.expect_rcode:
        return f"rcode {rcode}, expected {spec.expect_rcode}"
    if spec.expect_answer is not None:
        rdtype = dns.rdatatype.from_text(spec.query_type)
        found = {rdata.to_text() for rrset in reply.answer if rrset.rdtype == rdtype for rdata in rrset}
        if spec.expect_answer not in found:
            return f"answer lacks {spec.expect_answer}"
    return f"ok: {rcode}"
