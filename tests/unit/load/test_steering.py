"""Steering YAML: loading into the model, and every validation as an exact problem list.

Like octoDNS's record tests, each case asserts the *whole* list of `line: message`
problems, so a new or changed message is a visible change to the contract."""

from __future__ import annotations

import ipaddress
import textwrap
from pathlib import Path

import pytest

from gslb.load.steering import load_all_steering, load_steering
from gslb.load.zonefile import load_zone_file, load_zones
from gslb.steering.model import AdminState, AllDown, PolicyStep
from gslb.steering.policies import POLICIES

REPO = Path(__file__).resolve().parents[3]
ZONE = """\
$ORIGIN example.test.
$TTL 300
@        IN SOA ns1.example.test. hostmaster.example.test. 1 7200 3600 1209600 300
         IN NS  ns1.example.test.
ns1      IN A   192.0.2.53
static   IN A   192.0.2.80
alias    IN CNAME static.example.test.
txt      IN TXT "hello"
child    IN NS  ns1.child.example.test.
ns1.child IN A  192.0.2.54
"""


@pytest.fixture
def zone(tmp_path: Path):
    path = tmp_path / "example.test.zone"
    path.write_text(ZONE)
    loaded, problems = load_zone_file(path)
    assert problems == [] and loaded is not None
    return loaded


def load(tmp_path: Path, zone, text: str):
    path = tmp_path / "example.test.gslb.yaml"
    path.write_text(textwrap.dedent(text))
    records, problems = load_steering(path, zone)
    for problem in problems:
        assert problem.file == str(path)
    return records, [f"{p.line}: {p.message}" for p in problems]


def problems(tmp_path: Path, zone, text: str) -> list[str]:
    return load(tmp_path, zone, text)[1]


# --- what loads ---------------------------------------------------------------------------


def test_demo_file_loads_clean() -> None:
    zones_dir = REPO / "zones"
    report = load_zones(zones_dir)
    assert report.problems == []
    steered, problems = load_all_steering(zones_dir, report.zones)
    assert problems == []
    assert sorted(steered) == [("api.example.com.", "A"), ("checked.example.com.", "A"),
                               ("geo.example.com.", "A"), ("www2.example.com.", "A")]
    www2 = steered[("www2.example.com.", "A")]
    assert [(m.value, m.weight) for m in www2.pools["web"].members] == [
        ("192.0.2.10", 3), ("192.0.2.11", 1), ("192.0.2.12", 0)]
    api = steered[("api.example.com.", "A")]
    assert api.pools["main"].fallback == "dr"
    assert [m.priority for m in api.pools["main"].members] == [1, 2]
    assert api.all_down is AllDown.BACKUP_POOL and api.all_down_pool == "dr"
    geo = steered[("geo.example.com.", "A")]
    assert geo.rules[0].subnets == (ipaddress.ip_network("10.0.0.0/8"),)
    assert geo.rules[-1].catch_all and geo.select == 2
    assert www2.source == f"{zones_dir / 'example.com.gslb.yaml'}:16"


