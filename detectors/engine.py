"""The detection engine: one object both drivers (replay and the worker) feed.

``process(event)`` takes a parsed :class:`~detectors.events.Payment`,
:class:`~detectors.events.Like` or :class:`~detectors.views.CoLike`;
``advance(watermark)`` moves event time on when input is idle; ``flush()``
ends the input. Each returns the alerts raised. Inside:

1. duplicates (same kind and id within ``dedupe_horizon``, also when they
   arrive behind the watermark) are dropped and counted; an event behind the
   watermark, not seen before, updates the views at once (out of order) when
   it is at most ``allowed_lateness`` behind, and is dropped and counted as
   late when older;
2. a :class:`~detectors.windows.Reorderer` releases events in event-time
   order once the watermark passes them: the latest event time of the
   slowest *source* (the Kafka partition an event came from, when the driver
   names it) minus ``grace``, so the order in which a consumer interleaves
   partitions makes no event late within ``max_skew``;
3. each released event updates the keyed views it belongs to;
4. every ``tick`` seconds of event time, the keys touched since the last
   tick are evaluated: rules and the key's model shard score the view's
   features, and the :class:`~detectors.alerts.Suppressor` decides which
   candidates become alerts.

An engine may host a subset of the views (the worker runs one view per
repartitioned topic); the user view then hands its enriched likes to
:meth:`Engine.take_forwards` instead of a local lockstep view. Models are
sharded by the Kafka partition of their key, so a partitioned deployment
and a single-process replay train the same model on the same keys.

Examples
--------
>>> from detectors.events import Like
>>> eng = Engine(EngineConfig(mode="rules"))
>>> alerts = []
>>> for i in range(40):
...     alerts += eng.process(Like(f"l{i}", f"u{i}", "post:1", "m1", 1000.0 + i, device="d1"))
>>> alerts += eng.flush()
>>> sorted({(a.detector, a.entity_type, a.entity_id) for a in alerts})
[('device_farm@1', 'device', 'd1'), ('farm_target@1', 'target', 'post:1')]
"""

from __future__ import annotations

import heapq
import math
import pickle
from collections.abc import Hashable, Iterable
from typing import Any

from detectors.alerts import Alert, Suppressor, severity_for
from detectors.base import Detector
from detectors.config import EngineConfig
from detectors.events import Like, Payment
from detectors.models import HalfSpaceDetector, default_models
from detectors.rules import RULES
from detectors.views import VIEW_TYPES, CoLike, Subject, View
from detectors.windows import Deduper, Reorderer, kafka_partition

__all__ = ["Engine", "ALL_VIEWS", "route_keys"]

ALL_VIEWS = ("merchant", "ip", "device", "user", "lockstep")

_INF = float("inf")


def route_keys(event: Payment | Like) -> dict[str, str]:
    """The key of ``event`` in each view that takes it (for repartitioning).

    >>> route_keys(Like("l1", "u1", "post:1", "m1", 0.0, ip="10.0.0.1"))
    {'merchant': 'm1', 'ip': '10.0.0.1', 'user': 'u1'}
    """
    out = {"merchant": event.mchid}
    if event.ip is not None:
        out["ip"] = event.ip
    if event.device is not None:
        out["device"] = event.device
    if type(event) is Like:
        out["user"] = event.user
    return out


