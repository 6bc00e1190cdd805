"""Static checks of docker-compose.yml and deploy/Dockerfile.

No Docker engine runs here or in CI, so these tests check what can be
checked without one: the compose file parses and is internally consistent
(images or builds, build contexts, bind mounts, depends_on, ports, volumes),
the Kafka service is a sane single-node KRaft broker, and the Prometheus and
Grafana containers read exactly the files the other tests verify.
"""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
TESTED_PROMETHEUS_CONFIG = ROOT / "deploy" / "prometheus" / "prometheus.yml"
INPUT_TOPICS = ["payments.success", "likes"]
OUTPUT_TOPICS = ["likeguard.alerts", "likeguard.deadletter"]
TOP_LEVEL = {"name", "services", "volumes", "networks", "configs", "secrets"}
CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}
PORT = re.compile(
    r"^(?:(?P<ip>\d{1,3}(?:\.\d{1,3}){3}|\[[0-9a-fA-F:]+\]):)?"
    r"(?:(?P<host>\d+(?:-\d+)?):)?(?P<container>\d+(?:-\d+)?)(?:/(?:tcp|udp|sctp))?$"
)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    doc = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(doc, dict)
    return doc


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def env(service: dict[str, Any]) -> dict[str, str]:
    """A service's environment as a dict, from either compose syntax."""
    raw = service.get("environment") or {}
    if isinstance(raw, list):
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in raw)
    return {k: "" if v is None else str(v) for k, v in raw.items()}


def mounts(service: dict[str, Any]) -> list[tuple[str, str]]:
    """(source, target) of each volume entry, short or long syntax."""
    out = []
    for vol in service.get("volumes") or []:
        if isinstance(vol, dict):
            out.append((str(vol["source"]), str(vol["target"])))
        else:
            parts = vol.split(":")
            assert len(parts) in (2, 3), f"malformed volume {vol!r}"
            out.append((parts[0], parts[1]))
    return out


def is_bind(source: str) -> bool:
    return source.startswith((".", "/", "~"))


def host_path(service: dict[str, Any], container_path: str) -> Path | None:
    """Host path a container path is bind-mounted from (longest mount wins)."""
    target = PurePosixPath(container_path)
    best: tuple[int, Path] | None = None
    for source, mount_target in mounts(service):
        mt = PurePosixPath(mount_target)
        if is_bind(source) and (target == mt or mt in target.parents):
            rest = target.relative_to(mt)
            candidate = (ROOT / source / rest).resolve()
            if best is None or len(mt.parts) > best[0]:
                best = (len(mt.parts), candidate)
    return best[1] if best else None


def command_text(service: dict[str, Any]) -> str:
    cmd = service.get("command") or []
    return cmd if isinstance(cmd, str) else " ".join(str(c) for c in cmd)


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            op, _, args = line.partition(" ")
            out.append((op.upper(), args.strip()))
    return out


# -- compose structure ------------------------------------------------------


def test_compose_top_level(compose: dict[str, Any]) -> None:
    extra = {k for k in compose if k not in TOP_LEVEL and not k.startswith("x-")}
    assert not extra, extra
    assert "version" not in compose  # obsolete in the Compose Specification
    assert {"kafka", "kafka-init", "worker", "simulator", "prometheus", "grafana"} <= set(
        compose["services"]
    )


def test_services_have_image_or_build(services: dict[str, dict[str, Any]]) -> None:
    for name, svc in services.items():
        assert "image" in svc or "build" in svc, name
        image = svc.get("image", "")
        if image and "build" not in svc:
            assert ":" in image and not image.endswith(":latest"), f"{name}: pin {image!r}"


def test_build_contexts_and_dockerfiles_exist(services: dict[str, dict[str, Any]]) -> None:
    builds = {n: s["build"] for n, s in services.items() if "build" in s}
    assert builds, "no service builds the likeguard image"
    for name, build in builds.items():
        if isinstance(build, str):
            build = {"context": build}
        context = (ROOT / build.get("context", ".")).resolve()
        assert context.is_dir(), name
        dockerfile = context / build.get("dockerfile", "Dockerfile")
        assert dockerfile.is_file(), f"{name}: {dockerfile} missing"
    assert {(ROOT / b["context"] / b["dockerfile"]).resolve() for b in builds.values()} == {
        DOCKERFILE.resolve()
    }


def test_bind_mounts_exist_and_named_volumes_declared(compose: dict[str, Any]) -> None:
    declared = set(compose.get("volumes") or {})
    used_named = set()
    for name, svc in compose["services"].items():
        for source, target in mounts(svc):
            assert target.startswith("/"), f"{name}: {target!r} is not absolute"
            if is_bind(source):
                path = (ROOT / source).resolve()
                assert path.exists(), f"{name}: bind mount {source!r} does not exist"
                assert ROOT in path.parents or path == ROOT, f"{name}: {source!r} outside repo"
            else:
                assert source in declared, f"{name}: volume {source!r} not declared"
                used_named.add(source)
    assert used_named == declared, declared - used_named


