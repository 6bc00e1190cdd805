"""Event-time machinery: reordering by watermark, de-duplication, sliding counts.

* :class:`Reorderer` holds events until the watermark (highest event time seen
  minus a grace period) passes them, then releases them in a total,
  deterministic order. Events older than the watermark are *late*.
* :class:`Deduper` drops repeated ids within a horizon, in two rotating
  generations so memory follows the ids seen in the last horizon only.
* :func:`kafka_partition` is Kafka's default partitioner, which the engine
  shards its models by.

Examples
--------
>>> r = Reorderer(grace=10)
>>> r.push(5.0, "b", "e2"); r.push(3.0, "a", "e1"); r.push(20.0, "c", "e3")
>>> [e for _, e in r.release()]
['e1', 'e2']
>>> r.watermark
10.0
>>> r.is_late(9.0)
True
"""

from __future__ import annotations

import functools
import heapq
from collections.abc import Hashable, Iterator
from typing import Any

__all__ = ["Reorderer", "Deduper", "kafka_partition", "murmur2"]

NEG_INF = float("-inf")


class Reorderer:
    """Bounded-disorder buffer releasing events in ``(ts, tiebreak)`` order.

    Events may name their *source* (a Kafka topic-partition: the order within
    a source is the producer's, but a consumer interleaves sources as it
    likes, and while it catches up a backlog one partition may run minutes
    ahead of another). The watermark then follows the slowest source, so an
    event is late only when it is more than ``grace`` behind the latest event
    of *every* active source, whatever the interleaving. A source more than
    ``max_skew`` behind the newest event is left behind (treated as idle):
    the buffer holds at most ``max_skew + grace`` seconds of events. At
    start-up nothing is released until event time has run ``max_skew`` past
    the first event, so sources a consumer reaches later are not late either.

    A driver that knows a source still has records to deliver (a Kafka
    partition behind its high-water mark while a backlog is caught up) says
    so with ``progress(..., behind=True)``: such a source is waited for
    however far behind it is (a consumer fetches partitions in chunks of
    bytes, and a chunk of sparse events may span an hour), until it reports
    ``behind=False`` or the buffer holds more than ``max_held`` events (then
    ``max_skew`` applies again, bounding memory).

    Parameters
    ----------
    grace
        Seconds of event time an event may arrive after a later one of its
        source and still be processed in order.
    max_skew
        Seconds of event time one source may lag the newest before the
        watermark stops waiting for it (``0``: one global watermark).
    max_held
        Buffered events beyond which sources marked ``behind`` are no longer
        waited for.

    Examples
    --------
    >>> r = Reorderer(grace=10, max_skew=600)
    >>> r.push(100.0, "a", "a1", source="p0")
    >>> r.push(500.0, "b", "b1", source="p1")  # p1 runs ahead (and start-up holds)
    >>> r.push(700.0, "c", "c1", source="p1")
    >>> r.push(120.0, "d", "d1", source="p0")  # p0 is still at 120: not late
    >>> r.watermark, [e for _, e in r.release()]
    (110.0, ['a1'])
    >>> r.push(900.0, "e", "e1", source="p1")  # p0 now > 600 s behind: left behind
    >>> r.watermark, [e for _, e in r.release()]
    (290.0, ['d1'])

    A source declared behind is waited for, even before its first event:

    >>> r = Reorderer(grace=10, max_skew=60)
    >>> r.progress(None, "p0", behind=True)  # p0 has records, none delivered yet
    >>> r.push(100.0, "a", "a1", source="p1"); r.push(900.0, "b", "b1", source="p1")
    >>> r.watermark
    -inf
    >>> r.push(150.0, "c", "c1", source="p0")
    >>> r.watermark, [e for _, e in r.release()]
    (140.0, ['a1'])
    >>> r.progress(150.0, "p0", behind=False)  # caught up: 750 s behind, left behind
    >>> r.watermark
    830.0
    """

    def __init__(self, grace: float, max_skew: float = 0.0, max_held: int = 1_000_000) -> None:
        self.grace = grace
        self.max_skew = max_skew
        self.max_held = max_held
        #: sources a driver declared to have records still to deliver
        self.behind: set[Hashable] = set()
        self.max_ts = NEG_INF
        self.watermark = NEG_INF
        #: the buffer, a heap of ``(ts, tiebreak, seq, item)``; the engine's hot
        #: loop pops it directly while ``heap[0][0] <= watermark``
        self.heap: list[tuple[float, str, int, Any]] = []
        self._seq = 0
        #: source -> its latest event time
        self.sources: dict[Hashable, float] = {}
        self._slowest = NEG_INF
        self._hold_until = NEG_INF

    def __setstate__(self, state: dict[str, Any]) -> None:
        # engines checkpointed before sources existed
        state.setdefault("max_skew", 0.0)
        state.setdefault("sources", {})
        state.setdefault("_slowest", NEG_INF)
        state.setdefault("_hold_until", NEG_INF)
        state.setdefault("max_held", 1_000_000)
        state.setdefault("behind", set())
        self.__dict__.update(state)

    def __len__(self) -> int:
        return len(self.heap)

    def is_late(self, ts: float) -> bool:
        """Whether an event at ``ts`` is behind the watermark already."""
        return ts < self.watermark

    def push(self, ts: float, tiebreak: str, item: Any, source: Hashable = None) -> None:
        """Buffer ``item``; ``tiebreak`` orders events of equal time."""
        self._seq += 1
        heapq.heappush(self.heap, (ts, tiebreak, self._seq, item))
        self.progress(ts, source)

    def progress(self, ts: float | None, source: Hashable = None, newest: float | None = None,
                 behind: bool | None = None) -> None:
        """Note that ``source`` has reached event time ``ts`` (and move the watermark).

        :meth:`push` calls it for every event; a driver may also call it alone
        with a *progress mark*: a source's latest event time carried to an
        engine that receives only some of that source's events (a partition
        of a repartitioned stream), so sparse flows do not hold the
        watermark back. ``newest`` (default ``ts``) is the newest event time
        behind the mark, for :attr:`max_ts`: a stage that forwards events in
        time order may mark ``ts`` = its watermark + ``grace`` while its
        newest input is older. ``behind`` (when not ``None``) sets whether
        the source still has records to deliver (see the class docstring);
        ``ts`` may then be ``None`` for a source that has delivered nothing
        yet.

        >>> r = Reorderer(grace=5, max_skew=30)
        >>> r.push(100.0, "a", "a1", source="p0"); r.push(131.0, "b", "b1", source="p1")
        >>> r.progress(140.0, "p0"); r.progress(150.0, "p1")
        >>> r.watermark  # the slowest source (p0 at 140) minus grace
        135.0
        """
        changed = False
        if behind is not None and source is not None and self.max_skew > 0:
            was = source in self.behind
            if behind and not was:
                self.behind.add(source)
                changed = True
            elif was and not behind:
                self.behind.discard(source)
                changed = True
        if ts is None:
            if behind and source is not None and self.max_skew > 0 and source not in self.sources:
                self.sources[source] = NEG_INF  # holds the watermark until it reports
                self._slowest = NEG_INF
            elif changed:
                self._recompute()
            return
        if newest is None:
            newest = ts
        if source is None or self.max_skew <= 0:
            if newest > self.max_ts:
                self.max_ts = newest
            wm = ts - self.grace
            if wm > self.watermark:
                self.watermark = wm
            return
        sources = self.sources
        if self.max_ts == NEG_INF:
            # start-up: release nothing until event time has run max_skew past
            # the first event, so the sources a consumer reaches later (with
            # older events) are waited for too
            self._hold_until = newest + self.max_skew
        if newest > self.max_ts:
            self.max_ts = newest
        prev = sources.get(source)
        if prev is not None and ts <= prev and not changed:
            return  # the source did not progress: nothing moves
        if prev is None or ts > prev:
            sources[source] = ts
        if self.max_ts < self._hold_until:
            return
        floor = self.max_ts - self.max_skew
        if prev is not None and prev > self._slowest and floor <= self._slowest and not changed:
            return  # neither the slowest source nor the floor moved
        self._recompute()

    def _recompute(self) -> None:
        sources = self.sources
        if not sources or self.max_ts < self._hold_until:
            return
        floor = self.max_ts - self.max_skew
        slowest = min(sources.values())
        if slowest < floor:
            # sources left more than max_skew behind are idle until they catch up,
            # unless declared behind (and the buffer is not too large to wait)
            waited = self.behind if len(self.heap) <= self.max_held else ()
            for k in [k for k, v in sources.items() if v < floor and k not in waited]:
                del sources[k]
            slowest = min(floor, min(sources.values(), default=floor))
        self._slowest = slowest
        wm = slowest - self.grace
        if wm > self.watermark:
            self.watermark = wm

    def advance(self, watermark: float) -> None:
        """Move the watermark forward (never back), e.g. on idle input."""
        if watermark > self.watermark:
            self.watermark = watermark

    def release(self, everything: bool = False) -> Iterator[tuple[float, Any]]:
        """Yield ``(ts, item)`` for every buffered event at or below the watermark."""
        heap = self.heap
        wm = float("inf") if everything else self.watermark
        while heap and heap[0][0] <= wm:
            ts, _, _, item = heapq.heappop(heap)
            yield ts, item


