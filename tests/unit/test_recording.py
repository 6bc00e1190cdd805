"""Recording files (kcat -J) and the replay command's handling of them."""

from __future__ import annotations

import gzip
import json
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.recording import (
    Record,
    RecordingError,
    RecordingWriter,
    _record,
    iter_lines,
    read_records,
)
from streams.cli import main


def test_kcat_lines_with_extra_fields_and_binary_values(tmp_path: Path) -> None:
    p = tmp_path / "r.jsonl"
    p.write_bytes(
        b'{"topic":"likes","partition":2,"offset":41,"tstype":"create","ts":1732420805000,'
        b'"broker":1,"key":null,"payload":"{\\"like_id\\":\\"l-1\\"}"}\n'
        b'\n'
        b'{"topic":"likes","partition":0,"offset":1,"ts":1,"key":"k","payload":"\xff\xfeok"}\n'
    )
    recs = list(read_records(p))
    assert recs[0].partition == 2 and recs[0].offset == 41 and recs[0].key is None
    assert recs[0].payload == '{"like_id":"l-1"}'
    assert recs[1].payload == b"\xff\xfeok" and recs[1].key == "k"


def test_gzip_round_trip(tmp_path: Path) -> None:
    p = tmp_path / "r.jsonl.gz"
    with RecordingWriter(p) as w:
        for i in range(5):
            w.write("likes", f'{{"n": {i}}}', ts_ms=i, key=None if i % 2 else "m1", partition=i % 2)
    with gzip.open(p, "rt") as fh:
        assert len(fh.read().splitlines()) == 5
    recs = list(read_records(p))
    assert [r.payload for r in recs] == [f'{{"n": {i}}}' for i in range(5)]
    assert [r.offset for r in recs] == [0, 0, 1, 1, 2]  # offsets count per partition


@pytest.mark.parametrize("content", [b"not json\n", b'{"payload": "x"}\n', b"[1]\n"])
def test_malformed_lines_name_the_line(tmp_path: Path, content: bytes) -> None:
    p = tmp_path / "bad.jsonl"
    p.write_bytes(b'{"topic":"likes","payload":"{}"}\n' + content)
    with pytest.raises(RecordingError, match=":2:"):
        list(read_records(p))


def test_replay_cli_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", str(tmp_path / "missing.jsonl"), "--alerts-out",
                 str(tmp_path / "a.jsonl")]) == 2
    assert "recording not found" in capsys.readouterr().err
    assert main(["replay", str(tmp_path), "--alerts-out", str(tmp_path / "a.jsonl")]) == 2
    assert "not a file" in capsys.readouterr().err
    bad = tmp_path / "bad.jsonl.gz"
    bad.write_bytes(b"this is not gzip")
    assert main(["replay", str(bad), "--alerts-out", str(tmp_path / "a.jsonl")]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_replay_cli_warns_on_an_empty_recording(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    assert main(["replay", str(empty), "--alerts-out", str(tmp_path / "a.jsonl")]) == 0
    assert f"warning: {empty} holds no records" in capsys.readouterr().err
    p = tmp_path / "one.jsonl"
    with RecordingWriter(p) as w:
        w.write("likes", "{oops")
    assert main(["replay", str(p), "--alerts-out", str(tmp_path / "a.jsonl")]) == 0
    assert "holds no records" not in capsys.readouterr().err


def test_replay_cli_summary_counts_rejects(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = tmp_path / "r.jsonl"
    with RecordingWriter(p) as w:
        w.write("likes", "{oops")
        w.write("payments.success", '{"trade_state": "CLOSED", "transaction_id": "t", "mchid": "m"}')
        w.write("other.topic", "{}")
    out = tmp_path / "a.jsonl"
    assert main(["replay", str(p), "--alerts-out", str(out), "--no-progress"]) == 0
    line = capsys.readouterr().out
    assert "3 records, 0 events, 1 rejected, 1 skipped" in line and "events/s" in line
    assert out.read_text() == ""


def test_help_texts(capsys: pytest.CaptureFixture[str]) -> None:
    for cmd in ([], ["simulate"], ["replay"], ["evaluate"], ["ablate"], ["worker"], ["record"]):
        with pytest.raises(SystemExit) as e:
            main([*cmd, "--help"])
        assert e.value.code == 0
        out = capsys.readouterr().out
        assert "usage: likeguard" in out and len(out) > 200


# -- the msgspec fast path of read_records against the general path ---------------------------

_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**64), 2**64), st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8),
)
_json_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=6,
)
#: raw JSON tokens (or bytes that are not JSON) written verbatim
_raw_tokens = st.sampled_from([
    b"1e400", b"1" + b"0" * 400, b"18446744073709551616", b"-9223372036854775809", b"1.0", b"-0",
    b'"\xff\xfe"', b'"\xed\xa0\x80"', b'"\\ud800"', b'"\\udc80"', b'"a\\u0000"', b"NaN",
    b"[" * 40 + b"]" * 40, b"[" * 1100 + b"]" * 1100, b'"\\u00e9"', "\"\u00e9\u4e2d\"".encode(), b"{", b"",
])
_fields = st.sampled_from(["topic", "partition", "offset", "ts", "key", "payload", "tstype", "broker",
                           "headers", "x"])