def test_depends_on_refer_to_services(services: dict[str, dict[str, Any]]) -> None:
    for name, svc in services.items():
        deps = svc.get("depends_on") or []
        items = deps.items() if isinstance(deps, dict) else ((d, {}) for d in deps)
        for dep, spec in items:
            assert dep in services and dep != name, f"{name} depends on unknown {dep!r}"
            condition = (spec or {}).get("condition", "service_started")
            assert condition in CONDITIONS, (name, dep, condition)
            if condition == "service_healthy":
                assert "healthcheck" in services[dep], f"{dep} has no healthcheck"


def test_ports_are_well_formed(services: dict[str, dict[str, Any]]) -> None:
    host_ports: list[int] = []
    for name, svc in services.items():
        for port in svc.get("ports") or []:
            assert isinstance(port, str), f"{name}: quote port {port!r} (YAML base-60 trap)"
            m = PORT.match(port)
            assert m, f"{name}: malformed port {port!r}"
            for part in (m["host"], m["container"]):
                if part:
                    for number in part.split("-"):
                        assert 1 <= int(number) <= 65535, (name, port)
            if m["host"]:
                host_ports.append(int(m["host"].split("-")[0]))
    assert len(host_ports) == len(set(host_ports)), f"host port clash: {host_ports}"


def test_no_unescaped_interpolation() -> None:
    # we use no compose variables: a lone $ would be substituted by compose
    text = COMPOSE.read_text().replace("$$", "")
    assert "$" not in text


# -- Kafka ------------------------------------------------------------------


