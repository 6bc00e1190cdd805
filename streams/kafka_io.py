"""Kafka-facing CLI commands: ``record``, ``replay --to-kafka``, ``simulate --to-kafka``.

All three use kafka-python (not Faust) and the worker's connection policy:
their connection is a validated :class:`~streams.settings.Settings` built
from the environment's connection settings
(:meth:`Settings.connection_from_env`; nothing else here reads the
environment):

* bootstrap servers: ``--bootstrap-servers``, else ``$KAFKA_BOOTSTRAP_SERVERS``,
  else ``127.0.0.1:9092``;
* security, as the worker reads it: ``LIKEGUARD_SECURITY_PROTOCOL``
  (``SASL_SSL`` ...), ``LIKEGUARD_SASL_MECHANISM`` (``SCRAM-SHA-256`` ...),
  ``LIKEGUARD_SASL_USERNAME``, ``LIKEGUARD_SASL_PASSWORD`` (or
  ``LIKEGUARD_SASL_PASSWORD_FILE``), ``LIKEGUARD_SSL_CAFILE`` (and
  ``LIKEGUARD_SSL_CERTFILE`` / ``LIKEGUARD_SSL_KEYFILE`` /
  ``LIKEGUARD_SSL_PASSWORD[_FILE]`` for a client certificate); a bad one
  stops the command with exit status 2, naming it;
* ``LIKEGUARD_KAFKA_CONNECT_TIMEOUT`` (seconds, default 10) bounds how long a
  command waits for the first broker before it gives up with exit status 2;
* ``LIKEGUARD_KAFKA_DEBUG=1`` keeps kafka-python's own log lines.

Recordings are kcat ``-J`` JSON Lines (see ``CONTRACT.md``). :func:`record`
writes exactly what ``kcat -C -J`` prints, minus kcat's ``broker`` field:
``topic, partition, offset, tstype, ts[, headers], key, payload``. Like kcat,
a key or value that is not UTF-8 is written as its **raw bytes** inside the
JSON string (only ``"``, ``\\`` and control characters are escaped, the
latter as ``\\b \\t \\n \\f \\r`` or ``\\u00XX``), so such a line is not valid
UTF-8; a null value is ``"payload":null`` and an empty one ``""``.
:func:`detectors.recording.read_records`, the one recording reader, reads
those lines back (raw bytes come back as ``bytes``, headers with each
record), so a record -> replay round trip is lossless for binary values too.

Exit status: 0 done, 1 some records could not be delivered, 2 bad input or
no broker, 130 interrupted (Ctrl-C; what was done so far is kept and
summarised).
"""

from __future__ import annotations

import argparse
import functools
import io
import logging
import re
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

from detectors.recording import Headers, RecordingError, RecordingWriter, read_records
from streams.settings import Settings, SettingsError

__all__ = [
    "DEFAULT_BOOTSTRAP",
    "connection",
    "resolve_bootstrap",
    "security_kwargs",
    "client_kwargs",
    "kcat_line",
    "KcatRecordingWriter",
    "parse_topic_map",
    "plan_live_start",
    "sigterm_as_interrupt",
    "record",
    "replay_to_kafka",
    "simulate_to_kafka",
]

DEFAULT_BOOTSTRAP = "127.0.0.1:9092"
_TSTYPES = {0: "create", 1: "logappend"}


# --------------------------------------------------------------------------- connection


