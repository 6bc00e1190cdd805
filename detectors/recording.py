"""Recording files: kcat ``-J`` JSON Lines, plain or gzip-compressed.

One line per Kafka record::

    {"topic":"likes","partition":0,"offset":41,"tstype":"create",
     "ts":1732420805000,"key":null,"payload":"{...}"}

:func:`read_records` yields :class:`Record` tuples; :class:`RecordingWriter`
writes them. Both pick gzip from a ``.gz`` suffix.

:func:`read_records` decodes a line with a typed ``msgspec`` schema of the
fields a :class:`Record` keeps; a line that schema does not take (a non-UTF-8
key or payload, another type, an int beyond int64, a blank or broken line)
goes through the general path of :func:`iter_lines` -- orjson, then the
``surrogateescape`` fallback -- and both give the same :class:`Record` for
every line (``tests/unit/test_recording.py`` checks this property).
"""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any, NamedTuple, TypeVar, cast

import msgspec
import orjson

from detectors.parsing import FAST_DECODE_ERRORS, Int64

__all__ = [
    "Headers", "Record", "read_records", "iter_lines", "raw_bytes", "RecordingWriter",
    "RecordingError",
    "open_text", "check_recording", "read_line",
]


class RecordingError(Exception):
    """A recording file is missing, unreadable or not kcat -J JSON Lines."""


#: a record's headers: (name, value) pairs, a value ``None`` when null
Headers = tuple[tuple[str, bytes | None], ...]


class Record(NamedTuple):
    """One Kafka record as kcat -J prints it. ``key`` and ``payload`` (the
    value) are strings, or bytes when the recorded bytes were not UTF-8;
    ``headers`` are ``None`` when the line has none."""

    topic: str
    partition: int
    offset: int
    ts: int | None
    key: str | bytes | None
    payload: str | bytes | None
    headers: Headers | None = None


def open_text(path: str | Path, mode: str = "rt") -> IO[str]:
    """Open a text file, transparently gzip when the name ends in ``.gz``."""
    p = Path(path)
    if p.suffix == ".gz":
        return cast(IO[str], gzip.open(p, mode, encoding="utf-8"))  # text mode: a TextIOWrapper
    return open(p, mode, encoding="utf-8")


def raw_bytes(value: object) -> object:
    """A string holding undecodable bytes (surrogate escapes) back to bytes."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return value.encode("utf-8", "surrogateescape")
    return value


def _loads(line: bytes) -> dict:
    """Parse one kcat line. kcat writes non-UTF-8 keys and values as raw bytes
    inside the JSON string; such a key or payload comes back as ``bytes``."""
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError:
        obj = json.loads(line.decode("utf-8", "surrogateescape"))
        if isinstance(obj, dict):
            obj["payload"] = raw_bytes(obj.get("payload"))
            obj["key"] = raw_bytes(obj.get("key"))
        return obj


T = TypeVar("T")


def _headers(flat: list[Any] | None) -> Headers | None:
    """kcat's flat ``["name", "value", ...]`` list as pairs, values as bytes."""
    if not flat:
        return None
    pairs = []
    for i in range(0, len(flat) - 1, 2):
        value = flat[i + 1]  # raw bytes came in as surrogate escapes: back to bytes
        pairs.append((str(flat[i]), None if value is None
                      else str(value).encode("utf-8", "surrogateescape")))
    return tuple(pairs)


def _record(lineno: int, obj: dict[str, Any]) -> Record:
    return Record(obj["topic"], obj.get("partition", 0), obj.get("offset", lineno - 1),
                  obj.get("ts"), obj.get("key"), obj.get("payload"), _headers(obj.get("headers")))


def check_recording(path: str | Path) -> Path:
    """``path`` as a :class:`~pathlib.Path`; :class:`RecordingError` when it is
    missing or not a file."""
    p = Path(path)
    if not p.exists():
        raise RecordingError(f"recording not found: {p}")
    if not p.is_file():
        raise RecordingError(f"recording is not a file: {p}")
    return p


def read_line(path: Path, line: bytes, lineno: int,
              convert: Callable[[int, dict[str, Any]], T] = _record,  # type: ignore[assignment]
              ) -> T | None:  # mypy cannot bind T to a generic default (python/mypy#3737)
    """The general path for one line of ``path``: ``None`` for a blank line,
    else ``convert(lineno, obj)``; :class:`RecordingError` naming the line
    when it is not a kcat JSON object."""
    if not line.strip():
        return None
    try:
        obj = _loads(line)
    except ValueError as exc:  # orjson's and json's decode errors
        raise RecordingError(f"{path}:{lineno}: not a kcat -J record (not JSON)") from exc
    if not isinstance(obj, dict):
        raise RecordingError(f"{path}:{lineno}: not a kcat -J record (a JSON "
                             f"{_JSON_TYPES.get(type(obj), type(obj).__name__)}, not an object)")
    try:
        return convert(lineno, obj)
    except KeyError as exc:
        raise RecordingError(f"{path}:{lineno}: not a kcat -J record (no {exc.args[0]!r} "
                             f"field; kcat -J writes topic, partition, offset, ts, key and "
                             f"payload)") from exc
    except (ValueError, TypeError, AttributeError, IndexError) as exc:
        raise RecordingError(
            f"{path}:{lineno}: not a kcat -J record ({exc.__class__.__name__}: {exc})"
        ) from exc


