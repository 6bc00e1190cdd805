"""Recording files (kcat -J) and the replay command's handling of them."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from detectors.recording import RecordingError, RecordingWriter, read_records
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
