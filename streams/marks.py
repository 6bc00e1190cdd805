"""Progress marks: how far each source of a view engine has got, sent
ahead of the events where a view partition would otherwise wait.

A view partition receives only the slice of each input partition whose keys
hash to it; a watermark that waited for the slowest source would wait for
the sparsest slice. So the ingest sends a :class:`~streams.topics.Mark`
("this input partition has reached event time T", and whether it still has
a backlog) to every partition of the merchant, ip, device and user view
topics, and each user slot marks every lockstep partition likewise. Why
each rule below exists (backlogs, bursts, quiet partitions, new owners):
``docs/event-time.md`` ("In the worker").
"""

from __future__ import annotations

import time
from collections.abc import Callable, Container, Iterable
from typing import TYPE_CHECKING, Any

from faust.types import TP

from detectors.config import EngineConfig
from detectors.engine import ALL_VIEWS
from streams.checkpoints import Slot, user_source
from streams.delivery import Outbox
from streams.metrics import Metrics
from streams.settings import Settings
from streams.topics import SOURCE_HEADER, encode_mark

if TYPE_CHECKING:
    from streams.ingest import InputConsumer

__all__ = ["INGEST_VIEWS", "Marks", "input_source"]

#: Views the ingest feeds (and marks); the lockstep view is fed by the user view.
INGEST_VIEWS = tuple(v for v in ALL_VIEWS if v != "lockstep")


def input_source(tp: TP) -> str:
    """The source name of input partition ``tp`` (header ``lg-src``, mark keys)."""
    return f"{tp.topic}/{tp.partition}"


