"""The Kafka commands (``record``, ``replay --to-kafka``, ``simulate --to-kafka``) and the demo.

Kafka tests run against the session's real broker (``tests/kafka_broker.py``)
with unique topic names; kcat is the independent client that checks our
recordings are what ``kcat -C -J`` prints and that what we produce reads back
with kcat. Every wait polls against a deadline.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path

import orjson
import pytest

from detectors.events import parse_time
from detectors.recording import read_records
from detectors.simulate import SimConfig, Simulation, simulate
from streams.cli import main as cli_main
from streams.kafka_io import kcat_line, plan_live_start, security_kwargs
from tests.kafka_broker import SaslSettings, unique_name

REPO = Path(__file__).resolve().parents[2]
KCAT = shutil.which("kcat")
BROKER_FIELD = re.compile(rb',"broker":-?\d+')


# --------------------------------------------------------------------------- helpers


def _murmur_partition(key: str, n: int) -> int:
    from kafka.partitioner.default import murmur2

    return (murmur2(key.encode()) & 0x7FFFFFFF) % n


def _small_recording(path: Path, partitions: int = 3) -> list:
    """A simulated recording with keyed and unkeyed records, garbage and duplicates."""
    cfg = SimConfig(seed=11, duration=240, rate=4, n_users=200, n_merchants=20, campaigns=1,
                    benign=1, bad_rate=0.05, duplicate_rate=0.05, partitions=partitions)
    simulate(cfg, path, path.with_suffix(".labels.json"))
    recs = list(read_records(path))
    assert any(r.key is not None for r in recs) and any(r.key is None for r in recs)
    assert {r.topic for r in recs} == {"payments.success", "likes"}
    return recs


def _kcat(bootstrap: str, topic: str) -> bytes:
    assert KCAT, "kcat is required (apt-get install kcat)"
    proc = subprocess.run([KCAT, "-b", bootstrap, "-C", "-t", topic, "-J", "-e", "-q"],
                          capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    return proc.stdout


def _without_broker(lines: bytes) -> list[bytes]:
    return sorted(BROKER_FIELD.sub(b"", ln) for ln in lines.splitlines() if ln.strip())


def _record(bootstrap: str, topics: list[str], out: Path, capsys) -> str:
    code = cli_main(["record", "--topics", *topics, "--out", str(out),
                     "--bootstrap-servers", bootstrap, "--until-end", "--idle-timeout", "30"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return captured.out


def _replay(bootstrap: str, recording: Path, topic_map: dict[str, str], capsys, *extra: str) -> str:
    argv = ["replay", str(recording), "--to-kafka", "--as-fast-as-possible",
            "--bootstrap-servers", bootstrap, *extra]
    for src, dst in topic_map.items():
        argv += ["--topic-map", f"{src}={dst}"]
    code = cli_main(argv)
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return captured.out


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------- no broker needed


def test_replay_missing_file_exits_2(tmp_path, capsys):
    code = cli_main(["replay", str(tmp_path / "nope.jsonl"), "--to-kafka",
                     "--bootstrap-servers", f"127.0.0.1:{_closed_port()}"])
    err = capsys.readouterr().err
    assert code == 2
    assert "recording not found" in err and "nope.jsonl" in err


def test_unreachable_broker_exits_2(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("LIKEGUARD_KAFKA_CONNECT_TIMEOUT", "1")
    rec = tmp_path / "r.jsonl"
    rec.write_bytes(kcat_line("likes", 0, 0, 1000, None, b"{}") + b"\n")
    addr = f"127.0.0.1:{_closed_port()}"
    t0 = time.monotonic()
    assert cli_main(["replay", str(rec), "--to-kafka", "--bootstrap-servers", addr]) == 2
    assert f"no Kafka broker reachable at {addr}" in capsys.readouterr().err
    assert cli_main(["record", "--topics", "likes", "--out", str(tmp_path / "o.jsonl"),
                     "--bootstrap-servers", addr]) == 2
    assert f"no Kafka broker reachable at {addr}" in capsys.readouterr().err
    assert time.monotonic() - t0 < 30


def test_bad_topic_map_exits_2(tmp_path, capsys):
    rec = tmp_path / "r.jsonl"
    rec.write_bytes(kcat_line("likes", 0, 0, 1000, None, b"{}") + b"\n")
    assert cli_main(["replay", str(rec), "--to-kafka", "--topic-map", "likes"]) == 2
    assert "FROM=TO" in capsys.readouterr().err


def test_read_records_reads_kcat_raw_bytes_and_headers(tmp_path):
    """Lines with raw non-UTF-8 bytes (as kcat writes them) come back as bytes,
    and every record carries its headers, whichever path (fast or general)
    read its line."""
    value = bytes(range(256))
    path = tmp_path / "bin.jsonl"
    headers = [("lg-src", b"likes/0"), ("bin", b"\xff\x00"), ("nil", None)]
    path.write_bytes(kcat_line("t", 1, 5, 7, b"k\xff", value) + b"\n"
                     + kcat_line("t", 0, 6, 8, None, "é\x0b".encode()) + b"\n"
                     + kcat_line("t", 0, 7, None, b"", None) + b"\n"
                     + kcat_line("t", 0, 8, 9, b"k", b"v", headers=headers) + b"\n"
                     + kcat_line("t", 0, 9, 9, b"k", b"v", headers=headers[:1]) + b"\n")
    recs = list(read_records(path))
    assert recs[0].key == b"k\xff" and recs[0].payload == value and recs[0].partition == 1
    assert recs[1].key is None and recs[1].payload == "é\x0b" and recs[1].ts == 8
    assert recs[2].key == "" and recs[2].payload is None and recs[2].ts is None
    assert [r.headers for r in recs[:3]] == [None, None, None]
    assert recs[3].headers == tuple(headers) and recs[3].payload == "v"
    assert recs[4].headers == (("lg-src", b"likes/0"),)


def test_security_settings_from_env(tmp_path, capsys, monkeypatch):
    """The commands' connection is the worker's validated settings: the same
    env vars, a password file as well, and a bad setting named (exit 2)."""
    pw = tmp_path / "pw"
    pw.write_text("p\n")
    env = {"LIKEGUARD_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "LIKEGUARD_SASL_MECHANISM": "scram-sha-256",
           "LIKEGUARD_SASL_USERNAME": "u", "LIKEGUARD_SASL_PASSWORD_FILE": str(pw),
           "LIKEGUARD_GRACE": "not a worker's concern here"}
    kw = security_kwargs(env)
    assert kw == {"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "SCRAM-SHA-256",
                  "sasl_plain_username": "u", "sasl_plain_password": "p"}
    monkeypatch.setenv("LIKEGUARD_SECURITY_PROTOCOL", "SSL")
    monkeypatch.setenv("LIKEGUARD_SSL_CAFILE", str(tmp_path / "missing-ca.pem"))
    assert cli_main(["record", "--topics", "likes", "--out", str(tmp_path / "o.jsonl"),
                     "--bootstrap-servers", f"127.0.0.1:{_closed_port()}"]) == 2
    err = capsys.readouterr().err
    assert "likeguard record: error: ssl_cafile (LIKEGUARD_SSL_CAFILE" in err and "not found" in err


def test_first_campaign_is_moved_close_to_now():
    args = argparse.Namespace(seed=3, duration=3600, rate=20, users=2000, merchants=100,
                              campaigns=5, benign=2, bad_rate=0.0, duplicate_rate=0.0,
                              partitions=1, tz_offset=8.0)
    now = 1_795_000_000.0
    plain, backfill0 = plan_live_start(args, now, None)
    assert plain.start == now and backfill0 == 0
    cfg, backfill = plan_live_start(args, now, 15)
    assert backfill > 60 and cfg.start == now - backfill
    starts = sorted(parse_time(c["start"]) for c in Simulation(cfg).labels()["campaigns"])
    assert now + 14 <= starts[0] <= now + 16
    # the plan moved as a whole: same campaigns, same relative times
    plain_starts = sorted(parse_time(c["start"]) for c in Simulation(plain).labels()["campaigns"])
    assert [round(s - cfg.start, 3) for s in starts] == [round(s - now, 3) for s in plain_starts]


# --------------------------------------------------------------------------- with the broker


@pytest.mark.kafka
def test_record_replay_round_trip(kafka_bootstrap, kafka_topic_factory, tmp_path, capsys):
    src = tmp_path / "sim.jsonl"
    original = _small_recording(src, partitions=3)
    hop1 = {"payments.success": kafka_topic_factory("rt-pay", partitions=3),
            "likes": kafka_topic_factory("rt-likes", partitions=3)}
    out = _replay(kafka_bootstrap, src, hop1, capsys)
    assert f"replay: {len(original):,} records to Kafka" in out

    rec1 = tmp_path / "rec1.jsonl"
    out = _record(kafka_bootstrap, list(hop1.values()), rec1, capsys)
    assert f"record: {len(original):,} records" in out
    got1 = list(read_records(rec1))
    # every record, once: topic, key and payload
    assert Counter((hop1[r.topic], r.key, r.payload) for r in original) == \
        Counter((r.topic, r.key, r.payload) for r in got1)
    # unkeyed records keep their partition; keyed ones go where Kafka's default partitioner puts them
    assert Counter((hop1[r.topic], r.key, r.payload,
                    r.partition if r.key is None else _murmur_partition(r.key, 3)) for r in original) \
        == Counter((r.topic, r.key, r.payload, r.partition) for r in got1)
    # offsets are the real ones: 0..n-1 per partition
    per_tp: dict[tuple[str, int], list[int]] = {}
    for r in got1:
        per_tp.setdefault((r.topic, r.partition), []).append(r.offset)
    assert all(sorted(v) == list(range(len(v))) for v in per_tp.values())

    # second hop from our own recording into topics of the same counts: partitions all preserved
    hop2 = {t: kafka_topic_factory("rt2", partitions=3) for t in hop1.values()}
    _replay(kafka_bootstrap, rec1, hop2, capsys)
    rec2 = tmp_path / "rec2.jsonl.gz"
    _record(kafka_bootstrap, list(hop2.values()), rec2, capsys)
    assert Counter((hop2[r.topic], r.partition, r.key, r.payload) for r in got1) == \
        Counter((r.topic, r.partition, r.key, r.payload) for r in read_records(rec2))


@pytest.mark.kafka
def test_kcat_reads_what_replay_produced(kafka_bootstrap, kafka_topic_factory, tmp_path, capsys):
    src = tmp_path / "sim.jsonl"
    original = _small_recording(src, partitions=1)
    dst = {"payments.success": kafka_topic_factory("kc-pay", partitions=6),
           "likes": kafka_topic_factory("kc-likes", partitions=6)}
    _replay(kafka_bootstrap, src, dst, capsys)
    ours = tmp_path / "ours.jsonl"
    _record(kafka_bootstrap, list(dst.values()), ours, capsys)
    for name, topic in dst.items():
        raw = _kcat(kafka_bootstrap, topic)
        kc = tmp_path / f"kcat-{name}.jsonl"
        kc.write_bytes(raw)
        from_kcat = list(read_records(kc))  # kcat's output is a valid recording for our reader
        assert Counter((r.key, r.payload) for r in from_kcat) == \
            Counter((r.key, r.payload) for r in original if r.topic == name)
        # and our recorder writes exactly kcat's lines (kcat adds only "broker")
        ours_lines = [ln for ln in ours.read_bytes().splitlines()
                      if ln.startswith(b'{"topic":"' + topic.encode() + b'"')]
        assert _without_broker(raw) == sorted(ours_lines)


@pytest.mark.kafka
def test_binary_values_follow_kcat(kafka_bootstrap, kafka_topic_factory, tmp_path, capsys):
    """Non-UTF-8 keys/values are written raw, as kcat does; replay restores the bytes."""
    from kafka import KafkaProducer

    from tests.kafka_broker import consume_records

    topic = kafka_topic_factory("bin", partitions=2)
    sent = [
        (0, b"k1", bytes(range(256)), None),
        (1, None, b"\xff\xfe\x00 not utf-8 \xc3(", [("h", b"\x80v"), ("n", b"")]),
        (0, b"\xc3(", b'{"ok": "\\u00e9 \xc3\xa9 \\n"}', None),
        (1, b"", b"", None),
        (0, b"tomb", None, None),
        (1, None, "ctl \x01\x0b\x1f\x7f \u2028 😀".encode(), [("a", b"1")]),
    ]
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
    try:
        for part, key, value, headers in sent:
            producer.send(topic, key=key, value=value, partition=part, headers=headers).get(30)
    finally:
        producer.close()

    ours = tmp_path / "bin.jsonl"
    _record(kafka_bootstrap, [topic], ours, capsys)
    data = ours.read_bytes()
    assert b'"payload":"\xff\xfe\\u0000 not utf-8 \xc3("' in data  # raw bytes, as kcat prints
    assert _without_broker(_kcat(kafka_bootstrap, topic)) == sorted(data.splitlines())

    # replay restores every byte, header, timestamp and (keyless) partition
    dst = kafka_topic_factory("bin2", partitions=2)
    _replay(kafka_bootstrap, ours, {topic: dst}, capsys, "--keep-timestamps")
    before = consume_records(kafka_bootstrap, topic, len(sent))
    after = consume_records(kafka_bootstrap, dst, len(sent))

    def norm(rs):
        return Counter((r.key, r.value, tuple((h[0], h[1]) for h in r.headers or ()), r.timestamp,
                        r.partition if r.key is None else None) for r in rs)

    assert len(after) == len(sent)
    assert norm(before) == norm(after)


@pytest.mark.kafka
def test_record_stops_on_idle_and_max_records(kafka_bootstrap, kafka_topic_factory, tmp_path, capsys):
    from kafka import KafkaProducer

    topic = kafka_topic_factory("idle", partitions=2)
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
    try:
        for i in range(20):
            producer.send(topic, value=f"v{i}".encode(), partition=i % 2)
        producer.flush(30)
    finally:
        producer.close()
    out = tmp_path / "a.jsonl"
    t0 = time.monotonic()
    assert cli_main(["record", "--topics", topic, "--out", str(out), "--bootstrap-servers",
                     kafka_bootstrap, "--idle-timeout", "1.5"]) == 0
    took = time.monotonic() - t0
    assert f"record: 20 records ({topic}: 20)" in capsys.readouterr().out
    assert 1.5 <= took < 20
    assert sorted(r.payload for r in read_records(out)) == sorted(f"v{i}" for i in range(20))
    assert cli_main(["record", "--topics", topic, "--out", str(out), "--bootstrap-servers",
                     kafka_bootstrap, "--max-records", "7"]) == 0
    assert len(list(read_records(out))) == 7
    capsys.readouterr()
    missing = unique_name("missing")
    assert cli_main(["record", "--topics", missing, "--out", str(out), "--bootstrap-servers",
                     kafka_bootstrap]) == 2
    assert f"topic(s) not found on {kafka_bootstrap}: {missing}" in capsys.readouterr().err


@pytest.mark.kafka
def test_replay_paces_by_recorded_time(kafka_bootstrap, kafka_topic_factory, tmp_path, capsys):
    """--speed scales the recorded ts gaps: 3 s of recording at speed 2 takes about 1.5 s."""
    topic = kafka_topic_factory("pace", partitions=1)
    rec = tmp_path / "pace.jsonl"
    rec.write_bytes(b"".join(kcat_line("x", 0, i, 1_000_000 + 750 * i, None, f"p{i}".encode()) + b"\n"
                             for i in range(5)))
    t0 = time.monotonic()
    assert cli_main(["replay", str(rec), "--to-kafka", "--speed", "2", "--bootstrap-servers",
                     kafka_bootstrap, "--topic-map", f"x={topic}"]) == 0
    took = time.monotonic() - t0
    assert "replay: 5 records" in capsys.readouterr().out
    assert 1.4 <= took < 15
    from tests.kafka_broker import consume_records

    assert [r.value for r in consume_records(kafka_bootstrap, topic, 5)] == \
        [f"p{i}".encode() for i in range(5)]


@pytest.mark.kafka
def test_simulate_to_kafka_is_live(kafka_bootstrap, kafka_topic_factory, tmp_path, capsys):
    """Now-anchored events, paced by the wall clock, the same records as the tee'd recording."""
    pay, likes = kafka_topic_factory("sim-pay"), kafka_topic_factory("sim-likes")
    tee = tmp_path / "live.jsonl"
    t0, wall0 = time.monotonic(), time.time()
    code = cli_main(["simulate", str(tee), "--to-kafka", "--bootstrap-servers", kafka_bootstrap,
                     "--duration", "4", "--rate", "40", "--users", "200", "--merchants", "20",
                     "--campaigns", "0", "--benign", "0", "--bad-rate", "0.05",
                     "--topic-map", f"payments.success={pay}", "--topic-map", f"likes={likes}"])
    took = time.monotonic() - t0
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert 1.5 <= took < 30, took  # paced by the wall clock, not as fast as possible
    written = list(read_records(tee))
    assert len(written) > 40
    assert (tmp_path / "live.labels.json").exists()
    _record(kafka_bootstrap, [pay, likes], tmp_path / "back.jsonl", capsys)
    back = list(read_records(tmp_path / "back.jsonl"))
    assert Counter((r.topic, r.payload) for r in written) == Counter((r.topic, r.payload) for r in back)
    # event times are "now": within the run's wall-clock span (plus the simulator's lag)
    times = []
    for r in written:
        try:
            obj = orjson.loads(r.payload)
        except orjson.JSONDecodeError:
            continue
        if not isinstance(obj, dict):
            continue
        t = obj.get("success_time") if r.topic == pay else obj.get("ts")
        if isinstance(t, str):
            try:
                times.append(parse_time(t))
            except ValueError:
                continue
    assert times and wall0 - 5 <= min(times) and max(times) <= wall0 + took + 5


