"""A worker that cannot start says so in one line and exits non-zero.

``likeguard worker`` runs as a subprocess, as an operator starts it: against
a loopback port nothing listens on, without a checkpoint key, and (on the
real broker) with an input topic missing. Each run must end by itself with
exit code 2 and exactly one line on stderr, ``likeguard worker: error: ...``
(no tracebacks, no client library retrying in the log). The test kills a run
that has not ended after :data:`KILL_AFTER` seconds; the worker's own bound
on reaching the cluster is :data:`streams.worker.CONNECT_TIMEOUT`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from streams.worker import CONNECT_TIMEOUT
from tests.kafka_broker import _admin, create_topics
from tests.worker_harness import CHECKPOINT_KEY, REPO, WorkerTopics, free_port

#: seconds after which the test kills a worker that has not ended by itself
KILL_AFTER = 60.0


def _run_worker(bootstrap: str, workdir: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """``likeguard worker`` with ``env`` (over a clean LIKEGUARD_* environment)."""
    full = {k: v for k, v in os.environ.items()
            if not k.startswith("LIKEGUARD_") and k != "KAFKA_BOOTSTRAP_SERVERS"}
    full.update({"KAFKA_BOOTSTRAP_SERVERS": bootstrap, "LIKEGUARD_METRICS_PORT": "0",
                 "LIKEGUARD_DATA_DIR": str(workdir / "data"),
                 "LIKEGUARD_CHECKPOINT_KEY": CHECKPOINT_KEY, "PYTHONPATH": str(REPO)})
    full.update(env)
    full = {k: v for k, v in full.items() if v}  # "" removes a setting
    try:
        return subprocess.run([sys.executable, "-m", "streams.cli", "worker"], cwd=workdir,
                              env=full, capture_output=True, text=True, timeout=KILL_AFTER)
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"the worker was still running after {KILL_AFTER:g} s; stderr:\n"
                             f"{exc.stderr!s}") from None


def _one_error_line(run: subprocess.CompletedProcess[str]) -> str:
    """The run's single stderr line, after checking it failed with exit code 2."""
    lines = run.stderr.splitlines()
    assert run.returncode == 2, (run.returncode, run.stderr[-3000:])
    assert len(lines) == 1, f"{len(lines)} lines on stderr:\n{run.stderr[-3000:]}"
    assert run.stdout == ""
    assert lines[0].startswith("likeguard worker: error: ")
    assert "Traceback" not in lines[0]
    return lines[0]


def test_an_unreachable_broker_gives_one_line_and_exit_2(tmp_path):
    """Nothing listens on the port: the pre-flight check gives up after
    ``CONNECT_TIMEOUT`` seconds instead of retrying for ever, and says why
    instead of logging every failed attempt (before: 38 lines over 32 s)."""
    bootstrap = f"127.0.0.1:{free_port()}"
    line = _one_error_line(_run_worker(bootstrap, tmp_path))
    assert f"cannot connect to Kafka at {bootstrap} (KAFKA_BOOTSTRAP_SERVERS) within " \
           f"{CONNECT_TIMEOUT:g} s: " in line
    assert "ECONNREFUSED" in line  # why: the first failed attempt's cause
    assert CONNECT_TIMEOUT < 10


def test_a_missing_checkpoint_key_gives_one_line_and_exit_2(tmp_path):
    line = _one_error_line(_run_worker(f"127.0.0.1:{free_port()}", tmp_path,
                                       LIKEGUARD_CHECKPOINT_KEY=""))
    assert "checkpoint_key (LIKEGUARD_CHECKPOINT_KEY): is required" in line


@pytest.mark.kafka
def test_a_missing_input_topic_gives_one_line_and_exit_2(kafka_bootstrap, tmp_path):
    """The likes topic does not exist: the worker names it and its setting and
    creates nothing (an input topic it made would be one nobody writes to)."""
    topics = WorkerTopics.unique("lg-noinput")
    create_topics(kafka_bootstrap, [topics.payments, topics.alerts, topics.deadletter])
    line = _one_error_line(_run_worker(kafka_bootstrap, tmp_path, **topics.env()))
    assert f"input topic {topics.likes} (LIKEGUARD_LIKES_TOPIC) not found" in line
    assert topics.payments not in line
    admin = _admin(kafka_bootstrap)
    try:
        made = {t for t in admin.list_topics() if t.startswith(topics.app_id)}
    finally:
        admin.close()
    assert made == {topics.payments, topics.alerts, topics.deadletter}  # nothing created


@pytest.mark.kafka
def test_refused_credentials_give_one_line_with_the_cause(kafka_sasl, tmp_path):
    """A wrong SASL password: one line with the cause of the failed
    connection (not a generic time-out), and not the password. The cause is
    the broker's refusal, or, when the broker drops the connection before
    its answer is read (seen when the session broker has served the whole
    suite), the dropped connection."""
    line = _one_error_line(_run_worker(
        kafka_sasl.bootstrap, tmp_path, LIKEGUARD_SECURITY_PROTOCOL="SASL_SSL",
        LIKEGUARD_SASL_MECHANISM=kafka_sasl.mechanism, LIKEGUARD_SASL_USERNAME=kafka_sasl.username,
        LIKEGUARD_SASL_PASSWORD="not-the-password", LIKEGUARD_SSL_CAFILE=kafka_sasl.cafile))
    assert f"cannot connect to Kafka at {kafka_sasl.bootstrap}" in line
    refused = "SaslAuthenticationFailedError" in line and "invalid credentials" in line
    assert refused or line.endswith("KafkaConnectionError: socket disconnected"), line
    assert "not-the-password" not in line


def test_a_console_without_a_token_gives_one_line_and_exit_2(tmp_path):
    line = _one_error_line(_run_worker(f"127.0.0.1:{free_port()}", tmp_path,
                                       LIKEGUARD_CONSOLE_PORT=str(free_port())))
    assert "console_token (LIKEGUARD_CONSOLE_TOKEN): is required with console_port" in line


@pytest.mark.kafka
def test_a_taken_console_port_gives_one_line_and_exit_2(kafka_bootstrap, tmp_path):
    """Faust binds the console's port only once the worker runs, and would
    crash with a traceback; the worker checks it first."""
    import socket

    topics = WorkerTopics.unique("lg-consoleport")
    create_topics(kafka_bootstrap, [topics.payments, topics.likes])
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        line = _one_error_line(_run_worker(
            kafka_bootstrap, tmp_path, LIKEGUARD_CONSOLE_PORT=str(port),
            LIKEGUARD_CONSOLE_TOKEN="startup-test-console-token", **topics.env()))
    assert f"console port {port}: " in line and "in use" in line
    assert "startup-test-console-token" not in line
