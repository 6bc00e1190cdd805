"""Moderators' verdicts on alerts, and what they do to detection.

A verdict (topic ``likeguard.verdicts``, docs/contract.md) says that an alert
was ``confirmed`` or ``dismissed``. :func:`parse_verdict` validates one as
the input topics' events are validated (:class:`~detectors.parsing.BadRecord`
with a reason code). :class:`VerdictBook` is the engine's memory of them:

* a *dismissed* alert quiets its detector on its entity for ``dismiss_for``
  seconds of event time after the decision, unless a candidate alert's level
  (severity plus action, :func:`~detectors.alerts.severity_for`) rises above
  the dismissed alert's: an employer's post liked by its office is not
  re-alerted every half hour, but a campaign that grows on top of it is. A
  dismissed *target* quiets its detector on the merchant's other targets
  too, for ``dismiss_merchant_for``: the office likes the employer's next
  post the same way;
* a *confirmed* alert lifts a dismissal of the same detector and entity
  decided before it (the latest decision wins), and puts the accounts,
  devices and addresses of its evidence (and its entity, when it is one of
  those) on the watchlist for ``watch_for``, the accounts of a confirmed
  lockstep alert also as a ring's; a target's, other than the
  lockstep view's (whose evidence names the ring), only its suspect likers
  (``evidence.suspect_accounts``) (:attr:`VerdictBook.to_watch`;
  the engine hands them to the core's merchant view, where their likes
  count as ``watched_likers``);
* either verdict on an alert the engine remembers trains the
  :class:`~detectors.models.ranker.VerdictRanker` on that alert's features.

Verdicts are events on the event-time axis: each takes effect from the
first evaluation tick after its ``decided_at``, so a replay with a verdicts
file gives the same alerts every time, and applying a verdict twice (a
worker re-reading its verdicts after a restart) changes nothing.

Examples
--------
>>> v = parse_verdict(b'{"alert_id": "a1", "entity": {"type": "ip", "id": "10.0.0.1"},'
...     b' "verdict": "dismissed", "reviewer": "r1", "decided_at": "2026-11-24T12:00:00Z"}')
>>> book = VerdictBook(dismiss_for=3600)
>>> book.note_raised("a1", "ip_farm@1", 2, v.decided_at - 60)
>>> book.add(v)
>>> book.apply_due(v.decided_at)
1
>>> [book.holds("ip_farm@1", "ip", "10.0.0.1", lvl, v.decided_at + 60) for lvl in (2, 4)]
[True, False]
>>> book.holds("ip_farm@1", "ip", "10.0.0.1", 2, v.decided_at + 3600)
False
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from detectors.events import format_time
from detectors.models.ranker import VerdictRanker
from detectors.parsing import BadRecord, _load, _opt_str, _req_str, _sub, _time
from detectors.recording import open_text

__all__ = ["Verdict", "VerdictBook", "parse_verdict", "verdict_from_object", "read_verdicts",
           "evidence_actors", "evidence_suspects", "VERDICTS", "ENTITY_TYPES", "DEFAULT_BAR", "TARGETS_OF"]

VERDICTS = ("confirmed", "dismissed")
ENTITY_TYPES = ("merchant", "target", "user", "ip", "device")
#: the level a dismissal holds back when the engine no longer knows the
#: dismissed alert: a rule's warning (level 2) and below; critical breaks through
DEFAULT_BAR = 2
#: the entity type of a dismissal that holds all targets of a merchant
TARGETS_OF = "targets of merchant"


#: what an alert's evidence lists and a confirmation watches, in this order
ACTOR_KINDS = ("accounts", "devices", "ips")
Actors = tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]


def evidence_actors(evidence: Mapping[str, Any]) -> Actors:
    """An alert's ``evidence.sample_accounts``, ``sample_devices`` and
    ``sample_ips`` (absent lists and non-string items left out).

    >>> evidence_actors({"sample_accounts": ["o1", 7], "sample_ips": ["10.0.0.1"]})
    (('o1',), (), ('10.0.0.1',))
    """
    return (_strings(evidence, "sample_accounts"), _strings(evidence, "sample_devices"),
            _strings(evidence, "sample_ips"))


def evidence_suspects(evidence: Mapping[str, Any]) -> tuple[str, ...]:
    """A target alert's ``evidence.suspect_accounts`` (non-string items left out).

    >>> evidence_suspects({"suspect_accounts": ["o1", None, "o2"]})
    ('o1', 'o2')
    """
    return _strings(evidence, "suspect_accounts")


def _strings(evidence: Mapping[str, Any], name: str) -> tuple[str, ...]:
    """The strings of the list ``evidence[name]`` (none when it is no list)."""
    got = evidence.get(name)
    return tuple(x for x in got if isinstance(x, str)) if isinstance(got, list) else ()


@dataclass(frozen=True, slots=True)
class Verdict:
    """One moderator's decision on one alert (times in epoch seconds)."""

    alert_id: str
    entity_type: str
    entity_id: str
    verdict: str
    reviewer: str
    decided_at: float
    reason: str | None = None
    #: ``name@version`` of the alert's detector (optional; the console sets it)
    detector: str | None = None
    #: the alert's ``evidence.sample_accounts``, ``sample_devices`` and
    #: ``sample_ips`` (optional; what a confirmation puts on the watchlist)
    accounts: tuple[str, ...] = ()
    devices: tuple[str, ...] = ()
    ips: tuple[str, ...] = ()
    #: the alert's ``evidence.merchant``: the merchant of a target (optional;
    #: a dismissal quiets the detector on its other targets)
    merchant: str | None = None
    #: a target alert's ``evidence.suspect_accounts``: its likers whose likes
    #: carry the evidence (optional; what a confirmation of a target watches)
    suspects: tuple[str, ...] = ()

    @staticmethod
    def of_alert(alert: Mapping[str, Any], verdict: str, reviewer: str, decided_at: float,
                 reason: str | None = None) -> Verdict:
        """A verdict on ``alert`` (a contract object), with what the engines need
        of it: its detector, the actors of its evidence and its merchant.

        >>> a = {"alert_id": "a1", "entity": {"type": "target", "id": "post:1"},
        ...      "detector": "farm_target@1",
        ...      "evidence": {"merchant": "m1", "sample_ips": ["10.0.0.1"]}}
        >>> v = Verdict.of_alert(a, "dismissed", "r1", 0.0)
        >>> v.detector, v.merchant, v.ips
        ('farm_target@1', 'm1', ('10.0.0.1',))
        """
        entity, evidence = alert["entity"], alert.get("evidence") or {}
        merchant = evidence.get("merchant")
        return Verdict(alert["alert_id"], entity["type"], entity["id"], verdict, reviewer,
                       decided_at, reason, alert.get("detector"), *evidence_actors(evidence),
                       merchant=merchant if isinstance(merchant, str) else None,
                       suspects=evidence_suspects(evidence))

    @property
    def key(self) -> str:
        """Kafka record key: ``entity.type:entity.id``, as the alert's."""
        return f"{self.entity_type}:{self.entity_id}"

    def to_dict(self) -> dict[str, Any]:
        """The contract's JSON object."""
        out: dict[str, Any] = {
            "alert_id": self.alert_id,
            "entity": {"type": self.entity_type, "id": self.entity_id},
            "verdict": self.verdict,
            "reviewer": self.reviewer,
            "decided_at": format_time(self.decided_at),
        }
        if self.reason is not None:
            out["reason"] = self.reason
        if self.detector is not None:
            out["detector"] = self.detector
        lists = zip(ACTOR_KINDS, (self.accounts, self.devices, self.ips), strict=True)
        ev: dict[str, Any] = {f"sample_{k}": list(v) for k, v in lists if v}
        if self.merchant is not None:
            ev["merchant"] = self.merchant
        if self.suspects:
            ev["suspect_accounts"] = list(self.suspects)
        if ev:
            out["evidence"] = ev
        return out

    def to_json(self) -> bytes:
        return orjson.dumps(self.to_dict())


