"""The real app over a real (socket-less) DNS `Server` loaded from a copy of the demo
zones: requests go through FastAPI, the store writes files, the server's snapshot
changes, and tests ask the DNS path what it answers now."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import dns.message
import dns.rrset
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.serve import embedded_context
from gslb.config.tokens import TokenStore
from gslb.dns.handler import Responder
from gslb.server.node import Server
from gslb.settings import Settings

DEMO = Path(__file__).resolve().parents[2] / "zones"


@dataclass
class Api:
    client: TestClient
    server: Server
    zones: Path
    tokens: dict[str, str]

    def auth(self, role: str = "admin") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}

    def ask(self, name: str, rdtype: str = "A", draw: int = 0) -> list[str]:
        """What the DNS path answers now, as sorted rdata texts of the answer section."""
        query = dns.message.make_query(name, rdtype)
        wire = Responder().respond(self.server.current(), query.to_wire(), False, "192.0.2.99", draw)[0]
        reply = dns.message.from_wire(wire)
        return sorted(r.to_text() for rrset in reply.answer for r in rrset if rrset.rdtype == reply.question[0].rdtype)


def make_api(zones: Path, **settings: object) -> Api:
    store = TokenStore.for_zones(zones)
    tokens = {role: store.create(f"{role}-user", role, [])[1] for role in ("read", "write", "admin")}
    tokens["net-writer"] = store.create("net-writer", "write", ["example.net."])[1]
    server = Server(Settings(zones_dir=zones, workers=1, prewarm=0, **settings))  # type: ignore[arg-type]
    assert server.load()
    app = create_app(embedded_context(server))
    return Api(TestClient(app, base_url="http://localhost"), server, zones, tokens)


@pytest.fixture
def api(tmp_path: Path) -> Api:
    zones = tmp_path / "zones"
    shutil.copytree(DEMO, zones)
    return make_api(zones)
