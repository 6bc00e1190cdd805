"""Detection quality on traffic from generators we did not write.

``tests/quality/browsing/gen.py``, ``tests/quality/late_delivery/gen.py`` and
``tests/quality/livestream/gen.py`` were each written from the data contract alone,
by sessions that never saw ``detectors/``, our simulator or each other (see
their READMEs). browsing's organic traffic has
browsing sessions, shared home and carrier IPs and families on one tablet;
late_delivery adds 4,000 merchants, 12 like partitions, late deliveries from
offline queues (minutes), refunds that reuse a transaction id, honest
two-account phones, 1-fen trial payments and carrier NATs busier than its
office. Their campaigns draw sizes, amounts, delays and rhythms from their
own ranges. livestream is a short-video and livestream-shopping world: game
shops whose 1-CNY top-ups are sometimes followed by a like, live gifting,
payment kiosks, offices whose staff like their employer's new post, UTC and
+08:00 times, IPv6, unlikes, refunds and deliberately bad records. Seeds 1-4
of browsing, 1-3 of late_delivery and 1-4 of livestream were used for diagnosis
and tuning (late_delivery's seed 3 and livestream's seeds 3 and 4 after they were
first run as held-out seeds, see docs/quality.md); the seeds here are held out.
Each run is two hours (~250,000-300,000 records).

livestream has two honest look-alikes likeguard still flags, named here and
in docs/quality.md ("A fourth generator: livestream") rather than hidden: live gifting (tips of
10 fen and 1 CNY, each followed by a like within seconds, look like a paid
task's first workers) and the employer's post liked by half an office within
minutes (the post alone looks like an IP farm's target; the office's IP,
whose accounts like many other things, stays quiet and is asserted so).

``tests/quality/disguised/gen.py`` (issue 19's disguised and dense fraud and its
honest look-alikes) runs two hours at its organic rate and one hour at ten
times it, per held-out seed (3 and 4; 1 and 2 were for tuning). Its gaps are
named here rather than hidden (``KNOWN_MISSES``, ``KNOWN_LOOKALIKES``,
``MIN_PRECISION``; docs/quality.md, "A fifth generator: disguised"): every
campaign of the other kinds, every like-first task at its organic rate, and
every like-first task paying a token fee, must be found.

Their slow patterns (drips of a few paid likes per ten minutes, rings resting
ten to twenty minutes between jobs) are found in minutes by design, so the
overall median delay is reported, not asserted; the fast ones are asserted.
"""

from __future__ import annotations

import io
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest

from detectors.config import EngineConfig
from detectors.evaluate import Evaluation, Labels, evaluate, load_labels
from detectors.replay import replay