class Engine:
    """Event-time detection over the hosted views.

    :meth:`snapshot` / :meth:`restore` carry the whole state; a snapshot of
    another :attr:`STATE_VERSION` (window structures laid out differently)
    is refused rather than restored half-compatible.

    Parameters
    ----------
    config
        Windows, thresholds and mode; validated.
    views
        Names of the views this engine hosts (default: all).
    """

    #: layout of the window state in snapshots; 2: merchants count their prompt
    #: pairs per target; 3: a merchant's latest like per user keeps its target
    #: (a late payment pairs with it), stats count admitted late events;
    #: 4: merchants keep their token payments, a target's likes carry flags
    #: (fresh, buyer), address-view items carry the merchant
    STATE_VERSION = 4

    def __init__(self, config: EngineConfig | None = None,
                 views: Iterable[str] = ALL_VIEWS) -> None:
        cfg = (config or EngineConfig()).validate()
        self.cfg = cfg
        self.state_version = self.STATE_VERSION
        names = [v for v in ALL_VIEWS if v in set(views)]
        unknown = set(views) - set(ALL_VIEWS)
        if unknown:
            raise ValueError(f"unknown views: {sorted(unknown)}")
        self.views: dict[str, View] = {n: VIEW_TYPES[n](cfg) for n in names}
        self.rules: dict[tuple[str, str], list[Detector]] = {}
        for r in RULES:
            if r.view in self.views:
                self.rules.setdefault((r.view, r.entity_type), []).append(r())
        self.model_protos: dict[tuple[str, str], HalfSpaceDetector] = {
            (m.view, m.entity_type): m for m in default_models(cfg) if m.view in self.views
        }
        self.models: dict[tuple[str, str, int], HalfSpaceDetector] = {}
        self.reorder = Reorderer(cfg.grace, cfg.max_skew)
        self.dedupe = Deduper(cfg.dedupe_horizon)
        self.suppressor = Suppressor(cfg.window, cfg.renotify)
        self.next_tick: float | None = None
        self.last_sweep = -1e18  # not -inf: -inf // window is nan
        self.forwards: list[tuple[str, str, CoLike]] = []
        self.stats: dict[str, int] = {
            "payment": 0, "like": 0, "colike": 0, "unlike": 0,
            "duplicates": 0, "late": 0, "late_admitted": 0, "alerts": 0, "candidates": 0,
        }
        self._bind()

    # ------------------------------------------------------------------ input

    @property
    def watermark(self) -> float:
        return self.reorder.watermark

    def process(self, event: Payment | Like | CoLike, source: Hashable = None) -> list[Alert]:
        """Take one event; return the alerts that became due.

        ``source`` names where the event came from (a Kafka topic-partition);
        with it the watermark follows the slowest source (see
        :class:`~detectors.windows.Reorderer`), so a consumer's interleaving
        of partitions does not make events late.
        """
        ts = event.ts
        reorder = self.reorder
        tag = event.tag + event.id
        if ts < reorder.watermark:
            self._behind(event, tag, ts)
            return []
        kind = event.kind
        if self.dedupe.seen(tag, ts):
            self.stats["duplicates"] += 1
            return []
        self.stats[kind] += 1
        reorder.push(ts, tag, event, source)
        # fast exit: nothing released and no tick due (most events of a busy stream)
        nt = self.next_tick
        if reorder.heap[0][0] > reorder.watermark and nt is not None and nt > reorder.watermark:
            return []
        return self._run()

    def _behind(self, event: Payment | Like | CoLike, tag: str, ts: float) -> None:
        """An event behind the watermark. One delivered again after it was
        processed (a producer's retry, or records consumed again after a
        restart) is a duplicate; one within ``allowed_lateness`` (a like
        flushed from a phone's offline queue, a notification from a backlog)
        updates the views at once, out of order, and is evaluated with its
        key at the next tick; anything older is dropped as late."""
        stats = self.stats
        if self.dedupe.known(tag):
            stats["duplicates"] += 1
        elif ts < self.reorder.watermark - self.cfg.allowed_lateness:
            stats["late"] += 1
        else:
            self.dedupe.seen(tag, ts)
            stats[event.kind] += 1
            stats["late_admitted"] += 1
            self._dispatch(event)

    def progress(self, source: Hashable, ts: float | None, newest: float | None = None,
                 behind: bool | None = None) -> list[Alert]:
        """A progress mark: ``source`` has reached event time ``ts``.

        For an engine that sees only part of a source's events (one partition
        of a repartitioned stream): the mark moves that source's watermark as
        its events would have, so a sparse flow from one source does not hold
        the engine's watermark back. ``newest`` is the newest input event time
        behind the mark when that is not ``ts`` (see
        :meth:`~detectors.windows.Reorderer.progress`); :meth:`flush` runs to
        it. ``behind`` says whether the source still has records to deliver
        (a partition catching up a backlog is waited for however far it
        trails; see :class:`~detectors.windows.Reorderer`); ``ts`` is ``None``
        for such a source that has delivered nothing yet. Returns the alerts
        that became due.
        """
        reorder = self.reorder
        before = reorder.watermark
        reorder.progress(ts, source, newest, behind)
        if reorder.watermark == before:
            return []
        return self._run()

    def advance(self, watermark: float) -> list[Alert]:
        """Move event time to ``watermark`` (e.g. when input is idle)."""
        self.reorder.advance(watermark)
        return self._run()

    def flush(self) -> list[Alert]:
        """End of input: release everything and evaluate the last tick."""
        if self.reorder.max_ts == -_INF:
            return []
        return self.advance(self.reorder.max_ts + self.cfg.tick)

    def take_forwards(self) -> list[tuple[str, str, CoLike]]:
        """Enriched likes for views hosted elsewhere: ``(view, key, colike)``."""
        out, self.forwards = self.forwards, []
        return out

    # ------------------------------------------------------------------ core

    def _run(self) -> list[Alert]:
        alerts: list[Alert] = []
        tick = self.cfg.tick
        heap = self.reorder.heap
        dispatch = self._dispatch
        pop = heapq.heappop
        while heap and heap[0][0] <= self.reorder.watermark:
            ts, _, _, ev = pop(heap)
            nt = self.next_tick
            if nt is None:
                self.next_tick = nt = math.floor(ts / tick) * tick + tick
            while ts > nt:
                alerts += self._tick(nt)
                self.next_tick = nt = nt + tick
            dispatch(ev)
        wm = self.reorder.watermark
        nt = self.next_tick
        while nt is not None and nt <= wm:
            alerts += self._tick(nt)
            self.next_tick = nt = nt + tick
        return alerts

    def _bind(self) -> None:
        """Cache the hosted views for the dispatch hot path (also after restore)."""
        get = self.views.get
        self._merchant = get("merchant")
        self._ip = get("ip")
        self._device = get("device")
        self._user = get("user")
        self._lockstep = get("lockstep")

    def _dispatch(self, ev: Payment | Like | CoLike) -> None:
        if type(ev) is CoLike:
            if self._lockstep is not None:
                self._lockstep.add(ev)
            return
        if type(ev) is Like and ev.action != "like":
            self.stats["unlike"] += 1
        if self._merchant is not None:
            self._merchant.add(ev)
        if ev.ip is not None and self._ip is not None:
            self._ip.add(ev)
        if ev.device is not None and self._device is not None:
            self._device.add(ev)
        if self._user is not None and type(ev) is Like:
            co = self._user.add(ev)  # type: ignore[func-returns-value]
            if co is not None:
                if self._lockstep is not None:
                    self._lockstep.add(co)
                else:
                    self.forwards.append(("lockstep", co.target, co))

    def _tick(self, now: float) -> list[Alert]:
        out: list[Alert] = []
        for view in self.views.values():
            for subj in view.evaluate(now):
                alert = self._score(subj, now)
                if alert is not None:
                    out.append(alert)
        # sweeps on a global grid, so engines hosting different keys stay in step
        if now // self.cfg.window > self.last_sweep // self.cfg.window:
            self.last_sweep = now
            for view in self.views.values():
                view.sweep(now)
            self.suppressor.sweep(now)
        return out

    def _model(self, subj: Subject) -> HalfSpaceDetector | None:
        proto = self.model_protos.get((subj.view, subj.entity_type))
        if proto is None:
            return None
        shard = kafka_partition(subj.shard_key, self.cfg.partitions)
        k = (subj.view, subj.entity_type, shard)
        m = self.models.get(k)
        if m is None:
            m = self.models[k] = proto.clone()
        return m

    def _score(self, subj: Subject, now: float) -> Alert | None:
        cfg = self.cfg
        x = subj.features
        best_rule: Detector | None = None
        rule_score = 0.0
        for rule in self.rules.get((subj.view, subj.entity_type), ()):
            s = rule.score_one(x)
            if s > rule_score:
                rule_score, best_rule = s, rule
        rule_fired = cfg.mode != "models" and best_rule is not None and rule_score >= 0.5
        model_alarm = False
        model = None if cfg.mode == "rules" else self._model(subj)
        model_score: float | None = None
        if model is not None:
            # a model alert needs corroboration, so only corroborated subjects are
            # scored; the model learns from every `learn_every`-th subject of its shard
            if rule_score >= model.corroboration:
                model_score = model.score_one(x)
                model_alarm = model_score >= model.threshold()
            model.offered += 1
            if not model.warm or model.offered % cfg.learn_every == 0:
                model.learn_one(x)
        if not (rule_fired or model_alarm):
            return None
        self.stats["candidates"] += 1
        if rule_fired:
            assert best_rule is not None
            det, score = best_rule, rule_score
            reasons = best_rule.explain(x)
            if model_alarm and model is not None:
                reasons += model.explain(x)[:1]
        else:
            assert model is not None and model_score is not None
            det, score = model, model_score
            reasons = model.explain(x)
            if best_rule is not None:
                reasons += best_rule.explain(x)
        _, _, level = severity_for(score, rule_fired, subj.entity_type)
        # per view: views may run in different workers, each with its own suppressor
        if not self.suppressor.admit(subj.view, subj.entity_type, subj.entity_id, level, now):
            return None
        self.stats["alerts"] += 1
        counts = dict(subj.counts)
        if model_score is not None:
            counts["model_score"] = round(model_score, 4)
        return Alert.build(f"{det.name}@{det.version}", subj.entity_type, subj.entity_id,
                           subj.window_start, now, score, reasons, counts, subj.samples(),
                           rule_fired=rule_fired)

    # ------------------------------------------------------------------ state

    def snapshot(self) -> bytes:
        """Serialise the whole engine (windows, models, suppression)."""
        return pickle.dumps(self, protocol=pickle.HIGHEST_PROTOCOL)

    @staticmethod
    def restore(data: bytes) -> Engine:
        """Rebuild an engine from :meth:`snapshot` output."""
        eng = pickle.loads(data)
        if not isinstance(eng, Engine):
            raise TypeError("snapshot is not an Engine")
        version = getattr(eng, "state_version", 1)
        if version != Engine.STATE_VERSION:
            raise ValueError(f"snapshot has state version {version}, this engine "
                             f"{Engine.STATE_VERSION}")
        eng._bind()
        return eng

    def metrics(self) -> dict[str, Any]:
        """Counters and gauges for the metrics exporter."""
        state = {name: v.size() for name, v in self.views.items()}
        mv = self.views.get("merchant")
        joins = dict(mv.matches) if mv is not None else {}  # type: ignore[attr-defined]
        models = {}
        for (_view, _etype, _shard), m in sorted(self.models.items()):
            w, n = models.get(m.name, (True, 0))
            models[m.name] = (w and m.warm, n + m.n)
        return {
            "stats": dict(self.stats),
            "joins": joins,
            "state": state,
            "models": models,
            "watermark": self.reorder.watermark,
            "buffered": len(self.reorder),
            "suppression_keys": len(self.suppressor),
        }
