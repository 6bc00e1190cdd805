"""The engine end to end on simulated traffic: determinism, restarts, views, memory."""

from __future__ import annotations

import functools
import gzip
import hashlib
import hmac
import io
import pickle
import struct
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from detectors.config import EngineConfig
from detectors.engine import ALL_VIEWS, Engine, route_keys
from detectors.events import Like, Payment, format_time
from detectors.recording import read_records
from detectors.replay import ReplaySummary, iter_events, replay, replay_file, replay_records
from detectors.simulate import SimConfig, simulate
from tests.helpers import T0, Topology, like, like_json, payment, payment_json

KEY = b"engine-tests-checkpoint-key-0123456789"


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("rec")
    path = d / "r.jsonl.gz"
    simulate(SimConfig(seed=4242, duration=2400, rate=20, campaigns=5, benign=5,
                       bad_rate=0.01, duplicate_rate=0.02, partitions=3), path, d / "l.json")
    return path


def _events(path: Path) -> list:
    return list(iter_events(read_records(path), ReplaySummary()))


def _strip(lines: str) -> list[dict]:
    out = []
    for line in lines.splitlines():
        a = orjson.loads(line)
        assert a.pop("emitted_at")
        out.append(a)
    return out


def test_two_replays_identical_but_emitted_at(recording: Path) -> None:
    a, b = io.StringIO(), io.StringIO()
    sa = replay(recording, a)
    replay(recording, b)
    assert sa.alerts > 0 and sa.duplicates > 0 and sum(sa.rejected.values()) > 0
    assert _strip(a.getvalue()) == _strip(b.getvalue())


def test_alerts_follow_contract(recording: Path) -> None:
    buf = io.StringIO()
    replay(recording, buf)
    alerts = [orjson.loads(x) for x in buf.getvalue().splitlines()]
    ids = [a["alert_id"] for a in alerts]
    assert len(ids) == len(set(ids))
    for a in alerts:
        assert a["entity"]["type"] in ("merchant", "target", "user", "ip", "device")
        assert 0 <= a["score"] <= 1
        assert a["severity"] in ("info", "warning", "critical")
        assert a["action"] in ("review", "clear_likes", "limit_payments", "ban")
        assert a["reasons"] and all(set(r) == {"code", "detail", "value", "threshold"}
                                    for r in a["reasons"])
        assert len(a["evidence"]["sample_ids"]) <= 20
        assert a["window"]["start"] <= a["window"]["end"]


def _run(engine: Engine, events: list) -> list[str]:
    ids = []
    for ev in events:
        ids += [a.alert_id for a in engine.process(ev)]
    return ids + [a.alert_id for a in engine.flush()]


def test_snapshot_restore_mid_stream_gives_same_alerts(recording: Path) -> None:
    events = _events(recording)
    whole = _run(Engine(), events)
    cut = len(events) // 2
    first = Engine()
    ids = []
    for ev in events[:cut]:
        ids += [a.alert_id for a in first.process(ev)]
    restored = Engine.restore(first.snapshot(key=KEY), key=KEY)
    ids += _run(restored, events[cut:])
    assert whole and ids == whole


def test_snapshot_of_another_state_version_is_refused() -> None:
    eng = Engine()
    eng.process(Like("l1", "u1", "post:1", "m1", 100.0))
    snap = eng.snapshot(key=KEY)
    older = snap[:8] + struct.pack("<I", Engine.STATE_VERSION - 1) + snap[12:]
    with pytest.raises(ValueError, match=f"state version {Engine.STATE_VERSION - 1}"):
        Engine.restore(older, key=KEY)
    # a checkpoint of version 4 or older was a pickle of the whole engine
    with pytest.raises(ValueError, match="not an engine snapshot"):
        Engine.restore(pickle.dumps({"state_version": 4}), key=KEY)
    assert Engine.restore(snap, key=KEY).state_version == Engine.STATE_VERSION


# ----------------------------------------------------------------------------- signatures

#: the snapshot's fixed part: magic, then version and three part lengths (u32 each)
_FIXED = 8 + 16
_MAC = 32


def _parts(snap: bytes) -> tuple[bytes, bytes, bytes, bytes]:
    """A snapshot's header, core, pickle and signature."""
    _, hlen, clen, rlen = struct.unpack_from("<IIII", snap, 8)
    at = _FIXED
    return (snap[at:at + hlen], snap[at + hlen:at + hlen + clen],
            snap[at + hlen + clen:at + hlen + clen + rlen], snap[-_MAC:])


def _assemble(header: bytes, core: bytes, rest: bytes, key: bytes | None,
              context: bytes = b"") -> bytes:
    """A snapshot of these parts, signed with ``key`` as the engine signs
    (``None``: no signature at all)."""
    body = b"".join((b"LGENGINE", struct.pack("<IIII", Engine.STATE_VERSION, len(header),
                                              len(core), len(rest)), header, core, rest))
    if key is None:
        return body
    mac = hmac.new(key, struct.pack("<I", len(context)) + context + body, hashlib.sha256)
    return body + mac.digest()


#: set by :class:`_Payload` when a pickle it is in gets loaded
_RAN: list[str] = []


def _ran(what: str) -> None:
    _RAN.append(what)


class _Payload:
    """What a forger would put in the pickle: loading it calls a function of
    their choosing (here one that only records the call)."""

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return _ran, ("pickle payload ran",)


@pytest.fixture
def signed() -> tuple[Engine, bytes]:
    eng = Engine()
    for i in range(50):
        eng.process(Like(f"l{i}", f"u{i}", "post:1", "m1", 100.0 + i, device="d1"))
    return eng, eng.snapshot(key=KEY, context=b"device/3@120")


