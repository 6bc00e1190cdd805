"""End-to-end tests of the streaming worker on a real Kafka broker.

Each test runs ``python -m streams.worker`` as a subprocess with its own app
id and topic names, produces contract records with kafka-python, and reads
the alerts and dead-letter topics back. Expected alerts come from the offline
driver (``detectors.replay``) with the same engine settings.
"""

from __future__ import annotations

import signal
import time
from collections import Counter

import orjson
import pytest

from detectors.config import EngineConfig
from detectors.engine import ALL_VIEWS, route_keys
from detectors.events import parse_time
from detectors.parsing import parse_like, parse_payment
from detectors.replay import replay
from detectors.simulate import SimConfig, simulate
from detectors.verdicts import Verdict
from streams.topics import MAX_DEAD_LETTER_ORIGINAL, Mark, decode_record
from tests.worker_harness import (
    T0,
    TopicReader,
    WorkerTopics,
    alert_diff,
    alert_ids,
    campaign_records,
    committed_offsets,
    like_value,
    offline_alerts,
    partitioned_replay,
    payment_value,
    produce,
    read_jsonl,
    read_to_end,
    recording_records,
    rfc3339,
    wait_for,
)

pytestmark = pytest.mark.kafka

# Kafka delivers the partitions of the two input topics interleaved in no
# particular event-time order (a backlog may arrive partition by partition),
# so these tests give the engine a grace longer than any test's event-time
# span: nothing is late, every event is put back in order, and the result must
# equal the offline replay's with the same settings. The tail is evaluated by
# the idle flush, as the offline replay's final flush() does.
GRACE = 3600.0
CONFIG = EngineConfig(grace=GRACE)
FAST = {"LIKEGUARD_GRACE": str(GRACE), "LIKEGUARD_IDLE_FLUSH": "2",
        "LIKEGUARD_CHECKPOINT_INTERVAL": "2"}
SETTLE = 3.0  # seconds to keep reading after the expected alerts: catches surplus ones
CONTRACT_FIELDS = {"alert_id", "entity", "window", "score", "severity", "action", "reasons",
                   "evidence", "detector", "emitted_at"}


def _start(worker_factory, topics: WorkerTopics, **extra: str):
    worker = worker_factory(topics, {**FAST, **extra}).start()
    worker.wait_ready()
    return worker


def _behind_watermark(worker, views=ALL_VIEWS) -> dict[str, float]:
    """Per view, events that arrived behind its watermark: dropped as late or
    taken out of order within ``allowed_lateness`` (either means the
    watermark did not wait for them)."""
    m = worker.metrics()  # one scrape
    return {v: m.get(("likeguard_late_events_total", (("view", v),)), 0.0)
            + m.get(("likeguard_late_admitted_events_total", (("view", v),)), 0.0)
            for v in views}


def test_campaign_raises_alerts(kafka_bootstrap, worker_factory):
    topics = WorkerTopics.unique("lg-campaign")
    topics.create(kafka_bootstrap)
    worker = _start(worker_factory, topics)
    records = campaign_records(topics)
    produce(kafka_bootstrap, records)
    expected = offline_alerts(records, topics, CONFIG)
    assert {a["detector"] for a in expected} >= {"device_farm@1", "paid_likes@1"}

    reader = TopicReader(kafka_bootstrap, topics.alerts)
    got = reader.wait_for_alerts(expected, worker, timeout=60, settle=SETTLE)
    reader.close()
    assert alert_diff(got, expected) == ""
    assert len(reader.records) == len(got)  # each alert once (no restart here)
    for rec in reader.records:
        a = orjson.loads(rec.value)
        assert set(a) == CONTRACT_FIELDS
        assert rec.key.decode() == f"{a['entity']['type']}:{a['entity']['id']}"
        assert 0 <= a["score"] <= 1
        assert a["severity"] in ("info", "warning", "critical")
        assert a["action"] in ("review", "clear_likes", "limit_payments", "ban")
        assert parse_time(a["window"]["start"]) <= parse_time(a["window"]["end"])
        assert parse_time(a["emitted_at"]) > parse_time(a["window"]["end"])  # wall clock now
        assert a["reasons"] and all({"code", "detail", "value", "threshold"} <= set(r)
                                    for r in a["reasons"])
    farm = [a for a in got.values() if a["entity"] == {"type": "device", "id": "d-farm-1"}]
    assert farm and any(a["severity"] == "critical" for a in farm)
    assert any(a["action"] == "ban" for a in farm)
    assert set(farm[0]["evidence"]["sample_ids"]) <= {f"l-farm-{i}" for i in range(40)}
    paid = [a for a in got.values() if a["detector"] == "paid_likes@1"]
    assert [a["entity"] for a in paid] == [{"type": "merchant", "id": "1900000042"}]
    codes = {r["code"] for r in paid[0]["reasons"]}
    assert "token_share" in codes and codes & {"token_paid_likers", "token_paid_likers_recent"}
    assert worker.metric("likeguard_alerts_total", entity_type="device", severity="critical",
                         detector="device_farm") >= 1
    # each event reached each of its views once (in bundles); the lockstep view
    # processed every like the user view forwarded
    per_view: Counter[str] = Counter()
    for topic, _key, value in records:
        ev = parse_payment(value) if topic == topics.payments else parse_like(value)
        if ev is not None:
            per_view.update(list(route_keys(ev)))
    assert set(per_view) == {"merchant", "ip", "device", "user"}
    for view, n in per_view.items():
        assert worker.metric("likeguard_view_events_total", view=view) == n, view

    def lockstep_caught_up() -> bool:
        fwd = worker.metric("likeguard_forwarded_likes_total")
        return fwd > 0 and worker.metric("likeguard_view_events_total", view="lockstep") == fwd
    wait_for(lockstep_caught_up, 30, worker.tail, alive=worker.alive)


