"""The `checks:` section of a steering file: health check definitions, validated.

    checks:
      web:                      # the name members give in `check:`
        type: http              # http | https | tcp | dns
        port: 8080              # default 80 (http), 443 (https), 53 (dns); tcp needs one
        path: /healthz          # http(s), default /
        expect: [200, 204]      # http(s) status codes that mean up, default [200]
        body: ok                # http(s): the body must contain this text
        host: www.example.com   # http(s): Host header and TLS SNI (default: the address)
        follow_redirects: false # http(s): a 3xx is a failure unless this is true
        tls_verify: true        # https: check the certificate (against `host`)
        interval: 0.5           # seconds between probes (sub-second allowed), default 5
        timeout: 0.4            # seconds per probe, default 2, at most the interval
        rise: 2                 # consecutive successes to be up again, default 2
        fall: 2                 # consecutive failures to be down, default 3
        jitter: 0.1             # each wait varies by up to this fraction of the interval
      resolver:
        type: dns
        query: example.com.     # required
        query_type: SOA         # default A
        rcode: NOERROR          # default NOERROR
        answer: 192.0.2.1       # optional: an rdata the answer must hold
        transport: tcp          # udp (default) or tcp: a server's TCP side fails apart

Validation problems go through the steering file's checker, so they come out as
`file:line: checks: NAME: message`, all at once, with the rest of the file's problems.
"""

from __future__ import annotations

from dataclasses import dataclass

import dns.exception
import dns.name
import dns.rcode
import dns.rdatatype
import yaml

from gslb.load.bounds import MAX_INTERVAL, MAX_JITTER, MAX_RISE_FALL, MIN_INTERVAL
from gslb.load.yamlcheck import Checker, Fields
from gslb.steering.model import CheckSpec

KINDS = ("http", "https", "tcp", "dns")
DEFAULT_PORTS = {"http": 80, "https": 443, "dns": 53}
_COMMON = ("type", "port", "interval", "timeout", "rise", "fall", "jitter")
_HTTP = ("path", "expect", "body", "host", "follow_redirects", "tls_verify")
_DNS = ("query", "query_type", "rcode", "answer", "transport")
TRANSPORTS = ("udp", "tcp")
_KEYS = {"http": _COMMON + _HTTP, "https": _COMMON + _HTTP, "tcp": _COMMON, "dns": _COMMON + _DNS}


@dataclass
class Checks:
    """A steering file's valid check definitions by name, and every name under `checks:`
    (valid or not), so a member naming a broken definition is told so instead of
    silently becoming an external check id."""

    specs: dict[str, CheckSpec]
    names: set[str]


def read_checks(check: Checker, root: Fields) -> Checks:
    """The `checks:` section of a steering file's top-level mapping (none when absent)."""
    if "checks" not in root:
        return Checks({}, set())
    node = root["checks"][1]
    names = {str(key.value) for key, _ in node.value if isinstance(key, yaml.ScalarNode)} \
        if isinstance(node, yaml.MappingNode) else set()
    return Checks(parse_checks(check, node), names)


def parse_checks(check: Checker, node: yaml.Node) -> dict[str, CheckSpec]:
    """Every valid definition by name; invalid ones are reported and left out (so a
    member naming one is reported too, as naming a broken check)."""
    entries = check.mapping(node, "checks", "checks", ())
    if entries is None:
        return {}
    result = {}
    for name, (_, value) in entries.items():
        spec = _spec(check, name, value)
        if spec is not None:
            result[name] = spec
    return result


def _spec(check: Checker, name: str, node: yaml.Node) -> CheckSpec | None:
    where = f"checks: {name}"
    before = len(check.problems)
    fields = check.mapping(node, where, "a check", sorted(set(_COMMON + _HTTP + _DNS)))
    if fields is None:
        return None
    if "type" not in fields:
        check.add(node, where, f'missing key "type" ({", ".join(KINDS)})')
        return None
    kind = check.string(fields["type"][1], where, "type")
    if kind not in KINDS:
        if kind is not None:
            check.add(fields["type"][1], where, f'type "{kind}" is not one of {", ".join(KINDS)}')
        return None
    for key, (key_node, _) in fields.items():
        if key not in _KEYS[kind]:
            check.add(key_node, where, f'"{key}" does not apply to a {kind} check')
    values: dict[str, object] = {"name": name, "kind": kind, "source": f"{check.file}:{node.start_mark.line + 1}"}
    _timing(check, where, fields, values)
    port = _bounded_int(check, where, fields, "port", 1, 65535)
    if port is not None:
        values["port"] = port
    elif "port" not in fields and kind == "tcp":
        check.add(node, where, 'a tcp check needs "port"')
    if kind in ("http", "https"):
        _http(check, where, fields, values)
    elif kind == "dns":
        _dns(check, where, node, fields, values)
    if len(check.problems) != before:
        return None
    return CheckSpec(**values)  # type: ignore[arg-type]


