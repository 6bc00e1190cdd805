"""The one protocol every detector follows, and the rule base class.

A detector reads a flat feature dict ``x`` of one view and answers
``score_one(x) -> float`` in ``[0, 1]``, high meaning anomalous;
``learn_one(x)`` updates it (a no-op for rules); ``threshold()`` is the
score at which it raises an alert; ``explain(x)`` lists the
:class:`Reason` objects behind a score.

A :class:`Rule` is a set of *paths*, each a conjunction of conditions
``feature >= threshold`` or ``feature <= threshold``. Each condition has a
ratio of value to threshold (how far it is met); a path's strength is its
weakest ratio, and the rule's score is ``r / (1 + r)`` of the strongest
path: exactly ``0.5`` when every condition of a path is just met, rising to
1 as the evidence grows, and below ``0.5`` on partial evidence.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, NamedTuple, Protocol, runtime_checkable

from detectors._core import CompiledRule

__all__ = ["Reason", "Detector", "Cond", "Rule", "squash"]


class Reason(NamedTuple):
    """One reason of an alert: a code, a sentence, the value and its threshold."""

    code: str
    detail: str
    value: float
    threshold: float

    def to_dict(self) -> dict[str, object]:
        return {"code": self.code, "detail": self.detail,
                "value": round(float(self.value), 4), "threshold": self.threshold}


@runtime_checkable
class Detector(Protocol):
    """What the engine needs from a detector."""

    # read-only: a rule declares them on its class, a model per instance
    @property
    def name(self) -> str: ...

    @property
    def version(self) -> str: ...

    @property
    def view(self) -> str: ...

    @property
    def entity_type(self) -> str: ...

    @property
    def kind(self) -> str: ...  # "rule" or "model"

    def learn_one(self, x: dict[str, float]) -> None: ...

    def score_one(self, x: dict[str, float]) -> float: ...

    def threshold(self) -> float: ...

    def explain(self, x: dict[str, float]) -> list[Reason]: ...


def squash(r: float) -> float:
    """Map a ratio in ``[0, inf)`` to ``[0, 1)``; 1 maps to 0.5.

    >>> squash(1.0), squash(3.0), squash(0.0)
    (0.5, 0.75, 0.0)
    """
    return r / (1.0 + r) if r > 0 else 0.0


@dataclass(frozen=True, slots=True)
class Cond:
    """``feature >= threshold`` (``op='>='``) or ``feature <= threshold``.

    A *gate* (``gate=True``) is a precondition, not evidence: unmet, it takes
    its path's strength to 0 instead of to its ratio, so a path that misses
    it cannot corroborate a model alert either.
    """

    feature: str
    op: str
    threshold: float
    code: str
    detail: str
    gate: bool = False


class Rule:
    """Base class of explicit rules: subclasses set ``paths``."""

    name: ClassVar[str] = "rule"
    version: ClassVar[str] = "1"
    view: ClassVar[str] = ""
    entity_type: ClassVar[str] = ""
    kind: ClassVar[str] = "rule"
    paths: ClassVar[tuple[tuple[Cond, ...], ...]] = ()
    #: cap on a single condition's ratio, so one huge count cannot carry a path
    cap: ClassVar[float] = 20.0

    def __init__(self) -> None:
        # scored by the compiled core (``detectors._core``), which the engine
        # also hands this rule's paths to, so rules run in one implementation
        self.compiled = CompiledRule(
            [[(c.feature, c.op == ">=", c.threshold, c.gate) for c in path]
             for path in self.paths], self.cap)

    def __reduce__(self) -> tuple[type[Rule], tuple[()]]:
        # a rule holds no state, so its class rebuilds it (the compiled paths
        # do not pickle): a rule pickles as a model does (detectors.checks)
        return type(self), ()

    def learn_one(self, x: dict[str, float]) -> None:
        """Rules do not learn."""

    def _best(self, x: dict[str, float]) -> tuple[float, tuple[Cond, ...]]:
        # a condition's ratio is value / threshold (">=") or threshold / value
        # ("<="), 0 when missing or NaN; the strongest path and its strength
        best, i = self.compiled.best(x)
        return best, self.paths[i]

    def score_one(self, x: dict[str, float]) -> float:
        return squash(self._best(x)[0])

    def threshold(self) -> float:
        return 0.5

    def explain(self, x: dict[str, float]) -> list[Reason]:
        _, path = self._best(x)
        return [Reason(c.code, c.detail, float(x.get(c.feature, 0.0)), c.threshold) for c in path]
