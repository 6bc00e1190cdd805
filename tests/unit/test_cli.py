"""The ``likeguard`` command line as a user meets it: help for every flag,
errors that name what is wrong."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from pathlib import Path

import pytest

from streams.cli import build_parser, main
from streams.settings import _EnvOnly


def _parsers(parser: argparse.ArgumentParser, path: tuple[str, ...] = ("likeguard",)
             ) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """``parser`` and every subcommand's parser under it, with its command path."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _parsers(sub, (*path, name))


PARSERS = list(_parsers(build_parser()))


def test_every_subcommand_is_walked() -> None:
    names = {path[-1] for path, _ in PARSERS}
    assert {"simulate", "replay", "evaluate", "ablate", "worker", "record"} <= names


@pytest.mark.parametrize("path, parser", PARSERS, ids=[" ".join(p) for p, _ in PARSERS])
def test_every_flag_has_help(path: tuple[str, ...], parser: argparse.ArgumentParser) -> None:
    missing = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            # each subcommand's one-line help in the parent's list
            missing += [f"command {c.dest}" for c in action._choices_actions
                        if not (c.help or "").strip()]
            continue
        if isinstance(action, _EnvOnly):
            continue  # hidden on purpose: it only refuses a secret on the command line
        if action.help is argparse.SUPPRESS or not (action.help or "").strip():
            missing.append("/".join(action.option_strings) or action.dest)
    assert not missing, f"{' '.join(path)}: no help text for {missing}"
    # and the help renders (a stray % in a help string breaks --help)
    assert parser.format_help()


def test_worker_detector_flags_are_in_its_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["worker", "--help"])
    out = capsys.readouterr().out
    for flag in ("--mode", "--grace", "--max-skew", "--allowed-lateness", "--partitions"):
        assert flag in out


@pytest.mark.parametrize("line, says", [
    (b'{"partition": 0, "offset": 3, "payload": "{}"}', "no 'topic' field"),
    (b'{"value": "{}", "topic_name": "likes"}', "no 'topic' field"),
    (b'{"topic": 5, "payload": "{}"}', "'topic' is 5, not a string"),
    (b'{"topic": "likes", "partition": null, "payload": "{}"}',
     "'partition' is null, not an integer"),
    (b'{"topic": "likes", "partition": "0", "payload": "{}"}',
     "'partition' is \"0\", not an integer"),
    (b"[1, 2]", "a JSON array, not an object"),
    (b"not json", "(not JSON)"),
])
def test_replay_names_what_a_non_kcat_record_lacks(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], line: bytes, says: str) -> None:
    rec = tmp_path / "r.jsonl"
    rec.write_bytes(b'{"topic":"likes","partition":0,"offset":0,"ts":1,"key":null,"payload":"{}"}\n'
                    + line + b"\n")
    assert main(["replay", str(rec), "--alerts-out", str(tmp_path / "a.jsonl"),
                 "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert f"{rec}:2: not a kcat -J record" in err and says in err, err
    assert "Traceback" not in err