class Marks:
    """The progress marks one worker sends, and what it knows of its input.

    Parameters
    ----------
    settings, cfg
        Validated settings and the engine's (``grace``, ``max_skew``).
    view_names
        View -> its topic's name.
    inputs
        The ingest's consumer (assignment, positions, high-water marks).
    out
        Where the marks go.
    metrics
        Counts the marks sent.
    view_highwater
        ``view_highwater(tp)``: the high-water mark of a view partition
        (Faust's consumer; raises when unknown).
    """

    def __init__(self, settings: Settings, cfg: EngineConfig, view_names: dict[str, str],
                 inputs: InputConsumer, out: Outbox, metrics: Metrics,
                 view_highwater: Callable[[TP], Any]) -> None:
        self.settings = settings
        self.cfg = cfg
        self.n = settings.partitions
        self.view_names = view_names
        self.inputs = inputs
        self.out = out
        self.metrics = metrics
        self._view_highwater = view_highwater
        self.input_topics = frozenset((settings.payments_topic, settings.likes_topic))
        #: latest event time ingested per input partition (sent as progress marks)
        self.input_ts: dict[TP, float] = {}
        self.ingest_at: dict[TP, float] = {}  #: monotonic time of its last record
        self.ingested: dict[TP, int] = {}  #: next offset to ingest, per input partition
        #: source -> (event time of its last mark, monotonic time it was sent, behind)
        self.marked: dict[str, tuple[float | None, float, bool | None]] = {}
        #: input partitions declared behind ahead of a burst, with the wall-clock
        #: ms of the declaration: behind until a fetch after it (see hold_passed)
        self.unconfirmed: dict[TP, int] = {}

    def note_ingested(self, last: dict[TP, int], newest: dict[TP, float]) -> None:
        """An ingest batch went out: its last offset and newest event time per partition."""
        now = time.monotonic()
        for tp, offset in last.items():
            self.ingested[tp] = offset + 1
        seen = self.input_ts
        for tp, ts in newest.items():
            self.ingest_at[tp] = now
            if ts > seen.get(tp, float("-inf")):
                seen[tp] = ts

    def forget(self, tp: TP) -> None:
        """Input partition ``tp`` moved to another worker: held anew if assigned again."""
        self.marked.pop(input_source(tp), None)
        self.input_ts.pop(tp, None)
        self.ingest_at.pop(tp, None)
        self.ingested.pop(tp, None)
        self.unconfirmed.pop(tp, None)

    def forget_user(self, partition: int) -> None:
        """User-view partition revoked: its slot is held anew if assigned again."""
        self.marked.pop(user_source(partition), None)

    async def mark(self, source: str, ts: float | None, views: Iterable[str], stage: str,
                    newest: float | None = None, behind: bool | None = None) -> None:
        """Send a progress mark of ``source`` at ``ts`` to every partition of ``views``."""
        send = self.out.send
        data = encode_mark(ts, newest, behind)
        header = [(SOURCE_HEADER, source.encode())]
        n = 0
        for view in views:
            name = self.view_names[view]
            for p in range(self.n):
                await send(name, None, data, p, header)
                n += 1
        self.marked[source] = (ts, time.monotonic(), behind)
        self.metrics.marks(stage, n)

    def due(self, source: str, ts: float, behind: bool | None = None) -> bool:
        interval = self.settings.progress_interval
        if interval <= 0:
            return False
        last = self.marked.get(source)
        if last is None or (behind and not last[2]):
            return True  # a backlog is declared at once; its end waits for the interval
        moved = last[0] is None or ts > last[0] or (behind is not None and behind != last[2])
        return moved and time.monotonic() - last[1] >= interval

    async def hold_passed(self, upto: float, delivering: Container[TP]) -> None:
        """Before events reaching ``upto`` go out: declare ``behind`` every input
        partition taken as caught up whose mark is more than ``max_skew / 2``
        behind ``upto`` (but those ``delivering`` records in this batch, and
        those never marked with a time: their records were never waited for).

        A producer writing a backlog (an upstream catching up after an outage)
        fills the input partitions a little at a time; a fetch may bring one
        partition minutes ahead in event time while the others' records are
        not on the broker yet, so those look ingested to their end. Their
        marks said "not behind", and a view engine that took the burst's
        events first would leave them behind as more than ``max_skew`` behind
        and take their records as late. Declared here, before the events, they
        stay ``behind`` until the consumer has fetched them after this moment
        (:meth:`unconfirmed_fetch`): a fetch that finds records keeps them
        behind by their lag, one that finds none releases them.
        """
        skew = self.cfg.max_skew
        if skew <= 0 or self.settings.progress_interval <= 0 or upto == float("-inf"):
            return
        limit = upto - skew / 2
        now_ms = int(time.time() * 1000)
        for tp in self.inputs.assignment():
            if tp.topic not in self.input_topics or tp in delivering:
                continue
            source = input_source(tp)
            last = self.marked.get(source)
            if last is None or last[2] or last[0] is None or last[0] >= limit:
                continue  # held as new, behind already, without a time, or close enough
            self.unconfirmed[tp] = now_ms
            await self.mark(source, last[0], INGEST_VIEWS, "ingest", behind=True)

    def unconfirmed_fetch(self, tp: TP) -> bool:
        """Whether ``tp`` was declared behind by :meth:`hold_passed` and the
        consumer has not fetched it since (its high-water mark predates the burst)."""
        since = self.unconfirmed.get(tp)
        if since is None:
            return False
        polled = self.inputs.last_poll(tp)
        if polled is not None and polled > since:
            del self.unconfirmed[tp]
            return False
        return True

    def ingest_lag(self, tp: TP) -> int | None:
        """Records of input partition ``tp`` this worker has not ingested (``None``: not known)."""
        try:
            hw = self.inputs.highwater(tp)
        except Exception:  # noqa: BLE001 - unknown
            return None
        nxt = self.ingested.get(tp)
        return None if hw is None or nxt is None else hw - nxt

    async def hold_new_inputs(self) -> None:
        """Before ingesting: declare every newly assigned input partition ``behind``.

        A consumer catching up a backlog fetches partitions in chunks of bytes,
        so one partition's first chunk may reach an hour further in event time
        than another's. Each newly assigned input partition is marked
        ``behind`` (with no time yet) *before* the events of this batch reach
        the views, so no view engine takes a partition it has not heard from
        for idle and drops its events as late. The marks after each batch then
        carry the partition's time and whether it still has a backlog; one
        with nothing to ingest is released by the timer (:meth:`send`).
        """
        if self.settings.progress_interval <= 0:
            return
        for tp in self.inputs.assignment():
            source = input_source(tp)
            if tp.topic in self.input_topics and source not in self.marked:
                await self.mark(source, self.input_ts.get(tp), INGEST_VIEWS, "ingest",
                                 behind=True)

    async def fetched_to_end(self, tp: TP) -> bool | None:
        """Whether the consumer has fetched ``tp`` to its high-water mark
        (``None``: the consumer could not tell)."""
        try:
            hw = self.inputs.highwater(tp)
            pos = await self.inputs.position(tp)
        except Exception:  # noqa: BLE001 - unknown
            return None
        return hw is not None and pos is not None and pos >= hw

    async def nothing_left(self, tp: TP) -> bool:
        """Whether input partition ``tp`` has nothing left to ingest: fetched to its
        high-water mark and none of its records in the batch being ingested."""
        if not await self.fetched_to_end(tp):
            return False
        return tp not in self.inputs.holding

    async def send(self, idle: bool = False, ended: bool = False) -> None:
        """Progress marks for the input partitions that moved on since their last mark.

        With ``idle`` (the timer), an assigned input partition that is ingested
        to its end (its high-water mark, not merely fetched: a consumer catching
        up may hold a partition's backlog in memory) and has had no record for
        ``progress_interval`` is marked as if its event time kept the clock's
        pace since its last record: that record's event time plus the seconds
        since it was ingested, at most the newest event time this worker
        ingested. A silent partition then no longer holds the watermarks back
        by ``max_skew``, and a partition whose records come a steady delay
        behind the others' (payment notifications delivered 20 s after the
        payment, while likes arrive at once) keeps that delay instead of being
        marked level with the others, which made most of its records late.

        Once the whole input has been quiet for ``idle_flush`` (the point at
        which the view slots take it as ended and flush), such a partition is
        no longer moved on: creeping on would send a round of marks to every
        view partition each tick for as long as the partition's event-time gap
        (minutes for a sparse payment partition after a backlog), and a slot
        with marks still arriving is not idle, so the flush waited for the gap.
        (Not jumped to the newest time either: the views may still be working
        through their backlog, and if the input has only paused, the
        partition's next records lie between its last one and the newest.)
        ``ended`` says the whole input has been quiet that long (the caller
        knows the ingest's pace).
        """
        marks = dict(self.input_ts)
        lags = {tp: self.ingest_lag(tp) for tp in marks}
        interval = self.settings.progress_interval
        if idle and interval > 0:
            newest = max(marks.values(), default=float("-inf"))
            now = time.monotonic()
            for tp in self.inputs.assignment():
                if tp.topic not in self.input_topics:
                    continue
                if tp in marks:  # ingested to its end and quiet
                    lag = lags[tp]
                    quiet = now - self.ingest_at.get(tp, now)
                    if marks[tp] < newest and quiet >= interval and lag is not None and lag <= 0 \
                            and not self.unconfirmed_fetch(tp):
                        if not ended:
                            marks[tp] = min(newest, marks[tp] + quiet)
                else:
                    # held as behind, but nothing to ingest (empty, or caught up
                    # before this worker ingested any of it): its time is not
                    # known, so it is released, no longer waited for
                    source = input_source(tp)
                    last = self.marked.get(source)
                    if last is not None and last[2] and not self.unconfirmed_fetch(tp) \
                            and await self.nothing_left(tp):
                        await self.mark(source, None, INGEST_VIEWS, "ingest", behind=False)
            # partitions no batch has held yet (taken over already ingested to
            # their end: no batch of them may come, and the views would keep
            # the last owner's mark, perhaps "behind", for good): held now, as
            # a batch would, and released by a later tick as above
            await self.hold_new_inputs()
        for tp, ts in marks.items():
            source = input_source(tp)
            lag = lags[tp]
            behind = (lag is not None and lag > 0) or self.unconfirmed_fetch(tp)
            if self.due(source, ts, behind):
                await self.mark(source, ts, INGEST_VIEWS, "ingest", behind=behind)

    async def hold_new_user_slots(self, assigned: Iterable[TP]) -> None:
        """Before a user slot forwards anything: declare every user-view
        partition newly assigned here ``behind`` to every lockstep partition.

        The lockstep engines may hold a mark of that partition from its last
        owner (a worker that crashed, or gave it up) saying "not behind", and
        the new owner replays it from its checkpoint; another user slot's mark
        carrying a far newer ``newest`` (a slot with a backlog buffered) would
        then leave it behind as more than ``max_skew`` behind, and its first
        forwards not sent before would be late. The slot's own marks then
        carry its time and whether it still has records (:meth:`mark_user`).
        """
        if self.settings.progress_interval <= 0:
            return
        topic = self.view_names["user"]
        for tp in assigned:
            if tp.topic == topic and user_source(tp.partition) not in self.marked:
                await self.mark(user_source(tp.partition), None, ("lockstep",), "user",
                                 behind=True)

    async def mark_user(self, slot: Slot) -> None:
        """A user slot's progress mark to every lockstep partition.

        ``behind`` while the slot's own input is catching up (a source of its
        engine is behind, or its partition has records left to fetch): the
        lockstep engines then wait for this slot's likes however far it trails.
        The mark is the event time the slot's input has reached: its engine's
        watermark plus ``grace``, or after an idle flush the flush's end.
        """
        wm = slot.engine.watermark
        if wm == float("-inf"):
            return
        try:
            hw = self._view_highwater(TP(self.view_names["user"], slot.partition))
        except Exception:  # noqa: BLE001 - unknown lag: judge by the engine alone
            hw = None
        behind = slot.engine.waiting or (hw is not None and hw > slot.next_offset)
        # the engine's watermark trails its slowest source by ``grace``; a flushed
        # engine's is its input's end (newest event plus a tick), already final:
        # adding grace would mark this slot far ahead of user slots not yet flushed,
        # and a lockstep engine would stop waiting for their likes (max_skew)
        source = user_source(slot.partition)
        ts = wm if slot.flushed else wm + self.cfg.grace
        if self.due(source, ts, behind):
            await self.mark(source, ts, ("lockstep",), "user", slot.engine.max_ts,
                             behind)
