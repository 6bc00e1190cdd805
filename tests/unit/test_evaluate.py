"""Tests for detectors.evaluate: contract scoring rules, report and CLI."""

from __future__ import annotations

import argparse
import gzip
import re
from pathlib import Path

import orjson
import pytest

from detectors.evaluate import (
    AlertsError,
    Evaluation,
    LabelsError,
    add_arguments,
    compare_table,
    evaluate,
    format_table,
    load_alerts,
    load_labels,
    parse_labels,
    run,
    write_report,
)
from detectors.events import format_time, parse_time

T0 = parse_time("2026-11-24T12:00:00Z")  # c1 start
C1_END = T0 + 1800  # 12:30
C2_START = T0 + 7200  # 14:00
B1_START = T0 + 3600  # 13:00


def at(offset: float) -> str:
    return format_time(T0 + offset)


LABELS = {
    "campaigns": [
        {"id": "c1", "kind": "paid_task_likes", "start": at(0), "end": at(1800),
         "merchants": ["1900000042"], "targets": ["video:9"], "users": ["o-1", "o-2"],
         "ips": ["10.1.2.3", "o-ip-lookalike"], "devices": ["d-1"]},
        {"id": "c2", "kind": "paid_task_likes", "start": at(7200), "end": at(9000),
         "targets": ["post:77"]},
        {"id": "c3", "kind": "bot_farm", "start": at(20000), "end": at(21000),
         "users": ["o-9"]},
    ],
    "benign": [
        {"id": "b1", "kind": "coupon_campaign", "start": at(3600), "end": at(5400),
         "merchants": ["1900000007"], "targets": ["post:3"]},
        {"id": "b2", "kind": "viral_post", "start": at(30000), "end": at(31000),
         "targets": ["post:5"]},
    ],
}


def alert(aid: str, etype: str, eid: str, end_offset: float, *, score: float = 0.8,
          severity: str = "warning", detector: str = "rules.burst/1") -> dict:
    return {
        "alert_id": aid,
        "entity": {"type": etype, "id": eid},
        "window": {"start": at(end_offset - 300), "end": at(end_offset)},
        "score": score,
        "severity": severity,
        "action": "review",
        "reasons": [{"code": "BURST", "detail": "x", "value": 1, "threshold": 0}],
        "evidence": {},
        "detector": detector,
        "emitted_at": "2026-11-24T15:00:00Z",
    }


@pytest.fixture
def labels():
    return parse_labels(LABELS)


def test_true_positive_and_delay(labels):
    ev = evaluate(labels, [alert("a1", "target", "video:9", 240),
                           alert("a2", "merchant", "1900000042", 120)])
    assert (ev.tp, ev.fp, ev.alerts) == (2, 0, 2)
    assert ev.detected == ["c1"]
    assert ev.missed == [] and ev.not_started == ["c2", "c3"]  # after the last alert
    assert ev.delays == {"c1": 120.0}  # earliest TP, not first in file
    assert ev.first_alert == {"c1": "a2"}
    assert ev.tp_alerts["c1"] == 2
    assert ev.precision == 1.0
    assert ev.recall == 1.0 and ev.f1 == 1.0


def test_campaigns_after_the_last_alert_have_not_started(labels):
    # the alerts run to c2's end + 5 min: c2 (14:00) is missed, c3 (17:33) had not started
    ev = evaluate(labels, [alert("a1", "target", "video:9", 240),
                           alert("x", "user", "nobody", 9300)])
    assert ev.detected == ["c1"] and ev.missed == ["c2"] and ev.not_started == ["c3"]
    assert ev.recall == pytest.approx(1 / 2)  # of the started campaigns
    assert ev.per_kind["bot_farm"] == {
        "campaigns": 1, "detected": 0, "missed": [], "not_started": ["c3"], "recall": 1.0,
        "median_delay": None,
    }
    assert ev.per_kind["paid_task_likes"]["missed"] == ["c2"]
    assert orjson.loads(orjson.dumps(ev.to_dict()))["not_started"] == ["c3"]
    text = format_table(ev, labels)
    assert "Campaigns (1/2 detected, 1 not started)" in text
    assert re.search(r"c2\s+paid_task_likes\s+NO", text)
    assert re.search(r"c3\s+bot_farm\s+not started", text)
    assert "1 campaign(s) start after the last alert" in text
    assert re.search(r"bot_farm\s+0/0\s+1.000", text)
    # an alert at or after a campaign's start makes it started
    assert evaluate(labels, [alert("y", "user", "nobody", 20000)]).missed == ["c1", "c2", "c3"]