@pytest.mark.kafka
def test_commands_use_sasl_settings_from_env(kafka_sasl: SaslSettings, kafka_topic_factory, tmp_path,
                                             capsys, monkeypatch):
    topic = kafka_topic_factory("sasl-io", partitions=2)
    rec = tmp_path / "r.jsonl"
    rec.write_bytes(b"".join(kcat_line("x", i % 2, i, 1000 + i, None, f"s{i}".encode()) + b"\n"
                             for i in range(6)))
    monkeypatch.setenv("LIKEGUARD_SECURITY_PROTOCOL", kafka_sasl.security_protocol)
    monkeypatch.setenv("LIKEGUARD_SASL_MECHANISM", kafka_sasl.mechanism)
    monkeypatch.setenv("LIKEGUARD_SASL_USERNAME", kafka_sasl.username)
    monkeypatch.setenv("LIKEGUARD_SASL_PASSWORD", kafka_sasl.password)
    monkeypatch.setenv("LIKEGUARD_SSL_CAFILE", kafka_sasl.cafile)
    _replay(kafka_sasl.bootstrap, rec, {"x": topic}, capsys)
    out = tmp_path / "back.jsonl"
    _record(kafka_sasl.bootstrap, [topic], out, capsys)
    assert sorted((r.partition, r.payload) for r in read_records(out)) == \
        sorted((i % 2, f"s{i}") for i in range(6))
    monkeypatch.setenv("LIKEGUARD_SASL_PASSWORD", "wrong")
    monkeypatch.setenv("LIKEGUARD_KAFKA_CONNECT_TIMEOUT", "3")
    assert cli_main(["record", "--topics", topic, "--out", str(out), "--bootstrap-servers",
                     kafka_sasl.bootstrap]) == 2
    assert "likeguard record: error:" in capsys.readouterr().err


