"""The deployment files against reality, as far as this machine allows (it has no Docker
engine and no Kubernetes): every gslb command line in the Dockerfile, docker-compose.yml,
the Kubernetes manifests and the systemd unit parses with the real CLI, ports and volumes
agree with those commands, files they copy or mount exist, the zones they serve pass
`gslb check`, and the image's default command really serves (run here on free ports)."""

from __future__ import annotations

import json
import re
import shlex
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

from gslb.cli import build_parser
from gslb.settings import parse_listen
from gslb.load.zonefile import load_zones
from tests.conftest import DEMO_ZONE_NAMES
from tests.servers import ROOT, GslbProcess, free_port, http_status, stop_process, wait_until

DOCKERFILE = ROOT / "Dockerfile"
COMPOSE = ROOT / "docker-compose.yml"
K8S = ROOT / "deploy" / "k8s"
UNIT = ROOT / "deploy" / "systemd" / "gslb.service"


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    instructions = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            instructions.append((keyword.upper(), rest.strip()))
    return instructions


def final_stage() -> list[tuple[str, str]]:
    steps = dockerfile()
    last_from = max(i for i, (keyword, _) in enumerate(steps) if keyword == "FROM")
    return steps[last_from:]


def parse_gslb(argv: list[str]) -> Any:
    """What the real CLI makes of a command line (argparse exits on an unknown flag)."""
    try:
        return build_parser().parse_args(argv)
    except SystemExit as exc:  # pragma: no cover - the failure message is the point
        raise AssertionError(f"gslb rejects {argv}: exit {exc.code}") from None


def listen_ports(args: Any) -> set[int]:
    return {parse_listen(item).port for item in (args.listen or [])}


def test_dockerfile_is_small_non_root_and_has_no_file_capability() -> None:
    steps = final_stage()
    keywords = [keyword for keyword, _ in steps]
    assert steps[0][1].startswith("python:3.11-slim")
    user = [rest for keyword, rest in steps if keyword == "USER"]
    assert user and user[-1].split(":")[0] not in ("root", "0")
    run = " ".join(rest for keyword, rest in steps if keyword == "RUN")
    # A file capability makes exec fail under `capabilities: {drop: [ALL]}` and
    # no-new-privileges (Kubernetes): port 53 comes from the network namespace's sysctl.
    assert "setcap" not in run
    assert "rm -rf /var/lib/apt/lists/*" in run
    assert "_fastpath" in " ".join(rest for keyword, rest in dockerfile() if keyword == "RUN")
    build = [rest for keyword, rest in dockerfile() if keyword == "COPY" and not rest.startswith("--from")]
    copied = {source for rest in build for source in rest.split()[:-1]}
    assert {"setup.py", "api", "gslb", "pyproject.toml", "wheels"} <= copied
    assert keywords.index("USER") > max(i for i, k in enumerate(keywords) if k == "RUN")
    for keyword, rest in dockerfile():  # every COPY source from the build context exists
        if keyword == "COPY" and not rest.startswith("--from"):
            for source in rest.split()[:-1]:
                assert (ROOT / source).exists(), source
    entrypoint = json.loads(dict(steps)["ENTRYPOINT"])
    assert entrypoint == ["gslb"]
    assert "gslb" in (ROOT / "pyproject.toml").read_text().split("[project.scripts]")[1]
    command = json.loads(dict(steps)["CMD"])
    args = parse_gslb(command)
    assert listen_ports(args) == {53}
    exposed = {p for keyword, rest in steps if keyword == "EXPOSE" for p in rest.split()}
    assert exposed == {"53/udp", "53/tcp", f"{parse_listen(args.metrics).port}/tcp"}


