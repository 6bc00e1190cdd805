"""The payment->like join and the per-entity features of each view (in the core)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from detectors._core import Core
from detectors.config import EngineConfig
from detectors.events import Like, Payment
from detectors.rules.device_farm import DeviceFarm
from detectors.rules.farm_target import FarmTarget
from detectors.rules.paid_likes import PaidLikes, PaidTargetLikes
from tests.helpers import T0, like, payment

CFG = EngineConfig(min_support=1, min_pairs=1, min_likes=1, min_ip_events=1)
#: the merchant horizon: its longest window
HORIZON = max(CFG.long_window, CFG.join_window, CFG.window)


def _subjects(core: Core, now: float) -> dict:
    return {(s.entity_type, s.entity_id): s for s in core.evaluate(now)}


def _touch(core: Core, mchid: str, ts: float) -> None:
    """Make a merchant pending without changing its windows: an unlike touches
    its key (and is otherwise ignored), so it is due again after ``reeval``."""
    core.add(Like("probe", "nobody", "post:probe", mchid, ts, action="unlike"))


def _size(core: Core, view: str) -> tuple[int, int]:
    return dict(core.sizes())[view]


def test_join_matches_payment_before_like_only_within_window() -> None:
    v = Core(CFG, ["merchant"])
    v.add(payment(1, "u1", "m1", T0, amount=1))
    v.add(like(1, "u1", "post:1", "m1", T0 + 5))  # prompt pair
    v.add(payment(2, "u2", "m1", T0, amount=5000))
    v.add(like(2, "u2", "post:1", "m1", T0 + 400))  # joined, not prompt
    v.add(payment(3, "u3", "m1", T0 - 700, amount=1))
    v.add(like(3, "u3", "post:1", "m1", T0 + 10))  # outside join window
    v.add(like(4, "u4", "post:1", "m2", T0 + 10))  # other merchant
    assert v.joins()["pay_then_like"] == 2
    s = _subjects(v, T0 + 15)[("merchant", "m1")]
    x = s.features
    # the one pair kept: u1's, 5 s after paying
    assert x["pair_users"] == 1 and x["delay_median"] == 5.0 and s.window_start == T0 + 5
    assert s.samples() == ["tx-1", "l-1"]
    assert x["pairs"] == 1 and x["token_users"] == 1 and x["token_share"] == 1.0


def test_like_then_pay_is_its_own_feature() -> None:
    events: list[Payment | Like] = []
    for i in range(5):  # coupon campaign: like first, pay a real amount minutes later
        events += [like(i, f"u{i}", "post:1", "m1", T0 + i),
                   payment(i, f"u{i}", "m1", T0 + 300 + i, amount=3900)]
    v = Core(CFG, ["merchant"])
    for ev in events:
        v.add(ev)
    assert v.joins() == {"pay_then_like": 0, "like_then_pay": 5}
    assert ("merchant", "m1") not in _subjects(v, T0 + 310)  # no paid pairs: nothing to score
    # min_pairs=0 (below what validate allows) scores a merchant without pairs
    w = Core(replace(CFG, min_pairs=0), ["merchant"])
    for ev in events:
        w.add(ev)
    x = _subjects(w, T0 + 310)[("merchant", "m1")].features
    assert x["coupon_share"] == 1.0 and x["pairs"] == 0 and x["token_pay_share"] == 0.0


def test_a_payment_arriving_after_its_like_still_pairs() -> None:
    # a notification from a backlog, taken out of order (allowed_lateness): the
    # join runs from the payment's side; it is no like-then-pay coupon
    v = Core(CFG, ["merchant"])
    v.add(like(1, "u1", "post:1", "m1", T0 + 8))
    v.add(payment(1, "u1", "m1", T0, amount=1))
    assert v.joins() == {"pay_then_like": 1, "like_then_pay": 0}
    s = _subjects(v, T0 + 15)
    m = s[("merchant", "m1")]
    # the pair: u1's like (at T0 + 8) 8 s after paying, transaction then like
    assert m.features["pair_users"] == 1 and m.features["delay_median"] == 8.0
    assert m.window_start == T0 + 8 and m.samples() == ["tx-1", "l-1"]
    assert m.features["coupon_share"] == 0.0  # no coupon
    t = s[("target", "post:1")]  # the pair counts for the liked target
    assert t.counts["paid_like_pairs"] == 1 and t.features["pairs"] == 1
    assert m.features["token_users"] == 1


def test_paid_pair_features_amounts_and_delays() -> None:
    v = Core(CFG, ["merchant"])
    for i in range(10):
        v.add(payment(i, f"u{i}", "m1", T0 + i * 30, amount=50 if i < 8 else 60))
        v.add(like(i, f"u{i}", "post:1", "m1", T0 + i * 30 + 8 + (i % 2) * 0.5))
    subjects = _subjects(v, T0 + 300)
    x = subjects[("merchant", "m1")].features
    assert x["pair_users"] == 10 and x["amount_top_share"] == 0.8
    assert x["delay_cv"] < 0.05 and 8 <= x["delay_median"] <= 8.5
    t = subjects[("target", "post:1")].features
    assert t["token_users"] == 10


def test_slow_drip_pairs_accumulate_over_long_window() -> None:
    v = Core(CFG, ["merchant"])
    for i in range(12):  # one paid like every 10 minutes
        ts = T0 + i * 600
        v.add(payment(i, f"u{i}", "m1", ts, amount=10))
        v.add(like(i, f"u{i}", "post:1", "m1", ts + 6))
        subjects = _subjects(v, ts + 10)
    x = subjects[("merchant", "m1")].features
    assert x["token_users"] == 12  # 2 hours of pairs, far beyond the 5-minute window
    assert x["token_users_w"] == 1  # ... of which one inside it
    assert x["likes_w"] == 1


def test_recent_token_likers_count_only_the_window() -> None:
    v = Core(CFG, ["merchant"])
    for i, ts in enumerate((T0, T0 + 200, T0 + 290)):
        v.add(payment(i, f"u{i}", "m1", ts, amount=1))
        v.add(like(i, f"u{i}", "post:1", "m1", ts + 5))
    v.add(payment(9, "u0", "m1", T0 + 291, amount=1))  # the same account again
    v.add(like(9, "u0", "post:1", "m1", T0 + 296))
    x = _subjects(v, T0 + 300)[("merchant", "m1")].features
    assert x["token_users"] == 3 and x["token_users_w"] == 3
    # later, the first account's first pair (T0 + 5) has left the window but its
    # second pair has not; the second account's pair (T0 + 205) has left it
    _touch(v, "m1", T0 + 506)
    x = _subjects(v, T0 + 506)[("merchant", "m1")].features
    assert x["token_users"] == 3 and x["token_users_w"] == 2


def test_two_token_paid_likers_alarm_a_target_only_among_few_likes() -> None:
    """A task's first two workers are most of a small post's likes; two honest
    token buyers who liked a busy post are a few among many."""
    def target(others: int) -> dict[str, float]:
        v = Core(CFG, ["merchant"])
        for i in range(others):
            v.add(like(100 + i, f"fan{i}", "post:1", "m1", T0 + i))
        for i, ts in enumerate((T0 + 60, T0 + 150)):
            v.add(payment(i, f"w{i}", "m1", ts, amount=1))
            v.add(like(i, f"w{i}", "post:1", "m1", ts + 8))
        return _subjects(v, T0 + 170)[("target", "post:1")].features

    small, busy = target(2), target(20)
    assert small["token_users_w"] == busy["token_users_w"] == 2
    assert small["token_like_share_w"] == 0.5 and busy["token_like_share_w"] == 2 / 22
    assert PaidTargetLikes().score_one(small) >= 0.5
    assert [r.code for r in PaidTargetLikes().explain(small)][0] == "token_paid_likers_recent"
    assert PaidTargetLikes().score_one(busy) < 0.5
    assert PaidLikes().score_one(busy) >= 0.5  # the merchant's paths have no such gate


def test_like_then_token_payment_pairs_over_the_window_as_shares() -> None:

    # a task that has its workers like first and pay a 1-fen fee a minute later
    task = Core(CFG, ["merchant"])
    for i in range(4):
        task.add(like(i, f"w{i}", "post:1", "m1", T0 + i * 20))
        task.add(payment(i, f"w{i}", "m1", T0 + i * 20 + 50, amount=1))
    task.add(like(9, "fan", "post:1", "m1", T0 + 30))  # an honest liker of the post
    s = _subjects(task, T0 + 200)
    m, t = s[("merchant", "m1")], s[("target", "post:1")]
    assert m.features["rev_users_w"] == 4 and m.features["rev_share_w"] == 0.8
    assert m.features["rev_conversion"] == 1.0 and t.features["rev_share_w"] == 0.8
    assert m.features["pairs"] == 0  # kept apart from the pay -> like pairs
    assert m.counts["like_then_token_pairs"] == 4
    assert {"tx-3", "l-3"} <= set(m.samples())
    assert PaidLikes().score_one(m.features) >= 0.5
    assert PaidTargetLikes().score_one(t.features) >= 0.5
    assert "like_then_token_payers" in [r.code for r in PaidLikes().explain(m.features)]
    # ... and forgotten with the window
    _touch(task, "m1", T0 + 60 + 50 + CFG.window + 1)
    x = _subjects(task, T0 + 60 + 50 + CFG.window + 1)
    assert ("merchant", "m1") not in x or x[("merchant", "m1")].features["rev_users_w"] == 0
    # a busy shop: the same four, among a hundred likes, do not make a share
    shop = Core(CFG, ["merchant"])
    for i in range(100):
        shop.add(like(100 + i, f"b{i}", f"post:{i % 7}", "m2", T0 + i))
    for i in range(4):
        shop.add(like(i, f"w{i}", "post:1", "m2", T0 + 100 + i))
        shop.add(payment(i, f"w{i}", "m2", T0 + 150 + i, amount=1))
    x = _subjects(shop, T0 + 200)[("merchant", "m2")].features
    assert x["rev_users_w"] == 4 and x["rev_share_w"] < 0.25
    assert PaidLikes().score_one(x) < 0.5
    # a one-yuan deal: most token payers never liked first
    deal = Core(CFG, ["merchant"])
    for i in range(40):
        deal.add(payment(100 + i, f"d{i}", "m3", T0 + i * 3, amount=100))
    for i in range(4):
        deal.add(like(i, f"w{i}", "post:1", "m3", T0 + 100 + i))
        deal.add(payment(i, f"w{i}", "m3", T0 + 150 + i, amount=100))
    x = _subjects(deal, T0 + 200)[("merchant", "m3")].features
    assert x["rev_share_w"] == 1.0 and x["rev_conversion"] == 0.09090909090909091
    assert PaidLikes().score_one(x) < 0.5
    # one customer who liked and then bought: a pair of any amount, no alarm
    buy = Core(CFG, ["merchant"])
    buy.add(like(1, "c1", "post:1", "m4", T0))
    buy.add(payment(1, "c1", "m4", T0 + 30, amount=3900))
    x = _subjects(buy, T0 + 60)[("merchant", "m4")].features
    assert x["rev_users_w"] == 0 and x["rev_any_users_w"] == 1
    assert PaidLikes().score_one(x) < 0.5


def test_like_then_pay_any_amount() -> None:
    """A task whose workers like, then pay a coupon price within a minute, is
    the like-first token task at another amount; a shop whose browsing buyers
    now and then buy right after a like is not."""
    task = Core(CFG, ["merchant"])
    for i in range(6):
        task.add(like(i, f"w{i}", "post:1", "m1", T0 + 20 * i))
        task.add(payment(i, f"w{i}", "m1", T0 + 20 * i + 40, amount=990))
    x = _subjects(task, T0 + 170)[("merchant", "m1")].features
    assert x["rev_users_w"] == 0 and x["rev_any_users_w"] == 6
    assert x["rev_any_share_w"] == 1.0 and x["rev_any_conversion"] == 1.0
    assert PaidLikes().score_one(x) >= 0.5
    assert [r.code for r in PaidLikes().explain(x)] == [
        "like_then_payers", "like_then_pay_share", "like_then_pay_conversion"]
    shop = Core(CFG, ["merchant"])
    for i in range(60):
        shop.add(like(100 + i, f"b{i}", f"post:{i % 7}", "m2", T0 + 2 * i))
    for i in range(4):
        shop.add(payment(i, f"b{i}", "m2", T0 + 2 * i + 50, amount=4990))
    for i in range(10):
        shop.add(payment(10 + i, f"c{i}", "m2", T0 + 10 * i, amount=2990))
    x = _subjects(shop, T0 + 150)[("merchant", "m2")].features
    assert x["rev_any_users_w"] == 4 and x["rev_any_share_w"] < 0.25
    assert PaidLikes().score_one(x) < 0.5

def test_token_conversion_counts_token_payers_who_liked_promptly() -> None:
    # a game shop: ten 98-fen top-ups, two of them followed by a like within seconds
    game = Core(CFG, ["merchant"])
    for i in range(10):
        game.add(payment(i, f"g{i}", "m1", T0 + i * 60, amount=98))
    for i in (8, 9):
        game.add(like(i, f"g{i}", "live:1", "m1", T0 + i * 60 + 10))
    x = _subjects(game, T0 + 600)[("merchant", "m1")].features
    assert x["token_users"] == 2 and x["token_conversion"] == 0.2
    # a task: every worker pays 1 fen and likes 15 s later; the last payer's
    # like may still come (paid 10 s ago): it barely counts against the task
    task = Core(CFG, ["merchant"])
    for i in range(4):
        task.add(payment(i, f"w{i}", "m2", T0 + i * 60, amount=1))
        if i < 3:
            task.add(like(i, f"w{i}", "post:1", "m2", T0 + i * 60 + 15))
    s = _subjects(task, T0 + 190)
    wait = 10 / CFG.paid_delay
    assert s[("merchant", "m2")].features["token_conversion"] == pytest.approx(3 / (3 + wait))
    assert s[("target", "post:1")].features["token_conversion"] == pytest.approx(3 / (3 + wait))
    later = T0 + 180 + CFG.paid_delay + 1
    _touch(task, "m2", later)
    x = _subjects(task, later)[("merchant", "m2")].features
    assert x["token_conversion"] == 0.75  # the fourth never liked



def test_token_conversion_at_a_busy_deals_start_counts_the_payers_still_waiting() -> None:
    # thirty 1-CNY buyers in 90 s, three of them liking 20-30 s after paying:
    # the other buyers count as not having liked by how long they have waited,
    # though none has been waiting paid_delay yet
    deal = Core(CFG, ["merchant"])
    for i in range(30):
        deal.add(payment(i, f"d{i}", "m3", T0 + i * 3, amount=100))
    for i in (0, 1, 2):
        deal.add(like(i, f"d{i}", "post:9", "m3", T0 + i * 3 + 20 + 5 * i))
    x = _subjects(deal, T0 + 90)[("merchant", "m3")].features
    assert x["token_users"] == 3
    assert x["token_conversion"] < 0.5  # not a task's (the gate is 0.8)

def test_a_token_payers_like_minutes_later_pairs_as_a_slow_token_pair() -> None:
    # a ring: ten accounts pay 1-2 CNY 5 s apart; some like 70 s after paying,
    # some 130-150 s (past paid_delay, within token_delay), the rest not yet
    ring = Core(CFG, ["merchant"])
    delays = {0: 130, 1: 70, 2: 140, 3: 70, 4: 150}
    for i in range(10):
        ring.add(payment(i, f"r{i}", "m1", T0 + 5 * i, amount=100 + 10 * i))
    for i, d in delays.items():
        ring.add(like(i, f"r{i}", "post:1", "m1", T0 + 5 * i + d))
    # a real amount liked as long after is not a pair
    ring.add(payment(20, "b1", "m1", T0, amount=3900))
    ring.add(like(20, "b1", "post:1", "m1", T0 + 140))
    s = _subjects(ring, T0 + 170)
    x = s[("merchant", "m1")].features
    assert x["pair_users"] == 2 and x["token_users"] == 2
    assert x["token_users_slow"] == 5
    # the evidence counts them apart and samples their transactions too
    for key in (("merchant", "m1"), ("target", "post:1")):
        assert s[key].counts["paid_like_pairs"] == 2 and s[key].counts["slow_token_pairs"] == 3
    assert {"tx-0", "tx-2", "tx-4"} <= set(s[("merchant", "m1")].samples())
    # the payers inside token_delay count by how long they have waited of it
    waiting = sum((170 - 5 * i) / CFG.token_delay for i in range(5, 10))
    assert x["token_conversion_slow"] == pytest.approx(5 / (5 + waiting))
    assert x["token_conversion"] < 0.25  # the slow likers are non-converters within paid_delay
    rule = PaidLikes()
    assert rule.score_one(x) >= 0.5
    assert "token_paid_likers_slow" in [r.code for r in rule.explain(x)]
    # a one-yuan deal: thirty buyers, the first few liking a minute or two later
    deal = Core(CFG, ["merchant"])
    for i in range(30):
        deal.add(payment(i, f"d{i}", "m2", T0 + 5 * i, amount=100))
    for i in range(0, 16, 4):
        deal.add(like(i, f"d{i}", "post:2", "m2", T0 + 5 * i + 100))
    x = _subjects(deal, T0 + 170)[("merchant", "m2")].features
    assert x["token_users_slow"] == 4 and x["token_conversion_slow"] < 0.4
    assert rule.score_one(x) < 0.5


def test_a_busy_shops_old_token_payers_do_not_hide_a_tasks_first_workers() -> None:
    # over the hours before, a busy shop's honest token buyers pay without a
    # like (its long-window conversion stays low), its real buyers like at once
    def shop(workers: int, other_likers: int) -> dict:
        core = Core(CFG, ["merchant"])
        for i in range(12):
            core.add(payment(100 + i, f"h{i}", "m1", T0 + 600 * i, amount=95))
        for i in range(20):
            core.add(payment(200 + i, f"b{i}", "m1", T0 + 7000 + 15 * i, amount=2200))
            core.add(like(200 + i, f"b{i}", "post:shop", "m1", T0 + 7010 + 15 * i))
        # then three workers pay 1 fen and like the store page within seconds
        for i in range(workers):
            core.add(payment(i, f"w{i}", "m1", T0 + 7200 + 15 * i, amount=1))
            core.add(like(i, f"w{i}", "store:1", "m1", T0 + 7205 + 15 * i))
        for i in range(other_likers):
            core.add(like(300 + i, f"o{i}", "store:1", "m1", T0 + 7150 + 5 * i))
        return _subjects(core, T0 + 7260)
    s = shop(3, 0)
    m, t = s[("merchant", "m1")].features, s[("target", "store:1")].features
    assert m["token_conversion"] < 0.8 and t["token_conversion_w"] == 1.0
    rule = PaidTargetLikes()
    assert rule.score_one(t) >= 0.5
    assert "token_conversion_recent" in [r.code for r in rule.explain(t)]
    # the same three among a busy page's likers: not half of its likes
    t = shop(3, 6)[("target", "store:1")].features
    assert t["token_like_share_w"] < 0.5 and rule.score_one(t) < 0.5
    # two workers: the two-account path still needs the long-window conversion,
    # and this path, three a gate, does not lend a model its corroboration
    t = shop(2, 0)[("target", "store:1")].features
    assert t["token_users_w"] == 2 and rule.score_one(t) < CFG.corroboration


def test_target_likers_who_just_bought_are_customers() -> None:
    v = Core(CFG, ["merchant"])
    for i in range(10):  # paid a real amount at the counter, liked the shop page on its Wi-Fi
        v.add(payment(i, f"c{i}", "m1", T0 + i * 30, amount=2200))
        v.add(like(i, f"c{i}", "shop:1", "m1", T0 + i * 30 + 200, ip="10.0.0.1",
                   device=f"d{i}"))
    for i in range(10):  # the same page, accounts that paid nothing (or a token amount)
        if i % 2:
            v.add(payment(100 + i, f"x{i}", "m1", T0 + i * 30, amount=1))
        v.add(like(100 + i, f"x{i}", "post:2", "m1", T0 + i * 30 + 200, ip="10.0.0.2"))
    s = _subjects(v, T0 + 600)
    assert s[("target", "shop:1")].features["buyer_share"] == 1.0
    assert s[("target", "post:2")].features["buyer_share"] == 0.0


def test_target_fresh_and_device_features() -> None:
    v = Core(CFG, ["merchant"])
    for i in range(20):
        created = T0 - 3600 if i < 15 else T0 - 400 * 86400
        v.add(like(i, f"u{i}", "post:7", "m1", T0 + i, ip="10.0.0.1", device=f"d{i % 4}",
                   created=created))
    x = _subjects(v, T0 + 25)[("target", "post:7")].features
    assert x["fresh"] == 15 and x["fresh_share"] == 0.75
    assert x["users_per_device"] == 5.0 and x["top_ip_share"] == 1.0


def test_target_likers_clustered_on_shared_ips() -> None:
    v = Core(CFG, ["merchant"])
    n = 0
    for ip, users in (("1.1.1.1", 4), ("2.2.2.2", 3), ("3.3.3.3", 2)):  # clusters of 4, 3; a pair
        for _ in range(users):
            v.add(like(n, f"u{n}", "post:7", "m1", T0 + n, ip=ip))
            n += 1
    v.add(like(n, "u0", "post:7", "m1", T0 + n, ip="2.2.2.2"))  # u0 again, another address
    for i in range(11):  # honest likers, one address each
        v.add(like(100 + i, f"h{i}", "post:7", "m1", T0 + 20 + i, ip=f"9.9.9.{i}"))
    x = _subjects(v, T0 + 35)[("target", "post:7")].features
    # 1.1.1.1 carries u0-u3, 2.2.2.2 carries u4-u6 and u0: seven accounts
    assert x["users"] == 20 and x["ip_clustered"] == 7 and x["ip_clustered_share"] == 0.35


def test_target_velocity_against_own_baseline() -> None:
    v = Core(CFG.with_(window=60, tick=5), ["merchant"])
    t = T0
    for k in range(30):  # steady: one like per 5 s
        v.add(like(k, f"u{k}", "post:1", "m1", t))
        _subjects(v, t + 1)
        t += 5
    for k in range(60):  # burst: twelve per 5 s
        v.add(like(100 + k, f"b{k}", "post:1", "m1", t + k * 5 / 12))
    x = _subjects(v, t + 5)[("target", "post:1")].features
    assert x["velocity_ratio"] > 3


def test_ip_view_concentration_vs_nat() -> None:
    v = Core(CFG, ["ip"])
    for i in range(30):  # farm: 30 accounts, one target
        v.add(like(i, f"f{i}", "post:1", "m1", T0 + i, ip="1.1.1.1", device=f"fd{i % 3}"))
    for i in range(30):  # office NAT: 30 accounts, 30 targets
        v.add(like(100 + i, f"n{i}", f"post:{i}", "m2", T0 + i, ip="2.2.2.2", device=f"nd{i}"))
    s = _subjects(v, T0 + 40)
    farm, nat = s[("ip", "1.1.1.1")].features, s[("ip", "2.2.2.2")].features
    assert farm["top_target_share"] == 1.0 and farm["users_per_other"] == 10.0
    assert nat["top_target_share"] < 0.1 and nat["users_per_other"] == 1.0


def test_ip_view_merchant_concentration_and_targets_per_liker() -> None:
    v = Core(CFG, ["ip"])
    for i in range(20):  # farm: twenty accounts on two posts of one merchant
        v.add(like(i, f"f{i}", f"post:{i % 2}", "m1", T0 + i, ip="1.1.1.1"))
    for i in range(20):  # office: twelve like the employer's post, all like other things
        if i < 12:
            v.add(like(100 + i, f"n{i}", "post:boss", "m9", T0 + i, ip="2.2.2.2"))
        for k in range(2):
            v.add(like(200 + 2 * i + k, f"n{i}", f"post:x{i}-{k}", f"m{i}", T0 + i + k,
                       ip="2.2.2.2"))
    s = _subjects(v, T0 + 30)
    farm, office = s[("ip", "1.1.1.1")].features, s[("ip", "2.2.2.2")].features
    assert farm["top_merchant_share"] == 1.0 and farm["targets_per_liker"] == 0.1
    assert office["top_target_users"] == 12 and office["top_merchant_share"] == 0.6
    assert office["targets_per_liker"] == 41 / 20


def test_payments_alone_do_not_make_accounts_share_an_address() -> None:
    # a shop's face-pay kiosk: many payers on one device and IP, nobody likes from it
    v = Core(CFG, ["ip", "device"])
    for i in range(12):
        v.add(payment(i, f"c{i}", "m1", T0 + i * 10, amount=1500, ip="3.3.3.3", device="kiosk"))
    s = _subjects(v, T0 + 130)
    x = s[("ip", "3.3.3.3")].features
    assert x["users"] == 12 and x["like_users"] == 0 and x["users_per_other"] == 1.0
    d = s[("device", "kiosk")].features
    assert d["users"] == 12 and d["like_users"] == 0


def test_accounts_without_an_address_do_not_count_as_sharing_one() -> None:
    # a carrier IP: two app users on their own phones, six web users (no device
    # id); and a target liked by those eight accounts the same way
    ip, tgt = Core(CFG, ["ip"]), Core(CFG, ["merchant"])
    for i in range(8):
        dev = f"d{i}" if i < 2 else None
        ip.add(like(i, f"u{i}", f"post:{i}", "m1", T0 + i, ip="100.64.0.1", device=dev))
        tgt.add(like(i, f"u{i}", "post:1", "m1", T0 + i, ip=f"9.9.9.{i % 2 if dev else i}",
                     device=dev))
    x = _subjects(ip, T0 + 10)[("ip", "100.64.0.1")].features
    assert x["users"] == 8 and x["others"] == 2 and x["users_per_other"] == 1.0
    t = _subjects(tgt, T0 + 10)[("target", "post:1")].features
    assert t["users_per_device"] == 1.0 and t["users_per_ip"] == 1.0
    for i in range(8, 14):  # six more accounts on the first phone: now a farm
        ip.add(like(i, f"u{i}", "post:1", "m1", T0 + i, ip="100.64.0.1", device="d0"))
    assert _subjects(ip, T0 + 20)[("ip", "100.64.0.1")].features["users_per_other"] == 4.0


def test_device_view_counts_accounts_over_device_window() -> None:
    v = Core(CFG, ["device"])
    for i in range(8):
        v.add(like(i, f"u{i}", "post:1", "m1", T0 + i * 200, device="dX"))
    x = _subjects(v, T0 + 7 * 200 + 1)[("device", "dX")].features
    assert x["users"] == 8  # 23 minutes: inside the 30-minute device window


def test_user_and_lockstep_views_find_shared_history() -> None:
    v = Core(CFG, ["user", "lockstep"])  # the user view feeds its enriched likes to lockstep
    ring = [f"r{i}" for i in range(12)]
    t = T0
    for tgt in ["post:a", "post:b", "post:c"]:
        for r in ring:
            v.add(like(f"{r}{tgt}", r, tgt, "m1", t))
            t += 2
    assert v.holds_user("r0") and dict(v.sizes())["lockstep"] == (3, 36)
    x = _subjects(v, t)[("target", "post:c")].features
    assert x["likers"] == 12 and x["top_shared"] == 12
    assert x["top_share"] == 1.0 and x["second_share"] == 1.0


def test_views_forget_idle_keys() -> None:
    v = Core(CFG, ["ip"])
    for i in range(100):
        v.add(like(i, f"u{i}", "post:1", "m1", T0 + i, ip=f"10.0.0.{i}"))
    assert _size(v, "ip")[0] == 100
    assert v.sweep(T0 + 100 + CFG.window + 1) == 100
    assert _size(v, "ip") == (0, 0)
    m = Core(CFG, ["merchant"])
    for i in range(50):
        m.add(like(i, f"u{i}", f"post:{i}", f"m{i}", T0 + i))
    assert m.sweep(T0 + 50 + HORIZON + 1) == 50
    assert _size(m, "merchant") == (0, 0)


def test_sweep_keeps_a_key_touched_again_and_drops_only_expired_keys() -> None:
    # a key seen early and again late is live; one seen only in between is not
    for name, horizon in (("ip", CFG.window), ("merchant", HORIZON)):
        view = Core(CFG, [name])
        view.add(like(1, "u1", "post:1", "m1", T0, ip="10.0.0.1"))
        view.add(like(2, "u2", "post:2", "m2", T0 + 100, ip="10.0.0.2"))
        view.add(like(3, "u3", "post:1", "m1", T0 + 400, ip="10.0.0.1"))
        assert _size(view, name)[0] == 2
        assert view.sweep(T0 + horizon + 150) == 1  # only the key last seen at T0 + 100
        assert _size(view, name)[0] == 1
        if name == "ip":  # the key kept is the one touched again (still pending)
            assert [s.entity_id for s in view.evaluate(T0 + horizon + 150)] == ["10.0.0.1"]
        # ... and it goes when its last event (T0 + 400) leaves the horizon
        assert view.sweep(T0 + horizon + 399) == 0
        assert view.sweep(T0 + horizon + 400) == 1 and _size(view, name) == (0, 0)


def test_merchant_expiry_follows_latest_activity_per_user_and_target() -> None:
    v = Core(CFG, ["merchant"])
    v.add(payment(1, "u1", "m1", T0, amount=1))
    v.add(like(1, "u1", "post:1", "m1", T0 + 1))
    v.add(payment(2, "u2", "m1", T0 + 200, amount=1))
    v.add(like(2, "u2", "post:2", "m1", T0 + 201))
    s = _subjects(v, T0 + 205)
    assert s[("target", "post:1")].counts["paid_like_pairs"] == 1
    assert s[("target", "post:2")].counts["paid_like_pairs"] == 1
    v.add(payment(3, "u1", "m1", T0 + 600, amount=1))  # u1 pays again: kept, moved last
    v.add(like(3, "u1", "post:1", "m1", T0 + 601))  # post:1 liked again: kept
    s = _subjects(v, T0 + 605)
    assert s[("target", "post:1")].counts["paid_like_pairs"] == 2  # post:1: 2, post:2: 1
    assert s[("merchant", "m1")].counts["paid_like_pairs"] == 3
    assert ("target", "post:2") not in s  # not touched since
    keys, items = _size(v, "merchant")
    # u2's payment and like are past the join, post:2's like past the window:
    # exactly those three go; u1 (paid and liked again) and post:1 stay
    assert v.sweep(T0 + 201 + CFG.join_window) == 0
    assert _size(v, "merchant") == (keys, items - 3)
    # the first pair leaves the long window: post:1 keeps one pair, post:2 its one
    assert v.sweep(T0 + 1 + CFG.long_window) == 0
    assert _size(v, "merchant") == (1, 4)  # two pairs and two token payments are left
    for i, tgt in enumerate(("post:1", "post:2")):  # likes that bring the targets back
        v.add(like(10 + i, "u9", tgt, "m1", T0 + 1 + CFG.long_window))
    subj = {s.entity_id: s for s in v.evaluate(T0 + 1 + CFG.long_window)}
    assert subj["post:1"].features["pairs"] == 1 and subj["post:2"].features["pairs"] == 1
    assert subj["m1"].features["pairs"] == 2 and subj["m1"].window_start == T0 + 201


def test_accounts_made_days_ago_are_fresh_for_a_week() -> None:
    v = Core(CFG, ["merchant"])
    ages = [2, 4, 6, 8, 30, 400]  # days
    for i, age in enumerate(ages):
        v.add(like(i, f"u{i}", "post:8", "m1", T0 + i, created=T0 - age * 86400))
    x = _subjects(v, T0 + 10)[("target", "post:8")].features
    assert x["fresh"] == 3 and x["fresh_share"] == 0.5


def test_likers_sharing_devices_on_a_target() -> None:
    """A proxy farm: each account on its own address, the accounts spread
    over three emulated devices; the target's likers on devices that carry
    two or more of them. A family's four accounts on one tablet among a
    post's other likers are a few of them."""
    farm = Core(CFG, ["merchant"])
    for i in range(8):
        farm.add(like(i, f"a{i}", "post:1", "m1", T0 + 10 * i, ip=f"203.0.113.{i}",
                      device=f"emu{i % 3}"))
    x = _subjects(farm, T0 + 80)[("target", "post:1")].features
    assert x["device_clustered"] == 8 and x["device_clustered_share"] == 1.0
    assert x["users_per_device"] == 8 / 3
    assert FarmTarget().score_one(x) >= 0.5
    post = Core(CFG, ["merchant"])
    for i in range(4):
        post.add(like(i, f"f{i}", "post:2", "m2", T0 + 20 * i, ip="198.51.100.7", device="tablet"))
    for i in range(10):
        post.add(like(10 + i, f"o{i}", "post:2", "m2", T0 + 5 * i, ip=f"192.0.2.{i}",
                      device=f"phone{i}"))
    x = _subjects(post, T0 + 80)[("target", "post:2")].features
    assert x["device_clustered"] == 4 and x["device_clustered_share"] == 4 / 14
    assert FarmTarget().score_one(x) < 0.5


