"""Pytest plugin: one real Apache Kafka broker (KRaft, single node) per test session.

Load it from ``tests/conftest.py`` with ``pytest_plugins = ["tests.kafka_broker"]``.

Fixtures
--------
``kafka_broker`` (session) -> :class:`KafkaBroker`
    Starts ``deploy/kafka/kafka.sh start`` with a private state dir under pytest's
    tmp dir and free loopback ports (PLAINTEXT, controller, SASL_SSL), stops it at
    session end. With ``KAFKA_BOOTSTRAP_SERVERS`` set, uses that broker instead and
    never starts or stops anything.
``kafka_bootstrap`` (session) -> ``str``
    ``"127.0.0.1:PORT"``: the bootstrap address of that broker.
``kafka_sasl`` (session) -> :class:`SaslSettings`
    SASL_SSL / SCRAM-SHA-256 listener of the session broker (skips the test when
    an external broker gives no ``KAFKA_SASL_*`` settings).
``kafka_topic_factory`` (function) -> ``make(prefix="t", partitions=6, configs=None) -> str``
    Creates a uniquely named topic, waits until every partition has a leader,
    returns its name; deletes the topics it made when the test ends.
``kafka_private_broker`` (function) -> :class:`KafkaBroker`
    A broker of the test's own (PLAINTEXT only) that the test may stop and
    start again on the same ports and data (:meth:`KafkaBroker.stop`,
    :meth:`KafkaBroker.start`) or freeze with SIGSTOP (:meth:`KafkaBroker.freeze`,
    :meth:`KafkaBroker.thaw`); stopped when the test ends. Skips the test
    with ``KAFKA_BOOTSTRAP_SERVERS`` set (an external broker is not ours to stop).

Helpers (importable: ``from tests.kafka_broker import ...``)
    ``start_broker(state_dir, authorizer=False, mtls=False)`` / ``stop_broker(broker)``:
    a broker of a test's own (e.g. with the StandardAuthorizer and a mutual-TLS
    listener, which the session broker has not); ``unique_name(prefix)``,
    ``create_topics(bootstrap, names, partitions=6, ...)``,
    ``delete_topics(bootstrap, names)``, ``consume_records(bootstrap, topic, count, ...)``.

Tests that use any of these fixtures are marked ``kafka`` automatically, so
``pytest -m "not kafka"`` never starts the broker.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
KAFKA_SH = REPO / "deploy" / "kafka" / "kafka.sh"

# First start may fetch ~46 MB of jars with Maven; later starts take a few seconds.
START_TIMEOUT_S = float(os.environ.get("LIKEGUARD_KAFKA_START_TIMEOUT", "900"))
_KAFKA_FIXTURES = {"kafka_broker", "kafka_bootstrap", "kafka_sasl", "kafka_topic_factory",
                   "kafka_private_broker"}
_TOPIC_RE = re.compile(r"^[A-Za-z0-9._-]+$")


@dataclass(frozen=True)
class SaslSettings:
    bootstrap: str
    username: str
    password: str
    cafile: str
    mechanism: str = "SCRAM-SHA-256"
    security_protocol: str = "SASL_SSL"

    def kafka_python_kwargs(self) -> dict:
        """Keyword arguments for kafka-python clients (KafkaProducer, KafkaConsumer, ...)."""
        return {
            "bootstrap_servers": self.bootstrap,
            "security_protocol": self.security_protocol,
            "sasl_mechanism": self.mechanism,
            "sasl_plain_username": self.username,
            "sasl_plain_password": self.password,
            "ssl_cafile": self.cafile,
        }


@dataclass(frozen=True)
class KafkaBroker:
    bootstrap: str
    external: bool  # True: given by KAFKA_BOOTSTRAP_SERVERS, not started by us
    state_dir: Path | None = None
    sasl: SaslSettings | None = None
    #: the environment kafka.sh started it with (state dir, ports); None: external
    env: dict[str, str] | None = None
    #: what kafka.sh wrote to sasl.env and ssl.env (users, passwords, certificate files)
    client_env: dict[str, str] | None = None

    @property
    def log_file(self) -> Path | None:
        return self.state_dir / "kafka.log" if self.state_dir else None

    # Fault injection. Only on a broker a test started for itself
    # (``kafka_private_broker``): the session broker is shared by every test.

    def _own_env(self) -> dict[str, str]:
        if self.external or self.env is None:
            raise RuntimeError("not a broker this test session started")
        return self.env

    def pid(self) -> int | None:
        """Pid of the broker's JVM (kafka.sh's pid file), None when it is not running."""
        self._own_env()
        assert self.state_dir is not None
        try:
            pid = int((self.state_dir / "kafka.pid").read_text().strip())
            os.kill(pid, 0)
        except (OSError, ValueError):
            return None
        return pid

    def stop(self) -> None:
        """Stop the broker (SIGTERM, as ``kafka.sh stop``); its data stays."""
        env = self._own_env()
        self.thaw()  # a frozen JVM cannot act on SIGTERM
        proc = _run_kafka_sh("stop", env, 120)
        if proc.returncode != 0:
            raise RuntimeError(f"kafka.sh stop failed: {proc.stderr}")

    def start(self) -> None:
        """Start the stopped broker again: same ports, same data (``KAFKA_KEEP_DATA=1``)."""
        env = dict(self._own_env(), KAFKA_KEEP_DATA="1")
        proc = _run_kafka_sh("start", env, START_TIMEOUT_S)
        if proc.returncode != 0:
            raise RuntimeError(f"kafka.sh start (restart) failed:\n{proc.stderr}\n{self.log_tail()}")
        assert proc.stdout.strip().splitlines()[-1] == self.bootstrap, proc.stdout

    def freeze(self) -> None:
        """SIGSTOP the broker's JVM: its sockets stay open, nothing answers."""
        pid = self.pid()
        assert pid is not None, "the broker is not running"
        os.kill(pid, signal.SIGSTOP)

    def thaw(self) -> None:
        """SIGCONT the broker's JVM (a no-op when it is not frozen or not running)."""
        pid = self.pid()
        if pid is not None:
            os.kill(pid, signal.SIGCONT)

    def log_tail(self, lines: int = 60) -> str:
        if not self.log_file or not self.log_file.exists():
            return ""
        return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])