def test_the_images_default_command_serves(tmp_path: Path) -> None:
    """The CMD as the entrypoint runs it, with its ENV, on free ports instead of 53."""
    steps = final_stage()
    env = dict(item.split("=", 1) for item in shlex.split(dict(steps)["ENV"]))
    assert env["GSLB_ZONES"] == "/etc/gslb/zones"
    assert ("COPY", "zones /etc/gslb/zones") in steps
    command = json.loads(dict(steps)["CMD"])
    assert command[0] == "serve"
    metrics_port = free_port()
    server = GslbProcess(ROOT / "zones")  # what the image copied to /etc/gslb/zones
    # GslbProcess gives --listen itself (a free port instead of 53).
    server.extra = retarget(command[1:], {"--listen": None,
                                          "--metrics": f"127.0.0.1:{metrics_port}"})
    server.extra += ["--log-format", env["GSLB_LOG_FORMAT"]]
    server.start(DEMO_ZONE_NAMES)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/ready", timeout=5) as r:
            assert r.status == 200
    finally:
        assert server.stop() == 0
    for line in server.log().splitlines():
        json.loads(line)  # GSLB_LOG_FORMAT=json: every line is JSON


def retarget(argv: list[str], values: dict[str, str | None]) -> list[str]:
    """`argv` with the value of each flag in `values` replaced (None: flag dropped)."""
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg in values:
            skip = True
            if values[arg] is not None:
                out += [arg, str(values[arg])]
            continue
        out.append(arg)
    return out


