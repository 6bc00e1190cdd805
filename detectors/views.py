"""Keyed views of the event stream: per-entity window state and features.

Each view keeps state only for the keys of its entity (merchant, IP, device,
user, lockstep target) that have events inside its windows, and turns that
state into a flat feature dict when the engine evaluates a key. Views never
score anything: detectors in ``detectors/rules`` and ``detectors/models``
read the features.

========  ================  ===============================================
view      key               what it sees
========  ================  ===============================================
merchant  ``mchid``         payment->like join, merchant and target features
ip        ``client_ip``     many accounts behind one address
device    ``device_id``     many accounts on one handset
user      ``openid``        a user's recent likes; feeds the lockstep view
lockstep  ``target_id``     likers of a target and what they liked just before
========  ================  ===============================================

Examples
--------
>>> from detectors.config import EngineConfig
>>> from detectors.events import Like
>>> v = DeviceView(EngineConfig())
>>> for i in range(6):
...     v.add(Like(f"l{i}", f"u{i}", "post:1", "m1", float(i), device="d1"))
>>> [(s.entity_id, s.features["users"]) for s in v.evaluate(10.0)]
[('d1', 6.0)]
"""

from __future__ import annotations

import statistics
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from detectors.config import EngineConfig
from detectors.events import Like, Payment
from detectors.windows import kafka_partition

__all__ = [
    "Subject",
    "CoLike",
    "MerchantView",
    "IpView",
    "DeviceView",
    "UserView",
    "LockstepView",
    "VIEW_TYPES",
]


@dataclass(slots=True)
class Subject:
    """One entity evaluated at one tick: its features and the evidence behind them."""

    view: str
    entity_type: str
    entity_id: str
    shard_key: str
    features: dict[str, float]
    window_start: float
    counts: dict[str, Any] = field(default_factory=dict)
    #: sample ids behind the evidence, computed only when an alert is built
    samples: Callable[[], list[str]] = list


