"""Errors as `application/problem+json` (RFC 9457), each naming the fields at fault.

Every refusal goes through here: a domain `Invalid` (the rules of `gslb check`), a
request that does not match its schema (pydantic), a missing or wrong token, a stale
`If-Match`, a body too large. The body always has `type`, `title`, `status`, `detail`,
and `errors: [{field, message}]` when fields are at fault.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import redis
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from gslb.config.rrsets import FieldProblem, Invalid

log = logging.getLogger("gslb.api")

MEDIA_TYPE = "application/problem+json"
TITLES = {400: "Bad request", 401: "Unauthorized", 403: "Forbidden", 404: "Not found",
          405: "Method not allowed", 409: "Conflict", 412: "Precondition failed",
          413: "Content too large", 415: "Unsupported media type", 422: "Invalid",
          428: "Precondition required", 429: "Too many requests", 503: "Service unavailable"}


class FieldError(BaseModel):
    field: str
    message: str


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str = ""
    errors: list[FieldError] = []


class ApiProblem(Exception):
    def __init__(self, status: int, detail: str, errors: list[FieldProblem] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.errors = errors or []
        self.headers = headers or {}


def problem_response(status: int, detail: str, errors: list[FieldProblem] = (),  # type: ignore[assignment]
                     headers: dict[str, str] | None = None) -> JSONResponse:
    body = Problem(title=TITLES.get(status, "Error"), status=status, detail=detail,
                   errors=[FieldError(field=e.field, message=e.message) for e in errors])
    return JSONResponse(body.model_dump(), status_code=status, media_type=MEDIA_TYPE,
                        headers=headers)


def _field(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body",)]
    return ".".join(parts) if parts else "body"


def _problem(error: dict[str, Any]) -> FieldProblem:
    """One schema error as the request's own field and words (a JSON syntax error is the
    body's, at a character, not a field named by that number)."""
    if error.get("type") == "json_invalid":
        where = error.get("loc", ("body", 0))[-1]
        reason = (error.get("ctx") or {}).get("error", "invalid JSON")
        return FieldProblem("body", f"not valid JSON at character {where}: {reason}")
    return FieldProblem(_field(tuple(error.get("loc", ()))), str(error.get("msg", "invalid")))


STORE_RETRY_SECONDS = 5
_store_failing = [0.0]  # when the configuration store last failed (log once per outage)


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiProblem)
    async def _api_problem(request: Request, exc: ApiProblem) -> JSONResponse:
        return problem_response(exc.status, exc.detail, exc.errors, exc.headers)

    @app.exception_handler(Invalid)
    async def _invalid(request: Request, exc: Invalid) -> JSONResponse:
        detail = "the change breaks the configuration rules; nothing was changed"
        if exc.status == 404:
            detail = exc.problems[0].message
        return problem_response(exc.status, detail, exc.problems)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [_problem(e) for e in exc.errors()]
        return problem_response(422, "the request does not match its schema; nothing was changed",
                                errors)

    @app.exception_handler(redis.RedisError)
    async def _store_down(request: Request, exc: redis.RedisError) -> JSONResponse:
        """Redis (the configuration store, tokens or shared state) is unreachable: 503
        with Retry-After, logged once per outage rather than a traceback per request."""
        now = time.monotonic()
        if now - _store_failing[0] > 60:
            log.error("Redis unreachable, answering 503 to API requests: %s", exc)
        _store_failing[0] = now
        return problem_response(503, "the configuration store (Redis) is unreachable; nothing "
                                "was changed; retry later", [],
                                {"Retry-After": str(STORE_RETRY_SECONDS)})

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem_response(exc.status_code, str(exc.detail), [],
                                dict(exc.headers) if exc.headers else None)


def responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the problem responses a route may give."""
    return {code: {"model": Problem, "description": TITLES.get(code, "Error"),
                   "content": {MEDIA_TYPE: {"schema": Problem.model_json_schema()}}}
            for code in codes}