def k8s_documents() -> Iterator[dict]:
    for path in sorted(K8S.glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            if document:
                yield document


def test_kubernetes_manifests_use_real_flags_and_meaningful_probes(tmp_path: Path) -> None:
    documents = list(k8s_documents())
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    listed = set(kustomization["resources"])
    assert listed == {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    workloads = [d for d in documents if d["kind"] in ("Deployment", "StatefulSet")]
    services = [d for d in documents if d["kind"] == "Service"]
    dns_pods = 0
    for workload in workloads:
        pod = workload["spec"]["template"]
        selector = workload["spec"]["selector"]["matchLabels"]
        assert selector.items() <= pod["metadata"]["labels"].items()
        for container in pod["spec"]["containers"]:
            ports = {p["name"]: p for p in container.get("ports", [])}
            for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
                spec = container.get(probe, {})
                for kind in ("httpGet", "tcpSocket"):
                    if kind in spec:
                        assert spec[kind]["port"] in ports, (workload["metadata"]["name"], probe)
            if not container["image"].startswith("gslb"):
                continue
            args = parse_gslb(container["args"])
            if args.command == "api":  # the zones it imports: a mounted ConfigMap too
                args.zones = args.import_dir
                assert container["readinessProbe"]["httpGet"]["path"] == "/livez"
            _check_zones_volume(documents, pod, container, args, tmp_path / workload["metadata"]["name"])
            if args.redis:  # a Service of this kustomization, on its port
                host, port = re.match(r"redis://([^:/]+):(\d+)", args.redis).groups()
                redis_services = [d for d in services if d["metadata"]["name"] == host]
                assert [p["port"] for d in redis_services for p in d["spec"]["ports"]] == [int(port)]
            if args.command != "serve":
                continue
            dns_pods += 1
            assert {p["containerPort"] for n, p in ports.items() if n.startswith("dns")} == \
                listen_ports(args)
            assert ports["metrics"]["containerPort"] == parse_listen(args.metrics).port
            assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
            assert container["livenessProbe"]["httpGet"]["path"] == "/live"
    assert dns_pods >= 1
    for service in services:
        selected = [w for w in workloads if service["spec"]["selector"].items()
                    <= w["spec"]["template"]["metadata"]["labels"].items()]
        assert selected, service["metadata"]["name"]
        names = {p["name"] for w in selected for c in w["spec"]["template"]["spec"]["containers"]
                 for p in c.get("ports", [])}
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in names, (service["metadata"]["name"], port)


def _check_zones_volume(documents: list[dict], pod: dict, container: dict, args: Any,
                        folder: Path) -> None:
    """The folder given as --zones is a mounted ConfigMap whose zones and steering pass
    `gslb check`."""
    from gslb.load.steering import load_all_steering

    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volume = {v["name"]: v for v in pod["spec"]["volumes"]}[mounts[str(args.zones)]]
    folder.mkdir(parents=True)
    for name, text in _configmap(documents, volume["configMap"]["name"]).items():
        (folder / name).write_text(text)
    report = load_zones(folder)
    steered, problems = load_all_steering(folder, report.zones)
    assert report.zones and steered and not report.problems and not problems, problems


def _configmap(documents: list[dict], name: str) -> dict[str, str]:
    for document in documents:
        if document["kind"] == "ConfigMap" and document["metadata"]["name"] == name:
            return document["data"]
    raise AssertionError(f"no ConfigMap {name}")


def test_kubernetes_manifests_match_the_kubernetes_api_schemas() -> None:
    """Every object against the Kubernetes OpenAPI schemas (offline, kubernetes-validate),
    strict: a misspelt field (readOnlyRootFilesytem) fails instead of being ignored."""
    import copy

    import kubernetes_validate

    version = kubernetes_validate.latest_version()
    documents = [d for d in k8s_documents() if d.get("kind") != "Kustomization"]
    assert {d["kind"] for d in documents} >= {"Deployment", "Service", "ConfigMap"}
    for document in documents:
        kubernetes_validate.validate(document, version, strict=True)
    typo = copy.deepcopy(next(d for d in documents if d["kind"] == "Deployment"))
    typo["spec"]["template"]["spec"]["containers"][0]["securityContext"]["readOnlyRootFilesytem"] = True
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(typo, version, strict=True)


def test_kubernetes_workloads_start_under_their_security_context() -> None:
    """What the image needs under the manifests' securityContext: no capability (the image
    has no file capability, the DNS pods listen on 5353), a non-root user, and a writable
    /tmp (emptyDir) wherever the root file system is read-only. tests/deploy runs them."""
    for workload in (d for d in k8s_documents() if d["kind"] == "Deployment"):
        pod = workload["spec"]["template"]["spec"]
        for container in pod["containers"]:
            if not container["image"].startswith("gslb"):
                continue
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False
            assert context["readOnlyRootFilesystem"] is True
            assert context["capabilities"] == {"drop": ["ALL"]}
            assert pod["securityContext"]["runAsNonRoot"] is True
            mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
            volumes = {v["name"]: v for v in pod.get("volumes", [])}
            assert "emptyDir" in volumes[mounts["/tmp"]], workload["metadata"]["name"]
            args = parse_gslb(container["args"])
            if args.command == "serve":
                assert all(port >= 1024 for port in listen_ports(args))


def test_systemd_unit_runs_real_commands_with_the_bind_capability() -> None:
    unit: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            unit.setdefault(key.strip(), []).append(value.strip())
    assert "CAP_NET_BIND_SERVICE" in unit["AmbientCapabilities"][0]
    assert unit["CapabilityBoundingSet"] == ["CAP_NET_BIND_SERVICE"]
    assert unit["User"] != ["root"]
    for key in ("ExecStart", "ExecStartPre"):
        argv = shlex.split(unit[key][0])
        assert argv[0].endswith("/gslb")
        parse_gslb(argv[1:])
    environment = dict(item.split("=", 1) for item in shlex.split(unit["Environment"][0]))
    assert parse_listen(environment["GSLB_LISTEN"]).port == 53
    assert environment["GSLB_LOG_FORMAT"] in ("text", "json", "logfmt")


def test_grafana_dashboard_queries_metrics_the_server_exports() -> None:
    from gslb.observability import metrics

    dashboard = json.loads((ROOT / "deploy" / "grafana" / "gslb-dashboard.json").read_text())
    exported = {name for module in Path(metrics.__file__).parent.glob("*.py")
                for name in re.findall(r'"(gslb_[a-z_]+)"', module.read_text())}
    histograms = {name + suffix for name in exported for suffix in ("_bucket", "_sum", "_count")}
    counters = {name + "_total" for name in exported}
    names = exported | histograms | counters
    used = set()
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            used |= set(re.findall(r"\b(gslb_[a-z_]+)\b", target["expr"]))
    assert used and used <= names, used - names


def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())  # merge keys (<<) resolved by the loader


def gslb_services() -> dict[str, Any]:
    """Compose services that run the gslb entrypoint, with what the CLI makes of them."""
    parsed = {}
    for name, service in compose()["services"].items():
        if service.get("build") == "." and "entrypoint" not in service:
            parsed[name] = parse_gslb(service["command"])
    return parsed


def published(service: dict) -> list[tuple[str, int, int, str]]:
    """(host ip, host port, container port, protocol) per `ports` entry."""
    out = []
    for entry in service.get("ports", []):
        mapping, _, protocol = entry.partition("/")
        host_ip, host_port, container_port = mapping.rsplit(":", 2)
        out.append((host_ip, int(host_port), int(container_port), protocol or "tcp"))
    return out


def test_compose_file_matches_the_cli_and_itself(tmp_path: Path) -> None:
    from gslb.load.steering import load_all_steering

    spec = compose()
    services = spec["services"]
    parsed = gslb_services()
    commands = {name: args.command for name, args in parsed.items()}
    assert sorted(commands.values()) == ["api", "checker", "checker", "serve", "serve"]
    assert {a.agent for a in parsed.values() if a.command == "checker"} == {"agent-a", "agent-b"}
    backends = {n: s for n, s in services.items() if s.get("entrypoint") == ["python", "/srv/backend.py"]}
    assert len(backends) == 3
    subnet = spec["networks"]["gslb"]["ipam"]["config"][0]["subnet"]
    addresses = {n: s["networks"]["gslb"]["ipv4_address"] for n, s in services.items()}
    assert len(set(addresses.values())) == len(addresses)
    import ipaddress
    assert all(ipaddress.ip_address(a) in ipaddress.ip_network(subnet) for a in addresses.values())
    host_ports = [(ip, port, proto) for s in services.values() for ip, port, _, proto in published(s)]
    assert len(host_ports) == len(set(host_ports))  # no two services publish the same port
    for name, args in parsed.items():
        service = services[name]
        assert args.redis.startswith("redis://redis:6379")  # the redis service, its port
        assert "redis" in service["depends_on"]
        mounts = {v.split(":")[1]: v.split(":")[0] for v in service["volumes"]}
        if args.command == "api":
            assert str(args.import_dir) in mounts  # it imports the mounted zones
            api_port = parse_listen(args.listen).port
            assert api_port in {c for _, _, c, _ in published(service)}
            assert f"127.0.0.1:{api_port}/livez" in " ".join(service["healthcheck"]["test"])
            continue
        zones = ROOT / mounts[str(args.zones)]
        report = load_zones(zones)
        steered, problems = load_all_steering(zones, report.zones)
        assert report.zones and not report.problems and not problems
        if args.command == "serve":
            dns_ports = {c for _, _, c, _ in published(service) if c in listen_ports(args)}
            assert dns_ports == listen_ports(args) == {53}
            assert {p for _, _, c, p in published(service) if c == 53} == {"udp", "tcp"}
            metrics = parse_listen(args.metrics).port
            assert metrics in {c for _, _, c, _ in published(service)}
            assert f"127.0.0.1:{metrics}/ready" in " ".join(service["healthcheck"]["test"])
    # The steered members are the backends, probed where the backends listen.
    members = {m.value for record in steered.values() for pool in record.pools.values()
               for m in pool.members}
    assert members == {addresses[n] for n in backends}
    for record in steered.values():
        for pool in record.pools.values():
            for member in pool.members:
                assert member.probe is not None and member.probe.check.port == 8080
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), (name, source)
            else:
                assert source in spec["volumes"], (name, source)
        for dependency in service.get("depends_on", {}):
            assert dependency in services
    redis = services["redis"]
    assert "--appendonly" in redis["command"] and any(v.endswith(":/data") for v in redis["volumes"])