def test_kafka_is_single_node_kraft(services: dict[str, dict[str, Any]]) -> None:
    kafka = services["kafka"]
    assert kafka["image"] == "apache/kafka:3.9.1"
    e = env(kafka)
    assert set(e["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    voter_id, _, voter_addr = e["KAFKA_CONTROLLER_QUORUM_VOTERS"].partition("@")
    assert voter_id == e["KAFKA_NODE_ID"]
    listeners = dict(item.split("://", 1) for item in e["KAFKA_LISTENERS"].split(","))
    advertised = dict(item.split("://", 1) for item in e["KAFKA_ADVERTISED_LISTENERS"].split(","))
    protocols = dict(item.split(":") for item in e["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    controller = e["KAFKA_CONTROLLER_LISTENER_NAMES"]
    assert controller in listeners and controller not in advertised
    assert voter_addr.rsplit(":", 1)[1] == listeners[controller].rsplit(":", 1)[1]
    assert set(listeners) <= set(protocols) and set(advertised) <= set(listeners)
    assert e["KAFKA_INTER_BROKER_LISTENER_NAME"] in advertised
    for key in ("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR",
                "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
                "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR"):
        assert e[key] == "1", key
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", e["CLUSTER_ID"])
    # clients in the compose network reach the advertised in-network listener
    assert f"kafka:{advertised['PLAINTEXT'].rsplit(':', 1)[1]}" == "kafka:9092"
    assert "healthcheck" in kafka


def test_topic_creation(services: dict[str, dict[str, Any]]) -> None:
    init = services["kafka-init"]
    assert init["image"] == services["kafka"]["image"]
    assert init["depends_on"]["kafka"]["condition"] == "service_healthy"
    script = command_text(init)
    assert "kafka-topics.sh" in script and "--create" in script and "--if-not-exists" in script
    assert "--partitions 6" in script
    for topic in INPUT_TOPICS + OUTPUT_TOPICS:
        assert re.search(rf"(?<![\w.]){re.escape(topic)}(?![\w.])", script), topic
    assert str(init.get("restart", "no")) == "no"


def test_worker_and_simulator(services: dict[str, dict[str, Any]]) -> None:
    worker, sim = services["worker"], services["simulator"]
    for svc in (worker, sim):
        assert env(svc)["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
        assert svc["depends_on"]["kafka-init"]["condition"] == "service_completed_successfully"
    assert shlex.split(command_text(worker))[0] == "worker"
    assert shlex.split(command_text(sim))[:5] == ["simulate", "-", "--to-kafka", "--rate", "200"]
    assert env(worker)["LIKEGUARD_METRICS_PORT"] == "9108"
    assert worker.get("image") == sim.get("image")


def test_worker_checkpoint_key(services: dict[str, dict[str, Any]]) -> None:
    """The worker's checkpoint key is a file the worker-key service makes (once)
    in the volume the worker mounts, before the worker starts."""
    worker, maker = services["worker"], services["worker-key"]
    path = env(worker)["LIKEGUARD_CHECKPOINT_KEY_FILE"]
    assert "LIKEGUARD_CHECKPOINT_KEY" not in env(worker)  # no key in the file itself
    assert worker["depends_on"]["worker-key"]["condition"] == "service_completed_successfully"
    volume = {target: source for source, target in mounts(worker)}["/data"]
    assert (volume, "/data") in mounts(maker) and not is_bind(volume)
    assert PurePosixPath(path).parent == PurePosixPath("/data")
    script = command_text(maker)
    assert f'"{path}"' in script and "secrets.token_hex(32)" in script
    assert maker["entrypoint"] == ["python", "-c"] and maker.get("image") == worker.get("image")
    assert str(maker.get("restart", "no")) == "no"
    compile(script, "worker-key", "exec")  # the script is valid Python


# -- Prometheus and Grafana read the tested files ---------------------------


def test_prometheus_mounts_the_tested_config(services: dict[str, dict[str, Any]]) -> None:
    prom = services["prometheus"]
    flags = dict(arg.split("=", 1) for arg in prom["command"] if "=" in arg)
    config = host_path(prom, flags["--config.file"])
    assert config == TESTED_PROMETHEUS_CONFIG.resolve()
    doc = yaml.safe_load(config.read_text())
    for rule_file in doc["rule_files"]:
        container = PurePosixPath(flags["--config.file"]).parent / rule_file
        host = host_path(prom, str(container))
        assert host is not None and host.is_file(), rule_file
    # the scrape target is the worker service on its metrics port
    targets = [t for job in doc["scrape_configs"] if job["job_name"] == "likeguard"
               for sc in job["static_configs"] for t in sc["targets"]]
    assert targets == [f"worker:{env(services['worker'])['LIKEGUARD_METRICS_PORT']}"]


def test_grafana_provisioning_mounted(services: dict[str, dict[str, Any]]) -> None:
    grafana = services["grafana"]
    e = env(grafana)
    assert e["GF_AUTH_ANONYMOUS_ENABLED"] == "true"
    assert e["GF_AUTH_ANONYMOUS_ORG_ROLE"] == "Viewer"
    prov = host_path(grafana, "/etc/grafana/provisioning")
    assert prov == (ROOT / "deploy" / "grafana" / "provisioning").resolve()
    providers = yaml.safe_load((prov / "dashboards" / "likeguard.yml").read_text())["providers"]
    for provider in providers:
        folder = host_path(grafana, provider["options"]["path"])
        assert folder is not None and (folder / "likeguard.json").is_file()
    sources = yaml.safe_load((prov / "datasources" / "prometheus.yml").read_text())
    url = sources["datasources"][0]["url"]
    m = re.fullmatch(r"http://([\w-]+):(\d+)", url)
    assert m and m[1] in services, url
    assert any(p.endswith(f":{m[2]}") for p in services[m[1]].get("ports", [])), url
    home = e.get("GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH")
    if home:
        resolved = host_path(grafana, home)
        assert resolved is not None and resolved.is_file()


# -- Dockerfile -------------------------------------------------------------


def test_dockerfile(services: dict[str, dict[str, Any]]) -> None:
    ins = dockerfile_instructions()
    froms = [args for op, args in ins if op == "FROM"]
    assert froms and all(f.split()[0] == "python:3.11-slim" for f in froms), froms
    final = max(i for i, (op, _) in enumerate(ins) if op == "FROM")
    runtime = ins[final:]
    users = [args for op, args in runtime if op == "USER"]
    assert users and users[-1].split(":")[0] not in {"root", "0"}, "runs as root"
    assert ("EXPOSE", env(services["worker"])["LIKEGUARD_METRICS_PORT"]) in runtime
    assert ("ENTRYPOINT", '["likeguard"]') in runtime
    assert any(op == "RUN" and re.search(r"\bpip install \.(\s|$)", args) for op, args in ins)
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert "likeguard" in scripts


def test_dockerfile_copies_what_the_package_needs() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    copied: list[str] = []
    for op, args in dockerfile_instructions():
        if op == "COPY" and "--from" not in args:
            parts = args.split()
            copied.extend(parts[:-1])
    for source in copied:
        assert (ROOT / source).exists(), f"Dockerfile copies missing {source!r}"
    need = {"pyproject.toml"}
    readme = project["project"].get("readme")
    if isinstance(readme, str):
        need.add(readme)
    includes = project.get("tool", {}).get("setuptools", {}).get("packages", {})
    for pattern in includes.get("find", {}).get("include", []):
        need.add(pattern.rstrip("*").rstrip("."))
    assert need <= set(copied), need - set(copied)


def test_compose_commands_parse_with_the_cli(services: dict[str, dict[str, Any]]) -> None:
    """The commands compose runs are accepted by the real ``likeguard`` parser."""
    from streams.cli import build_parser

    parser = build_parser()
    for name in ("worker", "simulator"):
        argv = shlex.split(command_text(services[name]))
        try:
            parser.parse_args(argv)
        except SystemExit as exc:  # argparse reports errors by exiting
            pytest.fail(f"{name}: `likeguard {' '.join(argv)}` is rejected (exit {exc.code})")