def _choice(obj: dict[str, Any], name: str, allowed: tuple[str, ...], label: str) -> str:
    v = _req_str(obj, name, label)
    if v not in allowed:
        raise BadRecord("out_of_range", f"{label} must be one of {', '.join(allowed)}, "
                                        f"got {v[:40]!r}")
    return v


def parse_verdict(value: bytes | str | None) -> Verdict:
    """Validate a verdict record; raise :class:`~detectors.parsing.BadRecord`.

    >>> try:
    ...     parse_verdict('{"alert_id": "a1", "entity": {"type": "post", "id": "p"}}')
    ... except BadRecord as e:
    ...     print(e.reason, "-", e.detail)
    out_of_range - entity.type must be one of merchant, target, user, ip, device, got 'post'
    """
    return verdict_from_object(_load(value))


def verdict_from_object(obj: dict[str, Any]) -> Verdict:
    """:func:`parse_verdict` of a decoded JSON object."""
    alert_id = _req_str(obj, "alert_id")
    entity = _sub(obj, "entity", True)
    etype = _choice(entity, "type", ENTITY_TYPES, "entity.type")
    eid = _req_str(entity, "id", "entity.id")
    verdict = _choice(obj, "verdict", VERDICTS, "verdict")
    reviewer = _req_str(obj, "reviewer")
    decided = _time(obj, "decided_at", True)
    assert decided is not None
    reason = _opt_str(obj, "reason")
    detector = _opt_str(obj, "detector")
    evidence = _sub(obj, "evidence", False)
    accounts, devices, ips = (_ids(evidence, f"sample_{k}") for k in ACTOR_KINDS)
    merchant = (None if evidence.get("merchant") is None
                else _req_str(evidence, "merchant", "evidence.merchant"))
    return Verdict(alert_id, etype, eid, verdict, reviewer, decided, reason, detector,
                   accounts, devices, ips, merchant, _ids(evidence, "suspect_accounts"))


