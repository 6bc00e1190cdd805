"""The Kafka ACLs the worker needs, derived from its settings: least privilege.

:func:`worker_grants` is the one list of what a worker principal must be
allowed, on literal resource names (no prefixes, no wildcards): the worker's
pre-flight check (:func:`streams.worker.preflight`) compares it with what the
broker says the principal may do, ``likeguard acls`` prints it as
``kafka-acls.sh`` commands, and ``likeguard acls --apply`` (or
``deploy/kafka/acls.sh``) creates it with the Kafka admin API.

=================================  ======================  ===========================
resource                           operations              why
=================================  ======================  ===========================
topics ``payments_topic``,         Read                    the ingest consumes them
``likes_topic``
topic ``verdicts_topic``           Read, Create            the ingest consumes it;
                                   (+ Write with the       created when missing; the
                                   console)                review console produces it
topics ``<prefix>.<view>`` (5)     Read, Write, Create     repartition: produced and
                                                           consumed by the worker
topic ``<app_id>-checkpoints-      Read, Write, Create     engine checkpoints (written,
changelog``                                                read back on recovery)
topic ``<app_id>-__assignor-       Read, Create            Faust's leader election topic
__leader``
topics ``alerts_topic``,           Write, Create (+ Read   the worker's output; the
``deadletter_topic``               on the alerts with the  console reads the alerts
                                   console)                back
groups ``<app_id>``,               Read                    the view topics' and the
``<app_id>-ingest``                                        input topics' consumer groups
=================================  ======================  ===========================

Read and Write imply Describe in Kafka's authorizer, so Describe is not
granted separately. Nothing on the cluster resource: the worker's producers
are not idempotent or transactional (``processing_guarantee=at_least_once``)
and it reads or alters no configs. Create is on the worker's own topics only:
the pre-flight check creates them when missing, and Faust declares its
internal topics at every start (an existing topic is "already exists" only
to a principal allowed to create it; to another one, "not authorised").
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from streams.settings import Settings, SettingsError, add_worker_arguments

__all__ = ["Grant", "acl_objects", "worker_grants", "required_operations", "kafka_acls_commands",
           "apply_grants", "main", "leader_topic"]

#: Kafka's names of the operations used here (kafka-acls.sh spells them Read, ...)
OPERATIONS = ("READ", "WRITE", "CREATE", "DESCRIBE")
#: operations that imply DESCRIBE
_IMPLY_DESCRIBE = {"READ", "WRITE", "DELETE", "ALTER"}


@dataclass(frozen=True)
class Grant:
    """Allow ``operations`` on one literal ``resource`` (``topic`` or ``group``)."""

    resource: str
    name: str
    operations: tuple[str, ...]
    why: str
    #: the setting that names the resource (for messages)
    setting: str = ""


def leader_topic(settings: Settings) -> str:
    """Faust's leader-election topic of the app (``<app_id>-__assignor-__leader``)."""
    return f"{settings.app_id}-__assignor-__leader"


def worker_grants(settings: Settings) -> list[Grant]:
    """What a worker with these settings must be allowed (see the module docs)."""
    s = settings
    verdict_ops = ("READ", "WRITE", "CREATE") if s.console_port else ("READ", "CREATE")
    alert_ops = ("READ", "WRITE", "CREATE") if s.console_port else ("WRITE", "CREATE")
    grants = [
        Grant("topic", s.payments_topic, ("READ",), "input (the ingest consumes it)",
              "payments_topic"),
        Grant("topic", s.likes_topic, ("READ",), "input (the ingest consumes it)", "likes_topic"),
        Grant("topic", s.verdicts_topic, verdict_ops,
              "moderators' verdicts (consumed; created when missing"
              + ("; the review console produces them)" if s.console_port else ")"),
              "verdicts_topic"),
    ]
    for view in ("merchant", "ip", "device", "user", "lockstep"):
        grants.append(Grant("topic", s.view_topic(view), ("READ", "WRITE", "CREATE"),
                            "internal repartition topic", "view_topic_prefix"))
    grants += [
        Grant("topic", s.checkpoint_changelog, ("READ", "WRITE", "CREATE"),
              "engine checkpoints (written, read back on recovery)", "app_id"),
        Grant("topic", leader_topic(s), ("READ", "CREATE"), "Faust's leader election", "app_id"),
        Grant("topic", s.alerts_topic, alert_ops, "output: alerts"
              + ("; the review console reads them back" if s.console_port else ""),
              "alerts_topic"),
        Grant("topic", s.deadletter_topic, ("WRITE", "CREATE"), "output: rejected records",
              "deadletter_topic"),
        Grant("group", s.app_id, ("READ",), "consumer group of the view topics", "app_id"),
        Grant("group", f"{s.app_id}-ingest", ("READ",), "consumer group of the input topics",
              "app_id"),
    ]
    return grants


