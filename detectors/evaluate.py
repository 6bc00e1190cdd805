"""Score an alerts file against a labels file (the contract's "Labels" rules).

Scoring rules, as written in ``CONTRACT.md`` ("Labels (ground truth for
scoring)"):

* An alert is a **true positive** (TP) when its entity is listed in a
  campaign and its ``window.end`` lies in ``[campaign start, campaign end +
  10 min]`` (both ends inclusive). Entity types map to label lists as
  ``merchant -> merchants``, ``target -> targets``, ``user -> users``,
  ``ip -> ips``, ``device -> devices``; an id only counts under its own type
  (a user id listed only under ``ips`` does not make a user alert a TP).
* Every other alert is a **false positive** (FP), including alerts whose
  entity type is unknown or whose ``window.end`` is missing or not RFC 3339.
* A FP is a **false alarm on a benign event** when its entity is listed in
  that event and its ``window.end`` lies in ``[benign start, benign end + 10
  min]`` -- the same window rule as for campaigns. FPs on a benign event's
  entities *at any time* are reported separately
  (``false_alarms_any_time``). An alert that is a TP is never a false alarm.
* A campaign that starts after the last alert's ``window.end`` (the end of
  the alerts' time span) is **not started**: the alerts (a recording cut
  short, a replay of its first hours) say nothing about it, so it is listed
  as ``not_started``, not as missed, and left out of recall. With no alert
  at all no campaign is "not started".
* A campaign is **detected** when at least one TP alert names it; its
  **detection delay** is the earliest such alert's ``window.end`` minus the
  campaign's ``start`` (seconds, never negative since TPs start at ``start``).
  One alert may be a TP for several overlapping campaigns; it counts once in
  precision and detects each of them.

Metrics: ``precision = TP / alerts`` (1.0 when there are no alerts: no alert
was wrong), ``recall = detected campaigns / started campaigns`` (1.0 when
there are none), ``F1`` is their harmonic mean (0.0 when both are 0).

Alerts repeating an earlier ``alert_id`` (at-least-once re-deliveries; the
contract makes ids deterministic) are dropped before scoring and counted in
``duplicates``.

Examples
--------
>>> labels = parse_labels({"campaigns": [
...     {"id": "c1", "kind": "paid_task_likes", "start": "2026-11-24T12:00:00Z",
...      "end": "2026-11-24T12:30:00Z", "targets": ["video:9"]}]})
>>> alerts = [
...     {"alert_id": "a1", "entity": {"type": "target", "id": "video:9"},
...      "window": {"start": "2026-11-24T12:00:00Z", "end": "2026-11-24T12:05:00Z"},
...      "score": 0.9, "severity": "critical", "detector": "rules/1"},
...     {"alert_id": "a2", "entity": {"type": "user", "id": "o-1"},
...      "window": {"start": "2026-11-24T12:00:00Z", "end": "2026-11-24T12:06:00Z"},
...      "score": 0.4, "severity": "info", "detector": "rules/1"}]
>>> ev = evaluate(labels, alerts)
>>> ev.tp, ev.fp, ev.precision, ev.recall, ev.delays
(1, 1, 0.5, 1.0, {'c1': 300.0})
"""

from __future__ import annotations

import argparse
import html
import math
import statistics
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from detectors.events import format_time, parse_time
from detectors.recording import open_text

__all__ = [
    "ENTITY_FIELDS",
    "GRACE_SECONDS",
    "BenignEvent",
    "Campaign",
    "campaigns_of",
    "false_alarms_of",
    "Evaluation",
    "Labels",
    "LabelsError",
    "AlertsError",
    "add_arguments",
    "compare_table",
    "evaluate",
    "format_table",
    "load_alerts",
    "load_labels",
    "overlap_warning",
    "parse_labels",
    "run",
    "write_report",
]

#: Alert ``entity.type`` -> list name in a labels entry.
ENTITY_FIELDS: dict[str, str] = {
    "merchant": "merchants",
    "target": "targets",
    "user": "users",
    "ip": "ips",
    "device": "devices",
}

#: A TP (or a benign false alarm) may end up to this many seconds after ``end``.
GRACE_SECONDS = 600.0

#: Plots are drawn this far (seconds) either side of a labelled span.
PLOT_MARGIN_SECONDS = 900.0

#: At most this many markers per plot; highlighted alerts are always drawn.
MAX_PLOT_POINTS = 4000


class LabelsError(ValueError):
    """A labels file is missing, unreadable or does not follow the contract."""


class AlertsError(ValueError):
    """An alerts file is missing, unreadable or not JSON Lines of objects."""


# --------------------------------------------------------------------------- labels


@dataclass(frozen=True, slots=True)
class _Span:
    id: str
    kind: str
    start: float
    end: float
    merchants: tuple[str, ...] = ()
    targets: tuple[str, ...] = ()
    users: tuple[str, ...] = ()
    ips: tuple[str, ...] = ()
    devices: tuple[str, ...] = ()

    def entities(self) -> list[tuple[str, str]]:
        """``(entity type, id)`` pairs listed in this entry, sorted."""
        out = {
            (etype, eid)
            for etype, fname in ENTITY_FIELDS.items()
            for eid in getattr(self, fname)
        }
        return sorted(out)

    def names(self, entity_type: str, entity_id: str) -> bool:
        """Whether the entity ``(type, id)`` is listed in this entry."""
        fname = ENTITY_FIELDS.get(entity_type)
        return fname is not None and entity_id in getattr(self, fname)

    def covers(self, ts: float) -> bool:
        """Whether ``ts`` lies in ``[start, end + GRACE_SECONDS]``."""
        return self.start <= ts <= self.end + GRACE_SECONDS


@dataclass(frozen=True, slots=True)
class Campaign(_Span):
    """A labelled pay-for-likes campaign; times are epoch seconds."""


@dataclass(frozen=True, slots=True)
class BenignEvent(_Span):
    """A labelled benign burst (coupon campaign, viral post...); epoch seconds."""


@dataclass(slots=True)
class Labels:
    """Ground truth: fraud campaigns and benign events."""

    campaigns: list[Campaign] = field(default_factory=list)
    benign: list[BenignEvent] = field(default_factory=list)