def test_bad_records_go_to_deadletter(kafka_bootstrap, worker_factory):
    topics = WorkerTopics.unique("lg-bad")
    topics.create(kafka_bootstrap)
    # records are stamped now (the time of producing), the valid ones' events lie at T0: a
    # max_behind a month past that span rejects an event two months older than T0
    max_behind = time.time() - T0 + 30 * 86400
    worker = _start(worker_factory, topics, LIKEGUARD_MAX_BEHIND=str(max_behind))
    good = orjson.loads(like_value("l-x", "o-x", "post:1", "1900000001", T0))
    pay = orjson.loads(payment_value("tx-0", "1900000001", "o-x", 1, T0))
    bad = [  # (topic, value, reason)
        (topics.likes, b'{"like_id": "l-1", "user_openid": ', "not_json"),
        (topics.likes, b'{"like_id": "l-\xff\xfe"}', "not_utf8"),
        (topics.likes, orjson.dumps({k: v for k, v in good.items() if k != "user_openid"}),
         "missing_field"),
        (topics.likes, orjson.dumps({**good, "ts": 1795514400}), "wrong_type"),
        # a clock far ahead of the record's Kafka timestamp (the time of producing);
        # taken as it is, it would make its partition's later events late
        (topics.likes, orjson.dumps({**good, "like_id": "l-ahead", "ts": "2099-01-01T00:00:00Z"}),
         "bad_time"),
        # outside the valid years: a fresh engine would start its event time in 1970
        (topics.likes, orjson.dumps({**good, "like_id": "l-1970", "ts": "1970-01-01T00:00:00Z"}),
         "bad_time"),
        # more than max_behind before the record's timestamp
        (topics.likes, orjson.dumps({**good, "like_id": "l-behind",
                                     "ts": rfc3339(T0 - 60 * 86400)}), "bad_time"),
        (topics.likes, orjson.dumps({**good, "like_id": "l-long", "target_id": "p" * 100_000}),
         "out_of_range"),
        (topics.payments, orjson.dumps({**pay, "amount": {"total": 0}}), "out_of_range"),
        (topics.payments, orjson.dumps({**pay, "transaction_id": "tx-big",
                                        "amount": {"total": 2**63 - 1}}), "out_of_range"),
        (topics.payments, orjson.dumps({**pay, "transaction_id": "tx-9999",
                                        "success_time": "9999-12-31T23:59:59Z"}), "bad_time"),
    ]
    skipped = (topics.payments, payment_value("tx-closed", "1900000001", "o-x", 100, T0,
                                              trade_state="CLOSED"))
    valid = campaign_records(topics)
    # bad records first, interleaved partitions, then the valid campaign
    meta = produce(kafka_bootstrap, [(t, b"k", v) for t, v, _ in bad] + [(*skipped[:1], None,
                                                                         skipped[1])],
                   partitions=[i % 3 for i in range(len(bad))] + [0])
    produce(kafka_bootstrap, valid)
    expected = offline_alerts(valid, topics, CONFIG)

    dl = TopicReader(kafka_bootstrap, topics.deadletter)
    wait_for(lambda: len(dl.poll()) >= len(bad), 60,
             lambda: f"dead letters: {dl.values()}\n{worker.tail()}", alive=worker.alive)
    alerts = TopicReader(kafka_bootstrap, topics.alerts)
    got = alerts.wait_for_alerts(expected, worker, timeout=60, settle=SETTLE)
    dl.poll()
    alerts.close()
    dl.close()
    assert alert_diff(got, expected) == ""  # valid records unaffected by the bad ones
    letters = dl.values()
    assert len(letters) == len(bad)  # the skipped CLOSED payment is not dead-lettered
    at = {(d["topic"], d["partition"], d["offset"]): (d, r)
          for d, r in zip(letters, dl.records, strict=True)}
    for (topic, value, reason), m in zip(bad, meta, strict=False):
        d, rec = at[(topic, m.partition, m.offset)]
        assert d["reason"] == reason, d
        assert d["detail"]
        assert rec.key == b"k"
        if reason == "not_utf8":
            import base64

            assert d["encoding"] == "base64" and base64.b64decode(d["original"]) == value
        else:  # a long value keeps its first MAX_DEAD_LETTER_ORIGINAL bytes
            assert d["encoding"] == "utf-8"
            assert d["original"] == value[:MAX_DEAD_LETTER_ORIGINAL].decode()
        assert d["size"] == len(value)
        assert d["truncated"] == (len(value) > MAX_DEAD_LETTER_ORIGINAL)
    details = {orjson.loads(d["original"]).get("like_id") or "": d["detail"] for d in letters
               if d["reason"] == "bad_time" and d["topic"] == topics.likes}
    assert "after the record's Kafka timestamp" in details["l-ahead"]
    assert "outside 2000-01-01 to 2100-01-01" in details["l-1970"]
    assert "before the record's Kafka timestamp" in details["l-behind"]
    for (topic, reason), n in Counter((t, r) for t, _, r in bad).items():
        assert worker.metric("likeguard_events_rejected_total", topic=topic, reason=reason) == n
    assert worker.metric("likeguard_events_skipped_total", topic=topics.payments,
                         reason="trade_state") == 1
    n_likes = sum(1 for t, _, _ in [*bad, *valid] if t == topics.likes)
    assert worker.metric("likeguard_events_consumed_total", topic=topics.likes) == n_likes
    assert worker.alive()


