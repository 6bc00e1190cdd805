"""The Faust application of the worker, configured from :class:`~streams.settings.Settings`.

Broker credentials come from the settings: ``SASL_PLAINTEXT`` / ``SASL_SSL``
become :class:`faust.SASLCredentials` (mechanism ``PLAIN``,
``SCRAM-SHA-256`` or ``SCRAM-SHA-512``), ``SSL`` becomes
:class:`faust.SSLCredentials`; TLS uses a default-verifying
:class:`ssl.SSLContext` with the configured CA file and optional client
certificate.

Choices that matter for correctness (see ``streams/agents.py``):

* ``store="memory://"``: the checkpoint table lives in memory and is rebuilt
  from its compacted changelog topic when partitions are assigned;
* ``stream_wait_empty=False``: the view agents hold acks until a checkpoint
  covers the events, so a rebalance must not wait for every delivered
  message to be acked; unacked events are simply delivered again and
  skipped by offset against the restored checkpoint;
* ``consumer_auto_offset_reset="earliest"``: a new consumer group starts at
  the beginning of the input topics, so nothing produced before the first
  start is missed;
* ``web_enabled=False``: metrics have their own exporter
  (:mod:`streams.metrics`), and several workers may share a host.
"""

from __future__ import annotations

import ssl
from pathlib import Path

import faust
from faust.types.auth import CredentialsT

from streams.settings import Settings

__all__ = ["create_app", "credentials", "ssl_context"]


def ssl_context(settings: Settings) -> ssl.SSLContext:
    """A client TLS context verifying the broker with ``ssl_cafile`` (or system CAs)."""
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=settings.ssl_cafile)
    if settings.ssl_certfile:
        ctx.load_cert_chain(settings.ssl_certfile, settings.ssl_keyfile)
    return ctx


def credentials(settings: Settings) -> CredentialsT | None:
    """Faust credentials for the configured security protocol (``None``: PLAINTEXT)."""
    proto = settings.security_protocol
    if proto == "PLAINTEXT":
        return None
    if proto == "SSL":
        return faust.SSLCredentials(ssl_context(settings))
    ctx = ssl_context(settings) if proto == "SASL_SSL" else None
    return faust.SASLCredentials(username=settings.sasl_username, password=settings.sasl_password,
                                 ssl_context=ctx, mechanism=settings.sasl_mechanism)


def create_app(settings: Settings) -> faust.App:
    """Build the (not yet started) Faust app; topics and agents are added by the caller."""
    brokers = [f"kafka://{s.strip()}" for s in settings.bootstrap_servers.split(",")]
    Path(settings.data_dir).mkdir(parents=True, exist_ok=True)
    return faust.App(
        settings.app_id,
        broker=brokers,
        broker_credentials=credentials(settings),
        store="memory://",
        datadir=settings.data_dir,
        autodiscover=False,
        web_enabled=False,
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
        # a few ms of linger batch the ~4 repartition records per input record
        # into one produce request instead of one request each
        producer_linger=0.005,
        # checkpoint chunks are at most agents.CHUNK_BYTES; leave headroom
        producer_max_request_size=1_000_000,
        table_standby_replicas=0,
    )
