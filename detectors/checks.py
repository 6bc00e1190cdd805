"""Checks every detector must pass, in the style of River's ``river/checks/``.

:func:`check_detector` runs each check :func:`yield_checks` gives on a fresh
copy of a detector (``det.clone()`` when it has one, else ``type(det)()``),
so a rule or a model written for the engine (:mod:`detectors.base`) can be
checked in one line before it is registered. Each check is a small function
named ``check_*`` that raises :class:`AssertionError` saying which detector
failed what:

* ``check_protocol``: the protocol's attributes are there, typed and valid
  (a known view and entity type, ``kind`` ``"rule"`` or ``"model"``);
* ``check_docstring``: the class has a docstring, and it or its module has a
  numpydoc ``Examples`` section with doctests;
* ``check_scores_in_range``: every score is a float in ``[0, 1]``;
* ``check_deterministic``: two fresh copies fed the same seeded input agree;
* ``check_pickle_round_trip``: a detector pickled halfway through (as an
  engine snapshot pickles the models) scores, learns, calibrates and explains
  as the original does afterwards;
* ``check_feature_order``: the same features in another dict order give the
  same scores, thresholds and reasons;
* ``check_missing_features``: missing, zero and NaN features raise nothing
  (the protocol counts them as no evidence; a rule scores 0 on nothing);
* ``check_explain``: ``explain`` gives contract :class:`~detectors.base.Reason` s.

``tests/unit/test_detectors.py`` runs every check on every detector of
:func:`registered_detectors`, the rules and models the engine runs, so a
newly registered detector is checked without a new test.

Examples
--------
>>> from detectors.rules import Lockstep
>>> check_detector(Lockstep())
>>> [check.__name__ for check in yield_checks(Lockstep())][:3]
['check_protocol', 'check_docstring', 'check_scores_in_range']

A detector that breaks the protocol is told why:

>>> class Loud(Lockstep):
...     '''Scores everything 2.'''
...     def score_one(self, x):
...         return 2.0
>>> check_scores_in_range(Loud())
Traceback (most recent call last):
...
AssertionError: lockstep: score_one gave 2.0, not a float in [0, 1]
"""

from __future__ import annotations

import inspect
import math
import pickle
import random
import re
import sys
from collections.abc import Callable, Iterator
from typing import Any, cast

from detectors.base import Detector, Reason
from detectors.config import EngineConfig
from detectors.models import default_models
from detectors.rules import RULES
from detectors.views import ALL_VIEWS

__all__ = [
    "check_detector", "yield_checks", "registered_detectors", "clone_detector", "feature_names",
    "ENTITY_TYPES",
    "check_protocol", "check_docstring", "check_scores_in_range", "check_deterministic",
    "check_pickle_round_trip", "check_feature_order", "check_missing_features", "check_explain",
]

#: the entity types an alert may name (``docs/contract.md``)
ENTITY_TYPES = ("merchant", "target", "user", "ip", "device")

#: seeded feature dicts per check; enough to take a model with ``warmup=50``
#: past its warm-up and its first calibration window
_SAMPLES = 240
_SEED = 11

Check = Callable[[Detector], None]


def registered_detectors(config: EngineConfig | None = None) -> list[Detector]:
    """One of every detector the engine runs: each rule of
    :data:`detectors.rules.RULES` and each model of
    :func:`detectors.models.default_models` (built from ``config``; by default
    with a short warm-up, so the checks see warm models)."""
    cfg = config or EngineConfig(warmup=50)
    # a Rule sets the protocol's attributes as class variables, which mypy tells apart
    dets: list[Detector] = [cast(Detector, rule()) for rule in RULES]
    dets += default_models(cfg)
    return dets


def clone_detector(det: Detector) -> Detector:
    """A fresh, unfitted copy of ``det``: ``det.clone()``, or ``type(det)()``."""
    clone = getattr(det, "clone", None)
    return clone() if callable(clone) else type(det)()


def feature_names(det: Detector) -> list[str]:
    """The features ``det`` reads: a model's ``features``, a rule's conditions."""
    features = getattr(det, "features", None)
    if features is not None:
        return list(features)
    paths = getattr(det, "paths", None)
    if paths is not None:
        return sorted({c.feature for path in paths for c in path})
    raise AssertionError(f"{det.name}: declares no features (a model's `features` "
                         "or a rule's `paths`)")


