"""Learning from verdicts: which alerts do moderators confirm?

A :class:`VerdictRanker` keeps one River logistic regression (features
standardised online) per view, entity type and detector, trained on the
features of each alert a moderator confirmed (1) or dismissed (0). Once it
has seen ``min_each`` verdicts of both kinds for a key, and dismissals are
at least ``min_share`` of them, the engine asks it for the probability that
a new candidate would be confirmed and ranks a rule's warning it finds
unlikely down to ``info``/``review`` (``detectors/engine.py``): a look-alike
the moderators keep dismissing (offices, fan clubs) sinks in the queue on
entities never reviewed before, while critical evidence is never ranked
down.

Why per detector: one view's rules read different features (a farm's
devices, a ring's shared history), so a single model per view learns the
mix and ranks down one rule's campaigns for another rule's look-alikes.
Why the share: a rule moderators dismiss a few times in a hundred (their
own mistakes included) gains little from ranking and loses the campaigns
it misranks.

Examples
--------
>>> r = VerdictRanker(min_each=3)
>>> key = ("ip", "ip", "ip_farm@1")
>>> farm = {"accounts": 40.0, "targets_per_liker": 0.1}
>>> office = {"accounts": 30.0, "targets_per_liker": 2.5}
>>> r.proba(key, farm) is None  # nothing learned yet
True
>>> for _ in range(10):
...     r.learn_one(key, farm, True)
...     r.learn_one(key, office, False)
>>> r.proba(key, farm) > 0.5 > r.proba(key, office)
True

A rule whose alerts are nearly always confirmed is not ranked:

>>> for _ in range(200):
...     r.learn_one(key, farm, True)
>>> r.proba(key, office) is None  # 10 dismissed of 220
True
"""

from __future__ import annotations

from river import compose, linear_model, optim, preprocessing

__all__ = ["VerdictRanker"]

#: (view, entity type, detector ``name@version``)
Key = tuple[str, str, str]


class VerdictRanker:
    """Online classifiers of verdicts, one per (view, entity type, detector).

    Parameters
    ----------
    min_each
        Confirmed and dismissed verdicts each needed before it ranks.
    min_share
        The least share of dismissals among a key's verdicts for it to rank.
    """

    name = "verdict_ranker"
    version = "2"

    def __init__(self, min_each: int = 5, min_share: float = 0.15) -> None:
        self.min_each = min_each
        self.min_share = min_share
        self.models: dict[Key, compose.Pipeline] = {}
        #: key -> [dismissed, confirmed] verdicts learned
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
        """P(confirmed) for a candidate; ``None`` before enough verdicts, or
        while dismissals are below ``min_share`` of them."""
        seen = self.seen.get(key)
        if seen is None or min(seen) < self.min_each or seen[0] < self.min_share * sum(seen):
            return None
        return float(self.models[key].predict_proba_one(x).get(True, 0.0))
