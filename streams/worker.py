"""Run the streaming worker: ``likeguard worker`` or ``python -m streams.worker``.

:func:`run_worker` builds :class:`~streams.settings.Settings` (flags override
``KAFKA_BOOTSTRAP_SERVERS`` / ``LIKEGUARD_*`` env vars), validates them, checks
the cluster and its topics (:func:`preflight`), starts the Prometheus exporter
and, with ``console_port`` set, the review console (:mod:`streams.console`),
and runs the Faust worker until SIGINT or SIGTERM, which stop it cleanly
(agents stop, acked offsets are committed, the producer is flushed). Exit
codes: 0 after a clean stop, 2 when it cannot start (bad settings, a cluster
it cannot reach within :data:`CONNECT_TIMEOUT`, missing input topics, topics
that do not fit), 1 when the worker crashed or the broker refused a record
for good (:mod:`streams.delivery`). A start that fails prints one
line, ``likeguard worker: error: ...``, and nothing else.

A hard kill loses nothing either: offsets are committed only behind durable
checkpoints (see :mod:`streams.checkpoints`), so a restarted worker restores each
partition's engine and re-processes the records after its checkpoint.

While the broker cannot be reached the worker waits and carries on when it is
back; aiokafka meanwhile logs every failed connection attempt (about 3,000
lines a second, measured), so its repeats go through :class:`RepeatFilter`.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import re
import socket
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from streams.settings import Settings, SettingsError, add_worker_arguments

__all__ = ["run_worker", "preflight", "main", "build_parser", "PreflightError", "RepeatFilter",
           "quiet_repeats", "remove_repeat_filters"]

log = logging.getLogger("likeguard.worker")

#: the aiokafka loggers that repeat a failure on every retry while the broker is away
KAFKA_CLIENT_LOGGERS = ("aiokafka", "aiokafka.consumer.fetcher",
                        "aiokafka.consumer.group_coordinator", "aiokafka.producer.sender")
#: seconds the pre-flight check tries to reach the cluster before the worker gives up
CONNECT_TIMEOUT = 8.0
#: Kafka's error codes for a topic that does not exist, and one the client may not see
_UNKNOWN_TOPIC = 3
_TOPIC_AUTHORIZATION_FAILED = 29
_TOPIC_ALREADY_EXISTS = 36


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
    """The cluster cannot be reached, or its topics do not fit the settings
    (a missing input topic, an internal topic with another partition count)."""


class _ClientLog(logging.Handler):
    """kafka-python's warnings and errors during the pre-flight check: keeps the
    cause of the first failed connection attempt (refused, DNS, TLS,
    authentication; later attempts often fail only as a consequence), or of
    a later one that names TLS, DNS or authentication when the first was a
    plain disconnect, for the one line that reports the failure."""

    FAILED = re.compile(r"^(?:Connection failed|Bootstrap connection to \S+ failed): (.+?)"
                        r"(?: \(backoff [^)]*\))?$", re.S)
    REPEATED = re.compile(r"\b(\w+Error: )\1+")  # kafka-python names some errors twice

    #: causes that name what to fix, over a plain disconnect seen first (a
    #: broker refusing credentials may drop the first connection before its
    #: SASL answer)
    SPECIFIC = re.compile(r"Authentication|Sasl|SASL|SSL|certificate|DNS", re.I)

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.failure: str | None = None

    def emit(self, record: logging.LogRecord) -> None:
        if self.failure is not None and self.SPECIFIC.search(self.failure):
            return
        m = self.FAILED.match(record.getMessage())
        if m:
            cause = self.REPEATED.sub(r"\1", " ".join(m.group(1).split()))
            if self.failure is None or self.SPECIFIC.search(cause):
                self.failure = cause


@contextlib.contextmanager
def _client_log(quiet: bool) -> Iterator[_ClientLog]:
    """Watch kafka-python's log; with ``quiet``, hold its lines back (one per
    failed connection attempt, the IO loop starting): :func:`preflight`
    reports the outcome in one line of its own."""
    logger = logging.getLogger("kafka")
    level, propagate = logger.level, logger.propagate
    handler = _ClientLog()
    logger.addHandler(handler)
    if quiet:
        logger.setLevel(logging.WARNING)
        logger.propagate = False
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.propagate = propagate


#: shorter secrets are not redacted: "***" for every "p" would garble the log
#: more than it hid (and such a password is guessed anyway)
_MIN_REDACTED = 6


def redact_secrets(secrets: Iterable[str]) -> None:
    """Replace each of ``secrets`` by ``***`` in every log record's message,
    whichever library logs it: kafka-python's admin client, for one, logs its
    whole configuration (SASL password included) at debug level.

    >>> before = logging.getLogRecordFactory()
    >>> redact_secrets(["hunter2-secret"])
    >>> rec = logging.getLogger("x").makeRecord("x", logging.DEBUG, "", 0,
    ...                                         "config %s", ({"password": "hunter2-secret"},), None)
    >>> rec.getMessage()
    "config {'password': '***'}"
    >>> logging.setLogRecordFactory(before)
    """
    values: set[str] = set()
    for secret in secrets:
        if len(secret) >= _MIN_REDACTED:
            values.update((secret, repr(secret)[1:-1]))
    if not values:
        return
    ordered = sorted(values, key=len, reverse=True)
    base = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = base(*args, **kwargs)
        try:
            msg = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad record stays as it is, logging reports it
            return record
        if any(v in msg for v in ordered):
            for v in ordered:
                msg = msg.replace(v, "***")
            record.msg, record.args = msg, None
        return record

    logging.setLogRecordFactory(factory)


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


def preflight(settings: Settings, connect_timeout: float = CONNECT_TIMEOUT,
              timeout: float = 30.0, quiet: bool = True) -> None:
    """Check the cluster and its topics, and create the worker's own topics,
    before Faust starts.

    * the cluster must answer within ``connect_timeout`` seconds (Faust would
      retry for ever, logging every attempt);
    * the input topics must exist: they are the producers', and one the
      worker created would be a topic nobody writes to (a typo in a name, a
      producer not yet deployed) while the worker waited in silence;
    * internal topics (view topics and the checkpoint changelog) must have
      exactly ``settings.partitions`` partitions: the engine shards its
      models by the Kafka partition of each key, and a checkpoint belongs to
      one partition; an existing topic with another count is an error;
    * missing internal and output (alerts, dead-letter, verdicts) topics are
      created with ``settings.partitions`` partitions (the verdicts topic is
      the console's output and the ingest's input);
    * the principal may do on every topic and consumer group what the
      worker does there (:func:`streams.acls.worker_grants`, as the broker
      reports its authorised operations): a worker that may not write its
      alerts or checkpoints, or read as its groups, stops here, naming the
      topic or group and the operations.

    With ``quiet``, kafka-python's own log lines are held back meanwhile.

    Raises
    ------
    PreflightError
        With a one-line message naming what is wrong and the setting to fix.
    """
    with _client_log(quiet) as client_log:
        _check_topics(settings, connect_timeout, timeout, client_log)


def _check_topics(settings: Settings, connect_timeout: float, timeout: float,
                  client_log: _ClientLog) -> None:
    """The checks of :func:`preflight`; ``client_log`` watches kafka-python's log."""
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    changelog_topic = settings.checkpoint_changelog
    internal = [settings.view_topic(v) for v in ("merchant", "ip", "device", "user", "lockstep")]
    internal.append(changelog_topic)
    outputs = [settings.alerts_topic, settings.deadletter_topic, settings.verdicts_topic]
    inputs = {settings.payments_topic: "payments_topic", settings.likes_topic: "likes_topic"}
    try:
        admin = KafkaAdminClient(client_id=f"{settings.app_id}-preflight",
                                 bootstrap_timeout_ms=int(connect_timeout * 1000),
                                 request_timeout_ms=int(timeout * 1000),
                                 **settings.kafka_python_kwargs())
    except (KafkaError, OSError) as exc:  # OSError: TLS set-up, sockets
        why = client_log.failure or _brief(exc)
        raise PreflightError(f"cannot connect to Kafka at {settings.bootstrap_servers} "
                             f"(KAFKA_BOOTSTRAP_SERVERS) within {connect_timeout:g} s: "
                             f"{why}") from exc
    try:
        described = admin.describe_topics(internal + outputs + list(inputs))
        errors = {t["name"]: t.get("error_code", 0) for t in described}
        counts = {t["name"]: len(t["partitions"]) for t in described if errors[t["name"]] == 0}
        absent = [t for t in inputs if errors.get(t, _UNKNOWN_TOPIC) == _UNKNOWN_TOPIC]
        denied = [t for t in inputs if errors.get(t) == _TOPIC_AUTHORIZATION_FAILED]
        if denied:
            raise PreflightError(
                f"not authorised to describe input topic {', '.join(denied)} on "
                f"{settings.bootstrap_servers} as {_principal(settings)}: {_ACL_HINT}")
        if absent:
            raise PreflightError(
                "input topic" + ("s " if len(absent) > 1 else " ")
                + ", ".join(f"{t} (LIKEGUARD_{inputs[t].upper()})" for t in absent)
                + f" not found on {settings.bootstrap_servers}; the worker does not create "
                "input topics: create them, or set the topic names")
        denied = [t for t in internal + outputs if errors.get(t) == _TOPIC_AUTHORIZATION_FAILED]
        if denied:
            _refuse(settings, denied[0], {"DESCRIBE"})
        for name in internal:
            if name in counts and counts[name] != settings.partitions:
                raise PreflightError(
                    f"internal topic {name} has {counts[name]} partitions but partitions "
                    f"(LIKEGUARD_PARTITIONS) is {settings.partitions}; they must be equal "
                    f"(use new topic names via LIKEGUARD_VIEW_TOPIC_PREFIX / LIKEGUARD_APP_ID, "
                    f"or set partitions to {counts[name]})")
        missing = [t for t in internal + outputs if t not in counts]
        if missing:
            _create(admin, settings, missing, changelog_topic, timeout)
            described = admin.describe_topics(internal + outputs + list(inputs))
        _check_access(settings, described)
        _check_groups(admin, settings)
    except KafkaError as exc:
        raise PreflightError(f"topic check on {settings.bootstrap_servers} failed: "
                             f"{_brief(exc)}") from exc
    finally:
        admin.close()


