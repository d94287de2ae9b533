"""The app as both API servers serve it (api/serve.py `uvicorn_config`)."""

from __future__ import annotations

import shutil
from pathlib import Path

from fastapi.testclient import TestClient

from api.serve import embedded_context, uvicorn_config
from tests.api.conftest import DEMO, make_api


def test_the_openapi_document_is_made_before_the_first_request(tmp_path: Path) -> None:
    """The API process runs at SCHED_IDLE: left to the first GET /openapi.json, making the
    document (0.2 s of CPU) took over 10 s on a busy machine and timed the client out."""
    zones = tmp_path / "zones"
    shutil.copytree(DEMO, zones)
    app = uvicorn_config(embedded_context(make_api(zones).server)).app
    assert app.openapi_schema is not None and "/v1/zones" in app.openapi_schema["paths"]
    served = TestClient(app, base_url="http://localhost").get("/openapi.json")
    assert served.status_code == 200 and served.json() == app.openapi_schema