# ----------------------------------------------------------------------------- helpers


def unique_name(prefix: str = "t") -> str:
    """A topic / group name that no other test (or earlier run on a reused broker) uses."""
    if not _TOPIC_RE.match(prefix):
        raise ValueError(f"topic prefix {prefix!r} has characters Kafka does not allow")
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def _admin(bootstrap: str, **kw):
    from kafka import KafkaAdminClient

    return KafkaAdminClient(bootstrap_servers=bootstrap, client_id="likeguard-tests", **kw)


def _kafka_python_major() -> int:
    import kafka

    return int(str(kafka.__version__).split(".")[0])


def create_topics(
    bootstrap: str,
    names: Iterable[str],
    partitions: int = 6,
    replication_factor: int = 1,
    configs: dict[str, str] | None = None,
    timeout: float = 30.0,
) -> list[str]:
    """Create topics and wait until each has ``partitions`` partitions with a leader.

    Raises (kafka.errors.TopicAlreadyExistsError, ...) if the broker refuses one.
    """
    names = list(names)
    if not names:
        return names
    admin = _admin(bootstrap)
    try:
        if _kafka_python_major() >= 3:
            spec: dict[str, Any] = {"num_partitions": partitions,
                                    "replication_factor": replication_factor}
            if configs:
                spec["configs"] = dict(configs)
            admin.create_topics({n: dict(spec) for n in names}, timeout_ms=int(timeout * 1000))
        else:  # kafka-python 2.x API
            from kafka.admin import NewTopic

            admin.create_topics(
                [NewTopic(n, partitions, replication_factor, topic_configs=configs or {}) for n in names],
                timeout_ms=int(timeout * 1000),
            )
        _wait_for_leaders(admin, names, partitions, time.monotonic() + timeout)
    finally:
        admin.close()
    return names


def _wait_for_leaders(admin, names: list[str], partitions: int, deadline: float) -> None:
    last = None
    while True:
        ready = set()
        last = admin.describe_topics(names)
        for t in last:
            name = t.get("name", t.get("topic"))
            parts = t.get("partitions") or []
            leaders = [p.get("leader_id", p.get("leader", -1)) for p in parts]
            if (
                t.get("error_code", 0) == 0
                and len(parts) == partitions
                and all(leader is not None and leader >= 0 for leader in leaders)
            ):
                ready.add(name)
        if ready >= set(names):
            return
        if time.monotonic() >= deadline:
            raise TimeoutError(f"topics {sorted(set(names) - ready)} not ready; last metadata: {last}")
        time.sleep(0.05)


