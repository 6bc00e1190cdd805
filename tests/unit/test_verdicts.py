"""Moderators' verdicts: the record, and what a dismissal or confirmation does."""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from pathlib import Path

import orjson
import pytest

from detectors.alerts import Alert
from detectors.config import EngineConfig
from detectors.engine import Engine
from detectors.evaluate import evaluate, load_labels
from detectors.events import Like, Payment
from detectors.moderation import (
    RETURN_SUFFIX,
    SimulatedModerator,
    moderated_replay,
    with_returns,
)
from detectors.parsing import BadRecord
from detectors.recording import read_records
from detectors.replay import ReplaySummary, iter_events
from detectors.simulate import SimConfig, simulate
from detectors.verdicts import DEFAULT_BAR, MAX_REMEMBERED_IDS, Verdict, VerdictBook, parse_verdict
from streams.cli import main as cli_main
from tests.helpers import T0, like, like_json, payment, with_path

KEY = b"verdict-tests-checkpoint-key-0123456789"
IP = "6.6.6.6"


def _farm(hours: float = 2.0, escalate_at: float | None = None) -> list[Like]:
    """Thirty accounts behind one IP like one post all day, one every 6 s: an
    IP farm raising a reminder every ``renotify``. From ``escalate_at`` on, 120
    accounts on ten phones like four times as fast: evidence of a critical
    alert."""
    out, t, i = [], T0, 0
    while t < T0 + hours * 3600:
        busy = escalate_at is not None and t >= T0 + escalate_at
        out.append(like(i, f"s{i % (120 if busy else 30)}", "post:news", "m9", t, ip=IP,
                        device=f"d{i % (10 if busy else 30)}"))
        t += 1.5 if busy else 6.0
        i += 1
    return out


def _run(events: list[Like], verdicts: Sequence[Verdict] = (), cfg: EngineConfig | None = None,
         cut: int | None = None) -> tuple[list[Alert], Engine]:
    """Alerts of a rules-only engine; with ``cut``, snapshot and restore there."""
    eng = Engine(cfg or EngineConfig(mode="rules"))
    for v in verdicts:
        eng.verdict(v)
    alerts = []
    for n, ev in enumerate(events):
        if n == cut:
            eng = Engine.restore(eng.snapshot(key=KEY), key=KEY)
        alerts += eng.process(ev)
    return alerts + eng.flush(), eng


def _on_ip(alerts: list[Alert]) -> list[tuple[float, int]]:
    return [(a.window_end - T0, a.level) for a in alerts if a.entity_id == IP]


def _dismiss(alert: Alert, after: float = 60.0, verdict: str = "dismissed",
             alert_id: str | None = None, detector: str | None = None) -> Verdict:
    return Verdict(alert.alert_id if alert_id is None else alert_id, alert.entity_type,
                   alert.entity_id, verdict, "reviewer-1", alert.window_end + after,
                   detector=detector)


@pytest.fixture(scope="module")
def plain() -> list[Alert]:
    alerts, _ = _run(_farm())
    assert len(_on_ip(alerts)) >= 3, "the farm must be re-alerted for the test to mean anything"
    return alerts


def _first_ip(alerts: list[Alert]) -> Alert:
    return next(a for a in alerts if a.entity_id == IP)


def _office(next_merchant: str = "m9") -> list[Like]:
    """Thirty staff behind the office's address like their employer's post
    for an hour, one every 6 s, then its next post (of ``next_merchant``)."""
    out, t, i = [], T0, 0
    while t < T0 + 2 * 3600:
        first = t < T0 + 3600
        out.append(like(i, f"s{i % 30}", "post:news" if first else "post:next",
                        "m9" if first else next_merchant, t, ip=IP, device=f"d{i % 30}"))
        t += 6.0
        i += 1
    return out


def _on(target: str, alerts: list[Alert]) -> list[str]:
    return [a.alert_id for a in alerts if a.entity_id == target and a.detector == "farm_target@1"]


# ---------------------------------------------------------------------- the record

VALID = {"alert_id": "a1", "entity": {"type": "ip", "id": IP}, "verdict": "dismissed",
         "reviewer": "r1", "decided_at": "2026-11-24T12:00:00+08:00",
         "reason": "office NAT", "detector": "ip_farm@1"}


def test_a_verdict_round_trips_through_its_json() -> None:
    v = parse_verdict(orjson.dumps(VALID))
    assert (v.alert_id, v.entity_type, v.entity_id, v.verdict, v.reason, v.detector) == \
        ("a1", "ip", IP, "dismissed", "office NAT", "ip_farm@1")
    assert v.decided_at == T0 + 365 * 86400 - 12 * 3600 and v.key == f"ip:{IP}"
    assert parse_verdict(v.to_json()) == v


@pytest.mark.parametrize(("path", "value", "reason"), [
    ("alert_id", None, "missing_field"),
    ("reviewer", None, "missing_field"),
    ("decided_at", None, "missing_field"),
    ("entity", "ip:6.6.6.6", "wrong_type"),
    ("entity.id", 7, "wrong_type"),
    ("entity.type", "post", "out_of_range"),
    ("verdict", "maybe", "out_of_range"),
    ("verdict", "", "out_of_range"),
    ("reviewer", "r" * 300, "out_of_range"),
    ("decided_at", "yesterday", "bad_time"),
    ("decided_at", "1970-01-01T00:00:00Z", "bad_time"),
])
def test_a_bad_verdict_is_rejected_with_its_reason(path: str, value: object, reason: str) -> None:
    doc = with_path(VALID, path) if value is None else with_path(VALID, path, value)
    with pytest.raises(BadRecord) as exc:
        parse_verdict(orjson.dumps(doc))
    assert exc.value.reason == reason, exc.value.detail