@dataclass(slots=True)
class CoLike:
    """A like enriched by the user view with the user's other recent likes."""

    like_id: str
    user: str
    target: str
    ts: float
    prev: tuple[tuple[str, float], ...]

    kind = "colike"
    tag = "c"

    @property
    def id(self) -> str:
        return self.like_id

    def to_dict(self) -> dict[str, Any]:
        return {
            "like_id": self.like_id,
            "user": self.user,
            "target": self.target,
            "ts": self.ts,
            "prev": [list(p) for p in self.prev],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CoLike:
        return cls(d["like_id"], d["user"], d["target"], float(d["ts"]),
                   tuple((str(t), float(s)) for t, s in d["prev"]))


def _ratio(a: float, b: float) -> float:
    return a / b if b else 0.0


def _uncount(counts: dict[str, int], key: str) -> None:
    """Take one off ``counts[key]``, dropping the key at zero (window expiry)."""
    n = counts[key] - 1
    if n:
        counts[key] = n
    else:
        del counts[key]


def _samples(ids: Iterator[str] | list[str], n: int) -> list[str]:
    out: list[str] = []
    for i in ids:
        out.append(i)
        if len(out) >= n:
            break
    return out


class View:
    """Base of the keyed views: due-key tracking and expiry sweeps.

    A key touched since its last evaluation is *pending*. It is evaluated at
    a tick when its new events are at least a tenth of its window (so a busy
    key is re-scored as its picture changes, not on every event), when a
    view marks an event as decisive, or when ``reeval`` seconds have passed.
    """

    name = "view"
    #: weight that makes a key due at the next tick whatever its size
    FORCE = 1 << 30

    def __init__(self, config: EngineConfig) -> None:
        self.cfg = config
        self.state: dict[str, Any] = {}
        self.dirty: dict[Any, int] = {}
        self.evaluated: dict[Any, float] = {}
        self.last_seen: dict[str, float] = {}

    def add(self, event: Any) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def evaluate(self, now: float) -> Iterator[Subject]:  # pragma: no cover - abstract
        raise NotImplementedError

    def horizon(self) -> float:
        return self.cfg.window

    def sweep(self, now: float) -> int:
        """Drop keys with no event inside the view's longest window."""
        cutoff = now - self.horizon()
        dead = [k for k, t in self.last_seen.items() if t <= cutoff]
        for k in dead:
            del self.last_seen[k]
            self.state.pop(k, None)
        ecut = now - self.cfg.reeval
        for k in [k for k, t in self.evaluated.items() if t <= ecut and k not in self.dirty]:
            del self.evaluated[k]
        return len(dead)

    def _due(self, dirty: dict[Any, int], now: float, size: Any) -> list[Any]:
        """Pop and return, sorted, the pending keys that are due at ``now``."""
        ev = self.evaluated
        reeval = self.cfg.reeval
        out = [key for key, pending in dirty.items()
               if pending * 10 >= size(key) or now - ev.get(key, -1e18) >= reeval]
        for key in out:
            del dirty[key]
            ev[key] = now
        out.sort()
        return out

    def _take_dirty(self, now: float) -> list[str]:
        st = self.state
        return self._due(self.dirty, now, lambda k: len(st[k]) if k in st else 0)

    def size(self) -> tuple[int, int]:
        """(keys held, window items held)."""
        return len(self.state), sum(self._items(s) for s in self.state.values())

    def _items(self, s: Any) -> int:
        return len(s)


# --------------------------------------------------------------------------- merchant


_FRESH, _BUYER = 1, 2  #: flags of a target's like


class _Target:
    __slots__ = ("likes", "baseline", "last_eval")

    def __init__(self) -> None:
        # (ts, user, flags, device, ip, like_id); flags: FRESH | BUYER
        self.likes: deque[tuple[float, str, int, str | None, str | None, str]] = deque()
        self.baseline = -1.0
        self.last_eval = 0.0


class _Merchant:
    __slots__ = ("pays", "liked", "pairs", "pair_targets", "likes_w", "pays_w", "coupons",
                 "targets", "token_pays")

    def __init__(self) -> None:
        self.pays: dict[str, list[tuple[float, int, str]]] = {}
        self.liked: dict[str, tuple[float, str, str]] = {}  #: user -> (ts, like_id, target)
        # (ts, user, amount, delay, like_id, txid, target)
        self.pairs: deque[tuple[float, str, int, float, str, str, str]] = deque()
        self.pair_targets: dict[str, int] = {}  #: target -> its pairs in ``pairs``
        self.likes_w: deque[float] = deque()
        self.pays_w: deque[tuple[float, int]] = deque()
        self.coupons: deque[float] = deque()
        self.targets: dict[str, _Target] = {}
        #: token payments over ``long_window``, as long as the pairs: (ts, payer)
        self.token_pays: deque[tuple[float, str]] = deque()

    def __len__(self) -> int:
        return (len(self.pairs) + len(self.likes_w) + len(self.pays_w) + len(self.coupons)
                + len(self.token_pays)
                + sum(len(p) for p in self.pays.values()) + len(self.liked)
                + sum(len(t.likes) for t in self.targets.values()))


class MerchantView(View):
    """Payments and likes of one merchant: the interval join and velocity features.

    For every like it looks up the latest payment the same user made to the
    content's merchant within ``join_window`` before it (``pay_then_like``);
    for every payment, a like by the payer shortly before (``like_then_pay``,
    how honest like-to-unlock-a-coupon campaigns look). Prompt pairs (delay up
    to ``paid_delay``) are kept over ``long_window`` so slow drips add up.
    """

    name = "merchant"

    def __init__(self, config: EngineConfig) -> None:
        super().__init__(config)
        self.dirty_targets: dict[tuple[str, str], int] = {}
        self.matches = {"pay_then_like": 0, "like_then_pay": 0}
        #: the pair features of a target without prompt pairs (most of them)
        self._no_pairs: dict[str, float] = {}
        #: token conversion per merchant at the tick ``_conv_at`` (targets share it;
        #: a merchant's entry goes with its next token payment or pair)
        self._conv_at = -1.0
        self._conv: dict[str, float] = {}
        self._pair_features([], "", self._no_pairs, 0.0)

    def horizon(self) -> float:
        return max(self.cfg.long_window, self.cfg.join_window, self.cfg.window)

    def add(self, ev: Payment | Like) -> None:
        cfg = self.cfg
        key = ev.mchid
        st = self.state.get(key)
        if st is None:
            st = self.state[key] = _Merchant()
        self.last_seen[key] = ev.ts
        if len(st.pairs) >= cfg.min_pairs:
            self.dirty[key] = self.dirty.get(key, 0) + 1
        if type(ev) is Payment:
            st.pays_w.append((ev.ts, ev.amount))
            if ev.amount <= cfg.token_amount:
                st.token_pays.append((ev.ts, ev.openid))
                self._conv.pop(key, None)
            lst = st.pays.get(ev.openid)
            if lst is None:
                st.pays[ev.openid] = [(ev.ts, ev.amount, ev.transaction_id)]
            else:
                lst.append((ev.ts, ev.amount, ev.transaction_id))
                if len(lst) > 8:
                    del lst[0]
            prev = st.liked.get(ev.openid)
            if prev is not None:
                gap = ev.ts - prev[0]
                if 0 <= gap <= cfg.join_window:
                    st.coupons.append(ev.ts)
                    self.matches["like_then_pay"] += 1
                elif -cfg.join_window <= gap < 0:
                    # a payment that arrived late (admitted behind the watermark),
                    # after the like it preceded: the join from its side
                    self.matches["pay_then_like"] += 1
                    if -gap <= cfg.paid_delay:
                        self._pair(key, st, prev[0], ev.openid, ev.amount, -gap, prev[1],
                                   ev.transaction_id, prev[2])
            return
        # like
        if ev.action != "like":
            return
        ts = ev.ts
        st.likes_w.append(ts)
        st.liked[ev.user] = (ts, ev.like_id, ev.target)
        lst = st.pays.get(ev.user)
        flags = 0
        if lst is not None:
            for pts, amount, txid in reversed(lst):
                delay = ts - pts
                if 0 <= delay <= cfg.join_window:
                    self.matches["pay_then_like"] += 1
                    if amount > cfg.token_amount:
                        flags = _BUYER
                    if delay <= cfg.paid_delay:
                        self._pair(key, st, ts, ev.user, amount, delay, ev.like_id, txid,
                                   ev.target)
                    break
        tg = st.targets.get(ev.target)
        if tg is None:
            tg = st.targets[ev.target] = _Target()
        created = ev.user_created
        if created is not None and ts - created < cfg.fresh_age:
            flags |= _FRESH
        tg.likes.append((ts, ev.user, flags, ev.device, ev.ip, ev.like_id))
        if len(tg.likes) >= cfg.min_likes or len(st.pairs) >= cfg.min_pairs:
            tk = (key, ev.target)
            self.dirty_targets[tk] = self.dirty_targets.get(tk, 0) + 1

    def _pair(self, key: str, st: _Merchant, ts: float, user: str, amount: int, delay: float,
              like_id: str, txid: str, target: str) -> None:
        """Keep a prompt pay->like pair (``ts`` the like's time); both keys are due."""
        st.pairs.append((ts, user, amount, delay, like_id, txid, target))
        self._conv.pop(key, None)
        pt = st.pair_targets
        pt[target] = pt.get(target, 0) + 1
        self.dirty[key] = self.FORCE
        self.dirty_targets[(key, target)] = self.FORCE

    def _expire_windows(self, st: _Merchant, now: float) -> None:
        cfg = self.cfg
        w, lw = now - cfg.window, now - cfg.long_window
        for dq in (st.likes_w, st.coupons):
            while dq and dq[0] <= w:
                dq.popleft()
        while st.pays_w and st.pays_w[0][0] <= w:
            st.pays_w.popleft()
        pairs = st.pairs
        while pairs and pairs[0][0] <= lw:
            _uncount(st.pair_targets, pairs.popleft()[6])
        tp = st.token_pays
        while tp and tp[0][0] <= lw:
            tp.popleft()

    def _expire(self, st: _Merchant, now: float) -> None:
        self._expire_windows(st, now)
        w, jw = now - self.cfg.window, now - self.cfg.join_window
        if st.pays:
            for u in [u for u, lst in st.pays.items() if lst[-1][0] <= jw]:
                del st.pays[u]
        if st.liked:
            for u in [u for u, (t, _, _) in st.liked.items() if t <= jw]:
                del st.liked[u]
        for tid in [t for t, tg in st.targets.items() if not tg.likes or tg.likes[-1][0] <= w]:
            del st.targets[tid]

    def sweep(self, now: float) -> int:
        n = super().sweep(now)
        for st in self.state.values():
            self._expire(st, now)
        return n

    def _items(self, s: _Merchant) -> int:
        return len(s)

    def _target_size(self, tk: tuple[str, str]) -> int:
        st = self.state.get(tk[0])
        tg = st.targets.get(tk[1]) if st is not None else None
        return len(tg.likes) if tg is not None else 0

    def evaluate(self, now: float) -> Iterator[Subject]:
        cfg = self.cfg
        st_all = self.state
        targets = self._due(self.dirty_targets, now, self._target_size)
        merchants = self._due(
            self.dirty, now,
            lambda k: len(st_all[k].likes_w) + len(st_all[k].pays_w) if k in st_all else 0)
        for key in merchants:
            st = st_all.get(key)
            if st is None:
                continue
            self._expire_windows(st, now)
            if len(st.pairs) >= cfg.min_pairs:
                yield self._merchant_subject(key, st, now)
        for key, tid in targets:
            st = st_all.get(key)
            if st is None:
                continue
            tg = st.targets.get(tid)
            if tg is None:
                continue
            w = now - cfg.window
            while tg.likes and tg.likes[0][0] <= w:
                tg.likes.popleft()
            n = len(tg.likes)
            rate = n * cfg.window / max(cfg.tick, now - tg.last_eval) if tg.last_eval else n
            tg.last_eval = now
            base = tg.baseline
            tg.baseline = n if base < 0 else 0.9 * base + 0.1 * n
            if n >= cfg.min_likes or (len(st.pairs) >= cfg.min_pairs and n):
                yield self._target_subject(key, tid, tg, st, now, base, rate)

    def _pair_features(self, pairs: list[tuple[float, str, int, float, str, str, str]],
                       prefix: str, x: dict[str, float], now: float) -> None:
        cfg = self.cfg
        n = len(pairs)
        users = {p[1] for p in pairs}
        token = [p for p in pairs if p[2] <= cfg.token_amount]
        token_users = {p[1] for p in token}
        amounts: dict[int, int] = {}
        for p in pairs:
            amounts[p[2]] = amounts.get(p[2], 0) + 1
        top_amount = max(amounts.values()) if amounts else 0
        delays = [p[3] for p in pairs]
        if n >= 3:
            mean = statistics.fmean(delays)
            cv = statistics.pstdev(delays) / mean if mean > 0 else 0.0
        else:
            cv = 1.0
        tn = len(token)
        if tn:
            tam: dict[int, int] = {}
            for p in token:
                tam[p[2]] = tam.get(p[2], 0) + 1
            x[prefix + "token_amount_top_share"] = max(tam.values()) / tn
            x[prefix + "token_delay_median"] = statistics.median(p[3] for p in token)
        else:
            x[prefix + "token_amount_top_share"] = 0.0
            x[prefix + "token_delay_median"] = cfg.paid_delay
        x[prefix + "pairs"] = float(n)
        x[prefix + "pair_age"] = now - pairs[-1][0] if pairs else cfg.long_window
        x[prefix + "token_age"] = now - token[-1][0] if token else cfg.long_window
        x[prefix + "pair_users"] = float(len(users))
        x[prefix + "token_users"] = float(len(token_users))
        w = now - cfg.window
        x[prefix + "token_users_w"] = float(len({p[1] for p in token if p[0] > w}))
        x[prefix + "token_share"] = _ratio(len(token), n)
        x[prefix + "amount_top_share"] = _ratio(top_amount, n)
        x[prefix + "delay_median"] = statistics.median(delays) if delays else cfg.paid_delay
        x[prefix + "delay_cv"] = min(cv, 3.0)

    def _token_conversion(self, key: str, st: _Merchant, now: float) -> float:
        """Share of the merchant's token payers who then liked its content promptly.

        Over ``long_window``, among accounts that paid a token amount at least
        ``paid_delay`` ago (or already liked after it): a task's workers pay
        only to like (nearly all convert), while honest small purchases (game
        top-ups, tips) are followed by a prompt like now and then. Computed
        once per merchant and tick (its targets share it).
        """
        if now != self._conv_at:
            self._conv_at, self._conv = now, {}
        conv = self._conv.get(key)
        if conv is None:
            liked = {p[1] for p in st.pairs if p[2] <= self.cfg.token_amount}
            if liked:
                settled = now - self.cfg.paid_delay
                payers = {u for ts, u in st.token_pays if ts <= settled}
                payers.update(liked)
                conv = len(liked) / len(payers)
            else:
                conv = 0.0
            self._conv[key] = conv
        return conv

    def _merchant_subject(self, key: str, st: _Merchant, now: float) -> Subject:
        cfg = self.cfg
        pairs = list(st.pairs)
        x: dict[str, float] = {}
        self._pair_features(pairs, "", x, now)
        x["token_conversion"] = self._token_conversion(key, st, now)
        w = now - cfg.window
        pairs_w = sum(1 for p in pairs if p[0] > w)
        likes_w, pays_w = len(st.likes_w), len(st.pays_w)
        token_pays = sum(1 for _, a in st.pays_w if a <= cfg.token_amount)
        x["likes_w"] = float(likes_w)
        x["pays_w"] = float(pays_w)
        x["pairs_w"] = float(pairs_w)
        x["paid_like_share"] = _ratio(pairs_w, likes_w)
        x["token_pay_share"] = _ratio(token_pays, pays_w)
        x["coupon_share"] = _ratio(len(st.coupons), pays_w)
        start = pairs[0][0] if pairs else (st.likes_w[0] if st.likes_w else now)
        return Subject(
            "merchant", "merchant", key, key, x, start,
            counts={"likes": likes_w, "payments": pays_w, "paid_like_pairs": len(pairs),
                    "paying_likers": int(x["pair_users"]), "token_payers": int(x["token_users"])},
            samples=lambda: _samples((p[5] for p in reversed(pairs)), cfg.max_samples // 2)
            + _samples((p[4] for p in reversed(pairs)), cfg.max_samples // 2),
        )

    def _target_subject(self, key: str, tid: str, tg: _Target, st: _Merchant, now: float,
                        base: float, rate: float) -> Subject:
        cfg = self.cfg
        likes = tg.likes
        n = len(likes)
        users: dict[str, None] = {}
        devices: dict[str, None] = {}
        dev_users: dict[str, None] = {}  # likers seen with a device
        ips: dict[str, int] = {}
        ip_users: dict[str, dict[str, None]] = {}
        addr_users: dict[str, None] = {}  # likers seen with an IP
        fresh = 0
        buyers: dict[str, None] = {}
        for _, u, f, d, ip, _ in likes:
            users[u] = None
            if f:
                if f & _FRESH:
                    fresh += 1
                if f & _BUYER:
                    buyers[u] = None
            if d is not None:
                devices[d] = None
                dev_users[u] = None
            if ip is not None:
                ips[ip] = ips.get(ip, 0) + 1
                addr_users[u] = None
                on_ip = ip_users.get(ip)
                if on_ip is None:
                    ip_users[ip] = {u: None}
                else:
                    on_ip[u] = None
        nu = len(users)
        clustered = len({u for on_ip in ip_users.values() if len(on_ip) >= 3 for u in on_ip})
        if tid in st.pair_targets:
            pairs = [p for p in st.pairs if p[6] == tid]
            x: dict[str, float] = {}
            self._pair_features(pairs, "", x, now)
        else:
            pairs = []
            x = self._no_pairs.copy()
        x["token_conversion"] = self._token_conversion(key, st, now) if st.pairs else 0.0
        x["likes"] = float(n)
        x["users"] = float(nu)
        x["fresh"] = float(fresh)
        x["fresh_share"] = _ratio(fresh, n)
        # per address, among the likers whose likes carried one: likers without
        # (a web client sends no device) say nothing about how many share one
        x["users_per_device"] = _ratio(len(dev_users), len(devices)) if devices else 1.0
        x["top_ip_share"] = _ratio(max(ips.values()), n) if ips else 0.0
        x["users_per_ip"] = _ratio(len(addr_users), len(ips)) if ips else 1.0
        x["ip_clustered"] = float(clustered)
        x["ip_clustered_share"] = _ratio(clustered, nu)
        # likers who paid the merchant a real amount just before: its customers
        x["buyer_share"] = _ratio(len(buyers), nu)
        x["velocity_ratio"] = _ratio(n, max(base, 1.0)) if base >= 0 else 1.0
        x["rate"] = float(rate)
        return Subject(
            "merchant", "target", tid, key, x, min(likes[0][0], pairs[0][0]) if pairs else likes[0][0],
            counts={"likes": n, "likers": nu, "fresh_likers": fresh, "devices": len(devices),
                    "paid_like_pairs": len(pairs), "merchant": key},
            samples=lambda: _samples((r[5] for r in reversed(likes)), cfg.max_samples),
        )


# --------------------------------------------------------------------------- ip / device


class _AddressView(View):
    """Likes and payments behind one network address or one device."""

    entity = "ip"
    attr = "ip"

    def __init__(self, config: EngineConfig) -> None:
        super().__init__(config)
        #: distinct accounts a key needs before it is worth evaluating
        self.need = config.min_ip_events if self.attr == "ip" else config.min_support
        self.fresh_age = config.fresh_age

    def horizon(self) -> float:
        return self.cfg.window

    def _items(self, s: tuple[deque, dict[str, int]]) -> int:
        return len(s[0])

    def _take_dirty(self, now: float) -> list[str]:
        st = self.state
        return self._due(self.dirty, now, lambda k: len(st[k][0]) if k in st else 0)

    def add(self, ev: Payment | Like) -> None:
        ip_view = self.attr == "ip"
        key = ev.ip if ip_view else ev.device
        if key is None:
            return
        ts = ev.ts
        other = ev.device if ip_view else ev.ip
        # item: (ts, user, target or None for a payment, fresh, other address, id, amount,
        # merchant)
        if type(ev) is Like:
            if ev.action != "like":
                return
            u = ev.user
            created = ev.user_created
            item = (ts, u, ev.target, created is not None and ts - created < self.fresh_age,
                    other, ev.like_id, 0, ev.mchid)
        else:
            u = ev.openid
            item = (ts, u, None, False, other, ev.transaction_id, ev.amount, ev.mchid)
        # state: (items, accounts -> items in window)
        st = self.state.get(key)
        if st is None:
            st = self.state[key] = (deque(), {})
        st[0].append(item)
        users = st[1]
        users[u] = users.get(u, 0) + 1
        self.last_seen[key] = ts
        if len(users) >= self.need:  # sparse keys (most of them) are never evaluated
            dirty = self.dirty
            dirty[key] = dirty.get(key, 0) + 1

    def evaluate(self, now: float) -> Iterator[Subject]:
        cut = now - self.horizon()
        need = self.need
        for key in self._take_dirty(now):
            st = self.state.get(key)
            if st is None:
                continue
            dq, users = st
            while dq and dq[0][0] <= cut:
                _uncount(users, dq.popleft()[1])
            if len(users) < need:  # distinct accounts: one busy account is no farm
                continue
            yield self._subject(key, dq, now)

    def _subject(self, key: str, dq: deque, now: float) -> Subject:
        cfg = self.cfg
        recent_cut = now - cfg.burst
        recent: dict[str, None] = {}
        users: dict[str, None] = {}
        others: dict[str, None] = {}
        other_users: dict[str, None] = {}  # accounts seen with an other address
        targets: dict[str, dict[str, None]] = {}
        likes = fresh = pays = token = 0
        like_users: dict[str, None] = {}
        merchants: dict[str, dict[str, None]] = {}
        for ts, u, tgt, f, other, _, amount, mch in dq:
            users[u] = None
            if ts > recent_cut:
                recent[u] = None
            if tgt is None:
                pays += 1
                if amount <= cfg.token_amount:
                    token += 1
                continue
            # accounts per other address among the liking accounts: a shop's
            # payment kiosk takes many payers on one device, and likes nothing
            if other is not None:
                others[other] = None
                other_users[u] = None
            likes += 1
            like_users[u] = None
            if f:
                fresh += 1
            tu = targets.get(tgt)
            if tu is None:
                tu = targets[tgt] = {}
            tu[u] = None
            mu = merchants.get(mch)
            if mu is None:
                mu = merchants[mch] = {}
            mu[u] = None
        top_users = max((len(v) for v in targets.values()), default=0)
        top_mch_users = max((len(v) for v in merchants.values()), default=0)
        nlu = len(like_users)
        x = {
            "events": float(len(dq)),
            "users": float(len(users)),
            "recent_users": float(len(recent)),
            "likes": float(likes),
            "like_users": float(nlu),
            "targets": float(len(targets)),
            "top_target_users": float(top_users),
            "top_target_share": _ratio(top_users, nlu),
            "top_merchant_users": float(top_mch_users),
            "top_merchant_share": _ratio(top_mch_users, nlu),
            # a farm's accounts like the few targets they are paid for; the
            # honest crowd behind a NAT likes all sorts of things
            "targets_per_liker": _ratio(len(targets), nlu),
            "fresh_share": _ratio(fresh, likes),
            "pays": float(pays),
            "token_pay_share": _ratio(token, pays),
            "others": float(len(others)),
            # among the accounts whose events carried one (see _target_subject)
            "users_per_other": _ratio(len(other_users), len(others)) if others else 1.0,
        }
        return Subject(
            self.name, self.entity, key, key, x, dq[0][0],
            counts={"events": len(dq), "accounts": len(users), "likes": likes,
                    "payments": pays, "targets": len(targets),
                    ("devices" if self.attr == "ip" else "ips"): len(others)},
            samples=lambda: _samples((r[5] for r in reversed(dq)), cfg.max_samples),
        )


class IpView(_AddressView):
    """Accounts behind one IP address over ``window``."""

    name = "ip"
    entity = "ip"
    attr = "ip"


class DeviceView(_AddressView):
    """Accounts on one device over ``device_window``."""

    name = "device"
    entity = "device"
    attr = "device"

    def horizon(self) -> float:
        return self.cfg.device_window


# --------------------------------------------------------------------------- user / lockstep


class UserView(View):
    """A user's recent likes; each new like is forwarded as a :class:`CoLike`.

    The user view raises no alerts itself: it enriches every like with what
    the same account liked in the last ``lockstep_window`` and forwards it to
    the lockstep view, keyed by target.
    """

    name = "user"

    def horizon(self) -> float:
        return self.cfg.lockstep_window

    def add(self, ev: Payment | Like) -> CoLike | None:  # type: ignore[override]
        if type(ev) is not Like or ev.action != "like":
            return None
        cfg = self.cfg
        hist: dict[str, float] | None = self.state.get(ev.user)  # target -> latest like, oldest first
        target, ts = ev.target, ev.ts
        if hist is None:
            hist = self.state[ev.user] = {}
            prev: tuple[tuple[str, float], ...] = ()
        else:
            cut = ts - cfg.lockstep_window
            if target in hist:
                del hist[target]
                evict = False
            else:
                evict = len(hist) >= cfg.lockstep_history
            if not hist:
                prev = ()
            elif min(hist.values()) > cut:  # all recent (the usual case)
                prev = tuple(hist.items())
            else:
                prev = tuple([(t, s) for t, s in hist.items() if s > cut])
            if evict:
                del hist[next(iter(hist))]
        hist[target] = ts
        self.last_seen[ev.user] = ts
        return CoLike(ev.like_id, ev.user, ev.target, ev.ts, prev)

    def evaluate(self, now: float) -> Iterator[Subject]:
        return iter(())


class _Ring:
    __slots__ = ("items", "users", "shared")

    def __init__(self) -> None:
        self.items: deque[CoLike] = deque()
        self.users: dict[str, int] = {}
        self.shared: dict[str, int] = {}  # earlier target -> likes in window that follow it

    def __len__(self) -> int:
        return len(self.items)


class LockstepView(View):
    """Likers of one target and the other targets they liked just before.

    A ring liking the same targets together shows up as many of a target's
    recent likers sharing the same earlier targets. Counts are kept
    incrementally, so a busy target costs one pass over its earlier targets
    per evaluation.
    """

    name = "lockstep"

    def __init__(self, config: EngineConfig) -> None:
        super().__init__(config)
        # per model shard (Kafka partition of the target): how often each earlier
        # target appears in the likes of the window, whatever target they went to;
        # sharded so that a partitioned worker computes exactly what a replay does
        self.prev_freq: dict[int, dict[str, int]] = {}
        self.recent: dict[int, deque[CoLike]] = {}

    def add(self, ev: CoLike) -> None:  # type: ignore[override]
        target = ev.target
        st = self.state.get(target)
        if st is None:
            st = self.state[target] = _Ring()
        st.items.append(ev)
        users = st.users
        users[ev.user] = users.get(ev.user, 0) + 1
        sh = kafka_partition(target, self.cfg.partitions)
        freq = self.prev_freq.get(sh)
        if freq is None:
            freq = self.prev_freq[sh] = {}
            self.recent[sh] = deque()
        self.recent[sh].append(ev)
        if ev.prev:
            shared = st.shared
            sget, fget = shared.get, freq.get
            for t, _ in ev.prev:
                shared[t] = sget(t, 0) + 1
                freq[t] = fget(t, 0) + 1
        self.last_seen[target] = ev.ts
        dirty = self.dirty
        dirty[target] = dirty.get(target, 0) + 1

    def _together(self, dq: deque[CoLike], target: str) -> int:
        """Most likers of this target who liked ``target`` within one ``lockstep_span``."""
        times: dict[str, float] = {}
        for c in dq:
            for t, s in c.prev:
                if t == target:
                    times[c.user] = s
        ts = sorted(times.values())
        span = self.cfg.lockstep_span
        best = lo = 0
        for hi, t in enumerate(ts):
            while t - ts[lo] > span:
                lo += 1
            if hi - lo + 1 > best:
                best = hi - lo + 1
        return best

    @staticmethod
    def _drop(st: _Ring, c: CoLike) -> None:
        _uncount(st.users, c.user)
        shared = st.shared
        for t, _ in c.prev:  # _uncount inlined: once per like and earlier target
            n = shared[t] - 1
            if n:
                shared[t] = n
            else:
                del shared[t]

    def _expire_freq(self, cut: float) -> None:
        for sh, dq in self.recent.items():
            freq = self.prev_freq[sh]
            while dq and dq[0].ts <= cut:
                for t, _ in dq.popleft().prev:  # _uncount inlined, as in _drop
                    n = freq[t] - 1
                    if n:
                        freq[t] = n
                    else:
                        del freq[t]

    def evaluate(self, now: float) -> Iterator[Subject]:
        cfg = self.cfg
        cut = now - cfg.window
        self._expire_freq(cut)
        for key in self._take_dirty(now):
            st = self.state.get(key)
            if st is None:
                continue
            dq = st.items
            while dq and dq[0].ts <= cut:
                self._drop(st, dq.popleft())
            nu = len(st.users)
            if nu < cfg.min_likes:
                continue
            # candidates: the earlier targets most of the likers share
            gate = max(cfg.min_likes, nu // 2)
            cands = sorted([(-n, t) for t, n in st.shared.items() if n >= gate])[:3]
            freq = self.prev_freq.get(kafka_partition(key, cfg.partitions), {})
            ranked = sorted(((self._together(dq, t), st.shared[t] / max(freq.get(t, 1), 1), t)
                             for _, t in cands), key=lambda p: (-p[0], p[2]))
            top = ranked[0][0] if ranked else 0
            specificity = ranked[0][1] if ranked else 0.0
            second = ranked[1][0] if len(ranked) > 1 else 0
            x = {
                "likers": float(nu),
                "top_shared": float(top),
                "top_share": _ratio(top, nu),
                "second_share": _ratio(second, nu),
                "specificity": min(1.0, specificity),
                "span": dq[-1].ts - dq[0].ts,
            }
            yield Subject(
                "lockstep", "target", key, key, x, dq[0].ts,
                counts={"likers": nu, "shared_likers": top,
                        "shared_targets": [t for _, _, t in ranked]},
                samples=lambda dq=dq: _samples((c.like_id for c in reversed(dq)), cfg.max_samples),
            )


VIEW_TYPES: dict[str, type[View]] = {
    "merchant": MerchantView,
    "ip": IpView,
    "device": DeviceView,
    "user": UserView,
    "lockstep": LockstepView,
}