#: JSON's names of the types a line decodes to
_JSON_TYPES = {list: "array", str: "string", int: "number", float: "number", bool: "boolean",
               type(None): "null"}


def iter_lines(path: str | Path, convert: Callable[[int, dict[str, Any]], T],
               fast: Callable[[bytes, int], T | None] | None = None) -> Iterator[T]:
    """Yield ``convert(lineno, obj)`` for every kcat JSON object of a recording.

    ``fast(line, lineno)``, when given, is tried first on each raw line; it
    returns the item, or ``None`` to leave the line to the general path.
    Raises :class:`RecordingError` when the file is missing or unreadable, and
    naming the line when a line is not JSON or ``convert`` rejects it.
    """
    p = check_recording(path)
    try:
        raw = cast(IO[bytes], gzip.open(p, "rb")) if p.suffix == ".gz" else open(p, "rb")
    except OSError as exc:
        raise RecordingError(f"cannot open recording {p}: {exc.strerror or exc}") from exc
    with raw:
        # gzip's own line reading is slow: a buffered reader over it
        reader = io.BufferedReader(cast(Any, raw)) if p.suffix == ".gz" else raw
        lineno = 0
        try:
            for line in reader:
                lineno += 1
                if fast is not None:
                    item = fast(line, lineno)
                    if item is not None:
                        yield item
                        continue
                got = read_line(p, line, lineno, convert)
                if got is not None:
                    yield got
        except (OSError, EOFError, gzip.BadGzipFile) as exc:
            raise RecordingError(f"cannot read recording {p}: {exc}") from exc


class _KcatLine(msgspec.Struct, gc=False):
    """The fields of a kcat -J line that :class:`Record` keeps; others are skipped.

    Types are strict, so a line decodes here only when :func:`_loads` plus
    :func:`_record` give the same values: strings, ints within int64 (orjson
    returns bigger ones as floats), ``null`` only where the default is
    ``None`` too. ``offset`` tells absent (:data:`msgspec.UNSET`) from set.
    """

    topic: str
    partition: Int64 = 0
    offset: Int64 | msgspec.UnsetType = msgspec.UNSET
    ts: Int64 | None = None
    key: str | None = None
    payload: str | None = None
    headers: list[str | None] | None = None


_decode_line = msgspec.json.Decoder(_KcatLine).decode
#: orjson refuses nesting deeper than this, but msgspec skips an unknown
#: field as deep as the recursion limit lets it; deeper nesting needs at
#: least as many opening brackets, so a line shorter than twice this cannot
#: have it (longer lines are counted)
_ORJSON_MAX_DEPTH = 1024


def _shallow(line: bytes) -> bool:
    """Whether ``line`` certainly nests no deeper than orjson allows."""
    return line.count(b"[") + line.count(b"{") <= _ORJSON_MAX_DEPTH


def _fast_record(line: bytes, lineno: int, decode: Callable[[bytes], _KcatLine] = _decode_line,
                 unset: Any = msgspec.UNSET, new: Any = tuple.__new__,
                 short: int = 2 * _ORJSON_MAX_DEPTH) -> Record | None:
    """A :class:`Record` when :class:`_KcatLine` takes the line, else ``None``."""
    if len(line) > short and not _shallow(line):
        return None
    try:
        w = decode(line)
    except FAST_DECODE_ERRORS:
        return None
    off = w.offset
    # what Record(...) does, without its Python-level __new__
    return new(Record, (w.topic, w.partition, lineno - 1 if off is unset else off,
                        w.ts, w.key, w.payload, None if w.headers is None else _headers(w.headers)))


def read_records(path: str | Path) -> Iterator[Record]:
    """Yield the records of a recording in file order.

    Raises :class:`RecordingError` when the file cannot be opened or read;
    a line that is not a kcat JSON object raises it too, naming the line.
    """
    return iter_lines(path, _record, _fast_record)


class RecordingWriter:
    """Write records as kcat -J JSON Lines; offsets count per topic-partition.

    >>> import tempfile, os
    >>> d = tempfile.mkdtemp()
    >>> with RecordingWriter(os.path.join(d, "r.jsonl")) as w:
    ...     w.write("likes", '{"like_id": "l-1"}', ts_ms=1000)
    >>> [r.payload for r in read_records(os.path.join(d, "r.jsonl"))]
    ['{"like_id": "l-1"}']
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open_text(self.path, "wt")
        self._offsets: dict[tuple[str, int], int] = {}
        self.count = 0

    def write(
        self,
        topic: str,
        payload: str | None,
        *,
        ts_ms: int | None = None,
        key: str | None = None,
        partition: int = 0,
        offset: int | None = None,
    ) -> None:
        tp = (topic, partition)
        if offset is None:
            offset = self._offsets.get(tp, 0)
        self._offsets[tp] = offset + 1
        rec = {
            "topic": topic,
            "partition": partition,
            "offset": offset,
            "tstype": "create",
            "ts": ts_ms,
            "key": key,
            "payload": payload,
        }
        self._fh.write(orjson.dumps(rec).decode())
        self._fh.write("\n")
        self.count += 1

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> RecordingWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
