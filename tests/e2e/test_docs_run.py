"""The documentation is executed: every command block of the README, the REST API page, the
operator guide and the steering reference runs, as written, against real servers.

Each document gets a fresh copy of the demo zones and runs its ```sh (bash, console) blocks
in order, each with `bash -e -o pipefail` in a folder holding `zones/`, with `gslb` from
the virtual environment and Debian's curl and dig. What the docs assume is provided:

- The ports the docs use (DNS 5353 and 5354, the API 8080, Redis 6379, metrics 9153) are
  rewritten to free ports, and so is `/tmp/`; `gslb serve` without `--listen` gets the
  DNS port through GSLB_LISTEN, as it would get 5353.
- A block that starts no server (no line ending in `&`) but talks to those ports runs
  against the document's server, started as docs/api.md says: `gslb serve --zones zones
  --listen ... --api ...`, with an admin token from `gslb token create` in `$T` and
  `$TOKEN`; with `server: redis`, against `gslb api --redis URL --import zones` and a
  `gslb serve --redis` node. A block that mentions Redis's port gets a Redis there.
- A block that starts servers itself gets ports of its own, and its background jobs are
  stopped when it ends. `make run` is the Makefile's `run` recipe; no other make target runs.
- Shell variables a block sets (`T=...`, `API=...`) are there for the blocks after it.

A block fails when a command fails (bash -e), when curl gets an HTTP status >= 400 that the
block's annotation does not list (`status:`), when dig gets no NOERROR (a transfer: an
incomplete one), or when its output misses an `expect:` or holds a `reject:` pattern
(tests/docblocks.py describes the annotations). Every block's outcome is printed.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.docblocks import ROOT, RUN_DOCUMENTS, Block, blocks
from tests.e2e.test_api_redis import ApiProcess
from tests.redis_server import RedisProcess, require
from tests.servers import DEMO_ZONES, GslbProcess, ManagedProcess, free_port, wait_until

DOC_PORTS = ("5353", "5354", "8080", "6379", "9153")
PORT = re.compile(r"(?<=[:\s])(" + "|".join(DOC_PORTS) + r")(?!\d)")
BACKGROUND = re.compile(r"&\s*(#.*)?$", re.M)
ASSIGNMENT = re.compile(r"(?:^|[\s;(])([A-Za-z_]\w*)=", re.M)
BLOCK_SECONDS = 45
MARK = "@@docrun:"
PRELUDE_LINES = 5

DIG_SHIM = r"""#!/bin/bash
# dig as the document writes it; then its reply must be NOERROR (a transfer: complete)
out=$("$DOCRUN_DIG" "$@"); code=$?
printf '%s\n' "$out"
[ $code -eq 0 ] || exit $code
case " ${*^^} " in
  *" AXFR "*)
    if grep -q -e 'Transfer failed' -e 'communications error' <<<"$out" \
       || [ "$(grep -cP '\tSOA\t' <<<"$out")" -lt 2 ]; then
      echo "docrun: dig $*: the transfer is incomplete" >&2; exit 1
    fi
    echo "dig $* -> complete transfer" >> "$DOCRUN_LOG"; exit 0;;
esac
status=$(sed -n 's/.*status: \([A-Z]*\),.*/\1/p' <<<"$out" | head -1)
if [ -z "$status" ]; then  # +short: ask again, without it, for the header
  args=(); for arg in "$@"; do [ "$arg" = +short ] || args+=("$arg"); done
  status=$("$DOCRUN_DIG" "${args[@]}" +noall +comments | sed -n 's/.*status: \([A-Z]*\),.*/\1/p' | head -1)
fi
echo "dig $* -> ${status:-no reply}" >> "$DOCRUN_LOG"
if [ "$status" != NOERROR ]; then
  echo "docrun: dig $*: ${status:-no reply}, not NOERROR" >&2; exit 1
