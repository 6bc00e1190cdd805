"""Offline replay: a recording through the engine, in event-time order.

The same parsing and the same :class:`~detectors.engine.Engine` the worker
uses; only the driver differs. Records whose topic is neither input topic
are ignored; bad records are counted by reason (a replay has no dead-letter
topic). The alerts are written as JSON Lines; two replays of one recording
give identical files apart from ``emitted_at``.
"""

from __future__ import annotations

import functools
import gc
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import orjson

from detectors._core import Replay
from detectors.alerts import Alert
from detectors.config import EngineConfig
from detectors.engine import Engine
from detectors.parsing import (
    MAX_AHEAD,
    MAX_BEHIND,
    TOPIC_KINDS,
    BadRecord,
    check_record_time,
    parse_like,
    parse_payment,
    parse_value,
)
from detectors.recording import Record, RecordingError, check_recording, open_text, read_line
from detectors.verdicts import Verdict

__all__ = [
    "ReplaySummary", "replay", "replay_file", "replay_records", "replay_events", "iter_events",
    "iter_sourced", "Progress", "long_lived_heap",
]


@dataclass
class ReplaySummary:
    """What a replay did."""

    records: int = 0
    events: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    skipped: int = 0
    ignored: int = 0
    duplicates: int = 0
    late: int = 0
    late_admitted: int = 0  #: behind the watermark, within ``allowed_lateness``: counted
    alerts: int = 0
    seconds: float = 0.0
    verdicts: int = 0  #: moderators' verdicts applied (decided within the recording)
    #: of those, verdicts naming an alert the engine did not raise or no longer
    #: remembers; kept all the same (a dismissal holds its entity)
    verdicts_unknown: int = 0

    @property
    def events_per_second(self) -> float:
        return self.records / self.seconds if self.seconds > 0 else 0.0

    def line(self) -> str:
        rej = sum(self.rejected.values())
        return (f"replay: {self.records} records, {self.events} events, {rej} rejected, "
                f"{self.skipped} skipped, {self.duplicates} duplicates, {self.late} late, "
                f"{self.late_admitted} admitted late, "
                f"{self.alerts} alerts, {self.events_per_second:,.0f} events/s"
                + (f", {self.verdicts} verdicts ({self.verdicts_unknown} for alerts not "
                   "remembered)" if self.verdicts else ""))


def iter_sourced(records: Iterable[Record], summary: ReplaySummary,
                 topics: dict[str, str] | None = None, max_ahead: float = MAX_AHEAD,
                 max_behind: float = MAX_BEHIND,
                 ) -> Iterator[tuple[tuple[str, int], Any]]:
    """Parse records into ``((topic, partition), event)``, counting rejects and
    skips in ``summary``. The pair is the event's source for the watermark.
    An event more than ``max_ahead`` seconds past (or ``max_behind`` seconds
    before) its record's timestamp is rejected
    (:func:`~detectors.parsing.check_record_time`)."""
    kinds = topics or TOPIC_KINDS
    pp, pl, check = parse_payment, parse_like, check_record_time
    for rec in records:
        summary.records += 1
        kind = kinds.get(rec.topic)
        if kind is None:
            summary.ignored += 1
            continue
        try:
            ev = pl(rec.payload) if kind == "like" else pp(rec.payload)
            if ev is not None and type(rec.ts) is int:  # kcat: milliseconds
                check(ev, rec.ts / 1000, max_ahead, max_behind)
        except BadRecord as exc:
            summary.rejected[exc.reason] += 1
            continue
        if ev is None:
            summary.skipped += 1
            continue
        summary.events += 1
        yield (rec.topic, rec.partition), ev


def iter_events(records: Iterable[Record], summary: ReplaySummary,
                topics: dict[str, str] | None = None, max_ahead: float = MAX_AHEAD,
                max_behind: float = MAX_BEHIND) -> Iterator[Any]:
    """Parse records into events, counting rejects and skips in ``summary``."""
    for _, ev in iter_sourced(records, summary, topics, max_ahead, max_behind):
        yield ev


class Progress:
    """A stdlib progress line on stderr, redrawn at most a few times a second."""

    def __init__(self, total: int | None, enabled: bool, label: str = "replay") -> None:
        self.total = total  #: what ``done`` counts up to, when known
        self.enabled = enabled
        self.label = label
        self._last = 0.0

    def update(self, done: int, extra: str = "") -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._last < 0.25:
            return
        self._last = now
        if self.total:
            frac = min(1.0, done / self.total)
            bar = "#" * int(frac * 30)
            sys.stderr.write(f"\r{self.label} [{bar:<30}] {frac:6.1%} {extra}")
        else:
            sys.stderr.write(f"\r{self.label} {done:,} {extra}")
        sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")
            sys.stderr.flush()


