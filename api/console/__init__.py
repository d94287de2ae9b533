"""The web console: static files under /ui/ on the API's port, a client of the REST API.

The browser loads only these files (no build step, nothing from elsewhere) and calls
the /v1 routes with the token the user typed, kept in the tab's sessionStorage and sent
as `Authorization: Bearer` (no cookie, so no cross-site request can carry it). Every
file is served with a Content-Security-Policy that allows scripts, styles and requests
from this origin only, no inline script or style, no framing.
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Any

from fastapi import APIRouter
from fastapi.responses import RedirectResponse, Response

from api.problems import ApiProblem

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'; "
       "object-src 'none'")
TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
         ".css": "text/css; charset=utf-8", ".json": "application/json",
         ".svg": "image/svg+xml"}
HEADERS = {"Content-Security-Policy": CSP, "X-Frame-Options": "DENY",
           "Referrer-Policy": "no-referrer", "Cross-Origin-Opener-Policy": "same-origin"}


def files() -> dict[str, tuple[bytes, str]]:
    """Every file of the console: its name (relative to /ui/) -> (bytes, media type)."""
    root = resources.files(__name__) / "static"
    found = {}
    for entry in root.iterdir():
        suffix = "." + entry.name.rsplit(".", 1)[-1]
        if entry.is_file() and suffix in TYPES:
            found[entry.name] = (entry.read_bytes(), TYPES[suffix])
    return found


@functools.cache
def world() -> dict[str, Any]:
    """The console's world map (static/world.json, made by tools/world-map): each
    country's alpha-2 code, name, continent and outline."""
    return json.loads((resources.files(__name__) / "static" / "world.json").read_text())


def router() -> APIRouter:
    """GET /ui/ (the page) and /ui/NAME (its scripts, styles and map), read once."""
    served = files()
    ui = APIRouter(include_in_schema=False)

    @ui.get("/ui")
    def to_console() -> RedirectResponse:
        return RedirectResponse("/ui/", status_code=308)

    @ui.get("/ui/{name:path}")
    def console_file(name: str) -> Response:
        body, media = served.get(name or "index.html", (b"", ""))
        if not media:
            raise ApiProblem(404, f"no console file {name}")
        return Response(body, media_type=media, headers=HEADERS)

    return ui
