"""Engine settings: windows, thresholds and detector switches, in one typed object.

Every number the detectors use lives here, so a deployment can tune it from
environment variables or flags (see ``streams/settings.py``) and a replay
can reproduce a worker exactly by using the same values.
"""

from __future__ import annotations

from dataclasses import MISSING, asdict, dataclass, fields, replace
from typing import Any

from detectors.parsing import MAX_AHEAD, MAX_BEHIND

__all__ = ["EngineConfig", "MODES"]

MODES = ("both", "rules", "models")
#: settings for which 0 means "off" (every other number must be positive)
_MAY_BE_ZERO = ("grace", "max_skew", "max_ahead", "allowed_lateness", "max_behind",
                "rank_below", "rank_share", "dismiss_merchant_for")


@dataclass(frozen=True, slots=True)
class EngineConfig:
    """Detector settings. Times are seconds of event time.

    >>> EngineConfig().validate().window
    300.0
    >>> EngineConfig(tick=0).validate()
    Traceback (most recent call last):
    ...
    ValueError: tick must be > 0
    """

    grace: float = 10.0  #: out-of-order tolerance before an event is late
    #: how far one input partition may lag the newest before the watermark stops
    #: waiting for it (0: one global watermark; see docs/event-time.md)
    max_skew: float = 60.0
    tick: float = 5.0  #: how often keys touched since the last tick are evaluated
    window: float = 300.0  #: sliding window of burst features
    long_window: float = 3 * 3600.0  #: sliding window of paid-like pairs (slow drips)
    device_window: float = 1800.0  #: window of accounts per device
    burst: float = 120.0  #: short span for "many accounts at once" features
    join_window: float = 600.0  #: payment -> like (and like -> payment) join span
    paid_delay: float = 120.0  #: a like at most this long after paying is "prompt"
    token_amount: int = 200  #: amounts up to this many fen (2 CNY) are token payments
    fresh_age: float = 7 * 86400.0  #: an account younger than this is fresh
    #: how far back a user's other likes count (a ring may rest between jobs)
    lockstep_window: float = 3600.0
    lockstep_span: float = 480.0  #: a ring's likes of one target fall within this span
    lockstep_history: int = 8  #: likes remembered per user for lockstep
    dedupe_horizon: float = 3600.0  #: ids are remembered at least this long
    # Evidence a key needs before it is evaluated at all: about half of the
    # smallest count its rules ask for, so sparse keys (most of them) cost nothing.
    min_support: int = 3  #: distinct accounts on a device
    min_pairs: int = 2  #: prompt pay->like pairs of a merchant
    min_likes: int = 6  #: likes of a target (merchant and lockstep views)
    min_ip_events: int = 7  #: events behind an IP
    reeval: float = 60.0  #: a busy key is re-evaluated at least this often
    partitions: int = 6  #: model shards; equal to the view topics' partition count
    mode: str = "both"  #: ``rules``, ``models`` or ``both``
    warmup: int = 200  #: samples a model shard learns before it may alert
    learn_every: int = 4  #: once warm, a model learns from every n-th subject
    model_quantile: float = 0.99  #: calibrated model threshold (score quantile)
    model_floor: float = 0.75  #: model scores below this never alert
    corroboration: float = 0.4  #: a model alert needs a rule score at least this
    #: the lockstep model's: people browsing a shop like its posts one after another,
    #: so half a dozen likers sharing an earlier target is common; a ring needs more
    lockstep_corroboration: float = 0.45
    renotify: float = 1800.0  #: re-alert a still-firing entity after this long
    seed: int = 42  #: seed of the River models
    max_samples: int = 20  #: sample ids per alert
    # Fields added later go last: snapshots of older versions list their
    # fields by position (see __setstate__).
    #: an event may claim a time at most this far after its Kafka record's
    #: timestamp; later ones are rejected as ``bad_time`` (0: not checked)
    max_ahead: float = MAX_AHEAD
    #: an event at most this far behind the watermark (a like flushed late from
    #: a phone's offline queue, a payment notification from a backlog) still
    #: updates the views, at once and out of order; older ones are dropped as
    #: late (0: every event behind the watermark is late)
    allowed_lateness: float = 600.0
    #: an event may claim a time at most this far before its Kafka record's
    #: timestamp; older ones are rejected as ``bad_time`` (0: not checked, the
    #: default: replays into Kafka stamp the current time; see docs/contract.md)
    max_behind: float = MAX_BEHIND
    #: a dismissed alert's detector stays quiet on its entity this long after
    #: the verdict, unless the evidence rises above the dismissed alert's level
    dismiss_for: float = 86400.0
    #: a dismissed target's detector also stays quiet on the other targets of
    #: its merchant this long (an office likes its employer's next post the
    #: same way; 0: only the target)
    dismiss_merchant_for: float = 86400.0
    #: a rule's warning whose confirmation, as learned from moderators' verdicts
    #: on alerts like it, is less likely than this is ranked down to info (0:
    #: never, the default: it takes few false alarms away for the campaigns it
    #: delays; docs/quality.md)
    rank_below: float = 0.0
    #: confirmed and dismissed verdicts each a (view, entity type, detector) needs
    #: before ranking
    rank_after: int = 5
    #: the least share of dismissals among those verdicts for the ranker to rank
    rank_share: float = 0.15
    #: a confirmed alert's accounts, devices and addresses stay on the watchlist this long
    watch_for: float = 7 * 86400.0
    #: a like at most this long after a token payment is still "prompt": a
    #: token pays for nothing but the like, and a ring may wait before it
    token_delay: float = 180.0

    def validate(self) -> EngineConfig:
        """Check ranges; raise ``ValueError`` naming the first bad setting."""
        for f in fields(self):
            if f.name in ("mode", "seed"):
                continue
            if f.name in _MAY_BE_ZERO:
                if getattr(self, f.name) < 0:
                    raise ValueError(f"{f.name} must be >= 0")
            elif getattr(self, f.name) <= 0:
                raise ValueError(f"{f.name} must be > 0")
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        if not 0 < self.model_quantile < 1:
            raise ValueError("model_quantile must be in (0, 1)")
        if self.rank_below >= 1:
            raise ValueError("rank_below must be < 1")
        if self.rank_share >= 1:
            raise ValueError("rank_share must be < 1")
        if self.window < self.tick:
            raise ValueError("window must be >= tick")
        if self.token_delay < self.paid_delay:
            raise ValueError("token_delay must be >= paid_delay")
        return self

    def __setstate__(self, state: list[Any] | dict[str, Any]) -> None:
        """Unpickle by field name; a field a snapshot lacks (it was written by an
        older version) takes its default."""
        names = [f.name for f in fields(self)]
        # a list holds the fields of its version in order: a prefix of ours
        values = dict(zip(names[:len(state)], state, strict=True)) \
            if isinstance(state, list) else state
        for f in fields(self):
            v = values.get(f.name, f.default)
            if v is MISSING:  # pragma: no cover - every field has a default
                raise TypeError(f"snapshot lacks {f.name}")
            object.__setattr__(self, f.name, v)

    def __getstate__(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def with_(self, **changes: Any) -> EngineConfig:
        return replace(self, **changes).validate()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
