"""gslb.load.geoip against small MaxMind databases written here with mmdb-writer."""

from __future__ import annotations

import os
from dataclasses import replace
from ipaddress import ip_address, ip_network
from pathlib import Path
from typing import Any

import maxminddb
import pytest
from mmdb_writer import MMDBWriter
from netaddr import IPSet

from gslb.load.geoip import GeoDatabases, GeoIPError, location_from_record, open_databases
from gslb.steering.geo import UNKNOWN, RuleMap
from gslb.steering.model import Location, Rule


def city(continent: str, country: str, subdivision: str | None = None,
         lat: float | None = None, lon: float | None = None) -> dict[str, Any]:
    record: dict[str, Any] = {
        "continent": {"code": continent, "geoname_id": 1, "names": {"en": continent}},
        "country": {"iso_code": country, "geoname_id": 2, "names": {"en": country}},
        "registered_country": {"iso_code": country},
    }
    if subdivision:
        record["subdivisions"] = [{"iso_code": subdivision, "names": {"en": subdivision}},
                                  {"iso_code": "SMALLER"}]
    if lat is not None:
        record["location"] = {"latitude": lat, "longitude": lon, "accuracy_radius": 100}
    return record


def write(path: Path, database_type: str, networks: dict[str, dict[str, Any]],
          ip_version: int = 6) -> Path:
    writer = MMDBWriter(ip_version=ip_version, database_type=database_type, languages=["en"],
                        description="gslb test", ipv4_compatible=ip_version == 6)
    for network, record in networks.items():
        writer.insert_network(IPSet([network]), record)
    tmp = path.with_suffix(".tmp")
    writer.to_db_file(str(tmp))
    os.replace(tmp, path)  # as geoipupdate does: readers map the file
    return path


CITY = {
    "192.0.2.0/25": city("EU", "FR", "IDF", 48.86, 2.35),
    "192.0.2.128/25": city("EU", "FR", "IDF", 48.86, 2.35),
    "198.51.100.0/25": city("EU", "FR", "IDF", 48.86, 2.35),
    "198.51.100.128/25": city("NA", "US", "CA", 37.77, -122.42),
    "2001:db8::/33": city("AS", "JP", None, 35.68, 139.69),
    "2001:db8:8000::/33": city("AS", "JP", None, 35.68, 139.69),
}
ASN = {
    "192.0.2.0/24": {"autonomous_system_number": 64500, "autonomous_system_organization": "Example"},
    "198.51.100.0/26": {"autonomous_system_number": 64501},
    "203.0.113.0/24": {"autonomous_system_number": 64502},
}


@pytest.fixture
def databases(tmp_path: Path) -> tuple[Path, Path]:
    return (write(tmp_path / "GeoLite2-City.mmdb", "GeoLite2-City", CITY),
            write(tmp_path / "GeoLite2-ASN.mmdb", "GeoLite2-ASN", ASN, ip_version=4))


def test_location_from_record() -> None:
    assert location_from_record(city("NA", "US", "CA", 1.5, -2.5), "City") == Location(
        continent="NA", country="US", subdivision="CA", latitude=1.5, longitude=-2.5, database="City")
    assert location_from_record({"autonomous_system_number": 64500}, "ASN") == Location(
        asn=64500, database="ASN")
    assert location_from_record({}, "X") == Location(database="X")
    assert location_from_record("not a map", "X") == Location(database="X")


def test_locate_merges_city_and_asn(databases: tuple[Path, Path]) -> None:
    city_path, asn_path = databases
    geo = GeoDatabases([asn_path, city_path])  # City answers first whatever the order
    assert geo.types == ["GeoLite2-City", "GeoLite2-ASN"]
    assert geo.locate("192.0.2.1") == Location(
        continent="EU", country="FR", subdivision="IDF", asn=64500, latitude=48.86,
        longitude=2.35, database="GeoLite2-City+GeoLite2-ASN", network=ip_network("192.0.2.0/25"))
    # The ASN network is narrower here: the answer holds on the intersection.
    located = geo.locate(ip_address("198.51.100.1"))
    assert (located.country, located.asn, located.network) == ("FR", 64501, ip_network("198.51.100.0/26"))
    located = geo.locate("198.51.100.200")
    assert (located.country, located.subdivision, located.asn, located.database) == (
        "US", "CA", None, "GeoLite2-City")
    assert located.network == ip_network("198.51.100.128/25")
    located = geo.locate("203.0.113.9")
    assert (located.country, located.asn, located.database) == (None, 64502, "GeoLite2-ASN")
    located = geo.locate("2001:db8:1::1")  # the ASN database is IPv4 only
    assert (located.continent, located.country, located.network) == ("AS", "JP", ip_network("2001:db8::/33"))
    assert geo.locate("10.0.0.1") is UNKNOWN
    assert geo.locate("2001:db9::1") is UNKNOWN