def test_grace_boundary_exact_is_tp_just_after_is_fp(labels):
    exact = evaluate(labels, [alert("a", "user", "o-1", 1800 + 600)])
    assert (exact.tp, exact.fp) == (1, 0)
    assert exact.delays == {"c1": 2400.0}
    late = evaluate(labels, [alert("a", "user", "o-1", 1800 + 600.001)])
    assert (late.tp, late.fp) == (0, 1)
    assert late.detected == []


def test_at_start_is_tp_before_start_is_fp(labels):
    assert evaluate(labels, [alert("a", "device", "d-1", 0)]).tp == 1
    ev = evaluate(labels, [alert("a", "device", "d-1", -0.001)])
    assert (ev.tp, ev.fp) == (0, 1)


def test_entity_type_must_match_list(labels):
    # "o-ip-lookalike" is listed under ips only: a user alert on it is FP
    ev = evaluate(labels, [alert("a", "user", "o-ip-lookalike", 60),
                           alert("b", "ip", "o-ip-lookalike", 60),
                           alert("c", "bogus", "video:9", 60)])
    assert ev.tp == 1 and ev.fp == 2
    assert ev.per_entity_type["user"]["fp"] == 1
    assert ev.per_entity_type["ip"]["tp"] == 1
    assert ev.per_entity_type["bogus"]["fp"] == 1


def test_other_campaign_window_does_not_count(labels):
    # video:9 belongs to c1 only; an alert during c2 is FP
    ev = evaluate(labels, [alert("a", "target", "video:9", 7300)])
    assert ev.fp == 1 and ev.detected == []


def test_benign_false_alarms(labels):
    alerts = [
        alert("f1", "merchant", "1900000007", 3700),  # in b1 window
        alert("f2", "target", "post:3", 5400 + 600),  # b1 end + 10 min: still b1
        alert("f3", "target", "post:3", 5400 + 601),  # after: any-time only
        alert("f4", "target", "post:3", 100),  # before b1 starts: any-time only
        alert("f5", "user", "o-nobody", 3700),  # FP, not a benign entity
    ]
    ev = evaluate(labels, alerts)
    assert ev.fp == 5
    assert ev.false_alarms == {"b1": 2, "b2": 0}
    assert ev.false_alarms_total == 2
    assert ev.false_alarms_any_time == {"b1": 4, "b2": 0}


def test_tp_is_never_a_false_alarm():
    lab = parse_labels({
        "campaigns": [{"id": "c", "start": at(0), "end": at(600), "targets": ["t"]}],
        "benign": [{"id": "b", "start": at(0), "end": at(600), "targets": ["t"]}],
    })
    ev = evaluate(lab, [alert("a", "target", "t", 300)])
    assert ev.tp == 1 and ev.false_alarms == {"b": 0} and ev.false_alarms_any_time == {"b": 0}


def test_missed_campaigns_and_zero_alerts(labels):
    ev = evaluate(labels, [])
    assert ev.precision == 1.0  # defined as 1.0 with no alerts
    assert ev.recall == 0.0 and ev.f1 == 0.0
    assert ev.missed == ["c1", "c2", "c3"]
    assert ev.median_delay is None and ev.max_delay is None
    assert ev.per_kind["bot_farm"] == {
        "campaigns": 1, "detected": 0, "missed": ["c3"], "not_started": [], "recall": 0.0,
        "median_delay": None,
    }
    assert ev.not_started == []  # no alert, no time span: every campaign is missed


