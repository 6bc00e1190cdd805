"""The payment->like join and the per-entity features of each view."""

from __future__ import annotations

from detectors.config import EngineConfig
from detectors.views import DeviceView, IpView, LockstepView, MerchantView, UserView
from tests.helpers import T0, like, payment

CFG = EngineConfig(min_support=1, min_pairs=1, min_likes=1, min_ip_events=1)


def _subjects(view, now):
    return {(s.entity_type, s.entity_id): s for s in view.evaluate(now)}


def test_join_matches_payment_before_like_only_within_window() -> None:
    v = MerchantView(CFG)
    v.add(payment(1, "u1", "m1", T0, amount=1))
    v.add(like(1, "u1", "post:1", "m1", T0 + 5))  # prompt pair
    v.add(payment(2, "u2", "m1", T0, amount=5000))
    v.add(like(2, "u2", "post:1", "m1", T0 + 400))  # joined, not prompt
    v.add(payment(3, "u3", "m1", T0 - 700, amount=1))
    v.add(like(3, "u3", "post:1", "m1", T0 + 10))  # outside join window
    v.add(like(4, "u4", "post:1", "m2", T0 + 10))  # other merchant
    assert v.matches["pay_then_like"] == 2
    st = v.state["m1"]
    assert [(p[1], p[3]) for p in st.pairs] == [("u1", 5.0)]
    x = _subjects(v, T0 + 15)[("merchant", "m1")].features
    assert x["pairs"] == 1 and x["token_users"] == 1 and x["token_share"] == 1.0


def test_like_then_pay_is_its_own_feature() -> None:
    v = MerchantView(CFG)
    for i in range(5):  # coupon campaign: like first, pay a real amount minutes later
        v.add(like(i, f"u{i}", "post:1", "m1", T0 + i))
        v.add(payment(i, f"u{i}", "m1", T0 + 120 + i, amount=3900))
    assert v.matches == {"pay_then_like": 0, "like_then_pay": 5}
    assert ("merchant", "m1") not in _subjects(v, T0 + 130)  # no paid pairs: nothing to score
    x = v._merchant_subject("m1", v.state["m1"], T0 + 130).features
    assert x["coupon_share"] == 1.0 and x["pairs"] == 0 and x["token_pay_share"] == 0.0


def test_a_payment_arriving_after_its_like_still_pairs() -> None:
    # a notification from a backlog, taken out of order (allowed_lateness): the
    # join runs from the payment's side; it is no like-then-pay coupon
    v = MerchantView(CFG)
    v.add(like(1, "u1", "post:1", "m1", T0 + 8))
    v.add(payment(1, "u1", "m1", T0, amount=1))
    assert v.matches == {"pay_then_like": 1, "like_then_pay": 0}
    st = v.state["m1"]
    assert [(p[1], p[3], p[4], p[5], p[6]) for p in st.pairs] == [("u1", 8.0, "l-1", "tx-1",
                                                                     "post:1")]
    assert not st.coupons and st.pair_targets == {"post:1": 1}
    assert _subjects(v, T0 + 15)[("merchant", "m1")].features["token_users"] == 1


def test_paid_pair_features_amounts_and_delays() -> None:
    v = MerchantView(CFG)
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
    v = MerchantView(CFG)
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
    v = MerchantView(CFG)
    for i, ts in enumerate((T0, T0 + 200, T0 + 290)):
        v.add(payment(i, f"u{i}", "m1", ts, amount=1))
        v.add(like(i, f"u{i}", "post:1", "m1", ts + 5))
    v.add(payment(9, "u0", "m1", T0 + 291, amount=1))  # the same account again
    v.add(like(9, "u0", "post:1", "m1", T0 + 296))
    x = _subjects(v, T0 + 300)[("merchant", "m1")].features
    assert x["token_users"] == 3 and x["token_users_w"] == 3
    # later, the first account's first pair (T0 + 5) has left the window but its
    # second pair has not; the second account's pair (T0 + 205) has left it
    x = v._merchant_subject("m1", v.state["m1"], T0 + 506).features
    assert x["token_users"] == 3 and x["token_users_w"] == 2


