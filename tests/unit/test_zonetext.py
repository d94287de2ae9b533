"""Editing one RRset in a zone file's text keeps every other line as written."""

from __future__ import annotations

import dns.name
import pytest

from gslb.config.zonetext import ZoneTextError, record_lines, replace_rrset, replace_serial

ORIGIN = dns.name.from_text("example.com.")
TEXT = """$TTL 300
; the apex
@   IN SOA ns1 hostmaster (
        2026010101 ; serial
        7200 3600 1209600 300 )
    IN NS ns1          ; inherits @
ns1 IN A 192.0.2.53
www IN A 192.0.2.1
    IN A 192.0.2.2     ; second www
    IN TXT "hello ; not a comment"
$ORIGIN sub.example.com.
deep 60 IN A 192.0.2.9
"""


def _name(text: str) -> dns.name.Name:
    return dns.name.from_text(text)


def test_replace_keeps_other_lines_and_comments() -> None:
    new = record_lines(_name("www.example.com."), "A", 60, ["192.0.2.7"])
    out = replace_rrset(TEXT, ORIGIN, _name("www.example.com."), "A", new)
    assert "www.example.com. 60 IN A 192.0.2.7\n" in out
    assert "192.0.2.1" not in out and "192.0.2.2" not in out
    # the TXT inherited www from a removed line: the new lines stand in the same place
    assert out.index("192.0.2.7") < out.index('IN TXT "hello ; not a comment"')
    assert "; the apex" in out and "IN NS ns1          ; inherits @" in out


def test_delete_writes_out_an_inherited_owner() -> None:
    out = replace_rrset(TEXT, ORIGIN, _name("www.example.com."), "A", [])
    assert 'www.example.com.    IN TXT "hello ; not a comment"' in out
    assert "192.0.2.1" not in out


def test_origin_directive_and_new_rrset_appended() -> None:
    out = replace_rrset(TEXT, ORIGIN, _name("deep.sub.example.com."), "A", [])
    assert "deep 60" not in out and "$ORIGIN sub.example.com." in out
    added = replace_rrset(TEXT, ORIGIN, _name("new.example.com."), "AAAA",
                          record_lines(_name("new.example.com."), "AAAA", 60, ["2001:db8::1"]))
    assert added == TEXT + "new.example.com. 60 IN AAAA 2001:db8::1\n"


def test_serial_changes_in_place() -> None:
    out = replace_serial(TEXT, ORIGIN, 2026010101, 2026010102)
    assert out == TEXT.replace("2026010101 ; serial", "2026010102 ; serial")
    assert replace_serial(TEXT, ORIGIN, 1, 2) is None  # not the serial it says


def test_include_and_generate_are_refused() -> None:
    with pytest.raises(ZoneTextError, match=r"\$INCLUDE"):
        replace_rrset("$INCLUDE other.zone\n" + TEXT, ORIGIN, _name("www.example.com."), "A", [])
    with pytest.raises(ZoneTextError, match=r"\$GENERATE"):
        replace_rrset(TEXT + "$GENERATE 1-3 host$ A 192.0.2.$\n", ORIGIN, _name("x.example.com."), "A", [])