@st.composite
def kcat_lines(draw: st.DrawFn) -> bytes:
    """One line: a kcat -J object with odd, missing, repeated or unknown fields, or not one."""
    fields: list[tuple[str, bytes]] = [
        ("topic", b'"likes"'), ("partition", b"0"), ("offset", str(draw(st.integers(0, 99))).encode()),
        ("tstype", b'"create"'), ("ts", b"1732420805000"), ("key", b"null"), ("payload", b'"{}"'),
    ]
    for _ in range(draw(st.integers(0, 3))):
        name = draw(_fields)
        value = draw(_raw_tokens | _json_values.map(lambda v: json.dumps(v).encode()) | st.just(None))
        fields = [f for f in fields if f[0] != name or draw(st.booleans())]  # drop or keep (duplicate)
        if value is not None:
            fields.insert(draw(st.integers(0, len(fields))), (name, value))
    line = b"{" + b",".join(json.dumps(k).encode() + b":" + v for k, v in fields) + b"}"
    return draw(st.sampled_from([line, line, line, b"", b"  ", line + b" \r", b"[1]", line[:-1]]))


def _read(reader: Callable[[Path], Iterator[object]], path: Path) -> tuple[list[object], str | None]:
    """The records read, and how reading ended (a line nested too deeply for ``json`` is a
    ``RecursionError`` on both paths, as it always was)."""
    out: list[object] = []
    try:
        for rec in reader(path):
            out.append(rec)
    except (RecordingError, RecursionError) as exc:
        return out, f"{type(exc).__name__}: {exc}"
    return out, None


@settings(max_examples=400, deadline=None)
@given(st.lists(kcat_lines(), min_size=1, max_size=6))
def test_fast_reader_matches_general_path(lines: list[bytes]) -> None:
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "r.jsonl"
        p.write_bytes(b"\n".join(lines) + b"\n")
        fast = _read(read_records, p)
        general = _read(lambda q: iter_lines(q, _record), p)
    assert fast == general
    assert [type(r) for r in fast[0]] == [Record] * len(fast[0])


@pytest.mark.parametrize("line", [
    b'{"topic":"likes","ts":18446744073709551616,"payload":"{}"}',
    b'{"topic":"likes","ts":9223372036854775808,"payload":"{}"}',
    b'{"topic":"likes","partition":-9223372036854775809}',
    b'{"topic":"likes","offset":null,"partition":null,"ts":1.5,"key":1}',
    b'{"topic":"likes","offset":7,"offset":null}', b'{"topic":"likes","payload":null,"payload":"p"}',
    b'{"topic":"likes","broker":1e400,"headers":["\xff"],"payload":"p"}',
    b'{"topic":"likes","x":' + b"[" * 1100 + b"]" * 1100 + b'}', b'{"topic":"likes","payload":"\\ud800"}',
    b'{"topic":"likes","key":"\xff\xfe","payload":"\xc3\xa9"}', b'{"topic":1}', b'{"\\u0074opic":"likes"}',
    b'\xef\xbb\xbf{"topic":"likes"}', b'{"topic":"likes"} {"topic":"likes"}',
])
def test_fast_reader_matches_general_path_on_edge_cases(tmp_path: Path, line: bytes) -> None:
    p = tmp_path / "r.jsonl"
    p.write_bytes(b'{"topic":"likes","payload":"{}"}\n' + line + b"\n\n")
    assert _read(read_records, p) == _read(lambda q: iter_lines(q, _record), p)