def test_compose_dns_node_command_serves_with_redis(tmp_path: Path, redis_server) -> None:
    """dns1's command line, with the test's Redis and free ports: ready on /ready."""
    args = gslb_services()["dns1"]
    command = compose()["services"]["dns1"]["command"]
    metrics_port = free_port()
    server = GslbProcess(ROOT / "deploy" / "compose" / "zones")
    server.extra = retarget(command[1:], {"--listen": None, "--zones": None,
                                          "--metrics": f"127.0.0.1:{metrics_port}",
                                          "--redis": redis_server.url})
    assert str(args.zones) == "/etc/gslb/zones"
    server.start(["gslb.test."])
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/ready", timeout=5) as r:
            assert r.status == 200
        reply = server.query("www.gslb.test", "A")
        assert {r.to_text() for rrset in reply.answer for r in rrset} <= {
            "172.28.0.11", "172.28.0.12", "172.28.0.13"}
    finally:
        assert server.stop() == 0


def test_demo_backend_fails_and_recovers_on_request(tmp_path: Path) -> None:
    import subprocess
    import sys
    from tests.servers import stop_process, wait_until

    port = free_port()
    proc = subprocess.Popen([sys.executable, str(ROOT / "deploy" / "compose" / "backend.py")],
                            env={"PORT": str(port), "BACKEND_NAME": "web9"})
    base = f"http://127.0.0.1:{port}"

    def status(path: str, method: str = "GET") -> int:
        return http_status(base + path, method)

    try:
        assert wait_until(lambda: status("/healthz") == 200)
        with urllib.request.urlopen(base + "/", timeout=2) as reply:
            assert reply.read() == b"hello from web9\n"
        assert status("/fail", "POST") == 200 and status("/healthz") == 503
        assert status("/recover", "POST") == 200 and status("/healthz") == 200
    finally:
        stop_process(proc)