HERE = Path(__file__).parent
#: two hours of disguised at its organic rate; one hour at ten times it
_OG4: tuple[str, ...] = ("--hours", "2")
_OG4_DENSE: tuple[str, ...] = ("--rate", "400")
#: (generator directory, held-out seed, generator arguments); each directory
#: has ``gen.py`` and its own contract check ``check.py``
HELD_OUT: tuple[tuple[str, int, tuple[str, ...]], ...] = (
    ("browsing", 5, ()), ("browsing", 6, ()), ("late_delivery", 4, ()), ("late_delivery", 5, ()),
    ("livestream", 5, ()), ("livestream", 6, ()),
    ("disguised", 3, _OG4), ("disguised", 4, _OG4),
    ("disguised", 3, _OG4_DENSE), ("disguised", 4, _OG4_DENSE),
)
#: per generator, campaigns that show at once. Some of late_delivery's paid-task
#: workers like popular items up to five minutes before their task, and its
#: labels start there, so its paid tasks are not "fast" by the label's clock
FAST_KINDS = {
    "browsing": {"fresh_account_burst", "paid_task_likes"},
    "late_delivery": {"fresh_account_burst", "device_farm"},
    # its fresh-account floods ramp up over a triangular window of 3-12 minutes
    "livestream": {"paid_task_likes", "ip_farm"},
    "disguised": {"paid_task_token", "fresh_account_flood", "device_farm"},
}
#: per generator, kinds asserted found within five minutes (issue 19's worst
#: case): rings and exchange groups found from their first round, proxy farms
#: whose devices carry a new account every few minutes
WITHIN_FIVE_MINUTES = {
    "disguised": {"coordinated_ring", "camouflaged_ring", "like_exchange", "proxy_farm"},
}
#: per generator and arguments, campaign kinds likeguard does not find yet
#: (docs/quality.md, "A fifth generator: disguised"): paid tasks paying
#: real-looking amounts (a livestream's tippers look the same by amount,
#: delay and conversion) and drips of accounts that pay nothing and do
#: nothing but the job; in ten times the traffic also tasks that like first
#: and pay a coupon price after (those paying a token fee after the like are
#: found there too: asserted with ``_recording_facts``)
KNOWN_MISSES = {
    ("disguised", _OG4): {"paid_task_real_amount", "drip"},
    ("disguised", _OG4_DENSE): {"paid_task_real_amount", "drip", "paid_task_like_first"},
}
#: per generator, the least precision (alerts on known look-alikes left out)
#: where it is below the 0.95 asserted elsewhere: disguised at ten times its
#: organic rate, whose busy targets and addresses draw alerts on organic
#: traffic (measured 0.88-0.94 on the held-out seeds; issue 19's density target)
MIN_PRECISION = {("disguised", _OG4_DENSE): 0.7}
#: per generator, benign kinds whose false alarms are a known limitation
#: (module docstring), with the entity types they may name
KNOWN_LOOKALIKES = {
    "livestream": {"live_gifting": {"merchant", "target"}, "office_nat": {"target"}},
    # offices and classes liking one post from one address, families sharing
    # phones, a fan club's burst, and in dense traffic a viral post (see
    # docs/quality.md)
    "disguised": {"office_staff": {"target", "ip"}, "class_likes_teacher": {"target", "ip"},
                  "family_shared_device": {"device"}, "fan_club_burst": {"target"},
                  "viral_post": {"target"}},
}


@dataclass
class Run:
    gen: str
    args: tuple[str, ...]
    labels: Labels
    ev: Evaluation
    events: int
    checked: int  #: exit status of the generator's own check
    #: fresh-account bursts none of whose likes carries a device id or an
    #: account creation time (late_delivery's web-client floods): the known blind spot
    blind: set[str]
    alerts: list[dict]
    #: paid tasks that like first and then pay the merchant a token amount
    token_fee: set[str]


def _recording_facts(rec: Path, labels: Labels) -> tuple[set[str], set[str]]:
    """From one pass over the recording: the fresh-account bursts none of whose
    likes carries a device id or an account creation time (the blind spot), and
    the like-first paid tasks whose payments to their merchants are mostly
    token amounts."""
    bursts = {c.id: set(c.users) for c in labels.campaigns if c.kind == "fresh_account_burst"}
    tasks = [c for c in labels.campaigns if c.kind == "paid_task_like_first"]
    told: set[str] = set()
    amounts: dict[str, list[int]] = {c.id: [] for c in tasks}
    with open(rec, "rb") as f:
        for line in f:
            r = orjson.loads(line)
            if r["topic"] != "likes" and not tasks:
                continue
            try:  # livestream writes deliberately bad records too
                p = orjson.loads(r["payload"])
                if r["topic"] == "likes":
                    user = p["user_openid"]
                else:
                    payer, mchid, amount = p["payer"]["openid"], p["mchid"], p["amount"]["total"]
            except (orjson.JSONDecodeError, TypeError, KeyError):
                continue
            if r["topic"] == "likes":
                if p.get("device_id") is not None or p.get("user_created") is not None:
                    told.update(cid for cid, users in bursts.items() if user in users)
                continue
            for c in tasks:
                if mchid in c.merchants and payer in c.users:
                    amounts[c.id].append(amount)
    token = EngineConfig().token_amount
    token_fee = {cid for cid, a in amounts.items()
                 if a and sum(x <= token for x in a) >= 0.8 * len(a)}
    return set(bursts) - told, token_fee


def _held_out_id(case: tuple[str, int, tuple[str, ...]]) -> str:
    gen, seed, args = case
    return f"{gen}-{seed}" + ("-dense" if args == _OG4_DENSE else "")