class Deduper:
    """Remember ids for at least ``horizon`` seconds of event time.

    >>> d = Deduper(horizon=60)
    >>> d.seen("a", 0.0), d.seen("a", 30.0), d.seen("a", 200.0)
    (False, True, False)
    """

    def __init__(self, horizon: float) -> None:
        self.horizon = horizon
        self._current: set[str] = set()
        self._previous: set[str] = set()
        self._epoch = NEG_INF

    def __len__(self) -> int:
        return len(self._current) + len(self._previous)

    def known(self, key: str) -> bool:
        """Whether ``key`` is remembered (without remembering it).

        >>> d = Deduper(horizon=60)
        >>> d.known("a"), d.seen("a", 0.0), d.known("a")
        (False, False, True)
        """
        return key in self._current or key in self._previous

    def seen(self, key: str, ts: float) -> bool:
        """Return True when ``key`` was seen recently; otherwise remember it."""
        epoch = ts // self.horizon
        if epoch > self._epoch:
            self._previous = self._current if epoch == self._epoch + 1 else set()
            self._current = set()
            self._epoch = epoch
        if key in self._current or key in self._previous:
            return True
        self._current.add(key)
        return False


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 hash (the Java client's, used by its default partitioner).

    >>> murmur2(b"21")
    -973932308
    """
    length = len(data)
    m = 0x5BD1E995
    h = (0x9747B28C ^ length) & 0xFFFFFFFF
    n4 = length // 4
    for i in range(n4):
        i4 = i * 4
        k = data[i4] | (data[i4 + 1] << 8) | (data[i4 + 2] << 16) | (data[i4 + 3] << 24)
        k = (k * m) & 0xFFFFFFFF
        k ^= k >> 24
        k = (k * m) & 0xFFFFFFFF
        h = (h * m) & 0xFFFFFFFF
        h ^= k
    extra = length % 4
    base = length & ~3
    if extra >= 3:
        h ^= data[base + 2] << 16
    if extra >= 2:
        h ^= data[base + 1] << 8
    if extra >= 1:
        h ^= data[base]
        h = (h * m) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * m) & 0xFFFFFFFF
    h ^= h >> 15
    return h - 0x100000000 if h & 0x80000000 else h


@functools.lru_cache(maxsize=1 << 16)
def kafka_partition(key: str, partitions: int) -> int:
    """The partition Kafka's default partitioner picks for a string key.

    Memoised (bounded): the engine asks for the same keys at every tick.

    >>> kafka_partition("1900000042", 6) in range(6)
    True
    """
    return (murmur2(key.encode()) & 0x7FFFFFFF) % partitions
