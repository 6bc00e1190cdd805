"""Run the streaming worker: ``likeguard worker`` or ``python -m streams.worker``.

:func:`run_worker` builds :class:`~streams.settings.Settings` (flags override
``KAFKA_BOOTSTRAP_SERVERS`` / ``LIKEGUARD_*`` env vars), validates them, starts
the Prometheus exporter, checks the topics (:func:`preflight`) and runs the
Faust worker until SIGINT or SIGTERM, which stop it cleanly (agents stop,
acked offsets are committed, the producer is flushed). Exit codes: 0 after a
clean stop, 2 for bad settings or topics, 1 when the worker crashed.

A hard kill loses nothing either: offsets are committed only behind durable
checkpoints (see :mod:`streams.agents`), so a restarted worker restores each
partition's engine and re-processes the records after its checkpoint.

While the broker cannot be reached the worker waits and carries on when it is
back; aiokafka meanwhile logs every failed connection attempt (about 3,000
lines a second, measured), so its repeats go through :class:`RepeatFilter`.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from streams.settings import Settings, SettingsError, add_worker_arguments

__all__ = ["run_worker", "preflight", "main", "build_parser", "PreflightError", "RepeatFilter",
           "quiet_repeats", "remove_repeat_filters"]

log = logging.getLogger("likeguard.worker")

#: the aiokafka loggers that repeat a failure on every retry while the broker is away
KAFKA_CLIENT_LOGGERS = ("aiokafka", "aiokafka.consumer.fetcher",
                        "aiokafka.consumer.group_coordinator", "aiokafka.producer.sender")


class RepeatFilter(logging.Filter):
    """Let a warning or error repeated by the same logger at the same level (the
    same format string, whatever its arguments) through at most once per
    ``every`` seconds; the next one that passes says how many were held back.

    Memory is bounded by the format strings a library uses, not by the
    messages.

    >>> clock = iter([0.0, 1.0, 2.0, 11.0]).__next__
    >>> f = RepeatFilter(every=10.0, clock=clock)
    >>> rec = lambda: logging.LogRecord("aiokafka", logging.ERROR, "", 0,
    ...                                 "Unable connect to node with id %s", (1,), None)
    >>> passed = [r.getMessage() for r in (rec(), rec(), rec(), rec()) if f.filter(r)]
    >>> passed
    ['Unable connect to node with id 1', 'Unable connect to node with id 1 (2 more like this held back)']
    """

    def __init__(self, every: float = 10.0, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.every = every
        self.clock = clock
        self._seen: dict[tuple[str, int, object], tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True  # progress lines (a group joined, partitions assigned) all pass
        key = (record.name, record.levelno, record.msg)
        now = self.clock()
        seen = self._seen.get(key)
        if seen is not None and now - seen[0] < self.every:
            self._seen[key] = (seen[0], seen[1] + 1)
            return False
        self._seen[key] = (now, 0)
        if seen is not None and seen[1]:
            record.msg = f"{record.msg} ({seen[1]} more like this held back)"
        return True


class PreflightError(RuntimeError):
    """The cluster's topics do not fit the settings (e.g. wrong partition count)."""


def remove_repeat_filters() -> None:
    """Take every :class:`RepeatFilter` off the aiokafka loggers."""
    for name in KAFKA_CLIENT_LOGGERS:
        logger = logging.getLogger(name)
        for f in [f for f in logger.filters if isinstance(f, RepeatFilter)]:
            logger.removeFilter(f)


def quiet_repeats(every: float = 10.0) -> RepeatFilter:
    """Put one :class:`RepeatFilter` on the aiokafka loggers (replacing one put
    there before); return it."""
    remove_repeat_filters()
    repeats = RepeatFilter(every)
    for name in KAFKA_CLIENT_LOGGERS:
        logging.getLogger(name).addFilter(repeats)
    return repeats


