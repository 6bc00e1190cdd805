"""Prometheus metrics of the likeguard worker.

Every metric the worker exports is defined here, on a :class:`Metrics` object
that owns its own :class:`~prometheus_client.CollectorRegistry`, so tests (and
an offline replay) can create as many independent instances as they like
without clashing in the process-global default registry.

Conventions (kept by ``tests/unit/test_metrics.py``):

* every name starts with ``likeguard_``; times are in seconds, counters end
  in ``_total`` (prometheus-client adds the suffix);
* label *values* are bounded: topics, views, reason codes, entity types,
  severities and detector *names*. User, IP, device, target and merchant ids
  never become labels. Detector strings are ``"name@version"`` (``/`` is
  accepted too) and only ``name`` is used as a label value;
* ``consumed`` counts every record read from an input topic, including the
  ones later rejected or skipped, so ``rejected / consumed`` is the
  dead-letter ratio used by the alerting rules.

The HTTP exporter is started with :meth:`Metrics.serve`, which also accepts
port 0 and returns the port actually bound:

>>> m = Metrics(version="0.0.0")
>>> m.consumed("likes", 3)
>>> m.registry.get_sample_value("likeguard_events_consumed_total", {"topic": "likes"})
3.0
>>> m.alert({"entity": {"type": "target"}, "severity": "warning",
...          "detector": "velocity@1.2", "score": 0.9,
...          "reasons": [{"code": "like_burst"}]})
>>> m.registry.get_sample_value("likeguard_alerts_total",
...     {"entity_type": "target", "severity": "warning", "detector": "velocity"})
1.0
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    start_http_server,
)

__all__ = [
    "ALLOWED_LABELS",
    "ANOMALY_SCORE_BUCKETS",
    "BATCH_SIZE_BUCKETS",
    "END_TO_END_BUCKETS",
    "INPUT_TOPICS",
    "PROCESSING_BUCKETS",
    "Metrics",
    "detector_name",
]

#: The only label names any likeguard metric may carry; all have bounded values.
ALLOWED_LABELS: frozenset[str] = frozenset(
    {
        "topic",
        "partition",
        "reason",
        "view",
        "direction",
        "entity_type",
        "severity",
        "detector",
        "version",
        "stage",
        "verdict",
        "effect",
    }
)

#: Input topics whose consumed counters are created at zero on start-up, so
#: ``rate()`` and the "no events" alert see a series before the first record.
INPUT_TOPICS: tuple[str, ...] = ("payments.success", "likes")

#: 0.05, 0.10, ... 1.00 (score is in 0..1).
ANOMALY_SCORE_BUCKETS: tuple[float, ...] = tuple(round(0.05 * i, 2) for i in range(1, 21))

#: Event time to alert produced: 100 ms .. 1 h.
END_TO_END_BUCKETS: tuple[float, ...] = (
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
)

#: Processing time per event: 1 µs .. 1 s.
PROCESSING_BUCKETS: tuple[float, ...] = (
    1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4,
    1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 5e-2, 0.1, 0.25, 0.5, 1.0,
)

#: Events per batch handed to an agent.
BATCH_SIZE_BUCKETS: tuple[float, ...] = (
    1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000,
)

_ENTITY_TYPES = frozenset({"merchant", "target", "user", "ip", "device"})
_SEVERITIES = frozenset({"info", "warning", "critical"})
_DIRECTIONS = frozenset({"pay_then_like", "like_then_pay"})
_VERDICTS = frozenset({"confirmed", "dismissed"})
_EFFECTS = frozenset({"matched", "held"})
_STAGES = frozenset({"ingest", "user"})
_OTHER = "other"
_DETECTOR_VERSION = re.compile(r"[@/]")


def detector_name(detector: str) -> str:
    """Return the bounded label value of a ``"name@version"`` detector string.

    >>> detector_name("paid_burst@2026.11.1")
    'paid_burst'
    >>> detector_name("river-hst/3")
    'river-hst'
    >>> detector_name("")
    'unknown'
    """
    name = _DETECTOR_VERSION.split(detector, maxsplit=1)[0].strip()
    return name or "unknown"


def _bounded(value: object, allowed: frozenset[str]) -> str:
    """Map ``value`` to itself when it is in ``allowed``, else to ``"other"``."""
    text = str(value) if value is not None else ""
    return text if text in allowed else _OTHER


def _package_version() -> str:
    """The installed likeguard version, or ``"unknown"`` outside an install."""
    try:
        from importlib.metadata import PackageNotFoundError, version
    except ImportError:  # pragma: no cover - always there on 3.11
        return "unknown"
    try:
        return version("likeguard")
    except PackageNotFoundError:
        return "unknown"


class Metrics:
    """All Prometheus metrics of one worker, on a private registry.

    The attributes are the raw prometheus-client metric objects (for code that
    needs something the convenience methods do not offer); the methods are
    what agents call on their hot path.
    """

    def __init__(
        self,
        version: str | None = None,
        *,
        input_topics: Iterable[str] = INPUT_TOPICS,
        process_metrics: bool = True,
    ) -> None:
        """Create the registry and every metric.

        ``version`` labels ``likeguard_build_info`` (default: the installed
        package version). ``input_topics`` get their consumed counters
        created at zero. ``process_metrics`` adds the standard ``process_*``
        collector (CPU, memory, ``process_start_time_seconds``), which the
        checkpoint-staleness alert uses before the first checkpoint.
        """
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self._server: Any = None
        self._thread: threading.Thread | None = None

        self.events_consumed = Counter(
            "likeguard_events_consumed", "Records read from an input topic (all of them).",
            ["topic"], registry=r,
        )
        self.events_rejected = Counter(
            "likeguard_events_rejected",
            "Records sent to the dead-letter topic, by source topic and reason code.",
            ["topic", "reason"], registry=r,
        )
        self.events_skipped = Counter(
            "likeguard_events_skipped",
            "Valid records deliberately ignored (e.g. trade_state not SUCCESS).",
            ["topic", "reason"], registry=r,
        )
        self.duplicates_dropped = Counter(
            "likeguard_duplicates_dropped",
            "Records dropped as duplicate deliveries (same transaction_id / like_id).",
            ["topic"], registry=r,
        )
        self.late_events = Counter(
            "likeguard_late_events",
            "Events dropped as late (more than allowed_lateness behind the view's watermark), "
            "by view.",
            ["view"], registry=r,
        )
        self.late_admitted_events = Counter(
            "likeguard_late_admitted_events",
            "Events behind the view's watermark but within allowed_lateness, taken out of "
            "order, by view.",
            ["view"], registry=r,
        )
        self.join_matches = Counter(
            "likeguard_join_matches",
            "Payment-like join matches, by which side arrived first.",
            ["direction"], registry=r,
        )
        self.state_keys = Gauge(
            "likeguard_state_keys", "Keys with live window state, by view.",
            ["view"], registry=r,
        )
        self.state_window_items = Gauge(
            "likeguard_state_window_items", "Items held in window state, by view.",
            ["view"], registry=r,
        )
        self.interned_ids = Gauge(
            "likeguard_interned_ids",
            "Distinct ids the worker's engines hold interned (one shared copy each), "
            "those awaiting the pool's next sweep included.",
            registry=r,
        )
        self.state_compactions = Counter(
            "likeguard_state_compactions",
            "Times a view's engine laid its state out afresh once a burst had expired, so "
            "that the burst's pages went back to the system, by view.",
            ["view"], registry=r,
        )
        self.alerts = Counter(
            "likeguard_alerts", "Alerts produced.",
            ["entity_type", "severity", "detector"], registry=r,
        )
        self.alert_reasons = Counter(
            "likeguard_alert_reasons", "Reason codes carried by produced alerts.",
            ["reason"], registry=r,
        )
        self.anomaly_score = Histogram(
            "likeguard_anomaly_score", "Score (0..1) of produced alerts, by detector.",
            ["detector"], buckets=ANOMALY_SCORE_BUCKETS, registry=r,
        )
        self.end_to_end_latency = Histogram(
            "likeguard_end_to_end_latency_seconds",
            "Seconds from an alert's triggering event time to the alert being produced.",
            buckets=END_TO_END_BUCKETS, registry=r,
        )
        self.view_events = Counter(
            "likeguard_view_events",
            "Events processed by a view's engines, by view (progress marks excluded; "
            "events a restart re-processes after the last checkpoint count again).",
            ["view"], registry=r,
        )
        self.verdicts = Counter(
            "likeguard_verdicts", "Valid moderators' verdicts read, by verdict.",
            ["verdict"], registry=r,
        )
        self.verdict_effects = Counter(
            "likeguard_verdict_effects",
            "What verdicts did in the view engines, by view: matched (named an alert the "
            "engine still remembers) and held (a candidate alert kept quiet by a dismissal).",
            ["view", "effect"], registry=r,
        )
        self.forwarded_likes = Counter(
            "likeguard_forwarded_likes",
            "Enriched likes the user view sent to the lockstep view.", registry=r,
        )
        self.processing_latency = Histogram(
            "likeguard_processing_latency_seconds",
            "Seconds spent processing a batch, divided by its events (one observation "
            "per batch).",
            buckets=PROCESSING_BUCKETS, registry=r,
        )
        self.batch_size = Histogram(
            "likeguard_batch_size", "Events per processed batch.",
            buckets=BATCH_SIZE_BUCKETS, registry=r,
        )
        self.consumer_lag = Gauge(
            "likeguard_consumer_lag",
            "Messages between the committed/consumed offset and the log end.",
            ["topic", "partition"], registry=r,
        )
        self.model_warm = Gauge(
            "likeguard_model_warm", "1 when the detector's model is past warm-up, else 0.",
            ["detector"], registry=r,
        )
        self.model_samples = Gauge(
            "likeguard_model_samples", "Samples the detector's model has learned from.",
            ["detector"], registry=r,
        )
        self.last_checkpoint = Gauge(
            "likeguard_last_checkpoint_timestamp_seconds",
            "Unix time of the last state checkpoint (0 = none since start).",
            registry=r,
        )
        self.checkpoints = Counter(
            "likeguard_checkpoints", "State checkpoints written.", registry=r,
        )
        self.progress_marks = Counter(
            "likeguard_progress_marks",
            "Progress marks sent to view partitions (by the stage that sent them).",
            ["stage"], registry=r,
        )
        self.watermark_seconds = Gauge(
            "likeguard_watermark_seconds", "Event-time watermark of a view, unix seconds.",
            ["view"], registry=r,
        )
        self.build_info = Gauge(
            "likeguard_build_info", "Always 1; the version label tells the build.",
            ["version"], registry=r,
        )
        self.build_info.labels(version=version or _package_version()).set(1)
        for topic in input_topics:
            self.events_consumed.labels(topic=topic)
        if process_metrics:
            ProcessCollector(registry=r)

    # -- input ----------------------------------------------------------------

    def consumed(self, topic: str, n: int = 1) -> None:
        """Count ``n`` records read from ``topic`` (valid or not)."""
        self.events_consumed.labels(topic=topic).inc(n)

    def rejected(self, topic: str, reason: str) -> None:
        """Count one dead-lettered record of ``topic`` with a bounded reason code."""
        self.events_rejected.labels(topic=topic, reason=reason).inc()

    def skipped(self, topic: str, reason: str, n: int = 1) -> None:
        """Count ``n`` valid records of ``topic`` that were ignored on purpose."""
        self.events_skipped.labels(topic=topic, reason=reason).inc(n)

    def duplicate(self, topic: str, n: int = 1) -> None:
        """Count ``n`` duplicate deliveries of ``topic`` that were dropped."""
        if n:
            self.duplicates_dropped.labels(topic=topic).inc(n)

    def late(self, view: str, n: int = 1) -> None:
        """Count ``n`` events that arrived too far behind ``view``'s watermark."""
        self.late_events.labels(view=view).inc(n)

    def late_admitted(self, view: str, n: int = 1) -> None:
        """Count ``n`` events taken out of order, within ``allowed_lateness``."""
        self.late_admitted_events.labels(view=view).inc(n)

    def join_match(self, direction: str) -> None:
        """Count one join match; ``direction`` is pay_then_like or like_then_pay."""
        self.join_matches.labels(direction=_bounded(direction, _DIRECTIONS)).inc()

    # -- output ---------------------------------------------------------------

    def alert(self, alert: Mapping[str, Any]) -> None:
        """Account for one produced alert (a dict shaped as in CONTRACT.md).

        Increments ``likeguard_alerts_total`` by entity type, severity and
        detector name (version stripped), ``likeguard_alert_reasons_total``
        once per reason code, and observes the score in
        ``likeguard_anomaly_score``. Unknown entity types and severities are
        counted as ``other`` so a malformed alert cannot grow the label set.
        """
        entity = alert.get("entity") or {}
        entity_type = _bounded(entity.get("type") if isinstance(entity, Mapping) else None,
                               _ENTITY_TYPES)
        severity = _bounded(alert.get("severity"), _SEVERITIES)
        detector = detector_name(str(alert.get("detector") or ""))
        self.alerts.labels(entity_type=entity_type, severity=severity, detector=detector).inc()
        for reason in alert.get("reasons") or ():
            code = reason.get("code") if isinstance(reason, Mapping) else None
            self.alert_reasons.labels(reason=str(code) if code else "unknown").inc()
        score = alert.get("score")
        if isinstance(score, int | float) and not isinstance(score, bool):
            self.anomaly_score.labels(detector=detector).observe(float(score))

    def observe_latency(self, event_ts: float, now: float) -> None:
        """Observe end-to-end latency: alert produced at ``now`` for an event at ``event_ts``.

        Both are unix seconds; a negative difference (clock skew) counts as 0.
        """
        self.end_to_end_latency.observe(max(0.0, now - event_ts))

    def view_processed(self, view: str, n: int) -> None:
        """Count ``n`` events processed by ``view``'s engines."""
        self.view_events.labels(view=view).inc(n)

    def verdict(self, verdict: str) -> None:
        """Count one valid verdict read by the ingest (``confirmed``/``dismissed``)."""
        self.verdicts.labels(verdict=_bounded(verdict, _VERDICTS)).inc()

    def verdict_effect(self, view: str, effect: str, n: int = 1) -> None:
        """Count ``n`` verdict effects in ``view``'s engines (``matched`` or ``held``)."""
        self.verdict_effects.labels(view=view, effect=_bounded(effect, _EFFECTS)).inc(n)

    def forwarded(self, n: int) -> None:
        """Count ``n`` enriched likes sent on to the lockstep view."""
        self.forwarded_likes.inc(n)

    def observe_batch(self, n_events: int, seconds: float) -> None:
        """Observe one processed batch of ``n_events`` that took ``seconds``.

        Records the batch size and, for non-empty batches, the per-event
        processing time ``seconds / n_events``.
        """
        self.batch_size.observe(n_events)
        if n_events > 0:
            self.processing_latency.observe(max(0.0, seconds) / n_events)

    # -- state and progress ---------------------------------------------------

    def set_state(self, view: str, keys: int, items: int) -> None:
        """Set the number of live keys and window items of ``view``."""
        self.state_keys.labels(view=view).set(keys)
        self.state_window_items.labels(view=view).set(items)

    def set_interned(self, n: int) -> None:
        """Set the number of ids the engines hold interned (``_core.interned_ids``)."""
        self.interned_ids.set(n)

    def state_compacted(self, view: str, n: int = 1) -> None:
        """Count ``n`` copies of ``view``'s state laid out afresh after a burst."""
        self.state_compactions.labels(view=view).inc(n)

    def set_lag(self, topic: str, partition: int, lag: int) -> None:
        """Set the consumer lag (messages, clamped at 0) of one assigned partition."""
        self.consumer_lag.labels(topic=topic, partition=str(int(partition))).set(max(0, lag))

    def set_lags(self, last: Mapping[Any, int], highwater: Callable[[Any], int | None]) -> None:
        """The lag behind ``last[tp]`` (the offset just processed) of each
        partition, from ``highwater(tp)`` of the consumer that reads it (best
        effort: a partition whose high-water mark is unknown is skipped)."""
        for tp, offset in last.items():
            try:
                hw = highwater(tp)
            except Exception:  # noqa: BLE001 - lag is best effort
                continue
            if hw is not None:
                self.set_lag(tp.topic, tp.partition, hw - offset - 1)

    def forget_partition(self, topic: str, partition: int) -> None:
        """Drop the lag series of a partition that was revoked from this worker."""
        try:
            self.consumer_lag.remove(topic, str(int(partition)))
        except KeyError:
            pass

    def set_model(self, detector: str, warm: bool, samples: int) -> None:
        """Set warm-up state and sample count of a detector's model."""
        name = detector_name(detector)
        self.model_warm.labels(detector=name).set(1 if warm else 0)
        self.model_samples.labels(detector=name).set(samples)

    def checkpoint(self, ts: float) -> None:
        """Record a state checkpoint written at unix time ``ts``."""
        self.last_checkpoint.set(ts)
        self.checkpoints.inc()

    def marks(self, stage: str, n: int) -> None:
        """Count ``n`` progress marks sent by ``stage`` (``ingest`` or ``user``)."""
        self.progress_marks.labels(stage=_bounded(stage, _STAGES)).inc(n)

    def watermark(self, view: str, ts: float) -> None:
        """Set the event-time watermark (unix seconds) of ``view``."""
        self.watermark_seconds.labels(view=view).set(ts)

    # -- exporter -------------------------------------------------------------

    def serve(self, port: int, addr: str = "127.0.0.1") -> int:
        """Start the HTTP exporter (``/metrics``) in a daemon thread.

        ``port`` 0 binds an ephemeral port. Returns the port actually bound.
        Raises ``RuntimeError`` if this instance is already serving.
        """
        if self._server is not None:
            raise RuntimeError("metrics exporter already running")
        server, thread = start_http_server(port, addr=addr, registry=self.registry)
        self._server, self._thread = server, thread
        return int(server.server_port)

    def stop(self) -> None:
        """Stop the HTTP exporter started by :meth:`serve` (no-op if not serving)."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=5)
