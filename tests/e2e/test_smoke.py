"""The dig-based smoke suite: real `gslb serve`, real dig, parsed answers."""

from __future__ import annotations

import shutil
import subprocess

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import pytest

pytestmark = pytest.mark.skipif(shutil.which("dig") is None, reason="dig (bind9-dnsutils) not installed")


def dig(server, *args: str) -> dns.message.Message:
    """Run dig against the server and parse its wire-format reply (+qr is off, +noall...)."""
    out = subprocess.run(
        ["dig", f"@{server.host}", "-p", str(server.port), "+norec", "+tries=1", "+time=2", *args],
        capture_output=True, text=True, timeout=10, check=True,
    ).stdout
    return out


def test_soa_answer_is_authoritative(demo_server):
    out = dig(demo_server, "example.com", "SOA")
    assert "status: NOERROR" in out
    assert "flags: qr aa;" in out
    assert "ns1.example.com. hostmaster.example.com. 2026112401" in out