def test_a_signed_snapshot_restores_with_its_key_and_context(signed) -> None:
    eng, snap = signed
    again = Engine.restore(snap, key=KEY, context=b"device/3@120")
    assert again.stats == eng.stats and again.sizes() == eng.sizes()
    assert again.watermark == eng.watermark and again.cfg == eng.cfg


def test_a_forged_snapshot_is_refused_before_its_pickle_is_loaded(signed) -> None:
    """Whoever can write the checkpoint topic but lacks the key can build a
    snapshot with any pickle in it: unsigned, signed with a key of their own,
    or carrying a genuine snapshot's signature. Each is refused and the pickle
    never loaded (its payload would run code in the worker)."""
    _, snap = signed
    header, core, _rest, tag = _parts(snap)
    evil = pickle.dumps(_Payload())
    pickle.loads(evil)
    assert _RAN == ["pickle payload ran"]  # the payload does run when loaded
    _RAN.clear()
    forgeries = {
        "signed with another key": _assemble(header, core, evil, b"attacker-key-" + b"x" * 20,
                                             b"device/3@120"),
        "a genuine snapshot's signature": _assemble(header, core, evil, None) + tag,
        "no signature": _assemble(header, core, evil, None),
    }
    for what, forged in forgeries.items():
        with pytest.raises(ValueError, match="signature does not verify|truncated"):
            Engine.restore(forged, key=KEY, context=b"device/3@120")
        assert _RAN == [], what


def test_a_snapshot_is_refused_with_another_key_or_context(signed) -> None:
    _, snap = signed
    with pytest.raises(ValueError, match="signature does not verify"):
        Engine.restore(snap, key=KEY + b"!", context=b"device/3@120")
    # moved to another partition, or presented as resuming from another offset
    for context in (b"device/4@120", b"device/3@121", b"", b"device/3@12"):
        with pytest.raises(ValueError, match="signature does not verify"):
            Engine.restore(snap, key=KEY, context=context)
    with pytest.raises(ValueError, match="non-empty checkpoint key"):
        Engine.restore(snap, key=b"")
    with pytest.raises(ValueError, match="non-empty checkpoint key"):
        Engine().snapshot(key=b"")


