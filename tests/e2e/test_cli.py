"""The `gslb` command as a user runs it: exit statuses, errors, and output into a pipe."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from gslb.cli.explain import NotExplained, explain
from tests.servers import DEMO_ZONES, ROOT


def gslb(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gslb.cli", *args], capture_output=True,
                          text=True, timeout=30, cwd=ROOT)


def test_explain_outside_every_zone_or_without_zones_is_an_error(tmp_path: Path) -> None:
    done = gslb("explain", "www.nowhere.org", "--client", "192.0.2.1", "--zones", "zones")
    assert done.returncode == 1 and done.stdout == ""
    assert "www.nowhere.org. is in no zone served from zones" in done.stderr
    assert "REFUSED" in done.stderr and "not steered" not in done.stderr
    missing = tmp_path / "no-such-folder"
    done = gslb("explain", "www2.example.com", "--client", "192.0.2.1", "--zones", str(missing))
    assert (done.returncode, done.stdout) == (1, "")
    assert f"--zones {missing}: no such folder" in done.stderr
    # A name in a served zone that nothing steers is still explained, exit 0.
    done = gslb("explain", "www.example.com", "--client", "192.0.2.1", "--zones", "zones")
    assert done.returncode == 0 and "is not steered" in done.stdout


def test_explain_rejects_a_draw_outside_the_slots() -> None:
    done = gslb("explain", "www2.example.com", "--client", "192.0.2.1", "--zones", "zones",
                "--draw", "64")
    assert done.returncode == 2 and done.stdout == ""
    assert "--draw 64: expected a slot from 0 to 63" in done.stderr
    assert "Traceback" not in done.stderr
    for draw in (-1, 2**32 - 1):  # the old help's range: no longer taken modulo 64
        with pytest.raises(ValueError, match=f"--draw {draw}: expected a slot from 0 to 63"):
            explain(DEMO_ZONES, "www2.example.com", "A", "192.0.2.1", None, (), None, draw)


def test_explain_help_says_what_the_draw_is() -> None:
    done = gslb("explain", "--help")
    assert "0 to 63" in " ".join(done.stdout.split()) and "2**32" not in done.stdout


def test_every_draw_slot_is_one_64th_of_the_weighted_traffic() -> None:
    """The demo's www2 is weighted 3:1:0: over the 64 slots, 48 answer .10, 16 answer .11,
    none .12 (weight 0), as the help's "each slot stands for 1/64 of the traffic" says."""
    answers = Counter()
    for slot in range(64):
        text = explain(DEMO_ZONES, "www2.example.com", "A", "192.0.2.1", None, (), None, slot)
        answers[text.split("www2.example.com. 30 IN A ", 1)[1].split()[0]] += 1
    assert answers == {"192.0.2.10": 48, "192.0.2.11": 16}
    with pytest.raises(NotExplained):
        explain(DEMO_ZONES, "example.org", "A", "192.0.2.1", None, (), None, 0)


@pytest.mark.parametrize("args, status", [
    (["explain", "www2.example.com", "--client", "192.0.2.1", "--zones", "zones"], 141),
    (["check", "--zones", "zones"], 141),
    (["--help"], 0),  # argparse itself ignores a write error on help
])
def test_output_into_a_closed_pipe_ends_quietly(args: list[str], status: int) -> None:
    """`gslb explain ... | head` when head has gone: no BrokenPipeError traceback; the
    status a shell reports for a program ended by SIGPIPE (128 + 13), as for `yes | head`."""
    proc = subprocess.Popen([sys.executable, "-m", "gslb.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, cwd=ROOT)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # the reader is gone before gslb writes a byte
    try:
        stderr = proc.stderr.read().decode()
        code = proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert (stderr, code) == ("", status)


def test_serve_rejects_a_message_timeout_that_is_not_positive() -> None:
    done = gslb("serve", "--zones", "zones", "--tcp-message-timeout", "0")
    assert done.returncode == 2
    assert "--tcp-message-timeout 0.0: must be more than 0 seconds" in done.stderr


def test_serve_rejects_a_geoip_check_interval_below_a_tenth_of_a_second_or_infinite() -> None:
    done = gslb("serve", "--zones", "zones", "--geoip-check-interval", "0.05")
    assert done.returncode == 2
    assert "--geoip-check-interval 0.05: must be at least 0.1 seconds" in done.stderr
    never = gslb("serve", "--zones", "zones", "--geoip-check-interval", "inf")
    assert never.returncode == 2 and "--geoip-check-interval inf: must be" in never.stderr
    env = subprocess.run([sys.executable, "-m", "gslb.cli", "serve", "--zones", "zones"],
                         capture_output=True, text=True, timeout=30, cwd=ROOT,
                         env={**os.environ, "GSLB_GEOIP_CHECK_INTERVAL": "0"})
    assert env.returncode == 2
    assert "--geoip-check-interval 0: must be at least 0.1 seconds" in env.stderr
