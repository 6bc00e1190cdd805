"""Learning from verdicts: which alerts do moderators confirm?

A :class:`VerdictRanker` keeps one River logistic regression (features
standardised online) per view and entity type, trained on the features of
each alert a moderator confirmed (1) or dismissed (0). Once it has seen
``min_each`` verdicts of both kinds for a view and entity type, the engine
asks it for the probability that a new candidate would be confirmed and
ranks a rule's warning it finds unlikely down to ``info``/``review``
(``detectors/engine.py``): a look-alike the moderators keep dismissing
(offices, fan clubs) sinks in the queue on entities never reviewed before,
while critical evidence is never ranked down.

Examples
--------
>>> r = VerdictRanker(min_each=3)
>>> farm = {"accounts": 40.0, "targets_per_liker": 0.1}
>>> office = {"accounts": 30.0, "targets_per_liker": 2.5}
>>> r.proba(("ip", "ip"), farm) is None  # nothing learned yet
True
>>> for _ in range(10):
...     r.learn_one(("ip", "ip"), farm, True)
...     r.learn_one(("ip", "ip"), office, False)
>>> r.proba(("ip", "ip"), farm) > 0.5 > r.proba(("ip", "ip"), office)
True
"""

from __future__ import annotations

from river import compose, linear_model, optim, preprocessing

__all__ = ["VerdictRanker"]

Key = tuple[str, str]


class VerdictRanker:
    """Online classifiers of verdicts, one per (view, entity type).

    Parameters
    ----------
    min_each
        Confirmed and dismissed verdicts each needed before it ranks.
    """

    name = "verdict_ranker"
    version = "1"

    def __init__(self, min_each: int = 5) -> None:
        self.min_each = min_each
        self.models: dict[Key, compose.Pipeline] = {}
        #: (view, entity type) -> [dismissed, confirmed] verdicts learned
        self.seen: dict[Key, list[int]] = {}

    def learn_one(self, key: Key, x: dict[str, float], confirmed: bool) -> None:
        m = self.models.get(key)
        if m is None:
            m = self.models[key] = preprocessing.StandardScaler() | linear_model.LogisticRegression(
                optimizer=optim.SGD(0.5))
            self.seen[key] = [0, 0]
        m.learn_one(x, confirmed)
        self.seen[key][int(confirmed)] += 1

    def proba(self, key: Key, x: dict[str, float]) -> float | None:
        """P(confirmed) for a candidate, or ``None`` before enough verdicts."""
        seen = self.seen.get(key)
        if seen is None or min(seen) < self.min_each:
            return None
        return float(self.models[key].predict_proba_one(x).get(True, 0.0))