def test_a_tampered_byte_anywhere_is_refused(signed) -> None:
    """One flipped bit in any part (the version and lengths, the settings,
    the core's state, the pickle, the signature itself) is refused."""
    _, snap = signed
    header, core, rest, tag = _parts(snap)
    spans = {"lengths": (12, _FIXED), "header": (_FIXED, _FIXED + len(header))}
    spans["core"] = (spans["header"][1], spans["header"][1] + len(core))
    spans["pickle"] = (spans["core"][1], spans["core"][1] + len(rest))
    spans["signature"] = (len(snap) - len(tag), len(snap))
    for start, end in spans.values():
        for pos in (start, (start + end) // 2, end - 1):  # first, middle and last byte
            bad = bytearray(snap)
            bad[pos] ^= 0x01
            with pytest.raises(ValueError, match="signature|truncated"):
                Engine.restore(bytes(bad), key=KEY, context=b"device/3@120")
    # every single byte of a small snapshot
    small = Engine(views=["device"]).snapshot(key=KEY)
    for pos in range(8, len(small)):
        bad = bytearray(small)
        bad[pos] ^= 0x80
        with pytest.raises(ValueError):
            Engine.restore(bytes(bad), key=KEY)


def test_a_truncated_snapshot_is_refused(signed) -> None:
    _, snap = signed
    for cut in (9, 12, 20, 24, 100, len(snap) // 2, len(snap) - _MAC, len(snap) - 1):
        with pytest.raises(ValueError, match="truncated snapshot|not an engine snapshot"):
            Engine.restore(snap[:cut], key=KEY, context=b"device/3@120")
    with pytest.raises(ValueError, match="1 bytes after its signature"):
        Engine.restore(snap + b"\0", key=KEY, context=b"device/3@120")


def test_a_corrupt_or_foreign_core_state_is_refused() -> None:
    """A signed snapshot whose core part is not the core's (a bug, not an
    attack: the signature verifies) is refused by the core's own checks."""
    eng = Engine()
    for i in range(50):
        eng.process(Like(f"l{i}", f"u{i}", "post:1", "m1", 100.0 + i, device="d1"))
    header, core, rest, _tag = _parts(eng.snapshot(key=KEY))
    with pytest.raises(ValueError, match="core snapshot"):
        Engine.restore(_assemble(header, core[:len(core) // 2], rest, KEY), key=KEY)
    with pytest.raises(ValueError, match="not a likeguard core snapshot"):
        Engine.restore(_assemble(header, b"NOTCORE!" + core[8:], rest, KEY), key=KEY)


def test_snapshot_settings_from_before_a_new_setting_restore() -> None:
    """Earlier versions pickled EngineConfig with its field values as a list in
    field order; settings added since (``max_ahead``, ``allowed_lateness``,
    ``max_behind``, the verdicts' settings and ``token_delay``) take their defaults."""
    import pickle
    from dataclasses import fields

    cfg = EngineConfig(grace=3.0, seed=7)
    older = [getattr(cfg, f.name) for f in fields(cfg)
             if f.name not in ("max_ahead", "allowed_lateness", "max_behind", "dismiss_for",
                               "rank_below", "rank_after", "watch_for", "token_delay",
                               "rank_share", "dismiss_merchant_for")]

    class Older:  # pickles as the older version's EngineConfig did
        def __reduce__(self) -> tuple[object, ...]:
            return object.__new__, (EngineConfig,), older

    restored = pickle.loads(pickle.dumps(Older()))
    assert type(restored) is EngineConfig and restored == cfg
    assert restored.max_ahead == EngineConfig().max_ahead
    assert pickle.loads(pickle.dumps(cfg)) == cfg  # today's snapshots keep every field


def test_redelivery_after_restore_is_not_counted_twice(recording: Path) -> None:
    events = _events(recording)
    whole = set(_run(Engine(), events))
    cut = len(events) // 2
    eng = Engine()
    ids = set()
    for ev in events[:cut]:
        ids |= {a.alert_id for a in eng.process(ev)}
    snap = eng.snapshot(key=KEY)
    for ev in events[cut:cut + 500]:  # processed, then the worker dies before its checkpoint
        ids |= {a.alert_id for a in eng.process(ev)}
    again = Engine.restore(snap, key=KEY)
    ids |= set(_run(again, events[cut:]))  # the broker redelivers from the checkpoint
    assert ids == whole


def test_views_split_across_engines_equal_one_engine(recording: Path) -> None:
    """The worker runs each view on its own repartitioned topic; same alerts."""
    events = _events(recording)
    whole = sorted(_run(Engine(), events))
    engines = {v: Engine(views=[v]) for v in ALL_VIEWS}
    ids: list[str] = []
    for ev in events:
        for view in route_keys(ev):
            eng = engines[view]
            ids += [a.alert_id for a in eng.process(ev)]
            for target_view, _key, co in eng.take_forwards():
                ids += [a.alert_id for a in engines[target_view].process(co)]
    for view in ALL_VIEWS:
        ids += [a.alert_id for a in engines[view].flush()]
        for target_view, _key, co in engines[view].take_forwards():
            ids += [a.alert_id for a in engines[target_view].process(co)]
    ids += [a.alert_id for a in engines["lockstep"].flush()]
    assert sorted(ids) == whole


def test_duplicates_and_late_events_are_dropped_and_counted() -> None:
    eng = Engine(EngineConfig(grace=5, allowed_lateness=60))
    eng.process(like(1, "u1", "post:1", "m1", T0))
    eng.process(like(1, "u1", "post:1", "m1", T0))
    eng.process(like(2, "u2", "post:1", "m1", T0 + 100))
    eng.process(like(3, "u3", "post:1", "m1", T0 + 10))  # 85 s behind watermark T0+95
    assert eng.stats["duplicates"] == 1 and eng.stats["late"] == 1 and eng.stats["like"] == 2
    # delivered again behind the watermark (a retry, or consumed again after a
    # restart): a duplicate, not a late event
    eng.process(like(1, "u1", "post:1", "m1", T0))
    assert eng.stats["duplicates"] == 2 and eng.stats["late"] == 1 and eng.stats["like"] == 2
    # within allowed_lateness: taken (out of order), once
    eng.process(like(4, "u4", "post:1", "m1", T0 + 40))
    eng.process(like(4, "u4", "post:1", "m1", T0 + 40))
    assert eng.stats["late_admitted"] == 1 and eng.stats["like"] == 3
    assert eng.stats["duplicates"] == 3 and eng.stats["late"] == 1
    assert eng.core.holds_user("u4") and not eng.core.holds_user("u3")


def test_late_events_within_allowed_lateness_still_count() -> None:
    """Likes flushed minutes late from phones' offline queues, and the payments
    of a paid task delivered from a notification backlog after the likes they
    paid for: taken out of order, they make the same alerts as when on time."""
    on_time: list[Payment | Like] = []
    for i in range(12):
        t = T0 + 30 * i
        on_time += [payment(i, f"w{i}", "m9", t, amount=1),
                    like(i, f"w{i}", "post:9", "m9", t + 8, device=f"farm{i % 2}")]
    filler = [like(100 + k, f"o{k}", f"post:{k}", f"m{k}", T0 + 5 * k) for k in range(150)]

    on = Engine(EngineConfig(mode="rules"))
    expected = [a for ev in sorted([*on_time, *filler], key=lambda e: e.ts) for a in on.process(ev)]
    expected += on.flush()
    assert any(a.entity_id == "m9" for a in expected)
    # the campaign's payments and half its likes arrive five minutes after the rest
    delayed = {id(e) for e in on_time[::2]} | {id(e) for e in on_time[1::4]}

    def delivered(cfg: EngineConfig):
        eng = Engine(cfg)
        alerts = []
        stream = sorted([*on_time, *filler], key=lambda e: e.ts + (300 if id(e) in delayed else 0))
        for ev in stream:
            alerts += eng.process(ev)
        return eng, alerts + eng.flush()

    eng, got = delivered(EngineConfig(mode="rules"))
    assert eng.stats["late"] == 0 and eng.stats["late_admitted"] == len(delayed)
    assert eng.joins["pay_then_like"] == 12
    # the same entities alert (the post's first alert may come from another rule:
    # by the time it is evaluated, its likers' two devices are plain to see)
    assert {a.entity_id for a in got} >= {"m9", "post:9"}
    assert {a.detector for a in got if a.entity_id == "m9"} == \
        {a.detector for a in expected if a.entity_id == "m9"}
    # without allowed lateness the same delivery loses them
    strict, lost = delivered(EngineConfig(mode="rules", allowed_lateness=0))
    assert strict.stats["late"] == len(delayed) and not any(a.entity_id == "m9" for a in lost)


def test_out_of_order_within_grace_gives_same_alerts() -> None:
    base = [like(i, f"u{i}", "post:1", "m1", T0 + i * 2, device="dev") for i in range(30)]
    shuffled = base[:]
    for i in range(0, 28, 3):  # swap neighbours: disorder of a few seconds
        shuffled[i], shuffled[i + 2] = shuffled[i + 2], shuffled[i]
    a = _run(Engine(EngineConfig(grace=10)), base)
    b = _run(Engine(EngineConfig(grace=10)), shuffled)
    assert a and a == b


def test_memory_follows_active_keys() -> None:
    from detectors import _core

    interned = _core.interned_ids()
    eng = Engine(EngineConfig(mode="rules"))
    t = T0
    n = 60_000  # 8 h 20 min of event time: several times the longest horizon (1 h)
    for i in range(n):  # every event from a new user, device, IP: an endless stream
        t += 0.5
        eng.process(Like(f"l{i}", f"u{i}", f"post:{i % 50}", f"m{i % 7}", t,
                         ip=f"10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}", device=f"d{i}"))
        if i % 2 == 0 and i >= 600:  # every other liker buys five minutes later
            eng.process(payment(i, f"u{i - 600}", f"m{(i - 600) % 7}", t, amount=4000))
    sizes = eng.metrics()["state"]
    cfg = eng.cfg
    # a key lives at most its view's horizon plus one sweep period; 2 new keys/s
    for view, horizon in (("ip", cfg.window), ("device", cfg.device_window),
                          ("user", cfg.lockstep_window)):
        assert sizes[view][0] <= 2 * (horizon + cfg.window) + 10, view
        assert sizes[view][0] < n / 4
    assert eng.core.remembered < 3 * 3600 * 3
    assert len(eng.suppressor) == 0
    # the interned ids follow the windows too: of the stream's 270,000
    # distinct ids (likes, payments, accounts, devices, addresses), those
    # still held, and at most as many again awaiting the pool's next sweep
    assert _core.interned_ids() - interned < 100_000


def _burst_then_farm(burst: int) -> list[Like]:
    """Steady likes for 40 minutes; ``burst`` likes from new accounts, devices
    and addresses in five; then 90 minutes (past the device and user
    windows) of steady likes and a device farm: accounts cycling on two phones."""
    out: list[Like] = []
    i = 0

    def steady(t: float, until: float, farm: bool) -> float:
        nonlocal i
        while t < until:
            out.append(like(i, f"s{i % 300}", f"post:{i % 40}", f"m{i % 9}", t,
                            ip=f"10.0.{i % 97}.1", device=f"sd{i % 300}"))
            if farm and i % 3 == 0:
                out.append(like(f"f{i}", f"farm{i % 40}", "post:farmed", "m99", t,
                                ip=f"12.0.{i % 50}.1", device=f"phone{i % 2}"))
            t, i = t + 2.0, i + 1
        return t

    t = steady(T0, T0 + 2400, farm=False)
    for k in range(burst):
        out.append(like(i, f"b{k}", f"post:{k % 40}", f"m{k % 9}", t + 300 * k / burst,
                        ip=f"11.{k >> 16 & 255}.{k >> 8 & 255}.{k & 255}", device=f"bd{k}"))
        i += 1
    steady(t + 300, T0 + 2700 + 5400, farm=True)
    return out


def test_state_is_laid_out_afresh_once_a_burst_expired_and_nothing_else_changes() -> None:
    """Once the state has shrunk to three quarters of the most it held, or
    less, and stopped shrinking, the core writes it out and reads it back into fresh
    allocations so that the burst's pages go back to the system
    (docs/performance.md). The round trip is invisible:
    the alerts equal those of an engine restored from a snapshot at the
    burst's peak, whose state was laid out anew there and counts from it."""
    events = _burst_then_farm(40_000)
    peak = next(n for n, e in enumerate(events) if e.user == "b39999") + 1
    whole = Engine(EngineConfig(mode="rules"))
    alerts = [a for e in events for a in whole.process(e)] + whole.flush()
    assert 1 <= whole.core.compactions <= 2  # once the burst is gone, not at every sweep
    assert any(a.entity_id == "phone0" for a in alerts), "the farm must alert after the copy"
    cut = Engine(EngineConfig(mode="rules"))
    before = [a for e in events[:peak] for a in cut.process(e)]
    assert sum(items for _, (_, items) in cut.core.sizes()) > 200_000  # twice the least copied
    cut = Engine.restore(cut.snapshot(key=KEY), key=KEY)
    after = [a for e in events[peak:] for a in cut.process(e)] + cut.flush()
    assert [a.to_dict("-") for a in before + after] == [a.to_dict("-") for a in alerts]


def test_the_core_keeps_transparent_huge_pages_off() -> None:
    """With huge pages on, khugepaged refilled the 2 MiB ranges whose pages
    the core gave back after a burst; importing the package keeps them off
    for the process unless the operator set mimalloc's option."""
    import ctypes
    import os
    import subprocess
    import sys

    libc = ctypes.CDLL(None)
    probe = ("import ctypes, detectors._core; "
             "print(ctypes.CDLL(None).prctl(42, 0, 0, 0, 0))")  # PR_GET_THP_DISABLE
    env = {k: v for k, v in os.environ.items() if k != "MIMALLOC_ALLOW_THP"}

    def thp_disabled(**extra: str) -> str:
        # The flag is inherited: the child starts with it cleared (PR_SET_THP_DISABLE).
        return subprocess.run([sys.executable, "-c", probe], env={**env, **extra},
                              preexec_fn=lambda: libc.prctl(41, 0, 0, 0, 0),
                              capture_output=True, text=True, check=True).stdout.strip()

    assert os.environ["MIMALLOC_ALLOW_THP"] == "0"
    assert thp_disabled() == "1"
    assert thp_disabled(MIMALLOC_ALLOW_THP="1") == "0"
    assert libc.prctl(42, 0, 0, 0, 0) == 1


def test_unknown_view_rejected() -> None:
    with pytest.raises(ValueError, match="unknown views"):
        Engine(views=["merchant", "nope"])


def _sourced(path: Path) -> list:
    from detectors.replay import iter_sourced
    return list(iter_sourced(read_records(path), ReplaySummary()))


def _skewed(sourced: list, chunk: float) -> list:
    """A consumer's view of the recording: partitions fetched in turns, each
    turn ``chunk`` seconds of event time of one partition (a catching-up
    consumer runs one partition ahead of the others by up to that much)."""
    by_src: dict = {}
    for src, ev in sourced:
        by_src.setdefault(src, []).append((src, ev))
    out: list = []
    start = min(ev.ts for _, ev in sourced)
    horizon = start
    while any(by_src.values()):
        horizon += chunk
        for src in sorted(by_src):
            q = by_src[src]
            i = 0
            while i < len(q) and q[i][1].ts <= horizon:
                i += 1
            out += q[:i]
            del q[:i]
    return out


def _run_sourced(engine: Engine, sourced: list) -> list[str]:
    ids = []
    for src, ev in sourced:
        ids += [a.alert_id for a in engine.process(ev, src)]
    return ids + [a.alert_id for a in engine.flush()]


def test_partitions_fetched_out_of_step_lose_nothing(recording: Path) -> None:
    sourced = _sourced(recording)
    assert len({src for src, _ in sourced}) == 6  # two topics x three partitions
    skewed = _skewed(sourced, chunk=45.0)  # well beyond grace, within max_skew
    assert skewed != sourced
    assert sorted(id(ev) for _, ev in skewed) == sorted(id(ev) for _, ev in sourced)
    in_order = Engine(EngineConfig())
    expected = _run_sourced(in_order, sourced)
    eng = Engine(EngineConfig())
    assert _run_sourced(eng, skewed) == expected and expected
    assert eng.stats["late"] == 0 == in_order.stats["late"]
    assert eng.stats["late_admitted"] == 0  # the watermark waited: nothing out of order
    # one global watermark (max_skew 0) puts the lagging partitions' events
    # behind it: late, or taken out of order within allowed_lateness
    glob = Engine(EngineConfig(max_skew=0, allowed_lateness=0))
    _run_sourced(glob, skewed)
    assert glob.stats["late"] > 100
    taken = Engine(EngineConfig(max_skew=0))
    _run_sourced(taken, skewed)
    assert taken.stats["late"] == 0 and taken.stats["late_admitted"] > 100


def test_source_left_behind_beyond_max_skew_counts_late() -> None:
    eng = Engine(EngineConfig(grace=5, max_skew=60, allowed_lateness=0))
    eng.process(like(1, "u1", "post:1", "m1", T0), "p0")
    eng.process(like(2, "u2", "post:1", "m1", T0 + 1), "p1")
    eng.process(like(3, "u3", "post:1", "m1", T0 + 50), "p0")  # p1 lags 49 s: waited for
    assert eng.watermark == float("-inf")  # start-up: held until max_skew past the first event
    eng.process(like(4, "u4", "post:1", "m1", T0 + 20), "p1")  # in time for its source
    assert eng.stats["late"] == 0
    eng.process(like(5, "u5", "post:1", "m1", T0 + 200), "p0")  # p1 now > max_skew behind
    assert eng.watermark == T0 + 200 - 60 - 5
    eng.process(like(6, "u6", "post:1", "m1", T0 + 30), "p1")
    assert eng.stats["late"] == 1 and eng.stats["like"] == 5


def test_replay_is_independent_of_the_file_layout(recording: Path, tmp_path: Path) -> None:
    """A recording may hold its partitions one after the other (kcat run per
    topic, or a consumer's per-partition fetches): replay merges them by time."""
    import gzip

    by_src: dict[tuple[str, int], list[bytes]] = {}
    with gzip.open(recording, "rb") as fh:
        for line in fh:
            o = orjson.loads(line)
            by_src.setdefault((o["topic"], o["partition"]), []).append(line)
    assert len(by_src) == 6
    grouped = tmp_path / "grouped.jsonl"
    grouped.write_bytes(b"".join(b"".join(by_src[s]) for s in sorted(by_src, reverse=True)))
    a, b = io.StringIO(), io.StringIO()
    sa, sb = replay(recording, a), replay(grouped, b)
    assert sa.late == sb.late == 0 and sa.alerts > 0
    assert (sa.records, sa.events, sa.duplicates, sa.rejected) == \
        (sb.records, sb.events, sb.duplicates, sb.rejected)
    assert _strip(a.getvalue()) == _strip(b.getvalue())
    # what a replay in file order would make of the grouped file
    naive = replay_records(read_records(grouped), Engine(), lambda _a: None)
    assert naive.late > sa.events // 4


def test_event_far_ahead_of_its_record_is_rejected(recording: Path, tmp_path: Path) -> None:
    """One like whose clock ran a day ahead (its Kafka timestamp says when it was
    really written) must not drag its partition's event time ahead and make the
    honest events behind it late: it is rejected as ``bad_time``."""
    import gzip

    lines = gzip.open(recording, "rb").read().splitlines(keepends=True)
    k = len(lines) // 5
    while orjson.loads(lines[k])["topic"] != "likes":
        k += 1
    rec = orjson.loads(lines[k])
    value = orjson.loads(rec["payload"])
    ahead = rec["ts"] / 1000 + 86_400
    value.update(like_id="l-clock-ahead", ts=format_time(ahead))
    rec["payload"] = orjson.dumps(value).decode()
    skewed = tmp_path / "skewed.jsonl"
    skewed.write_bytes(b"".join(lines[:k]) + orjson.dumps(rec) + b"\n" + b"".join(lines[k:]))
    a, b = io.StringIO(), io.StringIO()
    sa, sb = replay(recording, a), replay(skewed, b)
    assert sb.rejected - sa.rejected == {"bad_time": 1}
    assert (sb.events, sb.late, sb.duplicates) == (sa.events, sa.late, sa.duplicates)
    assert _strip(a.getvalue()) == _strip(b.getvalue())
    # unchecked, the one event makes a large part of the stream late
    unchecked = replay(skewed, io.StringIO(), EngineConfig(max_ahead=0))
    assert unchecked.late > sa.events // 10 and unchecked.alerts != sa.alerts


#: a replay's outcome: summary, alerts (``emitted_at`` left empty), ticks the engine ran
_Run = tuple[ReplaySummary, list[dict[str, Any]], int]


def _replays(path: Path, cfg: EngineConfig | None = None) -> dict[str, _Run]:
    """``path`` replayed by the compiled core's reader (``likeguard replay``) and by the Python
    driver (:func:`~detectors.replay.replay_records`)."""
    out: dict[str, _Run] = {}
    for how in ("core", "python"):
        engine = Engine(cfg)
        alerts: list[dict[str, Any]] = []
        emit = functools.partial(_keep_alert, alerts)
        if how == "core":
            summary = replay_file(path, engine, emit)
        else:
            summary = replay_records(read_records(path), engine, emit)
        out[how] = (summary, alerts, engine.core.ticks_run)
    return out


def _keep_alert(alerts: list[dict[str, Any]], a: Any) -> None:
    alerts.append(a.to_dict(""))


@pytest.fixture(scope="module")
def clean_replays(recording: Path) -> dict[str, _Run]:
    return _replays(recording)


def _with_record(recording: Path, dest: Path, at: int, topic: str, payload: bytes) -> Path:
    """The recording with one more record (of ``topic`` and ``payload``, partition 0) before its
    line ``at``, stamped with that line's Kafka timestamp."""
    lines = gzip.open(recording, "rb").read().splitlines(keepends=True)
    rec = {"topic": topic, "partition": 0, "offset": 0, "tstype": "create",
           "ts": orjson.loads(lines[at])["ts"], "key": None, "payload": payload.decode()}
    dest.write_bytes(b"".join(lines[:at]) + orjson.dumps(rec) + b"\n" + b"".join(lines[at:]))
    return dest


def _assert_one_more_rejected(got: dict[str, _Run], want: dict[str, _Run], reason: str) -> None:
    """Each replay of ``got`` equals the same replay of ``want`` but for one more record,
    rejected with ``reason``: the same events, alerts and ticks."""
    for how in ("core", "python"):
        (sg, ag, tg), (sw, aw, tw) = got[how], want[how]
        assert sg.rejected - sw.rejected == Counter({reason: 1}), how
        assert sg.records == sw.records + 1, how
        assert (sg.events, sg.late, sg.duplicates) == (sw.events, sw.late, sw.duplicates), how
        assert aw and ag == aw, how
        assert tg == tw, how  # the engine never saw the record's date


@pytest.mark.parametrize(("topic", "when"), [
    ("likes", "1970-01-01T00:00:01Z"),
    ("likes", "0001-01-01T00:00:00Z"),
    ("payments.success", "9999-12-31T23:59:59Z"),
])
def test_a_first_record_dated_outside_the_valid_years_is_rejected(
        recording: Path, clean_replays: dict[str, _Run], tmp_path: Path, topic: str,
        when: str) -> None:
    """A recording whose first record is dated 1970 (or year 1, or 9999, which Python's clock
    reads too): that record is rejected as ``bad_time`` on both replay paths, and the rest
    replays as without it. The engine never sees the date, so its tick count is the clean run's,
    not a walk (or jump) over the decades."""
    # a plain address: the core's fast path would take the value but for its time
    payload = (like_json(like_id="l-ancient", ts=when, user_created=None, client_ip="10.0.0.1")
               if topic == "likes" else payment_json(transaction_id="tx-ancient", success_time=when))
    path = _with_record(recording, tmp_path / "ancient.jsonl", 0, topic, payload)
    _assert_one_more_rejected(_replays(path), clean_replays, "bad_time")


@pytest.mark.parametrize("value", [
    payment_json(transaction_id="tx-absurd", amount={"total": 2**63 - 1}),
    like_json(like_id="l-absurd", device_id="d" * 10_000, client_ip="10.0.0.1"),
])
def test_a_record_out_of_range_is_rejected(recording: Path, clean_replays: dict[str, _Run],
                                           tmp_path: Path, value: bytes) -> None:
    """An absurd amount or an unbounded string in the middle of a recording is rejected as
    ``out_of_range``; nothing else changes."""
    topic = "likes" if b"like_id" in value else "payments.success"
    n = sum(1 for _ in gzip.open(recording, "rb"))
    path = _with_record(recording, tmp_path / "absurd.jsonl", n // 3, topic, value)
    _assert_one_more_rejected(_replays(path), clean_replays, "out_of_range")


def test_event_far_behind_its_record_is_rejected_with_max_behind(
        recording: Path, clean_replays: dict[str, _Run], tmp_path: Path) -> None:
    """A like written 30 days after its time (a clock reset, an archive replayed): with
    ``max_behind`` a week it is rejected as ``bad_time`` on both replay paths and nothing else
    changes; by default (0) it is not checked and reaches the engine, which drops it as late."""
    n = sum(1 for _ in gzip.open(recording, "rb"))
    first = orjson.loads(next(iter(gzip.open(recording, "rb"))))
    when = format_time(first["ts"] / 1000 - 30 * 86_400)
    path = _with_record(recording, tmp_path / "behind.jsonl", n // 2, "likes",
                        like_json(like_id="l-behind", ts=when, client_ip="10.0.0.1"))
    week = EngineConfig(max_behind=7 * 86_400.0)
    _assert_one_more_rejected(_replays(path, week), _replays(recording, week), "bad_time")
    for how, (summary, alerts, _) in _replays(path).items():
        clean, clean_alerts, _ = clean_replays[how]
        assert summary.rejected == clean.rejected, how
        assert summary.events == clean.events + 1 and summary.late == clean.late + 1, how
        assert alerts == clean_alerts, how


def test_progress_marks_keep_sparse_partitions_current(recording: Path) -> None:
    """Repartitioned, each view partition sees a thin slice of each input
    partition; its watermark waits for the sparsest flow (up to max_skew).
    Progress marks carry every source's event time to every partition: the
    watermarks stay about ``grace`` behind, and nothing else changes."""
    sourced = _sourced(recording)
    cfg = EngineConfig()
    whole = Engine(cfg)
    expected = sorted(_run_sourced(whole, sourced))
    lags: dict[bool, list[float]] = {}
    for marks in (False, True):
        topo = Topology(cfg, marks)
        newest = float("-inf")
        lags[marks] = []
        for i, (src, ev) in enumerate(sourced):
            topo.feed(src, ev)
            newest = max(newest, ev.ts)
            if i % 200 == 0 and ev.ts - sourced[0][1].ts > 2 * cfg.max_skew:
                lags[marks].append(topo.lag(newest))
        topo.flush()
        assert sorted(a.alert_id for a in topo.alerts) == expected and expected
        assert sum(e.stats["late"] for e in topo.engines.values()) == 0
    median = {m: sorted(v)[len(v) // 2] for m, v in lags.items()}
    worst = {m: max(v) for m, v in lags.items()}
    assert median[True] <= cfg.grace + cfg.tick + 2.0  # measured: 12 s
    assert median[False] > median[True] + 5.0  # measured: 23 s
    assert worst[True] < worst[False]  # measured: 19 s vs 31 s


@pytest.mark.parametrize(("gap", "alerted"), [(90.0, True), (1800.0, False)])
def test_second_token_paid_liker_within_minutes_alerts(gap: float, alerted: bool) -> None:
    """A paid task's first two workers alert; two such pairs half an hour apart do not."""
    eng = Engine(EngineConfig(mode="rules"))
    alerts = []
    for i, ts in enumerate((T0, T0 + gap)):
        alerts += eng.process(payment(i, f"w{i}", "m1", ts, amount=1))
        alerts += eng.process(like(i, f"w{i}", "post:1", "m1", ts + 12))
    alerts += eng.flush()
    found = {(a.detector, a.entity_type, a.entity_id) for a in alerts}
    assert (("paid_likes@1", "merchant", "m1") in found) is alerted, found
    if alerted:
        a = next(a for a in alerts if a.entity_type == "merchant")
        assert a.reasons[0].code == "token_paid_likers_recent" and a.reasons[0].value == 2


@pytest.mark.parametrize("farmed", [True, False])
def test_farm_among_honest_likers_of_a_busy_post_alerts(farmed: bool) -> None:
    """Twelve accounts on three addresses among as many honest likers: the target alerts."""
    eng = Engine(EngineConfig(mode="rules"))
    alerts = []
    for i in range(24):
        farm = farmed and i % 2 == 0
        ip = f"47.96.0.{i % 3}" if farm else f"10.{i}.0.1"
        alerts += eng.process(like(i, f"u{i}", "post:1", "m1", T0 + 5 * i, ip=ip,
                                   device=f"d{i}"))
    alerts += eng.flush()
    targets = [a for a in alerts if a.entity_type == "target"]
    assert bool(targets) is farmed, targets
    if farmed:
        assert targets[0].detector == "farm_target@1"
        assert [r.code for r in targets[0].reasons] == ["clustered_likers", "clustered_share",
                                                        "buyer_share"]


def _run_rules(events: list) -> set[tuple[str, str, str]]:
    eng = Engine(EngineConfig(mode="rules"))
    alerts = []
    for ev in sorted(events, key=lambda e: e.ts):
        alerts += eng.process(ev)
    alerts += eng.flush()
    return {(a.detector, a.entity_type, a.entity_id) for a in alerts}


@pytest.mark.parametrize("game_shop", [False, True])
def test_token_payers_who_rarely_like_are_customers_not_workers(game_shop: bool) -> None:
    """Two 1-CNY payers like within seconds, minutes apart: a task, unless the
    shop sells 1-CNY top-ups all day and its other top-up buyers like nothing."""
    events: list[Payment | Like] = []
    if game_shop:
        for i in range(12):  # the hour before: top-ups, no like
            events.append(payment(100 + i, f"g{i}", "m1", T0 - 3600 + i * 290, amount=100))
    for i, ts in enumerate((T0, T0 + 90)):
        events.append(payment(i, f"w{i}", "m1", ts, amount=100))
        events.append(like(i, f"w{i}", "post:1", "m1", ts + 12))
    found = _run_rules(events)
    assert (("paid_likes@1", "merchant", "m1") in found) is not game_shop, found


@pytest.mark.parametrize("liked", [False, True])
def test_a_payment_kiosk_is_no_farm(liked: bool) -> None:
    """Twenty customers pay on a shop's kiosk (one device, one IP): nothing; had
    those twenty accounts liked a post from it, it would be a device farm."""
    events: list[Payment | Like] = []
    for i in range(20):
        ts = T0 + i * 20
        events.append(payment(i, f"c{i}", "m1", ts, amount=1800, ip="5.5.5.5", device="kiosk"))
        if liked:
            events.append(like(i, f"c{i}", "post:1", "m1", ts + 5, ip="5.5.5.5",
                               device="kiosk"))
    found = _run_rules(events)
    farms = {f for f in found if f[1] in ("device", "ip")}
    assert bool(farms) is liked, found


@pytest.mark.parametrize("office", [False, True])
def test_staff_liking_their_employers_post_is_no_ip_farm(office: bool) -> None:
    """Thirty accounts behind one IP like one post within minutes: a farm, unless
    they are an office whose staff go on liking all sorts of other things."""
    events: list[Payment | Like] = []
    for i in range(30):
        ts = T0 + i * 6
        events.append(like(i, f"s{i}", "post:news", "m9", ts, ip="6.6.6.6", device=f"d{i}"))
        if office:
            for k in range(2):
                events.append(like(100 + 2 * i + k, f"s{i}", f"video:{i}-{k}", f"m{i % 7}",
                                   ts + 20 + k, ip="6.6.6.6", device=f"d{i}"))
    found = _run_rules(events)
    assert (("ip_farm@1", "ip", "6.6.6.6") in found) is not office, found


@pytest.mark.parametrize("customers", [False, True])
def test_customers_liking_from_the_shop_wifi_are_no_farm(customers: bool) -> None:
    """Twelve accounts like a shop page from one IP: a farm's target, unless
    each paid the shop a real amount minutes before."""
    events: list[Payment | Like] = []
    for i in range(12):
        ts = T0 + i * 25
        if customers:
            events.append(payment(i, f"c{i}", "m1", ts - 240, amount=2600))
        events.append(like(i, f"c{i}", "shop:m1", "m1", ts, ip="7.7.7.7", device=f"d{i}"))
    found = _run_rules(events)
    assert (("farm_target@1", "target", "shop:m1") in found) is not customers, found


@pytest.mark.parametrize("drip", [False, True])
def test_accounts_taking_turns_on_a_device_for_one_merchant_alert(drip: bool) -> None:
    """Five accounts, one every five minutes, on one phone: a drip when they all
    like one merchant's posts, a family tablet when each likes its own things."""
    events: list[Payment | Like] = []
    for i in range(5):
        mchid = "m1" if drip else f"m{i + 2}"
        events.append(like(i, f"a{i}", f"post:{i % 2}", mchid, T0 + i * 300, ip="8.8.0.1",
                           device="tablet"))
    found = _run_rules(events)
    assert (("device_farm@1", "device", "tablet") in found) is drip, found


def test_an_event_dated_1970_does_not_make_the_engine_walk_to_now(recording: Path) -> None:
    """A like dated 1970 in front of a recording: the engine walks its ticks
    only while that like's state lives (its longest horizon), then jumps the
    idle decades; the recording's alerts are the same as without it."""
    events = _events(recording)
    whole = _run(Engine(), events)
    eng = Engine()
    old = Like("l-1970", "u-1970", "post:1970", "m-1970", 1.0, device="d-1970")
    ids = _run(eng, [old, *events])
    assert whole and ids == whole
    span = events[-1].ts - events[0].ts
    walked = eng.cfg.long_window + span  # the 1970 state's horizon, then the recording
    # 56 years of 5 s ticks would be 354 million
    assert eng.core.ticks_run <= walked / eng.cfg.tick + 2 * eng.cfg.window / eng.cfg.tick


def test_a_batch_of_events_gives_the_alerts_of_one_at_a_time(recording: Path) -> None:
    """``process_many`` (events cross into the core in one call) is ``process``
    event by event: the same alerts in the same order, the same counters."""
    sourced = _sourced(recording)
    one = Engine()
    singly = _run_sourced(one, sourced)
    batched = Engine()
    ids: list[str] = []
    for i in range(0, len(sourced), 1000):
        chunk = sourced[i:i + 1000]
        ids += [a.alert_id for a in batched.process_many([e for _, e in chunk],
                                                         [s for s, _ in chunk])]
    ids += [a.alert_id for a in batched.flush()]
    assert singly and ids == singly
    assert batched.stats == one.stats


def test_other_threads_run_while_the_core_works(recording: Path) -> None:
    """The core's calls leave the interpreter to other threads (the consumer's
    thread, the metrics server) while they compute: a thread reading the core
    meanwhile finds it busy instead of waiting for the call to return. Were the
    interpreter held, the reader could only run between calls and would never
    see it busy."""
    import threading

    sourced = _sourced(recording)
    eng = Engine()
    busy: list[str] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set() and not busy:
            try:
                _ = eng.core.buffered
            except RuntimeError as exc:  # PyO3: the core is borrowed by the call
                busy.append(str(exc))

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for i in range(0, len(sourced), 2000):
            chunk = sourced[i:i + 2000]
            eng.process_many([e for _, e in chunk], [s for s, _ in chunk])
            if busy:
                break
    finally:
        stop.set()
        reader.join()
    assert busy and "borrowed" in busy[0]


def test_scoring_on_a_second_thread_gives_the_same_alerts(recording: Path) -> None:
    """An overlapped replay (the next stretch in the core while the last one
    is scored) raises the alerts of scoring every tick before going on, in
    the same order; one whose emit gives the engine a verdict stops, since
    the verdict would reach the core later than it should."""
    from detectors.verdicts import Verdict

    runs = {}
    for overlap in (False, True):
        alerts: list = []
        replay_file(recording, Engine(), alerts.append, overlap=overlap)
        runs[overlap] = [a.to_dict(None) for a in alerts]
    assert runs[True] and runs[True] == runs[False]

    eng = Engine()

    def moderate(a) -> None:
        eng.verdict(Verdict.of_alert(a.to_dict(None), "confirmed", "r1", a.window_end))

    with pytest.raises(RuntimeError, match="overlap=False"):
        replay_file(recording, eng, moderate)