def connection(bootstrap: str | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """The validated connection settings of a command: the environment's
    (:meth:`Settings.connection_from_env`), with ``bootstrap`` (a
    ``--bootstrap-servers`` value) when given.

    Raises :class:`~streams.settings.SettingsError` naming a bad setting.

    >>> connection("k1:9092,k2:9092", env={}).bootstrap_servers
    'k1:9092,k2:9092'
    """
    return Settings.connection_from_env(env, bootstrap)


def resolve_bootstrap(value: str | None = None) -> str:
    """``value``, else ``$KAFKA_BOOTSTRAP_SERVERS``, else :data:`DEFAULT_BOOTSTRAP`
    (validated as the worker validates it).

    >>> resolve_bootstrap("k1:9092,k2:9092")
    'k1:9092,k2:9092'
    """
    return connection(value).bootstrap_servers


def security_kwargs(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """kafka-python security settings of the environment's connection settings
    (:meth:`Settings.kafka_python_kwargs` without the servers).

    >>> security_kwargs({"LIKEGUARD_SECURITY_PROTOCOL": "sasl_plaintext",
    ...                  "LIKEGUARD_SASL_MECHANISM": "SCRAM-SHA-256",
    ...                  "LIKEGUARD_SASL_USERNAME": "u", "LIKEGUARD_SASL_PASSWORD": "p"})
    ... # doctest: +NORMALIZE_WHITESPACE
    {'security_protocol': 'SASL_PLAINTEXT', 'sasl_mechanism': 'SCRAM-SHA-256',
     'sasl_plain_username': 'u', 'sasl_plain_password': 'p'}
    >>> security_kwargs({})
    {'security_protocol': 'PLAINTEXT'}
    """
    kw = connection(None, env).kafka_python_kwargs()
    del kw["bootstrap_servers"]
    return kw


def client_kwargs(bootstrap: str | None = None, client_id: str = "likeguard",
                  settings: Settings | None = None) -> dict[str, Any]:
    """Common kafka-python client settings: servers, client id, security,
    the connect timeout; from ``settings`` or :func:`connection`."""
    s = settings if settings is not None else connection(bootstrap)
    kw = s.kafka_python_kwargs()
    kw["bootstrap_servers"] = s.bootstrap_servers.split(",")
    kw["client_id"] = client_id
    kw["bootstrap_timeout_ms"] = max(500, round((s.kafka_connect_timeout or 10.0) * 1000))
    return kw


def _quiet_client_logs(settings: Settings | None) -> None:
    """Keep kafka-python's connection retries off the terminal of a CLI command.

    Only when logging is not configured (the CLI); the command reports
    failures itself. ``LIKEGUARD_KAFKA_DEBUG=1`` keeps them.
    """
    if logging.getLogger().handlers or (settings is not None and settings.kafka_debug):
        return
    logging.getLogger("kafka").setLevel(logging.CRITICAL)


def _err(cmd: str, msg: str) -> None:
    print(f"likeguard {cmd}: error: {msg}", file=sys.stderr, flush=True)


def _describe_kafka_error(exc: BaseException, bootstrap: str) -> str:
    import kafka.errors as ke

    no_brokers = getattr(ke, "NoBrokersAvailable", None)  # kafka-python 2.x
    if (no_brokers is not None and isinstance(exc, no_brokers)) or (
            isinstance(exc, ke.KafkaTimeoutError) and "bootstrap" in str(exc).lower()):
        return (f"no Kafka broker reachable at {bootstrap} "
                f"(set --bootstrap-servers or KAFKA_BOOTSTRAP_SERVERS)")
    return f"Kafka error talking to {bootstrap}: {exc.__class__.__name__}: {exc}"


# --------------------------------------------------------------------------- kcat -J lines

_ESCAPES = {0x08: b"\\b", 0x09: b"\\t", 0x0A: b"\\n", 0x0C: b"\\f", 0x0D: b"\\r",
            0x22: b'\\"', 0x5C: b"\\\\"}
_ESCAPE_RE = re.compile(rb'[\x00-\x1f"\\]')


def _kcat_escape_sub(m: re.Match[bytes]) -> bytes:
    c = m.group()[0]
    return _ESCAPES.get(c) or b"\\u%04X" % c


def _kcat_str(value: bytes | None) -> bytes:
    """A JSON string the way kcat (yajl, no UTF-8 validation) prints it.

    >>> _kcat_str(b'a"\\\\\\x01\\n\\xff')
    b'"a\\\\"\\\\\\\\\\\\u0001\\\\n\\xff"'
    >>> _kcat_str(None)
    b'null'
    """
    if value is None:
        return b"null"
    return b'"' + _ESCAPE_RE.sub(_kcat_escape_sub, value) + b'"'


def kcat_line(topic: str, partition: int, offset: int, ts: int | None, key: bytes | None,
              value: bytes | None, tstype: str = "create",
              headers: list[tuple[str, bytes | None]] | None = None) -> bytes:
    """One kcat ``-J`` line (without newline) for raw key/value bytes.

    Field order and escaping follow ``kcat -C -J`` (kcat 1.7) except that
    kcat's ``broker`` field is left out. Values that are UTF-8 come out as
    ordinary JSON; others keep their raw bytes, as kcat does.

    >>> kcat_line("likes", 0, 7, 1000, None, b'{"a":1}')
    b'{"topic":"likes","partition":0,"offset":7,"tstype":"create","ts":1000,"key":null,"payload":"{\\\\"a\\\\":1}"}'
    """
    parts = [b'{"topic":', _kcat_str(topic.encode()), b',"partition":%d,"offset":%d' % (partition, offset)]
    if ts is not None and ts >= 0:
        parts.append(b',"tstype":' + _kcat_str(tstype.encode()) + b',"ts":%d' % ts)
    if headers:
        hs = []
        for name, hv in headers:
            hs.append(_kcat_str(name.encode()))
            hs.append(_kcat_str(hv))
        parts.append(b',"headers":[' + b",".join(hs) + b"]")
    parts.append(b',"key":' + _kcat_str(key) + b',"payload":' + _kcat_str(value) + b"}")
    return b"".join(parts)


class KcatRecordingWriter(RecordingWriter):
    """A :class:`RecordingWriter` for consumed records, byte-compatible with kcat ``-J``.

    Every line is what ``kcat -C -J`` prints for the record, byte for byte,
    without kcat's ``broker`` field (see :func:`kcat_line`): the real
    ``tstype``, headers when there are any, and non-UTF-8 keys or values as
    raw bytes inside the JSON string. ``.gz`` compresses.
    """

    def __init__(self, path: str | Path) -> None:
        super().__init__(path)
        # Raw (non-UTF-8) bytes are carried through the text layer as lone
        # surrogates and come out unchanged.
        cast(io.TextIOWrapper, self._fh).reconfigure(errors="surrogateescape")

    def write_consumed(self, topic: str, partition: int, offset: int, ts: int | None,
                       key: bytes | None, value: bytes | None, tstype: str = "create",
                       headers: list[tuple[str, bytes | None]] | None = None) -> None:
        """Write one consumed record; ``key``/``value`` are the raw bytes (or None)."""
        line = kcat_line(topic, partition, offset, ts, key, value, tstype, headers)
        self._fh.write(line.decode("utf-8", "surrogateescape"))
        self._fh.write("\n")
        self._offsets[(topic, partition)] = offset + 1
        self.count += 1


def _send_headers(headers: Headers | None,
                  ) -> list[tuple[str, bytes | None]] | None:
    """Headers as kafka-python sends them: a null header value becomes empty bytes."""
    if not headers:
        return None
    return [(name, b"" if v is None else v) for name, v in headers]


def _to_bytes(v: str | bytes | None) -> bytes | None:
    if v is None or isinstance(v, bytes):
        return v
    return v.encode("utf-8", "surrogateescape")


def parse_topic_map(items: list[str] | None) -> dict[str, str]:
    """``["likes=t-likes", ...]`` -> ``{"likes": "t-likes"}``; ``ValueError`` on a bad item.

    >>> parse_topic_map(["likes=l2", "payments.success=p2"])
    {'likes': 'l2', 'payments.success': 'p2'}
    """
    out: dict[str, str] = {}
    for item in items or []:
        src, sep, dst = item.partition("=")
        if not sep or not src.strip() or not dst.strip():
            raise ValueError(f"--topic-map expects FROM=TO, got {item!r}")
        out[src.strip()] = dst.strip()
    return out


# --------------------------------------------------------------------------- signals


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM stops the command like Ctrl-C (``KeyboardInterrupt``).

    So ``kill PID`` (and the demo stopping its simulator) ends a command
    cleanly: buffered records are flushed and the summary is printed.
    Does nothing outside the main thread.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def _raise(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGTERM, _raise)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def _graceful(fn: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Run a command with :func:`sigterm_as_interrupt`; keep its name and docs.

    A bad connection setting stops the command first (exit status 2, one
    line naming the setting)."""
    @functools.wraps(fn)
    def run(args: argparse.Namespace) -> int:
        try:
            settings = connection(getattr(args, "bootstrap_servers", None))
        except SettingsError as exc:
            _err(fn.__name__.removesuffix("_to_kafka"), str(exc))
            return 2
        _quiet_client_logs(settings)
        with sigterm_as_interrupt():
            return fn(args)
    return run


# --------------------------------------------------------------------------- progress


class _Progress:
    """Progress on stderr: a redrawn line on a terminal, else a line every ``every`` s."""

    def __init__(self, cmd: str, every: float = 5.0) -> None:
        self.cmd = cmd
        self.tty = sys.stderr.isatty()
        self.every = 0.5 if self.tty else every
        self.t0 = time.monotonic()
        self.next = self.t0 + self.every
        self.drawn = False
        self._last = (self.t0, 0)

    def tick(self, n: int, extra: str = "") -> None:
        now = time.monotonic()
        if now < self.next:
            return
        self.next = now + self.every
        t_prev, n_prev = self._last
        self._last = (now, n)
        rate = (n - n_prev) / max(1e-9, now - t_prev)
        msg = f"{self.cmd}: {n:,} records, {rate:,.0f}/s now{extra}"
        if self.tty:
            sys.stderr.write("\r" + msg + "\x1b[K")
            self.drawn = True
        else:
            sys.stderr.write(msg + "\n")
        sys.stderr.flush()

    def done(self) -> None:
        if self.drawn:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()


# --------------------------------------------------------------------------- record


@_graceful
def record(args: argparse.Namespace) -> int:
    """``likeguard record``: topics from the beginning into a kcat ``-J`` file.

    Group-less consumer with every partition assigned and sought to the
    beginning; stops after ``--idle-timeout`` seconds without records, after
    ``--max-records``, or (``--until-end``) once every partition reached the
    end offset it had at start, like ``kcat -e``.
    """
    from kafka import KafkaConsumer, TopicPartition
    from kafka.errors import KafkaError

    topics: list[str] = list(args.topics)
    out: Path = Path(args.out)
    idle = float(args.idle_timeout)
    max_records: int | None = args.max_records
    until_end = bool(getattr(args, "until_end", False))
    bootstrap = resolve_bootstrap(args.bootstrap_servers)
    if max_records is not None and max_records <= 0:
        _err("record", "--max-records must be > 0")
        return 2
    if idle <= 0:
        _err("record", "--idle-timeout must be > 0")
        return 2
    try:
        consumer = KafkaConsumer(
            group_id=None, enable_auto_commit=False, auto_offset_reset="earliest",
            allow_auto_create_topics=False, **client_kwargs(bootstrap, "likeguard-record"))
    except KafkaError as exc:
        _err("record", _describe_kafka_error(exc, bootstrap))
        return 2
    n = 0
    per_topic: Counter[str] = Counter()
    t0 = time.monotonic()
    interrupted = False
    writer: KcatRecordingWriter | None = None
    try:
        tps: list[TopicPartition] = []
        missing = []
        for t in topics:
            parts = consumer.partitions_for_topic(t)
            if not parts:
                missing.append(t)
            tps.extend(TopicPartition(t, p) for p in sorted(parts or ()))
        if missing:
            _err("record", f"topic(s) not found on {bootstrap}: {', '.join(missing)}")
            return 2
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        ends = consumer.end_offsets(tps) if until_end else {}
        pending = {tp for tp, end in ends.items() if end > 0}
        if until_end:  # partitions already at or past their end need nothing
            begins = consumer.beginning_offsets(tps)
            pending = {tp for tp in pending if begins.get(tp, 0) < ends[tp]}
        try:
            writer = KcatRecordingWriter(out)
        except OSError as exc:
            _err("record", f"cannot write {out}: {exc}")
            return 2
        progress = _Progress("record")
        last = time.monotonic()
        while True:
            if until_end and not pending:
                break
            if max_records is not None and n >= max_records:
                break
            left = idle - (time.monotonic() - last)
            if left <= 0:
                break
            want = None if max_records is None else max_records - n
            batch = consumer.poll(timeout_ms=int(min(500, max(1, left * 1000))), max_records=want)
            got = False
            for tp, recs in batch.items():
                for r in recs:
                    hdrs = [(h[0], h[1]) for h in r.headers] if r.headers else None
                    writer.write_consumed(r.topic, r.partition, r.offset, r.timestamp, r.key, r.value,
                                          _TSTYPES.get(r.timestamp_type, "unknown"), hdrs)
                    n += 1
                    per_topic[r.topic] += 1
                    got = True
                if until_end and tp in pending and recs and recs[-1].offset + 1 >= ends[tp]:
                    pending.discard(tp)
            if until_end and pending:  # gaps (compaction, transaction markers): ask the position
                for tp in list(pending):
                    if consumer.position(tp) >= ends[tp]:
                        pending.discard(tp)
            if got:
                last = time.monotonic()
            progress.tick(n)
        progress.done()
    except KeyboardInterrupt:
        interrupted = True
    except KafkaError as exc:
        _err("record", _describe_kafka_error(exc, bootstrap))
        return 2
    finally:
        if writer is not None:
            writer.close()
        consumer.close()
    secs = time.monotonic() - t0
    topics_txt = ", ".join(f"{t}: {per_topic.get(t, 0):,}" for t in topics)
    print(f"record: {n:,} records ({topics_txt}) to {out} in {secs:.1f}s"
          + (" (interrupted)" if interrupted else ""), flush=True)
    return 130 if interrupted else 0


# --------------------------------------------------------------------------- producing


class _Sender:
    """A batching kafka-python producer that counts deliveries and failures."""

    def __init__(self, bootstrap: str, client_id: str, linger_ms: int = 20) -> None:
        from kafka import KafkaProducer

        self.producer = KafkaProducer(
            linger_ms=linger_ms, batch_size=256 * 1024, max_block_ms=30_000,
            **client_kwargs(bootstrap, client_id))
        self.sent = 0
        self.failed = 0
        self.first_error: BaseException | None = None
        self.per_topic: Counter[str] = Counter()
        self._partitions: dict[str, int] = {}

    def partition_count(self, topic: str) -> int:
        n = self._partitions.get(topic)
        if n is None:
            n = len(self.producer.partitions_for(topic) or ()) or 1
            self._partitions[topic] = n
        return n

    def _on_error(self, exc: BaseException) -> None:
        self.failed += 1
        if self.first_error is None:
            self.first_error = exc

    def send(self, topic: str, key: bytes | None, value: bytes | None, *,
             partition: int | None = None, timestamp_ms: int | None = None,
             headers: list[tuple[str, bytes | None]] | None = None) -> None:
        fut = self.producer.send(topic, value=value, key=key, partition=partition,
                                 timestamp_ms=timestamp_ms, headers=headers or None)
        fut.add_errback(self._on_error)
        self.sent += 1
        self.per_topic[topic] += 1

    def close(self, timeout: float = 60.0) -> None:
        try:
            self.producer.flush(timeout=timeout)
        finally:
            self.producer.close(timeout=timeout)

    @property
    def delivered(self) -> int:
        return self.sent - self.failed


def _pace(target_mono: float, max_chunk: float = 0.5) -> None:
    """Sleep until ``target_mono`` (monotonic clock); small chunks keep Ctrl-C snappy."""
    while True:
        d = target_mono - time.monotonic()
        if d <= 0:
            return
        time.sleep(min(d, max_chunk))


def _summary_topics(c: Counter[str]) -> str:
    return ", ".join(f"{t}: {k:,}" for t, k in sorted(c.items())) or "nothing"


# --------------------------------------------------------------------------- replay


@_graceful
def replay_to_kafka(args: argparse.Namespace) -> int:
    """``likeguard replay RECORDING --to-kafka``: produce a recording's records.

    Keeps each record's key and value bytes. Keyed records go to the
    producer's default (murmur2) partition of their key, so they land where a
    Java/kcat producer would put them; records without a key go to their
    recorded partition modulo the destination's partition count. With the
    same partition counts a record -> replay -> record round trip therefore
    preserves partitions of keyed records hashed by the default partitioner
    and of every unkeyed one. Timing follows the recorded Kafka ``ts`` scaled
    by ``--speed`` unless ``--as-fast-as-possible``. Produced records get the
    current time as Kafka timestamp unless ``--keep-timestamps``.
    """
    from kafka.errors import KafkaError

    path = Path(args.recording)
    bootstrap = resolve_bootstrap(args.bootstrap_servers)
    afap = bool(getattr(args, "as_fast_as_possible", False))
    speed = float(getattr(args, "speed", 1.0) or 1.0)
    keep_ts = bool(getattr(args, "keep_timestamps", False))
    if speed <= 0:
        _err("replay", "--speed must be > 0")
        return 2
    try:
        topic_map = parse_topic_map(getattr(args, "topic_map", None))
    except ValueError as exc:
        _err("replay", str(exc))
        return 2
    if not path.exists():
        _err("replay", f"recording not found: {path}")
        return 2
    if not path.is_file():
        _err("replay", f"recording is not a file: {path}")
        return 2
    try:
        sender = _Sender(bootstrap, "likeguard-replay")
    except KafkaError as exc:
        _err("replay", _describe_kafka_error(exc, bootstrap))
        return 2
    t0 = time.monotonic()
    progress = _Progress("replay")
    interrupted = False
    failed_msg: str | None = None
    ts0: int | None = None
    skipped = 0
    try:
        for rec in read_records(path):
            topic = topic_map.get(rec.topic, rec.topic)
            key = _to_bytes(rec.key)
            value = _to_bytes(rec.payload)
            if key is None and value is None:  # kafka-python cannot produce it
                skipped += 1
                continue
            partition = None if key is not None else rec.partition % sender.partition_count(topic)
            if not afap and isinstance(rec.ts, int):
                if ts0 is None:
                    ts0 = rec.ts
                _pace(t0 + (rec.ts - ts0) / 1000.0 / speed)
            sender.send(topic, key, value, partition=partition,
                        timestamp_ms=rec.ts if keep_ts and isinstance(rec.ts, int) and rec.ts >= 0
                        else None,
                        headers=_send_headers(rec.headers))
            progress.tick(sender.sent)
    except RecordingError as exc:
        failed_msg = str(exc)
    except KeyboardInterrupt:
        interrupted = True
    except KafkaError as exc:
        failed_msg = _describe_kafka_error(exc, bootstrap)
    finally:
        progress.done()
        try:
            sender.close()
        except KafkaError as exc:  # pragma: no cover - flush timeout
            failed_msg = failed_msg or _describe_kafka_error(exc, bootstrap)
    secs = time.monotonic() - t0
    print(f"replay: {sender.delivered:,} records to Kafka at {bootstrap} "
          f"({_summary_topics(sender.per_topic)}) in {secs:.1f}s, "
          f"{sender.sent / max(secs, 1e-9):,.0f} records/s"
          + (f", {sender.failed:,} failed" if sender.failed else "")
          + (f", {skipped:,} skipped (null key and null value)" if skipped else "")
          + (" (interrupted)" if interrupted else ""), flush=True)
    if failed_msg:
        _err("replay", failed_msg)
        return 2
    if interrupted:
        return 130
    if sender.failed:
        _err("replay", f"{sender.failed:,} records not delivered; first error: {sender.first_error!r}")
        return 1
    return 0


# --------------------------------------------------------------------------- simulate


def _sim_config(args: argparse.Namespace, start: float):
    from detectors.simulate import SimConfig

    cfg = SimConfig(
        seed=args.seed, start=start, duration=args.duration, rate=args.rate,
        n_users=args.users, n_merchants=args.merchants, campaigns=args.campaigns,
        benign=args.benign, bad_rate=args.bad_rate, duplicate_rate=args.duplicate_rate,
        partitions=args.partitions, tz_offset=args.tz_offset)
    cfg.validate()
    return cfg


def plan_live_start(args: argparse.Namespace, now: float,
                    first_campaign_in: float | None) -> tuple[Any, float]:
    """The :class:`SimConfig` of a live run and how many seconds of it are backfill.

    The run starts at ``now``. With ``first_campaign_in`` set, it starts
    earlier instead, so that its first fraud campaign begins that many seconds
    after ``now``; the part before ``now`` (organic warm-up) is the backfill,
    produced at once. The simulator's plan is relative to its start, so
    shifting the start moves every campaign by the same amount.
    """
    from detectors.simulate import Simulation

    cfg = _sim_config(args, float(int(now)))
    if first_campaign_in is None or cfg.campaigns == 0:
        return cfg, 0.0
    campaigns = Simulation(cfg).labels()["campaigns"]
    if not campaigns:
        return cfg, 0.0
    from detectors.events import parse_time

    first = min(parse_time(c["start"]) for c in campaigns)
    shift = max(0.0, first - cfg.start - max(0.0, first_campaign_in))
    if shift <= 0:
        return cfg, 0.0
    shift = float(int(shift))
    return _sim_config(args, cfg.start - shift), shift


@_graceful
def simulate_to_kafka(args: argparse.Namespace) -> int:
    """``likeguard simulate OUT --to-kafka``: live simulated traffic into Kafka.

    The run's event time starts now (or earlier with
    ``--first-campaign-in``, see :func:`plan_live_start`), and each record is
    produced when the wall clock reaches its delivery time, so the stream
    flows at ``--rate`` events/s in real time (within the simulator's daily
    rhythm, plus campaigns) for ``--duration`` seconds or until Ctrl-C.
    Garbage (``--bad-rate``) and duplicates (``--duplicate-rate``) are
    produced too. Unless OUT is ``-``, what was produced is also written to
    OUT (kcat -J) with the labels next to it (``--labels``), for scoring.
    """
    from kafka.errors import KafkaError

    from detectors.simulate import Simulation, write_labels

    bootstrap = resolve_bootstrap(args.bootstrap_servers)
    topic_map = {}
    try:
        topic_map = parse_topic_map(getattr(args, "topic_map", None))
        now = time.time()
        cfg, backfill = plan_live_start(args, now, getattr(args, "first_campaign_in", None))
    except ValueError as exc:
        _err("simulate", str(exc))
        return 2
    out = str(args.out)
    sim = Simulation(cfg)
    labels_path = getattr(args, "labels", None)
    if out != "-" and not labels_path:
        stem = out[:-3] if out.endswith(".gz") else out
        stem = stem.removesuffix(".jsonl").removesuffix(".json")
        labels_path = stem + ".labels.json"
    try:
        if labels_path:
            write_labels(sim.labels(), labels_path)
        tee = RecordingWriter(out) if out != "-" else None
    except OSError as exc:
        _err("simulate", f"cannot write output: {exc}")
        return 2
    try:
        sender = _Sender(bootstrap, "likeguard-simulate", linger_ms=10)
    except KafkaError as exc:
        if tee is not None:
            tee.close()
        _err("simulate", _describe_kafka_error(exc, bootstrap))
        return 2
    from detectors.events import format_time, parse_time

    first_t = min((parse_time(c["start"]) for c in sim.labels()["campaigns"]), default=None)
    first = format_time(first_t) if first_t is not None else "none"
    print(f"simulate: live run seed {cfg.seed}, {cfg.duration:.0f}s of event time at ~{cfg.rate:g} "
          f"events/s, {len(sim.labels()['campaigns'])} campaigns (first at {first}), "
          f"{backfill:.0f}s backfill -> {bootstrap}", file=sys.stderr, flush=True)
    mono0 = time.monotonic()
    wall0 = now
    progress = _Progress("simulate", every=10.0)
    interrupted = False
    failed_msg: str | None = None
    kinds: Counter[str] = Counter()
    try:
        for rec in sim.records():
            _pace(mono0 + (rec.ts_ms / 1000.0 - wall0))
            topic = topic_map.get(rec.topic, rec.topic)
            key = rec.key.encode() if rec.key is not None else None
            sender.send(topic, key, rec.payload.encode(), timestamp_ms=rec.ts_ms)
            kinds[rec.kind] += 1
            if tee is not None:
                tee.write(topic, rec.payload, ts_ms=rec.ts_ms, key=rec.key, partition=rec.partition)
            progress.tick(sender.sent)
    except KeyboardInterrupt:
        interrupted = True
    except KafkaError as exc:
        failed_msg = _describe_kafka_error(exc, bootstrap)
    finally:
        progress.done()
        if tee is not None:
            tee.close()
        try:
            sender.close()
        except KafkaError as exc:  # pragma: no cover - flush timeout
            failed_msg = failed_msg or _describe_kafka_error(exc, bootstrap)
    secs = time.monotonic() - mono0
    extra = ", ".join(f"{k}: {v:,}" for k, v in sorted(kinds.items()) if k != "event")
    print(f"simulate: {sender.delivered:,} records to Kafka at {bootstrap} "
          f"({_summary_topics(sender.per_topic)}{'; ' + extra if extra else ''}) in {secs:.1f}s"
          + (f", {sender.failed:,} failed" if sender.failed else "")
          + (f"; recording {out}" if out != "-" else "")
          + (f", labels {labels_path}" if labels_path else "")
          + (" (interrupted)" if interrupted else ""), flush=True)
    if failed_msg:
        _err("simulate", failed_msg)
        return 2
    if sender.failed:
        _err("simulate", f"{sender.failed:,} records not delivered; first error: {sender.first_error!r}")
        return 1
    return 130 if interrupted else 0

