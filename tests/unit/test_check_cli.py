"""`gslb check`: exit 0 with a summary when every zone is valid, else problems and exit 1."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from gslb.cli import main

REPO = Path(__file__).resolve().parents[2]
GOOD = """\
$ORIGIN example.test.
$TTL 300
@    IN SOA ns1.example.test. hostmaster.example.test. 2024010101 7200 3600 1209600 300
     IN NS  ns1.example.test.
ns1  IN A   192.0.2.53
www  IN A   192.0.2.80
www  IN A   192.0.2.81
"""
BAD = """\
$TTL 300
@    IN NS  ns1.bad.test.
www  IN CNAME web
www  IN A   192.0.2.1
"""


def test_check_valid_zones_exits_0_with_a_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "example.test.zone"
    path.write_text(GOOD)
    assert main(["check", "--zones", str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines() == [f"{path}: zone example.test. serial 2024010101, 5 records: ok"]
    assert err == ""


def test_check_invalid_zone_exits_1_with_every_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "example.test.zone"
    good.write_text(GOOD)
    bad = tmp_path / "bad.test.zone"
    bad.write_text(BAD)
    assert main(["check", "--zones", str(tmp_path)]) == 1
    out, _ = capsys.readouterr()
    # only the problems: no "ok" summary for the good zone when the set is not valid
    assert out.splitlines() == [
        f"{bad}:2: zone bad.test. has no SOA record at its apex",
        f"{bad}:3: CNAME at www.bad.test. beside other data (A)",
        f"{bad}:2: warning: NS ns1.bad.test. for bad.test. has no address record (A or AAAA) "
        "in the zone",
    ]


def test_check_missing_directory_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope"
    assert main(["check", "--zones", str(missing)]) == 1
    assert capsys.readouterr().out.splitlines() == [f"{missing}:0: zones directory does not exist"]


def test_check_empty_directory_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--zones", str(tmp_path)]) == 1
    assert capsys.readouterr().out.splitlines() == [f"{tmp_path}:0: no *.zone files found"]


def test_check_demo_zones_pass(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--zones", str(REPO / "zones")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 4 and all(line.endswith(": ok") for line in lines)
    assert {line.split(": zone ")[1].split()[0] for line in lines[:3]} == {
        "example.com.", "example.net.", "sub.example.com."}
    assert lines[3] == f"{REPO / 'zones' / 'example.com.gslb.yaml'}: 4 steered records: ok"


def test_check_as_a_subprocess(tmp_path: Path) -> None:
    bad = tmp_path / "bad.test.zone"
    bad.write_text(BAD)
    failed = subprocess.run([sys.executable, "-m", "gslb.cli", "check", "--zones", str(tmp_path)],
                            capture_output=True, text=True, timeout=60, cwd=REPO)
    assert failed.returncode == 1, failed.stderr
    assert failed.stdout.splitlines()[0] == f"{bad}:2: zone bad.test. has no SOA record at its apex"
    bad.unlink()
    (tmp_path / "example.test.zone").write_text(GOOD)
    passed = subprocess.run([sys.executable, "-m", "gslb.cli", "check", "--zones", str(tmp_path)],
                            capture_output=True, text=True, timeout=60, cwd=REPO)
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert passed.stdout.endswith(": ok\n")


def test_check_reports_steering_problems_with_the_zone_problems(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "example.test.zone").write_text(GOOD)
    steering = tmp_path / "example.test.gslb.yaml"
    steering.write_text("records:\n  www:\n    type: A\n    pools: {p: {members: [192.0.2.1]}}\n"
                        "    rules: [{pool: q}]\n")
    bad = tmp_path / "bad.test.zone"
    bad.write_text(BAD)
    assert main(["check", "--zones", str(tmp_path)]) == 1
    assert capsys.readouterr().out.splitlines() == [
        f"{bad}:2: zone bad.test. has no SOA record at its apex",
        f"{bad}:3: CNAME at www.bad.test. beside other data (A)",
        f"{steering}:2: www.example.test. A: the zone also has A records at this name",
        f'{steering}:4: www.example.test. A: pool "p" is never used (no rule, fallback or all_down_pool names it)',
        f'{steering}:5: www.example.test. A: rule 1: pool "q" is not a pool',
        f"{bad}:2: warning: NS ns1.bad.test. for bad.test. has no address record (A or AAAA) "
        "in the zone",
    ]


STEERED = """\
records:
  web:
    type: A
    pools: {p: {members: [192.0.2.1]}, q: {members: [192.0.2.2]}}
    rules: [{geos: [EU], pool: q}, {asns: [64500], pool: q}, {pool: p}]
  api:
    type: A
    pools: {p: {fallback: nope, members: [192.0.2.3]}}
    rules: [{pool: p}]
"""


def test_check_reports_the_zone_and_its_steering_file_in_one_run(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 7 item 4: a broken zone file does not hide its steering file's problems (the
    steering file is checked against the zone as far as it parsed), and a `.gslb.yml`
    file is read like a `.gslb.yaml` one."""
    zone = tmp_path / "example.test.zone"
    zone.write_text(GOOD + "bad  IN A   192.0.2.300\n")
    steering = tmp_path / "example.test.gslb.yml"
    steering.write_text(STEERED)
    assert main(["check", "--zones", str(tmp_path)]) == 1
    assert capsys.readouterr().out.splitlines() == [
        f"{zone}:8: bad A rdata: '192.0.2.300' is not an IPv4 address",
        f'{steering}:8: api.example.test. A: pool "p": fallback "nope" is not a pool',
        f"{steering}:2: warning: web.example.test. A: rule 1 never matches: geos need a City or "
        "Country database (--geoip)",
        f"{steering}:2: warning: web.example.test. A: rule 2 never matches: asns need an ASN "
        "database (--geoip)",
    ]


def test_check_warns_about_geo_rules_no_database_can_match(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Warnings do not fail the check: the rest of the record steers."""
    (tmp_path / "example.test.zone").write_text(GOOD.replace("www ", "ww1 "))
    steering = tmp_path / "example.test.gslb.yaml"
    steering.write_text(STEERED.split("  api:")[0])
    assert main(["check", "--zones", str(tmp_path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[:2] == [
        f"{steering}:2: warning: web.example.test. A: rule 1 never matches: geos need a City or "
        "Country database (--geoip)",
        f"{steering}:2: warning: web.example.test. A: rule 2 never matches: asns need an ASN "
        "database (--geoip)",
    ]
    assert out[-1] == f"{steering}: 1 steered record: ok"


def test_check_with_a_city_database_warns_only_about_asns(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.unit.load.test_geoip import city, write

    (tmp_path / "example.test.zone").write_text(GOOD.replace("www ", "ww1 "))
    steering = tmp_path / "example.test.gslb.yaml"
    steering.write_text(STEERED.split("  api:")[0])
    database = write(tmp_path / "city.mmdb", "GeoLite2-City", {"192.0.2.0/24": city("EU", "FR")})
    assert main(["check", "--zones", str(tmp_path), "--geoip", str(database)]) == 0
    assert [line for line in capsys.readouterr().out.splitlines() if "warning" in line] == [
        f"{steering}:2: warning: web.example.test. A: rule 2 never matches: asns need an ASN "
        "database (--geoip)",
    ]
