"""Alert objects of the contract, deterministic ids, and suppression.

An alert's id hashes (detector, entity, window), so a replay or a restarted
worker raises the same id for the same evidence. :class:`Suppressor` keeps
one campaign to a few alerts per entity: the first, each escalation of
severity or action, and a reminder every ``renotify`` seconds while it
keeps firing.

Examples
--------
>>> a = Alert.build("paid_likes@1", "merchant", "m1", 0.0, 60.0, 0.8, [], {}, [])
>>> a.severity, a.action, len(a.alert_id)
('critical', 'limit_payments', 24)
>>> s = Suppressor(window=300, renotify=1800)
>>> [s.admit("merchant", "merchant", "m1", lvl, t) for lvl, t in [(1, 0), (1, 5), (2, 10), (2, 1900)]]
[True, False, True, True]
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from detectors.base import Reason
from detectors.events import format_time

__all__ = ["Alert", "Suppressor", "severity_for", "ACTIONS", "SEVERITIES"]

SEVERITIES = ("info", "warning", "critical")
ACTIONS = ("review", "clear_likes", "limit_payments", "ban")

#: the strongest action that makes sense per entity type
_MAX_ACTION = {"merchant": 3, "user": 3, "ip": 3, "device": 3, "target": 1}


def severity_for(score: float, rule_fired: bool, entity_type: str) -> tuple[str, str, int]:
    """(severity, action, level) for a score; level orders escalation.

    A model alone gives ``info``/``review``; a rule gives ``warning`` and
    ``clear_likes``, ``critical``/``limit_payments`` at three times its
    thresholds (score 0.75) and ``ban`` at six times (score 6/7).

    >>> severity_for(0.9, True, "device")
    ('critical', 'ban', 5)
    >>> severity_for(0.9, True, "target")
    ('critical', 'clear_likes', 3)
    """
    if not rule_fired:
        sev, act = 0, 0
    elif score >= 6 / 7:
        sev, act = 2, 3
    elif score >= 0.75:
        sev, act = 2, 2
    else:
        sev, act = 1, 1
    act = min(act, _MAX_ACTION.get(entity_type, 3))
    return SEVERITIES[sev], ACTIONS[act], sev + act


@dataclass(slots=True)
class Alert:
    """One alert on one entity; :meth:`to_dict` gives the contract's object."""

    alert_id: str
    detector: str
    entity_type: str
    entity_id: str
    window_start: float
    window_end: float
    score: float
    severity: str
    action: str
    level: int
    reasons: list[Reason]
    evidence: dict[str, Any]

    @classmethod
    def build(cls, detector: str, entity_type: str, entity_id: str, start: float, end: float,
              score: float, reasons: list[Reason], counts: dict[str, Any], samples: list[str],
              rule_fired: bool = True) -> Alert:
        severity, action, level = severity_for(score, rule_fired, entity_type)
        ws, we = format_time(start), format_time(end)
        digest = hashlib.sha256(f"{detector}|{entity_type}|{entity_id}|{ws}|{we}".encode())
        evidence = dict(counts)
        evidence["sample_ids"] = samples[:20]
        return cls(digest.hexdigest()[:24], detector, entity_type, entity_id, start, end,
                   round(score, 4), severity, action, level, reasons, evidence)

    @property
    def key(self) -> str:
        """Kafka record key of the alert: ``entity.type:entity.id``."""
        return f"{self.entity_type}:{self.entity_id}"

    def to_dict(self, emitted_at: str | None = None) -> dict[str, Any]:
        return {
            "alert_id": self.alert_id,
            "entity": {"type": self.entity_type, "id": self.entity_id},
            "window": {"start": format_time(self.window_start), "end": format_time(self.window_end)},
            "score": self.score,
            "severity": self.severity,
            "action": self.action,
            "reasons": [r.to_dict() for r in self.reasons],
            "evidence": self.evidence,
            "detector": self.detector,
            "emitted_at": emitted_at,
        }


class Suppressor:
    """Per-entity alert gate: first alert, escalations, and periodic reminders."""

    def __init__(self, window: float, renotify: float) -> None:
        self.window = window
        self.renotify = renotify
        # (scope, type, id) -> [level, last alert time, last firing time]
        self.state: dict[tuple[str, str, str], list[float]] = {}

    def admit(self, scope: str, entity_type: str, entity_id: str, level: int, now: float) -> bool:
        """Whether a candidate alert at ``level`` on the entity should be sent."""
        k = (scope, entity_type, entity_id)
        st = self.state.get(k)
        if st is None or now - st[2] > self.window:
            self.state[k] = [level, now, now]
            return True
        st[2] = now
        if level > st[0] or now - st[1] >= self.renotify:
            st[0] = max(st[0], level)
            st[1] = now
            return True
        return False

    def sweep(self, now: float) -> None:
        for k in [k for k, st in self.state.items() if now - st[2] > self.window]:
            del self.state[k]

    def __len__(self) -> int:
        return len(self.state)