#: ids per evidence list a verdict may carry
MAX_EVIDENCE_IDS = 100


def _ids(evidence: dict[str, Any], name: str) -> tuple[str, ...]:
    v = evidence.get(name)
    if v is None:
        return ()
    label = f"evidence.{name}"
    if not isinstance(v, list):
        raise BadRecord("wrong_type", f"{label} must be a list, got {type(v).__name__}")
    if len(v) > MAX_EVIDENCE_IDS:
        raise BadRecord("out_of_range", f"{label} must hold at most {MAX_EVIDENCE_IDS} ids, "
                                        f"got {len(v)}")
    return tuple(_req_str({"id": x}, "id", label) for x in v)



def read_verdicts(path: str | Path) -> tuple[list[Verdict], Counter[str]]:
    """The verdicts of a JSON Lines file (one contract object per line, blank
    lines skipped), in file order, and the count of bad lines by reason."""
    good: list[Verdict] = []
    bad: Counter[str] = Counter()
    with open_text(path, "rt") as f:
        for line in f:
            if not line.strip():
                continue
            try:
                good.append(parse_verdict(line))
            except BadRecord as exc:
                bad[exc.reason] += 1
    return good, bad


#: what a confirmation watches, in the order of :data:`Actors`
_WATCH_KINDS = ("account", "device", "ip")


#: ids per list an alert remembers with its held-back repeats' (a flood's
#: hundreds of accounts; bounds the book at this many per raised alert)
MAX_REMEMBERED_IDS = 500


def _newest_first(new: tuple[str, ...], old: tuple[str, ...]) -> tuple[str, ...]:
    """``new`` then ``old``, each id once, at most :data:`MAX_REMEMBERED_IDS` of them."""
    return tuple(dict.fromkeys((*new, *old)))[:MAX_REMEMBERED_IDS]


@dataclass(slots=True)
class _Raised:
    """An alert this engine raised, as a verdict naming it needs it."""

    detector: str
    level: int
    at: float  #: event time raised
    key: tuple[str, str, str]  #: (view, entity type, detector): the ranker's model
    features: dict[str, float]
    actors: Actors
    learned: str | None = None  #: the verdict the ranker learned from it
    merchant: str | None = None  #: a target's merchant (its evidence's)
    suspects: tuple[str, ...] = ()  #: a target's suspect likers (its evidence's)


