"""Tests of ``streams.metrics``: names, labels, convenience methods, exporter."""

from __future__ import annotations

import urllib.request

import pytest

from streams.metrics import (
    ALLOWED_LABELS,
    ANOMALY_SCORE_BUCKETS,
    Metrics,
    detector_name,
)

# Exported sample names the streams code, rules and dashboards rely on.
EXPECTED_SERIES = {
    "likeguard_events_consumed_total": "counter",
    "likeguard_events_rejected_total": "counter",
    "likeguard_events_skipped_total": "counter",
    "likeguard_duplicates_dropped_total": "counter",
    "likeguard_late_events_total": "counter",
    "likeguard_late_admitted_events_total": "counter",
    "likeguard_join_matches_total": "counter",
    "likeguard_state_keys": "gauge",
    "likeguard_state_window_items": "gauge",
    "likeguard_interned_ids": "gauge",
    "likeguard_state_compactions_total": "counter",
    "likeguard_alerts_total": "counter",
    "likeguard_alert_reasons_total": "counter",
    "likeguard_anomaly_score": "histogram",
    "likeguard_end_to_end_latency_seconds": "histogram",
    "likeguard_view_events_total": "counter",
    "likeguard_forwarded_likes_total": "counter",
    "likeguard_verdicts_total": "counter",
    "likeguard_verdict_effects_total": "counter",
    "likeguard_processing_latency_seconds": "histogram",
    "likeguard_batch_size": "histogram",
    "likeguard_consumer_lag": "gauge",
    "likeguard_model_warm": "gauge",
    "likeguard_model_samples": "gauge",
    "likeguard_last_checkpoint_timestamp_seconds": "gauge",
    "likeguard_checkpoints_total": "counter",
    "likeguard_watermark_seconds": "gauge",
    "likeguard_progress_marks_total": "counter",
    "likeguard_build_info": "gauge",
}

ALERT = {
    "alert_id": "a-1",
    "entity": {"type": "merchant", "id": "1900000042"},
    "window": {"start": "2026-11-24T04:00:00Z", "end": "2026-11-24T04:05:00Z"},
    "score": 0.93,
    "severity": "critical",
    "action": "limit_payments",
    "reasons": [
        {"code": "paid_like_ratio", "detail": "", "value": 0.9, "threshold": 0.5},
        {"code": "token_amounts", "detail": "", "value": 40, "threshold": 10},
    ],
    "evidence": {},
    "detector": "paid_likes@1.4.0",
    "emitted_at": "2026-11-24T04:05:02Z",
}


def exercise(m: Metrics) -> None:
    """Call every convenience method once, so every metric has samples."""
    m.consumed("likes", 5)
    m.rejected("likes", "not_json")
    m.skipped("payments.success", "trade_state")
    m.duplicate("likes")
    m.late("merchant")
    m.late_admitted("merchant")
    m.join_match("pay_then_like")
    m.alert(ALERT)
    m.observe_latency(100.0, 102.5)
    m.observe_batch(10, 0.01)
    m.view_processed("lockstep", 7)
    m.forwarded(7)
    m.verdict("dismissed")
    m.verdict_effect("ip", "held", 3)
    m.set_state("merchant", 3, 40)
    m.state_compacted("device")
    m.set_lag("likes", 2, 17)
    m.set_model("river_hst@0.3", True, 1200)
    m.checkpoint(1_764_000_000.0)
    m.watermark("merchant", 1_764_000_100.0)
    m.marks("ingest", 24)


@pytest.fixture()
def m() -> Metrics:
    return Metrics(version="9.9.9")


def value(m: Metrics, name: str, labels: dict[str, str] | None = None) -> float | None:
    return m.registry.get_sample_value(name, labels or {})


def test_every_expected_metric_is_exported_with_its_type(m: Metrics) -> None:
    exercise(m)
    families = {f.name: f.type for f in m.registry.collect()}
    for series, kind in EXPECTED_SERIES.items():
        family = series.removesuffix("_total") if kind == "counter" else series
        assert families.get(family) == kind, series


def test_names_follow_conventions(m: Metrics) -> None:
    exercise(m)
    for family in m.registry.collect():
        if family.name.startswith("process_"):
            continue  # the standard process collector
        assert family.name.startswith("likeguard_"), family.name
        assert "milliseconds" not in family.name and "_ms" not in family.name
        if family.type == "counter":
            assert any(s.name == family.name + "_total" for s in family.samples), family.name