def _parse_span(obj: Any, where: str, cls: type[_Span]) -> _Span:
    if not isinstance(obj, dict):
        raise LabelsError(f"{where}: expected an object, got {type(obj).__name__}")
    ident = obj.get("id")
    if not isinstance(ident, str) or not ident:
        raise LabelsError(f"{where}: 'id' must be a non-empty string")
    where = f"{where} ({ident!r})"
    kind = obj.get("kind", "unknown")
    if not isinstance(kind, str):
        raise LabelsError(f"{where}: 'kind' must be a string")
    times: dict[str, float] = {}
    for key in ("start", "end"):
        value = obj.get(key)
        if not isinstance(value, str):
            raise LabelsError(f"{where}: '{key}' must be an RFC 3339 string")
        try:
            times[key] = parse_time(value)
        except ValueError as exc:
            raise LabelsError(f"{where}: bad '{key}': {exc}") from exc
    if times["end"] < times["start"]:
        raise LabelsError(f"{where}: 'end' is before 'start'")
    lists: dict[str, tuple[str, ...]] = {}
    for fname in ENTITY_FIELDS.values():
        value = obj.get(fname, [])
        if value is None:
            value = []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise LabelsError(f"{where}: '{fname}' must be a list of strings")
        lists[fname] = tuple(dict.fromkeys(value))
    return cls(ident, kind, times["start"], times["end"], **lists)


def parse_labels(obj: Any) -> Labels:
    """Build :class:`Labels` from the decoded JSON object of a labels file.

    Raises :class:`LabelsError` naming the offending entry when the object
    does not follow the contract. ``campaigns`` and ``benign`` default to
    empty lists (but at least one of them must be present); ``kind`` defaults
    to ``"unknown"``; entity lists default to empty. Campaign ids, and benign
    ids, must be unique.

    >>> parse_labels({"benign": [{"id": "b1", "kind": "coupon_campaign",
    ...     "start": "2026-11-24T12:00:00Z", "end": "2026-11-24T13:00:00Z",
    ...     "merchants": ["1900000007"]}]}).benign[0].entities()
    [('merchant', '1900000007')]
    >>> parse_labels({"campaigns": [{"id": "c1"}]})
    Traceback (most recent call last):
    ...
    detectors.evaluate.LabelsError: campaigns[0] ('c1'): 'start' must be an RFC 3339 string
    """
    if not isinstance(obj, dict):
        raise LabelsError("labels must be a JSON object with 'campaigns' and 'benign'")
    if "campaigns" not in obj and "benign" not in obj:
        raise LabelsError("labels object has neither 'campaigns' nor 'benign'")
    out = Labels()
    for key, cls, dest in (
        ("campaigns", Campaign, out.campaigns),
        ("benign", BenignEvent, out.benign),
    ):
        entries = obj.get(key, [])
        if entries is None:
            entries = []
        if not isinstance(entries, list):
            raise LabelsError(f"'{key}' must be a list")
        seen: set[str] = set()
        for i, entry in enumerate(entries):
            span = _parse_span(entry, f"{key}[{i}]", cls)
            if span.id in seen:
                raise LabelsError(f"{key}[{i}]: duplicate id {span.id!r}")
            seen.add(span.id)
            dest.append(span)  # type: ignore[arg-type]  # cls made it: a Campaign or a BenignEvent
    return out


def load_labels(path: str | Path) -> Labels:
    """Read a labels JSON file (``.gz`` allowed); see :func:`parse_labels`.

    Raises :class:`LabelsError` when the file is missing, unreadable, not
    JSON, or malformed.
    """
    p = Path(path)
    if not p.is_file():
        raise LabelsError(f"labels file not found: {p}")
    try:
        with open_text(p) as fh:
            text = fh.read()
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise LabelsError(f"cannot read labels file {p}: {exc}") from exc
    try:
        obj = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise LabelsError(f"labels file {p} is not valid JSON: {exc}") from exc
    try:
        return parse_labels(obj)
    except LabelsError as exc:
        raise LabelsError(f"{p}: {exc}") from exc


# --------------------------------------------------------------------------- alerts


def load_alerts(path: str | Path) -> list[dict[str, Any]]:
    """Read alerts from JSON Lines (plain or ``.gz``), in file order.

    Blank lines are skipped. Raises :class:`AlertsError` when the file is
    missing or unreadable, or a line is not a JSON object (naming the line).
    """
    p = Path(path)
    if not p.is_file():
        raise AlertsError(f"alerts file not found: {p}")
    alerts: list[dict[str, Any]] = []
    try:
        with open_text(p) as fh:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    obj = orjson.loads(line)
                except orjson.JSONDecodeError as exc:
                    raise AlertsError(f"{p}:{lineno}: not valid JSON: {exc}") from exc
                if not isinstance(obj, dict):
                    raise AlertsError(f"{p}:{lineno}: alert is not a JSON object")
                alerts.append(obj)
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise AlertsError(f"cannot read alerts file {p}: {exc}") from exc
    if alerts and not any("alert_id" in a or isinstance(a.get("entity"), dict) for a in alerts):
        kind = ("a kcat recording" if all("payload" in a and "topic" in a for a in alerts)
                else "not alerts")
        raise AlertsError(f"{p}: no line is an alert (none has an alert_id or an entity): "
                          f"{kind}; pass the file `replay --alerts-out` wrote")
    return alerts


def overlap_warning(labels: Labels, alerts: Iterable[Mapping[str, Any]]) -> str | None:
    """A warning when no alert's window end falls in the labels' time span
    (the alerts of another recording, or labels of another run); else ``None``."""
    spans = [*labels.campaigns, *labels.benign]
    ends = [e for e in map(_alert_end, alerts) if e is not None]
    if not spans or not ends:
        return None
    lo, hi = min(s.start for s in spans), max(s.end for s in spans) + GRACE_SECONDS
    if any(lo <= e <= hi for e in ends):
        return None
    return (f"no alert ends within the labels' time span ({format_time(lo)} to "
            f"{format_time(hi)}); the alerts run from {format_time(min(ends))} to "
            f"{format_time(max(ends))}: are they of another recording?")


@dataclass(slots=True)
class _Scored:
    """One (deduplicated) alert with its classification."""

    alert: dict[str, Any]
    alert_id: str
    etype: str
    eid: str
    end: float | None
    score: float | None
    severity: str
    detector: str
    campaigns: list[str]  # ids it is a TP for, label order
    false_alarm_on: list[str]  # benign ids (window rule), label order
    benign_any: list[str]  # benign ids naming the entity, any time

    @property
    def tp(self) -> bool:
        return bool(self.campaigns)