def test_a_country_database_works_alone(tmp_path: Path) -> None:
    path = write(tmp_path / "GeoLite2-Country.mmdb", "GeoLite2-Country",
                 {"192.0.2.0/24": {"continent": {"code": "EU"}, "country": {"iso_code": "DE"}}})
    geo = GeoDatabases([path])
    assert geo.locate("192.0.2.7") == Location(continent="EU", country="DE", database="GeoLite2-Country",
                                               network=ip_network("192.0.2.0/24"))


def test_table_holds_every_network_and_agrees_with_locate(databases: tuple[Path, Path]) -> None:
    geo = GeoDatabases(databases)
    table = geo.table()
    # Neighbouring networks that say the same are one run (the two /25s in FR with the
    # same ASN); the ASN network cuts the City one; a network of one database only keeps
    # that database's fields.
    entries = [(str(network), loc.country, loc.asn, loc.database) for network, loc in table]
    assert entries == [
        ("192.0.2.0/24", "FR", 64500, "GeoLite2-City+GeoLite2-ASN"),
        ("198.51.100.0/26", "FR", 64501, "GeoLite2-City+GeoLite2-ASN"),
        ("198.51.100.64/26", "FR", None, "GeoLite2-City"),
        ("198.51.100.128/25", "US", None, "GeoLite2-City"),
        ("203.0.113.0/24", None, 64502, "GeoLite2-ASN"),
        ("2001:db8::/32", "JP", None, "GeoLite2-City"),
    ]
    for address in ("192.0.2.1", "192.0.2.200", "198.51.100.1", "198.51.100.70", "198.51.100.130",
                    "203.0.113.1", "2001:db8::1", "2001:db8:ffff::1", "10.0.0.1", "::1"):
        located, tabled = geo.locate(address), table.lookup(address)
        assert replace(located, latitude=None, longitude=None, network=None) == replace(
            tabled, network=None), address
        if located.network is not None:  # the run holds at least where the databases hold
            assert tabled.network is not None and located.network.subnet_of(tabled.network)  # type: ignore[arg-type]


def test_rule_map_scopes_from_a_database(databases: tuple[Path, Path]) -> None:
    table = GeoDatabases(databases).table()
    rules = RuleMap.build([Rule("fr", geos=("EU-FR",)), Rule("ca", geos=("NA-US-CA",)),
                           Rule("asn", asns=(64502,)), Rule("rest")], table)
    # Two /25s in FR merge to the /24; the /24 split between FR and US does not.
    assert rules.lookup("192.0.2.1") == (0, ip_network("192.0.2.0/24"))
    assert rules.lookup("198.51.100.1") == (0, ip_network("198.51.100.0/25"))
    assert rules.lookup("198.51.100.129") == (1, ip_network("198.51.100.128/25"))
    assert rules.lookup("203.0.113.1") == (2, ip_network("203.0.113.0/24"))
    assert rules.lookup("10.0.0.1") == (3, ip_network("0.0.0.0/1"))
    assert rules.lookup("2001:db8::1") == (3, ip_network("::/0"))  # JP is on the catch-all too
    by_continent = RuleMap.build([Rule("asia", geos=("AS",)), Rule("rest")], table)
    assert by_continent.lookup("2001:db8:9999::1") == (0, ip_network("2001:db8::/32"))


def test_opening_a_missing_or_bad_file_fails(tmp_path: Path) -> None:
    with pytest.raises(GeoIPError, match="no such file"):
        GeoDatabases([tmp_path / "missing.mmdb"])
    bad = tmp_path / "bad.mmdb"
    bad.write_bytes(b"this is not a MaxMind database")
    with pytest.raises(GeoIPError, match="bad.mmdb: cannot open as a MaxMind database"):
        GeoDatabases([bad])
    assert open_databases([]) is None


def test_reload_when_the_file_changes_and_keep_the_old_reader_on_a_bad_file(
        databases: tuple[Path, Path], caplog: pytest.LogCaptureFixture) -> None:
    city_path, asn_path = databases
    geo = GeoDatabases([city_path, asn_path])
    assert geo.reload_if_changed() is False
    assert geo.generation == 0

    write(city_path, "GeoLite2-City", {"192.0.2.0/24": city("EU", "DE")})
    assert geo.reload_if_changed() is True
    assert geo.generation == 1
    assert (geo.locate("192.0.2.1").country, geo.locate("192.0.2.1").asn) == ("DE", 64500)
    assert geo.locate("198.51.100.1").country is None
    assert geo.reload_if_changed() is False

    tmp = city_path.with_suffix(".tmp")
    tmp.write_bytes(b"\0" * 64 + b"corrupt")
    os.replace(tmp, city_path)
    with caplog.at_level("WARNING", logger="gslb.load.geoip"):
        assert geo.reload_if_changed() is False
    assert geo.locate("192.0.2.1").country == "DE"  # the previous reader keeps serving
    assert geo.table().lookup("192.0.2.1").country == "DE"
    assert "cannot open as a MaxMind database" in geo.problems[city_path]
    assert "keeping the previous database" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="gslb.load.geoip"):
        assert geo.reload_if_changed() is False  # not retried until the file changes again
    assert caplog.text == ""

    city_path.unlink()
    assert geo.reload_if_changed() is False
    assert "cannot stat" in geo.problems[city_path]
    assert geo.locate("192.0.2.1").country == "DE"

    write(city_path, "GeoLite2-City", {"192.0.2.0/24": city("EU", "IT")})
    assert geo.reload_if_changed() is True
    assert geo.generation == 2
    assert geo.locate("192.0.2.1").country == "IT"
    assert geo.problems == {}


