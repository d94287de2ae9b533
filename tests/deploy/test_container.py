"""The image and the compose stack for real, with a real Docker engine: tools/docker-env
prepares one (packages, dockerd, base images, wheels), the image is built from the working
tree, docker-compose.yml's walkthrough runs with dig and curl, and the image runs under
the Kubernetes manifests' security contexts. Everything made here is removed afterwards:
the compose project (containers, network, volume), the containers, the network and the
image of this test, and the daemon when this test started it (the base images stay,
cached by tag for the next run).

Without Docker (not root, no package, a daemon that cannot start) the tests are skipped,
except under CI=true, where they fail."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

from tests.redis_server import require
from tests.servers import ROOT, free_port, http_status, wait_until
from tests.test_deploy import compose, k8s_documents, published

pytestmark = pytest.mark.docker

TAG = f"gslb-test-{uuid.uuid4().hex[:8]}"
BACKENDS = {"172.28.0.11", "172.28.0.12", "172.28.0.13"}


def _unavailable(message: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(message + " and CI=true", pytrace=False)
    pytest.skip(message)


def run(*argv: str, timeout: float = 300, check: bool = True, **kw: Any) -> subprocess.CompletedProcess:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kw)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(argv)}: exit {result.returncode}\n{result.stdout}\n{result.stderr}")
    return result


@pytest.fixture(scope="module")
def image() -> Iterator[str]:
    """The image built from the working tree (tagged for this run only)."""
    if os.geteuid() != 0 and shutil.which("docker") is None:
        _unavailable("no docker and not root (tools/docker-env needs root to install it)")
    started = time.monotonic()
    env = subprocess.run([str(ROOT / "tools" / "docker-env")], capture_output=True, text=True,
                         timeout=900)
    if env.returncode != 0:
        _unavailable(f"tools/docker-env failed (exit {env.returncode}):\n{env.stderr[-3000:]}")
    match = re.search(r"^DOCKERD_PID=(\d+)$", env.stdout, re.M)
    dockerd = int(match.group(1)) if match else None
    print(f"\ntools/docker-env: {time.monotonic() - started:.1f} s"
          f"{' (started dockerd %d)' % dockerd if dockerd else ''}")
    try:
        started = time.monotonic()
        # The build stage tagged too, so that removing both tags leaves no dangling image.
        run("docker", "build", "-q", "--target", "build", "-t", TAG + "-build", str(ROOT), timeout=600)
        run("docker", "build", "-q", "-t", TAG, str(ROOT), timeout=600)
        print(f"docker build: {time.monotonic() - started:.1f} s")
        yield TAG
    finally:
        run("docker", "image", "rm", "-f", TAG, TAG + "-build", check=False)
        if dockerd:
            os.kill(dockerd, signal.SIGTERM)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                try:
                    os.kill(dockerd, 0)
                except ProcessLookupError:
                    break
                try:  # our child if this process started it
                    os.waitpid(dockerd, os.WNOHANG)
                except ChildProcessError:
                    pass
                time.sleep(0.2)


def test_image_is_small_has_the_api_and_the_native_path(image: str) -> None:
    size = int(run("docker", "image", "inspect", "-f", "{{.Size}}", image).stdout)
    print(f"image size: {size / 1e6:.0f} MB")
    assert size < 300e6
    config = json.loads(run("docker", "image", "inspect", image).stdout)[0]["Config"]
    assert config["User"].split(":")[0] not in ("", "root", "0")
    probe = run("docker", "run", "--rm", "--entrypoint", "python", image, "-c",
                "import os, api.standalone, gslb.server._fastpath as f; "
                "print(os.getuid(), f.__file__)")
    uid, path = probe.stdout.split()
    assert uid == "10053" and path.endswith(".so")
    # No file capability anywhere: it is what made exec fail under no-new-privileges.
    caps = run("docker", "run", "--rm", "--entrypoint", "python", image, "-c",
               "import os, sys\n"
               "for top in ('/usr/local', '/usr/bin'):\n"
               "  for d, _, fs in os.walk(top):\n"
               "    for f in fs:\n"
               "      p = os.path.join(d, f)\n"
               "      try: os.getxattr(p, 'security.capability', follow_symlinks=False); print(p)\n"
               "      except OSError: pass\n")
    assert caps.stdout == ""


# --- the compose walkthrough ----------------------------------------------------------

def dig(port: int, name: str, tcp: bool = False) -> set[str]:
    argv = [require("dig", "bind9-dnsutils"), "@127.0.0.1", "-p", str(port), name, "A",
            "+short", "+time=2", "+tries=1"] + (["+tcp"] if tcp else [])
    result = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    return {line for line in result.stdout.split() if re.fullmatch(r"\d+\.\d+\.\d+\.\d+", line)}


def curl(*argv: str) -> str:
    return run(require("curl", "curl"), "-sS", "--max-time", "5", *argv, timeout=15).stdout


@pytest.fixture(scope="module")
def stack(image: str) -> Iterator[dict]:
    """docker-compose.yml as written, under a unique project name, with this test's image
    and free host ports (an override file: `ports: !override`)."""
    spec = compose()
    project = f"gslbtest{uuid.uuid4().hex[:8]}"
    host_ports: dict[int, int] = {}
    override: dict[str, Any] = {"services": {}}
    for name, service in spec["services"].items():
        entry: dict[str, Any] = {}
        if service.get("build") == ".":
            entry["image"] = image
        if service.get("ports"):
            entry["ports"] = [f"127.0.0.1:{host_ports.setdefault(port, free_port())}:{inner}/{proto}"
                              for _, port, inner, proto in published(service)]
        override["services"][name] = entry
    folder = Path(tempfile.mkdtemp(prefix="gslb-compose-"))
    text = yaml.safe_dump(override).replace("ports:\n", "ports: !override\n")
    (folder / "override.yml").write_text(text)
    base = ["docker", "compose", "-p", project, "--project-directory", str(ROOT),
            "-f", str(ROOT / "docker-compose.yml"), "-f", str(folder / "override.yml")]
    started = time.monotonic()
    try:
        up = run(*base, "up", "-d", "--wait", check=False, timeout=300)
        if up.returncode != 0:
            logs = run(*base, "logs", "--no-color", check=False).stdout
            raise AssertionError(f"compose up: exit {up.returncode}\n{up.stderr}\n{logs[-5000:]}")
        print(f"compose up --wait: {time.monotonic() - started:.1f} s")
        yield {"base": base, "ports": host_ports, "project": project}
    finally:
        started = time.monotonic()
        run(*base, "down", "-v", "--remove-orphans", "-t", "5", check=False, timeout=120)
        print(f"compose down -v: {time.monotonic() - started:.1f} s")
        shutil.rmtree(folder, ignore_errors=True)
        leftovers = run("docker", "ps", "-aq", "--filter", f"label=com.docker.compose.project={project}").stdout
        volumes = run("docker", "volume", "ls", "-q", "--filter", f"label=com.docker.compose.project={project}").stdout
        networks = run("docker", "network", "ls", "-q", "--filter", f"label=com.docker.compose.project={project}").stdout
        assert not (leftovers.strip() or volumes.strip() or networks.strip()), (leftovers, volumes, networks)


def test_compose_walkthrough(stack: dict) -> None:
    ports, base = stack["ports"], stack["base"]
    dns = [ports[5300], ports[5301]]
    web1 = ports[8081]
    # Both nodes answer, on UDP (the native path) and TCP.
    for port in dns:
        assert wait_until(lambda: dig(port, "www.gslb.test") and dig(port, "www.gslb.test") <= BACKENDS, 20)
        assert dig(port, "www.gslb.test", tcp=True) <= BACKENDS
        assert wait_until(lambda: dig(port, "app.gslb.test") == {"172.28.0.11"}, 20)
    for node in ("dns1", "dns2"):
        logs = run(*base, "logs", "--no-color", node).stdout
        assert "udp: native" in logs, logs[-3000:]
    api_log = run(*base, "logs", "--no-color", "--no-log-prefix", "api").stdout
    for line in re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", api_log).splitlines():
        json.loads(line)  # GSLB_LOG_FORMAT=json, honoured by `gslb api` too
    # web1 fails its check: it leaves both nodes' answers, then comes back.
    assert curl("-X", "POST", f"127.0.0.1:{web1}/fail").strip() == "web1: failing"
    for port in dns:
        assert wait_until(lambda: dig(port, "app.gslb.test") == {"172.28.0.12"}, 30), dig(port, "app.gslb.test")
        assert "172.28.0.11" not in dig(port, "www.gslb.test")
    curl("-X", "POST", f"127.0.0.1:{web1}/recover")
    for port in dns:
        assert wait_until(lambda: dig(port, "app.gslb.test") == {"172.28.0.11"}, 30)
    # Metrics on both nodes.
    for metrics in (ports[9153], ports[9154]):
        assert 'gslb_member_up{check="web@172.28.0.11"' in curl(f"127.0.0.1:{metrics}/metrics")
    # The token command, the API, and a change answered by both nodes.
    token = run(*base, "exec", "-T", "api", "gslb", "token", "create", "--name", "ops",
                "--role", "admin", "--redis", "redis://redis:6379/0").stdout.strip()
    auth = f"Authorization: Bearer {token}"
    api = f"127.0.0.1:{ports[8080]}"
    assert "gslb.test." in curl("-H", auth, f"{api}/v1/zones")
    change = curl("-H", auth, "-X", "PUT", "-H", "Content-Type: application/json",
                  "-d", '{"ttl": 300, "rdata": ["192.0.2.50"]}', f"{api}/v1/zones/gslb.test/rrsets/shop/A")
    assert '"version":2' in change, change
    for port in dns:
        assert wait_until(lambda: dig(port, "shop.gslb.test") == {"192.0.2.50"}, 10)
    explain = run(*base, "exec", "-T", "dns1", "gslb", "explain", "app.gslb.test", "--client",
                  "192.0.2.1", "--zones", "/etc/gslb/zones", "--redis", "redis://redis:6379/0").stdout
    assert "configuration: Redis" in explain


# --- the Kubernetes Deployments' security contexts ------------------------------------

def _docker_run_for(workload: dict, image: str, name: str, network: str, config: Path) -> list[str]:
    """`docker run` with what the Deployment declares: its user, capabilities, read-only
    root, no-new-privileges, emptyDir as tmpfs, the ConfigMap as a read-only folder."""
    pod = workload["spec"]["template"]["spec"]
    container = pod["containers"][0]
    context = {**pod.get("securityContext", {}), **container.get("securityContext", {})}
    argv = ["docker", "run", "-d", "--name", name, "--network", network,
            "--user", f"{context['runAsUser']}:{context['runAsGroup']}"]
    for cap in context.get("capabilities", {}).get("drop", []):
        argv += ["--cap-drop", cap]
    for cap in context.get("capabilities", {}).get("add", []):
        argv += ["--cap-add", cap]
    if context.get("readOnlyRootFilesystem"):
        argv.append("--read-only")
    if context.get("allowPrivilegeEscalation") is False:
        argv += ["--security-opt", "no-new-privileges"]
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    for mount in container.get("volumeMounts", []):
        volume = volumes[mount["name"]]
        if "emptyDir" in volume:
            argv += ["--tmpfs", mount["mountPath"]]
        elif "configMap" in volume:
            argv += ["-v", f"{config}:{mount['mountPath']}:ro"]
    for port in container.get("ports", []):
        argv += ["-p", f"127.0.0.1::{port['containerPort']}/{port.get('protocol', 'TCP').lower()}"]
    args = [a.replace("$(POD_NAME)", name) for a in container["args"]]
    return argv + [image] + args


def _host_port(name: str, inner: str) -> int:
    return int(run("docker", "port", name, inner).stdout.split()[0].rsplit(":", 1)[1])


def test_image_starts_under_the_kubernetes_security_contexts(image: str) -> None:
    documents = list(k8s_documents())
    workloads = {d["metadata"]["name"]: d for d in documents if d["kind"] == "Deployment"}
    zones = next(d for d in documents if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "gslb-zones")
    config = Path(tempfile.mkdtemp(prefix="gslb-k8s-"))
    config.chmod(0o755)  # readable by the pods' user
    for file, text in zones["data"].items():
        (config / file).write_text(text)
        (config / file).chmod(0o644)
    suffix = uuid.uuid4().hex[:8]
    network = f"gslbtest-k8s-{suffix}"
    names = {"redis": f"gslbtest-redis-{suffix}", "dns": f"gslbtest-dns-{suffix}",
             "api": f"gslbtest-api-{suffix}", "checker": f"gslbtest-checker-{suffix}"}
    run("docker", "network", "create", network)
    try:
        redis = next(d for d in documents if d["kind"] in ("Deployment", "StatefulSet")
                     and d["spec"]["template"]["spec"]["containers"][0]["image"].startswith("redis"))
        redis_args = redis["spec"]["template"]["spec"]["containers"][0]["args"]
        run("docker", "run", "-d", "--name", names["redis"], "--network", network,
            "--network-alias", "gslb-redis", "redis:7-alpine", *redis_args)
        for role, workload in (("api", "gslb-api"), ("dns", "gslb-dns"), ("checker", "gslb-checker")):
            run(*_docker_run_for(workloads[workload], image, names[role], network, config))
        api = f"http://127.0.0.1:{_host_port(names['api'], '8080/tcp')}/livez"
        assert wait_until(lambda: http_status(api) == 200, 30), run("docker", "logs", names["api"]).stderr
        metrics = _host_port(names["dns"], "9153/tcp")
        ready = f"http://127.0.0.1:{metrics}/ready"
        assert wait_until(lambda: http_status(ready) == 200, 30), run("docker", "logs", names["dns"]).stderr
        dns = _host_port(names["dns"], "5353/udp")
        assert wait_until(lambda: dig(dns, "static.example.com") == {"192.0.2.80"}, 10)
        www = dig(_host_port(names["dns"], "5353/tcp"), "www.example.com", tcp=True)
        assert www and www <= {"192.0.2.10", "192.0.2.11"}
        logs = run("docker", "logs", names["dns"])
        assert "udp: native" in logs.stdout + logs.stderr
        state = run("docker", "inspect", "-f", "{{.State.Running}} {{.RestartCount}}", names["checker"]).stdout
        assert state.split()[0] == "true", run("docker", "logs", names["checker"]).stderr
    finally:
        for name in names.values():
            run("docker", "rm", "-f", "-v", name, check=False)
        run("docker", "network", "rm", network, check=False)
        shutil.rmtree(config, ignore_errors=True)