def _get(obj: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def _as_str(value: Any, default: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return default


def _alert_end(alert: Mapping[str, Any]) -> float | None:
    value = _get(alert, "window", "end")
    if not isinstance(value, str):
        return None
    try:
        return parse_time(value)
    except ValueError:
        return None


def _alert_score(alert: Mapping[str, Any]) -> float | None:
    value = alert.get("score")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if not math.isfinite(value):
        return None
    return float(value)


def _classify(labels: Labels, alerts: Iterable[Mapping[str, Any]]) -> tuple[list[_Scored], int]:
    """Deduplicate by ``alert_id`` and classify each alert; returns (scored, duplicates)."""
    camp_index: dict[tuple[str, str], list[Campaign]] = {}
    for c in labels.campaigns:
        for key in c.entities():
            camp_index.setdefault(key, []).append(c)
    benign_index: dict[tuple[str, str], list[BenignEvent]] = {}
    for b in labels.benign:
        for key in b.entities():
            benign_index.setdefault(key, []).append(b)

    seen: set[str] = set()
    duplicates = 0
    scored: list[_Scored] = []
    for n, alert in enumerate(alerts):
        raw_id = alert.get("alert_id")
        if isinstance(raw_id, str) and raw_id:
            if raw_id in seen:
                duplicates += 1
                continue
            seen.add(raw_id)
            alert_id = raw_id
        else:
            alert_id = f"#{n}"
        etype = _as_str(_get(alert, "entity", "type"), "?")
        eid = _as_str(_get(alert, "entity", "id"), "?")
        end = _alert_end(alert)
        key = (etype, eid)
        camps = [
            c.id for c in camp_index.get(key, ()) if end is not None and c.covers(end)
        ]
        benign_all = benign_index.get(key, [])
        benign_any = [] if camps else [b.id for b in benign_all]
        false_alarm = (
            [] if camps else [b.id for b in benign_all if end is not None and b.covers(end)]
        )
        scored.append(
            _Scored(
                alert=dict(alert),
                alert_id=alert_id,
                etype=etype,
                eid=eid,
                end=end,
                score=_alert_score(alert),
                severity=_as_str(alert.get("severity"), "?"),
                detector=_as_str(alert.get("detector"), "?"),
                campaigns=camps,
                false_alarm_on=false_alarm,
                benign_any=benign_any,
            )
        )
    return scored, duplicates


def campaigns_of(labels: Labels, alert: Mapping[str, Any]) -> list[str]:
    """The campaigns ``alert`` (a contract object) is a true positive of."""
    return _classify(labels, [alert])[0][0].campaigns


def false_alarms_of(labels: Labels, alerts: Iterable[Mapping[str, Any]]
                    ) -> dict[str, tuple[float, list[str]]]:
    """``alert_id`` -> (``window.end``, the benign events it is a false alarm
    on), for each alert that is a false alarm (repeated ids counted once)."""
    scored, _ = _classify(labels, alerts)
    return {s.alert_id: (_alert_end(s.alert) or 0.0, s.false_alarm_on)
            for s in scored if s.false_alarm_on}


# --------------------------------------------------------------------------- evaluation


def _ratio(num: int, den: int, empty: float = 1.0) -> float:
    return num / den if den else empty


def _f1(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r > 0 else 0.0


@dataclass(slots=True)
class Evaluation:
    """Scores of one alerts file against one labels file.

    Attributes
    ----------
    precision, recall, f1 : float
        ``tp / alerts`` (1.0 with no alerts), ``len(detected) / (campaigns -
        not_started)`` (1.0 with no such campaign), and their harmonic mean.
    tp, fp, alerts : int
        True-positive, false-positive and total alerts after deduplication.
    detected, missed, not_started : list of str
        Campaign ids, in labels order; ``not_started``: campaigns starting
        after the last alert's ``window.end``, neither detected nor missed.
    delays : dict
        Campaign id -> detection delay in seconds (detected campaigns only).
    median_delay, max_delay : float or None
        Over ``delays``; ``None`` when nothing was detected.
    first_alert : dict
        Campaign id -> ``alert_id`` of the earliest TP alert naming it.
    tp_alerts : dict
        Campaign id -> number of TP alerts naming it (0 for missed ones).
    false_alarms : dict
        Benign id -> FP alerts on its entities with ``window.end`` in
        ``[start, end + 10 min]`` (every benign id present, 0 included).
    false_alarms_total : int
        Distinct alerts that are a false alarm on at least one benign event.
    false_alarms_any_time : dict
        Benign id -> FP alerts on its entities regardless of time.
    per_detector, per_entity_type : dict
        Name -> ``{"alerts", "tp", "fp", "precision", "detected"}`` where
        ``detected`` lists the campaign ids that group's TPs name.
    per_kind : dict
        Campaign kind -> ``{"campaigns", "detected", "missed", "not_started",
        "recall", "median_delay"}``.
    duplicates, invalid : int
        Alerts dropped as repeated ``alert_id``; alerts without a parsable
        ``window.end`` (scored as FP).
    """

    precision: float = 1.0
    recall: float = 1.0
    f1: float = 1.0
    tp: int = 0
    fp: int = 0
    alerts: int = 0
    detected: list[str] = field(default_factory=list)
    missed: list[str] = field(default_factory=list)
    not_started: list[str] = field(default_factory=list)
    delays: dict[str, float] = field(default_factory=dict)
    median_delay: float | None = None
    max_delay: float | None = None
    first_alert: dict[str, str] = field(default_factory=dict)
    tp_alerts: dict[str, int] = field(default_factory=dict)
    false_alarms: dict[str, int] = field(default_factory=dict)
    false_alarms_total: int = 0
    false_alarms_any_time: dict[str, int] = field(default_factory=dict)
    per_detector: dict[str, dict[str, Any]] = field(default_factory=dict)
    per_entity_type: dict[str, dict[str, Any]] = field(default_factory=dict)
    per_kind: dict[str, dict[str, Any]] = field(default_factory=dict)
    duplicates: int = 0
    invalid: int = 0

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (keys of the mappings sorted)."""

        def srt(d: Mapping[str, Any]) -> dict[str, Any]:
            return {k: (srt(v) if isinstance(v, Mapping) else v) for k, v in sorted(d.items())}

        return {
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
            "tp": self.tp,
            "fp": self.fp,
            "alerts": self.alerts,
            "detected": list(self.detected),
            "missed": list(self.missed),
            "not_started": list(self.not_started),
            "delays": srt(self.delays),
            "median_delay": self.median_delay,
            "max_delay": self.max_delay,
            "first_alert": srt(self.first_alert),
            "tp_alerts": srt(self.tp_alerts),
            "false_alarms": srt(self.false_alarms),
            "false_alarms_total": self.false_alarms_total,
            "false_alarms_any_time": srt(self.false_alarms_any_time),
            "per_detector": srt(self.per_detector),
            "per_entity_type": srt(self.per_entity_type),
            "per_kind": srt(self.per_kind),
            "duplicates": self.duplicates,
            "invalid": self.invalid,
        }


def _group(scored: list[_Scored], key: str) -> dict[str, dict[str, Any]]:
    groups: dict[str, list[_Scored]] = {}
    for s in scored:
        groups.setdefault(getattr(s, key), []).append(s)
    out: dict[str, dict[str, Any]] = {}
    for name in sorted(groups):
        items = groups[name]
        tp = sum(1 for s in items if s.tp)
        out[name] = {
            "alerts": len(items),
            "tp": tp,
            "fp": len(items) - tp,
            "precision": _ratio(tp, len(items)),
            "detected": sorted({c for s in items for c in s.campaigns}),
        }
    return out


def evaluate(labels: Labels, alerts: Iterable[Mapping[str, Any]]) -> Evaluation:
    """Score ``alerts`` against ``labels`` with the contract's rules.

    See the module docstring for the rules and edge cases.

    >>> ev = evaluate(Labels(), [])
    >>> ev.precision, ev.recall, ev.f1, ev.median_delay
    (1.0, 1.0, 1.0, None)
    """
    scored, duplicates = _classify(labels, alerts)
    ev = Evaluation(duplicates=duplicates)
    ev.alerts = len(scored)
    ev.tp = sum(1 for s in scored if s.tp)
    ev.fp = ev.alerts - ev.tp
    ev.invalid = sum(1 for s in scored if s.end is None)

    first: dict[str, _Scored] = {}
    counts: dict[str, int] = {c.id: 0 for c in labels.campaigns}
    for s in scored:
        for cid in s.campaigns:
            counts[cid] += 1
            cur = first.get(cid)
            if cur is None or (s.end or 0.0, s.alert_id) < (cur.end or 0.0, cur.alert_id):
                first[cid] = s
    ev.tp_alerts = counts
    # the end of the alerts' time span: a campaign starting later is not judged
    last_end = max((s.end for s in scored if s.end is not None), default=None)
    for c in labels.campaigns:
        hit = first.get(c.id)
        if hit is None or hit.end is None:
            if last_end is not None and c.start > last_end:
                ev.not_started.append(c.id)
            else:
                ev.missed.append(c.id)
            continue
        ev.detected.append(c.id)
        ev.delays[c.id] = hit.end - c.start
        ev.first_alert[c.id] = hit.alert_id
    if ev.delays:
        values = list(ev.delays.values())
        ev.median_delay = float(statistics.median(values))
        ev.max_delay = max(values)

    ev.precision = _ratio(ev.tp, ev.alerts)
    ev.recall = _ratio(len(ev.detected), len(labels.campaigns) - len(ev.not_started))
    ev.f1 = _f1(ev.precision, ev.recall)

    ev.false_alarms = {b.id: 0 for b in labels.benign}
    ev.false_alarms_any_time = {b.id: 0 for b in labels.benign}
    for s in scored:
        for bid in s.false_alarm_on:
            ev.false_alarms[bid] += 1
        for bid in s.benign_any:
            ev.false_alarms_any_time[bid] += 1
    ev.false_alarms_total = sum(1 for s in scored if s.false_alarm_on)

    ev.per_detector = _group(scored, "detector")
    ev.per_entity_type = _group(scored, "etype")

    kinds: dict[str, list[Campaign]] = {}
    for c in labels.campaigns:
        kinds.setdefault(c.kind, []).append(c)
    for kind in sorted(kinds):
        camps = kinds[kind]
        det = [c.id for c in camps if c.id in ev.delays]
        ds = [ev.delays[cid] for cid in det]
        waiting = [c.id for c in camps if c.id in ev.not_started]
        ev.per_kind[kind] = {
            "campaigns": len(camps),
            "detected": len(det),
            "missed": [c.id for c in camps if c.id not in ev.delays and c.id not in waiting],
            "not_started": waiting,
            "recall": _ratio(len(det), len(camps) - len(waiting)),
            "median_delay": float(statistics.median(ds)) if ds else None,
        }
    return ev


# --------------------------------------------------------------------------- text output


def _fmt_delay(seconds: float | None) -> str:
    """Human-readable duration.

    >>> _fmt_delay(12.5), _fmt_delay(245), _fmt_delay(3725), _fmt_delay(None)
    ('12.5s', '4m05s', '1h02m05s', '-')
    """
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    total = int(round(seconds))
    h, rest = divmod(total, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s"


def _detected_word(ev: Evaluation, cid: str, yes: str, no: str) -> str:
    """A campaign's state in the reports: detected, not started, or missed."""
    if cid in ev.delays:
        return yes
    return "not started" if cid in ev.not_started else no


def _campaign_count(ev: Evaluation, labels: Labels) -> str:
    """``1/2 detected`` plus how many had not started, when any.

    >>> ev = Evaluation(detected=["c1"], not_started=["c3"])
    >>> _campaign_count(ev, Labels(campaigns=[None, None, None]))
    '1/2 detected, 1 not started'
    """
    started = len(labels.campaigns) - len(ev.not_started)
    text = f"{len(ev.detected)}/{started} detected"
    return text + (f", {len(ev.not_started)} not started" if ev.not_started else "")


def _text_table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
              for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    for r in rows:
        lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    return "\n".join(lines)


def format_table(ev: Evaluation, labels: Labels) -> str:
    """Plain-text report: campaigns, benign events, breakdowns and a totals line.

    >>> print(format_table(evaluate(Labels(), []), Labels()).splitlines()[-1])
    precision 1.000  recall 1.000  F1 1.000  median delay -  max delay -  alerts 0 (tp 0, fp 0)
    """
    out: list[str] = []
    rows = [
        [
            c.id,
            c.kind,
            _detected_word(ev, c.id, "yes", "NO"),
            _fmt_delay(ev.delays.get(c.id)),
            str(ev.tp_alerts.get(c.id, 0)),
            ev.first_alert.get(c.id, "-"),
        ]
        for c in labels.campaigns
    ]
    out.append(f"Campaigns ({_campaign_count(ev, labels)})")
    out.append(_text_table(["campaign", "kind", "detected", "delay", "tp alerts", "first alert"],
                           rows))
    if labels.benign:
        rows = [
            [
                b.id,
                b.kind,
                str(ev.false_alarms.get(b.id, 0)),
                str(ev.false_alarms_any_time.get(b.id, 0)),
            ]
            for b in labels.benign
        ]
        out.append("")
        out.append(f"Benign events ({ev.false_alarms_total} false alarms)")
        out.append(_text_table(["benign", "kind", "false alarms", "any time"], rows))
    for title, groups in (("Detector", ev.per_detector), ("Entity type", ev.per_entity_type)):
        if not groups:
            continue
        rows = [
            [name, str(g["alerts"]), str(g["tp"]), str(g["fp"]), f"{g['precision']:.3f}",
             str(len(g["detected"]))]
            for name, g in groups.items()
        ]
        out.append("")
        out.append(_text_table([title.lower(), "alerts", "tp", "fp", "precision", "campaigns"],
                               rows))
    if ev.per_kind:
        rows = [
            [kind, f"{k['detected']}/{k['campaigns'] - len(k['not_started'])}",
             f"{k['recall']:.3f}",
             _fmt_delay(k["median_delay"])]
            for kind, k in ev.per_kind.items()
        ]
        out.append("")
        out.append(_text_table(["kind", "detected", "recall", "median delay"], rows))
    notes = []
    if ev.duplicates:
        notes.append(f"{ev.duplicates} duplicate alert_id(s) ignored")
    if ev.invalid:
        notes.append(f"{ev.invalid} alert(s) without a valid window.end (scored FP)")
    if ev.not_started:
        notes.append(f"{len(ev.not_started)} campaign(s) start after the last alert: not "
                     "started, left out of recall (missed if the alerts cover their time)")
    if notes:
        out.append("")
        out.append("note: " + "; ".join(notes))
    out.append("")
    out.append(
        f"precision {ev.precision:.3f}  recall {ev.recall:.3f}  F1 {ev.f1:.3f}  "
        f"median delay {_fmt_delay(ev.median_delay)}  max delay {_fmt_delay(ev.max_delay)}  "
        f"alerts {ev.alerts} (tp {ev.tp}, fp {ev.fp})"
    )
    return "\n".join(out)


def compare_table(rows: Mapping[str, Evaluation]) -> str:
    """Markdown ablation table, one row per configuration, in the given order.

    >>> print(compare_table({"none": evaluate(Labels(), [])}))
    | configuration | precision | recall | F1 | median delay | false alarms | alerts |
    |---|---:|---:|---:|---:|---:|---:|
    | none | 1.000 | 1.000 | 1.000 | - | 0 | 0 |
    """
    lines = [
        "| configuration | precision | recall | F1 | median delay | false alarms | alerts |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, ev in rows.items():
        cells = [
            name.replace("|", "\\|"),
            f"{ev.precision:.3f}",
            f"{ev.recall:.3f}",
            f"{ev.f1:.3f}",
            _fmt_delay(ev.median_delay),
            str(ev.false_alarms_total),
            str(ev.alerts),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


# --------------------------------------------------------------------------- HTML report

_TP_COLOR = "#1b7f3b"
_FP_COLOR = "#c62828"
_CAMPAIGN_FILL = "#f4b400"
_BENIGN_FILL = "#4a90d9"
_TICK_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800,
               21600, 43200, 86400, 172800, 604800)


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _marker(severity: str, x: float, y: float, color: str, extra: str = "",
            title: str = "") -> str:
    """One SVG marker: diamond = critical, triangle = warning, circle = info, hollow square
    = anything else."""
    tip = f"<title>{_e(title)}</title>" if title else ""
    if severity in ("critical", "warning"):
        if severity == "critical":
            r = 5.5
            pts = [(x, y - r), (x + r, y), (x, y + r), (x - r, y)]
        else:
            pts = [(x, y - 5.0), (x + 4.5, y + 4.0), (x - 4.5, y + 4.0)]
        coords = " ".join(f"{a:.1f},{b:.1f}" for a, b in pts)
        return f'<polygon points="{coords}" fill="{color}"{extra}>{tip}</polygon>'
    if severity == "info":
        return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.2" fill="{color}"{extra}>{tip}</circle>'
    return (f'<rect x="{x - 2.5:.1f}" y="{y - 2.5:.1f}" width="5" height="5" fill="none" '
            f'stroke="{color}"{extra}>{tip}</rect>')


def _tick_label(ts: float, step: float, span: float) -> str:
    s = format_time(ts)  # YYYY-MM-DDTHH:MM:SS[.mmm]Z
    if span > 86400:
        return s[5:10] + " " + s[11:16]
    return s[11:19] if step < 60 else s[11:16]


#: the plots' text is set in a monospace font of this size, and one of its
#: characters is at most this wide, so a label's width is known when drawn
_FONT_SIZE = 10
_CHAR_W = 0.62 * _FONT_SIZE
#: height of a lane of labelled spans under the overview plot
_LANE_H = 14
#: the overview's drawing width; it is scaled to the page's width
OVERVIEW_WIDTH = 1200


def _text_width(text: str) -> float:
    """Width of ``text`` in the plots' monospace font (an upper bound)."""
    return len(text) * _CHAR_W


def _ticks(lo: float, hi: float, pw: float) -> tuple[float, list[float]]:
    """The tick step and times on ``[lo, hi]`` drawn ``pw`` wide: the finest
    step (at most 8 ticks) whose labels, centred on their ticks, are 12 units
    apart or more."""
    span = hi - lo
    step = _TICK_STEPS[-1]
    for st in _TICK_STEPS:
        room = st / span * pw
        if span / st <= 8 and room >= _text_width(_tick_label(lo, st, span)) + 12:
            step = st
            break
    t = math.ceil(lo / step) * step
    out = []
    while t <= hi:
        out.append(float(t))
        t += step
    return step, out


def label_x(x0: float, label: str, right: float) -> float:
    """Where a span's label starts: just after the span's start ``x0``, or
    further left so that it ends by ``right``."""
    return max(0.0, min(x0 + 2, right - _text_width(label)))


def span_lanes(items: list[tuple[float, float, str]], xs: Any, right: float,
               gap: float = 8.0) -> list[int]:
    """A lane per ``(start, end, label)``, so that in a lane no two spans, nor
    their labels (:func:`label_x`), overlap: each goes to the first lane whose
    last item ends ``gap`` before it starts.

    >>> span_lanes([(0, 10, "a"), (5, 20, "b"), (30, 40, "c")], lambda t: t * 10, 1000)
    [0, 1, 0]
    """
    order = sorted(range(len(items)), key=lambda i: (items[i][0], items[i][1], items[i][2]))
    ends: list[float] = []
    lanes = [0] * len(items)
    for i in order:
        start, end, label = items[i]
        tx = label_x(xs(start), label, right)
        x0 = min(xs(start), tx)
        x1 = max(xs(end), tx + _text_width(label))
        for lane, last in enumerate(ends):
            if last + gap <= x0:
                ends[lane] = x1
                lanes[i] = lane
                break
        else:
            lanes[i] = len(ends)
            ends.append(x1)
    return lanes


def _svg_timeline(
    points: list[_Scored],
    lo: float,
    hi: float,
    spans: list[tuple[float, float, str, str]],
    highlight: Mapping[str, bool] | None = None,
    label: str = "",
    *,
    width: int = 920,
    lanes: bool = False,
) -> str:
    """One timeline plot: x = window.end in [lo, hi], y = score 0..1.

    ``spans`` are (start, end, fill colour, title); each is shaded, with its
    10-minute grace period shaded lighter. ``highlight`` maps alert ids that
    name the plotted event's entities (drawn opaque with an outline).

    With ``lanes`` (the overview), the spans are also drawn as labelled bars
    in lanes under the plot (:func:`span_lanes`: no two labels overlap, each
    links to its section), and the SVG takes the page's width
    (``width="100%"``; ``width`` is then the drawing's own width, its
    ``viewBox``).
    """
    height = 260
    ml, mr, mt, mb = 46, 12, 14, 34
    pw, ph = width - ml - mr, height - mt - mb
    if hi <= lo:
        hi = lo + 60.0
    span = hi - lo

    def xs(t: float) -> float:
        return ml + (t - lo) / span * pw

    def ys(v: float) -> float:
        return mt + (1.0 - min(max(v, 0.0), 1.0)) * ph

    bars: list[tuple[float, float, str, str]] = []
    lane_of: list[int] = []
    if lanes:
        bars = [(max(a, lo), min(b, hi), fill, title) for a, b, fill, title in spans]
        lane_of = span_lanes([(a, b, title) for a, b, _, title in bars], xs, width - 2)
        height += (max(lane_of, default=-1) + 1) * _LANE_H + (6 if bars else 0)
    size = ('width="100%" style="max-width:100%;height:auto" '
            'preserveAspectRatio="xMinYMin meet"' if lanes
            else f'width="{width}" height="{height}"')
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" {size} viewBox="0 0 {width} {height}" '
        f'font-family="ui-monospace,Menlo,Consolas,monospace" font-size="{_FONT_SIZE}" '
        f'role="img" aria-label="{_e(label)}">',
        f'<rect x="{ml}" y="{mt}" width="{pw}" height="{ph}" fill="#fff" stroke="#999"/>',
    ]
    # many spans over one another: shade each lighter, the lanes name them
    opacity = 0.25 if len(spans) <= 8 else max(0.03, 2.0 / len(spans))
    for start, end, fill, title in spans:
        a, b = max(start, lo), min(end, hi)
        if b >= a:
            parts.append(
                f'<rect x="{xs(a):.1f}" y="{mt}" width="{max(xs(b) - xs(a), 1.0):.1f}" '
                f'height="{ph}" fill="{fill}" fill-opacity="{opacity}"><title>{_e(title)}'
                f'</title></rect>'
            )
        ga, gb = max(end, lo), min(end + GRACE_SECONDS, hi)
        if gb > ga:
            parts.append(
                f'<rect x="{xs(ga):.1f}" y="{mt}" width="{xs(gb) - xs(ga):.1f}" height="{ph}" '
                f'fill="{fill}" fill-opacity="{opacity * 0.4:.2f}"><title>{_e(title)} +10 min '
                f'grace</title></rect>'
            )
    for v in (0.0, 0.25, 0.5, 0.75, 1.0):
        y = ys(v)
        parts.append(f'<line x1="{ml}" y1="{y:.1f}" x2="{ml + pw}" y2="{y:.1f}" '
                     f'stroke="#ddd" stroke-width="0.6"/>')
        parts.append(f'<text x="{ml - 6}" y="{y + 3.5:.1f}" '
                     f'text-anchor="end">{v:.2f}</text>')
    step, ticks = _ticks(lo, hi, pw)
    for t in ticks:
        x = xs(t)
        parts.append(f'<line x1="{x:.1f}" y1="{mt + ph}" x2="{x:.1f}" y2="{mt + ph + 4}" '
                     f'stroke="#666"/>')
        parts.append(f'<text class="tick" x="{x:.1f}" y="{mt + ph + 16}" '
                     f'text-anchor="middle">{_e(_tick_label(t, step, span))}</text>')
    parts.append(f'<text x="{ml + pw / 2:.1f}" y="{mt + ph + mb - 3}" '
                 f'text-anchor="middle">window.end (UTC)</text>')
    parts.append(f'<text x="11" y="{mt + ph / 2:.1f}" text-anchor="middle" '
                 f'transform="rotate(-90 11 {mt + ph / 2:.1f})">score</text>')
    top = mt + ph + mb + 6
    for (a, b, fill, title), lane in zip(bars, lane_of, strict=True):
        y = top + lane * _LANE_H
        anchor = "campaign" if fill == _CAMPAIGN_FILL else "benign"
        parts.append(
            f'<a href="#{anchor}-{_e(title)}"><rect x="{xs(a):.1f}" y="{y}" '
            f'width="{max(xs(b) - xs(a), 2.0):.1f}" height="3" fill="{fill}"/>'
            f'<text class="lane" x="{label_x(xs(a), title, width - 2):.1f}" y="{y + 12}" '
            f'fill="#333">{_e(title)}'
            f'</text><title>{_e(title)}</title></a>'
        )

    inside = [p for p in points if p.end is not None and lo <= p.end <= hi]
    inside.sort(key=lambda p: (p.end, p.alert_id))
    hl = highlight or {}
    keep = [p for p in inside if hl.get(p.alert_id)]
    rest = [p for p in inside if not hl.get(p.alert_id)]
    room = max(MAX_PLOT_POINTS - len(keep), 0)
    if len(rest) > room:
        stride = math.ceil(len(rest) / room) if room else len(rest) + 1
        rest = rest[::stride] if room else []
    # draw background alerts first, highlighted ones on top
    for group, is_hl in ((rest, False), (keep, True)):
        for p in group:
            end = p.end if p.end is not None else lo
            color = _TP_COLOR if p.tp else _FP_COLOR
            y = ys(p.score if p.score is not None else 0.0)
            extra = ' stroke="#000" stroke-width="0.8"' if is_hl and hl else ""
            if hl and not is_hl:
                extra += ' fill-opacity="0.35" stroke-opacity="0.35"'
            tip = (f"{p.alert_id} {p.etype}:{p.eid} score="
                   f"{'?' if p.score is None else f'{p.score:.3f}'} {p.severity} "
                   f"{p.detector} end={format_time(end)} "
                   f"{'TP ' + ','.join(p.campaigns) if p.tp else 'FP'}")
            parts.append(_marker(p.severity, xs(end), y, color, extra, tip))
    shown = len(keep) + len(rest)
    parts.append(f'<text x="{ml + pw - 4}" y="{mt + 12}" text-anchor="end" '
                 f'fill="#555">{shown} of {len(inside)} alerts shown</text>')
    parts.append("</svg>")
    return "".join(parts)


_LEGEND = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="720" height="24" role="img" '
    'aria-label="legend">'
    + _marker("critical", 10, 12, "#555")
    + '<text x="20" y="16" font-size="11">critical</text>'
    + _marker("warning", 80, 12, "#555")
    + '<text x="90" y="16" font-size="11">warning</text>'
    + _marker("info", 150, 12, "#555")
    + '<text x="160" y="16" font-size="11">info</text>'
    + f'<rect x="200" y="6" width="12" height="12" fill="{_TP_COLOR}"/>'
    + '<text x="216" y="16" font-size="11">true positive</text>'
    + f'<rect x="306" y="6" width="12" height="12" fill="{_FP_COLOR}"/>'
    + '<text x="322" y="16" font-size="11">false positive</text>'
    + f'<rect x="420" y="6" width="12" height="12" fill="{_CAMPAIGN_FILL}" fill-opacity="0.4"/>'
    + '<text x="436" y="16" font-size="11">campaign (+10 min lighter)</text>'
    + f'<rect x="600" y="6" width="12" height="12" fill="{_BENIGN_FILL}" fill-opacity="0.4"/>'
    + '<text x="616" y="16" font-size="11">benign event</text>'
    + "</svg>"
)

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:24px;color:#222}
table{border-collapse:collapse;margin:8px 0 18px}
th,td{border:1px solid #ccc;padding:3px 8px;text-align:left;font-size:13px}
th{background:#f3f3f3}td.n{text-align:right;font-variant-numeric:tabular-nums}
.miss{color:#c62828;font-weight:600}.hit{color:#1b7f3b;font-weight:600}
figure{margin:6px 0 22px}figcaption{font-size:12px;color:#555}
code{font-size:12px}
"""


def _html_table(headers: list[str], rows: list[list[str]], numeric: set[int]) -> str:
    out = ["<table><thead><tr>"]
    out += [f"<th>{_e(h)}</th>" for h in headers]
    out.append("</tr></thead><tbody>")
    for r in rows:
        out.append("<tr>")
        for i, cell in enumerate(r):
            cls = ' class="n"' if i in numeric else ""
            out.append(f"<td{cls}>{cell}</td>")
        out.append("</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _event_section(
    span: _Span, scored: list[_Scored], fill: str, caption: str, anchor: str
) -> str:
    lo, hi = span.start - PLOT_MARGIN_SECONDS, span.end + PLOT_MARGIN_SECONDS
    names = {(t, i) for t, i in span.entities()}
    hl = {p.alert_id: True for p in scored if (p.etype, p.eid) in names}
    svg = _svg_timeline(scored, lo, hi, [(span.start, span.end, fill, span.id)], hl,
                        label=f"timeline of {span.id}")
    return (f'<figure id="{_e(anchor)}">{svg}<figcaption>{caption} '
            f"Outlined markers name this event's entities; faded ones are other alerts. "
            f"x: {_e(format_time(lo))} .. {_e(format_time(hi))}.</figcaption></figure>")


def write_report(
    path: str | Path,
    ev: Evaluation,
    labels: Labels,
    alerts: Iterable[Mapping[str, Any]],
    title: str = "likeguard evaluation",
) -> None:
    """Write a self-contained HTML report (inline CSS and SVG, no scripts).

    Contents: summary table, per-campaign and per-benign tables, breakdowns
    per detector / entity type / campaign kind, one timeline per campaign and
    per benign event (alert score over ``window.end``, the span shaded, 15
    minutes either side, TP green / FP red, marker shape by severity), and an
    overall timeline with every span shaded. When ``path`` ends in ``.html``
    the evaluation is also written as JSON to ``path.with_suffix('.json')``.
    """
    p = Path(path)
    scored, _ = _classify(labels, alerts)
    body: list[str] = [f"<h1>{_e(title)}</h1>"]

    summary = [
        ["precision", f"{ev.precision:.3f}", f"{ev.tp} TP / {ev.alerts} alerts"],
        ["campaign recall", f"{ev.recall:.3f}",
         f"{_e(_campaign_count(ev, labels))} (a campaign starting after the last alert "
         "is not started, not missed)"],
        ["F1", f"{ev.f1:.3f}", "harmonic mean of precision and campaign recall"],
        ["median detection delay", _e(_fmt_delay(ev.median_delay)), "over detected campaigns"],
        ["max detection delay", _e(_fmt_delay(ev.max_delay)), ""],
        ["false positives", str(ev.fp), ""],
        ["false alarms on benign events", str(ev.false_alarms_total),
         "FP on a benign entity, window.end in [start, end + 10 min]"],
        ["duplicate alert ids ignored", str(ev.duplicates), ""],
        ["alerts without valid window.end", str(ev.invalid), "scored as FP"],
    ]
    body.append("<h2>Summary</h2>")
    body.append(_html_table(["metric", "value", "note"], summary, {1}))
    body.append("<p>Rules: an alert is a TP when its entity (by type) is listed in a campaign "
                "and its <code>window.end</code> lies in [start, end + 10 min]; everything "
                "else is FP. Precision is 1.0 when there are no alerts.</p>")

    crows = []
    for c in labels.campaigns:
        crows.append([
            f'<a href="#campaign-{_e(c.id)}">{_e(c.id)}</a>',
            _e(c.kind),
            _e(format_time(c.start)),
            _e(format_time(c.end)),
            _detected_word(ev, c.id, '<span class="hit">yes</span>',
                           '<span class="miss">no</span>'),
            _e(_fmt_delay(ev.delays.get(c.id))),
            str(ev.tp_alerts.get(c.id, 0)),
            _e(ev.first_alert.get(c.id, "-")),
        ])
    body.append("<h2>Campaigns</h2>")
    body.append(_html_table(["campaign", "kind", "start", "end", "detected", "delay",
                             "TP alerts", "first alert"], crows, {6}))
    if labels.benign:
        brows = [[
            f'<a href="#benign-{_e(b.id)}">{_e(b.id)}</a>', _e(b.kind),
            _e(format_time(b.start)), _e(format_time(b.end)),
            str(ev.false_alarms.get(b.id, 0)), str(ev.false_alarms_any_time.get(b.id, 0)),
        ] for b in labels.benign]
        body.append("<h2>Benign events</h2>")
        body.append(_html_table(["benign", "kind", "start", "end", "false alarms",
                                 "FP on its entities (any time)"], brows, {4, 5}))
    for heading, groups in (("Per detector", ev.per_detector),
                            ("Per entity type", ev.per_entity_type)):
        if groups:
            rows = [[_e(n), str(g["alerts"]), str(g["tp"]), str(g["fp"]),
                     f"{g['precision']:.3f}", _e(", ".join(g["detected"]) or "-")]
                    for n, g in groups.items()]
            body.append(f"<h2>{heading}</h2>")
            body.append(_html_table(["name", "alerts", "TP", "FP", "precision",
                                     "campaigns detected"], rows, {1, 2, 3, 4}))
    if ev.per_kind:
        rows = [[_e(k), str(v["campaigns"]), str(v["detected"]), f"{v['recall']:.3f}",
                 _e(_fmt_delay(v["median_delay"])), _e(", ".join(v["missed"]) or "-"),
                 _e(", ".join(v["not_started"]) or "-")]
                for k, v in ev.per_kind.items()]
        body.append("<h2>Per campaign kind</h2>")
        body.append(_html_table(["kind", "campaigns", "detected", "recall", "median delay",
                                 "missed", "not started"], rows, {1, 2, 3}))

    body.append("<h2>Timelines</h2>")
    body.append(_LEGEND)
    spans = [(c.start, c.end, _CAMPAIGN_FILL, c.id) for c in labels.campaigns]
    spans += [(b.start, b.end, _BENIGN_FILL, b.id) for b in labels.benign]
    times = [s.end for s in scored if s.end is not None]
    times += [t for s0, s1, _, _ in spans for t in (s0, s1 + GRACE_SECONDS)]
    body.append("<h3>All alerts</h3>")
    if times:
        lo, hi = min(times), max(times)
        pad = max((hi - lo) * 0.02, 60.0)
        svg = _svg_timeline(scored, lo - pad, hi + pad, spans, None, label="all alerts",
                            width=OVERVIEW_WIDTH, lanes=True)
        body.append(f"<figure>{svg}<figcaption>Every alert; all campaign and benign spans "
                    f"shaded, and named in the lanes below the plot (a name links to its "
                    f"timeline).</figcaption></figure>")
    else:
        body.append("<p>No alerts and no labels.</p>")
    for c in labels.campaigns:
        status = (f"detected after {_fmt_delay(ev.delays[c.id])}" if c.id in ev.delays
                  else _detected_word(ev, c.id, "", "missed"))
        body.append(f"<h3>Campaign {_e(c.id)} ({_e(c.kind)}) — {_e(status)}</h3>")
        body.append(_event_section(c, scored, _CAMPAIGN_FILL,
                                   f"Campaign {_e(c.id)}: {ev.tp_alerts.get(c.id, 0)} TP alerts.",
                                   f"campaign-{c.id}"))
    for b in labels.benign:
        body.append(f"<h3>Benign {_e(b.id)} ({_e(b.kind)}) — "
                    f"{ev.false_alarms.get(b.id, 0)} false alarms</h3>")
        body.append(_event_section(b, scored, _BENIGN_FILL,
                                   f"Benign event {_e(b.id)}.", f"benign-{b.id}"))

    doc = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>"
        + "\n".join(body)
        + "</body></html>\n"
    )
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(doc, encoding="utf-8")
    if p.suffix.lower() == ".html":
        _write_json(p.with_suffix(".json"), ev)


def _write_json(path: Path, ev: Evaluation) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(orjson.dumps(ev.to_dict(), option=orjson.OPT_INDENT_2) + b"\n")


# --------------------------------------------------------------------------- CLI


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``likeguard evaluate`` options to ``parser``."""
    parser.add_argument("--labels", required=True, metavar="LABELS.json",
                        help="labels file (campaigns and benign events)")
    parser.add_argument("--alerts", required=True, metavar="ALERTS.jsonl",
                        help="alerts as JSON Lines (.gz allowed)")
    parser.add_argument("--report", metavar="OUT.html",
                        help="write a self-contained HTML report (and OUT.json next to it)")
    parser.add_argument("--json", metavar="OUT.json", help="write the evaluation as JSON")


def run(args: argparse.Namespace) -> int:
    """Run ``likeguard evaluate``: print the table, write optional outputs.

    Returns 0 on success, 2 (with a message on stderr) when an input is
    missing, unreadable or malformed, or an output cannot be written.
    """
    try:
        labels = load_labels(args.labels)
        alerts = load_alerts(args.alerts)
    except (LabelsError, AlertsError) as exc:
        print(f"likeguard evaluate: error: {exc}", file=sys.stderr)
        return 2
    warning = overlap_warning(labels, alerts)
    if warning:
        print(f"likeguard evaluate: warning: {warning}", file=sys.stderr)
    ev = evaluate(labels, alerts)
    print(format_table(ev, labels))
    try:
        if getattr(args, "report", None):
            write_report(args.report, ev, labels, alerts)
            print(f"report written to {args.report}")
        if getattr(args, "json", None):
            _write_json(Path(args.json), ev)
            print(f"figures written to {args.json}")
    except OSError as exc:
        print(f"likeguard evaluate: error: cannot write output: {exc}", file=sys.stderr)
        return 2
    return 0


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry point: ``python -m detectors.evaluate --labels L --alerts A``."""
    parser = argparse.ArgumentParser(prog="likeguard evaluate", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