def test_duplicates_are_not_counted_twice(kafka_bootstrap, worker_factory):
    topics = WorkerTopics.unique("lg-dup")
    topics.create(kafka_bootstrap)
    worker = _start(worker_factory, topics)
    records = campaign_records(topics)
    # every record delivered twice: once in order, then the whole batch again
    # (into other partitions than the first copy)
    produce(kafka_bootstrap, records + records,
            partitions=[i % 6 for i in range(len(records))] +
                       [(i + 3) % 6 for i in range(len(records))])
    expected = offline_alerts(records, topics, CONFIG)
    reader = TopicReader(kafka_bootstrap, topics.alerts)
    got = reader.wait_for_alerts(expected, worker, timeout=60, settle=SETTLE)
    reader.close()
    assert alert_diff(got, expected) == ""
    assert len(reader.records) == len(expected)  # not raised twice
    n_likes = sum(1 for t, _, _ in records if t == topics.likes)
    n_pay = len(records) - n_likes
    assert worker.metric("likeguard_duplicates_dropped_total", topic=topics.likes) == n_likes
    assert worker.metric("likeguard_duplicates_dropped_total", topic=topics.payments) == n_pay
    # the evidence counts each account once, as without the duplicates
    farm = max((a for a in got.values() if a["entity"]["id"] == "d-farm-1"),
               key=lambda a: a["window"]["end"])
    once = max((a for a in expected if a["entity"]["id"] == "d-farm-1"),
               key=lambda a: a["window"]["end"])
    assert farm["evidence"] == once["evidence"]


# ----------------------------------------------------------------------------- recordings

SIM = SimConfig(seed=3, duration=1200, rate=4, n_users=1500, n_merchants=60, campaigns=5,
                benign=2, duplicate_rate=0.02, partitions=6)


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    """A 20-minute simulated recording with five campaigns; its offline replay's
    alerts; and the alerts of the worker's topology modelled without Kafka."""
    d = tmp_path_factory.mktemp("recording")
    simulate(SIM, d / "rec.jsonl", d / "labels.json")
    replay(d / "rec.jsonl", d / "alerts.jsonl", CONFIG)
    alerts = read_jsonl(d / "alerts.jsonl")
    kinds = {a["detector"].split("@")[0] for a in alerts}
    assert len(alerts) >= 20 and {"device_farm", "paid_likes", "lockstep"} <= kinds
    return d / "rec.jsonl", alerts, partitioned_replay(d / "rec.jsonl", CONFIG)


def _strip(a: dict) -> dict:
    return {**a, "emitted_at": None}


def _alerts_seen(bootstrap: str, topics: WorkerTopics, want: set[str], worker) -> dict[str, dict]:
    """The alerts on the topic once ``want`` are all there (or the wait timed
    out: then whatever came, for the caller's assertions to name the gap).
    A worker that died meanwhile fails here, with its log's tail."""
    reader = TopicReader(bootstrap, topics.alerts)
    try:
        return reader.wait_for_ids(want, worker, timeout=120, settle=SETTLE)
    except AssertionError:
        if not worker.alive():
            raise
        return {a["alert_id"]: a for a in reader.values()}
    finally:
        reader.close()


def test_worker_equals_offline_replay(kafka_bootstrap, worker_factory, recording):
    path, offline, model = recording
    topics = WorkerTopics.unique("lg-equiv")
    topics.create(kafka_bootstrap)
    worker = _start(worker_factory, topics)
    records, parts = recording_records(path, topics)
    produce(kafka_bootstrap, records, parts)
    got = _alerts_seen(kafka_bootstrap, topics, alert_ids(offline) | alert_ids(model), worker)
    # 1. the worker does what its topology (one engine per view partition) should
    assert alert_diff(got, model) == ""
    for a in model:
        assert _strip(got[a["alert_id"]]) == _strip(a)
    # 2. ... which is what the offline replay does: same ids, same alerts
    assert alert_diff(got, offline) == ""
    for a in offline:
        assert _strip(got[a["alert_id"]]) == _strip(a)


def test_backlog_with_default_grace_loses_nothing(kafka_bootstrap, worker_factory, recording):
    """A worker started on a backlog fetches the input partitions (and the view
    topics) in chunks of bytes: one fetch may hold a whole partition of sparse
    payments (twenty minutes of event time) beside a few minutes of likes,
    far beyond ``max_skew``. The watermark follows the slowest source, and the
    ingest marks every input partition with records left as ``behind`` before
    its events reach the views, so with the default settings (10 s grace,
    60 s ``max_skew``) no event is late and the alerts are exactly the
    topology's."""
    path, _offline, _model = recording
    config = EngineConfig()
    model = partitioned_replay(path, config)
    assert model
    topics = WorkerTopics.unique("lg-backlog")
    topics.create(kafka_bootstrap)
    records, parts = recording_records(path, topics)
    produce(kafka_bootstrap, records, parts)  # all of it before the worker starts
    worker = worker_factory(topics, {"LIKEGUARD_IDLE_FLUSH": "2",
                                     "LIKEGUARD_CHECKPOINT_INTERVAL": "2"}).start()
    worker.wait_ready()
    got = _alerts_seen(kafka_bootstrap, topics, alert_ids(model), worker)
    late = _behind_watermark(worker)
    assert sum(late.values()) == 0, late
    assert alert_diff(got, model) == ""
    for a in model:
        assert _strip(got[a["alert_id"]]) == _strip(a)