def test_only_bounded_label_names(m: Metrics) -> None:
    exercise(m)
    seen: set[str] = set()
    for family in m.registry.collect():
        assert family.samples, f"{family.name} has no samples after exercise()"
        for sample in family.samples:
            names = set(sample.labels) - {"le"}
            assert names <= ALLOWED_LABELS, (sample.name, names - ALLOWED_LABELS)
            seen |= names
    forbidden = {"user", "openid", "ip", "client_ip", "device", "device_id", "target",
                 "target_id", "mchid", "merchant", "entity_id", "transaction_id", "like_id"}
    assert not (ALLOWED_LABELS & forbidden)
    assert {"topic", "reason", "view", "detector"} <= seen


def test_consumed_starts_at_zero_for_input_topics(m: Metrics) -> None:
    assert value(m, "likeguard_events_consumed_total", {"topic": "payments.success"}) == 0.0
    assert value(m, "likeguard_events_consumed_total", {"topic": "likes"}) == 0.0
    m.consumed("likes")
    m.consumed("likes", 4)
    assert value(m, "likeguard_events_consumed_total", {"topic": "likes"}) == 5.0


def test_rejected_skipped_duplicate_late_join(m: Metrics) -> None:
    m.rejected("likes", "not_json")
    m.rejected("likes", "not_json")
    m.rejected("payments.success", "missing_field")
    m.skipped("payments.success", "trade_state")
    m.duplicate("likes")
    m.late("ip", 3)
    m.late_admitted("ip", 2)
    m.join_match("like_then_pay")
    m.join_match("sideways")
    assert value(m, "likeguard_events_rejected_total",
                 {"topic": "likes", "reason": "not_json"}) == 2.0
    assert value(m, "likeguard_events_rejected_total",
                 {"topic": "payments.success", "reason": "missing_field"}) == 1.0
    assert value(m, "likeguard_events_skipped_total",
                 {"topic": "payments.success", "reason": "trade_state"}) == 1.0
    assert value(m, "likeguard_duplicates_dropped_total", {"topic": "likes"}) == 1.0
    assert value(m, "likeguard_late_events_total", {"view": "ip"}) == 3.0
    assert value(m, "likeguard_late_admitted_events_total", {"view": "ip"}) == 2.0
    assert value(m, "likeguard_join_matches_total", {"direction": "like_then_pay"}) == 1.0
    assert value(m, "likeguard_join_matches_total", {"direction": "other"}) == 1.0
    assert value(m, "likeguard_join_matches_total", {"direction": "sideways"}) is None


def test_alert_counts_reasons_and_score(m: Metrics) -> None:
    m.alert(ALERT)
    m.alert(ALERT)
    labels = {"entity_type": "merchant", "severity": "critical", "detector": "paid_likes"}
    assert value(m, "likeguard_alerts_total", labels) == 2.0
    assert value(m, "likeguard_alert_reasons_total", {"reason": "paid_like_ratio"}) == 2.0
    assert value(m, "likeguard_alert_reasons_total", {"reason": "token_amounts"}) == 2.0
    det = {"detector": "paid_likes"}
    assert value(m, "likeguard_anomaly_score_count", det) == 2.0
    assert value(m, "likeguard_anomaly_score_sum", det) == pytest.approx(1.86)
    assert value(m, "likeguard_anomaly_score_bucket", {**det, "le": "0.9"}) == 0.0
    assert value(m, "likeguard_anomaly_score_bucket", {**det, "le": "0.95"}) == 2.0
    # the versioned detector string never becomes a label value
    for family in m.registry.collect():
        for sample in family.samples:
            assert "paid_likes@1.4.0" not in sample.labels.values()


def test_alert_bounds_unknown_values(m: Metrics) -> None:
    m.alert({"entity": {"type": "o-user-123", "id": "x"}, "severity": "SEV1",
             "detector": "rules/7", "reasons": [{"detail": "no code"}], "score": True})
    labels = {"entity_type": "other", "severity": "other", "detector": "rules"}
    assert value(m, "likeguard_alerts_total", labels) == 1.0
    assert value(m, "likeguard_alert_reasons_total", {"reason": "unknown"}) == 1.0
    assert value(m, "likeguard_anomaly_score_count", {"detector": "rules"}) is None


def test_anomaly_score_buckets() -> None:
    assert len(ANOMALY_SCORE_BUCKETS) == 20
    assert ANOMALY_SCORE_BUCKETS[0] == 0.05 and ANOMALY_SCORE_BUCKETS[-1] == 1.0
    steps = {round(b - a, 6) for a, b in zip(ANOMALY_SCORE_BUCKETS, ANOMALY_SCORE_BUCKETS[1:],
                                             strict=False)}
    assert steps == {0.05}


@pytest.mark.parametrize(
    ("detector", "name"),
    [("a@1", "a"), ("a/1.2", "a"), ("plain", "plain"), ("x@1@2", "x"), ("@1", "unknown")],
)
def test_detector_name(detector: str, name: str) -> None:
    assert detector_name(detector) == name


