"""A simulated moderator in the loop, to measure what verdicts are worth.

:class:`SimulatedModerator` reviews each alert ``delay`` seconds of event
time after it is raised and answers from the labels: ``confirmed`` when the
alert is a true positive of a campaign (the rule of
:func:`~detectors.evaluate.evaluate`), ``dismissed`` otherwise, and the
opposite with probability ``error_rate``. Whether an alert gets the wrong
answer is drawn from its id and the seed alone, so a run is reproducible
and two runs that raise the same alert answer it alike, whatever else
they raise. :func:`moderated_replay` replays a recording with its
verdicts fed back into the engine as they fall due, as a worker reading
the verdicts topic would take them.

Examples
--------
>>> from detectors.alerts import Alert
>>> from detectors.evaluate import parse_labels
>>> labels = parse_labels({"campaigns": [{"id": "c1", "kind": "device_farm",
...     "start": "2026-11-24T00:00:00Z", "end": "2026-11-24T01:00:00Z",
...     "devices": ["d1"]}], "benign": []})
>>> a = Alert.build("device_farm@1", "device", "d1", 1795478400.0, 1795478460.0, 0.6, [], {}, [])
>>> v = SimulatedModerator(labels, delay=600, error_rate=0.0).review(a)
>>> v.verdict, v.decided_at - a.window_end, v.detector
('confirmed', 600.0, 'device_farm@1')
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

import orjson

from detectors.alerts import Alert
from detectors.config import EngineConfig
from detectors.engine import Engine
from detectors.evaluate import Campaign, Labels, campaigns_of, false_alarms_of
from detectors.events import Like, Payment
from detectors.recording import Record, open_text, read_records
from detectors.replay import ReplaySummary, iter_events, replay_file
from detectors.verdicts import Verdict

__all__ = ["Returns", "SimulatedModerator", "false_alarms_after_verdict", "moderated_replay",
           "with_returns"]


class SimulatedModerator:
    """Answers alerts from ground truth, after a delay, sometimes wrongly.

    Parameters
    ----------
    labels
        The recording's ground truth.
    delay
        Seconds of event time between an alert and its verdict.
    error_rate
        Probability of the wrong answer.
    seed
        Seed of the errors: an alert is answered wrongly when a hash of the
        seed and its id falls below ``error_rate``.
    """

    def __init__(self, labels: Labels, delay: float = 600.0, error_rate: float = 0.05,
                 seed: int = 0) -> None:
        self.labels = labels
        self.delay = delay
        self.error_rate = error_rate
        self.seed = seed
        self.wrong = 0

    def mistaken(self, alert_id: str) -> bool:
        """Whether the alert ``alert_id`` gets the wrong answer."""
        h = hashlib.blake2b(f"{self.seed}:{alert_id}".encode(), digest_size=8).digest()
        return int.from_bytes(h, "big") < self.error_rate * 2.0**64

    def review(self, alert: Alert) -> Verdict:
        """The verdict on ``alert``."""
        obj = alert.to_dict()
        right = bool(campaigns_of(self.labels, obj))
        if self.mistaken(alert.alert_id):
            right = not right
            self.wrong += 1
        return Verdict.of_alert(obj, "confirmed" if right else "dismissed",
                                "simulated-moderator", alert.window_end + self.delay)


def moderated_replay(path: str | Path, moderator: SimulatedModerator,
                     config: EngineConfig | None = None
                     ) -> tuple[list[dict[str, Any]], list[Verdict], ReplaySummary]:
    """Replay ``path`` with ``moderator`` answering every alert; return the
    alerts (contract objects, ``emitted_at`` empty), the verdicts and the summary."""
    engine = Engine(config)
    alerts: list[dict[str, Any]] = []
    verdicts: list[Verdict] = []

    def emit(a: Alert) -> None:
        alerts.append(a.to_dict(None))
        v = moderator.review(a)
        verdicts.append(v)
        engine.verdict(v)

    summary = replay_file(path, engine, emit, overlap=False)
    return alerts, verdicts, summary


def false_alarms_after_verdict(labels: Labels, alerts: list[dict[str, Any]],
                               verdicts: list[Verdict]) -> int:
    """False alarms on a look-alike raised after a moderator's first verdict
    on one of its false alarms: the repeats a verdict could have quieted
    (every look-alike's first alerts come before anyone has reviewed it)."""
    on = false_alarms_of(labels, alerts)
    first: dict[str, float] = {}
    for v in verdicts:
        for b in on.get(v.alert_id, (0.0, []))[1]:
            first[b] = min(first.get(b, v.decided_at), v.decided_at)
    return sum(1 for end, events in on.values()
               if any(end > first.get(b, float("inf")) for b in events))


#: the suffix of a returning job's merchants, targets and event ids
RETURN_SUFFIX = "~next"


class Returns(NamedTuple):
    """What :func:`with_returns` wrote."""

    #: the recording's labels with the next jobs added (ids ``<campaign>~next``)
    labels: Labels
    #: next job id -> event time of its first like
    first_like: dict[str, float]


def with_returns(path: str | Path, labels: Labels, out: str | Path, after: float = 900.0,
                 span: float = 600.0) -> Returns:
    """Write ``path`` (plain or gzipped) plus every campaign's next job to ``out``
    (plain).

    A campaign's next job is its first one again, ``after`` seconds after the
    first ends: the same accounts, from the same devices and addresses,
    liking and paying as they did in its first ``span`` seconds, but for new
    merchants and targets (its own, suffixed ``~next``). Only the next jobs
    that end in the recording's time span are written, as records of one
    new partition per topic, so the recording's own records and offsets
    stay as they were. A moderator who confirmed the
    first job has put its accounts on the watchlist; the next job shows how
    much sooner that finds them than the rules alone.
    """
    parts: dict[str, int] = {}

    def records() -> Iterator[Record]:
        for r in read_records(path):
            parts[r.topic] = max(parts.get(r.topic, -1), r.partition)
            yield r

    events = list(iter_events(records(), ReplaySummary()))
    last = max((e.ts for e in events), default=0.0)
    jobs: list[Campaign] = []
    first_like: dict[str, float] = {}
    lines: dict[str, list[tuple[float, bytes]]] = {"likes": [], "payments.success": []}
    for c in labels.campaigns:
        shift = c.end + after - c.start
        end = min(c.end, c.start + span)
        if end + shift > last:
            continue
        users, targets, merchants = set(c.users), set(c.targets), set(c.merchants)
        mine = [e for e in events if c.start <= e.ts <= end and _acted(e, users, targets)]
        likes = [e.ts for e in mine if isinstance(e, Like)]
        if not likes:
            continue
        first_like[c.id + RETURN_SUFFIX] = min(likes) + shift
        for e in mine:
            topic, value = _moved(e, shift, merchants, targets)
            lines[topic].append((e.ts + shift, value))
        jobs.append(dataclasses.replace(
            c, id=c.id + RETURN_SUFFIX, start=c.start + shift, end=end + shift,
            merchants=tuple(m + RETURN_SUFFIX for m in c.merchants),
            targets=tuple(t + RETURN_SUFFIX for t in c.targets)))
    with open(out, "w", encoding="utf-8") as fh, open_text(path) as src:
        for line in src:
            fh.write(line if line.endswith("\n") else line + "\n")
        for topic, rows in lines.items():
            part = parts.get(topic, -1) + 1
            for offset, (ts, value) in enumerate(sorted(rows)):
                fh.write(orjson.dumps({"topic": topic, "partition": part, "offset": offset,
                                       "ts": int(ts * 1000), "key": None,
                                       "payload": value.decode()}).decode() + "\n")
    return Returns(Labels(labels.campaigns + jobs, labels.benign), first_like)


def _acted(e: Like | Payment, users: set[str], targets: set[str]) -> bool:
    """Whether ``e`` is one of a campaign's: by its accounts, or on its
    targets when the labels name no account."""
    if isinstance(e, Payment):
        return e.openid in users
    return e.user in users if users else e.target in targets


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")


def _moved(e: Like | Payment, shift: float, merchants: set[str],
           targets: set[str]) -> tuple[str, bytes]:
    """``(topic, value)`` of ``e`` moved ``shift`` seconds on, for the next job's
    merchants and targets."""
    def new(ident: str, of: set[str]) -> str:
        return ident + RETURN_SUFFIX if ident in of else ident

    if isinstance(e, Like):
        return "likes", orjson.dumps({
            "like_id": e.like_id + RETURN_SUFFIX, "user_openid": e.user,
            "target_id": new(e.target, targets), "owner_mchid": new(e.mchid, merchants),
            "action": e.action, "ts": _iso(e.ts + shift), "client_ip": e.ip,
            "device_id": e.device,
            "user_created": None if e.user_created is None else _iso(e.user_created)})
    return "payments.success", orjson.dumps({
        "transaction_id": e.transaction_id + RETURN_SUFFIX, "mchid": new(e.mchid, merchants),
        "out_trade_no": e.out_trade_no and e.out_trade_no + RETURN_SUFFIX, "appid": e.appid,
        "trade_state": "SUCCESS", "success_time": _iso(e.ts + shift),
        "payer": {"openid": e.openid}, "amount": {"total": e.amount, "currency": e.currency},
        "payer_client_ip": e.ip, "scene_info": {"device_id": e.device}})
