"""A simulated moderator in the loop, to measure what verdicts are worth.

:class:`SimulatedModerator` reviews each alert ``delay`` seconds of event
time after it is raised and answers from the labels: ``confirmed`` when the
alert is a true positive of a campaign (the rule of
:func:`~detectors.evaluate.evaluate`), ``dismissed`` otherwise, and the
opposite with probability ``error_rate`` (seeded, so a run is
reproducible). :func:`moderated_replay` replays a recording with its
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

import random
from pathlib import Path
from typing import Any

from detectors.alerts import Alert
from detectors.config import EngineConfig
from detectors.engine import Engine
from detectors.evaluate import Labels, campaigns_of
from detectors.replay import ReplaySummary, replay_file
from detectors.verdicts import Verdict, evidence_actors

__all__ = ["SimulatedModerator", "moderated_replay"]


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
        Seed of the errors.
    """

    def __init__(self, labels: Labels, delay: float = 600.0, error_rate: float = 0.05,
                 seed: int = 0) -> None:
        self.labels = labels
        self.delay = delay
        self.error_rate = error_rate
        self._rng = random.Random(seed)
        self.wrong = 0

    def review(self, alert: Alert) -> Verdict:
        """The verdict on ``alert``."""
        right = bool(campaigns_of(self.labels, alert.to_dict()))
        if self._rng.random() < self.error_rate:
            right = not right
            self.wrong += 1
        return Verdict(alert.alert_id, alert.entity_type, alert.entity_id,
                       "confirmed" if right else "dismissed", "simulated-moderator",
                       alert.window_end + self.delay, None, alert.detector,
                       *evidence_actors(alert.evidence))


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

    summary = replay_file(path, engine, emit)
    return alerts, verdicts, summary