# --------------------------------------------------------------------------- the demo


def _demo_env(bootstrap: str) -> dict[str, str]:
    base = unique_name("demo")
    env = dict(os.environ)
    env.update({
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "LIKEGUARD_APP_ID": base,
        "LIKEGUARD_PAYMENTS_TOPIC": f"{base}.payments",
        "LIKEGUARD_LIKES_TOPIC": f"{base}.likes",
        "LIKEGUARD_ALERTS_TOPIC": f"{base}.alerts",
        "LIKEGUARD_DEADLETTER_TOPIC": f"{base}.deadletter",
        "LIKEGUARD_VIEW_TOPIC_PREFIX": f"{base}.view",
        "PYTHONUNBUFFERED": "1",
        "PYTHONPATH": str(REPO),
    })
    return env


def _start_demo(bootstrap: str, tmp_path: Path, *args: str) -> tuple[subprocess.Popen, Path]:
    log = tmp_path / "demo.out"
    with open(log, "wb") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "streams.demo", "--out", str(tmp_path / "out"),
                                 "--metrics-port", "0", *args],
                                cwd=REPO, env=_demo_env(bootstrap), stdout=fh, stderr=subprocess.STDOUT)
    return proc, log


def _wait_for(cond, timeout: float, what: str, proc: subprocess.Popen, log: Path):
    deadline = time.monotonic() + timeout
    while True:
        got = cond()
        if got:
            return got
        if proc.poll() is not None:
            raise AssertionError(f"demo exited ({proc.returncode}) before {what}:\n{log.read_text()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} after {timeout}s:\n{log.read_text()}")
        time.sleep(0.2)


