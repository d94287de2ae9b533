"""Control-plane security: what a token holder (or anyone) must not be able to do.

Each test is one finding of the security review; it failed on the code before the fix."""

from __future__ import annotations

from pathlib import Path

from tests.api.conftest import Api

SOA = {"name": "@", "type": "SOA", "ttl": 3600,
       "rdata": ["ns1.example.com. hostmaster.example.com. 1 7200 3600 1209600 300"]}
NS = {"name": "@", "type": "NS", "ttl": 3600, "rdata": ["ns1.example.com."]}


def _zone_text(origin: str, extra: str = "") -> str:
    return (f"$ORIGIN {origin}\n$TTL 300\n@ SOA ns1.example.com. hostmaster.example.com. 1 7200 "
            f"3600 1209600 300\n@ NS ns1.example.com.\n{extra}")


def test_a_zone_name_cannot_name_a_file_outside_the_zones_folder(api: Api, tmp_path: Path) -> None:
    victim = tmp_path / "elsewhere"
    victim.mkdir()
    (victim / "victim.zone").write_text("precious\n")
    for name in (f"{victim}/victim", "../outside", "a/b.example", "a\\\\b.example", "..", ".", "a\\047b.example",
                 "has space.example", "-lead.example"):
        reply = api.client.post("/v1/zones", headers=api.auth(),
                                json={"name": name, "rrsets": [SOA, NS]})
        assert reply.status_code == 422, (name, reply.status_code, reply.text)
        assert reply.json()["errors"][0]["field"] == "name", reply.text
    assert (victim / "victim.zone").read_text() == "precious\n"
    assert not (tmp_path / "outside.zone").exists()
    assert sorted(p.name for p in api.zones.iterdir() if p.suffix == ".zone") == sorted(
        p.name for p in Path(__file__).resolve().parents[2].joinpath("zones").iterdir()
        if p.suffix == ".zone")
    # an ordinary new zone still works, and lands in the folder
    ok = api.client.post("/v1/zones", headers=api.auth(),
                         json={"name": "new-zone_1.example", "rrsets": [SOA, NS]})
    assert ok.status_code == 201, ok.text
    assert (api.zones / "new-zone_1.example.zone").is_file()


def test_zone_text_through_the_api_cannot_include_files(api: Api, tmp_path: Path) -> None:
    secret = tmp_path / "records.txt"
    secret.write_text("leak 300 IN A 192.0.2.66\n")
    for target in (str(secret), "/etc/passwd", "../../../../etc/passwd", "example.com.zone"):
        reply = api.client.post("/v1/zones", headers=api.auth(), json={
            "name": "inc.example", "text": _zone_text("inc.example.", f"$INCLUDE {target}\n")})
        assert reply.status_code == 422, (target, reply.text)
        problems = reply.json()["errors"]
        assert len(problems) == 1 and "$INCLUDE is not allowed" in problems[0]["message"], problems
        assert "root:" not in reply.text and "192.0.2.66" not in reply.text
    assert api.ask("leak.inc.example") == []