def test_a_full_record_becomes_the_model(tmp_path: Path, zone) -> None:
    records, found = load(tmp_path, zone, """\
        datacenters:
          us-east: {latitude: 38.9, longitude: -77.0}
          eu-west: {latitude: 53.3, longitude: -6.3}
        records:
          www:
            type: a
            ttl: 60
            pools:
              us:
                fallback: eu
                members:
                  - {value: 192.0.2.10, weight: 3, priority: 2, datacenter: us-east, check: us-web-1}
                  - {value: 192.0.2.11, state: drained, datacenter: us-east}
              eu:
                members: [{value: 198.51.100.10, datacenter: eu-west}]
            rules:
              - {subnets: [10.0.0.0/8, "2001:db8::/32"], pool: us}
              - {geos: [eu, NO, NA-US-CA], asns: [64500], pool: eu}
              - pool: us
            policies: [health, {priority: {min_healthy: 2}}, {latency: {tolerance_ms: 10}}, closest, weighted]
            select: 2
            all_down: backup_pool
            all_down_pool: eu
          "@":
            - type: AAAA
              pools: {p: {members: ["2001:DB8::0:1"]}}
              rules: [{pool: p}]
          cname.example.test.:
            type: CNAME
            pools: {p: {members: [Target, elsewhere.example.net.]}}
            rules: [{pool: p}]
        """)
    assert found == []
    www, apex, cname = records
    assert (www.owner, www.rdtype, www.ttl, www.select) == ("www.example.test.", "A", 60, 2)
    assert www.pools["us"].members[0].check == "us-web-1"
    assert www.pools["us"].members[1].state is AdminState.DRAINED
    assert www.pools["us"].members[1].weight == 1 and www.pools["us"].members[1].priority == 1
    assert www.pools["eu"].members[0].datacenter == "eu-west"
    assert www.rules[1].geos == ("EU", "NO", "NA-US-CA")  # NO is Norway, not YAML 1.1 false
    assert www.rules[1].asns == (64500,)
    assert www.chain == (PolicyStep("health"), PolicyStep("priority", (("min_healthy", 2),)),
                         PolicyStep("latency", (("tolerance_ms", 10),)), PolicyStep("closest"),
                         PolicyStep("weighted"))
    assert www.datacenters["eu-west"].latitude == 53.3
    assert www.source == f"{tmp_path / 'example.test.gslb.yaml'}:5"
    assert (apex.owner, apex.rdtype, apex.ttl) == ("example.test.", "AAAA", 30)
    assert apex.pools["p"].members[0].value == "2001:db8::1"
    assert apex.chain == (PolicyStep("health"), PolicyStep("priority"), PolicyStep("weighted"))
    assert apex.all_down is AllDown.FAIL_OPEN
    assert [m.value for m in cname.pools["p"].members] == ["target.example.test.", "elsewhere.example.net."]


def test_yaml_anchors_and_merge_keys(tmp_path: Path, zone) -> None:
    records, found = load(tmp_path, zone, """\
        records:
          one: &base
            type: A
            ttl: 10
            pools: {p: {members: [192.0.2.1]}}
            rules: [{pool: p}]
          two:
            <<: *base
            ttl: 20
        """)
    assert found == []
    assert [(r.owner, r.ttl) for r in records] == [("one.example.test.", 10), ("two.example.test.", 20)]


# --- every validation -------------------------------------------------------------------

W = "www.example.test. A"


def test_unknown_pools(tmp_path: Path, zone) -> None:
    assert problems(tmp_path, zone, """\
        records:
          www:
            type: A
            pools:
              a: {fallback: nope, members: [192.0.2.1]}
            rules:
              - {subnets: [10.0.0.0/8], pool: b}
              - pool: a
            all_down: backup_pool
            all_down_pool: c
        """) == [
        f'5: {W}: pool "a": fallback "nope" is not a pool',
        f'7: {W}: rule 1: pool "b" is not a pool',
        f'10: {W}: all_down_pool "c" is not a pool',
    ]


def test_fallback_loops(tmp_path: Path, zone) -> None:
    assert problems(tmp_path, zone, """\
        records:
          www:
            type: A
            pools:
              a: {fallback: b, members: [192.0.2.1]}
              b: {fallback: c, members: [192.0.2.2]}
              c: {fallback: a, members: [192.0.2.3]}
              d: {fallback: d, members: [192.0.2.4]}
              e: {fallback: a, members: [192.0.2.5]}
            rules:
              - {subnets: [10.0.0.0/8], pool: d}
              - {subnets: [192.0.2.0/24], pool: e}
              - pool: a
        """) == [
        f'5: {W}: pool "a": fallback loop: a -> b -> c -> a',
        f'8: {W}: pool "d": fallback loop: d -> d',
    ]


