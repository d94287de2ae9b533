"""DNS cookies with real clients and real servers: dig and kdig learn a server cookie
and reuse it, a cookie one node made is honoured by another node with the same secret
file, a rotation (a new first line, SIGHUP) keeps honouring the previous secret, and a
forged server cookie never is.

What the server thinks of a cookie shows two ways: a valid cookie made with the signing
secret comes back unchanged (the C path answers these), and the query log's `cookie`
field says valid, invalid or new (every query goes through Python while it is on)."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.redis_server import require
from tests.servers import DEMO_ZONES, ROOT, GslbProcess, free_port, wait_until

SECRET_A = "e5e973e5a6b2a43f48e7dc849e37bfcf"
SECRET_B = "445536bcd2513298075a5d379663c962"
NAME = "www.example.com"


def dig(server: GslbProcess, cookie: str | None = None, tcp: bool = False) -> tuple[str, bool]:
    """dig +cookie (or +cookie=HEX to send one): the reply's COOKIE and whether dig
    found its own client cookie in it ("(good)")."""
    argv = [require("dig", "bind9-dnsutils"), f"@{server.host}", "-p", str(server.port),
            "+norec", "+tries=1", "+time=2", "+cookie" + (f"={cookie}" if cookie else ""),
            *(["+tcp"] if tcp else []), NAME, "A"]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=15, check=True).stdout
    match = re.search(r"^; COOKIE: ([0-9a-f]{48})( \(good\))?$", out, re.M)
    assert match is not None and "status: NOERROR" in out, out
    return match.group(1), match.group(2) is not None


def kdig(server: GslbProcess, cookie: str | None = None) -> str:
    argv = [require("kdig", "knot-dnsutils"), f"@{server.host}", "-p", str(server.port),
            "+norec", "+retry=0", "+time=2", "+cookie" + (f"={cookie}" if cookie else ""),
            NAME, "A"]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=15, check=True).stdout
    match = re.search(r"^;; COOKIE: ([0-9A-F]{48})$", out, re.M)
    assert match is not None and "status: NOERROR" in out, out
    return match.group(1).lower()


def forged(cookie: str) -> str:
    """The same client cookie, version and time, with a made-up hash."""
    return cookie[:32] + "00112233deadbeef"


def verdicts(server: GslbProcess) -> list[str]:
    """The query log's `cookie` field of every query logged so far."""
    events = [json.loads(line) for line in server.log().splitlines() if line.startswith("{")]
    return [e["cookie"] for e in events if e.get("logger") == "gslb.query"]


def logged(server: GslbProcess, cookie: str) -> str:
    """Ask with `cookie` while the query log is on; the verdict it logged."""
    before = len(verdicts(server))
    dig(server, cookie)
    assert wait_until(lambda: len(verdicts(server)) > before)
    return verdicts(server)[before]


def reloads(server: GslbProcess, workers: int) -> int:
    """Reloads done: with workers, once the new generation serves and the old is gone."""
    return server.log().count("reload done: generation" if workers > 1 else "reloaded:")


def serve(secret_file: Path | None, workers: int = 1, query_log: bool = False) -> GslbProcess:
    extra = ["--workers", str(workers), "--log-format", "json"]
    extra += ["--cookie-secret", str(secret_file)] if secret_file is not None else []
    extra += ["--query-log"] if query_log else []
    return GslbProcess(DEMO_ZONES, extra).start(["example.com."])


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    path = tmp_path / "cookie.secret"
    path.write_text(f"# the fleet's DNS cookie secret\n{SECRET_A}\n")
    return path


@pytest.mark.parametrize("with_file", [True, False], ids=["secret-file", "random-secret"])
def test_dig_and_kdig_learn_a_server_cookie_and_reuse_it(secret_file: Path, with_file: bool) -> None:
    """Two workers: each query may reach either, so both hold the same secret (with no
    file too: drawn before they fork)."""
    server = serve(secret_file if with_file else None, workers=2)
    try:
        learned, good = dig(server)
        assert good and learned[16:24] == "01000000"
        for _ in range(6):
            assert dig(server, learned) == (learned, True)  # valid, fresh: echoed
        assert dig(server, learned, tcp=True) == (learned, True)
        from_kdig = kdig(server)
        assert from_kdig[16:24] == "01000000"
        for _ in range(6):
            assert kdig(server, from_kdig) == from_kdig
        renewed, good = dig(server, forged(learned))
        assert good and renewed[:16] == learned[:16] and renewed != forged(learned)
    finally:
        assert server.stop() == 0


def test_a_cookie_one_node_made_is_valid_at_another(secret_file: Path, tmp_path: Path) -> None:
    other_secret = tmp_path / "other.secret"
    other_secret.write_text(SECRET_B + "\n")
    first = serve(secret_file)
    second = serve(secret_file, query_log=True)
    stranger = serve(other_secret, query_log=True)
    try:
        cookie = dig(first)[0]
        assert dig(first, cookie)[0] == cookie
        assert logged(second, cookie) == "valid"
        assert dig(second, cookie)[0] == cookie
        assert logged(stranger, cookie) == "invalid"
        assert dig(stranger, cookie)[0] != cookie
        assert logged(second, forged(cookie)) == "invalid"
        assert logged(second, cookie[:16]) == "new"
        second.signal(signal.SIGUSR2)  # the query log off: the C path answers again
        assert wait_until(lambda: "query log off" in second.log())
        assert dig(second, cookie)[0] == cookie
        assert dig(second, forged(cookie))[0] != forged(cookie)
    finally:
        for server in (first, second, stranger):
            assert server.stop() == 0


@pytest.mark.parametrize("workers", [1, 2])
def test_a_rotation_keeps_the_previous_secret_valid(secret_file: Path, workers: int) -> None:
    """The documented rotation: the new secret becomes the first line and the old one
    stays (verifying only), then SIGHUP; once the old line is gone, its cookies are not
    valid any more."""
    server = serve(secret_file, workers=workers, query_log=True)
    try:
        old = dig(server)[0]
        assert logged(server, old) == "valid"
        secret_file.write_text(f"{SECRET_B}\n{SECRET_A}  # the previous secret\n")
        server.signal(signal.SIGHUP)
        assert wait_until(lambda: "cookie secrets: 2 read" in server.log())
        assert wait_until(lambda: reloads(server, workers) == 1)
        assert dig(server, old)[0] != old  # valid, renewed with the new secret
        assert logged(server, old) == "valid"
        new = dig(server, old)[0]
        assert new[:16] == old[:16] and dig(server, new)[0] == new
        assert logged(server, new) == "valid"
        assert logged(server, forged(new)) == "invalid"
        secret_file.write_text(f"{SECRET_B}\n")
        server.signal(signal.SIGHUP)
        assert wait_until(lambda: "cookie secrets: 1 read" in server.log())
        assert wait_until(lambda: reloads(server, workers) == 2)
        assert logged(server, old) == "invalid"
        assert logged(server, new) == "valid"
    finally:
        assert server.stop() == 0


def test_a_bad_secret_file_stops_the_start(tmp_path: Path) -> None:
    path = tmp_path / "cookie.secret"
    path.write_text("not a secret\n")
    result = subprocess.run(
        [sys.executable, "-m", "gslb.cli", "serve", "--zones", str(DEMO_ZONES), "--listen",
         f"127.0.0.1:{free_port()}", "--cookie-secret", str(path)],
        capture_output=True, text=True, timeout=30, cwd=ROOT)
    assert result.returncode == 2
    assert f"--cookie-secret {path}:1: a secret is 32 hex digits" in result.stderr
