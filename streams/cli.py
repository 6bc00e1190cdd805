"""The ``likeguard`` command line: offline tools and the Kafka-facing commands.

Offline commands (``simulate``, ``replay``, ``evaluate``, ``ablate``) use
``detectors/`` only and need no broker. Kafka commands (``worker``,
``acls``, ``record``, ``replay --to-kafka``, ``simulate --to-kafka``) import the
streaming code lazily so the offline ones start fast.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from detectors import __version__

__all__ = ["main", "build_parser"]


def _engine_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("detector settings")
    g.add_argument("--mode", choices=("both", "rules", "models"), default=None,
                   help="which detectors may alert (default: both)")
    g.add_argument("--grace", type=float, default=None,
                   help="seconds of out-of-order tolerance (default 10)")
    g.add_argument("--max-skew", type=float, default=None, dest="max_skew",
                   help="seconds one input partition may lag the newest before the watermark "
                        "stops waiting for it (default 60; 0: one global watermark)")
    g.add_argument("--max-ahead", type=float, default=None, dest="max_ahead",
                   help="seconds an event's time may run past its Kafka record's timestamp; "
                        "later ones are rejected as bad_time (default 300; 0: not checked)")
    g.add_argument("--max-behind", type=float, default=None, dest="max_behind",
                   help="seconds an event's time may lie before its Kafka record's timestamp; "
                        "older ones are rejected as bad_time (default 0: not checked)")
    g.add_argument("--allowed-lateness", type=float, default=None, dest="allowed_lateness",
                   help="seconds behind the watermark an event may arrive and still count "
                        "(out of order); older ones are dropped as late (default 600; 0: none)")
    g.add_argument("--partitions", type=int, default=None,
                   help="model shards; set to the view topics' partition count (default 6)")


def _engine_config(args: argparse.Namespace):
    from detectors.config import EngineConfig

    changes = {k: getattr(args, k)
               for k in ("mode", "grace", "max_skew", "max_ahead", "max_behind", "allowed_lateness",
                         "partitions")
               if getattr(args, k, None) is not None}
    return EngineConfig().with_(**changes)


def _cmd_replay(args: argparse.Namespace) -> int:
    if args.to_kafka:
        from streams.kafka_io import replay_to_kafka  # lazy: needs kafka-python

        return replay_to_kafka(args)
    from detectors.recording import RecordingError
    from detectors.replay import replay

    if args.alerts_out is None:
        print("likeguard replay: error: --alerts-out is required (or --to-kafka)", file=sys.stderr)
        return 2
    try:
        cfg = _engine_config(args)
    except ValueError as exc:
        print(f"likeguard replay: error: {exc}", file=sys.stderr)
        return 2
    progress = sys.stderr.isatty() if args.progress is None else args.progress
    from detectors.verdicts import Verdict, read_verdicts

    verdicts: list[Verdict] = []
    if args.verdicts is not None:
        try:
            verdicts, bad = read_verdicts(args.verdicts)
        except (OSError, UnicodeDecodeError) as exc:
            print(f"likeguard replay: error: cannot read verdicts: {exc}", file=sys.stderr)
            return 2
        if bad:
            print(f"likeguard replay: warning: {sum(bad.values())} bad verdict lines skipped "
                  f"({', '.join(f'{r}: {n}' for r, n in sorted(bad.items()))})", file=sys.stderr)
    try:
        summary = replay(args.recording, args.alerts_out, cfg, progress=progress,
                         verdicts=verdicts)
    except RecordingError as exc:
        print(f"likeguard replay: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"likeguard replay: error: {exc}", file=sys.stderr)
        return 2
    print(summary.line())
    if summary.records == 0:
        print(f"likeguard replay: warning: {args.recording} holds no records", file=sys.stderr)
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from detectors import evaluate

    return evaluate.run(args)


def _cmd_simulate(args: argparse.Namespace) -> int:
    from detectors import simulate

    if getattr(args, "to_kafka", False):
        from streams.kafka_io import simulate_to_kafka

        return simulate_to_kafka(args)
    return simulate.run(args)


def _cmd_ablate(args: argparse.Namespace) -> int:
    from detectors.ablation import run_ablation
    from detectors.evaluate import LabelsError, compare_table, load_labels
    from detectors.recording import RecordingError

    try:
        labels = load_labels(args.labels)
        results = run_ablation(args.recording, labels, _engine_config(args))
    except (LabelsError, RecordingError, OSError, ValueError) as exc:
        print(f"likeguard ablate: error: {exc}", file=sys.stderr)
        return 2
    print(compare_table(results))
    return 0


def _cmd_worker(args: argparse.Namespace) -> int:
    from streams.worker import run_worker

    return run_worker(args)


def _cmd_acls(args: argparse.Namespace) -> int:
    from streams.acls import run

    return run(args)


def _cmd_record(args: argparse.Namespace) -> int:
    from streams.kafka_io import record

    return record(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="likeguard",
        description="Real-time detector of pay-for-likes fraud: simulate traffic, replay "
                    "recordings through the detectors, evaluate alerts, run the Kafka worker.",
    )
    parser.add_argument("--version", action="version", version=f"likeguard {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    from detectors import evaluate, simulate

    p = sub.add_parser("simulate", help="generate labelled traffic (a recording and labels)",
                       description="Generate a seeded, labelled recording of payment and like "
                                   "traffic with fraud campaigns and honest look-alikes.")
    simulate.add_arguments(p)
    p.add_argument("--to-kafka", action="store_true",
                   help="produce to Kafka in real time at --rate events/s (OUT may be '-'; "
                        "otherwise the produced records and labels are also written there)")
    p.add_argument("--bootstrap-servers", default=None,
                   help="Kafka bootstrap servers (default: $KAFKA_BOOTSTRAP_SERVERS or 127.0.0.1:9092)")
    p.add_argument("--first-campaign-in", type=float, default=None, metavar="SECONDS",
                   help="with --to-kafka: start the run earlier (warm-up produced at once) so its "
                        "first campaign begins this many seconds from now")
    p.add_argument("--topic-map", action="append", default=[], metavar="FROM=TO",
                   help="with --to-kafka: produce records of topic FROM to topic TO")
    p.set_defaults(func=_cmd_simulate)

    p = sub.add_parser("replay", help="replay a recording offline (or into Kafka)",
                       description="Replay a kcat -J recording (plain or .gz) through the detectors "
                                   "in event-time order and write the alerts as JSON Lines; or, with "
                                   "--to-kafka, produce its records to Kafka.")
    p.add_argument("recording", type=Path, help="kcat -J JSON Lines file (.jsonl or .jsonl.gz)")
    p.add_argument("--alerts-out", type=Path, help="where to write alerts (JSON Lines; .gz ok)")
    p.add_argument("--verdicts", type=Path, metavar="FILE",
                   help="moderators' verdicts (JSON Lines of the verdicts topic's objects), "
                        "applied at their decided_at on the recording's event time")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="show a progress bar (default: when stderr is a terminal)")
    p.add_argument("--to-kafka", action="store_true", help="produce the records to Kafka instead")
    p.add_argument("--bootstrap-servers", default=None, help="Kafka bootstrap servers")
    speed = p.add_mutually_exclusive_group()
    speed.add_argument("--speed", type=float, default=1.0,
                       help="with --to-kafka: replay speed factor on recorded timing (default 1)")
    speed.add_argument("--as-fast-as-possible", action="store_true",
                       help="with --to-kafka: ignore recorded timing")
    p.add_argument("--topic-map", action="append", default=[], metavar="FROM=TO",
                   help="with --to-kafka: produce records of topic FROM to topic TO")
    p.add_argument("--keep-timestamps", action="store_true",
                   help="with --to-kafka: give records their recorded Kafka timestamp (default: now)")
    _engine_args(p)
    p.set_defaults(func=_cmd_replay)

    p = sub.add_parser("evaluate", help="score alerts against labels",
                       description="Score an alerts file against a labels file: precision, "
                                   "campaign recall, F1, detection delay, false alarms.")
    evaluate.add_arguments(p)
    p.set_defaults(func=_cmd_evaluate)

    p = sub.add_parser("ablate", help="compare rules only / models only / both on a recording",
                       description="Replay a recording three times (rules only, models only, "
                                   "both) and print a Markdown table of their evaluations.")
    p.add_argument("recording", type=Path, help="kcat -J recording")
    p.add_argument("--labels", type=Path, required=True, help="labels JSON of the recording")
    _engine_args(p)
    p.set_defaults(func=_cmd_ablate)

    p = sub.add_parser("worker", help="run the streaming worker on Kafka",
                       description="Run the Faust worker: ingest, repartition, detect, alert.")
    from streams.settings import add_worker_arguments

    add_worker_arguments(p)
    p.set_defaults(func=_cmd_worker)

    p = sub.add_parser("acls", help="print (or apply) the Kafka ACLs the worker needs",
                       description="The Kafka ACLs a worker with these settings needs (least "
                                   "privilege, literal names): printed as kafka-acls.sh commands, "
                                   "or created with --apply. See docs/operations.md.")
    from streams.acls import build_parser as acls_parser

    acls_parser(p)
    p.set_defaults(func=_cmd_acls)

    p = sub.add_parser("record", help="record Kafka topics to a kcat -J file",
                       description="Consume topics from the beginning and write kcat -J JSON Lines.")
    p.add_argument("--topics", nargs="+", default=["payments.success", "likes"], metavar="TOPIC",
                   help="topics to record (default: payments.success likes)")
    p.add_argument("--out", type=Path, required=True, help="output file (.jsonl or .jsonl.gz)")
    p.add_argument("--bootstrap-servers", default=None, help="Kafka bootstrap servers")
    p.add_argument("--idle-timeout", type=float, default=5.0,
                   help="stop after this many seconds without new records (default 5)")
    p.add_argument("--max-records", type=int, default=None, help="stop after this many records")
    p.add_argument("--until-end", action="store_true",
                   help="stop once every partition reached the end offset it had at start (like kcat -e)")
    p.set_defaults(func=_cmd_record)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