def test_rules_after_the_catch_all_and_a_missing_catch_all(tmp_path: Path, zone) -> None:
    assert problems(tmp_path, zone, """\
        records:
          www:
            type: A
            pools: {a: {members: [192.0.2.1]}, b: {members: [192.0.2.2]}}
            rules:
              - pool: a
              - {subnets: [10.0.0.0/8], pool: b}
              - pool: b
          www2:
            type: A
            pools: {a: {members: [192.0.2.1]}}
            rules:
              - {subnets: [10.0.0.0/8], pool: a}
        """) == [
        f"7: {W}: rule 2 comes after the catch-all rule 1 and is never used",
        f"8: {W}: rule 3 comes after the catch-all rule 1 and is never used",
        "13: www2.example.test. A: rules must end with a catch-all rule (only a pool: - {pool: NAME})",
    ]


def test_unreachable_rules(tmp_path: Path, zone) -> None:
    assert problems(tmp_path, zone, """\
        records:
          www:
            type: A
            pools: {a: {members: [192.0.2.1]}, b: {members: [192.0.2.2]}}
            rules:
              - {subnets: [10.0.0.0/9], pool: a}
              - {subnets: [10.128.0.0/9], geos: [EU, US], asns: [64500], pool: a}
              - {subnets: [10.0.0.0/8], pool: a}
              - {geos: [EU-FR, NA-US-CA], asns: [64500], pool: b}
              - {geos: [FR], pool: b}
              - {subnets: ["2001:db8::/32"], pool: b}
              - pool: a
        """) == [
        f"8: {W}: rule 3 is unreachable: earlier rules match every client it matches",
        f"9: {W}: rule 4 is unreachable: earlier rules match every client it matches",
    ]


def test_overlapping_subnets_to_another_pool(tmp_path: Path, zone) -> None:
    assert problems(tmp_path, zone, """\
        records:
          www:
            type: A
            pools: {a: {members: [192.0.2.1]}, b: {members: [192.0.2.2]}}
            rules:
              - {subnets: [10.1.0.0/16, 192.168.0.0/16], pool: a}
              - {subnets: [10.0.0.0/8], pool: b}
              - {subnets: [192.168.5.0/24, 172.16.0.0/12], pool: b}
              - {subnets: [10.1.2.0/24], pool: a}
              - pool: a
        """) == [
        # rule 2's 10.0.0.0/8 after rule 1's 10.1.0.0/16 is the usual override: no problem
        f'8: {W}: rule 3: subnet 192.168.5.0/24 is inside subnet 192.168.0.0/16 of rule 1, '
        'which goes to pool "a", so it never matches',
        f"9: {W}: rule 4 is unreachable: earlier rules match every client it matches",
    ]


def test_steered_names_that_clash_with_static_data(tmp_path: Path, zone) -> None:
    rest = "pools: {p: {members: [192.0.2.1]}}, rules: [{pool: p}]"
    cname = "pools: {p: {members: [target.example.net.]}}, rules: [{pool: p}]"
    assert problems(tmp_path, zone, f"""\
        records:
          static: {{type: A, {rest}}}
          alias: {{type: A, {rest}}}
          txt: {{type: CNAME, {cname}}}
          "@": {{type: CNAME, {cname}}}
          child: {{type: A, {rest}}}
          www.child: {{type: A, {rest}}}
          ns1: {{type: AAAA, pools: {{p: {{members: ["2001:db8::1"]}}}}, rules: [{{pool: p}}]}}
          fresh: {{type: CNAME, {cname}}}
        """) == [
        "2: static.example.test. A: the zone also has A records at this name",
        "3: alias.example.test. A: the zone has a CNAME at this name",
        "4: txt.example.test. CNAME: the zone also has data at this name (TXT)",
        "5: example.test. CNAME: the zone also has data at this name (NS, SOA)",
        "6: child.example.test. A: the name is at the zone cut child.example.test. (delegated away)",
        "7: www.child.example.test. A: the name is below the zone cut child.example.test. (delegated away)",
    ]