@pytest.mark.parametrize(("value", "reason"), [
    (b"\xff", "not_utf8"), (b"{", "not_json"), (b"[1]", "not_object"), (None, "missing_field"),
])
def test_a_verdict_that_is_no_object_is_rejected(value: bytes | None, reason: str) -> None:
    with pytest.raises(BadRecord) as exc:
        parse_verdict(value)
    assert exc.value.reason == reason


# ---------------------------------------------------------------------- dismissals

def test_a_dismissal_quiets_its_detector_on_its_entity(plain: list[Alert]) -> None:
    first = _first_ip(plain)
    alerts, eng = _run(_farm(), [_dismiss(first)])
    assert _on_ip(alerts) == _on_ip([first])  # no reminder of the dismissed farm
    # other detectors and entities alert as before
    others = [a.alert_id for a in plain if a.entity_id != IP]
    assert others and [a.alert_id for a in alerts if a.entity_id != IP] == others
    assert eng.verdicts.counts["matched"] == 1 and eng.verdicts.counts["held"] > 0


def test_evidence_past_the_dismissed_level_breaks_through(plain: list[Alert]) -> None:
    first = _first_ip(plain)
    alerts, _ = _run(_farm(escalate_at=4000), [_dismiss(first)])
    after = [(t, lvl) for t, lvl in _on_ip(alerts) if t > first.window_end - T0]
    assert after, "the escalated farm must alert again"
    assert all(lvl > first.level for _, lvl in after), after
    assert min(t for t, _ in after) >= 4000


def test_a_dismissal_ends_after_dismiss_for(plain: list[Alert]) -> None:
    first = _first_ip(plain)
    cfg = EngineConfig(mode="rules", dismiss_for=1200)
    alerts, _ = _run(_farm(), [_dismiss(first)], cfg)
    ends = first.window_end - T0 + 60 + 1200
    times = [t for t, _ in _on_ip(alerts)]
    assert times[0] == first.window_end - T0
    # a busy key is evaluated at least every reeval seconds
    assert times[1] >= ends and times[1] - ends <= cfg.reeval + cfg.tick, times


def test_a_later_confirmation_lifts_the_dismissal(plain: list[Alert]) -> None:
    first = _first_ip(plain)
    confirmed = _dismiss(first, after=2000, verdict="confirmed")
    alerts, _ = _run(_farm(), [confirmed, _dismiss(first)])  # order given does not matter
    times = [t for t, _ in _on_ip(alerts)]
    lifted = first.window_end - T0 + 2000
    cfg = EngineConfig()
    assert len(times) >= 2 and 0 <= times[1] - lifted <= cfg.reeval + cfg.tick, times