def _samples(det: Detector, n: int = _SAMPLES, seed: int = _SEED) -> list[dict[str, float]]:
    """Seeded feature dicts: zeros, small and large values, and for a rule
    values around each path's thresholds (so its scores are not all 0)."""
    rng = random.Random(seed)
    names = feature_names(det)
    paths = getattr(det, "paths", ())
    out: list[dict[str, float]] = []
    for i in range(n):
        x = {f: rng.choice([0.0, rng.random(), rng.random() * 3, float(rng.randint(0, 300))])
             for f in names}
        if paths and i % 2:
            for c in paths[i // 2 % len(paths)]:
                x[c.feature] = c.threshold * rng.uniform(0.3, 3.0)
        out.append(x)
    return out


def _drive(det: Detector, xs: list[dict[str, float]]) -> list[float]:
    """Score then learn each ``x`` (as the engine does); the scores."""
    scores = []
    for x in xs:
        scores.append(det.score_one(x))
        det.learn_one(x)
    return scores


def _shuffled(x: dict[str, float], rng: random.Random) -> dict[str, float]:
    items = list(x.items())
    rng.shuffle(items)
    return dict(items)


def _require(ok: object, message: str) -> None:
    """``assert ok, message`` that ``python -O`` does not strip."""
    if not ok:
        raise AssertionError(message)


def _same(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


# --------------------------------------------------------------------------- the checks


def check_protocol(det: Detector) -> None:
    """The :class:`~detectors.base.Detector` attributes, present and typed."""
    _require(isinstance(det, Detector), (
        f"{det!r}: lacks part of the Detector protocol (name, version, view, entity_type, "
        "kind, learn_one, score_one, threshold, explain)"))
    for attr in ("name", "version", "view", "entity_type", "kind"):
        value = getattr(det, attr)
        _require(isinstance(value, str) and value, (
            f"{det!r}: `{attr}` is {value!r}, not a non-empty string"))
    _require(re.fullmatch(r"[a-z][a-z0-9_]*", det.name), (
        f"{det.name}: name is not snake_case (it is the alert's `detector` before the @)"))
    _require(det.kind in ("rule", "model"), f"{det.name}: kind {det.kind!r} is not rule or model")
    _require(det.view in ALL_VIEWS, f"{det.name}: view {det.view!r} is not one of {ALL_VIEWS}")
    _require(det.entity_type in ENTITY_TYPES, (
        f"{det.name}: entity_type {det.entity_type!r} is not one of {ENTITY_TYPES}"))
    t = det.threshold()
    _require(isinstance(t, float) and math.isfinite(t) and t > 0.0, (
        f"{det.name}: threshold() gave {t!r}, not a positive finite float"))
    feature_names(det)


_EXAMPLES = re.compile(r"^Examples\n-{8,}\n(?:.*\n)*?\s*>>> ", re.MULTILINE)


def check_docstring(det: Detector) -> None:
    """A class docstring, and a numpydoc ``Examples`` section with doctests in
    the class's or its module's docstring (where this project keeps them)."""
    cls = type(det)
    doc = inspect.cleandoc(cls.__doc__ or "")  # its own: getdoc would inherit one
    _require(doc, f"{det.name}: {cls.__qualname__} has no docstring")
    module = sys.modules.get(cls.__module__)
    texts = [doc, inspect.getdoc(module) or ""]
    _require(any(_EXAMPLES.search(t + "\n") for t in texts), (
        f"{det.name}: neither {cls.__qualname__} nor {cls.__module__} has a numpydoc "
        "'Examples\\n--------' section with a doctest (>>>)"))


def check_scores_in_range(det: Detector) -> None:
    """Every score, before and after learning, a float in ``[0, 1]``."""
    for x in _samples(det):
        s = det.score_one(x)
        _require(isinstance(s, float) and 0.0 <= s <= 1.0, (
            f"{det.name}: score_one gave {s!r}, not a float in [0, 1]"))
        det.learn_one(x)


def check_deterministic(det: Detector) -> None:
    """Two fresh copies fed the same seeded input give the same output."""
    twin = clone_detector(det)
    xs = _samples(det)
    a = _drive(det, xs)
    b = _drive(twin, [dict(x) for x in xs])
    diff = [i for i, (p, q) in enumerate(zip(a, b, strict=True)) if not _same(p, q)]
    if diff:
        raise AssertionError(f"{det.name}: two fresh copies disagree on the same input, first "
                             f"at sample {diff[0]} ({a[diff[0]]} != {b[diff[0]]})")
    _require(det.threshold() == twin.threshold(), (
        f"{det.name}: thresholds differ on the same input "
        f"({det.threshold()} != {twin.threshold()})"))


def check_pickle_round_trip(det: Detector) -> None:
    """Pickled halfway (an engine snapshot pickles its models), the copy
    scores, learns, calibrates and explains as the original does afterwards."""
    xs = _samples(det)
    half = len(xs) // 2
    _drive(det, xs[:half])
    try:
        data = pickle.dumps(det, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:  # noqa: BLE001 - the message is the finding
        raise AssertionError(f"{det.name}: cannot be pickled: {exc!r}") from exc
    copy: Detector = pickle.loads(data)
    _require(type(copy) is type(det), f"{det.name}: unpickled as {type(copy).__name__}")
    _require(copy.threshold() == det.threshold(), (
        f"{det.name}: threshold {copy.threshold()} after the round trip, {det.threshold()} before"))
    for i, x in enumerate(xs[half:], half):
        a, b = det.score_one(x), copy.score_one(dict(x))
        _require(_same(a, b), (f"{det.name}: after a pickle round trip, sample {i} scores {b}, "
                             f"the original {a}"))
        det.learn_one(x)
        copy.learn_one(dict(x))
    _require(copy.threshold() == det.threshold(), (
        f"{det.name}: calibration drifted after a pickle round trip "
        f"({copy.threshold()} != {det.threshold()})"))
    x = xs[-1]
    _require(copy.explain(dict(x)) == det.explain(x), (
        f"{det.name}: explain differs after a pickle round trip"))


def check_feature_order(det: Detector) -> None:
    """The same features in a shuffled dict order give the same result."""
    twin = clone_detector(det)
    rng = random.Random(_SEED + 1)
    for i, x in enumerate(_samples(det)):
        y = _shuffled(x, rng)
        a, b = det.score_one(x), twin.score_one(y)
        _require(_same(a, b), (f"{det.name}: sample {i} scores {a} in one key order and {b} in "
                             f"another ({list(x)} vs {list(y)})"))
        det.learn_one(x)
        twin.learn_one(y)
        if i % 40 == 0:
            _require(det.explain(x) == twin.explain(_shuffled(x, rng)), (
                f"{det.name}: explain of sample {i} depends on the features' order"))
    _require(det.threshold() == twin.threshold(), (
        f"{det.name}: threshold depends on the order of the features learned"))


def check_missing_features(det: Detector) -> None:
    """Missing, zero and NaN features count as no evidence; nothing raises."""
    names = feature_names(det)
    for label, x in (("no features", {}),
                     ("all features 0", dict.fromkeys(names, 0.0)),
                     ("all features NaN", dict.fromkeys(names, float("nan"))),
                     ("half the features", {f: 1.0 for f in names[::2]})):
        try:
            s = det.score_one(x)
            reasons = det.explain(x)
            det.learn_one(x)
        except Exception as exc:  # noqa: BLE001 - the message is the finding
            raise AssertionError(f"{det.name}: raised {exc!r} on {label}") from exc
        _require(isinstance(s, float) and 0.0 <= s <= 1.0, (
            f"{det.name}: score {s!r} on {label}, not in [0, 1]"))
        _require(isinstance(reasons, list), f"{det.name}: explain gave {type(reasons).__name__}")
        if det.kind == "rule" and label in ("no features", "all features 0"):
            _require(s < det.threshold(), f"{det.name}: alerts ({s}) on {label}")
    if det.kind == "rule":
        _require(det.score_one({}) == 0.0, f"{det.name}: a rule must score 0 with no features")


def check_explain(det: Detector) -> None:
    """``explain`` gives a non-empty list of contract reasons."""
    x = dict.fromkeys(feature_names(det), 5.0)
    reasons = det.explain(x)
    _require(reasons, f"{det.name}: explain gave no reason")
    for r in reasons:
        _require(isinstance(r, Reason), f"{det.name}: explain gave {r!r}, not a Reason")
        _require(isinstance(r.code, str) and re.fullmatch(r"[a-z][a-z0-9_]*", r.code), (
            f"{det.name}: reason code {r.code!r} is not snake_case"))
        _require(isinstance(r.detail, str) and r.detail, f"{det.name}: reason {r.code} has no detail")
        d: dict[str, Any] = r.to_dict()
        _require(set(d) == {"code", "detail", "value", "threshold"}, (
            f"{det.name}: reason {r.code} serialises to {sorted(d)}"))
        _require(math.isfinite(d["value"]) and math.isfinite(float(d["threshold"])), (
            f"{det.name}: reason {r.code} has a non-finite value or threshold"))


_CHECKS: tuple[Check, ...] = (
    check_protocol, check_docstring, check_scores_in_range, check_deterministic,
    check_pickle_round_trip, check_feature_order, check_missing_features, check_explain,
)


def yield_checks(det: Detector) -> Iterator[Check]:
    """The checks that apply to ``det``, each a function of a detector; for
    ``pytest.mark.parametrize`` by ``check.__name__``."""
    del det  # every check applies to every detector, for now
    yield from _CHECKS


def check_detector(det: Detector) -> None:
    """Run every check of :func:`yield_checks` on a fresh copy of ``det``
    (:func:`clone_detector`); the first failure raises AssertionError."""
    for check in yield_checks(det):
        check(clone_detector(det))