#: where a refused worker's message points
_ACL_HINT = ("grant the worker's ACLs (likeguard acls, deploy/kafka/acls.sh; "
             "docs/operations.md#access-control)")


def _principal(settings: Settings) -> str:
    """Who the worker is to the broker, as far as its settings tell."""
    if settings.uses_sasl:
        return f"User:{settings.sasl_username}"
    if settings.ssl_certfile:
        return f"the principal of {settings.ssl_certfile}"
    return "this client"


def _create(admin: Any, settings: Settings, missing: list[str], changelog_topic: str,
            timeout: float) -> None:
    """Create the worker's ``missing`` topics; a refusal other than "already
    exists" (a concurrent worker made it) is a :class:`PreflightError`."""
    spec: dict[str, Any] = {"num_partitions": settings.partitions,
                            "replication_factor": settings.replication_factor}
    specs = {}
    for name in missing:
        s = dict(spec)
        if name == changelog_topic:
            from streams.topics import CHECKPOINT_TOPIC_CONFIG

            s["configs"] = dict(CHECKPOINT_TOPIC_CONFIG)
        specs[name] = s
    result = admin.create_topics(specs, timeout_ms=int(timeout * 1000), raise_errors=False)
    refused = {t["name"]: t for t in result.get("topics", ())
               if t.get("error_code", 0) not in (0, _TOPIC_ALREADY_EXISTS)}
    if refused:
        denied = [n for n, t in refused.items() if t["error_code"] == _TOPIC_AUTHORIZATION_FAILED]
        if denied:
            _refuse(settings, denied[0], {"CREATE"})
        name, t = next(iter(refused.items()))
        raise PreflightError(f"cannot create topic {name} on {settings.bootstrap_servers}: "
                             f"error {t['error_code']} {t.get('error_message') or ''}".rstrip())
    admin.wait_for_topics(missing, timeout_ms=int(timeout * 1000))