def _children(log_text: str) -> list[int]:
    return [int(p) for p in re.findall(r"(?:worker|simulator) started \(pid (\d+)", log_text)]


def _pid_alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def test_make_demo_passes_its_args_to_the_demo() -> None:
    """``make demo ARGS="..."`` reaches ``python -m streams.demo`` (a dry run:
    ``make -n`` prints the commands without running them)."""
    repo = Path(__file__).resolve().parents[2]
    # not the settings of a make that runs this test (make test)
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    out = subprocess.run(["make", "-n", "--no-print-directory", "demo",
                          "ARGS=--duration 5 --rate 7"], cwd=repo, env=env,
                         capture_output=True, text=True, timeout=60, check=True).stdout
    runs = [line for line in out.splitlines() if "-m streams.demo" in line]
    assert runs and runs[-1].endswith("python -m streams.demo --duration 5 --rate 7"), out


@pytest.mark.kafka
@pytest.mark.slow
def test_demo_bounded_run_shows_campaign_alerts(kafka_bootstrap, tmp_path):
    """``--duration``: broker given, worker + live simulator, alerts of the injected campaign."""
    proc, log = _start_demo(kafka_bootstrap, tmp_path, "--duration", "90", "--first-campaign-in", "5")
    try:
        url = _wait_for(lambda: (re.findall(r"metrics: (http://\S+/metrics)", log.read_text()) or [None])[0],
                        60, "metrics URL", proc, log)

        def consumed() -> float:
            try:
                with urllib.request.urlopen(url, timeout=3) as resp:
                    text = resp.read().decode()
            except OSError:
                return 0.0
            return sum(float(m) for m in re.findall(
                r"^likeguard_events_consumed_total\{[^}]*\} (\S+)$", text, re.M))

        assert _wait_for(consumed, 60, "events consumed by the worker (metrics)", proc, log) > 0
        proc.wait(timeout=150)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    text = log.read_text()
    assert proc.returncode == 0, text
    assert "--duration 90s reached" in text and "worker stopped (exit 0)" in text
    # alerts arrived live, were shown in the table, and name entities of a labelled campaign
    out = tmp_path / "out"
    alerts = [orjson.loads(ln) for ln in (out / "alerts.jsonl").read_bytes().splitlines() if ln]
    assert alerts, text
    assert re.search(r"^time\s+severity\s+action\s+entity\s+detector\s+score\s+top reason", text, re.M)
    shown = [ln for ln in text.splitlines() if re.match(r"^\d\d:\d\d:\d\d\s+(info|warning|critical)\s", ln)]
    assert len(shown) == len(alerts)
    labels = orjson.loads((out / "live.labels.json").read_bytes())
    campaign_entities = set()
    for c in labels["campaigns"]:
        for k in ("merchants", "targets", "users", "ips", "devices"):
            campaign_entities.update(c.get(k, []))
    assert any(a["entity"]["id"] in campaign_entities for a in alerts), alerts
    # the simulator stopped cleanly and its recording holds what it produced
    assert len(list(read_records(out / "live.jsonl"))) > 1000
    assert "(interrupted)" in (out / "simulator.log").read_text()
    assert not [p for p in _children(text) if _pid_alive(p)]


