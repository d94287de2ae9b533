"""Each probe kind against a real server on loopback: HTTP (status, body, Host header,
redirects not followed unless asked), HTTPS (certificate checked against the Host/SNI
name, a self-signed certificate made with openssl), TCP, and DNS (rcode, expected
answer) against the demo `gslb serve`."""

from __future__ import annotations

import asyncio
import http.server
import shutil
import socket
import ssl
import subprocess
import threading
from typing import Iterator

import pytest

from gslb.health.probes import Outcome, new_http_client, run_probe
from gslb.steering.model import CheckSpec, Probe
from tests.servers import GslbProcess, free_port


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/moved":
            self.send_response(302)
            self.send_header("Location", "/health")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = f"status ok for {self.headers.get('Host')}\n".encode()
        self.send_response(200 if self.path == "/health" else 503)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def _serve(server: http.server.ThreadingHTTPServer) -> Iterator[int]:
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def web() -> Iterator[int]:
    yield from _serve(http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler))


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl not installed")
    directory = tmp_path_factory.mktemp("tls")
    key, cert = directory / "key.pem", directory / "cert.pem"
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=shop.example.test", "-addext", "subjectAltName=DNS:shop.example.test",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    yield from _serve(server)


def probe(kind: str, port: int, **spec: object) -> Outcome:
    check = CheckSpec("c", kind, port, interval=1.0, timeout=1.0, **spec)  # type: ignore[arg-type]
    return asyncio.run(run_probe(Probe(check, "127.0.0.1")))


def test_http_status_body_host_and_redirects(web: int) -> None:
    ok = probe("http", web, path="/health", body="status ok", host="shop.example.test")
    assert ok.ok and ok.detail == "ok: status 200" and ok.rtt_ms > 0
    assert probe("http", web, path="/health", body="for shop.example.test", host="shop.example.test").ok
    wrong_body = probe("http", web, path="/health", body="nope")
    assert not wrong_body.ok and wrong_body.detail == "status 200 but the body lacks 'nope'"
    failing = probe("http", web, path="/other")
    assert not failing.ok and failing.detail == "status 503, expected 200"
    assert probe("http", web, path="/other", expect_status=(503,)).ok
    assert probe("http", web, path="/moved").detail == "status 302, expected 200"
    assert probe("http", web, path="/moved", follow_redirects=True).ok


def test_https_checks_the_certificate_against_the_host_name(tls: int) -> None:
    untrusted = probe("https", tls, path="/health", host="shop.example.test")
    assert not untrusted.ok and "CERTIFICATE_VERIFY_FAILED" in untrusted.detail
    assert probe("https", tls, path="/health", host="shop.example.test", tls_verify=False).ok


def test_tcp_connect_and_refused() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    try:
        assert probe("tcp", listener.getsockname()[1]).detail == "ok: connected"
    finally:
        listener.close()
    refused = probe("tcp", free_port())
    assert not refused.ok and "Connect" in refused.detail


def test_dns_rcode_and_answer(demo_server: GslbProcess) -> None:
    port = demo_server.port
    assert probe("dns", port, query="www.example.com.", query_type="A").ok
    assert probe("dns", port, query="www.example.com.", expect_answer="192.0.2.80").ok
    missing = probe("dns", port, query="www.example.com.", expect_answer="192.0.2.99")
    assert not missing.ok and missing.detail == "answer lacks 192.0.2.99"
    nx = probe("dns", port, query="nope.example.com.")
    assert not nx.ok and nx.detail == "rcode NXDOMAIN, expected NOERROR"
    assert probe("dns", port, query="nope.example.com.", expect_rcode="NXDOMAIN").ok
    silent = probe("dns", free_port(), query="www.example.com.")
    assert not silent.ok and silent.detail == "no answer within 1 s"
    over_tcp = probe("dns", port, query="www.example.com.", expect_answer="192.0.2.80",
                     transport="tcp")
    assert over_tcp.ok and over_tcp.detail == "ok: NOERROR"


def test_a_dns_check_over_tcp_fails_where_only_udp_answers(demo_server: GslbProcess) -> None:
    """A server whose TCP side is down (here: nothing listens on TCP at a port where UDP
    answers) passes the default UDP check and fails `transport: tcp`."""
    relay = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # UDP only, forwards to gslb
    relay.bind(("127.0.0.1", 0))
    port = relay.getsockname()[1]

    def forward() -> None:
        upstream = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        upstream.settimeout(2)
        while True:
            try:
                data, client = relay.recvfrom(65535)
                upstream.sendto(data, (demo_server.host, demo_server.port))
                relay.sendto(upstream.recv(65535), client)
            except OSError:  # the relay closed: the test is over
                upstream.close()
                return

    threading.Thread(target=forward, daemon=True).start()
    try:
        assert probe("dns", port, query="www.example.com.").ok
        refused = probe("dns", port, query="www.example.com.", transport="tcp")
        assert not refused.ok and "Connect" in refused.detail, refused.detail
    finally:
        relay.close()


def test_a_timeout_is_a_failure() -> None:
    listener = socket.create_server(("127.0.0.1", 0))  # accepts, never answers
    try:
        slow = probe("http", listener.getsockname()[1])
        assert not slow.ok and slow.detail.startswith(("no answer within 1 s", "ReadTimeout"))
    finally:
        listener.close()


def test_a_backend_that_resets_every_connection_is_down_and_still_probed() -> None:
    """A backend dying mid-handshake: httpcore (on uvloop, as the agents run) sometimes
    raises AttributeError out of a connection reset at once. That escaped the probe and
    ended the target's probing task for good, so the agent never reported the backend
    down (seen in the Sentinel test as a dead backend that stayed up). Every probe must
    come back as a failed outcome."""
    import struct

    import uvloop

    listener = socket.create_server(("127.0.0.1", 0), backlog=512)

    def reset_all() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:  # the listener closed: the test is over
                return
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()  # an RST right after the handshake

    threading.Thread(target=reset_all, daemon=True).start()
    spec = CheckSpec("web", "http", port=listener.getsockname()[1], timeout=1.0)
    target = Probe(spec, "127.0.0.1")

    async def probe_many() -> list[Outcome]:
        client = new_http_client()
        try:
            return [await run_probe(target, client) for _ in range(1000)]
        finally:
            await client.aclose()

    try:
        outcomes = uvloop.run(probe_many())  # about 3 in 1,000 raised before the fix
    finally:
        listener.close()
    assert len(outcomes) == 1000 and not any(outcome.ok for outcome in outcomes)