def test_a_steered_cname_beside_another_steered_type(tmp_path: Path, zone) -> None:
    records, found = load(tmp_path, zone, """\
        records:
          www:
            - {type: A, pools: {p: {members: [192.0.2.1]}}, rules: [{pool: p}]}
            - {type: CNAME, pools: {p: {members: [web]}}, rules: [{pool: p}]}
            - {type: A, pools: {p: {members: [192.0.2.2]}}, rules: [{pool: p}]}
          api: {type: A, pools: {p: {members: [192.0.2.1]}}, rules: [{pool: p}]}
          API.example.test.: {type: A, pools: {p: {members: [192.0.2.1]}}, rules: [{pool: p}]}
        """)
    assert found == [
        "4: www.example.test. CNAME: a steered CNAME cannot share its name with steered A",
        "5: www.example.test. A: already defined at line 3",
        "7: api.example.test. A: already defined at line 6",
    ]
    assert [r.owner for r in records] == ["api.example.test."]


def test_member_numbers_out_of_range(tmp_path: Path, zone) -> None:
    assert problems(tmp_path, zone, """\
        records:
          www:
            type: A
            ttl: 86401
            pools:
              p:
                members:
                  - {value: 192.0.2.1, weight: 1001, priority: -1}
                  - {value: 192.0.2.2, weight: -1, priority: 0}
                  - {value: 192.0.2.3, weight: 1000}
                  - {value: 192.0.2.4, weight: 0}
                  - {value: 192.0.2.5, weight: heavy, priority: 1.5}
            rules: [{pool: p}]
            select: 0
          www2:
            type: CNAME
            ttl: -1
            pools: {p: {members: [a.example.net.]}}
            rules: [{pool: p}]
            select: 2
        """) == [
        f"4: {W}: ttl 86401 is out of range 0..86400",
        f'8: {W}: pool "p" member 1: weight 1001 is out of range 0..1000',
        f'8: {W}: pool "p" member 1: priority -1 is out of range 0..1000',
        f'9: {W}: pool "p" member 2: weight -1 is out of range 0..1000',
        f'12: {W}: pool "p" member 5: weight must be an integer, not "heavy"',
        f'12: {W}: pool "p" member 5: priority must be an integer, not a number',
        f"14: {W}: select 0 is out of range 1..64",
        "17: www2.example.test. CNAME: ttl -1 is out of range 0..86400",
        "20: www2.example.test. CNAME: select 2: a CNAME answer has exactly one target",
    ]


def test_policies_unknown_names_and_params(tmp_path: Path, zone) -> None:
    assert problems(tmp_path, zone, """\
        records:
          www:
            type: A
            pools: {p: {members: [192.0.2.1]}}
            rules: [{pool: p}]
            policies:
              - wieghted
              - {priority: {min_healty: 2}}
              - {priority: {min_healthy: 0}}
              - {latency: {tolerance_ms: -5}}
              - {health: {strict: true}}
              - {first_n: {n: 2}}
              - {first_n: {n: two}}
              - [health]
        """) == [
        f'7: {W}: unknown policy "wieghted" (expected one of: health, priority, weighted, closest, '
        "latency, hash, first_n)",
        f'8: {W}: policy priority: unknown parameter "min_healty" (expected: min_healthy)',
        f"9: {W}: policy priority: min_healthy must be an integer 1..1000",
        f"10: {W}: policy latency: tolerance_ms must be a number 0..1000000",
        f"11: {W}: policy health: takes no parameters",
        f"13: {W}: policy first_n: n must be an integer 1..1000",
        f"14: {W}: a policy must be a name or {{name: {{parameter: value}}}}",
    ]