def test_median_max_delay_per_kind_and_detector(labels):
    alerts = [
        alert("a", "target", "video:9", 100, detector="rules/1"),
        alert("b", "target", "post:77", 7200 + 400, detector="model/2"),
        alert("c", "user", "o-9", 20000 + 900, detector="model/2"),
        alert("d", "user", "nobody", 50, detector="model/2"),
    ]
    ev = evaluate(labels, alerts)
    assert ev.delays == {"c1": 100.0, "c2": 400.0, "c3": 900.0}
    assert ev.median_delay == 400.0 and ev.max_delay == 900.0
    assert ev.recall == 1.0 and ev.precision == 0.75
    assert ev.per_kind["paid_task_likes"]["median_delay"] == 250.0
    assert ev.per_detector["model/2"] == {
        "alerts": 3, "tp": 2, "fp": 1, "precision": 2 / 3, "detected": ["c2", "c3"],
    }
    assert list(ev.per_detector) == ["model/2", "rules/1"]


def test_duplicates_and_invalid_window(labels):
    a = alert("a", "target", "video:9", 100)
    broken = alert("x", "target", "video:9", 100)
    broken["window"]["end"] = "not a time"
    ev = evaluate(labels, [a, dict(a), broken])
    assert ev.duplicates == 1 and ev.invalid == 1
    assert (ev.alerts, ev.tp, ev.fp) == (2, 1, 1)


def test_to_dict_is_json_and_deterministic(labels):
    alerts = [alert("b", "user", "zz", 10), alert("a", "target", "video:9", 100)]
    d1 = orjson.dumps(evaluate(labels, alerts).to_dict())
    d2 = orjson.dumps(evaluate(labels, list(alerts)).to_dict())
    assert d1 == d2
    assert orjson.loads(d1)["delays"] == {"c1": 100.0}


def test_format_table(labels):
    ev = evaluate(labels, [alert("a1", "target", "video:9", 245)])
    text = format_table(ev, labels)
    assert re.search(r"c1\s+paid_task_likes\s+yes\s+4m05s\s+1\s+a1", text)
    assert re.search(r"c2\s+paid_task_likes\s+not started", text)
    assert "b1" in text and "coupon_campaign" in text
    assert text.splitlines()[-1].startswith("precision 1.000  recall 1.000  F1 1.000")
    ev = evaluate(labels, [alert("a1", "target", "video:9", 245), alert("z", "user", "z", 30000)])
    text = format_table(ev, labels)
    assert re.search(r"c2\s+paid_task_likes\s+NO", text)
    assert text.splitlines()[-1].startswith("precision 0.500  recall 0.333  F1 0.400")


@pytest.mark.parametrize(
    "bad",
    [
        [],
        {"nothing": []},
        {"campaigns": {"id": "c"}},
        {"campaigns": [{"id": "c", "start": "2026-11-24T12:00:00", "end": at(0)}]},
        {"campaigns": [{"id": "c", "start": at(10), "end": at(0)}]},
        {"campaigns": [{"id": "c", "start": at(0), "end": at(1), "users": "o-1"}]},
        {"campaigns": [{"id": "c", "start": at(0), "end": at(1)},
                       {"id": "c", "start": at(0), "end": at(1)}]},
    ],
)
def test_malformed_labels(bad):
    with pytest.raises(LabelsError):
        parse_labels(bad)


def write_files(tmp_path: Path, alerts: list[dict], gz: bool = False) -> tuple[Path, Path]:
    lp = tmp_path / "labels.json"
    lp.write_bytes(orjson.dumps(LABELS))
    body = b"".join(orjson.dumps(a) + b"\n" for a in alerts) + b"\n"
    if gz:
        ap = tmp_path / "alerts.jsonl.gz"
        ap.write_bytes(gzip.compress(body))
    else:
        ap = tmp_path / "alerts.jsonl"
        ap.write_bytes(body)
    return lp, ap


def test_load_files_plain_and_gz(tmp_path):
    alerts = [alert("a1", "target", "video:9", 240), alert("a2", "user", "x", 5)]
    lp, ap = write_files(tmp_path, alerts, gz=True)
    assert load_alerts(ap) == alerts
    assert [c.id for c in load_labels(lp).campaigns] == ["c1", "c2", "c3"]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"alert_id": "a"}\n[1, 2]\n')
    with pytest.raises(AlertsError, match=":2:"):
        load_alerts(bad)
    with pytest.raises(LabelsError, match="not found"):
        load_labels(tmp_path / "nope.json")