def required_operations(grant: Grant) -> set[str]:
    """The operations of ``grant`` with the ones they imply (DESCRIBE)."""
    ops = set(grant.operations)
    if ops & _IMPLY_DESCRIBE:
        ops.add("DESCRIBE")
    return ops


def _cli_op(op: str) -> str:
    return "".join(w.capitalize() for w in op.split("_"))


def kafka_acls_commands(grants: Iterable[Grant], principal: str,
                        bootstrap: str = "$BOOTSTRAP",
                        command_config: str | None = "$ADMIN_CONFIG") -> list[str]:
    """``kafka-acls.sh`` command lines creating ``grants`` for ``principal``:
    one per set of operations (kafka-acls adds every operation to every
    resource named on its command line).

    >>> s = Settings().with_values({"app_id": "lg"})
    >>> for part in kafka_acls_commands(worker_grants(s), "User:lg", "k1:9092", None)[-1] \\
    ...         .split(" --"):
    ...     print(part)
    kafka-acls.sh
    bootstrap-server k1:9092
    add
    allow-principal User:lg
    operation Read
    group lg
    group lg-ingest
    """
    by_ops: dict[tuple[str, tuple[str, ...]], list[str]] = {}
    for g in grants:
        by_ops.setdefault((g.resource, g.operations), []).append(g.name)
    out = []
    for (resource, ops), names in by_ops.items():
        words = ["kafka-acls.sh", "--bootstrap-server", bootstrap]
        if command_config:
            words += ["--command-config", command_config]
        words += ["--add", "--allow-principal", principal]
        for op in ops:
            words += ["--operation", _cli_op(op)]
        for name in names:
            words += [f"--{resource}", name]
        out.append(" ".join(w if w.startswith("$") else shlex.quote(w) for w in words))
    return out


def acl_objects(grants: Iterable[Grant], principal: str) -> list[Any]:
    """kafka-python ``ACL`` objects of ``grants`` for ``principal`` (to create, or
    as filters to delete)."""
    from kafka.admin import (
        ACL,
        ACLOperation,
        ACLPermissionType,
        ACLResourcePatternType,
        ResourcePattern,
        ResourceType,
    )

    acls = []
    for g in grants:
        pattern = ResourcePattern(ResourceType[g.resource.upper()], g.name,
                                  ACLResourcePatternType.LITERAL)
        for op in g.operations:
            acls.append(ACL(principal=principal, host="*", operation=ACLOperation[op],
                            permission_type=ACLPermissionType.ALLOW, resource_pattern=pattern))
    return acls


def apply_grants(admin_settings: Settings, principal: str, grants: Iterable[Grant]) -> int:
    """Create the ACLs of ``grants`` for ``principal`` with the Kafka admin API,
    connected as ``admin_settings`` say (a principal allowed to alter ACLs);
    return how many were created (existing ones count: creating is idempotent).

    Raises the first error the broker returned for one of them.
    """
    from kafka import KafkaAdminClient

    acls = acl_objects(grants, principal)
    admin = KafkaAdminClient(client_id="likeguard-acls", **admin_settings.kafka_python_kwargs())
    try:
        result = admin.create_acls(acls)
    finally:
        admin.close()
    if result["failed"]:
        raise result["failed"][0]
    return len(result["succeeded"])


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    p = parser or argparse.ArgumentParser(
        prog="python -m streams.acls",
        description="Print (or apply) the Kafka ACLs a worker with these settings needs.")
    p.add_argument("--principal", required=True,
                   help="the worker's principal, e.g. User:likeguard (SASL user name, or the "
                        "name a client certificate maps to)")
    p.add_argument("--apply", action="store_true",
                   help="create the ACLs with the admin API, connected with the "
                        "KAFKA_BOOTSTRAP_SERVERS / LIKEGUARD_SECURITY_* settings of the "
                        "environment (an admin's), instead of printing kafka-acls.sh commands")
    add_worker_arguments(p)
    return p


def run(args: argparse.Namespace) -> int:
    """``likeguard acls``: print the worker's ACLs as kafka-acls.sh commands, or apply them."""
    principal: str = args.principal
    if ":" not in principal:
        print(f"likeguard acls: error: --principal {principal!r} must be TYPE:NAME, "
              "e.g. User:likeguard", file=sys.stderr)
        return 2
    try:
        settings = Settings.from_args(args).validate_topics()
        grants = worker_grants(settings)
        if not args.apply:
            print(f"# the ACLs of worker app {settings.app_id} for {principal} "
                  "(docs/operations.md#access-control)")
            for line in kafka_acls_commands(grants, principal):
                print(line)
            return 0
        admin = Settings.connection_from_env(bootstrap_servers=args.bootstrap_servers)
        n = apply_grants(admin, principal, grants)
    except SettingsError as exc:
        print(f"likeguard acls: error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - kafka-python's errors, reported in one line
        print(f"likeguard acls: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(f"acls: {n} ACLs for {principal} on {len(grants)} resources of app "
          f"{settings.app_id} at {admin.bootstrap_servers}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run(build_parser().parse_args(argv))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
