#!/usr/bin/env bash
# The Kafka ACLs a likeguard worker needs (least privilege; docs/operations.md#access-control).
#
#   deploy/kafka/acls.sh print PRINCIPAL [worker flags]  # kafka-acls.sh commands, for any cluster
#   deploy/kafka/acls.sh apply PRINCIPAL [worker flags]  # create them on the broker of
#                                                        # deploy/kafka/kafka.sh, as its super user
#
# PRINCIPAL is the worker's, e.g. User:likeguard (its SASL user name, or the CN of its
# client certificate on the launcher's mutual-TLS listener). The topic names and the
# app id are the worker's settings: the same LIKEGUARD_* env vars (LIKEGUARD_APP_ID,
# LIKEGUARD_ALERTS_TOPIC, ..., LIKEGUARD_CONSOLE_PORT: the console writes verdicts) or
# flags (--app-id, --alerts-topic, ...) the worker is started with. The set itself
# is streams/acls.py's worker_grants(), which the worker's start-up check holds the
# broker's answer against.
#
# apply connects to KAFKA_ADMIN_BOOTSTRAP_SERVERS [the launcher's PLAINTEXT address,
# whose User:ANONYMOUS is a super user with KAFKA_AUTHORIZER=1] without the worker's
# LIKEGUARD_SECURITY_* / SASL / SSL settings. On another cluster use `print` and run
# the commands with an admin's --command-config, or `likeguard acls --apply` with an
# admin's connection settings in the environment.
#
# Environment: KAFKA_ADMIN_BOOTSTRAP_SERVERS, KAFKA_STATE_DIR (as kafka.sh),
# PYTHON [python3; needs likeguard's packages, e.g. .venv/bin/python].
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
PY="${PYTHON:-python3}"

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }

[[ $# -ge 2 ]] || usage
cmd="$1" principal="$2"
shift 2
case "$cmd" in
    print)
        exec env PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}" "$PY" -m streams.acls \
            --principal "$principal" "$@"
        ;;
    apply)
        boot="${KAFKA_ADMIN_BOOTSTRAP_SERVERS:-}"
        [[ -n "$boot" ]] || boot="$(bash "$HERE/kafka.sh" address)" \
            || { echo "acls.sh: no broker: start deploy/kafka/kafka.sh or set KAFKA_ADMIN_BOOTSTRAP_SERVERS" >&2; exit 2; }
        exec env -u LIKEGUARD_SECURITY_PROTOCOL -u LIKEGUARD_SASL_MECHANISM \
            -u LIKEGUARD_SASL_USERNAME -u LIKEGUARD_SASL_PASSWORD -u LIKEGUARD_SASL_PASSWORD_FILE \
            -u LIKEGUARD_SSL_CAFILE -u LIKEGUARD_SSL_CERTFILE -u LIKEGUARD_SSL_KEYFILE \
            -u LIKEGUARD_SSL_PASSWORD -u LIKEGUARD_SSL_PASSWORD_FILE \
            PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}" "$PY" -m streams.acls \
            --principal "$principal" --apply --bootstrap-servers "$boot" "$@"
        ;;
    *) usage ;;
esac