#: full collections at most every this many younger ones (CPython's default is 10)
FULL_GC_EVERY = 1000


@contextmanager
def long_lived_heap(full_every: int = FULL_GC_EVERY) -> Iterator[None]:
    """Run a block with rare full garbage collections; restore the thresholds after.

    An engine holds hundreds of thousands of long-lived windowed objects, and
    CPython's cycle collector walks all of them in every full collection,
    which by default runs whenever the old generation has grown by a quarter:
    on the benchmark recording that was a third of the replay's time.
    Window state is freed by reference counting as it expires (it holds no
    reference cycles), so full collections find nothing to free; young
    collections still run as usual. The worker runs under this too.

    >>> before = gc.get_threshold()
    >>> with long_lived_heap(5000):
    ...     gc.get_threshold()[2]
    5000
    >>> gc.get_threshold() == before
    True
    """
    old = gc.get_threshold()
    gc.set_threshold(old[0], old[1], max(old[2], full_every))
    try:
        yield
    finally:
        gc.set_threshold(*old)


def _utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


#: more sources than this are replayed in file order (each needs an open file)
MAX_SPLIT_SOURCES = 256


def replay_records(records: Iterable[Record], engine: Engine,
                   emit: Callable[[Alert], None], summary: ReplaySummary | None = None,
                   on_progress: Callable[[ReplaySummary], None] | None = None) -> ReplaySummary:
    """Drive ``engine`` with ``records`` in the order given; call ``emit`` for every alert."""
    summary = summary or ReplaySummary()
    cfg = engine.cfg
    return replay_events(iter_sourced(records, summary, max_ahead=cfg.max_ahead,
                                      max_behind=cfg.max_behind), engine, emit, summary,
                         on_progress)


def replay_events(events: Iterable[tuple[Any, Any]], engine: Engine,
                  emit: Callable[[Alert], None], summary: ReplaySummary,
                  on_progress: Callable[[ReplaySummary], None] | None = None) -> ReplaySummary:
    """Drive ``engine`` with ``(source, event)`` pairs; call ``emit`` for every alert."""
    t0 = time.perf_counter()
    process = engine.process
    n = 0
    for source, ev in events:
        for a in process(ev, source):
            emit(a)
        n += 1
        if on_progress is not None and not n & 0x3FFF:
            on_progress(summary)
    for a in engine.flush():
        emit(a)
    summary.seconds = time.perf_counter() - t0
    summary.duplicates = engine.stats["duplicates"]
    summary.late = engine.stats["late"]
    summary.late_admitted = engine.stats["late_admitted"]
    summary.alerts = engine.stats["alerts"]
    return summary


def replay_file(path: str | Path, engine: Engine, emit: Callable[[Alert], None],
                summary: ReplaySummary | None = None, progress: bool = False,
                on_progress: Callable[[ReplaySummary], None] | None = None,
                topics: dict[str, str] | None = None,
                overlap: bool | None = None) -> ReplaySummary:
    """Drive ``engine`` with the recording at ``path`` in event-time order.

    A recording may hold its sources (topic-partitions) in any arrangement:
    interleaved as they were produced, in the large per-partition runs a
    consumer fetches, or one topic after the other. So the records are first
    split into one temporary file per source, then merged by event time (each
    source in its own order; a tie goes to the source met first in the file):
    the engine sees the stream in event-time order with each partition's own
    order kept, whatever the file's layout, and memory stays bounded by the
    windows, not the file. Both passes, the parsing of the common forms and
    the feeding of the engine run in the compiled core
    (:class:`detectors._core.Replay`); lines and values it declines go to
    :func:`~detectors.recording.read_line` and
    :func:`~detectors.parsing.parse_value`, which decide them.
    ``summary.seconds`` covers both passes. Runs under :func:`long_lived_heap`.

    With ``overlap`` (by default, when the engine holds no verdict), the
    rules' and models' scoring of one stretch of the recording runs on a
    second thread while the core takes the next: the same alerts, in the same
    order, as scoring each tick before the core goes on, because nothing the
    scoring does reaches the core unless a verdict puts accounts on its
    watchlist. An ``emit`` that gives the engine verdicts (a simulated
    moderator) needs ``overlap=False``; a verdict arriving in an overlapped
    run raises ``RuntimeError``.
    """
    summary = summary or ReplaySummary()
    p = check_recording(path)
    t0 = time.perf_counter()
    kinds = topics or TOPIC_KINDS
    with long_lived_heap(), tempfile.TemporaryDirectory(prefix="likeguard-replay-") as tmp:
        source = Replay(str(p), tmp, list(kinds.items()), engine.cfg.max_ahead,
                        engine.cfg.max_behind, MAX_SPLIT_SOURCES, functools.partial(_replay_line, p),
                        parse_value, BadRecord)
        bar = Progress(None, progress, "split")
        try:
            total = source.split()
        except OSError as exc:  # the core's reader: unreadable file, broken gzip
            raise RecordingError(f"cannot read recording {p}: {exc}") from exc
        finally:
            bar.close()
        bar = Progress(total or None, progress)
        done = 0

        def fed(n: int) -> None:
            nonlocal done
            done += n
            if done >= CHUNK:
                done = 0
                _count(source, summary)
                bar.update(summary.records, f"{summary.records:,} records")
                if on_progress is not None:
                    on_progress(summary)

        def run(stop_at_ticks: bool) -> int:
            try:
                return source.run(engine.core, CHUNK, stop_at_ticks)
            except OSError as exc:
                raise RecordingError(f"cannot read recording {p}: {exc}") from exc

        try:
            if overlap is None:
                overlap = engine.verdicts.idle
            if overlap:
                _feed_overlapped(run, engine, emit, fed)
            else:
                while n := run(True):
                    for a in engine.drain():
                        emit(a)
                    fed(n)
                for a in engine.drain():
                    emit(a)
            for a in engine.flush():
                emit(a)
        finally:
            bar.close()
    _count(source, summary)
    summary.duplicates = engine.stats["duplicates"]
    summary.late = engine.stats["late"]
    summary.late_admitted = engine.stats["late_admitted"]
    summary.alerts = engine.stats["alerts"]
    book = engine.verdicts.counts
    summary.verdicts = book["confirmed"] + book["dismissed"]
    summary.verdicts_unknown = summary.verdicts - book["matched"]
    summary.seconds = time.perf_counter() - t0
    return summary