def test_write_report(tmp_path, labels):
    alerts = [
        alert("a1", "target", "video:9", 240, severity="critical", score=0.95),
        alert("a2", "merchant", "1900000007", 3700, severity="info", score=0.3),
        alert("a3", "user", "o-<script>", 100, severity="weird", score=1.7),
    ]
    ev = evaluate(labels, alerts)
    out = tmp_path / "r" / "report.html"
    write_report(out, ev, labels, alerts, title="t & <b>")
    doc = out.read_text(encoding="utf-8")
    assert doc.startswith("<!DOCTYPE html>")
    assert "<script" not in doc and "t &amp; &lt;b&gt;" in doc
    assert "http" not in doc.replace("http://www.w3.org/2000/svg", "")  # self-contained
    # overall + one per campaign + one per benign event (plus the legend)
    n = len(labels.campaigns) + len(labels.benign) + 1
    assert doc.count('aria-label="timeline of ') == n - 1
    assert doc.count("<svg") == n + 1
    for c in labels.campaigns:
        assert f'id="campaign-{c.id}"' in doc
    js = orjson.loads((tmp_path / "r" / "report.json").read_bytes())
    assert js == orjson.loads(orjson.dumps(ev.to_dict()))
    # deterministic
    write_report(tmp_path / "again.html", ev, labels, alerts, title="t & <b>")
    assert (tmp_path / "again.html").read_text(encoding="utf-8") == doc


def parse_cli(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="likeguard evaluate")
    add_arguments(parser)
    return parser.parse_args(argv)


def test_cli_ok(tmp_path, capsys):
    lp, ap = write_files(tmp_path, [alert("a1", "target", "video:9", 240)])
    js = tmp_path / "ev.json"
    rep = tmp_path / "rep.html"
    code = run(parse_cli(["--labels", str(lp), "--alerts", str(ap), "--json", str(js),
                          "--report", str(rep)]))
    assert code == 0
    out = capsys.readouterr().out
    assert "precision 1.000" in out and "c1" in out
    assert orjson.loads(js.read_bytes())["detected"] == ["c1"]
    assert rep.exists() and rep.with_suffix(".json").exists()
    assert f"report written to {rep}" in out and f"figures written to {js}" in out
    assert "warning" not in capsys.readouterr().err


def test_cli_refuses_a_file_of_no_alerts(tmp_path, capsys):
    lp, _ = write_files(tmp_path, [])
    rec = tmp_path / "rec.jsonl"
    rec.write_text('{"topic": "likes", "partition": 0, "offset": 0, "payload": "{}"}\n')
    assert run(parse_cli(["--labels", str(lp), "--alerts", str(rec)])) == 2
    assert "no line is an alert" in (err := capsys.readouterr().err) and "kcat recording" in err
    other = tmp_path / "other.jsonl"
    other.write_text('{"campaigns": []}\n')
    assert run(parse_cli(["--labels", str(lp), "--alerts", str(other)])) == 2
    assert "not alerts" in capsys.readouterr().err


def test_cli_warns_when_alerts_and_labels_do_not_overlap(tmp_path, capsys):
    lp, ap = write_files(tmp_path, [alert("a1", "target", "video:9", 90 * 86400)])
    assert run(parse_cli(["--labels", str(lp), "--alerts", str(ap)])) == 0
    err = capsys.readouterr().err
    assert "warning: no alert ends within the labels' time span" in err


def test_cli_errors(tmp_path, capsys):
    lp, ap = write_files(tmp_path, [])
    assert run(parse_cli(["--labels", str(lp), "--alerts", str(tmp_path / "no.jsonl")])) == 2
    assert "alerts file not found" in capsys.readouterr().err
    assert run(parse_cli(["--labels", str(tmp_path / "no.json"), "--alerts", str(ap)])) == 2
    assert "labels file not found" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text('{"campaigns": [{"id": "c1", "start": "yesterday"}]}')
    assert run(parse_cli(["--labels", str(bad), "--alerts", str(ap)])) == 2
    err = capsys.readouterr().err
    assert "campaigns[0]" in err and "'c1'" in err


