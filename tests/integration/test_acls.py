"""Least privilege on a broker with the KRaft StandardAuthorizer (no broker-wide
"allow everyone"): the worker runs under exactly the ACLs ``deploy/kafka/acls.sh``
ships, a principal without write access to the alerts and checkpoint topics
is refused, the worker runs over mutual TLS with a client certificate whose key
is encrypted, and its passwords stay out of its argv, log and metrics.

The session broker has no authorizer, so this module starts a broker of its
own (``deploy/kafka/kafka.sh`` with ``KAFKA_AUTHORIZER=1`` and an SSL listener
that requires client certificates). Its PLAINTEXT listener's principal
(``User:ANONYMOUS``) is the super user that sets things up: topics, ACLs, test
records, reading the alerts back.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import urllib.request
import uuid
from dataclasses import replace
from pathlib import Path

import orjson
import pytest

from detectors.config import EngineConfig
from streams.acls import Grant, acl_objects, apply_grants, worker_grants
from streams.settings import Settings
from streams.topics import CHECKPOINT_TOPIC_CONFIG
from tests.kafka_broker import KafkaBroker, create_topics, start_broker, stop_broker
from tests.worker_harness import (
    TopicReader,
    WorkerProcess,
    WorkerTopics,
    alert_diff,
    campaign_records,
    free_port,
    offline_alerts,
    produce,
    read_to_end,
    terminate_all,
)

pytestmark = pytest.mark.kafka

REPO = Path(__file__).resolve().parents[2]
ACLS_SH = REPO / "deploy" / "kafka" / "acls.sh"
GRACE = 3600.0  # as tests/test_worker.py: nothing is late, alerts equal the offline replay's
FAST = {"LIKEGUARD_GRACE": str(GRACE), "LIKEGUARD_IDLE_FLUSH": "2",
        "LIKEGUARD_CHECKPOINT_INTERVAL": "2", "LIKEGUARD_KAFKA_CONNECT_TIMEOUT": "4"}
#: the worker's SCRAM password: distinctive, so that a leak is found by grep
SASL_SECRET = f"lg-sasl-secret-{uuid.uuid4().hex}"


@pytest.fixture(scope="module")
def secure_broker(tmp_path_factory: pytest.TempPathFactory):
    broker = start_broker(tmp_path_factory.mktemp("kafka-acl-broker"), authorizer=True, mtls=True,
                          env={"KAFKA_SASL_PASSWORD": SASL_SECRET})
    try:
        yield broker
    finally:
        stop_broker(broker)


@pytest.fixture
def workers():
    made: list[WorkerProcess] = []
    yield made
    terminate_all(made)


def _env(broker: KafkaBroker, key: str) -> str:
    assert broker.client_env is not None and key in broker.client_env, broker.client_env
    return broker.client_env[key]


def _secret_file(path: Path, secret: str) -> str:
    path.write_text(secret + "\n")
    path.chmod(0o600)
    return str(path)


def _sasl_env(broker: KafkaBroker, user: str, password_file: str) -> dict[str, str]:
    return {"KAFKA_BOOTSTRAP_SERVERS": _env(broker, "KAFKA_SASL_BOOTSTRAP_SERVERS"),
            "LIKEGUARD_SECURITY_PROTOCOL": "SASL_SSL",
            "LIKEGUARD_SASL_MECHANISM": _env(broker, "KAFKA_SASL_MECHANISM"),
            "LIKEGUARD_SASL_USERNAME": user, "LIKEGUARD_SASL_PASSWORD_FILE": password_file,
            "LIKEGUARD_SSL_CAFILE": _env(broker, "KAFKA_SSL_CAFILE")}


def _worker(workers: list[WorkerProcess], topics: WorkerTopics, workdir: Path,
            settings: dict[str, str]) -> WorkerProcess:
    w = WorkerProcess(settings["KAFKA_BOOTSTRAP_SERVERS"], topics, workdir,
                      settings={**FAST, **settings})
    workers.append(w)
    return w


def _apply_shipped_acls(broker: KafkaBroker, principal: str, topics: WorkerTopics,
                        **settings: str) -> str:
    """``deploy/kafka/acls.sh apply``, as an operator runs it next to the worker's settings."""
    env = {**os.environ, **topics.env(), **settings, "PYTHON": sys.executable,
           "KAFKA_ADMIN_BOOTSTRAP_SERVERS": broker.bootstrap}
    proc = subprocess.run(["bash", str(ACLS_SH), "apply", principal], env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _alerts_as_offline(broker: KafkaBroker, topics: WorkerTopics, worker: WorkerProcess) -> None:
    """Produce the campaign records (as the super user) and read back exactly
    the offline replay's alerts."""
    records = campaign_records(topics)
    produce(broker.bootstrap, records)
    _expect_offline_alerts(broker, topics, worker, records)


def _expect_offline_alerts(broker: KafkaBroker, topics: WorkerTopics, worker: WorkerProcess,
                           records: list[tuple[str, bytes | None, bytes]]) -> None:
    """Read back exactly the offline replay's alerts of ``records``."""
    expected = offline_alerts(records, topics, EngineConfig(grace=GRACE))
    assert expected
    reader = TopicReader(broker.bootstrap, topics.alerts)
    try:
        got = reader.wait_for_alerts(expected, worker, timeout=90)
    finally:
        reader.close()
    assert alert_diff(got, expected) == ""


def test_worker_runs_under_exactly_the_shipped_acls(secure_broker, workers, tmp_path):
    """The worker, as ``User:likeguard`` over SASL_SSL with nothing but the ACLs
    ``deploy/kafka/acls.sh`` creates (console on, so it may write verdicts),
    creates its topics and turns records into the offline replay's alerts.
    Its SASL password (from a file), checkpoint key and console token are in
    neither its argv, nor its log (at debug level), nor its metrics."""
    topics = WorkerTopics.unique("lg-acl")
    create_topics(secure_broker.bootstrap, [topics.payments, topics.likes])  # the producers'
    console = {"LIKEGUARD_CONSOLE_PORT": str(free_port())}
    out = _apply_shipped_acls(secure_broker, "User:likeguard", topics, **console)
    assert "ACLs for User:likeguard" in out
    key = f"lg-checkpoint-secret-{uuid.uuid4().hex}"
    token = f"lg-console-secret-{uuid.uuid4().hex}"
    worker = _worker(workers, topics, tmp_path / "w", {
        **_sasl_env(secure_broker, "likeguard",
                    _secret_file(tmp_path / "sasl.pass", _env(secure_broker, "KAFKA_SASL_PASSWORD"))),
        **console, "LIKEGUARD_CHECKPOINT_KEY": key, "LIKEGUARD_CONSOLE_TOKEN": token,
        "LIKEGUARD_LOG_LEVEL": "debug"}).start()
    worker.wait_ready()
    assert worker.proc is not None
    argv = Path(f"/proc/{worker.proc.pid}/cmdline").read_bytes().decode(errors="replace")
    _alerts_as_offline(secure_broker, topics, worker)
    with urllib.request.urlopen(worker.metrics_url, timeout=5) as resp:
        metrics = resp.read().decode()
    assert "likeguard_alerts_total" in metrics
    assert worker.stop() == 0
    log = worker.log_text()
    assert "sasl_password_file" in log and "Worker ready" in log  # the settings were logged
    assert _env(secure_broker, "KAFKA_SASL_PASSWORD") == SASL_SECRET
    for secret in (SASL_SECRET, key, token):
        assert secret not in log, "a secret is in the worker's log"
        assert secret not in metrics, "a secret is in the worker's metrics"
        assert secret not in argv, "a secret is on the worker's command line"


def test_a_principal_without_write_access_is_refused(secure_broker, workers, tmp_path):
    """``User:likeguard-limited`` has the worker's ACLs except Write on the
    alerts and checkpoint topics (it may see them): the broker refuses its
    writes there (and takes them on the dead-letter topic), and a worker
    running as it stops at start, naming the topic and what it lacks."""
    from kafka import KafkaProducer
    from kafka.errors import TopicAuthorizationFailedError

    topics = WorkerTopics.unique("lg-acl-limited")
    s = Settings.from_env(topics.env())
    topics.create(secure_broker.bootstrap)
    create_topics(secure_broker.bootstrap, [s.checkpoint_changelog], configs=CHECKPOINT_TOPIC_CONFIG)
    no_write = {topics.alerts, s.checkpoint_changelog}
    grants = [replace(g, operations=tuple("DESCRIBE" if op == "WRITE" else op
                                          for op in g.operations))
              if g.name in no_write else g for g in worker_grants(s)]
    admin = Settings.connection_from_env({}, secure_broker.bootstrap)
    user = _env(secure_broker, "KAFKA_SASL_LIMITED_USERNAME")
    assert apply_grants(admin, f"User:{user}", grants) > 0
    env = _sasl_env(secure_broker, user, _secret_file(
        tmp_path / "limited.pass", _env(secure_broker, "KAFKA_SASL_LIMITED_PASSWORD")))
    conn = Settings.connection_from_env(env)
    producer = KafkaProducer(acks="all", max_block_ms=10_000, retries=0,
                             **conn.kafka_python_kwargs())
    try:
        for topic in sorted(no_write):
            with pytest.raises(TopicAuthorizationFailedError):
                producer.send(topic, b"forged").get(timeout=15)
        producer.send(topics.deadletter, b"allowed").get(timeout=15)  # the refusal is specific
    finally:
        producer.close(5)
    worker = _worker(workers, topics, tmp_path / "w", env).start()
    assert worker.wait_exit(60) == 2, worker.tail()
    log = worker.log_text()
    assert (f"not authorised to WRITE topic {s.checkpoint_changelog} " in log
            and f"as User:{user}" in log and "docs/operations.md#access-control" in log), log
    assert "Traceback" not in log, log


def test_a_principal_without_its_group_is_refused(secure_broker, workers, tmp_path):
    """``User:likeguard-limited`` with every ACL of the worker but READ on the
    ingest's consumer group: the worker stops at start (exit 2), naming the
    group, instead of failing to join it once running."""
    topics = WorkerTopics.unique("lg-acl-group")
    s = Settings.from_env(topics.env())
    create_topics(secure_broker.bootstrap, [topics.payments, topics.likes])
    group = f"{s.app_id}-ingest"
    grants = [g for g in worker_grants(s) if not (g.resource == "group" and g.name == group)]
    assert len(grants) == len(worker_grants(s)) - 1
    user = _env(secure_broker, "KAFKA_SASL_LIMITED_USERNAME")
    assert apply_grants(Settings.connection_from_env({}, secure_broker.bootstrap),
                        f"User:{user}", grants) > 0
    env = _sasl_env(secure_broker, user, _secret_file(
        tmp_path / "limited.pass", _env(secure_broker, "KAFKA_SASL_LIMITED_PASSWORD")))
    worker = _worker(workers, topics, tmp_path / "w", env).start()
    assert worker.wait_exit(60) == 2, worker.tail()
    log = worker.log_text()
    assert f"not authorised to DESCRIBE, READ group {group} " in log, log
    assert f"as User:{user}" in log and "Traceback" not in log, log


def test_a_write_refused_mid_run_stops_the_worker(secure_broker, workers, tmp_path):
    """Write on the alerts topic revoked from a running worker: its first alert
    is refused (``TOPIC_AUTHORIZATION_FAILED``), and it stops with exit 1 and
    one line naming the topic, with no alert on the topic and no checkpoint
    written after the refusal (``streams/delivery.py``). With the ACL back,
    the restarted worker sends every alert of the offline replay: none was
    lost."""
    from kafka import KafkaAdminClient

    topics = WorkerTopics.unique("lg-acl-revoke")
    create_topics(secure_broker.bootstrap, [topics.payments, topics.likes])
    _apply_shipped_acls(secure_broker, "User:likeguard", topics)
    env = _sasl_env(secure_broker, "likeguard", _secret_file(
        tmp_path / "sasl.pass", _env(secure_broker, "KAFKA_SASL_PASSWORD")))
    worker = _worker(workers, topics, tmp_path / "w", env).start()
    worker.wait_ready()
    write = acl_objects([Grant("topic", topics.alerts, ("WRITE",), "")], "User:likeguard")
    admin = KafkaAdminClient(client_id="likeguard-tests", **Settings.connection_from_env(
        {}, secure_broker.bootstrap).kafka_python_kwargs())
    try:
        deleted = admin.delete_acls(write)
        assert [len(matches) for _filter, matches, error in deleted] == [1], deleted
        records = campaign_records(topics)
        produce(secure_broker.bootstrap, records)
        assert worker.wait_exit(120) == 1, worker.tail()
        lines = [x for x in worker.log_text().splitlines() if "stopping: a record for" in x]
        assert len(lines) == 1, worker.tail()
        assert f"a record for {topics.alerts} was not delivered: " \
               "TopicAuthorizationFailedError" in lines[0], lines
        assert "docs/reliability.md#producer-failures" in lines[0]
        assert not read_to_end(secure_broker.bootstrap, topics.alerts)
        # the slot whose alert was refused wrote no checkpoint after it
        log = worker.log_text()
        with_alerts = re.findall(r"idle flush (\w+/\d+): [1-9]\d* alerts",
                                 log[:log.index("stopping: a record for")])
        assert with_alerts, worker.tail()
        changelog = Settings.from_env(topics.env()).checkpoint_changelog
        headers = {r.key.decode(): orjson.loads(r.value)
                   for r in read_to_end(secure_broker.bootstrap, changelog)
                   if r.value is not None and r.key.count(b"/") == 1}
        assert not any(headers.get(slot, {}).get("flushed") for slot in with_alerts), \
            (with_alerts, headers)
        assert admin.create_acls(write)["failed"] == []
    finally:
        admin.close()
    # with the ACL back, the restart processes the input behind the refusal again
    worker.start()
    worker.wait_ready()
    _expect_offline_alerts(secure_broker, topics, worker, records)
    assert worker.stop() == 0


def test_worker_over_mutual_tls(secure_broker, workers, tmp_path):
    """Over the SSL listener that requires client certificates, the worker
    presents the test CA's certificate for ``CN=likeguard`` (the principal
    ``User:likeguard``, under the shipped ACLs), its key decrypted with the
    password from a file, and raises the offline replay's alerts; a client
    without a certificate is refused, and so is a worker without one."""
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    topics = WorkerTopics.unique("lg-mtls")
    create_topics(secure_broker.bootstrap, [topics.payments, topics.likes])
    _apply_shipped_acls(secure_broker, _env(secure_broker, "KAFKA_SSL_PRINCIPAL"), topics)
    tls = {"KAFKA_BOOTSTRAP_SERVERS": _env(secure_broker, "KAFKA_SSL_BOOTSTRAP_SERVERS"),
           "LIKEGUARD_SECURITY_PROTOCOL": "SSL",
           "LIKEGUARD_SSL_CAFILE": _env(secure_broker, "KAFKA_SSL_CAFILE")}
    client_cert = {"LIKEGUARD_SSL_CERTFILE": _env(secure_broker, "KAFKA_SSL_CERTFILE"),
                   "LIKEGUARD_SSL_KEYFILE": _env(secure_broker, "KAFKA_SSL_KEYFILE"),
                   "LIKEGUARD_SSL_PASSWORD_FILE": _env(secure_broker, "KAFKA_SSL_KEY_PASSWORD_FILE")}
    # a client without a certificate: the handshake fails
    bare = Settings.connection_from_env(tls)
    with pytest.raises(KafkaError):
        KafkaAdminClient(bootstrap_timeout_ms=3000, request_timeout_ms=3000,
                         **bare.kafka_python_kwargs()).close()
    no_cert = _worker(workers, topics, tmp_path / "nocert", tls).start()
    assert no_cert.wait_exit(60) == 2, no_cert.tail()
    assert "likeguard worker: error: cannot connect to Kafka" in no_cert.log_text()
    assert "certificate" in no_cert.log_text().lower(), no_cert.log_text()
    # with the client certificate
    worker = _worker(workers, topics, tmp_path / "w", {**tls, **client_cert}).start()
    worker.wait_ready()
    _alerts_as_offline(secure_broker, topics, worker)
    assert worker.stop() == 0