def test_token_conversion_counts_token_payers_who_liked_promptly() -> None:
    # a game shop: ten 98-fen top-ups, two of them followed by a like within seconds
    game = MerchantView(CFG)
    for i in range(10):
        game.add(payment(i, f"g{i}", "m1", T0 + i * 60, amount=98))
    for i in (8, 9):
        game.add(like(i, f"g{i}", "live:1", "m1", T0 + i * 60 + 10))
    x = _subjects(game, T0 + 600)[("merchant", "m1")].features
    assert x["token_users"] == 2 and x["token_conversion"] == 0.2
    # a task: every worker pays 1 fen and likes at once; the last payer's like
    # may still come (paid less than paid_delay ago): not counted against it
    task = MerchantView(CFG)
    for i in range(4):
        task.add(payment(i, f"w{i}", "m2", T0 + i * 60, amount=1))
        if i < 3:
            task.add(like(i, f"w{i}", "post:1", "m2", T0 + i * 60 + 15))
    s = _subjects(task, T0 + 200)
    assert s[("merchant", "m2")].features["token_conversion"] == 1.0
    assert s[("target", "post:1")].features["token_conversion"] == 1.0
    x = task._merchant_subject("m2", task.state["m2"], T0 + 180 + CFG.paid_delay + 1).features
    assert x["token_conversion"] == 0.75  # the fourth never liked


def test_target_likers_who_just_bought_are_customers() -> None:
    v = MerchantView(CFG)
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
    v = MerchantView(CFG)
    for i in range(20):
        created = T0 - 3600 if i < 15 else T0 - 400 * 86400
        v.add(like(i, f"u{i}", "post:7", "m1", T0 + i, ip="10.0.0.1", device=f"d{i % 4}",
                   created=created))
    x = _subjects(v, T0 + 25)[("target", "post:7")].features
    assert x["fresh"] == 15 and x["fresh_share"] == 0.75
    assert x["users_per_device"] == 5.0 and x["top_ip_share"] == 1.0


def test_target_likers_clustered_on_shared_ips() -> None:
    v = MerchantView(CFG)
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
    v = MerchantView(CFG.with_(window=60, tick=5))
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
    v = IpView(CFG)
    for i in range(30):  # farm: 30 accounts, one target
        v.add(like(i, f"f{i}", "post:1", "m1", T0 + i, ip="1.1.1.1", device=f"fd{i % 3}"))
    for i in range(30):  # office NAT: 30 accounts, 30 targets
        v.add(like(100 + i, f"n{i}", f"post:{i}", "m2", T0 + i, ip="2.2.2.2", device=f"nd{i}"))
    s = _subjects(v, T0 + 40)
    farm, nat = s[("ip", "1.1.1.1")].features, s[("ip", "2.2.2.2")].features
    assert farm["top_target_share"] == 1.0 and farm["users_per_other"] == 10.0
    assert nat["top_target_share"] < 0.1 and nat["users_per_other"] == 1.0


def test_ip_view_merchant_concentration_and_targets_per_liker() -> None:
    v = IpView(CFG)
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
    ip, dev = IpView(CFG), DeviceView(CFG)
    for i in range(12):
        p = payment(i, f"c{i}", "m1", T0 + i * 10, amount=1500, ip="3.3.3.3", device="kiosk")
        ip.add(p)
        dev.add(p)
    x = _subjects(ip, T0 + 130)[("ip", "3.3.3.3")].features
    assert x["users"] == 12 and x["like_users"] == 0 and x["users_per_other"] == 1.0
    d = _subjects(dev, T0 + 130)[("device", "kiosk")].features
    assert d["users"] == 12 and d["like_users"] == 0


def test_accounts_without_an_address_do_not_count_as_sharing_one() -> None:
    # a carrier IP: two app users on their own phones, six web users (no device
    # id); and a target liked by those eight accounts the same way
    ip, tgt = IpView(CFG), MerchantView(CFG)
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
    v = DeviceView(CFG)
    for i in range(8):
        v.add(like(i, f"u{i}", "post:1", "m1", T0 + i * 200, device="dX"))
    x = _subjects(v, T0 + 7 * 200 + 1)[("device", "dX")].features
    assert x["users"] == 8  # 23 minutes: inside the 30-minute device window