def test_compare_table(labels):
    rows = {
        "rules only": evaluate(labels, [alert("a", "target", "video:9", 60)]),
        "models only": evaluate(labels, [alert("a", "merchant", "1900000007", 3700)]),
        "both": Evaluation(),
    }
    lines = compare_table(rows).splitlines()
    assert lines[0].startswith("| configuration | precision | recall | F1 |")
    assert [ln.split("|")[1].strip() for ln in lines[2:]] == ["rules only", "models only", "both"]
    # c2 and c3 start after its one alert: not started, out of recall
    assert lines[2] == "| rules only | 1.000 | 1.000 | 1.000 | 1m00s | 0 | 1 |"
    assert lines[3] == "| models only | 0.000 | 0.000 | 0.000 | - | 1 | 1 |"


def test_overview_plot_of_many_campaigns_is_readable(tmp_path):
    import xml.etree.ElementTree as ET

    from detectors.evaluate import OVERVIEW_WIDTH, _text_width

    camps = [{"id": f"campaign-with-a-long-name-{i:02d}", "kind": "paid_task_likes",
              "start": at(i * 300), "end": at(i * 300 + 1800), "targets": [f"t{i}"]}
             for i in range(60)]
    lab = parse_labels({"campaigns": camps, "benign": [
        {"id": "b-viral", "start": at(600), "end": at(4000), "targets": ["v"]}]})
    alerts = [alert(f"a{i}", "target", f"t{i}", i * 300 + 120) for i in range(0, 60, 3)]
    out = tmp_path / "many.html"
    write_report(out, evaluate(lab, alerts), lab, alerts)
    doc = out.read_text(encoding="utf-8")
    svg_text = re.search(r'<svg[^>]*aria-label="all alerts".*?</svg>', doc, re.S).group(0)
    ns = "{http://www.w3.org/2000/svg}"
    svg = ET.fromstring(svg_text)
    # it takes the page's width, scaled from its own drawing width
    assert svg.get("width") == "100%" and "height" not in svg.attrib
    _, _, vw, vh = map(float, svg.get("viewBox").split())
    assert vw == OVERVIEW_WIDTH
    # text widths are known: one monospace font, one size
    assert "monospace" in svg.get("font-family") and not svg_text.count("font-size=") - 1
    # every span is named once, in a lane under the plot, linking to its timeline
    lanes = {}
    for a in svg.iter(f"{ns}a"):
        rect, text = a.find(f"{ns}rect"), a.find(f"{ns}text")
        x0, w, y = float(rect.get("x")), float(rect.get("width")), float(text.get("y"))
        tx = float(text.get("x"))
        assert 0 <= tx and tx + _text_width(text.text) <= vw and y <= vh  # inside the drawing
        assert a.get("href") in (f"#campaign-{text.text}", f"#benign-{text.text}")
        lanes.setdefault(y, []).append((min(x0, tx), max(x0 + w, tx + _text_width(text.text)),
                                        text.text))
    named = sorted(n for items in lanes.values() for _, _, n in items)
    assert named == sorted([c["id"] for c in camps] + ["b-viral"])
    for items in lanes.values():  # in a lane, no two bars or labels overlap
        items.sort()
        for (_, end, a), (start, _, b) in zip(items, items[1:], strict=False):
            assert end < start, (a, b)
    # tick labels, centred on their ticks, do not overlap either
    ticks = sorted((float(t.get("x")), t.text) for t in svg.iter(f"{ns}text")
                   if t.get("class") == "tick")
    assert len(ticks) >= 3
    for (x1, t1), (x2, t2) in zip(ticks, ticks[1:], strict=False):
        assert x2 - x1 > (_text_width(t1) + _text_width(t2)) / 2, (t1, t2)
    # the per-campaign timelines keep their fixed size
    assert 'aria-label="timeline of campaign-with-a-long-name-00"' in doc
