"""The soak benchmark's traffic (tests/bench/soak.py), without a broker: valid
events, on schedule, 20% of likes on the hot target, a burst of new devices."""

from __future__ import annotations

from detectors.events import Like, Payment
from detectors.parsing import parse_like, parse_payment
from tests.bench.soak import HOT_TARGET, LIKES, PAYMENTS, SoakTraffic, summarize

T0 = 1_764_000_000.0


def events(traffic: SoakTraffic, until: float, step: float = 0.37) -> list[tuple[str, float, bytes]]:
    out: list[tuple[str, float, bytes]] = []
    t = traffic.start
    while t < until:
        t = min(until, t + step)
        out += traffic.due(t)
    return out


def test_events_are_valid_on_schedule_and_hot_target_gets_a_fifth() -> None:
    tr = SoakTraffic(start=T0, rate=500, burst_start=T0 + 20, burst_end=T0 + 40, burst_devices=4000)
    evs = events(tr, T0 + 60)
    assert len(evs) == 500 * 60 + 1 + 4000  # steady events at 0, 1/500, ..., 60 s; the whole burst
    times = [t for _, t, _ in evs]
    assert times == sorted(times)
    likes: list[Like] = []
    for kind, t, value in evs:
        if kind == PAYMENTS:
            p = parse_payment(value)
            assert isinstance(p, Payment) and abs(p.ts - t) < 1e-3
        else:
            assert kind == LIKES
            like = parse_like(value)
            assert abs(like.ts - t) < 1e-3
            likes.append(like)
    hot = sum(lk.target == HOT_TARGET for lk in likes)
    assert 0.18 < hot / len(likes) < 0.22
    assert tr.counts["burst_likes"] == 4000
    burst_devices = {lk.device for lk in likes if T0 + 20 <= lk.ts < T0 + 40
                     and "-bd" in (lk.device or "")}
    assert len(burst_devices) == 4000  # one new device per burst like


def test_users_come_and_go_and_the_schedule_is_call_independent() -> None:
    a = SoakTraffic(start=T0, rate=200, seed=3)
    b = SoakTraffic(start=T0, rate=200, seed=3)
    ea, eb = events(a, T0 + 600), events(b, T0 + 600, step=5.0)
    assert ea == eb
    users_early = {parse_like(v).user for k, t, v in ea if k == LIKES and t < T0 + 60}
    users_late = {parse_like(v).user for k, t, v in ea if k == LIKES and t > T0 + 300}
    assert users_early and users_late and not users_early & users_late  # ever-new users


def test_summary_compares_end_and_peak_with_the_pre_burst_baseline() -> None:
    def s(t: float, rss: float, items: int, lag: int = 0) -> dict:
        return {"t_s": t, "rss_mib": rss, "items_total": items, "lag_input": lag, "lag_views": 0,
                "window_items": {"device": items}, "keys": {}, "alerts": 0, "late": 0}

    samples = [s(0, 100, 0), s(60, 200, 1000), s(120, 500, 9000), s(180, 210, 1100, lag=5)]
    windows = {"device": 30.0, "user": 3600.0}
    summary, why = summarize(samples, (90, 150), rate=10, tolerance=0.25, windows=windows)
    assert summary["baseline"]["rss_mib"] == 200
    assert summary["peak_over_baseline_rss"] == 2.5
    assert summary["end_over_baseline_rss"] == 1.05
    assert summary["views_holding_burst_at_end"] == ["user"]
    assert not why
    _, why = summarize(samples[:3], (90, 150), rate=10, tolerance=0.25, windows=windows)
    assert why and "2.50 times" in why[0]
