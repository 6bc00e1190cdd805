"""Half-space trees on scaled view features, with a calibrated threshold.

River's :class:`~river.anomaly.HalfSpaceTrees` expects features in
``[0, 1]``; counts are log-scaled against a cap, shares are clipped. The
alert threshold is calibrated online: the running ``quantile`` of the
model's own scores (River's :class:`~river.stats.Quantile`), never below
``floor``. Until ``warmup`` samples are learned the threshold is above 1,
so a cold model cannot alert.

Examples
--------
>>> import random
>>> rng = random.Random(7)
>>> m = HalfSpaceDetector("demo", "ip", "ip", {"users": 50, "share": 1.0}, warmup=300)
>>> for _ in range(600):
...     x = {"users": rng.randint(1, 3), "share": rng.random() * 0.2}
...     _ = m.score_one(x); m.learn_one(x)
>>> normal = m.score_one({"users": 2, "share": 0.1})
>>> odd = m.score_one({"users": 45, "share": 0.95})
>>> odd > normal, 0.0 <= normal <= odd <= 1.0, m.warm
(True, True, True)
"""

from __future__ import annotations

import math

from river import anomaly, stats

from detectors.base import Reason

__all__ = ["HalfSpaceDetector"]


class HalfSpaceDetector:
    """River ``HalfSpaceTrees`` with fixed feature scaling and quantile calibration.

    Parameters
    ----------
    name, view, entity_type
        Identity of the detector and which subjects it scores.
    features
        Feature name -> cap. A cap of ``1.0`` marks a share (clipped to
        ``[0, 1]``); larger caps log-scale a count so that ``cap`` maps to 1.
        Missing features count as 0.
    warmup
        Samples to learn before the model may alert.
    quantile, floor
        The alert threshold is ``max(floor, running quantile of scores)``.
    corroboration
        Rule score a subject needs before this model may score it for an
        alert (the engine's gate; see ``EngineConfig.corroboration``).
    """

    kind = "model"
    version = "1"
    corroboration = 0.4  #: class default, for checkpoints pickled before it existed

    def __init__(self, name: str, view: str, entity_type: str, features: dict[str, float],
                 warmup: int = 200, quantile: float = 0.99, floor: float = 0.75,
                 seed: int = 42, n_trees: int = 10, height: int = 6,
                 window_size: int = 100, corroboration: float = 0.4) -> None:
        self.name = name
        self.view = view
        self.entity_type = entity_type
        self.features = dict(features)
        self.warmup = warmup
        self.quantile = quantile
        self.floor = floor
        self.corroboration = corroboration
        self.seed = seed
        self._params = (n_trees, height, window_size)
        self.model = anomaly.HalfSpaceTrees(
            n_trees=n_trees, height=height, window_size=window_size, seed=seed,
            limits={f: (0.0, 1.0) for f in self.features},
        )
        self.calibration = stats.Quantile(quantile)
        self.n = 0
        self.offered = 0  #: subjects offered by the engine (it learns from a sample)
        #: (x, its score, x scaled) of the latest score_one, which learn_one of the
        #: same dict reuses; x itself is held (not its id, which a later dict may reuse)
        self._last: tuple[dict[str, float], float, dict[str, float]] | None = None

    def clone(self) -> HalfSpaceDetector:
        """A fresh, unfitted copy with the same parameters."""
        n_trees, height, window_size = self._params
        return HalfSpaceDetector(self.name, self.view, self.entity_type, self.features,
                                 self.warmup, self.quantile, self.floor, self.seed,
                                 n_trees, height, window_size, self.corroboration)

    @property
    def warm(self) -> bool:
        return self.n >= self.warmup

    def scale(self, x: dict[str, float]) -> dict[str, float]:
        out = {}
        for f, cap in self.features.items():
            v = x.get(f)
            if v is None or v != v or v <= 0:
                out[f] = 0.0
            elif cap == 1.0:
                out[f] = 1.0 if v > 1.0 else float(v)
            else:
                s = math.log1p(v) / math.log1p(cap)
                out[f] = 1.0 if s > 1.0 else s
        return out

    def score_one(self, x: dict[str, float]) -> float:
        scaled = self.scale(x)
        s = float(self.model.score_one(scaled))
        s = 0.0 if s < 0.0 else 1.0 if s > 1.0 else s
        self._last = (x, s, scaled)
        return s

    def learn_one(self, x: dict[str, float]) -> None:
        last = self._last
        if last is None or last[0] is not x:
            self.score_one(x)
            last = self._last
        assert last is not None
        self._last = None
        if self.n >= self._params[2]:  # scores mean something after the first window
            self.calibration.update(last[1])
        self.model.learn_one(last[2])
        self.n += 1

    def threshold(self) -> float:
        if not self.warm:
            return 1.01
        q = self.calibration.get()
        return max(self.floor, q if q is not None else 1.0)

    def explain(self, x: dict[str, float]) -> list[Reason]:
        score = self.score_one(x)
        reasons = [Reason("model_score", f"{self.name} anomaly score (calibrated threshold)",
                          score, round(self.threshold(), 4))]
        scaled = self.scale(x)
        top = sorted(scaled.items(), key=lambda kv: (-kv[1], kv[0]))[:3]
        for f, s in top:
            if s > 0:
                reasons.append(Reason("model_feature", f"{f} (scaled {s:.2f})",
                                      float(x.get(f, 0.0)), self.features[f]))
        return reasons
