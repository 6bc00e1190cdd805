"""Type stubs of the compiled core (``detectors/_core``, Rust + PyO3).

The core holds the engine's event-time machinery (dedupe, the reorder
buffer and its watermarks, the tick grid), the five keyed views with their
window state, the payment<->like join and the features. Rules and River
models score the subjects it hands out (:mod:`detectors.engine`).
"""

from collections.abc import Callable, Sequence
from typing import Any

from detectors.config import EngineConfig
from detectors.events import CoLike, Like, Payment

#: layout version of :meth:`Core.snapshot`'s bytes
STATE_FORMAT: int
#: the views whose partitions :func:`route` gives, in its order
ROUTED_VIEWS: tuple[str, str, str, str]

class Subject:
    """One entity evaluated at one tick: its features and the evidence behind them."""

    view: str
    entity_type: str
    entity_id: str
    #: the key whose Kafka partition picks the model shard
    shard_key: str
    #: that partition
    shard: int
    #: a new dict at each access: the values stay in the core until asked for
    features: dict[str, float]
    window_start: float
    #: the evidence, a new dict at each access
    counts: dict[str, Any]
    #: index of the strongest rule of this view and entity type (among those
    #: given to :meth:`Core.set_rules`), ``None`` when none scores above 0
    rule: int | None
    #: that rule's score (0.0 when none)
    rule_score: float
    def samples(self) -> list[str]:
        """Sample ids behind the evidence, newest first."""

class CompiledRule:
    """A rule's paths compiled for the core: each path a list of
    ``(feature, is_ge, threshold, is_gate)`` conditions; ``cap`` bounds a
    condition's ratio (see :class:`detectors.base.Rule`)."""

    def __init__(self, paths: list[list[tuple[str, bool, float, bool]]], cap: float) -> None: ...
    def best(self, x: dict[str, float]) -> tuple[float, int]:
        """``(strength, index)`` of the strongest path over the features ``x``."""

class Core:
    """The event-time core over the hosted views (one per :class:`~detectors.engine.Engine`)."""

    watermark: float
    #: the newest event time seen (``-inf`` before the first)
    max_ts: float
    #: whether a source was declared to have records still to deliver
    waiting: bool
    #: events buffered for reordering
    buffered: int
    #: ids remembered for de-duplication
    remembered: int
    #: events dropped as duplicates
    duplicates: int
    #: ticks evaluated so far (idle stretches of event time are jumped)
    ticks_run: int
    views: list[str]
    def __init__(self, config: EngineConfig, views: Sequence[str]) -> None: ...
    def set_rules(self, rules: list[tuple[str, str, list[CompiledRule]]]) -> None:
        """The rules per ``(view, entity_type)``, in order: each subject then
        carries its strongest rule (:attr:`Subject.rule`)."""
    def process(self, event: Payment | Like | CoLike, source: str | None = None) -> bool:
        """Take one event; True when ticks with subjects to score are queued."""
    def process_many(self, events: list[Payment | Like | CoLike], sources: list[str | None]) -> bool:
        """Take a batch of events, each from the source at the same index."""
    def process_record(self, data: bytes, source: str | None = None
                       ) -> tuple[int, bool, int, int, bool] | None:
        """One view-topic record of the worker (a bundle of events and marks):
        ``(events, watermark_moved, duplicate_payments, duplicate_likes,
        ticks_queued)``, or ``None`` (nothing taken) when it is not one."""
    def progress(self, source: str | None, ts: float | None, newest: float | None = None,
                 behind: bool | None = None) -> bool:
        """A progress mark of ``source`` (see :meth:`detectors.engine.Engine.progress`)."""
    def advance(self, watermark: float) -> bool: ...
    def flush(self) -> bool: ...
    def take_ticks(self) -> list[tuple[float, list[Subject], bool]]:
        """The queued ticks as ``(now, subjects, swept)``, oldest first."""
    def take_forwards(
        self,
    ) -> list[tuple[str, str, str, float, list[tuple[str, float, str | None]], str | None]]:
        """Enriched likes for a lockstep view hosted elsewhere:
        ``(like_id, user, target, ts, prev, mchid)``."""
    def add(self, event: Payment | Like | CoLike) -> None:
        """Put an event straight into the views (tests of the views)."""
    def evaluate(self, now: float) -> list[Subject]:
        """Evaluate the views' due keys at ``now`` (tests of the views)."""
    def sweep(self, now: float) -> int:
        """Drop state expired at ``now``; returns the keys dropped."""
    @property
    def compactions(self) -> int:
        """Times the state was laid out afresh after shrinking to half its most."""
    def stats(self) -> dict[str, int]: ...
    def joins(self) -> dict[str, int]: ...
    def sizes(self) -> list[tuple[str, tuple[int, int]]]: ...
    def holds_user(self, user: str) -> bool: ...
    def watch(self, kind: str, ids: list[str], until: float) -> None:
        """Put ``ids`` (``kind``: ``account``, ``device``, ``ip``, or ``ring``: an
        account confirmed as a ring's) on the merchant view's watchlist until
        event time ``until``."""
    def watching(self) -> tuple[int, int, int, int]:
        """Watchlist entries per kind: ``(accounts, devices, ips, ring accounts)``."""
    def snapshot(self) -> bytes:
        """The whole state as versioned bytes (a data format: nothing in it runs)."""
    @staticmethod
    def restore(data: bytes) -> Core:
        """Rebuild a core from :meth:`snapshot` bytes; ``ValueError`` when they are not one."""

class Replay:
    """A recording read in the core: split by source, then merged in event time."""
    def __init__(self, path: str, workdir: str, topics: list[tuple[str, str]],
                 max_ahead: float, max_behind: float, max_sources: int,
                 read_line: Callable[[bytes, int], Any], parse_value: Callable[..., Any],
                 bad_record: type[Exception]) -> None: ...
    def split(self) -> int:
        """First pass: split the records by source; returns the records read."""
    def run(self, core: Core, limit: int, stop_at_ticks: bool = True) -> int:
        """Feed up to ``limit`` events into ``core``, stopping early once ticks
        are queued (unless ``stop_at_ticks`` is false); returns the events fed
        (0 once the recording is done). The merge runs without the interpreter,
        taking it only for a value the fast path declines."""
    def counts(self) -> dict[str, Any]:
        """Records read, events taken, ignored, skipped and rejected by reason, so far."""

def murmur2(data: bytes) -> int:
    """Kafka's murmur2 hash (the Java client's, used by its default partitioner)."""

def kafka_partition(key: str, partitions: int) -> int:
    """The partition Kafka's default partitioner picks for a string key."""

def compress(data: bytes) -> bytes:
    """``data`` as one LZ4 block with its length prepended (checkpoints)."""

def interned_ids() -> int:
    """Distinct ids the process's engines hold interned (one shared copy each),
    those awaiting the pool's next sweep included."""

def decompress(data: bytes) -> bytes:
    """What :func:`compress` made ``data`` from; ``ValueError`` on other data."""

def parse_fast(kind: str, value: str) -> Like | Payment | None:
    """The core's parse fast path for one value of ``kind`` (``"like"`` or
    ``"payment"``): the event, or ``None`` where it leaves the value to the
    validator (for tests: whatever it accepts, the validator accepts as equal)."""

def route(is_payment: bool, value: bytes, ts_ms: int | None, max_ahead: float,
          max_behind: float, partitions: int
          ) -> tuple[float, bytes, int, int, int, int] | None:
    """The ingest's fast path: ``(ts, data, merchant, ip, device, user)``, the
    event time, view-topic encoding and each view's partition (-1: not taken),
    or ``None`` to leave the value to the validator."""