def _replay_line(path: Path, line: bytes, lineno: int) -> Record | None:
    """:func:`~detectors.recording.read_line` for the core's reader, which
    needs a string ``topic`` and an integer ``partition``: a line without
    them is refused naming the field (:class:`RecordingError`)."""
    rec = read_line(path, line, lineno)
    if rec is not None:
        for name, value, kind, want in (("topic", rec.topic, str, "a string"),
                                        ("partition", rec.partition, int, "an integer")):
            if not isinstance(value, kind):
                raise RecordingError(f"{path}:{lineno}: not a kcat -J record ({name!r} is "
                                     f"{orjson.dumps(value).decode()[:40]}, not {want})")
    return rec


#: events the core takes between two looks from Python
CHUNK = 0x4000


def _feed_overlapped(run: Callable[[bool], int], engine: Engine, emit: Callable[[Alert], None],
                     fed: Callable[[int], None]) -> None:
    """Feed the core a stretch at a time while a second thread scores the
    ticks of the stretch before (the core's calls let go of the interpreter)."""
    with ThreadPoolExecutor(1, "likeguard-score") as pool:
        scoring: Future[list[Alert]] | None = None
        while True:
            n = run(False)
            ticks = engine.core.take_ticks()
            if scoring is not None:
                for a in scoring.result():
                    emit(a)
                if not engine.verdicts.idle:
                    raise RuntimeError("a verdict came during an overlapped replay: "
                                       "pass overlap=False to replay with verdicts")
            scoring = pool.submit(engine.score_ticks, ticks)
            if not n:
                break
            fed(n)
        for a in scoring.result():
            emit(a)


def _count(source: Replay, summary: ReplaySummary) -> None:
    c = source.counts()
    summary.records, summary.events = c["records"], c["events"]
    summary.ignored, summary.skipped = c["ignored"], c["skipped"]
    summary.rejected = Counter(c["rejected"])


def replay(path: str | Path, alerts_out: str | Path | IO[str] | None,
           config: EngineConfig | None = None, progress: bool = False,
           verdicts: Iterable[Verdict] = ()) -> ReplaySummary:
    """Replay the recording at ``path`` (see :func:`replay_file`); write alerts
    JSON Lines to ``alerts_out``. ``verdicts`` apply at their ``decided_at``
    on the recording's event time (:meth:`~detectors.engine.Engine.verdict`).

    ``emitted_at`` is the wall-clock time of writing (the contract's field);
    it is the only part of the output that differs between two replays.
    """
    engine = Engine(config)
    for v in verdicts:
        engine.verdict(v)
    out: IO[str] | None
    close = False
    if alerts_out is None:
        out = None
    elif isinstance(alerts_out, str | Path):
        out = open_text(alerts_out, "wt")
        close = True
    else:
        out = alerts_out

    def emit(a: Alert) -> None:
        if out is not None:
            out.write(orjson.dumps(a.to_dict(_utc_now())).decode())
            out.write("\n")

    try:
        return replay_file(path, engine, emit, progress=progress)
    finally:
        if close and out is not None:
            out.close()