def test_user_and_lockstep_views_find_shared_history() -> None:
    u, lk = UserView(CFG), LockstepView(CFG)
    ring = [f"r{i}" for i in range(12)]
    t = T0
    for tgt in ["post:a", "post:b", "post:c"]:
        for r in ring:
            co = u.add(like(f"{r}{tgt}", r, tgt, "m1", t))
            lk.add(co)
            t += 2
    x = _subjects(lk, t)[("target", "post:c")].features
    assert x["likers"] == 12 and x["top_shared"] == 12
    assert x["top_share"] == 1.0 and x["second_share"] == 1.0


def test_views_forget_idle_keys() -> None:
    v = IpView(CFG)
    for i in range(100):
        v.add(like(i, f"u{i}", "post:1", "m1", T0 + i, ip=f"10.0.0.{i}"))
    assert v.size()[0] == 100
    v.sweep(T0 + 100 + CFG.window + 1)
    assert v.size() == (0, 0)
    m = MerchantView(CFG)
    for i in range(50):
        m.add(like(i, f"u{i}", f"post:{i}", f"m{i}", T0 + i))
    m.sweep(T0 + 50 + m.horizon() + 1)
    assert m.size() == (0, 0)


def test_sweep_keeps_a_key_touched_again_and_drops_only_expired_keys() -> None:
    # a key seen early and again late is live; one seen only in between is not
    for view in (IpView(CFG), MerchantView(CFG)):
        view.add(like(1, "u1", "post:1", "m1", T0, ip="10.0.0.1"))
        view.add(like(2, "u2", "post:2", "m2", T0 + 100, ip="10.0.0.2"))
        view.add(like(3, "u3", "post:1", "m1", T0 + 400, ip="10.0.0.1"))
        keys = ("10.0.0.1", "10.0.0.2") if view.name == "ip" else ("m1", "m2")
        horizon = view.horizon()
        assert view.sweep(T0 + horizon + 150) == 1  # only the key last seen at T0 + 100
        assert set(view.state) == {keys[0]} and list(view.last_seen) == [keys[0]]
        assert view.sweep(T0 + horizon + 400) == 1 and not view.state


def test_merchant_expiry_follows_latest_activity_per_user_and_target() -> None:
    v = MerchantView(CFG)
    v.add(payment(1, "u1", "m1", T0, amount=1))
    v.add(like(1, "u1", "post:1", "m1", T0 + 1))
    v.add(payment(2, "u2", "m1", T0 + 200, amount=1))
    v.add(like(2, "u2", "post:2", "m1", T0 + 201))
    v.add(payment(3, "u1", "m1", T0 + 600, amount=1))  # u1 pays again: kept, moved last
    v.add(like(3, "u1", "post:1", "m1", T0 + 601))  # post:1 liked again: kept
    st = v.state["m1"]
    assert st.pair_targets == {"post:1": 2, "post:2": 1}
    v._expire(st, T0 + 201 + CFG.join_window)  # u2's payment and like are past the join
    assert list(st.pays) == ["u1"] and list(st.liked) == ["u1"]
    assert set(st.targets) == {"post:1"}  # post:2's like is past the window
    v._expire_windows(st, T0 + 1 + CFG.long_window)  # the first pair leaves the long window
    assert st.pair_targets == {"post:1": 1, "post:2": 1} and len(st.pairs) == 2
    subj = {s.entity_id: s for s in v.evaluate(T0 + 610)}
    assert subj["post:1"].features["pairs"] == 1


def test_accounts_made_days_ago_are_fresh_for_a_week() -> None:
    v = MerchantView(CFG)
    ages = [2, 4, 6, 8, 30, 400]  # days
    for i, age in enumerate(ages):
        v.add(like(i, f"u{i}", "post:8", "m1", T0 + i, created=T0 - age * 86400))
    x = _subjects(v, T0 + 10)[("target", "post:8")].features
    assert x["fresh"] == 3 and x["fresh_share"] == 0.5
