"""The detection engine: one object both drivers (replay and the worker) feed.

``process(event)`` takes a parsed :class:`~detectors.events.Payment`,
:class:`~detectors.events.Like` or :class:`~detectors.events.CoLike`;
``advance(watermark)`` moves event time on when input is idle; ``flush()``
ends the input. Each returns the alerts raised. Inside:

1. duplicates (same kind and id within ``dedupe_horizon``, also when they
   arrive behind the watermark) are dropped and counted; an event behind the
   watermark, not seen before, updates the views at once (out of order) when
   it is at most ``allowed_lateness`` behind, and is dropped and counted as
   late when older;
2. a reorder buffer releases events in event-time
   order once the watermark passes them: the latest event time of the
   slowest *source* (the Kafka partition an event came from, when the driver
   names it) minus ``grace``, so the order in which a consumer interleaves
   partitions makes no event late within ``max_skew``;
3. each released event updates the keyed views it belongs to;
4. every ``tick`` seconds of event time, the keys touched since the last
   tick are evaluated: rules and the key's model shard score the view's
   features, and the :class:`~detectors.alerts.Suppressor` decides which
   candidates become alerts.

Steps 1-3 and the views' features run in the compiled core
(:class:`detectors._core.Core`, Rust; :mod:`detectors.ordering`,
:mod:`detectors.views` and :mod:`detectors.features` describe them): events
cross into it one by one or in batches, and the subjects due at each tick
come back in one batch for the rules and River models here to score.

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

import hashlib
import hmac
import pickle
import struct
from collections.abc import Hashable, Iterable, Sequence
from typing import Any

import orjson

from detectors._core import Core, Subject
from detectors.alerts import Alert, Suppressor, severity_for
from detectors.base import Reason, Rule
from detectors.config import EngineConfig
from detectors.events import CoLike, Like, Payment
from detectors.models import HalfSpaceDetector, default_models
from detectors.models.ranker import VerdictRanker
from detectors.ordering import source_name
from detectors.rules import RULES
from detectors.verdicts import Verdict, VerdictBook, evidence_actors, evidence_suspects
from detectors.views import ALL_VIEWS, route_keys

__all__ = ["Engine", "ALL_VIEWS", "route_keys"]

#: the highest level (severity + action) the verdict ranker may rank down: a
#: rule's warning; critical evidence always reaches the moderators as it is
_RANKED_UP_TO = 2
_RANKED_DETAIL = ("probability that moderators confirm an alert like this one, learned from "
                  "their verdicts; ranked down to a review below the threshold")

#: the first bytes of :meth:`Engine.snapshot`
_MAGIC = b"LGENGINE"
#: bytes of a snapshot's signature (HMAC-SHA256), its last bytes
_MAC_BYTES = hashlib.sha256().digest_size


class Engine:
    """Event-time detection over the hosted views.

    :meth:`snapshot` / :meth:`restore` carry the whole state; a snapshot of
    another :attr:`STATE_VERSION` is refused rather than restored
    half-compatible.

    Parameters
    ----------
    config
        Windows, thresholds and mode; validated.
    views
        Names of the views this engine hosts (default: all).
    """

    #: layout of snapshots; 5: the views' state is the compiled core's
    #: versioned data format, not a pickle; 6: signed with HMAC-SHA256;
    #: 8: moderators' verdicts
    STATE_VERSION = 8

    def __init__(self, config: EngineConfig | None = None,
                 views: Iterable[str] = ALL_VIEWS, core: Core | None = None) -> None:
        cfg = (config or EngineConfig()).validate()
        self.cfg = cfg
        self.state_version = self.STATE_VERSION
        views = set(views)
        unknown = views - set(ALL_VIEWS)
        if unknown:
            raise ValueError(f"unknown views: {sorted(unknown)}")
        self.core = core if core is not None else Core(cfg, [v for v in ALL_VIEWS if v in views])
        self.rules: dict[tuple[str, str], list[Rule]] = {}
        for r in RULES:
            if r.view in views:
                self.rules.setdefault((r.view, r.entity_type), []).append(r())
        # the core scores every subject by these rules before it crosses over
        self.core.set_rules([(v, e, [r.compiled for r in rs])
                             for (v, e), rs in self.rules.items()])
        models = default_models(cfg)
        self.model_protos: dict[tuple[str, str], HalfSpaceDetector] = {
            (m.view, m.entity_type): m for m in models if m.view in views
        }
        self.models: dict[tuple[str, str, int], HalfSpaceDetector] = {}
        self.suppressor = Suppressor(cfg.window, cfg.renotify)
        hosted = {f"{r.name}@{r.version}" for rs in self.rules.values() for r in rs}
        hosted |= {f"{m.name}@{m.version}" for m in self.model_protos.values()}
        # the detectors whose target alerts name the ring, hosted here or not
        ring = frozenset([*(f"{r.name}@{r.version}" for r in RULES if r.view == "lockstep"),
                          *(f"{m.name}@{m.version}" for m in models if m.view == "lockstep")])
        self.verdicts = VerdictBook(cfg.dismiss_for, hosted,
                                    VerdictRanker(cfg.rank_after, cfg.rank_share),
                                    cfg.watch_for, ring, cfg.dismiss_merchant_for)
        self.counts = {"alerts": 0, "candidates": 0}
        self._sources: dict[Hashable, str] = {}

    # ------------------------------------------------------------------ input

    @property
    def watermark(self) -> float:
        return self.core.watermark

    @property
    def max_ts(self) -> float:
        """The newest event time seen (``-inf`` before the first)."""
        return self.core.max_ts

    @property
    def waiting(self) -> bool:
        """Whether a source was declared to have records still to deliver."""
        return self.core.waiting

    @property
    def stats(self) -> dict[str, int]:
        """Event counters (payments, likes, duplicates, late, ...) and alerts."""
        out: dict[str, int] = self.core.stats()
        out.update(self.counts)
        return out

    @property
    def duplicates(self) -> int:
        """Events dropped as duplicates so far (cheap: no dict built)."""
        return self.core.duplicates

    @property
    def joins(self) -> dict[str, int]:
        """Payment<->like join matches by direction (empty without a merchant view)."""
        return self.core.joins()

    def sizes(self) -> dict[str, tuple[int, int]]:
        """``{view: (keys held, window items held)}``."""
        return dict(self.core.sizes())

    def _source(self, source: Hashable) -> str | None:
        if source is None:
            return None
        name = self._sources.get(source)
        if name is None:
            name = self._sources[source] = source_name(source)
        return name

    def process(self, event: Payment | Like | CoLike, source: Hashable = None) -> list[Alert]:
        """Take one event; return the alerts that became due.

        ``source`` names where the event came from (a Kafka topic-partition);
        with it the watermark follows the slowest source, so a consumer's
        interleaving of partitions does not make events late.
        """
        if self.core.process(event, self._source(source)):
            return self.drain()
        return []

    def process_many(self, events: Sequence[Payment | Like | CoLike],
                     sources: Sequence[Hashable]) -> list[Alert]:
        """Take a batch of events (each from the source at the same index)."""
        names = [self._source(s) for s in sources]
        if self.core.process_many(list(events), names):
            return self.drain()
        return []

    def process_record(self, data: bytes, source: Hashable = None
                       ) -> tuple[list[Alert], int, bool, int, int] | None:
        """Take one view-topic record of the worker (``streams.topics``: a
        bundle of events and progress marks), decoded in the core.

        Returns ``(alerts, events, watermark_moved, duplicate_payments,
        duplicate_likes)``, or ``None`` (nothing taken) when ``data`` is not a
        view record; the same as decoding it and calling :meth:`process` and
        :meth:`progress` for its items in order, without a Python object per
        event.
        """
        res = self.core.process_record(data, self._source(source))
        if res is None:
            return None
        n, moved, dup_p, dup_l, pending = res
        return (self.drain() if pending else []), n, moved, dup_p, dup_l

    def progress(self, source: Hashable, ts: float | None, newest: float | None = None,
                 behind: bool | None = None) -> list[Alert]:
        """A progress mark: ``source`` has reached event time ``ts``.

        For an engine that sees only part of a source's events (one partition
        of a repartitioned stream): the mark moves that source's watermark as
        its events would have, so a sparse flow from one source does not hold
        the engine's watermark back. ``newest`` is the newest input event time
        behind the mark when that is not ``ts``; :meth:`flush` runs to it.
        ``behind`` says whether the source still has records to deliver (a
        partition catching up a backlog is waited for however far it trails);
        ``ts`` is ``None`` for such a source that has delivered nothing yet.
        Returns the alerts that became due.
        """
        if self.core.progress(self._source(source), ts, newest, behind):
            return self.drain()
        return []

    def advance(self, watermark: float) -> list[Alert]:
        """Move event time to ``watermark`` (e.g. when input is idle)."""
        return self.drain() if self.core.advance(watermark) else []

    def flush(self) -> list[Alert]:
        """End of input: release everything and evaluate the last tick."""
        return self.drain() if self.core.flush() else []

    def verdict(self, verdict: Verdict) -> None:
        """Take a moderator's verdict; it applies from the first evaluation tick
        after its ``decided_at`` (:class:`~detectors.verdicts.VerdictBook`)."""
        self.verdicts.add(verdict)

    def take_forwards(self) -> list[tuple[str, str, CoLike]]:
        """Enriched likes for views hosted elsewhere: ``(view, key, colike)``."""
        return [("lockstep", target, CoLike(like_id, user, target, ts, tuple(prev), mchid))
                for like_id, user, target, ts, prev, mchid in self.core.take_forwards()]

    # ------------------------------------------------------------------ scoring

    def drain(self) -> list[Alert]:
        """Score the subjects of the ticks the core queued, oldest first (the
        drivers that feed :attr:`core` directly call it; the other calls here
        drain on their own)."""
        return self.score_ticks(self.core.take_ticks())

    def score_ticks(self, ticks: list[tuple[float, list[Subject], bool]]) -> list[Alert]:
        """Score ticks taken from the core (``core.take_ticks()``), oldest first.

        Nothing here calls the core unless verdicts put ids on its watchlist
        (:attr:`VerdictBook.idle <detectors.verdicts.VerdictBook.idle>`), so a
        replay scores on another thread while the core goes on.
        """
        alerts: list[Alert] = []
        book = self.verdicts
        for now, subjects, swept in ticks:
            for subj in subjects:
                alert = self._score(subj, now)
                if alert is not None:
                    alerts.append(alert)
            if book.pending:  # decided by now: they hold from the next tick on
                book.apply_due(now)
            if book.to_watch:
                for kind, ids, until in book.to_watch:
                    self.core.watch(kind, ids, until)
                book.to_watch.clear()
            if swept:
                self.suppressor.sweep(now)
                book.sweep(now)
        return alerts

    def _model(self, subj: Subject) -> HalfSpaceDetector | None:
        proto = self.model_protos.get((subj.view, subj.entity_type))
        if proto is None:
            return None
        k = (subj.view, subj.entity_type, subj.shard)
        m = self.models.get(k)
        if m is None:
            m = self.models[k] = proto.clone()
        return m

    def _score(self, subj: Subject, now: float) -> Alert | None:
        cfg = self.cfg
        # the strongest rule (the first of equals), scored in the core
        rule_score = subj.rule_score
        best_rule: Rule | None = (None if subj.rule is None
                                  else self.rules[subj.view, subj.entity_type][subj.rule])
        rule_fired = cfg.mode != "models" and best_rule is not None and rule_score >= 0.5
        model_alarm = False
        model = None if cfg.mode == "rules" else self._model(subj)
        model_score: float | None = None
        x: dict[str, float] | None = None  # built from the core's only when needed
        if model is not None:
            # a model alert needs corroboration, so only corroborated subjects are
            # scored; the model learns from every `learn_every`-th subject of its shard
            model.offered += 1
            learns = not model.warm or model.offered % cfg.learn_every == 0
            if rule_score >= model.corroboration:
                x = subj.features
                model_score = model.score_one(x)
                model_alarm = model_score >= model.threshold()
            if learns:
                model.learn_one(x if x is not None else subj.features)
        if not (rule_fired or model_alarm):
            return None
        if x is None:
            x = subj.features
        det: Rule | HalfSpaceDetector
        self.counts["candidates"] += 1
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
        counts = subj.counts  # a new dict at each access
        ranked_down = False
        name = f"{det.name}@{det.version}"
        if rule_fired and level <= _RANKED_UP_TO and cfg.rank_below > 0:
            p = self.verdicts.ranker.proba((subj.view, subj.entity_type, name), x)
            if p is not None:
                counts["confirm_probability"] = round(p, 4)
                if p < cfg.rank_below:
                    # moderators dismissed alerts like this one: a review, not a warning
                    ranked_down = True
                    reasons.append(Reason("verdicts_dismiss_similar", _RANKED_DETAIL, p,
                                          cfg.rank_below))
                    _, _, level = severity_for(score, False, subj.entity_type)
        merchant = counts.get("merchant")  # a target's, as its evidence names it
        merchant = merchant if isinstance(merchant, str) else None
        if self.verdicts.holds(name, subj.entity_type, subj.entity_id, level, now, merchant):
            return None  # dismissed by a moderator, and not grown past that alert
        # per view: views may run in different workers, each with its own suppressor
        if not self.suppressor.admit(subj.view, subj.entity_type, subj.entity_id, level, now):
            self.verdicts.note_repeat(subj.view, subj.entity_type, subj.entity_id, now,
                                      evidence_actors(counts), evidence_suspects(counts))
            return None
        self.counts["alerts"] += 1
        if model_score is not None:
            counts["model_score"] = round(model_score, 4)
        alert = Alert.build(name, subj.entity_type, subj.entity_id, subj.window_start, now,
                            score, reasons, counts, subj.samples(),
                            rule_fired=rule_fired and not ranked_down)
        self.verdicts.note_raised(alert.alert_id, name, level, now,
                                  (subj.view, subj.entity_type, name), x,
                                  evidence_actors(alert.evidence), merchant,
                                  evidence_suspects(alert.evidence), subj.entity_id)
        return alert

    # ------------------------------------------------------------------ state

    def snapshot(self, *, key: bytes, context: bytes = b"") -> bytes:
        """Serialise the whole engine, signed.

        Layout: ``LGENGINE``; the state version and the byte lengths of the
        next three parts (four little-endian u32); a header (settings and
        counters, JSON); the core's state in its own versioned data format;
        the River models, the suppressor and the verdicts (a pickle); and an HMAC-SHA256
        of everything before it, keyed with ``key`` and bound to
        ``context`` (the caller's name for what the snapshot is of, e.g. a
        partition and offset: a snapshot presented with another context is
        refused).

        Parameters
        ----------
        key
            The checkpoint key (non-empty); :meth:`restore` needs the same.
        context
            Bytes the signature covers besides the snapshot; not stored.
        """
        if not key:
            raise ValueError("a snapshot needs a non-empty checkpoint key")
        header = orjson.dumps({"config": self.cfg.to_dict(), "views": self.core.views,
                               "counts": self.counts})
        core = self.core.snapshot()
        rest = pickle.dumps((self.models, self.suppressor, self.verdicts),
                            protocol=pickle.HIGHEST_PROTOCOL)
        body = b"".join((_MAGIC, struct.pack("<IIII", self.STATE_VERSION, len(header), len(core),
                                             len(rest)), header, core, rest))
        return body + Engine._sign(key, context, body)

    @staticmethod
    def restore(data: bytes, *, key: bytes, context: bytes = b"") -> Engine:
        """Rebuild an engine from :meth:`snapshot` output.

        Nothing is parsed, and above all nothing unpickled, before the
        signature is verified with ``key`` and ``context``.

        Raises
        ------
        ValueError
            ``data`` is not a snapshot of this state version, is truncated,
            or its signature does not verify (forged, altered, signed with
            another key or for another context).
        """
        if not key:
            raise ValueError("restoring a snapshot needs a non-empty checkpoint key")
        fixed = len(_MAGIC) + 16
        if data[:len(_MAGIC)] != _MAGIC or len(data) < len(_MAGIC) + 4:
            raise ValueError("not an engine snapshot (state version 4 or older, or foreign)")
        (version,) = struct.unpack_from("<I", data, len(_MAGIC))
        if version != Engine.STATE_VERSION:
            raise ValueError(f"snapshot has state version {version}, this engine "
                             f"{Engine.STATE_VERSION}")
        if len(data) < fixed:
            raise ValueError(f"truncated snapshot: {len(data)} bytes")
        _, hlen, clen, rlen = struct.unpack_from("<IIII", data, len(_MAGIC))
        end = fixed + hlen + clen + rlen
        if len(data) < end + _MAC_BYTES:
            raise ValueError(f"truncated snapshot: {len(data)} bytes, its parts and signature "
                             f"take {end + _MAC_BYTES}")
        if len(data) > end + _MAC_BYTES:
            raise ValueError(f"snapshot has {len(data) - end - _MAC_BYTES} bytes after its "
                             "signature")
        view = memoryview(data)
        if not hmac.compare_digest(Engine._sign(key, context, view[:end]), view[end:]):
            raise ValueError("snapshot signature does not verify: forged, altered, or signed "
                             "with another checkpoint key or for another partition or offset")
        at = fixed
        header = orjson.loads(view[at:at + hlen])
        at += hlen
        core = Core.restore(bytes(view[at:at + clen]))
        cfg = EngineConfig(**header["config"])
        eng = Engine(cfg, header["views"], core=core)
        eng.counts.update(header["counts"])
        eng.models, eng.suppressor, eng.verdicts = pickle.loads(view[at + clen:end])
        # a book pickled before a setting existed takes the snapshot's settings
        eng.verdicts.ranker.min_each, eng.verdicts.ranker.min_share = cfg.rank_after, cfg.rank_share
        eng.verdicts.dismiss_merchant_for = cfg.dismiss_merchant_for
        return eng

    @staticmethod
    def _sign(key: bytes, context: bytes, body: bytes | memoryview) -> bytes:
        """HMAC-SHA256 of a snapshot ``body`` bound to ``context`` (length-prefixed,
        so no context/body split is ambiguous)."""
        mac = hmac.new(key, struct.pack("<I", len(context)), hashlib.sha256)
        mac.update(context)
        mac.update(body)
        return mac.digest()

    def metrics(self) -> dict[str, Any]:
        """Counters and gauges for the metrics exporter."""
        models: dict[str, tuple[bool, int]] = {}
        for (_view, _etype, _shard), m in sorted(self.models.items()):
            w, n = models.get(m.name, (True, 0))
            models[m.name] = (w and m.warm, n + m.n)
        return {
            "stats": self.stats,
            "joins": self.joins,
            "state": self.sizes(),
            "models": models,
            "watermark": self.core.watermark,
            "buffered": self.core.buffered,
            "suppression_keys": len(self.suppressor),
            "verdicts": dict(self.verdicts.counts),
        }