def test_replay_counts_every_record_of_every_source(tmp_path: Path) -> None:
    """The compiled replay reader: records of every source counted once, by
    outcome (the merge order itself is the core's Rust test
    ``ingest::tests::merge_keeps_each_source_order_and_counts``)."""
    from detectors.config import EngineConfig
    from detectors.engine import Engine
    from detectors.replay import replay_file
    from tests.helpers import like_json

    p = tmp_path / "r.jsonl"

    def lk(i: int, sec: str) -> str:
        return like_json(like_id=f"l{i}", ts=f"2026-11-24T12:00:{sec}Z").decode()

    with RecordingWriter(p) as w:  # partition 1 first in the file, one late event in it
        for i, sec in ((1, "05"), (2, "03"), (3, "09")):
            w.write("likes", lk(i, sec), partition=1)
        for i, sec in ((4, "05"), (5, "07")):
            w.write("likes", lk(i, sec), partition=0)
        w.write("likes", "{oops", partition=0)
        w.write("payments.success",
                '{"trade_state": "CLOSED", "transaction_id": "t", "mchid": "m"}')
        w.write("other.topic", "{}")
    eng = Engine(EngineConfig(mode="rules"))
    summary = replay_file(p, eng, lambda _a: None)
    assert (summary.records, summary.events, summary.skipped, summary.ignored) == (8, 5, 1, 1)
    assert summary.rejected == {"not_json": 1}
    # l2 (12:00:03) comes after l1 in its partition: within grace, not late
    assert eng.stats["like"] == 5 and eng.stats["late"] == 0


def test_replay_in_file_order_feeds_the_engine_in_steps(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """A recording with more sources than the split takes is read in file
    order: it still reaches the engine in steps (progress reported along the
    way, the ticks of each step scored before the next), with the alerts of
    the split-and-merge path on a recording already in time order."""
    import detectors.replay as replay_mod
    from detectors.config import EngineConfig
    from detectors.engine import Engine
    from detectors.events import format_time
    from tests.helpers import T0, like_json

    p = tmp_path / "r.jsonl"
    n = 40_000
    with RecordingWriter(p) as w:
        for i in range(n):
            ts = format_time(T0 + i * 0.05)
            # every 8th like: one farm device behind fresh accounts on one post
            farm = i % 8 == 0
            w.write("likes", like_json(
                like_id=f"l{i}", user_openid=f"u{i if farm else i % 3000}", ts=ts,
                target_id="post:farm" if farm else f"post:{i % 500}",
                device_id="d-farm" if farm else f"d{i % 3000}",
                client_ip=f"10.0.{i % 200}.{i % 250}").decode(), partition=i % 2)

    def run() -> tuple[list[str], list[int]]:
        alerts: list[str] = []
        seen: list[int] = []
        eng = Engine(EngineConfig(mode="rules"))
        replay_mod.replay_file(p, eng, lambda a: alerts.append(a.alert_id),
                               on_progress=lambda s: seen.append(s.records))
        return alerts, seen

    merged, merged_progress = run()
    monkeypatch.setattr(replay_mod, "MAX_SPLIT_SOURCES", 1)
    in_order, progress = run()
    assert merged and in_order == merged
    assert len(progress) >= 2 and progress == sorted(progress) and progress[-1] < n
    assert len(merged_progress) >= 2