fi
"""

CURL_SHIM = r"""#!/bin/bash
# curl as the document writes it; then an HTTP status >= 400 must be one the block shows
headers=$(mktemp "$DOCRUN_DIR/headers.XXXXXX")
"$DOCRUN_CURL" -D "$headers" "$@"; code=$?
status=$(grep -aoE '^HTTP/[0-9.]+ [0-9]+' "$headers" | tail -1 | cut -d' ' -f2)
rm -f "$headers"
echo "curl $* -> ${status:-no reply}" >> "$DOCRUN_LOG"
[ $code -eq 0 ] || exit $code
if [ "${status:-0}" -ge 400 ] && [[ " $DOCRUN_STATUS " != *" $status "* ]]; then
  echo "docrun: curl $*: HTTP $status, which the block does not show on purpose" >&2
  exit 22
fi
"""


def make_run_recipe() -> str:
    """The command `make run` runs, from the Makefile (gslb from PATH)."""
    text = (ROOT / "Makefile").read_text()
    recipe = re.search(r"^run:.*\n((?:\t.*\n)+)", text, re.M)
    assert recipe, "the Makefile has no run target"
    serve = [line.strip() for line in recipe.group(1).splitlines() if "gslb serve" in line]
    assert len(serve) == 1, recipe.group(1)
    return serve[0].replace("$(BIN)/", "")


@dataclass
class Outcome:
    block: Block
    ran: bool
    note: str
    failure: str | None = None

    def line(self) -> str:
        head = "FAIL" if self.failure else "ran " if self.ran else "skip"
        return f"{head} {self.block.where} {self.note}"


class DocumentRun:
    """One document's blocks, in order, in one folder with its own servers."""

    def __init__(self, tmp_path: Path) -> None:
        self.work = tmp_path / "run"
        shutil.copytree(DEMO_ZONES, self.work / "zones")
        self.bin = tmp_path / "bin"
        self.bin.mkdir()
        # short, for unix socket paths the docs put in /tmp/
        self.tmp = Path(tempfile.mkdtemp(prefix="docrun-"))
        self.vars = tmp_path / "vars.sh"
        self.vars.write_text("")
        self.names: set[str] = set()
        self.redis: RedisProcess | None = None
        self.servers: dict[str, tuple[dict[str, int], str]] = {}
        self.processes: list[ManagedProcess] = []
        real = {tool: shutil.which(tool) for tool in ("dig", "curl")}
        assert real["dig"] and real["curl"]
        self.env = {key: value for key, value in os.environ.items()
                    if not key.startswith("GSLB_") or key == "GSLB_UDP"}
        self.env.update(PATH=os.pathsep.join([str(self.bin), str(Path(sys.executable).parent),
                                              "/usr/local/bin", "/usr/bin", "/bin"]),
                        DOCRUN_DIG=real["dig"], DOCRUN_CURL=real["curl"],
                        DOCRUN_DIR=str(tmp_path), DOCRUN_LOG=str(tmp_path / "calls.log"))
        for name, text in (("dig", DIG_SHIM), ("curl", CURL_SHIM)):
            (self.bin / name).write_text(text)
            (self.bin / name).chmod(0o755)

    # the servers a block may talk to

    def redis_port(self) -> int:
        if self.redis is None:
            self.redis = RedisProcess(self.work.parent / "redis").start()
            self.processes.append(self.redis)
        return self.redis.port

    def server(self, kind: str) -> tuple[dict[str, int], str]:
        """The document's server of `kind` (embedded, redis): its ports and a token."""
        if kind in self.servers:
            return self.servers[kind]
        dns, api = free_port(), free_port()
        ports = {"5353": dns, "8080": api}
        zones = self.work / "zones"
        if kind == "embedded":
            node = GslbProcess(zones, ["--api", f"127.0.0.1:{api}"], port=dns)
            self.processes.append(node)
            node.start(ready_zones=["example.com."])
            assert wait_until(lambda: livez(api), 20), node.log()
            where = ["--zones", str(zones)]
        else:
            assert kind == "redis", f"unknown server {kind!r}"
            url = f"redis://127.0.0.1:{self.redis_port()}/0"
            ports["6379"] = self.redis_port()
            self.processes.append(ApiProcess(url, api, self.work.parent, ["--import", str(zones)]))
            node = GslbProcess(zones, ["--redis", url], port=dns)
            self.processes.append(node)
            node.start(ready_zones=["example.com."])
            where = ["--redis", url]
        token = subprocess.run([sys.executable, "-m", "gslb.cli", "token", "create", *where,
                                "--name", "me", "--role", "admin"], capture_output=True,
                               text=True, check=True, cwd=self.work, env=self.env)
        self.servers[kind] = (ports, token.stdout.strip())
        return self.servers[kind]

    # one block

    def run(self, block: Block) -> Outcome:
        if not block.runnable:
            return Outcome(block, False, f"({block.language or 'plain'}: not a command block)")
        if block.first("skip"):
            return Outcome(block, False, f"skipped: {block.first('skip')}")
        own_servers = bool(BACKGROUND.search(block.text))
        token = None
        if own_servers:
            ports = {port: free_port() for port in DOC_PORTS if port != "6379"}
        elif block.first("server") or PORT.search(block.text):
            ports, token = self.server(block.first("server") or "embedded")
        else:
            ports = {}
        if "6379" in block.text:
            ports.setdefault("6379", self.redis_port())
        script = self.script(block, ports, token)
        log = Path(self.env["DOCRUN_LOG"])
        log.write_text("")
        env = dict(self.env, DOCRUN_STATUS=" ".join(block.directives.get("status", [])))
        if "5353" in ports:
            env["GSLB_LISTEN"] = f"127.0.0.1:{ports['5353']}"
        self.write_make(ports)
        started = time.monotonic()
        out_path, err_path = self.work.parent / "stdout", self.work.parent / "stderr"
        with open(out_path, "w") as out, open(err_path, "w") as err:
            proc = subprocess.Popen(["bash", "-e", "-o", "pipefail", "-c", script], cwd=self.work,
                                    env=env, stdout=out, stderr=err, start_new_session=True)
            try:
                code: int | None = proc.wait(timeout=BLOCK_SECONDS)
            except subprocess.TimeoutExpired:
                code = None
            stop_session(proc)
        seconds = time.monotonic() - started
        stdout, stderr = out_path.read_text(), err_path.read_text()
        calls = log.read_text().splitlines()
        outcome = Outcome(block, True, f"in {seconds:.1f} s, {len(calls)} curl/dig calls")
        outcome.failure = self.judge(block, code, stdout, calls)
        if outcome.failure:
            shown = outputs(stdout)[0]
            outcome.failure += (f"\n--- script\n{script}\n--- curl and dig\n" + "\n".join(calls)
                                + f"\n--- stdout (end)\n{shown[-3000:]}"
                                f"\n--- stderr (end)\n{stderr[-3000:]}")
        return outcome

    def script(self, block: Block, ports: dict[str, int], token: str | None) -> str:
        text = PORT.sub(lambda m: str(ports.get(m.group(1), m.group(1))), block.text)
        text = re.sub(r"(?<![\w.])/tmp/", f"{self.tmp}/", text)
        self.names |= set(ASSIGNMENT.findall(text))
        keep = (f"declare -p {' '.join(sorted(self.names))} > {shlex.quote(str(self.vars))}"
                " 2>/dev/null" if self.names else ":")
        given = f"T={shlex.quote(token)}; TOKEN=$T" if token else ":"
        prelude = [f"source {shlex.quote(str(self.vars))}", given,
                   # on the way out: keep the variables for the next block, stop the jobs
                   f"docrun_exit() {{ set +e; {keep}; kill $(jobs -p) 2>/dev/null; wait; }}",
                   "trap docrun_exit EXIT",
                   # before each command, its line in the block: its output can be told apart
                   f"trap 'printf \"{MARK}%s@@\\n\" $((LINENO - {PRELUDE_LINES}))' DEBUG"]
        assert len(prelude) == PRELUDE_LINES
        return "\n".join(prelude) + "\n" + text

    def write_make(self, ports: dict[str, int]) -> None:
        recipe = PORT.sub(lambda m: str(ports.get(m.group(1), m.group(1))), make_run_recipe())
        shim = self.bin / "make"
        shim.write_text("#!/bin/bash\n# `make run` is the Makefile's run recipe; nothing else\n"
                        f'[ "$*" = run ] && exec {recipe}\n'
                        'echo "docrun: make $* is not run by the documentation test" >&2\n'
                        "exit 1\n")
        shim.chmod(0o755)

    @staticmethod
    def judge(block: Block, code: int | None, stdout: str, calls: list[str]) -> str | None:
        if code is None:
            return f"{block.where}: still running after {BLOCK_SECONDS} s"
        if code != 0:
            return f"{block.where}: the block failed (exit {code})"
        whole, by_line = outputs(stdout)
        for check in block.checks:
            text = whole
            if check.command is not None:
                lines = command_lines(block.text, check.command)
                if not lines:
                    return f"{block.where}: in: no command of the block has {check.command!r}"
                text = "".join(by_line.get(line, "") for line in lines)
            if bool(re.search(check.pattern, text, re.M)) != check.wanted:
                where = f" of {check.command!r}" if check.command else ""
                return (f"{block.where}: the output{where} "
                        f"{'misses expect' if check.wanted else 'has reject'}: {check.pattern}")
        for status in " ".join(block.directives.get("status", [])).split():
            if not any(call.endswith(f"-> {status}") for call in calls):
                return f"{block.where}: shows HTTP {status} on purpose, but no request got it"
        return None

    def close(self) -> None:
        for process in reversed(self.processes):
            process.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)