def delete_topics(bootstrap: str, names: Iterable[str], timeout: float = 30.0) -> None:
    """Delete topics; missing ones are ignored."""
    names = list(names)
    if not names:
        return
    admin = _admin(bootstrap)
    try:
        admin.delete_topics(
            names,
            timeout_ms=int(timeout * 1000),
            **({"raise_errors": False} if _kafka_python_major() >= 3 else {}),
        )
    finally:
        admin.close()


def consume_records(
    bootstrap: str,
    topic: str,
    count: int,
    timeout: float = 30.0,
    **consumer_kwargs,
) -> list:
    """Read ``count`` records of ``topic`` from the beginning with kafka-python.

    Polls until ``count`` records arrived or ``timeout`` seconds passed; fails the
    test (AssertionError) with what it did get when short. Reads a little past
    ``count`` (one more poll) so that unexpected extra records are returned too.
    """
    from kafka import KafkaConsumer

    kw = {"auto_offset_reset": "earliest", "enable_auto_commit": False, "group_id": None}
    kw.update(consumer_kwargs)
    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, **kw)
    got: list = []
    try:
        deadline = time.monotonic() + timeout
        while len(got) < count and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=200).values():
                got.extend(records)
        if len(got) >= count:  # one short extra poll to catch surplus records
            for records in consumer.poll(timeout_ms=300).values():
                got.extend(records)
    finally:
        consumer.close()
    assert len(got) >= count, f"only {len(got)} of {count} records from {topic} in {timeout}s: {got!r}"
    return got


def _free_ports(n: int) -> list[int]:
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _read_env_file(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            k, v = line.split("=", 1)
            out[k.strip()] = v.strip()
    return out


def _sasl_from_env(env: dict[str, str]) -> SaslSettings | None:
    keys = ("KAFKA_SASL_BOOTSTRAP_SERVERS", "KAFKA_SASL_USERNAME", "KAFKA_SASL_PASSWORD", "KAFKA_SSL_CAFILE")
    if not all(env.get(k) for k in keys):
        return None
    return SaslSettings(
        bootstrap=env["KAFKA_SASL_BOOTSTRAP_SERVERS"],
        username=env["KAFKA_SASL_USERNAME"],
        password=env["KAFKA_SASL_PASSWORD"],
        cafile=env["KAFKA_SSL_CAFILE"],
        mechanism=env.get("KAFKA_SASL_MECHANISM", "SCRAM-SHA-256"),
    )


def _run_kafka_sh(cmd: str, env: dict[str, str], timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(KAFKA_SH), cmd], env=env, capture_output=True, text=True, timeout=timeout
    )


def _start_broker(state_dir: Path, extra_env: dict[str, str] | None = None,
                  mtls: bool = False, sasl_listener: bool = True) -> KafkaBroker:
    last_err = ""
    for _attempt in range(3):  # retry only when a picked port got taken meanwhile
        port, controller_port, sasl_port, ssl_port = _free_ports(4)
        env = dict(os.environ)
        env.update(
            KAFKA_STATE_DIR=str(state_dir),
            KAFKA_HOST="127.0.0.1",
            KAFKA_PORT=str(port),
            KAFKA_CONTROLLER_PORT=str(controller_port),
            KAFKA_WATCH_PID=str(os.getpid()),  # broker dies with this pytest process
            PYTHON=sys.executable,
        )
        env.pop("KAFKA_KEEP_DATA", None)
        if sasl_listener:
            env["KAFKA_SASL_PORT"] = str(sasl_port)
        else:
            env.pop("KAFKA_SASL_PORT", None)
        if mtls:
            env["KAFKA_SSL_PORT"] = str(ssl_port)
        env.update(extra_env or {})
        try:
            proc = _run_kafka_sh("start", env, START_TIMEOUT_S)
        except subprocess.TimeoutExpired as exc:
            _run_kafka_sh("stop", env, 120)
            pytest.fail(f"kafka.sh start timed out after {START_TIMEOUT_S}s: {exc.stderr!s}",
                        pytrace=False)
        if proc.returncode == 0:
            bootstrap = proc.stdout.strip().splitlines()[-1]
            client_env: dict[str, str] = {}
            for name in ("sasl.env", "ssl.env"):
                if (state_dir / name).exists():
                    client_env.update(_read_env_file(state_dir / name))
            sasl = _sasl_from_env(client_env) if client_env else None
            return KafkaBroker(bootstrap=bootstrap, external=False, state_dir=state_dir, sasl=sasl,
                               env=env, client_env=client_env)
        last_err = proc.stderr
        if "already in use" not in last_err and "BindException" not in last_err:
            break
    pytest.fail(f"could not start the Kafka broker (deploy/kafka/kafka.sh start):\n{last_err}", pytrace=False)


