"""`/metrics` on the API port: a read token, and the API's own request counts when it
does not sit beside DNS (beside DNS, tests/e2e/test_api.py scrapes the node's)."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from tests.api.conftest import Api


def _samples(text: str) -> dict[tuple[str, frozenset], float]:
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_metrics_need_a_read_token_and_count_requests(api: Api) -> None:
    assert api.client.get("/metrics").status_code == 401
    for _ in range(3):
        assert api.client.get("/v1/zones", headers=api.auth("read")).status_code == 200
    assert api.client.get("/v1/zones/nowhere.test", headers=api.auth("read")).status_code == 404
    reply = api.client.get("/metrics", headers=api.auth("read"))
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("text/plain")
    samples = _samples(reply.text)
    ok = ("gslb_api_requests_total",
          frozenset({"route": "/v1/zones", "method": "GET", "status": "200"}.items()))
    missing = ("gslb_api_requests_total",
               frozenset({"route": "/v1/zones/{zone}", "method": "GET", "status": "404"}.items()))
    refused = ("gslb_api_requests_total",
               frozenset({"route": "/metrics", "method": "GET", "status": "401"}.items()))
    assert samples[ok] == 3 and samples[missing] == 1 and samples[refused] == 1
    assert samples[("gslb_config_version", frozenset())] == api.server.live.version