def _timing(check: Checker, where: str, fields: dict, values: dict[str, object]) -> None:
    for key in ("interval", "timeout"):
        if key in fields:
            got = check.number(fields[key][1], where, key)
            if got is not None and not MIN_INTERVAL <= got <= MAX_INTERVAL:
                check.add(fields[key][1], where,
                          f"{key} {got} is out of range {MIN_INTERVAL}..{MAX_INTERVAL:g} s")
            elif got is not None:
                values[key] = got
    interval = float(values.get("interval", CheckSpec.interval))  # type: ignore[arg-type]
    timeout = float(values.get("timeout", min(CheckSpec.timeout, interval)))  # type: ignore[arg-type]
    if timeout > interval:
        node = fields["timeout"][1] if "timeout" in fields else fields["interval"][1]
        check.add(node, where, f"timeout {timeout} is longer than the interval {interval}")
    values["timeout"] = timeout
    for key in ("rise", "fall"):
        got = _bounded_int(check, where, fields, key, 1, MAX_RISE_FALL)
        if got is not None:
            values[key] = got
    if "jitter" in fields:
        got = check.number(fields["jitter"][1], where, "jitter")
        if got is not None and not 0 <= got <= MAX_JITTER:
            check.add(fields["jitter"][1], where, f"jitter {got} is out of range 0..{MAX_JITTER}")
        elif got is not None:
            values["jitter"] = got


def _bounded_int(check: Checker, where: str, fields: dict, key: str, low: int,
                 high: int) -> int | None:
    if key not in fields:
        return None
    got = check.integer(fields[key][1], where, key)
    if got is not None and not low <= got <= high:
        check.add(fields[key][1], where, f"{key} {got} is out of range {low}..{high}")
        return None
    return got


def _boolean(check: Checker, where: str, fields: dict, key: str) -> bool | None:
    if key not in fields:
        return None
    node = fields[key][1]
    if not isinstance(node, yaml.ScalarNode) or node.tag != "tag:yaml.org,2002:bool":
        check.add(node, where, f"{key} must be true or false")
        return None
    return str(node.value).lower() in ("true", "yes", "on")


def _http(check: Checker, where: str, fields: dict, values: dict[str, object]) -> None:
    for key in ("path", "body", "host"):
        if key in fields:
            text = check.string(fields[key][1], where, key)
            if key == "path" and text is not None and not text.startswith("/"):
                check.add(fields[key][1], where, f'path "{text}" must start with /')
            elif text is not None:
                values[key] = text
    if "expect" in fields:
        node = fields["expect"][1]
        items = node.value if isinstance(node, yaml.SequenceNode) else [node]
        codes = []
        for item in items:
            code = check.integer(item, where, "expect")
            if code is not None and not 100 <= code <= 599:
                check.add(item, where, f"expect {code} is not an HTTP status (100..599)")
            elif code is not None:
                codes.append(code)
        values["expect_status"] = tuple(codes)
    for key in ("follow_redirects", "tls_verify"):
        flag = _boolean(check, where, fields, key)
        if flag is not None:
            values[key] = flag


def _dns(check: Checker, where: str, node: yaml.Node, fields: dict,
         values: dict[str, object]) -> None:
    if "query" not in fields:
        check.add(node, where, 'a dns check needs "query" (the name to ask)')
    else:
        text = check.string(fields["query"][1], where, "query")
        try:
            values["query"] = dns.name.from_text(text).to_text() if text is not None else None
        except dns.exception.DNSException as exc:
            check.add(fields["query"][1], where, f'query "{text}" is not a name: {exc}')
    # key -> (CheckSpec field, canonical text of a valid value, what it must be)
    named = {"query_type": ("query_type", lambda t: dns.rdatatype.to_text(dns.rdatatype.from_text(t)),
                            "a record type"),
             "rcode": ("expect_rcode", lambda t: dns.rcode.to_text(dns.rcode.from_text(t)),
                       "a DNS rcode")}
    for key, (target, canonical, what) in named.items():
        if key in fields:
            text = check.string(fields[key][1], where, key)
            try:
                values[target] = canonical(text or "")
            except dns.exception.DNSException:
                check.add(fields[key][1], where, f'{key} "{text}" is not {what}')
    if "answer" in fields:
        values["expect_answer"] = check.string(fields["answer"][1], where, "answer")
    if "transport" in fields:
        text = check.string(fields["transport"][1], where, "transport")
        if text in TRANSPORTS:
            values["transport"] = text
        else:
            check.add(fields["transport"][1], where,
                      f'transport "{text}" is not one of {", ".join(TRANSPORTS)}')
