"""What every request passes before a route sees it, and what every reply carries.

`RequestGuard`, one ASGI middleware, in this order:
- the Host header must name this API (`allowed_hosts`: on loopback, loopback names;
  with `--api-host`, those names too), so a web page that rebinds its own name to
  127.0.0.1 cannot reach the API from a browser;
- at most MAX_IN_FLIGHT requests are handled at once (503 beyond, with Retry-After);
- the body is read whole, at most `max_body` bytes, announced or streamed (413 beyond);
- a JSON body may nest at most MAX_DEPTH levels (422 beyond: deeper documents never
  reach the parser, which would recurse on them);
- every reply says `Cache-Control: no-store` and `X-Content-Type-Options: nosniff`;
- HEAD is answered wherever GET is (RFC 9110 9.3.2): the GET's headers, no body, so
  `curl -I` shows a resource's ETag.
How long a client may take to send its request is bounded by the server (api/serve.py).
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable, Iterable, MutableMapping

from api import problems

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGI = Callable[[Scope, Receive, Send], Awaitable[None]]

MAX_DEPTH = 32  # arrays and objects inside one another in a JSON body
MAX_IN_FLIGHT = 256  # requests handled at once
LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")
SECURITY_HEADERS = [(b"cache-control", b"no-store"), (b"x-content-type-options", b"nosniff")]


def json_depth(body: bytes | bytearray) -> int:
    """How deeply arrays and objects nest in a JSON text (strings skipped; malformed
    text is the parser's to report)."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in body:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            deepest = max(deepest, depth)
        elif byte in (0x5D, 0x7D):  # ] }
            depth -= 1
    return deepest


def allowed_hosts(listen_host: str, configured: Iterable[str]) -> tuple[str, ...] | None:
    """The Host names the API answers to: its address, loopback names and `configured`;
    None (any name) for an API listening beyond loopback with none configured (the
    operator is warned at start and told to give `--api-host`)."""
    names = tuple(name.strip().lower() for name in configured if name.strip())
    if not names and listen_host not in LOOPBACK:
        return None
    return (*LOOPBACK, listen_host.lower(), *names)


class RequestGuard:
    def __init__(self, app: ASGI, max_body: int, hosts: Iterable[str] | None = ()) -> None:
        self.app = app
        self.max_body = max_body
        self.hosts = None if hosts is None else {host.lower() for host in (*LOOPBACK, *hosts)}
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        head = scope.get("method") == "HEAD"
        if head:
            scope = {**scope, "method": "GET"}

        async def secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            elif head and message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        refusal = self._host_refusal(scope)
        if refusal is not None:
            await problems.problem_response(400, refusal)(scope, receive, secured)
            return
        if self.in_flight >= MAX_IN_FLIGHT:
            await problems.problem_response(503, "too many requests at once; try again",
                                            headers={"Retry-After": "1"})(scope, receive, secured)
            return
        self.in_flight += 1
        try:
            await self._handle(scope, receive, secured)
        finally:
            self.in_flight -= 1

    def _host_refusal(self, scope: Scope) -> str | None:
        if self.hosts is None:
            return None
        host = dict(scope.get("headers") or []).get(b"host", b"").decode("latin-1").lower()
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        if name in self.hosts or host in self.hosts:
            return None
        return (f"Host {host!r} is not a name of this API (allow it with --api-host, or "
                "reach the API by one of its addresses)")

    async def _handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body:
            await self._too_large(scope, send)
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if len(body) > self.max_body:
                await self._too_large(scope, send)
                return
            if not message.get("more_body"):
                break
        if b"json" in headers.get(b"content-type", b"") and json_depth(body) > MAX_DEPTH:
            await problems.problem_response(
                422, f"the JSON body nests deeper than {MAX_DEPTH} levels")(scope, receive, send)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": bytes(body), "more_body": False}

        await self.app(scope, replay, send)

    async def _too_large(self, scope: Scope, send: Send) -> None:
        async def nothing() -> Message:
            return {"type": "http.disconnect"}

        response = problems.problem_response(413, f"the request body exceeds {self.max_body} bytes")
        await response(scope, nothing, send)
