"""Ablation: the same recording replayed with rules only, models only, and both.

Shows what the River models add over the explicit rules (and the reverse),
scored against the labels with :func:`detectors.evaluate.evaluate`.
"""

from __future__ import annotations

import io
from pathlib import Path

import orjson

from detectors.config import EngineConfig
from detectors.evaluate import Evaluation, Labels, evaluate
from detectors.replay import replay

__all__ = ["run_ablation", "ABLATION_MODES"]

ABLATION_MODES = {"rules only": "rules", "models only": "models", "both": "both"}


def run_ablation(recording: str | Path, labels: Labels,
                 config: EngineConfig | None = None) -> dict[str, Evaluation]:
    """Replay ``recording`` once per mode and evaluate each run."""
    base = config or EngineConfig()
    out: dict[str, Evaluation] = {}
    for title, mode in ABLATION_MODES.items():
        buf = io.StringIO()
        replay(recording, buf, base.with_(mode=mode))
        alerts = [orjson.loads(line) for line in buf.getvalue().splitlines() if line]
        out[title] = evaluate(labels, alerts)
    return out