def test_observe_latency(m: Metrics) -> None:
    m.observe_latency(1000.0, 1002.0)
    m.observe_latency(1000.0, 999.0)  # clock skew: counted as 0
    m.observe_latency(0.0, 7200.0)  # beyond the last bucket
    name = "likeguard_end_to_end_latency_seconds"
    assert value(m, name + "_count") == 3.0
    assert value(m, name + "_sum") == 7202.0
    assert value(m, name + "_bucket", {"le": "0.1"}) == 1.0
    assert value(m, name + "_bucket", {"le": "2.5"}) == 2.0
    assert value(m, name + "_bucket", {"le": "3600.0"}) == 2.0
    assert value(m, name + "_bucket", {"le": "+Inf"}) == 3.0


def test_observe_batch(m: Metrics) -> None:
    m.observe_batch(100, 0.02)
    m.observe_batch(0, 0.001)
    assert value(m, "likeguard_batch_size_count") == 2.0
    assert value(m, "likeguard_batch_size_sum") == 100.0
    assert value(m, "likeguard_processing_latency_seconds_count") == 1.0
    assert value(m, "likeguard_processing_latency_seconds_sum") == pytest.approx(2e-4)
    assert value(m, "likeguard_processing_latency_seconds_bucket", {"le": "0.0001"}) == 0.0
    assert value(m, "likeguard_processing_latency_seconds_bucket", {"le": "0.00025"}) == 1.0


def test_state_lag_model_checkpoint_watermark(m: Metrics) -> None:
    m.set_state("merchant", 10, 250)
    m.set_state("merchant", 8, 200)
    assert value(m, "likeguard_state_keys", {"view": "merchant"}) == 8.0
    assert value(m, "likeguard_state_window_items", {"view": "merchant"}) == 200.0
    m.set_interned(1200)
    m.set_interned(900)
    assert value(m, "likeguard_interned_ids") == 900.0

    m.set_lag("likes", 3, 120)
    m.set_lag("likes", 4, -5)
    assert value(m, "likeguard_consumer_lag", {"topic": "likes", "partition": "3"}) == 120.0
    assert value(m, "likeguard_consumer_lag", {"topic": "likes", "partition": "4"}) == 0.0
    m.forget_partition("likes", 3)
    m.forget_partition("likes", 99)  # never set: no error
    assert value(m, "likeguard_consumer_lag", {"topic": "likes", "partition": "3"}) is None

    m.set_model("hst@2", False, 10)
    m.set_model("hst@3", True, 600)
    assert value(m, "likeguard_model_warm", {"detector": "hst"}) == 1.0
    assert value(m, "likeguard_model_samples", {"detector": "hst"}) == 600.0

    assert value(m, "likeguard_last_checkpoint_timestamp_seconds") == 0.0
    m.checkpoint(1_764_000_000.5)
    m.checkpoint(1_764_000_060.5)
    assert value(m, "likeguard_last_checkpoint_timestamp_seconds") == 1_764_000_060.5
    assert value(m, "likeguard_checkpoints_total") == 2.0

    m.watermark("user", 1_764_000_000.0)
    assert value(m, "likeguard_watermark_seconds", {"view": "user"}) == 1_764_000_000.0


def test_build_info_and_process_metrics(m: Metrics) -> None:
    assert value(m, "likeguard_build_info", {"version": "9.9.9"}) == 1.0
    names = {f.name for f in m.registry.collect()}
    assert "process_start_time_seconds" in names
    bare = Metrics(version="1", process_metrics=False)
    assert not any(f.name.startswith("process_") for f in bare.registry.collect())


def test_instances_are_independent() -> None:
    a, b = Metrics(version="a"), Metrics(version="b")
    a.consumed("likes", 2)
    assert a.registry.get_sample_value("likeguard_events_consumed_total",
                                       {"topic": "likes"}) == 2.0
    assert b.registry.get_sample_value("likeguard_events_consumed_total",
                                       {"topic": "likes"}) == 0.0


def test_serve_ephemeral_port_answers_metrics(m: Metrics) -> None:
    exercise(m)
    port = m.serve(0)
    try:
        assert port > 0
        with pytest.raises(RuntimeError):
            m.serve(0)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
            assert resp.status == 200
            body = resp.read().decode()
    finally:
        m.stop()
    for series, kind in EXPECTED_SERIES.items():
        assert f"# TYPE {series} {kind}" in body, series
    assert 'likeguard_events_consumed_total{topic="likes"} 5.0' in body
    assert 'likeguard_build_info{version="9.9.9"} 1.0' in body
    # stopped: the port no longer answers, and serve() works again
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2)
    port2 = m.serve(0)
    m.stop()
    assert port2 > 0