class VerdictBook:
    """Verdicts waiting for their time, dismissals in force, and the alerts
    raised recently enough to be named by a verdict.

    State is bounded by event time: dismissals end ``dismiss_for`` after
    their decision and raised alerts are forgotten ``dismiss_for`` after
    they were raised (:meth:`sweep`).

    Parameters
    ----------
    dismiss_for
        Seconds of event time a dismissal keeps its detector quiet on its entity.
    detectors
        ``name@version`` of the detectors this engine hosts; a dismissal of
        another detector is not kept (``None``: keep all). A dismissal that
        names no detector (its alert is not known here and the verdict has
        no ``detector``) holds every detector on the entity.
    ring_detectors
        ``name@version`` of the detectors whose target alerts name the ring
        that moved together (the lockstep view's), so that confirming one
        watches those accounts; a confirmed target alert of any other
        detector watches no one.
    dismiss_merchant_for
        Seconds a dismissed target's detector also stays quiet on the other
        targets of its merchant (0: only on the target).
    """

    def __init__(self, dismiss_for: float, detectors: set[str] | None = None,
                 ranker: VerdictRanker | None = None, watch_for: float = 7 * 86400.0,
                 ring_detectors: frozenset[str] = frozenset(),
                 dismiss_merchant_for: float = 0.0) -> None:
        self.dismiss_for = dismiss_for
        self.dismiss_merchant_for = dismiss_merchant_for
        self.ring_detectors = ring_detectors
        self.watch_for = watch_for
        #: (kind, ids, until) a confirmation put on the watchlist, for the
        #: engine to hand to the core (``kind``: account, device or ip)
        self.to_watch: list[tuple[str, list[str], float]] = []
        self.detectors = detectors
        self.ranker = ranker if ranker is not None else VerdictRanker()
        self.pending: list[tuple[float, int, Verdict]] = []
        self._seq = 0
        self.raised: dict[str, _Raised] = {}
        #: (view, entity type, entity id) -> the alert raised last on it, to
        #: which the evidence of the repeats the suppressor held back is added
        self.latest: dict[tuple[str, str, str], str] = {}
        #: (detector or None, entity type, entity id) -> (until, level held back);
        #: entity type :data:`TARGETS_OF` and a merchant: all its targets
        self.quiet: dict[tuple[str | None, str, str], tuple[float, int]] = {}
        self.counts: Counter[str] = Counter()

    @property
    def idle(self) -> bool:
        """No verdict was ever taken: scoring puts no one on the watchlist."""
        return not self.pending and not self.counts["received"] and not self.to_watch

    def add(self, v: Verdict) -> None:
        """Queue a verdict; it takes effect at the first :meth:`apply_due` at or
        after its ``decided_at`` (ties in the order added; the engine applies
        a tick's verdicts after scoring it)."""
        self._seq += 1
        heapq.heappush(self.pending, (v.decided_at, self._seq, v))
        self.counts["received"] += 1

    def apply_due(self, now: float) -> int:
        """Apply the verdicts decided at or before ``now``; return how many."""
        n = 0
        while self.pending and self.pending[0][0] <= now:
            self._apply(heapq.heappop(self.pending)[2])
            n += 1
        return n

    def _apply(self, v: Verdict) -> None:
        self.counts[v.verdict] += 1
        known = self.raised.get(v.alert_id)
        if known is not None:
            self.counts["matched"] += 1
            if known.learned != v.verdict:  # learned once per answer, however often it comes
                known.learned = v.verdict
                self.ranker.learn_one(known.key, known.features, v.verdict == "confirmed")
        detector = known.detector if known is not None else v.detector
        if v.verdict == "confirmed":
            self._watch(v, known, detector)
        if detector is not None and self.detectors is not None \
                and detector not in self.detectors:
            return
        scopes = [((detector, v.entity_type, v.entity_id), self.dismiss_for)]
        # getattr: an alert remembered by a checkpoint from before targets had merchants
        merchant = v.merchant or (getattr(known, "merchant", None) if known else None)
        if v.entity_type == "target" and merchant and detector is not None \
                and self.dismiss_merchant_for > 0:
            scopes.append(((detector, TARGETS_OF, merchant), self.dismiss_merchant_for))
        if v.verdict == "confirmed":
            for k, _ in scopes:
                self.quiet.pop(k, None)
            return
        level = known.level if known is not None else DEFAULT_BAR
        for k, period in scopes:
            until, bar = v.decided_at + period, level
            old = self.quiet.get(k)
            if old is not None:
                until, bar = max(until, old[0]), max(bar, old[1])
            self.quiet[k] = (until, bar)

    def _watched(self, entity_type: str, detector: str | None, actors: Actors,
                 suspects: tuple[str, ...]) -> Actors:
        """Of an alert's evidence, what confirming it watches."""
        if entity_type == "target" and detector not in self.ring_detectors:
            # a target's samples are its newest likers, honest ones among them,
            # unless it is the lockstep view's (the likers who moved together):
            # watch only its suspects, the likers whose likes carry the evidence
            return (suspects, (), ())
        return actors

    def _watch(self, v: Verdict, known: _Raised | None, detector: str | None) -> None:
        given = self._watched(v.entity_type, detector, (v.accounts, v.devices, v.ips),
                              v.suspects)
        # getattr: an alert remembered by a checkpoint from before suspects
        remembered = (self._watched(v.entity_type, detector, known.actors,
                                    getattr(known, "suspects", ()))
                      if known is not None else ((), (), ()))
        entity = {"user": "account", "device": "device", "ip": "ip"}.get(v.entity_type)
        own: Actors = tuple((v.entity_id,) if entity == kind else ()  # type: ignore[assignment]
                            for kind in _WATCH_KINDS)
        until = v.decided_at + self.watch_for
        self._put_on_watch(given, remembered, own, until=until)
        if v.entity_type == "target" and detector in self.ring_detectors:
            ring = list(dict.fromkeys((*given[0], *remembered[0])))
            if ring:
                self.to_watch.append(("ring", ring, until))

    def _put_on_watch(self, *lists: Actors, until: float) -> None:
        for i, kind in enumerate(_WATCH_KINDS):
            ids = dict.fromkeys(x for actors in lists for x in actors[i])
            if ids:
                self.to_watch.append((kind, list(ids), until))
                self.counts["watched"] += len(ids)

    def note_raised(self, alert_id: str, detector: str, level: int, now: float,
                    key: tuple[str, str, str] = ("", "", ""),
                    x: dict[str, float] | None = None,
                    actors: Actors = ((), (), ()), merchant: str | None = None,
                    suspects: tuple[str, ...] = (), entity_id: str | None = None) -> None:
        """Remember an alert this engine raised (its view, entity type and
        detector, features, the accounts, devices and IPs of its evidence, a
        target's merchant and suspect likers), for the verdicts that name it;
        with ``entity_id``, as the alert its entity's held-back repeats add to."""
        self.raised[alert_id] = _Raised(detector, level, now, key, x or {}, actors,
                                        merchant=merchant, suspects=suspects)
        if entity_id is not None:
            self.latest[(key[0], key[1], entity_id)] = alert_id

    def note_repeat(self, view: str, entity_type: str, entity_id: str, now: float,
                    actors: Actors, suspects: tuple[str, ...]) -> None:
        """Add the evidence of a repeat the suppressor held back to the alert
        raised last on the entity: a campaign's later workers are named when
        the alert is reviewed, and watched at once if it was confirmed."""
        known = self.raised.get(self.latest.get((view, entity_type, entity_id), ""))
        if known is None:
            return
        merged: Actors = tuple(  # type: ignore[assignment]
            _newest_first(new, old) for new, old in zip(actors, known.actors, strict=True))
        grown = _newest_first(suspects, known.suspects)
        if known.learned == "confirmed":
            detector = known.detector
            before = self._watched(entity_type, detector, known.actors, known.suspects)
            after = self._watched(entity_type, detector, merged, grown)
            watched = [set(b) for b in before]
            fresh: Actors = tuple(  # type: ignore[assignment]
                tuple(x for x in a if x not in w) for a, w in zip(after, watched, strict=True))
            self._put_on_watch(fresh, until=now + self.watch_for)
        known.actors, known.suspects = merged, grown

    def holds(self, detector: str, entity_type: str, entity_id: str, level: int,
              now: float, merchant: str | None = None) -> bool:
        """Whether a dismissal keeps a candidate alert at ``level`` quiet (on a
        target, ``merchant`` is its merchant)."""
        if not self.quiet:
            return False
        keys = [(detector, entity_type, entity_id), (None, entity_type, entity_id)]
        if entity_type == "target" and merchant:
            keys.append((detector, TARGETS_OF, merchant))
        for k in keys:
            q = self.quiet.get(k)
            if q is not None and now < q[0] and level <= q[1]:
                self.counts["held"] += 1
                return True
        return False

    def sweep(self, now: float) -> None:
        """Forget ended dismissals and alerts too old to be named."""
        for k in [k for k, (until, _) in self.quiet.items() if until <= now]:
            del self.quiet[k]
        horizon = now - self.dismiss_for
        for a in [a for a, r in self.raised.items() if r.at < horizon]:
            del self.raised[a]
        for k in [k for k, a in self.latest.items() if a not in self.raised]:
            del self.latest[k]

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.__dict__.setdefault("latest", {})  # a checkpoint from before repeats were kept

    def __len__(self) -> int:
        return len(self.pending) + len(self.raised) + len(self.quiet)