def start_broker(state_dir: Path, authorizer: bool = False, mtls: bool = False,
                 env: dict[str, str] | None = None) -> KafkaBroker:
    """Start a broker of the caller's own in ``state_dir`` (free loopback ports,
    a SASL_SSL listener; with ``authorizer`` the StandardAuthorizer and its
    extra SCRAM users, with ``mtls`` an SSL listener requiring client
    certificates; ``env``: more kafka.sh settings). Stop it with :func:`stop_broker`."""
    return _start_broker(state_dir, {"KAFKA_AUTHORIZER": "1" if authorizer else "0", **(env or {})},
                         mtls=mtls)


def stop_broker(broker: KafkaBroker) -> None:
    assert broker.state_dir is not None, "an external broker is not ours to stop"
    env = dict(os.environ, KAFKA_STATE_DIR=str(broker.state_dir), PYTHON=sys.executable)
    proc = _run_kafka_sh("stop", env, 120)
    if proc.returncode != 0:
        print(f"kafka.sh stop failed: {proc.stderr}", file=sys.stderr)


def _check_reachable(bootstrap: str) -> None:
    try:
        admin = _admin(
            bootstrap,
            request_timeout_ms=10000,
            **({"bootstrap_timeout_ms": 10000} if _kafka_python_major() >= 3 else {}),
        )
        admin.close()
    except Exception as exc:  # noqa: BLE001 - any failure means the broker is unusable
        pytest.fail(f"KAFKA_BOOTSTRAP_SERVERS={bootstrap} is not reachable: {exc!r}", pytrace=False)


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaBroker]:
    external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "").strip()
    if external:
        _check_reachable(external)
        yield KafkaBroker(bootstrap=external, external=True, sasl=_sasl_from_env(dict(os.environ)))
        return
    state_dir = tmp_path_factory.mktemp("kafka-broker")
    broker = _start_broker(state_dir)
    try:
        yield broker
    finally:
        env = dict(os.environ, KAFKA_STATE_DIR=str(state_dir), PYTHON=sys.executable)
        proc = _run_kafka_sh("stop", env, 120)
        if proc.returncode != 0:
            print(f"kafka.sh stop failed: {proc.stderr}", file=sys.stderr)


@pytest.fixture(scope="session")
def kafka_bootstrap(kafka_broker: KafkaBroker) -> str:
    """Bootstrap address of the session's broker, e.g. ``"127.0.0.1:40123"``."""
    return kafka_broker.bootstrap


@pytest.fixture(scope="session")
def kafka_sasl(kafka_broker: KafkaBroker) -> SaslSettings:
    if kafka_broker.sasl is None:
        pytest.skip("the broker has no SASL_SSL listener (set KAFKA_SASL_* with KAFKA_BOOTSTRAP_SERVERS)")
    return kafka_broker.sasl


@pytest.fixture
def kafka_topic_factory(kafka_bootstrap: str) -> Iterator[Callable[..., str]]:
    made: list[str] = []

    def make(prefix: str = "t", partitions: int = 6, configs: dict[str, str] | None = None) -> str:
        name = unique_name(prefix)
        create_topics(kafka_bootstrap, [name], partitions=partitions, configs=configs)
        made.append(name)
        return name

    yield make
    try:
        delete_topics(kafka_bootstrap, made)
    except Exception as exc:  # noqa: BLE001 - cleanup is best-effort
        print(f"could not delete test topics {made}: {exc!r}", file=sys.stderr)


@pytest.fixture
def kafka_private_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaBroker]:
    """A broker of this test's own, to stop, restart and freeze (see the module docs)."""
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "").strip():
        pytest.skip("needs a broker it may stop; KAFKA_BOOTSTRAP_SERVERS names an external one")
    broker = _start_broker(tmp_path_factory.mktemp("kafka-private"), sasl_listener=False)
    try:
        yield broker
    finally:
        try:
            broker.stop()
        except Exception as exc:  # noqa: BLE001 - best effort; the watchdog stops it too
            print(f"could not stop the private broker: {exc!r}", file=sys.stderr)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if _KAFKA_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.kafka)