@pytest.fixture(scope="module", params=HELD_OUT, ids=[_held_out_id(c) for c in HELD_OUT])
def run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Run:
    gen, seed, args = request.param
    d = tmp_path_factory.mktemp(_held_out_id(request.param))
    rec, lab = d / "rec.jsonl", d / "labels.json"
    subprocess.run([sys.executable, str(HERE / gen / "gen.py"), "--seed", str(seed), "--out",
                    str(rec), "--labels", str(lab), *args], check=True, capture_output=True)
    checked = subprocess.run([sys.executable, str(HERE / gen / "check.py"), str(rec), str(lab)],
                             capture_output=True).returncode
    buf = io.StringIO()
    summary = replay(rec, buf, EngineConfig())
    labels = load_labels(lab)
    alerts = [orjson.loads(x) for x in buf.getvalue().splitlines()]
    ev = evaluate(labels, alerts)
    blind, token_fee = _recording_facts(rec, labels)
    return Run(gen, args, labels, ev, summary.events, checked, blind, alerts, token_fee)


def test_independent_traffic_is_what_it_says(run: Run) -> None:
    assert run.checked == 0  # the generator's own check: contract shape, offsets, times, labels
    assert run.events > 200_000
    assert len(run.labels.campaigns) >= 4 and len(run.labels.benign) >= 3
    assert {b.kind for b in run.labels.benign} & {"office_nat", "viral_post", "coupon_campaign"}
    if run.gen == "disguised":  # the look-alikes issue 19 names, in every run
        assert {"office_staff", "family_shared_device", "one_yuan_deal",
                "coupon_like_to_unlock"} <= {b.kind for b in run.labels.benign}


def test_every_campaign_found_and_no_benign_event_flagged(run: Run) -> None:
    ev = run.ev
    missed = [(c.id, c.kind) for c in run.labels.campaigns
              if c.id in ev.missed or c.id in ev.not_started]
    # the blind spot (docs/quality.md, "A third generator: late_delivery") and the
    # kinds not found yet may be missed, nothing else; then F1 cannot reach
    # 0.95 and precision is asserted instead
    known_misses = {c.id for c in run.labels.campaigns
                    if c.kind in KNOWN_MISSES.get((run.gen, run.args), set())
                    and c.id not in run.token_fee}
    # a campaign after the last alert is "not started" in the report; here, missed
    assert set(ev.missed) | set(ev.not_started) <= run.blind | known_misses, f"missed: {missed}"
    known = KNOWN_LOOKALIKES.get(run.gen, {})
    looks = {b.id: b for b in run.labels.benign if b.kind in known}
    unexpected = {bid: n for bid, n in ev.false_alarms.items() if n and bid not in looks}
    assert not unexpected, ev.false_alarms
    on_known = 0
    for a in run.alerts:  # alerts on a known look-alike name only the entity types allowed
        etype, eid = a["entity"]["type"], a["entity"]["id"]
        hits = [b for b in looks.values() if b.names(etype, eid)]
        assert all(etype in known[b.kind] for b in hits), (a["detector"], etype, eid)
        on_known += bool(hits)
    # precision and F1 without the alerts on the known look-alikes
    precision = ev.tp / max(1, ev.alerts - on_known)
    least = MIN_PRECISION.get((run.gen, run.args))
    if least is not None:
        assert precision >= least, ev.to_dict()
    elif ev.missed or ev.not_started:
        assert precision >= 0.95, ev.to_dict()
    else:
        recall = ev.recall
        assert 2 * precision * recall / (precision + recall) >= 0.95, ev.to_dict()
    assert ev.tp + ev.fp == ev.alerts


def test_fast_patterns_within_two_minutes_and_rings_within_five(run: Run) -> None:
    fast = [c for c in run.labels.campaigns
            if c.kind in FAST_KINDS[run.gen] and c.id not in run.blind]
    assert fast
    for c in fast:
        assert run.ev.delays[c.id] <= 120.0, (c.id, c.kind, run.ev.delays[c.id])
    for c in run.labels.campaigns:
        if c.kind in WITHIN_FIVE_MINUTES.get(run.gen, ()):
            assert run.ev.delays[c.id] <= 300.0, (c.id, c.kind, run.ev.delays[c.id])
