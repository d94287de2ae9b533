"""The flags' defaults are the settings' defaults (gslb/settings.py writes each once)."""

from __future__ import annotations

import dataclasses

import pytest

from gslb.cli import build_parser
from gslb.cli.rtt import RATE_LIMIT
from gslb.dns.rrl import RrlSettings
from gslb.settings import Settings, StoreSettings
from gslb.state.telemetry import DEFAULT_LIMIT

# flag dest -> Settings field, where the names differ
RENAMED = {"zones": "zones_dir", "query_log_sample": "query_log_every",
           "dnstap_sample": "dnstap_every", "version_string": "version"}
STORE_RENAMED = {"max_state_age": "max_age", "stale_state": "stale"}
# flags whose default is not the field's: parsed from text, or machine-dependent
NOT_COMPARED = {"listen", "xfr_allow", "geoip", "workers", "redis", "api", "api_hosts",
                "metrics", "metrics_dir", "nsid", "state", "dnstap", "identity", "version_string",
                "rrl_exempt"}


@pytest.fixture(autouse=True)
def no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in [n for n in os.environ if n.startswith("GSLB_")]:
        monkeypatch.delenv(name)


def serve_defaults() -> dict[str, object]:
    args = build_parser().parse_args(["serve"])
    return {k: v for k, v in vars(args).items() if k not in ("func", "command")}


def test_serve_defaults_are_the_settings_defaults() -> None:
    defaults = Settings()
    store = StoreSettings()
    fields = {f.name for f in dataclasses.fields(Settings)}
    store_fields = {f.name for f in dataclasses.fields(StoreSettings)}
    compared = 0
    for dest, value in serve_defaults().items():
        if dest in NOT_COMPARED:
            continue
        name = STORE_RENAMED.get(dest, dest)
        if dest.startswith("rrl_"):
            assert value == getattr(RrlSettings(), dest[4:]), dest
            assert defaults.rrl == RrlSettings()
        elif name in store_fields:
            assert value == getattr(store, name), dest
        else:
            name = RENAMED.get(dest, dest)
            assert name in fields, f"--{dest} has no Settings field"
            assert value == getattr(defaults, name), dest
        compared += 1
    assert compared >= 20


def test_other_commands_share_the_defaults() -> None:
    parser = build_parser()
    checker = parser.parse_args(["checker", "--redis", "redis://x", "--agent", "a"])
    assert checker.rtt_min_samples == StoreSettings().rtt_min_samples
    assert checker.log_level == Settings().log_level
    assert parser.parse_args(["status"]).verdict_expiry == StoreSettings().verdict_expiry


def test_rtt_limit_is_the_ingest_default() -> None:
    assert RATE_LIMIT == DEFAULT_LIMIT