def test_datacenters_and_closest(tmp_path: Path, zone) -> None:
    assert problems(tmp_path, zone, """\
        datacenters:
          us-east: {latitude: 38.9, longitude: -77.0}
          lab: {}
          half: {latitude: 10}
          far: {latitude: 91, longitude: -181}
        records:
          www:
            type: A
            pools:
              p:
                members:
                  - {value: 192.0.2.1, datacenter: us-east}
                  - {value: 192.0.2.2, datacenter: lab}
                  - {value: 192.0.2.3}
                  - {value: 192.0.2.4, datacenter: moon}
            rules: [{pool: p}]
            policies: [health, closest]
        """) == [
        '4: datacenter "half": latitude and longitude must be given together',
        '5: datacenter "far": latitude 91 is out of range -90..90',
        '5: datacenter "far": longitude -181 is out of range -180..180',
        f'15: {W}: pool "p" member 4: unknown datacenter "moon"',
        f'17: {W}: policy closest: datacenter "lab" of member 192.0.2.2 has no coordinates',
        f'17: {W}: policy closest: member 192.0.2.3 of pool "p" has no datacenter',
    ]


def test_member_values(tmp_path: Path, zone) -> None:
    assert problems(tmp_path, zone, """\
        records:
          v4:
            type: A
            pools: {p: {members: [192.0.2.256, "2001:db8::1", www, 192.0.2.1, 192.0.2.1]}}
            rules: [{pool: p}]
          v6:
            type: AAAA
            pools: {p: {members: [192.0.2.1, "2001:db8::g", {value: ~}]}}
            rules: [{pool: p}]
          name:
            type: CNAME
            pools: {p: {members: ["two words", "a..b", {weight: 2}]}}
            rules: [{pool: p}]
        """) == [
        '4: v4.example.test. A: pool "p" member 1: value "192.0.2.256" is not an IPv4 address',
        '4: v4.example.test. A: pool "p" member 2: value "2001:db8::1" is not an IPv4 address',
        '4: v4.example.test. A: pool "p" member 3: value "www" is not an IPv4 address',
        '4: v4.example.test. A: pool "p" member 5: 192.0.2.1 is already member 4 of this pool',
        '8: v6.example.test. AAAA: pool "p" member 1: value "192.0.2.1" is not an IPv6 address',
        '8: v6.example.test. AAAA: pool "p" member 2: value "2001:db8::g" is not an IPv6 address',
        '8: v6.example.test. AAAA: pool "p" member 3: value must be a string, not empty',
        '12: name.example.test. CNAME: pool "p" member 1: value "two words" is not a valid name',
        '12: name.example.test. CNAME: pool "p" member 2: value "a..b" is not a valid name: '
        "A DNS label is empty.",
        '12: name.example.test. CNAME: pool "p" member 3: missing key "value"',
    ]


def test_unknown_and_duplicate_keys(tmp_path: Path, zone) -> None:
    assert problems(tmp_path, zone, """\
        zone: example.test.
        datacenter: {}
        datacenters:
          dc: {lat: 1}
        records:
          www:
            type: A
            tll: 30
            pools:
              p:
                fallbak: q
                members: [{value: 192.0.2.1, wieght: 2}]
              q: {members: [192.0.2.2]}
            rules: [{pool: p, subnet: 10.0.0.0/8}, {pool: q}]
            ttl: 30
            ttl: 40
        """) == [
        '2: unknown key "datacenter" (expected one of: checks, datacenters, records, zone)',
        '4: datacenter "dc": unknown key "lat" (expected one of: latitude, longitude)',
        f'8: {W}: unknown key "tll" (expected one of: all_down, all_down_pool, policies, pools, '
        "rules, select, transfer, ttl, type)",
        f'11: {W}: pool "p": unknown key "fallbak" (expected one of: fallback, members)',
        f'12: {W}: pool "p" member 1: unknown key "wieght" (expected one of: check, datacenter, '
        "priority, probe, state, value, weight)",
        f'14: {W}: rule 1: unknown key "subnet" (expected one of: asns, geos, pool, subnets)',
        f'16: {W}: duplicate key "ttl" (first at line 15)',
    ]


