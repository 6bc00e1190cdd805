"""The Faust application of the worker, configured from :class:`~streams.settings.Settings`.

Broker credentials come from the settings: ``SASL_PLAINTEXT`` / ``SASL_SSL``
become :class:`faust.SASLCredentials` (mechanism ``PLAIN``,
``SCRAM-SHA-256`` or ``SCRAM-SHA-512``), ``SSL`` becomes
:class:`faust.SSLCredentials`; TLS uses the settings' default-verifying
:class:`ssl.SSLContext` (:meth:`Settings.ssl_context`: the configured CA
file and, for mutual TLS, the client certificate). The ingest's aiokafka
consumer and the pre-flight's kafka-python admin get the same connection
from the same settings (:meth:`Settings.aiokafka_kwargs`,
:meth:`Settings.kafka_python_kwargs`).

Choices that matter for correctness (see ``docs/worker.md``):

* ``store="memory://"``: the checkpoint table lives in memory and is rebuilt
  from its compacted changelog topic when partitions are assigned;
* ``stream_wait_empty=False``: the view agents hold acks until a checkpoint
  covers the events, so a rebalance must not wait for every delivered
  message to be acked; unacked events are simply delivered again and
  skipped by offset against the restored checkpoint;
* ``consumer_auto_offset_reset="earliest"``: a new consumer group starts at
  the beginning of the input topics, so nothing produced before the first
  start is missed;
* the web server is off (metrics have their own exporter,
  :mod:`streams.metrics`, and several workers may share a host) unless the
  review console is configured (``console_port``, :mod:`streams.console`);
  then it listens on ``console_addr:console_port`` and serves the console
  alone: Faust's own pages (``/router``, ``/table``, statistics, graph,
  performance) are off, as they would show internal state without a token.

Faust's gap bookkeeping is off (:meth:`_Consumer._add_gap`): a jump in
fetched offsets of a view topic never lets a commit pass records that no
checkpoint covers.

And one for throughput: Faust builds its aiokafka consumer with a fixed
``fetch_max_wait_ms`` of 1,500. aiokafka keeps one fetch in flight per
broker and leaves out of it the partitions whose fetched records are still
buffered; when those are the busy ones (a worker catching up a backlog),
the fetch in flight asks only for quiet partitions and the broker holds it
the full wait, so the worker stalls for up to 1.5 s each time its buffers
run dry (measured: half of a backlog replay's wall time). :class:`LikeguardApp`
sets the wait from ``Settings.fetch_max_wait`` (default 0.1 s).
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import faust
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types.auth import CredentialsT
from faust.types.transports import TransportT

from streams.settings import Settings

__all__ = ["LikeguardApp", "aiokafka_security", "create_app", "credentials", "ssl_context",
           "web_settings"]

#: the largest request body the web server reads (a console verdict is < 1 KB)
MAX_REQUEST_BYTES = 64 * 1024


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        wait = getattr(self.app, "fetch_max_wait_ms", None)
        if wait is not None:
            # aiokafka reads it when the consumer starts (its fetcher is built then)
            if not hasattr(consumer, "_fetch_max_wait_ms"):
                raise RuntimeError("this aiokafka version keeps fetch_max_wait_ms elsewhere; "
                                   "streams.app cannot set it")
            consumer._fetch_max_wait_ms = wait
        return consumer


class _Consumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def _add_gap(self, tp: Any, offset_from: int, offset_to: int) -> None:
        """Never take a jump in fetched offsets for records that need no ack.

        Faust counts the offsets skipped between two fetched records as acked
        (meant for transaction markers and compacted topics), so its next
        commit passes them. The view topics have neither: their only jumps
        come after the view agents send the consumer back to a slot's next
        offset while a fetch from further on is in flight, and the records
        skipped are exactly the ones no checkpoint covers yet; committed, a
        crash would lose them.
        """
        return None


class _Transport(faust_aiokafka.Transport):
    Consumer = _Consumer


class LikeguardApp(faust.App):
    """A :class:`faust.App` whose Kafka consumer waits at most ``fetch_max_wait_ms``
    for a fetch (Faust fixes it at 1,500 ms; see the module docstring)."""

    fetch_max_wait_ms: int | None = None

    def _new_transport(self) -> TransportT:
        return _Transport(self.conf.broker_consumer, self)


def ssl_context(settings: Settings) -> ssl.SSLContext:
    """A client TLS context verifying the broker with ``ssl_cafile`` (or system
    CAs), with the client certificate when set (:meth:`Settings.ssl_context`)."""
    return settings.ssl_context()


def credentials(settings: Settings) -> CredentialsT | None:
    """Faust credentials for the configured security protocol (``None``: PLAINTEXT)."""
    proto = settings.security_protocol
    if proto == "PLAINTEXT":
        return None
    if proto == "SSL":
        return faust.SSLCredentials(ssl_context(settings))
    ctx = ssl_context(settings) if proto == "SASL_SSL" else None
    return faust.SASLCredentials(username=settings.sasl_username, password=settings.sasl_secret(),
                                 ssl_context=ctx, mechanism=settings.sasl_mechanism)


def aiokafka_security(settings: Settings) -> dict[str, Any]:
    """The same connection security as :func:`credentials`, as aiokafka client
    arguments (for the ingest's own consumer, :mod:`streams.ingest`)."""
    kw = settings.aiokafka_kwargs()
    del kw["bootstrap_servers"]  # the ingest passes them itself
    return kw


def web_settings(settings: Settings) -> dict[str, Any]:
    """The app's web server settings: off, or the console's address and port
    with Faust's own pages off."""
    if not settings.console_port:
        return {"web_enabled": False}
    return {
        "web_enabled": True,
        "web_bind": settings.console_addr,
        "web_host": settings.console_addr,
        "web_port": settings.console_port,
        "web_router_enabled": False,
        "web_tables_enabled": False,
        "web_stats_enabled": False,
        "web_graph_enabled": False,
        "web_metrics_enabled": False,
        "web_application_options": {"client_max_size": MAX_REQUEST_BYTES},
    }


def create_app(settings: Settings) -> faust.App:
    """Build the (not yet started) Faust app; topics and agents are added by the caller."""
    brokers = [f"kafka://{s.strip()}" for s in settings.bootstrap_servers.split(",")]
    Path(settings.data_dir).mkdir(parents=True, exist_ok=True)
    app = LikeguardApp(
        settings.app_id,
        broker=brokers,
        broker_credentials=credentials(settings),
        store="memory://",
        datadir=settings.data_dir,
        autodiscover=False,
        **web_settings(settings),
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        topic_allow_declare=True,
        consumer_auto_offset_reset="earliest",
        stream_wait_empty=False,
        broker_session_timeout=settings.session_timeout,
        broker_heartbeat_interval=settings.heartbeat_interval,
        broker_commit_interval=min(2.8, settings.checkpoint_interval),
        processing_guarantee="at_least_once",
        producer_acks=-1,
        # a few ms of linger gather the view bundles (and marks) of one ingest
        # batch into one produce request instead of one request each
        producer_linger=0.005,
        # checkpoint chunks are at most checkpoints.CHUNK_BYTES; leave headroom
        producer_max_request_size=1_000_000,
        table_standby_replicas=0,
    )
    app.fetch_max_wait_ms = max(1, round(settings.fetch_max_wait * 1000))
    return app