def test_compose_api_command_serves_the_imported_zones(tmp_path: Path, redis_server) -> None:
    """The api service's command line with the test's Redis and a free port: it imports
    the compose zones into Redis and answers with a token made as the compose file says."""
    import subprocess
    import sys

    import httpx

    command = compose()["services"]["api"]["command"]
    port = free_port()
    argv = retarget(command, {"--redis": redis_server.url, "--listen": f"127.0.0.1:{port}",
                              "--import": str(ROOT / "deploy" / "compose" / "zones")})
    log = open(tmp_path / "api.log", "w")
    import os

    # With the image's GSLB_LOG_FORMAT=json, `gslb api` logs JSON lines like the others.
    proc = subprocess.Popen([sys.executable, "-m", "gslb.cli", *argv], stdout=log,
                            stderr=subprocess.STDOUT, cwd=ROOT,
                            env={**os.environ, "GSLB_LOG_FORMAT": "json"})
    try:
        assert wait_until(lambda: _status(f"http://127.0.0.1:{port}/livez") == 200, 20), \
            (tmp_path / "api.log").read_text()
        lines = (tmp_path / "api.log").read_text().splitlines()
        assert lines and all(json.loads(line)["logger"].startswith("gslb") for line in lines)
        token = subprocess.run([sys.executable, "-m", "gslb.cli", "token", "create", "--name",
                                "ops", "--role", "admin", "--redis", redis_server.url],
                               capture_output=True, text=True, check=True, cwd=ROOT).stdout.strip()
        zones = httpx.get(f"http://127.0.0.1:{port}/v1/zones", timeout=5,
                          headers={"Authorization": f"Bearer {token}"})
        assert zones.status_code == 200, zones.text
        assert "gslb.test." in zones.text
    finally:
        stop_process(proc)
        log.close()


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=1) as reply:
            return reply.status
    except OSError:
        return 0