def test_missing_and_empty_parts(tmp_path: Path, zone) -> None:
    assert problems(tmp_path, zone, """\
        records:
          a: {type: A}
          b: {type: A, pools: {}, rules: []}
          c: {type: A, pools: {p: {}}, rules: [{subnets: [10.0.0.0/8]}, {pool: p}]}
          d: {type: A, pools: {p: {members: []}}, rules: [{pool: p}], policies: []}
          e: {pools: {p: {members: [192.0.2.1]}}}
          f: {type: MX}
          g: [1]
        """) == [
        '2: a.example.test. A: missing key "pools"',
        '2: a.example.test. A: missing key "rules" (end them with a catch-all: - {pool: NAME})',
        "3: b.example.test. A: pools is empty",
        "3: b.example.test. A: rules is empty",
        '4: c.example.test. A: pool "p": missing key "members"',
        '4: c.example.test. A: rule 1: missing key "pool"',
        '5: d.example.test. A: pool "p": members is empty',
        "5: d.example.test. A: policies is empty",
        '6: e.example.test.: missing key "type" (A, AAAA or CNAME)',
        '7: f.example.test.: type "MX" cannot be steered (expected A, AAAA or CNAME)',
        "8: g.example.test.: a steered record must be a mapping, not an integer",
    ]


def test_rule_conditions(tmp_path: Path, zone) -> None:
    assert problems(tmp_path, zone, """\
        records:
          www:
            type: A
            pools: {p: {members: [192.0.2.1]}}
            rules:
              - {subnets: [10.0.0.1/8, nonsense], pool: p}
              - {geos: [Europe, XX-FR, EU-FR-IDF-X], pool: p}
              - {asns: [-1, 4294967296, AS64500], pool: p}
              - pool: p
          all:
            type: A
            pools: {p: {members: [192.0.2.1]}}
            rules: [{pool: p}]
            all_down: everything
            all_down_pool: p
        """) == [
        f'6: {W}: rule 1: subnet "10.0.0.1/8" is not a network: 10.0.0.1/8 has host bits set',
        f"6: {W}: rule 1: subnet \"nonsense\" is not a network: 'nonsense' does not appear to be an "
        "IPv4 or IPv6 network",
        f'7: {W}: rule 2: geo "Europe" is not a continent (EU), country (EU-FR or FR) or subdivision (NA-US-CA)',
        f'7: {W}: rule 2: geo "XX-FR" is not a continent (EU), country (EU-FR or FR) or subdivision (NA-US-CA)',
        f'7: {W}: rule 2: geo "EU-FR-IDF-X" is not a continent (EU), country (EU-FR or FR) or subdivision '
        "(NA-US-CA)",
        f"8: {W}: rule 3: asn -1 is not a number in 0..4294967295",
        f"8: {W}: rule 3: asn 4294967296 is not a number in 0..4294967295",
        f"8: {W}: rule 3: asn AS64500 is not a number in 0..4294967295",
        '14: all.example.test. A: all_down "everything" is not one of fail_open, backup_pool, '
        "last_known_good, nodata, servfail",
    ]


def test_all_down_pool_pairing_and_unused_pools(tmp_path: Path, zone) -> None:
    assert problems(tmp_path, zone, """\
        records:
          www:
            type: A
            pools: {a: {members: [192.0.2.1]}, b: {members: [192.0.2.2]}, c: {fallback: a, members: [192.0.2.3]}}
            rules: [{pool: a}]
            all_down: backup_pool
          api:
            type: A
            pools: {a: {members: [192.0.2.1]}}
            rules: [{pool: a}]
            all_down_pool: a
        """) == [
        f'4: {W}: pool "b" is never used (no rule, fallback or all_down_pool names it)',
        f'4: {W}: pool "c" is never used (no rule, fallback or all_down_pool names it)',
        f"6: {W}: all_down: backup_pool needs all_down_pool",
        "11: api.example.test. A: all_down_pool is only used with all_down: backup_pool",
    ]