def test_a_device_behind_proxies_and_a_family_device_on_ipv6() -> None:
    """Three accounts liking one merchant from one device, each from an
    address no other used, are a proxy farm; a family's three accounts on a
    tablet at home with IPv6 privacy addresses (one /64, a different address
    each) share one line, and on mobile data they like many merchants'
    content."""
    def device(ips: list[str], merchants: list[str]) -> dict[str, float]:
        core = Core(CFG, ["device"])
        for i, ip in enumerate(ips):
            for k, m in enumerate(merchants):
                core.add(like(f"{i}-{k}", f"u{i}", f"post:{m}", m, T0 + 60 * i + k, ip=ip,
                              device="d1"))
        features: dict[str, float] = _subjects(core, T0 + 200)[("device", "d1")].features
        return features

    farm = device(["203.0.113.1", "198.51.100.2", "2001:db8:1:2::9"], ["m1"])
    assert farm["solo_line_users"] == 3 and farm["top_merchant_like_share"] == 1.0
    assert DeviceFarm().score_one(farm) >= 0.5
    home = device([f"2001:db8:1:2:{i}::{i + 7}" for i in range(3)], ["m1"])
    assert home["others"] == 1 and home["solo_line_users"] == 0
    assert DeviceFarm().score_one(home) < 0.5
    # two of them at home, one on mobile data: one account on a line of its own
    half_home = device(["2001:db8:1:2::7", "2001:db8:1:2:ab::8", "203.0.113.1"], ["m1"])
    assert half_home["others"] == 2 and half_home["solo_line_users"] == 1
    assert DeviceFarm().score_one(half_home) < 0.5
    mobile = device(["203.0.113.1", "198.51.100.2", "192.0.2.3"], ["m1", "m2", "m3", "m4"])
    assert mobile["top_merchant_share"] == 1.0 and mobile["top_merchant_like_share"] == 0.25
    assert DeviceFarm().score_one(mobile) < 0.5