def test_a_dismissed_target_quiets_its_detector_on_the_merchants_other_targets() -> None:
    """An office likes its employer's next post as it liked the dismissed one:
    the dismissal holds the detector on the merchant's other targets too
    (with the verdict's ``evidence.merchant`` where the alert is not
    remembered, as in a partition that never saw it), not on another
    merchant's, and not with ``dismiss_merchant_for`` 0."""
    plain, _ = _run(_office())
    first = next(a for a in plain if a.entity_id == "post:news")
    assert first.detector == "farm_target@1" and first.evidence["merchant"] == "m9"
    assert _on("post:news", plain)[1:] and _on("post:next", plain), "the office must re-alert"
    dismissal = Verdict.of_alert(first.to_dict(), "dismissed", "r1", first.window_end + 60)
    assert dismissal.merchant == "m9"
    unknown = Verdict.of_alert({**first.to_dict(), "alert_id": "gone"}, "dismissed", "r1",
                               first.window_end + 60)
    for v in (dismissal, unknown):
        alerts, eng = _run(_office(), [v])
        assert _on("post:news", alerts) == [first.alert_id] and _on("post:next", alerts) == []
        others = [a.alert_id for a in plain if a.detector != "farm_target@1"]
        assert others and [a.alert_id for a in alerts if a.detector != "farm_target@1"] == others
    held, _ = _run(_office(), [dismissal])
    restored, _ = _run(_office(), [dismissal], cut=len(_office()) * 3 // 4)  # past a restart
    assert [a.alert_id for a in restored] == [a.alert_id for a in held]
    alerts, _ = _run(_office(), [dismissal], EngineConfig(mode="rules", dismiss_merchant_for=0))
    assert _on("post:next", alerts) == _on("post:next", plain)
    elsewhere, _ = _run(_office(next_merchant="m8"))
    alerts, _ = _run(_office(next_merchant="m8"), [dismissal])
    assert _on("post:next", alerts) == _on("post:next", elsewhere) != []


def test_a_confirmed_sibling_lifts_the_merchants_dismissal() -> None:
    """The latest decision wins for the merchant as for the target: a
    confirmation of the detector on another of its targets ends the hold."""
    plain, _ = _run(_office())
    first = next(a for a in plain if a.entity_id == "post:news")
    nxt = next(a for a in plain if a.entity_id == "post:next" and a.detector == first.detector)
    dismissal = Verdict.of_alert(first.to_dict(), "dismissed", "r1", first.window_end + 60)
    confirmed = Verdict.of_alert({**nxt.to_dict(), "alert_id": "other"}, "confirmed", "r1",
                                 nxt.window_end)
    alerts, _ = _run(_office(), [dismissal, confirmed])
    assert _on("post:next", alerts) and _on("post:news", alerts) == [first.alert_id]


def test_a_verdict_applied_twice_changes_nothing(plain: list[Alert]) -> None:
    v = _dismiss(_first_ip(plain))
    once, _ = _run(_farm(), [v])
    twice, _ = _run(_farm(), [v, v])
    assert [a.alert_id for a in once] == [a.alert_id for a in twice]


def test_dismissals_survive_a_snapshot(plain: list[Alert]) -> None:
    v = _dismiss(_first_ip(plain))
    events = _farm()
    whole, _ = _run(events, [v])
    for cut in (10, len(events) // 2):  # before the verdict's time, and after it
        restored, eng = _run(events, [v], cut=cut)
        assert [a.alert_id for a in restored] == [a.alert_id for a in whole]
        assert eng.verdicts.counts["matched"] == 1


def test_a_verdict_for_an_alert_not_remembered(plain: list[Alert]) -> None:
    """An alert older than the engine's memory: the verdict's ``detector``
    names what to quiet; without it, every detector on the entity is held up
    to the default bar."""
    first = _first_ip(plain)
    for detector in ("ip_farm@1", None):
        alerts, eng = _run(_farm(), [_dismiss(first, alert_id="gone", detector=detector)])
        assert _on_ip(alerts) == _on_ip([first]), detector
        assert eng.verdicts.counts["matched"] == 0 and eng.verdicts.counts["dismissed"] == 1
    alerts, _ = _run(_farm(), [_dismiss(first, alert_id="gone", detector="device_farm@1")])
    assert _on_ip(alerts) == _on_ip(plain)  # another detector's dismissal holds nothing here


def test_the_book_forgets_with_event_time() -> None:
    book = VerdictBook(dismiss_for=3600, detectors={"ip_farm@1"})
    book.note_raised("a1", "ip_farm@1", 2, 0.0)
    book.add(Verdict("a1", "ip", IP, "dismissed", "r", 10.0))
    book.add(Verdict("x", "ip", "1.1.1.1", "dismissed", "r", 20.0, detector="lockstep@1"))
    book.add(Verdict("y", "ip", "2.2.2.2", "dismissed", "r", 30.0))
    assert book.apply_due(25.0) == 2 and len(book.pending) == 1
    assert set(book.quiet) == {("ip_farm@1", "ip", IP)}  # lockstep is not hosted here
    assert book.apply_due(30.0) == 1
    assert book.quiet[(None, "ip", "2.2.2.2")] == (3630.0, DEFAULT_BAR)
    assert book.holds("ip_farm@1", "ip", "2.2.2.2", DEFAULT_BAR, 100.0)
    assert not book.holds("ip_farm@1", "ip", "2.2.2.2", DEFAULT_BAR + 1, 100.0)
    book.sweep(3700.0)
    assert len(book) == 0


# ---------------------------------------------------------------------- replay

def test_replay_takes_a_verdicts_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rec = tmp_path / "r.jsonl.gz"
    simulate(SimConfig(seed=4242, duration=2400, rate=20, campaigns=5, benign=5,
                       partitions=3), rec, tmp_path / "l.json")
    plain = tmp_path / "plain.jsonl"
    assert cli_main(["replay", str(rec), "--alerts-out", str(plain)]) == 0
    before = [orjson.loads(line) for line in plain.read_text().splitlines()]
    assert before
    first = before[0]
    verdicts = tmp_path / "v.jsonl"
    v = {"alert_id": first["alert_id"], "entity": first["entity"], "verdict": "dismissed",
         "reviewer": "r1", "decided_at": first["window"]["end"]}
    # a verdict on an alert this run never raised (older than the engine's
    # memory) is applied all the same, and counted apart
    stranger = dict(v, alert_id="not-raised-here", entity={"type": "ip", "id": "192.0.2.9"})
    verdicts.write_text(orjson.dumps(v).decode() + "\n" + orjson.dumps(stranger).decode()
                        + "\n\n{not json\n")
    out = tmp_path / "after.jsonl"
    assert cli_main(["replay", str(rec), "--alerts-out", str(out),
                     "--verdicts", str(verdicts)]) == 0
    printed = capsys.readouterr()
    assert "1 bad verdict lines skipped (not_json: 1)" in printed.err
    assert "2 verdicts (1 for alerts not remembered)" in printed.out
    after = [orjson.loads(line) for line in out.read_text().splitlines()]

    def same(a: dict) -> bool:
        return (a["detector"], a["entity"]) == (first["detector"], first["entity"])

    # the dismissed alert's level and below are gone from its detector and entity
    assert [a["alert_id"] for a in after if not same(a)] == \
        [a["alert_id"] for a in before if not same(a)]
    kept = [a for a in after if same(a)]
    assert kept[0]["alert_id"] == first["alert_id"]
    assert all(a["severity"] == "critical" for a in kept[1:])


# ---------------------------------------------------------------------- the loop

def test_a_moderator_in_the_loop_quiets_a_look_alike_and_keeps_the_campaign(
        tmp_path: Path) -> None:
    """An office NAT all morning (labelled honest) and a device farm at 07:00
    (labelled a campaign): with a moderator answering every alert ten minutes
    later, the office's reminders stop and the farm is found as before."""
    from detectors.evaluate import evaluate, parse_labels
    from detectors.events import format_time
    from detectors.moderation import (
        SimulatedModerator,
        false_alarms_after_verdict,
        moderated_replay,
    )
    from detectors.recording import RecordingWriter

    events = _farm(hours=3.0)
    farm_at = T0 + 3600
    events += [like(f"f{i}", f"farm{i}", f"post:{i % 3}", "m7", farm_at + i * 1.5,
                    ip=f"10.9.{i}.1", device="d-farm") for i in range(40)]
    events.sort(key=lambda e: e.ts)
    rec = tmp_path / "r.jsonl"
    with RecordingWriter(rec) as w:
        for ev in events:
            w.write("likes", like_json(like_id=ev.like_id, user_openid=ev.user,
                                       target_id=ev.target, owner_mchid=ev.mchid,
                                       ts=format_time(ev.ts), client_ip=ev.ip,
                                       device_id=ev.device).decode(), ts_ms=int(ev.ts * 1000))
    labels = parse_labels({
        "campaigns": [{"id": "c-farm", "kind": "device_farm", "start": format_time(farm_at),
                       "end": format_time(farm_at + 60), "devices": ["d-farm"]}],
        "benign": [{"id": "b-office", "kind": "office_nat", "start": format_time(T0),
                    "end": format_time(T0 + 3 * 3600), "ips": [IP],
                    "targets": ["post:news"]}]})
    silent = SimulatedModerator(labels, delay=1e9, error_rate=0.0)
    plain, _, _ = moderated_replay(rec, silent)
    moderator = SimulatedModerator(labels, delay=600, error_rate=0.0)
    looped, verdicts, _ = moderated_replay(rec, moderator)
    before, after = evaluate(labels, plain), evaluate(labels, looped)
    assert before.detected == after.detected == ["c-farm"]
    assert after.delays == before.delays
    # the office raised its first alerts and a reminder every half hour; now only the first
    assert before.false_alarms_total >= 6
    assert after.false_alarms_total == 2  # the IP's and the post's first alerts
    assert {v.verdict for v in verdicts} == {"confirmed", "dismissed"}
    # none came after a verdict on the office; without the verdicts' effect, the reminders did
    assert false_alarms_after_verdict(labels, looped, verdicts) == 0
    assert false_alarms_after_verdict(labels, plain, verdicts) == before.false_alarms_total - 2
    again, _, _ = moderated_replay(rec, SimulatedModerator(labels, delay=600, error_rate=0.0))
    assert [a["alert_id"] for a in again] == [a["alert_id"] for a in looped]  # deterministic


def test_the_moderators_mistakes_follow_the_alert_not_the_order_of_review() -> None:
    """Which alerts get the wrong answer depends on their ids and the seed
    only, so two runs that raise some alerts alike answer those alike."""
    from detectors.alerts import Alert
    from detectors.evaluate import parse_labels
    from detectors.moderation import SimulatedModerator

    labels = parse_labels({"campaigns": [], "benign": []})
    alerts = [Alert.build("ip_farm@1", "ip", f"10.0.{i // 250}.{i % 250}", T0, T0 + i,
                          0.6, [], {}, []) for i in range(4000)]
    forward = SimulatedModerator(labels, error_rate=0.05, seed=7)
    answers = {a.alert_id: forward.review(a).verdict for a in alerts}
    backward = SimulatedModerator(labels, error_rate=0.05, seed=7)
    some = alerts[::-3]  # another run, raising a third of them in another order
    assert all(backward.review(a).verdict == answers[a.alert_id] for a in some)
    assert 0.035 < forward.wrong / len(alerts) < 0.065  # nothing is a campaign: wrong = confirmed
    assert sum(v == "confirmed" for v in answers.values()) == forward.wrong
    other = SimulatedModerator(labels, error_rate=0.05, seed=8)
    assert {a.alert_id for a in alerts if other.mistaken(a.alert_id)} != {
        a.alert_id for a in alerts if forward.mistaken(a.alert_id)}


def _burst(ip: str, start: float, devices: int) -> list[Like]:
    """Thirty accounts behind ``ip`` like one post within three minutes, on
    ``devices`` phones (30: one each, as an office; fewer: a farm's)."""
    return [like(f"{ip}-{i}", f"{ip}-u{i}", f"post:{ip}", "m5", start + i * 6, ip=ip,
                 device=f"{ip}-d{i % devices}") for i in range(30)]


def _ranked(cfg: EngineConfig) -> tuple[Engine, list[Alert], dict[str, Alert]]:
    """Moderators dismiss offices (one phone per account) and confirm farms
    (five accounts per phone), four of each, both alerted as IP farms; then
    one more office and farm come. Returns the engine, the first eight IP
    alerts and the last two by address."""
    eng = Engine(cfg)
    alerts: list[Alert] = []

    def run(events: list[Like]) -> list[Alert]:
        got = []
        for ev in sorted(events, key=lambda e: e.ts):
            got += eng.process(ev)
        return got

    for k in range(4):
        t = T0 + k * 1200
        office, farm = f"10.0.{k}.1", f"10.1.{k}.1"
        got = run(_burst(office, t, 30) + _burst(farm, t + 300, 6))
        alerts += got
        for a in got:
            if a.entity_type == "ip":
                eng.verdict(Verdict(a.alert_id, "ip", a.entity_id,
                                    "dismissed" if a.entity_id == office else "confirmed",
                                    "r1", a.window_end + 60))
    t = T0 + 6000
    got = run(_burst("10.0.9.1", t, 30) + _burst("10.1.9.1", t + 300, 6)) + eng.flush()
    return (eng, [a for a in alerts if a.entity_type == "ip"],
            {a.entity_id: a for a in got if a.entity_type == "ip"})


def test_verdicts_teach_the_ranker_to_rank_look_alikes_down() -> None:
    """After four verdicts of each kind, the next office's warning comes as a
    review; the next farm's stays a warning."""
    eng, first, new = _ranked(EngineConfig(mode="rules", rank_below=0.2, rank_after=4))
    seen = {a.entity_id: a.severity for a in first}
    # alerted alike, as warnings, before the ranker had four verdicts of each kind
    assert len(seen) == 8 and set(seen.values()) == {"warning"}
    # one model per detector: the IP farm rule's
    assert eng.verdicts.ranker.seen == {("ip", "ip", "ip_farm@1"): [4, 4]}
    office_alert, farm_alert = new["10.0.9.1"], new["10.1.9.1"]
    assert (office_alert.severity, office_alert.action) == ("info", "review")
    assert office_alert.reasons[-1].code == "verdicts_dismiss_similar"
    assert office_alert.evidence["confirm_probability"] < 0.2
    assert farm_alert.severity == "warning" and farm_alert.evidence["confirm_probability"] >= 0.2


def test_the_ranker_leaves_a_rule_alone_whose_alerts_are_mostly_confirmed() -> None:
    """The same verdicts, but dismissals must be 60% of a detector's verdicts
    (they are 50%): nothing is ranked, the office's alert stays a warning."""
    _, _, new = _ranked(EngineConfig(mode="rules", rank_below=0.2, rank_after=4,
                                     rank_share=0.6))
    office_alert = new["10.0.9.1"]
    assert office_alert.severity == "warning"
    assert "confirm_probability" not in office_alert.evidence
    assert all(r.code != "verdicts_dismiss_similar" for r in office_alert.reasons)


# ---------------------------------------------------------------------- the watchlist

def _ring(job: str, mchid: str, start: float, accounts: int) -> list[Like]:
    """A farm of 40 accounts on one phone liking a merchant's posts within a
    minute, or its next, smaller job: ``accounts`` of the same accounts
    liking another merchant's post, each from its own address."""
    return [like(f"{job}-{i}", f"ring-{i}", f"post:{job}", mchid, start + i * 1.5,
                 ip=f"10.9.{i}.1", device="d-ring" if job == "first" else f"d-{job}-{i}")
            for i in range(accounts)]


def _first_job(eng: Engine, confirm: bool) -> Alert:
    """Run the ring's first job (a device farm) through ``eng``; its device
    farm alert, confirmed ten minutes later when ``confirm``."""
    first = []
    for ev in _ring("first", "m1", T0, 40):
        first += eng.process(ev)
    first += eng.flush()
    farm = next(a for a in first if a.detector == "device_farm@1")
    if confirm:
        eng.verdict(Verdict(farm.alert_id, "device", "d-ring", "confirmed", "r1",
                            farm.window_end + 600))
    return farm


@pytest.mark.parametrize("confirmed", [False, True])
def test_a_confirmed_rings_next_job_is_found_at_once(confirmed: bool) -> None:
    """The ring's first job (a device farm) is confirmed; a day later four of
    its accounts like another merchant's post from their own phones and
    addresses, far below any farm rule: only the watchlist finds them, within
    a tick of the third like."""
    eng = Engine(EngineConfig(mode="rules"))
    farm = _first_job(eng, confirmed)
    assert len(farm.evidence["sample_accounts"]) >= 4  # the farm alerts at its first accounts
    later = []
    nxt = T0 + 86400
    for ev in _ring("next", "m2", nxt, 4):
        later += eng.process(ev)
    later += eng.flush()
    found = [a for a in later if a.detector == "returning_accounts@1"]
    if not confirmed:
        assert later == []
        return
    watched = set(farm.evidence["sample_accounts"])
    assert {f"ring-{i}" for i in range(4)} <= watched
    assert [a.entity_id for a in found] == ["post:next"]
    assert found[0].window_end - (nxt + 2 * 1.5) <= EngineConfig().tick
    assert found[0].evidence["watched_likers"] >= 3
    accounts, devices, ips, rings = eng.core.watching()
    assert (devices, ips, rings) == (1, 0, 0)
    # the farm's later accounts, named by the repeats the suppressor held back
    assert len(watched) < accounts <= 40


def test_a_confirmed_rings_payments_find_its_next_job_before_its_likes() -> None:
    """A paid ring pays first and likes a minute later. Once its first job is
    confirmed, three of its accounts paying another merchant, each from its
    own phone and address, are found within a tick of the third payment,
    before any like; the same accounts buying at a busy shop among its many
    honest buyers are not."""
    eng = Engine(EngineConfig(mode="rules"))
    _first_job(eng, confirm=True)
    nxt = T0 + 86400
    events: list[Like | Payment] = [payment(f"shop-{k}", f"buyer-{k}", "shop", nxt + 2.0 * k, amount=3990,
                      ip=f"10.5.{k}.1", device=f"d-buyer-{k}") for k in range(100)]
    events += [payment(f"shop-ring-{i}", f"ring-{i}", "shop", nxt + 30.0 + 9.0 * i,
                       amount=1590, ip=f"10.6.{i}.1", device=f"d-ring-{i}") for i in range(4)]
    events += [payment(f"next-{i}", f"ring-{i}", "m2", nxt + 10.0 * i, amount=150,
                       ip=f"10.6.{i}.1", device=f"d-ring-{i}") for i in range(3)]
    events += [like(f"next-{i}", f"ring-{i}", "post:next", "m2", nxt + 90.0 + 10.0 * i,
                    ip=f"10.6.{i}.1", device=f"d-ring-{i}") for i in range(3)]
    later: list[Alert] = []
    for event in sorted(events, key=lambda e: e.ts):
        later += eng.process(event)
    later += eng.flush()
    found = [a for a in later if a.detector == "returning_payers@1"]
    assert [(a.entity_type, a.entity_id) for a in found] == [("merchant", "m2")]
    assert found[0].window_end - (nxt + 20.0) <= EngineConfig().tick < 90.0
    assert found[0].evidence["watched_payers"] == 3
    assert set(found[0].evidence["sample_accounts"]) == {"ring-0", "ring-1", "ring-2"}
    assert set(found[0].evidence["sample_ids"]) >= {"tx-next-0", "tx-next-1", "tx-next-2"}


def test_a_confirmed_farms_next_job_spread_over_a_merchants_posts_is_found() -> None:
    """Once the farm's first job is confirmed, three of its accounts liking
    three different posts of another merchant a day later, each from its own
    phone and address, are found on the merchant within a tick of the third
    like (no post has two of them); the same accounts among a busy
    merchant's hundred honest likers are not."""
    eng = Engine(EngineConfig(mode="rules"))
    _first_job(eng, confirm=True)
    nxt = T0 + 86400
    events = [like(f"busy-{k}", f"fan-{k}", f"post:busy{k % 7}", "busy", nxt + 2.0 * k,
                   ip=f"10.5.{k}.1", device=f"d-fan-{k}") for k in range(100)]
    events += [like(f"busy-ring-{i}", f"ring-{i}", f"post:busy{i}", "busy", nxt + 30.0 + 9.0 * i,
                    ip=f"10.6.{i}.1", device=f"d-ring-{i}") for i in range(4)]
    events += [like(f"next-{i}", f"ring-{i}", f"post:next{i}", "m2", nxt + 400.0 + 30.0 * i,
                    ip=f"10.6.{i}.1", device=f"d-ring-{i}") for i in range(3)]
    later: list[Alert] = []
    for ev in sorted(events, key=lambda e: e.ts):
        later += eng.process(ev)
    later += eng.flush()
    found = [a for a in later if a.detector.startswith("returning_")]
    assert [(a.detector, a.entity_type, a.entity_id) for a in found] == [
        ("returning_likers@1", "merchant", "m2")]
    assert found[0].window_end - (nxt + 460.0) <= EngineConfig().tick
    assert found[0].evidence["watched_likers"] == 3
    assert set(found[0].evidence["sample_accounts"]) == {"ring-0", "ring-1", "ring-2"}
    assert set(found[0].evidence["sample_ids"]) >= {"l-next-0", "l-next-1", "l-next-2"}


def test_a_confirmed_lockstep_alert_watches_the_ring_not_the_posts_other_likers() -> None:
    """A ring of twelve accounts, each on its own phone and address, likes a
    merchant's posts in rounds; three honest accounts like the last post
    amid them. The lockstep alert on it names the ring's accounts only, and
    confirming it puts them on the watchlist, as a ring's: two of them liking
    another merchant's post a day later are found at the second like; two
    of them among a small post's few likers (a third of them honest) are
    not."""
    eng = Engine(EngineConfig(mode="rules"))
    ring = [f"ring-{i}" for i in range(12)]
    events, t = [], T0
    for post in ("post:a", "post:b", "post:c"):
        for k, user in enumerate(ring):
            events.append(like(f"{user}-{post}", user, post, "m1", t, ip=f"10.8.{k}.1",
                               device=f"d-{user}"))
            t += 2.0
    round_c = T0 + 2 * 2.0 * len(ring)
    events += [like(f"h{k}", f"honest-{k}", "post:c", "m1", round_c + 5.0 + k,
                    ip=f"10.7.{k}.1", device=f"d-h{k}") for k in range(3)]
    alerts = []
    for ev in sorted(events, key=lambda e: e.ts):
        alerts += eng.process(ev)
    alerts += eng.flush()
    step = next(a for a in alerts if a.detector == "lockstep@1" and a.entity_id == "post:c")
    named = set(step.evidence["sample_accounts"])
    # the ring's accounts that had liked it, not the honest ones among them
    assert named <= set(ring) and len(named) >= 8 and set(ring[:4]) <= named
    eng.verdict(Verdict(step.alert_id, "target", "post:c", "confirmed", "r1",
                        step.window_end + 600))
    later = []
    nxt = T0 + 86400
    small = [like("fan", "fan-0", "post:small", "m3", nxt - 900, ip="10.5.0.1", device="d-fan"),
             *(like(f"{user}-small", user, "post:small", "m3", nxt - 880 + 20 * k,
                    ip=f"10.5.{k + 1}.1", device=f"d-{user}")
               for k, user in enumerate(ring[4:6]))]
    for ev in small:
        later += eng.process(ev)
    for k, user in enumerate(ring[:4]):
        later += eng.process(like(f"{user}-next", user, "post:next", "m2", nxt + 20.0 * k,
                                  ip=f"10.6.{k}.1", device=f"d-{user}"))
    later += eng.flush()
    found = [a for a in later if a.detector == "returning_accounts@1"]
    assert [a.entity_id for a in found] == ["post:next"]
    assert found[0].window_end - (nxt + 20.0) <= EngineConfig().tick
    assert "ring_likers" in {r.code for r in found[0].reasons}
    # the whole ring (held-back repeats named its last likers), no honest liker
    assert eng.core.watching()[0] == len(ring)


def test_the_watchlist_expires_with_watch_for() -> None:
    eng = Engine(EngineConfig(mode="rules", watch_for=3600))
    alerts = []
    for ev in _ring("first", "m1", T0, 40):
        alerts += eng.process(ev)
    farm = next(a for a in alerts + eng.flush() if a.detector == "device_farm@1")
    eng.verdict(Verdict(farm.alert_id, "device", "d-ring", "confirmed", "r1", farm.window_end))
    later = []
    for ev in _ring("next", "m2", T0 + 86400, 4):
        later += eng.process(ev)
    assert later + eng.flush() == []
    assert eng.core.watching() == (0, 0, 0, 0)


def test_a_verdict_carries_the_alerts_actors() -> None:
    v = parse_verdict(orjson.dumps({**VALID, "verdict": "confirmed", "evidence": {
        "sample_accounts": ["o1", "o2"], "sample_ips": ["10.0.0.1"]}}))
    assert (v.accounts, v.devices, v.ips) == (("o1", "o2"), (), ("10.0.0.1",))
    assert parse_verdict(v.to_json()) == v
    v = parse_verdict(orjson.dumps({**VALID, "evidence": {"merchant": "m9"}}))
    assert v.merchant == "m9" and parse_verdict(v.to_json()) == v
    v = parse_verdict(orjson.dumps({**VALID, "evidence": {"suspect_accounts": ["o7"]}}))
    assert v.suspects == ("o7",) and parse_verdict(v.to_json()) == v
    bad_values: list[tuple[str, object, str]] = [
        ("merchant", 7, "wrong_type"), ("merchant", "", "out_of_range"),
        ("merchant", "m" * 300, "out_of_range"), ("sample_accounts", ["o1", 7], "wrong_type"),
        ("sample_accounts", "o1", "wrong_type"), ("sample_accounts", ["o"] * 101, "out_of_range"),
        ("sample_accounts", [""], "out_of_range"),
        ("suspect_accounts", ["o"] * 101, "out_of_range"), ("suspect_accounts", [3], "wrong_type")]
    for name, bad, reason in bad_values:
        with pytest.raises(BadRecord) as exc:
            parse_verdict(orjson.dumps({**VALID, "evidence": {name: bad}}))
        assert exc.value.reason == reason, (name, bad)


def test_a_confirmed_target_watches_its_suspects_only() -> None:
    """A target's samples are its newest likers, honest ones among them: a
    confirmed target watches its suspect likers (the fresh, the paid, those on
    shared devices and addresses), not its samples, unless its detector names
    the ring (the lockstep view's, watched as a ring's besides); an account,
    device, address or merchant watches its samples."""
    book = VerdictBook(dismiss_for=3600, ring_detectors=frozenset({"lockstep@1"}))
    book.add(Verdict("t", "target", "post:1", "confirmed", "r", 10.0, accounts=("o1",)))
    book.add(Verdict("f", "target", "post:2", "confirmed", "r", 10.0, accounts=("o5",),
                     ips=("10.0.0.2",), detector="farm_target@1", suspects=("o6", "o7")))
    book.add(Verdict("l", "target", "post:3", "confirmed", "r", 10.0, accounts=("o4",),
                     detector="lockstep@1"))
    book.add(Verdict("m", "merchant", "m1", "confirmed", "r", 10.0, accounts=("o2",)))
    book.add(Verdict("d", "device", "d1", "confirmed", "r", 10.0, accounts=("o3",),
                     ips=("10.0.0.1",)))
    book.apply_due(10.0)
    until = 10.0 + 7 * 86400
    assert book.to_watch == [("account", ["o6", "o7"], until),
                             ("account", ["o4"], until),
                             ("ring", ["o4"], until),
                             ("account", ["o2"], until),
                             ("account", ["o3"], until),
                             ("device", ["d1"], until),
                             ("ip", ["10.0.0.1"], until)]


def test_a_confirmed_floods_accounts_are_found_at_their_next_post() -> None:
    """Thirty fresh accounts, each on its own phone and address, flood a
    post amid its five aged fans. The flood alert names the fresh likers as
    its suspects, not the fans; once it is confirmed, three of the flood's
    accounts liking another merchant's post a day later are found within a
    tick of the third like, and the fans liking a post together are not."""
    eng = Engine(EngineConfig(mode="rules"))
    flood = [like(f"f{i}", f"fresh-{i}", "post:a", "m1", T0 + 4.0 * i, ip=f"10.3.{i}.1",
                  device=f"d-fresh-{i}", created=T0 - 3600) for i in range(30)]
    fans = [like(f"h{k}", f"fan-{k}", "post:a", "m1", T0 + 1.0 + 20.0 * k, ip=f"10.4.{k}.1",
                 device=f"d-fan-{k}", created=T0 - 400 * 86400) for k in range(5)]
    alerts = []
    for ev in sorted(flood + fans, key=lambda e: e.ts):
        alerts += eng.process(ev)
    alerts += eng.flush()
    burst = next(a for a in alerts if a.detector == "fresh_burst@1")
    suspects = set(burst.evidence["suspect_accounts"])
    assert suspects and suspects <= {f"fresh-{i}" for i in range(30)}
    eng.verdict(Verdict.of_alert(burst.to_dict(None), "confirmed", "r1", burst.window_end + 600))
    nxt = T0 + 86400
    back = sorted(suspects)[:3]
    later = []
    for k, user in enumerate([f"fan-{k}" for k in range(5)]):
        later += eng.process(like(f"fan-next-{k}", user, "post:fans", "m3", nxt + 2.0 * k,
                                  ip=f"10.4.{k}.1", device=f"d-fan-{k}"))
    for k, user in enumerate(back):
        later += eng.process(like(f"next-{k}", user, "post:next", "m2", nxt + 60.0 + 1.5 * k,
                                  ip=f"10.6.{k}.1", device=f"d-next-{k}"))
    later += eng.flush()
    found = [a for a in later if a.detector == "returning_accounts@1"]
    assert [a.entity_id for a in found] == ["post:next"]
    assert found[0].window_end - (nxt + 60.0 + 2 * 1.5) <= EngineConfig().tick
    # every fresh account (held-back repeats named the later ones), no fan
    assert eng.core.watching()[0] == 30


def test_held_back_repeats_name_a_campaigns_later_workers() -> None:
    """An alert is raised on the first few workers of a task; the suppressor
    holds back the repeats while the job goes on. Their suspects join the
    alert's, so confirming it ten minutes later watches the later workers
    too; once confirmed, a repeat's new suspects are watched at once; a
    dismissed alert's repeats watch no one; the lists stay bounded."""
    book = VerdictBook(dismiss_for=3600)
    key = ("merchant", "target", "paid_target_likes@1")
    book.note_raised("a", "paid_target_likes@1", 2, 100.0, key, suspects=("w1", "w2"),
                     entity_id="post:1")
    book.note_raised("b", "paid_target_likes@1", 2, 100.0, key, suspects=("x1",),
                     entity_id="post:2")
    book.note_repeat("merchant", "target", "post:1", 160.0, ((), (), ()), ("w3", "w1"))
    book.note_repeat("merchant", "target", "post:9", 160.0, ((), (), ()), ("z1",))  # no alert
    book.add(Verdict("a", "target", "post:1", "confirmed", "r", 700.0, suspects=("w1",)))
    book.add(Verdict("b", "target", "post:2", "dismissed", "r", 700.0))
    book.apply_due(700.0)
    assert book.to_watch == [("account", ["w1", "w3", "w2"], 700.0 + 7 * 86400)]
    book.to_watch.clear()
    book.note_repeat("merchant", "target", "post:1", 760.0, ((), (), ()), ("w4", "w3"))
    book.note_repeat("merchant", "target", "post:2", 760.0, ((), (), ()), ("x2",))
    assert book.to_watch == [("account", ["w4"], 760.0 + 7 * 86400)]
    book.note_repeat("merchant", "target", "post:1", 820.0, ((), (), ()),
                     tuple(f"n{i}" for i in range(MAX_REMEMBERED_IDS)))
    assert len(book.raised["a"].suspects) == MAX_REMEMBERED_IDS
    # a checkpoint from before the repeats were kept restores with none
    state = vars(pickle.loads(pickle.dumps(book)))
    old = VerdictBook.__new__(VerdictBook)
    old.__setstate__({k: v for k, v in state.items() if k != "latest"})
    assert old.latest == {} and old.raised.keys() == book.raised.keys()
    book.sweep(100.0 + 3601)
    assert not book.raised and not book.latest


def test_a_device_alerts_repeats_add_its_later_accounts() -> None:
    """A device farm's alert samples the accounts seen so far; its held-back
    repeats add the accounts that came later, and a confirmation watches
    them with the device."""
    book = VerdictBook(dismiss_for=3600)
    book.note_raised("d", "device_farm@1", 2, 100.0, ("device", "device", "device_farm@1"),
                     actors=(("o1", "o2"), (), ("10.0.0.1",)), entity_id="phone")
    book.note_repeat("device", "device", "phone", 130.0, (("o3", "o1"), (), ("10.0.0.2",)), ())
    book.add(Verdict("d", "device", "phone", "confirmed", "r", 700.0))
    book.apply_due(700.0)
    until = 700.0 + 7 * 86400
    assert book.to_watch == [("account", ["o3", "o1", "o2"], until),
                             ("device", ["phone"], until),
                             ("ip", ["10.0.0.2", "10.0.0.1"], until)]


#: a device farm, a paid task and a ring a moderator can confirm before their next jobs
SIM = SimConfig(seed=4246, duration=5400, rate=20, campaigns=4, benign=2, partitions=3,
                bad_rate=0.0)


def test_a_campaigns_next_job_is_its_first_again(tmp_path: Path) -> None:
    """``with_returns`` appends each campaign's next job ``after`` its first
    ends: its own accounts, devices and addresses at new merchants
    and targets, every record valid; the recording's own records unchanged."""
    rec, out = tmp_path / "r.jsonl", tmp_path / "next.jsonl"
    simulate(SIM, rec, tmp_path / "l.json")
    labels = load_labels(tmp_path / "l.json")
    ret = with_returns(rec, labels, out, after=300.0)
    own = rec.read_text().splitlines()
    lines = out.read_text().splitlines()
    assert lines[:len(own)] == own
    jobs = {c.id: c for c in ret.labels.campaigns if c.id.endswith(RETURN_SUFFIX)}
    assert jobs and set(jobs) == set(ret.first_like)
    first = {c.id: c for c in labels.campaigns}
    added = list(read_records(out))[len(own):]
    events = list(iter_events(added, summary := ReplaySummary()))
    assert summary.rejected == {} and len(events) == len(added)
    for job_id, job in jobs.items():
        c = first[job_id.removesuffix(RETURN_SUFFIX)]
        assert job.start == c.end + 300.0 and job.users == c.users
        assert job.targets == tuple(t + RETURN_SUFFIX for t in c.targets)
        mine = [e for e in events if isinstance(e, Like) and e.target in job.targets]
        assert mine and {e.user for e in mine} <= set(c.users)
        assert all(job.start <= e.ts <= job.end for e in mine)
        assert ret.first_like[job_id] == pytest.approx(  # written to the millisecond
            min(e.ts for e in events if isinstance(e, Like) and e.user in c.users), abs=1e-3)
    # partitions of their own, each in event-time order
    assert {(r.topic, r.partition) for r in added} <= {("likes", 3), ("payments.success", 3)}
    times = [e.ts for e in events if isinstance(e, Like)]
    assert times == sorted(times)


def test_a_confirmed_campaigns_next_job_is_found_sooner(tmp_path: Path) -> None:
    """With the moderator confirming first jobs, no next job is found later
    than by the rules alone, and the watchlist finds one sooner (the ring,
    whose next job no farm rule sees)."""
    rec, out = tmp_path / "r.jsonl", tmp_path / "next.jsonl"
    simulate(SIM, rec, tmp_path / "l.json")
    ret = with_returns(rec, load_labels(tmp_path / "l.json"), out, after=300.0)
    found = []
    for moderator in (SimulatedModerator(ret.labels, delay=1e9, error_rate=0.0),
                      SimulatedModerator(ret.labels, delay=600.0, error_rate=0.0)):
        alerts, _, _ = moderated_replay(out, moderator)
        ev = evaluate(ret.labels, alerts)
        detector = {a["alert_id"]: a["detector"] for a in alerts}
        found.append({j: (ev.delays[j], detector[ev.first_alert[j]]) for j in ret.first_like})
    rules, watched = found
    assert len(rules) >= 3 and set(watched) == set(rules)
    assert all(watched[j][0] <= rules[j][0] for j in rules)
    assert any(watched[j][0] < rules[j][0] and watched[j][1] == "returning_accounts@1"
               for j in rules)