@pytest.mark.kafka
def test_demo_ctrl_c_stops_everything(kafka_bootstrap, tmp_path):
    proc, log = _start_demo(kafka_bootstrap, tmp_path, "--duration", "300")
    try:
        _wait_for(lambda: "worker ready" in log.read_text(), 90, "worker ready", proc, log)
        pids = _children(log.read_text())
        assert len(pids) == 2 and all(_pid_alive(p) for p in pids)
        # the review console is on, its URL printed with a token made for the run
        console = re.search(r"review console: (http://127\.0\.0\.1:\d+/console/)#token=(\S+)",
                            log.read_text())
        assert console, log.read_text()
        base, token = console.groups()
        assert len(token) >= 16 and token not in (tmp_path / "out" / "worker.log").read_text()

        def answers(auth: str | None) -> int | None:
            req = urllib.request.Request(base + "alerts")
            if auth:
                req.add_header("Authorization", f"Bearer {auth}")
            try:
                with urllib.request.urlopen(req, timeout=3) as resp:
                    return resp.status if "alerts" in orjson.loads(resp.read()) else None
            except urllib.error.HTTPError as exc:
                return exc.code
            except OSError:
                return None  # not listening yet
        assert _wait_for(lambda: answers(token), 30, "console answers", proc, log) == 200
        assert answers(None) == 401
        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=90)
        took = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    text = log.read_text()
    assert proc.returncode == 0, text
    assert "worker stopped (exit 0)" in text
    assert took < 60
    assert not [p for p in pids if _pid_alive(p)]
