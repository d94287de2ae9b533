"""The operator's first hour with the API: what the documentation shows works as written,
and input that is not what it should be is refused, not converted."""

from __future__ import annotations

from tests.api.conftest import Api

WWW2 = "/v1/zones/example.com/steered/www2/A"


def test_head_works_where_get_does_and_a_bad_if_match_is_refused(api: Api) -> None:
    got = api.client.get(WWW2, headers=api.auth("read"))
    head = api.client.head(WWW2, headers=api.auth("read"))
    assert head.status_code == 200 and head.content == b""
    assert head.headers["etag"] == got.headers["etag"]
    for bad in ("", "abc", "W/abc", '"a", b'):
        reply = api.client.patch(f"{WWW2}/members/192.0.2.10", json={"weight": 2},
                                 headers={**api.auth(), "If-Match": bad})
        assert reply.status_code == 400 and reply.json()["errors"][0]["field"] == "If-Match", bad
    ok = api.client.patch(f"{WWW2}/members/192.0.2.10", json={"weight": 2},
                          headers={**api.auth(), "If-Match": head.headers["etag"]})
    assert ok.status_code == 200, ok.text


def test_member_shorthand_is_accepted_as_in_the_yaml(api: Api) -> None:
    body = {"type": "A", "pools": {"p": {"members": ["192.0.2.70", {"value": "192.0.2.71"}]}},
            "rules": [{"pool": "p"}], "select": 2}
    reply = api.client.put("/v1/zones/example.com/steered/short/A", headers=api.auth(), json=body)
    assert reply.status_code == 200, reply.text
    assert api.ask("short.example.com") == ["192.0.2.70", "192.0.2.71"]


def test_values_of_the_wrong_type_are_refused_not_converted(api: Api) -> None:
    reply = api.client.put("/v1/zones/example.com/rrsets/t/A", headers=api.auth(),
                           json={"ttl": "300", "rdata": ["192.0.2.1"]})
    assert reply.status_code == 422 and reply.json()["errors"][0]["field"] == "ttl", reply.text


def test_version_zero_is_the_start_of_the_history(api: Api) -> None:
    reply = api.client.get("/v1/versions/0", headers=api.auth("read"))
    assert reply.status_code == 200 and reply.json()["changes"] == [], reply.text
    assert api.client.get("/v1/versions/0/diff/0", headers=api.auth("read")).status_code == 200


def test_draining_a_datacenter_works_on_the_demo_zones(api: Api) -> None:
    """Draining every primary member of a failover record (api.example.com) used to be
    refused: the default `transfer` had nothing left. What secondaries get then is
    defined (the fallback pool's members), so the drain goes through."""
    for dry_run in (True, False):
        reply = api.client.post("/v1/datacenters/us-east/drain", headers=api.auth(),
                                params={"dry_run": dry_run})
        assert reply.status_code == 200, reply.text
        assert reply.json()["changes"], reply.text
    record = api.client.get("/v1/zones/example.com/steered/api/A", headers=api.auth()).json()
    states = {m["value"]: m.get("state") for pool in record["record"]["pools"].values()
              for m in pool["members"] if isinstance(m, dict)}
    assert states["192.0.2.20"] == "drained", states
    undrain = api.client.post("/v1/datacenters/us-east/undrain", headers=api.auth())
    assert undrain.status_code == 200, undrain.text


def test_txt_that_would_split_is_refused_with_the_quoted_form(api: Api) -> None:
    reply = api.client.put("/v1/zones/example.com/rrsets/note/TXT", headers=api.auth(),
                           json={"ttl": 60, "rdata": ["hello world"]})
    assert reply.status_code == 422, reply.text
    assert '"hello world"' in reply.json()["errors"][0]["message"], reply.text
    ok = api.client.put("/v1/zones/example.com/rrsets/note/TXT", headers=api.auth(),
                        json={"ttl": 60, "rdata": ['"hello world"', "single"]})
    assert ok.status_code == 200, ok.text
    assert api.ask("note.example.com", "TXT") == ['"hello world"', '"single"']


def test_malformed_json_names_the_body_in_words(api: Api) -> None:
    reply = api.client.put("/v1/zones/example.com/rrsets/t/A", headers={
        **api.auth(), "Content-Type": "application/json"}, content=b'{"ttl": 60, "rdata": [}')
    assert reply.status_code == 422, reply.text
    error = reply.json()["errors"][0]
    assert error["field"] == "body" and "not valid JSON at character" in error["message"], error


def test_a_path_and_body_type_mismatch_names_the_field(api: Api) -> None:
    body = {"type": "AAAA", "pools": {"p": {"members": ["2001:db8::1"]}}, "rules": [{"pool": "p"}]}
    reply = api.client.put("/v1/zones/example.com/steered/mix/A", headers=api.auth(), json=body)
    assert reply.status_code == 422 and reply.json()["errors"][0]["field"] == "type", reply.text


def test_a_steering_problem_names_its_place_in_the_record(api: Api) -> None:
    body = {"type": "A", "pools": {"p": {"members": [{"value": "192.0.2.1"},
                                                    {"value": "not-an-ip", "weight": 2}]}},
            "rules": [{"pool": "p"}]}
    reply = api.client.put("/v1/zones/example.com/steered/lb/A", headers=api.auth(), json=body)
    assert reply.status_code == 422, reply.text
    fields = [e["field"] for e in reply.json()["errors"]]
    assert len(fields) == 1 and fields[0].startswith("records.lb.pools.p.members.1"), reply.text


def test_a_change_to_one_record_leaves_the_others_byte_for_byte(api: Api) -> None:
    path = api.zones / "example.com.gslb.yaml"
    before = path.read_text()
    assert "policies: [health, {priority: {min_healthy: 1}}, weighted]" in before
    reply = api.client.patch(f"{WWW2}/members/192.0.2.10", headers=api.auth(), json={"weight": 5})
    assert reply.status_code == 200, reply.text
    changed = [(old, new) for old, new in zip(before.splitlines(), path.read_text().splitlines())
               if old != new]
    assert changed == [("          - {value: 192.0.2.10, weight: 3, datacenter: us-east}",
                        "          - {value: 192.0.2.10, weight: 5, datacenter: us-east}")], changed


def test_a_new_record_goes_at_the_end_of_its_section(api: Api) -> None:
    path = api.zones / "example.com.gslb.yaml"
    before = path.read_text()
    body = {"type": "A", "pools": {"p": {"members": ["192.0.2.99"]}}, "rules": [{"pool": "p"}]}
    reply = api.client.put("/v1/zones/example.com/steered/added/A", headers=api.auth(), json=body)
    assert reply.status_code == 200, reply.text
    after = path.read_text()
    heading = next(line for line in before.splitlines() if line.startswith("# Health check"))
    assert after.index("\n  added:") < after.index(heading) < after.index("\nchecks:\n")
    # nothing else moved: the old text is the new one without the added record's lines
    lines = after.splitlines()
    start = lines.index("  added:")
    assert lines[start:start + 8] == ["  added:", "    type: A", "    pools:", "      p:",
                                      "        members:", "          - 192.0.2.99", "    rules:",
                                      "      - pool: p"]
    assert lines[:start] + lines[start + 8:] == before.splitlines()