def outputs(stdout: str) -> tuple[str, dict[int, str]]:
    """A block's output without the line marks, and the output of each command by the
    block line it starts on."""
    parts = re.split(MARK + r"(-?\d+)@@\n", stdout)
    by_line: dict[int, str] = {}
    for line, text in zip(parts[1::2], parts[2::2]):
        by_line[int(line)] = by_line.get(int(line), "") + text
    return parts[0] + "".join(parts[2::2]), by_line


def command_lines(text: str, command: str) -> list[int]:
    """The block lines (1-based) where the commands whose text has `command` start."""
    lines = text.splitlines()
    starts: list[int] = []
    for number, line in enumerate(lines, 1):
        start = starts[-1] if number > 1 and lines[number - 2].endswith("\\") else number
        starts.append(start)
    return sorted({starts[number - 1] for number, line in enumerate(lines, 1) if command in line})


def livez(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/livez", timeout=0.5).status_code == 200
    except httpx.HTTPError:
        return False


def session_pids(session: int) -> list[int]:
    """Processes still in the session a block's shell led (its background jobs' leftovers)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[3]) == session and fields[0] != "Z":
                pids.append(int(entry.name))
    return pids


def stop_session(proc: subprocess.Popen) -> None:
    """Stop a block's shell and whatever it left running, each by its PID."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in session_pids(proc.pid):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        if wait_until(lambda: not session_pids(proc.pid), 10):
            break
    proc.wait(timeout=10)


@pytest.mark.parametrize("document", RUN_DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_document_runs(document: Path, tmp_path: Path, udp_path: str) -> None:
    if udp_path != "native":
        pytest.skip("path-independent: run once")
    for tool, package in (("dig", "bind9-dnsutils"), ("curl", "curl"),
                          ("redis-server", "redis-server"), ("fstrm_capture", "fstrm-bin"),
                          ("dnstap-ldns", "dnstap-ldns")):
        require(tool, package)
    run = DocumentRun(tmp_path)
    outcomes = []
    try:
        for block in blocks(document):
            outcomes.append(run.run(block))
    finally:
        run.close()
    report = "\n".join(outcome.line() for outcome in outcomes)
    print(report)
    assert any(outcome.ran for outcome in outcomes), report
    failures = [outcome.failure for outcome in outcomes if outcome.failure]
    assert not failures, report + "\n\n" + "\n\n".join(failures)