def test_progress_marks_keep_sparse_partitions_current(kafka_bootstrap, worker_factory):
    """Live traffic, event time read off the clock: a device farm's likes come
    from one input partition, which then falls silent while another partition
    flows on with likes that carry no device. The farm's device-view partition
    receives nothing after the burst, yet its watermark follows the input's
    event time: the flowing partition's progress marks reach it, and the
    silent partition is marked as keeping the clock's pace since its last
    record. Without marks it would trail the newest event by ``max_skew``
    plus ``grace``."""
    from kafka import KafkaProducer

    topics = WorkerTopics.unique("lg-marks")
    topics.create(kafka_bootstrap)
    worker = _start(worker_factory, topics, LIKEGUARD_GRACE="10", LIKEGUARD_MAX_SKEW="15",
                    LIKEGUARD_IDLE_FLUSH="0")
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, linger_ms=5)
    try:
        # the sleeps pace the traffic like a live source (they are its clock, not a wait)
        for i in range(10):
            producer.send(topics.likes, like_value(f"l-farm-{i}", f"o-farm-{i}", "post:1",
                                                   "1900000007", time.time(), device="d-farm-1"),
                          partition=0)
            time.sleep(0.2)
        end = time.time() + 25
        i = 0
        while (newest := time.time()) < end:
            producer.send(topics.likes, like_value(f"l-flow-{i}", f"o-flow-{i}", f"post:{i % 5}",
                                                   "1900000008", newest), partition=1)
            i += 1
            time.sleep(0.25)
        producer.flush()
    finally:
        producer.close()

    def device_watermark() -> float:
        return worker.metric("likeguard_watermark_seconds", view="device")

    wait_for(lambda: device_watermark() >= newest - 10 - 3, timeout=30,
             message=lambda: f"device watermark {newest - device_watermark():.1f} s behind the "
                             f"newest event, want at most 13:\n{worker.tail()}",
             alive=worker.alive)
    assert worker.metric("likeguard_progress_marks_total", stage="ingest") > 0
    assert _behind_watermark(worker, ("device",)) == {"device": 0}


