"""Alert objects, deterministic ids, severity ladder and suppression."""

from __future__ import annotations

from detectors.alerts import Alert, Suppressor, severity_for
from detectors.base import Reason
from detectors.events import parse_time


def _alert(detector: str = "device_farm@1", eid: str = "d1", start: float = 0.0,
           end: float = 60.0, score: float = 0.6) -> Alert:
    return Alert.build(detector, "device", eid, start, end, score,
                       [Reason("accounts_per_device", "accounts", 9, 6)],
                       {"accounts": 9}, [f"l-{i}" for i in range(40)])


def test_alert_id_depends_on_detector_entity_window_only() -> None:
    a, b = _alert(), _alert(score=0.9)
    assert a.alert_id == b.alert_id  # same evidence window -> same id
    assert _alert(eid="d2").alert_id != a.alert_id
    assert _alert(end=65.0).alert_id != a.alert_id
    assert _alert(detector="device_farm@2").alert_id != a.alert_id


def test_alert_dict_follows_contract() -> None:
    d = _alert().to_dict("2026-11-24T00:00:00Z")
    assert set(d) == {"alert_id", "entity", "window", "score", "severity", "action", "reasons",
                      "evidence", "detector", "emitted_at"}
    assert d["entity"] == {"type": "device", "id": "d1"}
    assert parse_time(d["window"]["end"]) - parse_time(d["window"]["start"]) == 60.0
    assert 0 <= d["score"] <= 1
    assert len(d["evidence"]["sample_ids"]) == 20
    assert d["reasons"][0] == {"code": "accounts_per_device", "detail": "accounts",
                               "value": 9, "threshold": 6}
    assert _alert().key == "device:d1"


def test_severity_ladder_escalates_with_evidence() -> None:
    levels = [severity_for(s, True, "merchant") for s in (0.5, 0.75, 0.9)]
    assert [lv[:2] for lv in levels] == [("warning", "clear_likes"),
                                          ("critical", "limit_payments"), ("critical", "ban")]
    assert [lv[2] for lv in levels] == sorted(lv[2] for lv in levels)
    assert severity_for(0.99, False, "ip")[:2] == ("info", "review")


def test_suppression_first_escalation_reminder_and_new_episode() -> None:
    s = Suppressor(window=300, renotify=1800)
    fired = [t for t, lvl in [(0, 2), (5, 2), (10, 2), (15, 4), (20, 3), (1815, 4), (1820, 4)]
             if s.admit("device", "device", "d1", lvl, t)]
    assert fired == [0, 15, 1815]
    assert s.admit("device", "device", "d1", 2, 1820 + 301)  # quiet for a window: a new episode
    s.sweep(5000)
    assert len(s) == 0


def test_campaign_gives_few_alerts() -> None:
    s = Suppressor(window=300, renotify=1800)
    n = sum(s.admit("merchant", "merchant", "m1", 2 + (t > 600) + (t > 1200), t) for t in range(0, 3600, 5))
    assert 3 <= n <= 6