def test_reload_notices_an_in_place_change_of_mtime_or_size(databases: tuple[Path, Path]) -> None:
    city_path, asn_path = databases
    geo = GeoDatabases([city_path])
    stat = city_path.stat()
    os.utime(city_path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert geo.reload_if_changed() is True
    assert geo.locate("192.0.2.1").country == "FR"


def test_a_new_file_with_a_broken_tree_keeps_the_previous_table_in_use(
        databases: tuple[Path, Path], caplog: pytest.LogCaptureFixture) -> None:
    city_path, asn_path = databases
    geo = GeoDatabases([city_path, asn_path])
    assert geo.table().lookup("192.0.2.1").country == "FR"  # the table is in use
    write(city_path, "GeoLite2-City", {"192.0.2.0/24": city("EU", "DE")})
    broken = bytearray(city_path.read_bytes())
    metadata = maxminddb.open_database(str(city_path)).metadata()
    assert metadata.record_size == 24
    broken[0:3] = (metadata.node_count + 1).to_bytes(3, "big")  # the root's left record: into the separator
    tmp = city_path.with_suffix(".tmp")
    tmp.write_bytes(broken)
    os.replace(tmp, city_path)
    with caplog.at_level("WARNING", logger="gslb.load.geoip"):
        assert geo.reload_if_changed() is False  # its metadata opens, its tree does not walk
    assert "points outside the data section" in geo.problems[city_path]
    assert "keeping the previous database" in caplog.text
    assert geo.table().lookup("192.0.2.1").country == "FR"
    assert geo.locate("192.0.2.1").country == "FR"
    assert geo.generation == 0

    write(city_path, "GeoLite2-City", {"192.0.2.0/24": city("EU", "IT")})
    assert geo.reload_if_changed() is True
    assert geo.table().lookup("192.0.2.1").country == "IT"  # walked by the reload already
    assert geo.problems == {}


def test_a_worker_takes_the_table_another_process_walked(databases: tuple[Path, Path]) -> None:
    """With workers, the supervisor walks a replaced file and shares its table in a
    memory file; a worker re-opens the file (for `locate`) and maps that table, which
    says what a fresh walk of the new file says."""
    city_path, asn_path = databases
    supervisor, worker = GeoDatabases([city_path, asn_path]), GeoDatabases([city_path, asn_path])
    supervisor.table(), worker.table()
    write(city_path, "GeoLite2-City", {"192.0.2.0/24": city("EU", "DE", None, 52.52, 13.40),
                                       "2001:db8::/32": city("AS", "JP")})
    assert supervisor.reload_if_changed()
    shared = supervisor.share()
    assert shared is not None
    assert worker.follow(shared) and worker.generation == 1
    fresh = GeoDatabases([city_path, asn_path]).table()
    for table in (worker.table(), supervisor.table()):
        assert list(table) == list(fresh)
        assert table.lookup("192.0.2.7") == fresh.lookup("192.0.2.7")
        assert table.lookup("2001:db8::1").country == "JP"
    assert worker.locate("192.0.2.7").country == "DE"
    rules = (Rule("de", geos=("DE",)), Rule("rest"))
    assert (RuleMap.build(rules, worker.table()).lookup("192.0.2.7")
            == RuleMap.build(rules, fresh).lookup("192.0.2.7"))
    assert not worker.follow(shared)  # nothing changed since


def test_a_table_that_cannot_be_mapped_changes_nothing(databases: tuple[Path, Path]) -> None:
    city_path, _ = databases
    supervisor, worker = GeoDatabases([city_path]), GeoDatabases([city_path])
    supervisor.table()
    write(city_path, "GeoLite2-City", {"192.0.2.0/24": city("EU", "DE")})
    assert supervisor.reload_if_changed()
    shared = supervisor.share()
    assert shared is not None
    assert not worker.follow(replace(shared, path=str(city_path.parent / "gone")))
    assert worker.generation == 0 and worker.locate("192.0.2.7").country == "FR"
    assert worker.reload_if_changed()  # it walks the file itself