def preflight(settings: Settings, changelog_topic: str, timeout: float = 30.0) -> None:
    """Check and create topics before Faust starts.

    * internal topics (view topics and the checkpoint changelog) must have
      exactly ``settings.partitions`` partitions: the engine shards its
      models by the Kafka partition of each key, and a checkpoint belongs to
      one partition; an existing topic with another count is an error;
    * missing internal, output (alerts, dead-letter) and input topics are
      created with ``settings.partitions`` partitions (input topics with a
      warning: usually the producers create them).
    """
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError, TopicAlreadyExistsError

    internal = [settings.view_topic(v) for v in ("merchant", "ip", "device", "user", "lockstep")]
    internal.append(changelog_topic)
    outputs = [settings.alerts_topic, settings.deadletter_topic]
    inputs = [settings.payments_topic, settings.likes_topic]
    try:
        admin = KafkaAdminClient(client_id=f"{settings.app_id}-preflight",
                                 request_timeout_ms=int(timeout * 1000),
                                 **settings.kafka_python_kwargs())
    except KafkaError as exc:
        raise PreflightError(f"cannot reach Kafka at {settings.bootstrap_servers}: {exc!r}") from exc
    try:
        described = admin.describe_topics(internal + outputs + inputs)
        counts = {t["name"]: len(t["partitions"]) for t in described if t.get("error_code", 0) == 0}
        for name in internal:
            if name in counts and counts[name] != settings.partitions:
                raise PreflightError(
                    f"internal topic {name} has {counts[name]} partitions but partitions "
                    f"(LIKEGUARD_PARTITIONS) is {settings.partitions}; they must be equal "
                    f"(use new topic names via LIKEGUARD_VIEW_TOPIC_PREFIX / LIKEGUARD_APP_ID, "
                    f"or set partitions to {counts[name]})")
        missing = [t for t in internal + outputs + inputs if t not in counts]
        for name in missing:
            if name in inputs:
                log.warning("input topic %s does not exist; creating it with %d partitions",
                            name, settings.partitions)
        if missing:
            spec: dict[str, Any] = {"num_partitions": settings.partitions,
                                    "replication_factor": settings.replication_factor}
            specs = {}
            for name in missing:
                s = dict(spec)
                if name == changelog_topic:
                    from streams.topics import CHECKPOINT_TOPIC_CONFIG

                    s["configs"] = dict(CHECKPOINT_TOPIC_CONFIG)
                specs[name] = s
            try:
                admin.create_topics(specs, timeout_ms=int(timeout * 1000), raise_errors=False,
                                    wait_for_metadata=True)
            except TopicAlreadyExistsError:  # a concurrent worker made them
                pass
    except KafkaError as exc:
        raise PreflightError(f"topic check failed: {exc!r}") from exc
    finally:
        admin.close()


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``python -m streams.worker`` (one flag per setting)."""
    p = argparse.ArgumentParser(prog="python -m streams.worker",
                                description="Run the likeguard Faust worker.")
    return add_worker_arguments(p)


def run_worker(args: argparse.Namespace | None = None) -> int:
    """Run the worker until SIGINT/SIGTERM; return the process exit code."""
    try:
        settings = Settings.from_args(args).validate()
    except SettingsError as exc:
        print(f"likeguard worker: error: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=settings.log_level.upper(),
                        format="[%(asctime)s] [%(process)d] [%(levelname)s] %(name)s: %(message)s")
    quiet_repeats()

    import faust

    from detectors.replay import long_lived_heap
    from streams.agents import Pipeline
    from streams.app import create_app
    from streams.metrics import Metrics

    metrics = Metrics(input_topics=(settings.payments_topic, settings.likes_topic))
    app = create_app(settings)
    pipeline = Pipeline(app, settings, metrics)
    try:
        preflight(settings, pipeline.topics.checkpoints.changelog_topic.get_topic_name())
    except PreflightError as exc:
        print(f"likeguard worker: error: {exc}", file=sys.stderr)
        return 2
    if settings.metrics_port:
        try:
            port = metrics.serve(settings.metrics_port, addr=settings.metrics_addr)
        except OSError as exc:
            print(f"likeguard worker: error: metrics port {settings.metrics_port}: {exc}",
                  file=sys.stderr)
            return 2
        log.info("metrics on http://%s:%d/metrics", settings.metrics_addr, port)
    log.info("settings: %s", settings.describe())
    worker = faust.Worker(app, loglevel=settings.log_level, quiet=True,
                          redirect_stdouts=False)
    code = 0
    try:
        with long_lived_heap():  # the engines' windows are long-lived objects
            worker.execute_from_commandline()
    except SystemExit as exc:  # mode's Worker always exits this way
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        metrics.stop()
    if app._crash_reason is not None:  # noqa: SLF001 - Faust keeps no public flag
        log.error("worker crashed: %r", app._crash_reason)
        return code or 1
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m streams.worker``."""
    return run_worker(build_parser().parse_args(argv))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