def test_names_outside_the_zone_and_wildcards(tmp_path: Path, zone) -> None:
    rest = "type: A, pools: {p: {members: [192.0.2.1]}}, rules: [{pool: p}]"
    records, found = load(tmp_path, zone, f"""\
        records:
          www.example.org.: {{{rest}}}
          "*.apps": {{{rest}}}
          ok.example.test.: {{{rest}}}
        """)
    assert found == ["2: www.example.org. is outside the zone example.test.",
                     "3: *.apps.example.test.: wildcard names cannot be steered"]
    assert [r.owner for r in records] == ["ok.example.test."]


def test_file_level_problems(tmp_path: Path, zone) -> None:
    assert problems(tmp_path, zone, "records:\n  www: {type: A\n") == [
        "3: invalid YAML: did not find expected ',' or '}'"]
    assert problems(tmp_path, zone, "- 1\n") == ["1: the file must be a mapping, not a list"]
    assert problems(tmp_path, zone, "") == ['1: the file is empty (expected a mapping with "records")']
    assert problems(tmp_path, zone, "datacenters: {}\n") == ['1: missing key "records"']
    assert problems(tmp_path, zone, "records: [1]\n") == ["1: records must be a mapping, not a list"]
    assert problems(tmp_path, zone, "zone: example.org.\nrecords: {}\n") == [
        "1: zone example.org. does not match example.test., the zone it was loaded for"]
    missing = tmp_path / "missing.gslb.yaml"
    records, found = load_steering(missing, zone)
    assert records == [] and [p.message.split(":")[0] for p in found] == ["cannot read steering file"]


def test_load_all_matches_files_to_zones(tmp_path: Path, zone) -> None:
    rest = "{type: A, pools: {p: {members: [192.0.2.1]}}, rules: [{pool: p}]}"
    (tmp_path / "example.test.gslb.yaml").write_text(f"records:\n  www: {rest}\n")
    (tmp_path / "more.gslb.yaml").write_text(f"zone: example.test.\nrecords:\n  api: {rest}\n  www: {rest}\n")
    (tmp_path / "orphan.test.gslb.yaml").write_text(f"records:\n  www: {rest}\n")
    steered, found = load_all_steering(tmp_path, [zone])
    assert sorted(steered) == [("api.example.test.", "A"), ("www.example.test.", "A")]
    first = tmp_path / "example.test.gslb.yaml"
    assert [str(p) for p in found] == [
        f"{tmp_path / 'more.gslb.yaml'}:4: www.example.test. A is already steered in {first}:2",
        f"{tmp_path / 'orphan.test.gslb.yaml'}:1: no zone orphan.test. is loaded for this file",
    ]


@pytest.mark.parametrize("name", sorted(POLICIES))
def test_every_registered_policy_and_parameter_loads(tmp_path: Path, zone, name: str) -> None:
    """The loader knows the policies only through the engine's registry
    (gslb.steering.policies.POLICIES): each one, with each of its parameters, loads."""
    params = ", ".join(f"{param.name}: 1" for param in POLICIES[name].params)
    step = f"{{{name}: {{{params}}}}}" if params else name
    records, found = load(tmp_path, zone, f"""\
        datacenters:
          dc: {{latitude: 1, longitude: 2}}
        records:
          www:
            type: A
            pools: {{p: {{members: [{{value: 192.0.2.1, datacenter: dc}}]}}}}
            rules: [{{pool: p}}]
            policies: [health, {step}]
        """)
    assert found == []
    assert records[0].chain[-1].name == name
    assert {key for key, _ in records[0].chain[-1].params} == {p.name for p in POLICIES[name].params}


# --- what a zone transfer carries (issue 7 item 3) ----------------------------------------