def _check_access(settings: Settings, described: list[dict[str, Any]]) -> None:
    """Every topic of :func:`streams.acls.worker_grants` allows the worker what
    it needs, as the broker reports the principal's authorised operations
    (KIP-430; a broker without an authoriser reports every operation)."""
    from streams.acls import required_operations, worker_grants

    allowed = {t["name"]: set(t["authorized_operations"]) for t in described
               if t.get("error_code", 0) == 0 and t.get("authorized_operations") is not None}
    for grant in worker_grants(settings):
        if grant.resource != "topic" or grant.name not in allowed:
            continue  # groups, and Faust's own leader topic, fail in the clients
        lacking = required_operations(grant) - allowed[grant.name]
        if lacking:
            _refuse(settings, grant.name, lacking)


#: seconds to wait for a group coordinator (a new cluster's offsets topic) in preflight
_COORDINATOR_WAIT = 10.0


def _check_groups(admin: Any, settings: Settings) -> None:
    """The worker's consumer groups allow it what it needs (READ): without it
    Faust's and the ingest's consumers would fail to join, after the start."""
    from kafka.errors import GroupAuthorizationFailedError, KafkaError

    from streams.acls import required_operations, worker_grants

    for grant in worker_grants(settings):
        if grant.resource != "group":
            continue
        deadline = time.monotonic() + _COORDINATOR_WAIT
        while True:
            try:
                group = admin.describe_groups([grant.name]).get(grant.name, {})
                break
            except GroupAuthorizationFailedError:  # finding its coordinator was refused
                group = {"error": "GroupAuthorizationFailedError"}
                break
            except KafkaError as exc:
                # a new cluster creates its offsets topic on the first request
                if not getattr(exc, "retriable", False) or time.monotonic() > deadline:
                    log.info("consumer group %s not checked: %s", grant.name, _brief(exc))
                    group = {}
                    break
                time.sleep(0.5)
        needs = required_operations(grant)
        if "GroupAuthorizationFailed" in (group.get("error") or ""):
            _refuse(settings, grant.name, needs, "group")
        allowed = group.get("authorized_operations")
        if allowed is not None and needs - set(allowed):
            _refuse(settings, grant.name, needs - set(allowed), "group")


