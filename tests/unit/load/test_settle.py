"""What a reload serves of the steering, given what served before (issue 7 items 1, 2)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import dns.name
import pytest

from gslb.load.steering import load_steering_files
from gslb.load.settle import settle
from gslb.load.zonefile import load_zone_file
from tests.unit.load.test_steering import ZONE

GOOD = """\
records:
  www: {type: A, pools: {p: {members: [192.0.2.1, 192.0.2.2]}}, rules: [{pool: p}]}
  api: {type: A, pools: {p: {members: [192.0.2.3]}}, rules: [{pool: p}]}
"""


@pytest.fixture
def zone(tmp_path: Path):
    path = tmp_path / "example.test.zone"
    path.write_text(ZONE)
    return load_zone_file(path)[0]


def _load(tmp_path: Path, zone, text: str, kept=()):
    (tmp_path / "example.test.gslb.yaml").write_text(textwrap.dedent(text))
    return load_steering_files(tmp_path, [zone], skip=kept)


def test_a_broken_record_keeps_its_last_good_version(tmp_path: Path, zone) -> None:
    before, _ = settle(_load(tmp_path, zone, GOOD), {}, [zone])
    edited = GOOD.replace("192.0.2.3]}}", "192.0.2.4]}, q: {members: [192.0.2.5]}}")  # q unused
    edited = edited.replace("www: {type: A, pools: {p: {members: [192.0.2.1, 192.0.2.2]}}",
                            "www: {type: A, pools: {p: {members: [192.0.2.1]}}")
    after, notes = settle(_load(tmp_path, zone, edited), before, [zone])
    assert after[("api.example.test.", "A")] is before[("api.example.test.", "A")]
    assert after[("www.example.test.", "A")].transfer == ("192.0.2.1",)  # the good edit applies
    assert notes == [f"{tmp_path}/example.test.gslb.yaml:3: api.example.test. A: keeping the last "
                     "good version of this record until its problem is fixed"]


def test_a_broken_file_keeps_every_record_and_a_removed_record_goes(tmp_path: Path, zone) -> None:
    before, _ = settle(_load(tmp_path, zone, GOOD), {}, [zone])
    after, _ = settle(_load(tmp_path, zone, "records: [\n"), before, [zone])
    assert after == before
    after, notes = settle(_load(tmp_path, zone, GOOD.split("  api:")[0]), before, [zone])
    assert list(after) == [("www.example.test.", "A")] and notes == []


def test_no_good_version_answers_servfail_unless_the_zone_answers(tmp_path: Path, zone) -> None:
    """At start (nothing before): a stand-in that answers SERVFAIL, not NXDOMAIN; none
    where the zone's own data is there (a conflict is reported as a problem instead)."""
    records, notes = settle(_load(tmp_path, zone, """\
        records:
          new: {type: AAAA, pools: {p: {members: [192.0.2.1]}}, rules: [{pool: p}]}
          what: {type: MX, pools: {p: {members: [192.0.2.1]}}, rules: [{pool: p}]}
          txt: {type: A, pools: {p: {members: [x]}}, rules: [{pool: p}]}
          static: {type: A, pools: {p: {members: [192.0.2.1]}}, rules: [{pool: p}]}
        """), {}, [zone])
    assert {key: r.unusable != "" for key, r in records.items()} == {
        ("new.example.test.", "AAAA"): True, ("what.example.test.", "CNAME"): True,
        ("txt.example.test.", "A"): True}
    assert records[("new.example.test.", "AAAA")].source == f"{tmp_path}/example.test.gslb.yaml:2"
    assert len(notes) == 3 and all("answering SERVFAIL" in note for note in notes)


def test_a_kept_zone_keeps_its_steering_and_its_file_is_not_read(tmp_path: Path, zone) -> None:
    before, _ = settle(_load(tmp_path, zone, GOOD), {}, [zone])
    load = _load(tmp_path, zone, "records: {}\n", kept=[dns.name.from_text("example.test.")])
    assert load.problems == [] and load.records == {}
    after, notes = settle(load, before, [zone], [dns.name.from_text("example.test.")])
    assert after == before and notes == []