def test_payments_delivered_behind_the_likes_are_waited_for(kafka_bootstrap, worker_factory):
    """Live traffic in which every payment notification arrives 15 s after the
    payment (more than ``grace``) while likes arrive at once. The payment
    partitions are quiet between notifications; marking a quiet partition
    level with the newest like made most payments late (measured: 32 of 100
    in this test's first form). A quiet partition is marked as keeping the
    clock's pace since its own last record, so it keeps its delay, the
    watermarks wait for it (it is within ``max_skew``), and nothing is late."""
    from kafka import KafkaProducer

    topics = WorkerTopics.unique("lg-delayed")
    topics.create(kafka_bootstrap)
    worker = _start(worker_factory, topics, LIKEGUARD_GRACE="10", LIKEGUARD_MAX_SKEW="30",
                    LIKEGUARD_IDLE_FLUSH="0")
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, linger_ms=5)
    delay, n = 15.0, 0
    try:
        end = time.time() + 50  # past the start-up hold (max_skew) and on for 20 s
        i = 0
        while (now := time.time()) < end:
            k = i % 3
            producer.send(topics.likes, like_value(f"l-{i}", f"o-{i % 40}", f"post:{i % 7}",
                                                   f"190000000{k}", now), partition=k)
            if i % 15 == 0:  # one payment per partition every 3 s
                producer.send(topics.payments, payment_value(f"tx-{i}", f"190000000{k}",
                                                             f"o-{i % 40}", 500, now - delay),
                              partition=(i // 15) % 3)
                n += 1
            n += 1
            i += 1
            time.sleep(0.2 / 3)  # the traffic's clock (not a wait)
        producer.flush()
    finally:
        producer.close()
    wait_for(lambda: worker.metric("likeguard_view_events_total", view="merchant") >= n, 60,
             lambda: worker.tail(), alive=worker.alive)
    late = _behind_watermark(worker)
    assert sum(late.values()) == 0, late


def _crash_mid_stream(bootstrap: str, worker, topics: WorkerTopics, records, parts,
                      idle_flush: str) -> None:
    """Produce the first half (then start the worker, if it is not running:
    a backlog at its start); hard-kill the worker while it works through it;
    produce the second half while it is down; start it again with
    ``LIKEGUARD_IDLE_FLUSH=idle_flush``. The worker must be started with an
    idle flush longer than the wait for the kill: an engine flushed before
    the kill (the first half all processed and idle that long) would rightly
    count the second half's first events as late. A first half written into
    a running worker is a burst written while it consumes, which needs a
    ``max_skew`` longer than the burst's lead (docs/event-time.md)."""
    half = len(records) // 2
    produce(bootstrap, records[:half], parts[:half])
    if not worker.alive():
        worker.start()
        worker.wait_ready()
    wait_for(lambda: worker.metric("likeguard_checkpoints_total") >= 6 and
             worker.metric("likeguard_events_consumed_total", topic=topics.likes) > half // 4,
             60, lambda: worker.tail(), alive=worker.alive)
    # the alerts this start sent count too: its watermarks must not have passed an event
    late = _behind_watermark(worker)
    assert sum(late.values()) == 0, f"before the kill: {late}"
    assert worker.stop(signal.SIGKILL) == -signal.SIGKILL
    produce(bootstrap, records[half:], parts[half:])
    worker.settings["LIKEGUARD_IDLE_FLUSH"] = idle_flush
    worker.start()
    worker.wait_ready()


def test_restart_gives_the_same_alerts(kafka_bootstrap, worker_factory, recording):
    path, _offline, model = recording
    topics = WorkerTopics.unique("lg-restart")
    topics.create(kafka_bootstrap)
    worker = _start(worker_factory, topics, LIKEGUARD_IDLE_FLUSH="120")
    # 1. hard kill while the worker works through the first half
    _crash_mid_stream(kafka_bootstrap, worker, topics, *recording_records(path, topics),
                      idle_flush=FAST["LIKEGUARD_IDLE_FLUSH"])
    # 2. graceful stop once the first alerts are out (during the idle flushes)
    reader = TopicReader(kafka_bootstrap, topics.alerts)
    wait_for(lambda: reader.poll(), 120, lambda: worker.tail(), alive=worker.alive)
    late = _behind_watermark(worker)
    assert sum(late.values()) == 0, f"before the stop: {late}"
    assert worker.stop(signal.SIGTERM) == 0
    _assert_commits_covered(kafka_bootstrap, topics)
    worker.start()
    worker.wait_ready()
    got = reader.wait_for_alerts(model, worker, timeout=120, settle=SETTLE)
    reader.close()
    # the uninterrupted worker's alerts (test above: the worker equals this model)
    assert alert_diff(got, model) == "", _behind_watermark(worker)
    # both restarts restored engines from checkpoints
    assert "restored" in worker.log_text(2) and "restored" in worker.log_text(3)


def _assert_commits_covered(bootstrap: str, topics: WorkerTopics) -> int:
    """With the worker stopped: every committed offset is covered, a view
    record's by its partition's checkpoint, an input record's by the view
    records it was repartitioned into. Returns how many input records lie
    below the committed offsets."""
    # view topics: the Faust app's group; input topics: the ingest's own group
    committed = {**committed_offsets(bootstrap, topics.app_id),
                 **committed_offsets(bootstrap, f"{topics.app_id}-ingest")}
    checkpoint: dict[str, int] = {}
    for r in read_to_end(bootstrap, f"{topics.app_id}-checkpoints-changelog"):
        key = r.key.decode()
        if key.count("/") == 1 and r.value is not None:  # a header, not a chunk
            checkpoint[key] = orjson.loads(r.value)["offset"]
    views = {f"{topics.view_prefix}.{v}": v for v in ALL_VIEWS}
    behind = {f"{views[t]}/{p}": (off, checkpoint.get(f"{views[t]}/{p}"))
              for (t, p), off in committed.items() if t in views}
    assert len(behind) >= 6, committed  # the worker did commit view offsets
    assert all(ckpt is not None and off <= ckpt for off, ckpt in behind.values()), behind
    reached = {ev.id for r in read_to_end(bootstrap, f"{topics.view_prefix}.merchant")
               for ev in decode_record(r.value) if not isinstance(ev, Mark | Verdict)}
    below = 0
    for topic in (topics.payments, topics.likes):
        parse = parse_payment if topic == topics.payments else parse_like
        for r in read_to_end(bootstrap, topic):
            if r.offset < committed.get((topic, r.partition), 0):
                ev = parse(r.value)
                assert ev is None or ev.id in reached, (topic, r.partition, r.offset)
                below += 1
    return below


def _first_half_written(bootstrap: str, recording, prefix: str):
    """New topics with the first half of the recording written to the inputs:
    ``(model, topics, records, parts, half)``, the model being the topology's
    alerts with default settings."""
    path, _offline, _model = recording
    model = partitioned_replay(path, EngineConfig())
    topics = WorkerTopics.unique(prefix)
    topics.create(bootstrap)
    records, parts = recording_records(path, topics)
    half = len(records) // 2
    produce(bootstrap, records[:half], parts[:half])
    return model, topics, records, parts, half


def test_graceful_stop_commits_only_what_was_processed(kafka_bootstrap, worker_factory,
                                                       recording):
    """SIGTERM while the worker catches up a backlog: no committed offset
    passes a record that was not processed (Faust's acks as a batch was cut
    short on shutdown committed past records no engine had taken), and the
    restarted worker resumes where it stopped: the alerts are the topology's,
    each sent once (the stop checkpoints what was processed, so nothing is
    processed twice). Default grace, so alerts leave while the backlog is
    caught up, and records processed again would send theirs again."""
    model, topics, records, parts, half = _first_half_written(kafka_bootstrap, recording,
                                                              "lg-stop")
    # small ingest batches: the second half takes a while to catch up
    worker = worker_factory(topics, {"LIKEGUARD_IDLE_FLUSH": "60", "LIKEGUARD_BATCH_SIZE": "20",
                                     "LIKEGUARD_CHECKPOINT_INTERVAL": "2"}).start()
    worker.wait_ready()

    def consumed() -> float:
        return (worker.metric("likeguard_events_consumed_total", topic=topics.likes)
                + worker.metric("likeguard_events_consumed_total", topic=topics.payments))

    wait_for(lambda: worker.metric("likeguard_checkpoints_total") >= 6 and consumed() >= half,
             60, worker.tail, alive=worker.alive)
    # the stop comes while the second half is being caught up
    produce(kafka_bootstrap, records[half:], parts[half:])
    wait_for(lambda: consumed() > half, 60, worker.tail, alive=worker.alive)
    assert worker.stop(signal.SIGTERM) == 0
    assert "stopping: checkpointed" in worker.log_text(1)
    assert _assert_commits_covered(kafka_bootstrap, topics) > len(records) // 8
    worker.start()
    worker.wait_ready()
    reader = TopicReader(kafka_bootstrap, topics.alerts)
    got = reader.wait_for_alerts(model, worker, timeout=120, settle=SETTLE)
    reader.close()
    assert alert_diff(got, model) == ""
    sent = Counter(orjson.loads(r.value)["alert_id"] for r in reader.records)
    assert [a for a, n in sent.items() if n > 1] == []


def test_crash_with_default_settings_loses_nothing(kafka_bootstrap, worker_factory, recording):
    """A worker killed mid-stream and restarted on the backlog that built up
    meanwhile, with the default 10 s grace: its restored engines take the
    records consumed again without counting any of them late (the user view's
    likes forwarded again reach lockstep engines that had them already: they
    are duplicates), and the alerts are exactly the topology's."""
    path, _offline, _model = recording
    model = partitioned_replay(path, EngineConfig())
    assert model
    topics = WorkerTopics.unique("lg-crash")
    topics.create(kafka_bootstrap)
    # no idle flush before the kill (see _crash_mid_stream); started on the first half
    worker = worker_factory(topics, {"LIKEGUARD_IDLE_FLUSH": "120",
                                     "LIKEGUARD_CHECKPOINT_INTERVAL": "2"})
    _crash_mid_stream(kafka_bootstrap, worker, topics, *recording_records(path, topics),
                      idle_flush="6")
    got = _alerts_seen(kafka_bootstrap, topics, alert_ids(model), worker)
    late = _behind_watermark(worker)
    assert sum(late.values()) == 0, late
    assert alert_diff(got, model) == ""
    assert "restored" in worker.log_text(2)


def _commit_views_at_their_end(bootstrap: str, topics: WorkerTopics) -> dict[str, int]:
    """Commit the worker group's offsets of every view partition at its end, as
    a crash once left them past records no checkpoint covered. Retried until
    the killed member has left the group (the broker refuses a non-member's
    commit while the group has members). Returns the commits by view/partition."""
    from kafka import KafkaConsumer, OffsetAndMetadata, TopicPartition
    from kafka.errors import KafkaError

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=topics.app_id,
                             enable_auto_commit=False)
    try:
        tps = [TopicPartition(f"{topics.view_prefix}.{v}", p) for v in ALL_VIEWS
               for p in range(6)]
        consumer.assign(tps)
        end = consumer.end_offsets(tps)

        def commit() -> bool:
            try:
                consumer.commit({tp: OffsetAndMetadata(n, "", -1) for tp, n in end.items()})
            except KafkaError:
                return False
            return True

        wait_for(commit, 60, lambda: "the killed worker's member did not leave the group",
                 interval=1.0)
    finally:
        consumer.close()
    return {f"{tp.topic.rsplit('.', 1)[1]}/{tp.partition}": n for tp, n in end.items()}


def test_view_offsets_committed_past_every_checkpoint_lose_nothing(kafka_bootstrap,
                                                                   worker_factory, recording):
    """A crash that left the group's view offsets past records no checkpoint
    covered (seen once in a kill mid-stream: Faust took a jump in fetched
    offsets after a seek back for acked, and partitions restarted empty at
    their committed offsets lost their alerts) loses nothing: a partition
    without a checkpoint is read from its first record. The first worker
    forwards the first half into the views and writes no checkpoint before
    it is killed; every view offset is then committed at its end, and the
    second half is written while the worker is down."""
    model, topics, records, parts, half = _first_half_written(kafka_bootstrap, recording,
                                                              "lg-ahead")
    ends = Counter((topic, p) for (topic, _k, _v), p in zip(records[:half], parts[:half],
                                                            strict=True))
    worker = worker_factory(topics, {"LIKEGUARD_IDLE_FLUSH": "3600",
                                     "LIKEGUARD_CHECKPOINT_INTERVAL": "3600"}).start()
    worker.wait_ready()
    # every input record forwarded into the views (the ingest commits after that)
    wait_for(lambda: committed_offsets(kafka_bootstrap, f"{topics.app_id}-ingest") == ends,
             90, lambda: worker.tail(), interval=1.0, alive=worker.alive)
    assert worker.metric("likeguard_checkpoints_total") == 0
    assert worker.stop(signal.SIGKILL) == -signal.SIGKILL
    committed = _commit_views_at_their_end(kafka_bootstrap, topics)
    assert all(committed.values()), committed  # every view partition has records
    produce(kafka_bootstrap, records[half:], parts[half:])
    worker.settings.update({"LIKEGUARD_IDLE_FLUSH": "2", "LIKEGUARD_CHECKPOINT_INTERVAL": "2"})
    worker.start()
    worker.wait_ready()
    got = _alerts_seen(kafka_bootstrap, topics, alert_ids(model), worker)
    late = _behind_watermark(worker)
    assert sum(late.values()) == 0, late
    assert alert_diff(got, model) == ""
    log = worker.log_text(2)
    started = [slot for slot in committed
               if f"{slot} has no checkpoint: starts empty at offset 0" in log]
    assert len(started) >= len(committed) // 2, (started, worker.tail())
    assert "committed past the slot's checkpoint" in log


def test_a_crash_keeps_the_verdicts(kafka_bootstrap, worker_factory, recording):
    """Verdicts read before the traffic, then a hard kill mid-stream: the
    restarted worker's alerts are the topology's given the same verdicts. A
    dismissal by entity (its alert older than the worker's memory) holds a
    farm's first warning, its critical alert still comes; a confirmation
    fills the watchlists (state that must survive too)."""
    from detectors.verdicts import Verdict

    path, _offline, _model = recording
    plain = partitioned_replay(path, EngineConfig())
    farms = Counter(a["entity"]["id"] for a in plain if a["detector"] == "device_farm@1")
    device = next(d for d, n in farms.items() if n >= 2)  # a warning, then critical
    first = next(a for a in plain if a["entity"]["id"] == device)
    start = min(parse_time(a["window"]["start"]) for a in plain)
    paid = next(a for a in plain if a["detector"] == "paid_likes@1")
    verdicts = [
        Verdict("older-alert", "device", device, "dismissed", "r1", start, detector=first["detector"]),
        Verdict(paid["alert_id"], "merchant", paid["entity"]["id"], "confirmed", "r1",
                parse_time(paid["window"]["end"]) + 30,
                accounts=tuple(paid["evidence"]["sample_accounts"])),
    ]
    model = partitioned_replay(path, EngineConfig(), verdicts)
    gone = alert_ids(plain) - alert_ids(model)
    assert gone == {first["alert_id"]} and alert_ids(model) <= alert_ids(plain)
    topics = WorkerTopics.unique("lg-verdict-crash")
    topics.create(kafka_bootstrap)
    # running before the traffic, which then comes as a burst: max_skew past its lead
    worker = worker_factory(topics, {"LIKEGUARD_IDLE_FLUSH": "120", "LIKEGUARD_MAX_SKEW": "900",
                                     "LIKEGUARD_CHECKPOINT_INTERVAL": "2"}).start()
    worker.wait_ready()
    produce(kafka_bootstrap, [(topics.verdicts, v.key.encode(), v.to_json()) for v in verdicts])
    # in every view partition before the traffic, as in the model
    wait_for(lambda: worker.metric("likeguard_verdicts_total", verdict="dismissed") == 1
             and worker.metric("likeguard_verdicts_total", verdict="confirmed") == 1, 30,
             worker.tail, alive=worker.alive)
    _crash_mid_stream(kafka_bootstrap, worker, topics, *recording_records(path, topics),
                      idle_flush="6")
    got = _alerts_seen(kafka_bootstrap, topics, alert_ids(model), worker)
    assert sum(_behind_watermark(worker).values()) == 0
    assert alert_diff(got, model) == ""
    assert "restored" in worker.log_text(2)


def test_worker_over_sasl_ssl(kafka_bootstrap, kafka_sasl, worker_factory):
    """The worker talks to Kafka only through the SASL_SSL (SCRAM) listener."""
    topics = WorkerTopics.unique("lg-sasl")
    topics.create(kafka_bootstrap)
    worker = worker_factory(topics, {
        **FAST,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_sasl.bootstrap,
        "LIKEGUARD_SECURITY_PROTOCOL": "SASL_SSL",
        "LIKEGUARD_SASL_MECHANISM": kafka_sasl.mechanism,
        "LIKEGUARD_SASL_USERNAME": kafka_sasl.username,
        "LIKEGUARD_SASL_PASSWORD": kafka_sasl.password,
        "LIKEGUARD_SSL_CAFILE": kafka_sasl.cafile,
    }).start()
    worker.wait_ready()
    assert kafka_sasl.bootstrap in worker.log_text() and kafka_bootstrap not in worker.log_text()
    records = campaign_records(topics)
    produce(kafka_bootstrap, records)
    expected = offline_alerts(records, topics, CONFIG)
    reader = TopicReader(kafka_bootstrap, topics.alerts)
    got = reader.wait_for_alerts(expected, worker, timeout=60)
    reader.close()
    assert alert_diff(got, expected) == ""


def test_two_workers_share_the_partitions(kafka_bootstrap, worker_factory, recording):
    """A second worker joins mid-stream: partitions (and their checkpoints) move."""
    path, _offline, model = recording
    topics = WorkerTopics.unique("lg-rebalance")
    topics.create(kafka_bootstrap)
    # The input pauses mid-stream while the second worker starts. An idle flush is
    # final (later events behind the flushed watermark would be late, as they would
    # offline after the end of the file), so the flush waits longer than that pause
    # can last: the waits below allow it up to a minute, and a loaded machine has
    # taken over 30 s to start and rebalance.
    slow_flush = {"LIKEGUARD_IDLE_FLUSH": "75"}
    first = _start(worker_factory, topics, **slow_flush)
    records, parts = recording_records(path, topics)
    half = len(records) // 2
    produce(kafka_bootstrap, records[:half], parts[:half])
    wait_for(lambda: first.metric("likeguard_checkpoints_total") >= 6, 60,
             lambda: first.tail(), alive=first.alive)
    second = _start(worker_factory, topics, **slow_flush)
    wait_for(lambda: "Joined group" in first.log_text().split("Worker ready", 1)[-1], 60,
             lambda: first.tail(), alive=first.alive)  # the first worker rebalanced too
    produce(kafka_bootstrap, records[half:], parts[half:])
    reader = TopicReader(kafka_bootstrap, topics.alerts)
    # the last alerts come with the idle flush (lockstep's after twice its wait)
    got = reader.wait_for_alerts(model, second, timeout=330, settle=SETTLE)
    reader.close()
    assert alert_diff(got, model) == ""
    assert first.alive() and second.alive()
    # both did detection work, and the second took over checkpointed state
    assert first.metric("likeguard_checkpoints_total") > 0
    assert second.metric("likeguard_checkpoints_total") > 0
    assert "restored" in second.log_text()


def _ip_farm_records(topics: WorkerTopics, start: float, end: float
                     ) -> list[tuple[str, bytes | None, bytes]]:
    """Thirty accounts behind one IP like one post, one every 6 s: an IP farm
    (and a farmed target) re-alerted every ``renotify`` while it lasts."""
    out: list[tuple[str, bytes | None, bytes]] = []
    t, i = T0 + start, int(start / 6)
    while t < T0 + end:
        out.append((topics.likes, None, like_value(
            f"l-nat-{i}", f"o-nat-{i % 30}", "post:news", "1900000009", t, ip="6.6.6.6",
            device=f"d-nat-{i % 30}", user_created=T0 - 400 * 86400)))
        t += 6.0
        i += 1
    return out


def test_a_dismissal_quiets_the_worker(kafka_bootstrap, worker_factory):
    """A moderator dismisses the first IP-farm alert: the worker raises no
    reminder of it (the farmed target's reminders go on), as the offline
    engine given the same verdict; a bad verdict is dead-lettered."""
    from detectors.verdicts import Verdict

    topics = WorkerTopics.unique("lg-verdict")
    topics.create(kafka_bootstrap)
    # the second part comes as a backlog after an idle flush: a grace longer
    # than its span keeps every event in order (as GRACE does for the others)
    grace = 3 * 3600.0
    config = EngineConfig(grace=grace)
    worker = _start(worker_factory, topics, LIKEGUARD_GRACE=str(grace))
    first_part = _ip_farm_records(topics, 0, 600)
    produce(kafka_bootstrap, first_part)
    reader = TopicReader(kafka_bootstrap, topics.alerts)
    got = reader.wait_for_alerts(
        [a for a in offline_alerts(first_part, topics, config)
         if a["entity"]["type"] == "ip"], worker, timeout=60)
    first = next(a for a in got.values() if a["entity"]["type"] == "ip")
    verdict = Verdict(first["alert_id"], "ip", "6.6.6.6", "dismissed", "r1",
                      parse_time(first["window"]["end"]) + 60, reason="office NAT")
    produce(kafka_bootstrap, [(topics.verdicts, b"ip:6.6.6.6", b"{not json"),
                              (topics.verdicts, verdict.key.encode(), verdict.to_json())])
    wait_for(lambda: worker.metric("likeguard_verdicts_total", verdict="dismissed") == 1, 30,
             worker.tail, alive=worker.alive)
    records = first_part + _ip_farm_records(topics, 600, 2 * 3600)
    produce(kafka_bootstrap, records[len(first_part):])

    def model(verdicts: list[Verdict]) -> list[dict]:
        from detectors.engine import Engine
        from detectors.recording import Record
        from detectors.replay import replay_records

        eng = Engine(config)
        for v in verdicts:
            eng.verdict(v)
        recs = [Record("likes", 0, i, None, None, v) for i, (_, _, v) in enumerate(records)]
        out: list[dict] = []
        replay_records(recs, eng, lambda a: out.append(a.to_dict("x")))
        return out

    expected = model([verdict])
    on_ip = [a for a in expected if a["entity"]["type"] == "ip"]
    assert [a["alert_id"] for a in on_ip] == [first["alert_id"]]
    assert len([a for a in model([]) if a["entity"]["type"] == "ip"]) >= 3  # reminders
    assert len([a for a in expected if a["entity"]["type"] == "target"]) >= 3
    got = reader.wait_for_alerts(expected, worker, timeout=90, settle=SETTLE)
    reader.close()
    assert alert_diff(got, expected) == ""
    assert sum(_behind_watermark(worker).values()) == 0
    assert worker.metric("likeguard_verdict_effects_total", view="ip", effect="matched") == 1
    assert worker.metric("likeguard_verdict_effects_total", view="ip", effect="held") >= 1
    letters = read_to_end(kafka_bootstrap, topics.deadletter)
    assert [(d["topic"], d["reason"]) for d in map(orjson.loads, (r.value for r in letters))] \
        == [(topics.verdicts, "not_json")]
    assert worker.metric("likeguard_events_rejected_total", topic=topics.verdicts,
                         reason="not_json") == 1