def _refuse(settings: Settings, name: str, lacking: set[str], resource: str = "topic") -> None:
    """Raise the :class:`PreflightError` of a topic (or group) the principal may not use."""
    from streams.acls import required_operations, worker_grants

    grant = next((g for g in worker_grants(settings) if g.resource == resource and g.name == name),
                 None)
    what = f" ({grant.setting}: {grant.why})" if grant is not None else ""
    needs = (f"; the worker needs {', '.join(sorted(required_operations(grant)))} there"
             if grant is not None else "")
    raise PreflightError(
        f"not authorised to {', '.join(sorted(lacking))} {resource} {name}{what} on "
        f"{settings.bootstrap_servers} as {_principal(settings)}{needs}: {_ACL_HINT}")


def _brief(exc: BaseException) -> str:
    """An exception as ``Type: message`` on one line."""
    name, text = type(exc).__name__, " ".join(str(exc).split())
    if text.startswith(name):  # kafka-python's errors name themselves
        return text
    return f"{name}: {text}" if text else name


def _check_port(addr: str, port: int) -> None:
    """Raise :class:`OSError` when ``addr:port`` cannot be bound now."""
    family = socket.AF_INET6 if ":" in addr else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the web server binds
        s.bind((addr, port))


def _url_host(addr: str) -> str:
    return f"[{addr}]" if ":" in addr else addr


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
    redact_secrets(settings.secret_values())
    quiet_repeats()
    # before anything else logs: a worker that cannot start says so in one line
    try:
        preflight(settings, connect_timeout=settings.kafka_connect_timeout or CONNECT_TIMEOUT,
                  quiet=settings.log_level != "debug" and not settings.kafka_debug)
    except PreflightError as exc:
        print(f"likeguard worker: error: {exc}", file=sys.stderr)
        return 2

    import faust

    from detectors.replay import long_lived_heap
    from streams.agents import Pipeline
    from streams.app import create_app
    from streams.console import PREFIX as CONSOLE_PREFIX
    from streams.console import Board, BoardFeed, Console
    from streams.metrics import Metrics

    if settings.console_port:
        try:  # Faust binds it later, and would crash with a traceback when it is taken
            _check_port(settings.console_addr, settings.console_port)
        except OSError as exc:
            print(f"likeguard worker: error: console port {settings.console_port}: {exc}",
                  file=sys.stderr)
            return 2
    metrics = Metrics(input_topics=(settings.payments_topic, settings.likes_topic))
    app = create_app(settings)
    board = Board() if settings.console_port else None
    pipeline = Pipeline(app, settings, metrics)  # registers its agents and timer
    if board is not None:
        Console(app, settings, board)
        app.task(BoardFeed(settings, board).run)
        log.info("review console on http://%s:%d%s/", _url_host(settings.console_addr),
                 settings.console_port, CONSOLE_PREFIX)
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
    if pipeline.refused is not None or pipeline.failed is not None:
        return code or 1  # stopped as on SIGTERM, after its one line
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m streams.worker``."""
    return run_worker(build_parser().parse_args(argv))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