def test_transfer_defaults_to_what_any_client_may_get(tmp_path: Path, zone) -> None:
    """The catch-all pool's enabled members with a positive weight, of the preferred
    priority when `priority` is in the chain; never a subnet-only pool's member."""
    records, found = load(tmp_path, zone, """\
        records:
          www:
            type: A
            pools:
              internal: {members: [10.0.0.80]}
              public:
                members:
                  - {value: 192.0.2.1, priority: 1}
                  - {value: 192.0.2.2, priority: 1, weight: 0}
                  - {value: 192.0.2.3, priority: 1, state: disabled}
                  - {value: 192.0.2.4, priority: 1, state: drained}
                  - {value: 192.0.2.5, priority: 1, weight: 2}
                  - {value: 192.0.2.6, priority: 2}
            rules: [{subnets: [10.0.0.0/8], pool: internal}, {pool: public}]
          cdn:
            type: CNAME
            pools: {p: {members: [a.example.net., b.example.net.]}}
            rules: [{pool: p}]
        """)
    assert found == []
    by_owner = {r.owner: r for r in records}
    assert by_owner["www.example.test."].transfer == ("192.0.2.1", "192.0.2.5")
    assert by_owner["cdn.example.test."].transfer == ("a.example.net.",)


def test_transfer_explicit_values_and_their_problems(tmp_path: Path, zone) -> None:
    records, found = load(tmp_path, zone, """\
        records:
          www:
            type: A
            transfer: [192.0.2.9, 192.0.2.1]
            pools: {p: {members: [192.0.2.1, {value: 192.0.2.2, state: disabled}]}}
            rules: [{pool: p}]
          hidden:
            type: A
            transfer: []
            pools: {p: {members: [192.0.2.1]}}
            rules: [{pool: p}]
          bad:
            type: A
            transfer: [192.0.2.2, nope]
            pools: {p: {members: [192.0.2.1, {value: 192.0.2.2, weight: 0}]}}
            rules: [{pool: p}]
          weightless:
            type: A
            pools: {p: {members: [{value: 192.0.2.1, weight: 0}]}}
            rules: [{pool: p}]
          failover:
            type: A
            pools:
              main: {members: [{value: 192.0.2.1, state: drained}], fallback: dr}
              dr: {members: [192.0.2.7]}
            rules: [{pool: main}]
          drained:
            type: A
            pools: {p: {members: [{value: 192.0.2.1, state: drained}, {value: 192.0.2.2, state: drained}]}}
            rules: [{pool: p}]
        """)
    # without `transfer:`: a drain moves what secondaries get to the fallback pool, or to
    # the drained members when nothing else is enabled; a name of weightless members is
    # left out of transfers; none of these is a problem
    assert {r.owner: r.transfer for r in records} == {
        "www.example.test.": ("192.0.2.9", "192.0.2.1"), "hidden.example.test.": (),
        "weightless.example.test.": (), "failover.example.test.": ("192.0.2.7",),
        "drained.example.test.": ("192.0.2.1", "192.0.2.2")}
    assert found == [
        "14: bad.example.test. A: transfer: 192.0.2.2 is disabled or has weight 0 in every pool, "
        "so a secondary must not serve it",
        '14: bad.example.test. A: transfer: value "nope" is not an IPv4 address',
    ]


def test_yml_spelling_and_broken_records_are_reported(tmp_path: Path, zone) -> None:
    """`.gslb.yml` is read too; records left out for a problem are named (by owner and
    type, None when the type is unreadable) so a reload can keep their last good version."""
    from gslb.load.steering import load_steering_files

    (tmp_path / "example.test.gslb.yml").write_text(textwrap.dedent("""\
        records:
          good: {type: A, pools: {p: {members: [192.0.2.1]}}, rules: [{pool: p}]}
          typo: {type: A, pools: {p: {fallback: q, members: [192.0.2.1]}}, rules: [{pool: p}]}
          notype: {type: MX, pools: {p: {members: [192.0.2.1]}}, rules: [{pool: p}]}
        """))
    (tmp_path / "broken.test.gslb.yaml").write_text("records: [\n")
    result = load_steering_files(tmp_path, [zone])
    assert list(result.records) == [("good.example.test.", "A")]
    assert result.broken == {("typo.example.test.", "A"): f"{tmp_path}/example.test.gslb.yml:3",
                             ("notype.example.test.", None): f"{tmp_path}/example.test.gslb.yml:4"}
    assert result.broken_files == {str(tmp_path / "broken.test.gslb.yaml")}
