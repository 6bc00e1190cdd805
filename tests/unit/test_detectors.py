"""One shared check of every detector: protocol, determinism, range, missing features."""

from __future__ import annotations

import math
import random

import pytest

from detectors.base import Detector, Reason
from detectors.config import EngineConfig
from detectors.models import MODEL_FEATURES, default_models
from detectors.rules import RULES


def _all_detectors() -> list[Detector]:
    cfg = EngineConfig(warmup=50)
    return [r() for r in RULES] + default_models(cfg)


def _features(det: Detector) -> list[str]:
    if det.kind == "model":
        return list(det.features)  # type: ignore[attr-defined]
    return sorted({c.feature for path in det.paths for c in path})  # type: ignore[attr-defined]


def _sample(rng: random.Random, names: list[str]) -> dict[str, float]:
    return {n: rng.choice([0.0, rng.random(), rng.random() * 3, float(rng.randint(0, 300))])
            for n in names}


DETECTORS = _all_detectors()


@pytest.mark.parametrize("det", DETECTORS, ids=lambda d: d.name)
def test_protocol(det: Detector) -> None:
    assert isinstance(det, Detector)
    assert det.kind in ("rule", "model")
    assert det.entity_type in ("merchant", "target", "user", "ip", "device")


@pytest.mark.parametrize("det", DETECTORS, ids=lambda d: d.name)
def test_scores_in_range_and_deterministic(det: Detector) -> None:
    twin = det.clone() if det.kind == "model" else type(det)()  # type: ignore[attr-defined]
    rng = random.Random(11)
    names = _features(det)
    for _ in range(300):
        x = _sample(rng, names)
        a, b = det.score_one(x), twin.score_one(dict(x))
        assert 0.0 <= a <= 1.0 and not math.isnan(a)
        assert a == b
        det.learn_one(x)
        twin.learn_one(dict(x))
    assert det.threshold() == twin.threshold()


@pytest.mark.parametrize("det", DETECTORS, ids=lambda d: d.name)
def test_missing_features_are_no_evidence(det: Detector) -> None:
    s = det.score_one({})
    assert 0.0 <= s <= 1.0
    if det.kind == "rule":
        assert s == 0.0  # nothing known: no alert
    partial = {n: float("nan") for n in _features(det)}
    assert 0.0 <= det.score_one(partial) <= 1.0


@pytest.mark.parametrize("det", DETECTORS, ids=lambda d: d.name)
def test_explain_gives_contract_reasons(det: Detector) -> None:
    x = {n: 5.0 for n in _features(det)}
    reasons = det.explain(x)
    assert reasons and all(isinstance(r, Reason) and r.code and r.detail for r in reasons)
    for r in reasons:
        d = r.to_dict()
        assert set(d) == {"code", "detail", "value", "threshold"}


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.name)
def test_rule_fires_exactly_at_its_thresholds(rule: type) -> None:
    for path in rule.paths:
        x = {c.feature: c.threshold for c in path}
        assert rule().score_one(x) == pytest.approx(0.5)
        weaker = dict(x)
        c = path[0]
        weaker[c.feature] = c.threshold * (0.5 if c.op == ">=" else 2.0)
        others = [p for p in rule.paths if p is not path]
        if not others:
            assert rule().score_one(weaker) < 0.5


def test_models_cannot_alert_before_warmup() -> None:
    m = default_models(EngineConfig(warmup=100))[0]
    for i in range(99):
        x = {f: float(i % 7) for f in m.features}
        m.score_one(x)
        m.learn_one(x)
    assert not m.warm and m.threshold() > 1.0
    m.learn_one({})
    assert m.warm and m.threshold() <= 1.0


def test_every_model_view_has_rules_to_corroborate() -> None:
    rule_keys = {(r.view, r.entity_type) for r in RULES}
    assert set(MODEL_FEATURES) <= rule_keys
