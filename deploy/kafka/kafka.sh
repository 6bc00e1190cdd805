#!/usr/bin/env bash
# Single-node Apache Kafka (KRaft, broker+controller in one JVM) on loopback,
# run straight from the jars Maven fetches -- no Docker, no Kafka tarball.
#
#   deploy/kafka/kafka.sh fetch    # mvn-fetch the jars into the cache (no-op when cached)
#   deploy/kafka/kafka.sh start    # fetch if needed, format fresh storage, start, wait
#                                  # until a metadata request succeeds, print the
#                                  # bootstrap address (the only thing on stdout)
#   deploy/kafka/kafka.sh stop     # SIGTERM, wait, SIGKILL after KAFKA_STOP_TIMEOUT
#   deploy/kafka/kafka.sh status   # exit 0 healthy, 1 running but not answering, 3 stopped
#   deploy/kafka/kafka.sh address  # print the bootstrap address of the running broker
#
# Environment (defaults in brackets):
#   KAFKA_STATE_DIR        state dir: config, pid, log, data [$REPO/.cache/kafka/run]
#   KAFKA_LIBS_DIR         jar cache [$REPO/.cache/kafka/libs]
#   KAFKA_HOST             listen/advertise host [127.0.0.1]
#   KAFKA_PORT             PLAINTEXT port [19092]
#   KAFKA_CONTROLLER_PORT  KRaft controller port [19093]
#   KAFKA_SASL_PORT        if set: extra SASL_SSL listener (SCRAM-SHA-256) on this port;
#                          client settings are written to $KAFKA_STATE_DIR/sasl.env
#   KAFKA_SASL_USERNAME    [likeguard]   KAFKA_SASL_PASSWORD  [random, see sasl.env]
#   KAFKA_SSL_PORT         if set: extra SSL listener with mutual TLS (ssl.client.auth=required);
#                          a client certificate (CN=$KAFKA_SSL_CLIENT_CN, key encrypted with a
#                          random password) and settings are written to $KAFKA_STATE_DIR/ssl.env
#   KAFKA_SSL_CLIENT_CN    [$KAFKA_SASL_USERNAME or likeguard]: the certificate's principal
#                          is User:<CN> (ssl.principal.mapping.rules), the SCRAM user's name
#   KAFKA_AUTHORIZER=1     least privilege: the KRaft StandardAuthorizer with
#                          allow.everyone.if.no.acl.found=false; super users are the
#                          PLAINTEXT/controller listeners' User:ANONYMOUS (the loopback
#                          set-up door: broker, tests, deploy/kafka/acls.sh) and the SCRAM
#                          user $KAFKA_SASL_ADMIN_USERNAME [admin]; with KAFKA_SASL_PORT also a
#                          SCRAM user $KAFKA_SASL_LIMITED_USERNAME [likeguard-limited] with no
#                          ACLs of its own (passwords random, in sasl.env). Everyone else,
#                          the worker included, needs ACLs: deploy/kafka/acls.sh
#   KAFKA_HEAP_OPTS        [-Xms256m -Xmx768m]
#   KAFKA_EXTRA_PROPERTIES extra server.properties lines, appended verbatim
#   KAFKA_KEEP_DATA=1      reuse the formatted data dir instead of a fresh one
#   KAFKA_START_TIMEOUT    seconds to wait for readiness [120]
#   KAFKA_STOP_TIMEOUT     seconds between SIGTERM and SIGKILL [30]
#   KAFKA_WATCH_PID        if set: a watchdog stops the broker when this pid exits
#                          (the pytest fixture passes its own pid)
#   KAFKA_PROBE            readiness probe: auto (kcat if installed, else python), kcat, python
#   PYTHON                 python for the probe fallback [python3]; uses kafka-python
#                          when importable, else a raw Metadata request over a socket
#   JAVA_HOME / JAVA, MVN  tools [java, mvn]
set -euo pipefail

SCRIPT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"
HERE="$(dirname "$SCRIPT")"
REPO="$(cd "$HERE/../.." && pwd)"
POM="$HERE/pom.xml"

LIBS_DIR="${KAFKA_LIBS_DIR:-$REPO/.cache/kafka/libs}"
STATE_DIR="${KAFKA_STATE_DIR:-$REPO/.cache/kafka/run}"
HOST="${KAFKA_HOST:-127.0.0.1}"
PORT="${KAFKA_PORT:-19092}"
CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-19093}"
SASL_PORT="${KAFKA_SASL_PORT:-}"
SSL_PORT="${KAFKA_SSL_PORT:-}"
AUTHORIZER="${KAFKA_AUTHORIZER:-0}"
HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xms256m -Xmx768m}"
START_TIMEOUT="${KAFKA_START_TIMEOUT:-120}"
STOP_TIMEOUT="${KAFKA_STOP_TIMEOUT:-30}"
PROBE="${KAFKA_PROBE:-auto}"
PY="${PYTHON:-python3}"
MVN="${MVN:-mvn}"
if [[ -n "${JAVA:-}" ]]; then :
elif [[ -n "${JAVA_HOME:-}" && -x "$JAVA_HOME/bin/java" ]]; then JAVA="$JAVA_HOME/bin/java"
else JAVA=java; fi

PID_FILE="$STATE_DIR/kafka.pid"
WATCHDOG_PID_FILE="$STATE_DIR/watchdog.pid"
LOG_FILE="$STATE_DIR/kafka.log"
ADDR_FILE="$STATE_DIR/bootstrap"
DATA_DIR="$STATE_DIR/data"
PROPS="$STATE_DIR/server.properties"
LOG4J="$STATE_DIR/log4j.properties"

log() { printf 'kafka.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
now() { date +%s; }
ms() { local t="${EPOCHREALTIME/./}"; echo "${t:0:-3}"; }  # wall clock in milliseconds
secs_since() { local d=$(( $(ms) - $1 )); printf '%d.%01ds' $((d / 1000)) $(( (d % 1000) / 100 )); }

# ---------------------------------------------------------------- fetch

pom_hash() { sha256sum "$POM" | cut -d' ' -f1; }

libs_ready() {
    [[ -f "$LIBS_DIR/.fetched" && "$(cat "$LIBS_DIR/.fetched")" == "$(pom_hash)" ]] \
        && compgen -G "$LIBS_DIR/kafka_2.13-*.jar" >/dev/null
}

cmd_fetch() {
    if libs_ready; then log "jars already in $LIBS_DIR"; return 0; fi
    mkdir -p "$(dirname "$LIBS_DIR")"
    # Serialise concurrent fetches (e.g. several test sessions starting at once).
    exec 8>"$LIBS_DIR.lock"
    flock 8
    if libs_ready; then flock -u 8; log "jars already in $LIBS_DIR"; return 0; fi
    command -v "$MVN" >/dev/null || die "maven ('$MVN') not found; install it (apt-get install maven)"
    local tmp="$LIBS_DIR.tmp.$$" started
    started=$(now)
    rm -rf "$tmp"
    log "fetching Kafka jars with maven into $LIBS_DIR ..."
    if ! "$MVN" -B -q -Dstyle.color=never -f "$POM" \
            dependency:copy-dependencies -DoutputDirectory="$tmp" >&2; then
        rm -rf "$tmp"; die "maven could not fetch the jars (see output above)"
    fi
    compgen -G "$tmp/kafka_2.13-*.jar" >/dev/null || { rm -rf "$tmp"; die "no kafka_2.13 jar after fetch"; }
    pom_hash >"$tmp/.fetched"
    rm -rf "$LIBS_DIR"
    mv "$tmp" "$LIBS_DIR"
    flock -u 8
    log "fetched $(ls "$LIBS_DIR" | wc -l) jars in $(( $(now) - started ))s"
}

# ---------------------------------------------------------------- process helpers

# Pid of our broker if it is alive (and really is the kafka.Kafka JVM of this state dir).
broker_pid() {
    [[ -f "$PID_FILE" ]] || return 1
    local pid; pid="$(cat "$PID_FILE" 2>/dev/null)" || return 1
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    if [[ -r "/proc/$pid/cmdline" ]]; then
        tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF "kafka.Kafka $PROPS" || return 1
    fi
    echo "$pid"
}

current_address() {
    if [[ -f "$ADDR_FILE" ]]; then cat "$ADDR_FILE"; else echo "$HOST:$PORT"; fi
}

port_in_use() {  # host port
    (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

# ---------------------------------------------------------------- readiness probe

probe_python() {  # addr
    "$PY" - "$1" <<'PYEOF' >/dev/null 2>&1
import socket, struct, sys
host, port = sys.argv[1].rsplit(":", 1)
try:
    from kafka import KafkaAdminClient  # kafka-python: a real client bootstrap + metadata
except ImportError:
    KafkaAdminClient = None
if KafkaAdminClient is not None:
    # kafka-python 3.x: bootstrap_timeout_ms bounds a failed bootstrap (default 30 s).
    admin = KafkaAdminClient(bootstrap_servers=sys.argv[1], request_timeout_ms=5000,
                             bootstrap_timeout_ms=3000)
    try:
        ok = bool(admin.describe_cluster()["brokers"])
    finally:
        admin.close()
    sys.exit(0 if ok else 1)
# Fallback without kafka-python: MetadataRequest v0 over a raw socket.
client = b"kafka.sh-probe"
body = struct.pack(">hhih", 3, 0, 1, len(client)) + client + struct.pack(">i", 0)
with socket.create_connection((host, int(port)), timeout=5) as s:
    s.settimeout(5)
    s.sendall(struct.pack(">i", len(body)) + body)
    def read(n):
        buf = b""
        while len(buf) < n:
            chunk = s.recv(n - len(buf))
            if not chunk:
                raise EOFError
            buf += chunk
        return buf
    size, = struct.unpack(">i", read(4))
    resp = read(size)
corr, nbrokers = struct.unpack(">ii", resp[:8])
sys.exit(0 if corr == 1 and nbrokers >= 1 else 1)
PYEOF
}

probe_kcat() {  # addr
    local out
    out="$(kcat -b "$1" -L -m 3 2>/dev/null)" || return 1
    grep -qE '^ *[1-9][0-9]* brokers:' <<<"$out"
}

probe() {  # addr
    case "$PROBE" in
        kcat) probe_kcat "$1" ;;
        python) probe_python "$1" ;;
        auto) if command -v kcat >/dev/null; then probe_kcat "$1"; else probe_python "$1"; fi ;;
        *) die "KAFKA_PROBE must be auto, kcat or python" ;;
    esac
}

# ---------------------------------------------------------------- config

write_log4j() {
    cat >"$LOG4J" <<'EOF'
log4j.rootLogger=INFO, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.request.logger=WARN
log4j.logger.state.change.logger=WARN
log4j.logger.org.apache.kafka.clients=WARN
EOF
}

random_secret() { head -c16 /dev/urandom | od -An -tx1 | tr -d ' \n'; }

client_cn() { echo "${KAFKA_SSL_CLIENT_CN:-${KAFKA_SASL_USERNAME:-likeguard}}"; }

# throwaway CA + server cert (SAN 127.0.0.1/localhost/$HOST) in a PKCS12 keystore, and a
# client certificate (CN=$(client_cn)) for mutual TLS whose key is encrypted (client.pass)
make_tls() {
    local d="$STATE_DIR/tls" cn; cn="$(client_cn)"
    if [[ -f "$d/server.p12" && -f "$d/ca.pem" && -f "$d/store.pass" && -f "$d/client.pem" \
            && "$(cat "$d/host" 2>/dev/null)" == "$HOST" && "$(cat "$d/client.cn" 2>/dev/null)" == "$cn" ]]; then
        return 0
    fi
    command -v openssl >/dev/null || die "openssl is needed for KAFKA_SASL_PORT / KAFKA_SSL_PORT"
    rm -rf "$d"; mkdir -p "$d"; chmod 700 "$d"
    local san="IP:127.0.0.1,DNS:localhost"
    if [[ "$HOST" =~ ^[0-9.]+$ ]]; then [[ "$HOST" != 127.0.0.1 ]] && san="$san,IP:$HOST"
    elif [[ "$HOST" != localhost ]]; then san="$san,DNS:$HOST"; fi
    openssl rand -hex 16 >"$d/store.pass"
    (
        cd "$d"
        openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=likeguard-dev-ca" \
            -keyout ca.key -out ca.pem \
            -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
        openssl req -newkey rsa:2048 -nodes -subj "/CN=$HOST" -keyout server.key -out server.csr
        printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n' \
            "$san" >server.ext
        openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 3650 \
            -extfile server.ext -out server.pem
        openssl pkcs12 -export -name kafka -inkey server.key -in server.pem -certfile ca.pem \
            -passout "file:store.pass" -out server.p12
        echo "$HOST" >host
        random_secret >client.pass
        openssl req -newkey rsa:2048 -nodes -subj "/CN=$cn" -keyout client.plain.key -out client.csr
        printf 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n' \
            >client.ext
        openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 3650 \
            -extfile client.ext -out client.pem
        openssl pkcs8 -topk8 -v2 aes-256-cbc -in client.plain.key -passout "file:client.pass" \
            -out client.key
        rm -f client.plain.key
        echo "$cn" >client.cn
    ) >/dev/null 2>&1 || die "could not create the TLS keystore and client certificate in $d"
}

write_server_properties() {
    local listeners="PLAINTEXT://$HOST:$PORT,CONTROLLER://$HOST:$CONTROLLER_PORT"
    local advertised="PLAINTEXT://$HOST:$PORT"
    if [[ -n "$SASL_PORT" ]]; then
        listeners="$listeners,SASL_SSL://$HOST:$SASL_PORT"
        advertised="$advertised,SASL_SSL://$HOST:$SASL_PORT"
    fi
    if [[ -n "$SSL_PORT" ]]; then
        listeners="$listeners,SSL://$HOST:$SSL_PORT"
        advertised="$advertised,SSL://$HOST:$SSL_PORT"
    fi
    cat >"$PROPS" <<EOF
# Written by deploy/kafka/kafka.sh -- edits are overwritten on the next start.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@$HOST:$CONTROLLER_PORT
listeners=$listeners
advertised.listeners=$advertised
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL,SSL:SSL
log.dirs=$DATA_DIR
num.partitions=6
default.replication.factor=1
min.insync.replicas=1
auto.create.topics.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=6
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=6
group.initial.rebalance.delay.ms=0
EOF
    if [[ -n "$SASL_PORT" ]]; then
        cat >>"$PROPS" <<EOF
sasl.enabled.mechanisms=SCRAM-SHA-256
listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
EOF
    fi
    if [[ -n "$SSL_PORT" ]]; then
        # mutual TLS: a client must present a certificate signed by the CA; its
        # principal is User:<CN>, the name of the SCRAM user with the same ACLs
        cat >>"$PROPS" <<EOF
listener.name.ssl.ssl.client.auth=required
listener.name.ssl.ssl.truststore.type=PEM
listener.name.ssl.ssl.truststore.location=$STATE_DIR/tls/ca.pem
ssl.principal.mapping.rules=RULE:^CN=([^,]+)\$/\$1/,DEFAULT
EOF
    fi
    if [[ -n "$SASL_PORT" || -n "$SSL_PORT" ]]; then
        cat >>"$PROPS" <<EOF
ssl.keystore.type=PKCS12
ssl.keystore.location=$STATE_DIR/tls/server.p12
ssl.keystore.password=$(cat "$STATE_DIR/tls/store.pass")
ssl.key.password=$(cat "$STATE_DIR/tls/store.pass")
EOF
    fi
    if [[ "$AUTHORIZER" == 1 ]]; then
        cat >>"$PROPS" <<EOF
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
allow.everyone.if.no.acl.found=false
super.users=User:ANONYMOUS;User:${KAFKA_SASL_ADMIN_USERNAME:-admin}
EOF
    fi
    if [[ -n "${KAFKA_EXTRA_PROPERTIES:-}" ]]; then
        printf '%s\n' "$KAFKA_EXTRA_PROPERTIES" >>"$PROPS"
    fi
}

new_cluster_id() {  # Kafka's own format: 16 random bytes, URL-safe base64, no padding
    local id
    while :; do
        id="$(head -c16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
        [[ "$id" != -* ]] && { echo "$id"; return; }
    done
}

# ---------------------------------------------------------------- start / stop

start_watchdog() {
    local watch="$1" broker="$2"
    [[ "$watch" =~ ^[0-9]+$ ]] || die "KAFKA_WATCH_PID must be a pid"
    # Stops the broker if the watched process dies without stopping it (e.g. pytest killed).
    KAFKA_FROM_WATCHDOG=1 setsid nohup bash -c '
        while kill -0 "$1" 2>/dev/null && kill -0 "$2" 2>/dev/null; do sleep 1; done
        if kill -0 "$2" 2>/dev/null; then exec "$3" stop; fi
    ' kafka-watchdog "$watch" "$broker" "$SCRIPT" </dev/null >>"$STATE_DIR/watchdog.log" 2>&1 8>&- 9>&- &
    echo $! >"$WATCHDOG_PID_FILE"
}

cmd_start() {
    command -v "$JAVA" >/dev/null || die "java ('$JAVA') not found; Kafka 3.9 needs Java 11+ (17 recommended)"
    mkdir -p "$STATE_DIR"
    exec 9>"$STATE_DIR/.lock"
    flock 9
    local pid addr
    if pid="$(broker_pid)"; then
        addr="$(current_address)"
        if wait_ready "$pid" "$addr"; then
            log "already running (pid $pid)"
            echo "$addr"; return 0
        fi
        die "broker pid $pid is running but not answering on $addr; see $LOG_FILE (try: $0 stop)"
    fi
    rm -f "$PID_FILE"
    addr="$HOST:$PORT"
    local p
    [[ "$AUTHORIZER" == 0 || "$AUTHORIZER" == 1 ]] || die "KAFKA_AUTHORIZER must be 0 or 1"
    for p in "$PORT" "$CONTROLLER_PORT" ${SASL_PORT:+"$SASL_PORT"} ${SSL_PORT:+"$SSL_PORT"}; do
        if port_in_use "$HOST" "$p"; then die "port $HOST:$p is already in use by another process"; fi
    done

    cmd_fetch
    local cp="$LIBS_DIR/*"
    write_log4j
    if [[ -n "$SASL_PORT" || -n "$SSL_PORT" ]]; then make_tls; fi
    write_server_properties

    local -a scram=()
    if [[ -n "$SASL_PORT" ]]; then
        local user="${KAFKA_SASL_USERNAME:-likeguard}" pass="${KAFKA_SASL_PASSWORD:-}"
        [[ -n "$pass" ]] || pass="$(head -c12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
        scram=(--add-scram "SCRAM-SHA-256=[name=$user,password=$pass]")
        ( umask 077; cat >"$STATE_DIR/sasl.env" <<EOF
KAFKA_SASL_BOOTSTRAP_SERVERS=$HOST:$SASL_PORT
KAFKA_SECURITY_PROTOCOL=SASL_SSL
KAFKA_SASL_MECHANISM=SCRAM-SHA-256
KAFKA_SASL_USERNAME=$user
KAFKA_SASL_PASSWORD=$pass
KAFKA_SSL_CAFILE=$STATE_DIR/tls/ca.pem
EOF
        )
        if [[ "$AUTHORIZER" == 1 ]]; then
            local admin="${KAFKA_SASL_ADMIN_USERNAME:-admin}" admin_pass limited limited_pass
            limited="${KAFKA_SASL_LIMITED_USERNAME:-likeguard-limited}"
            admin_pass="$(random_secret)"; limited_pass="$(random_secret)"
            scram+=(--add-scram "SCRAM-SHA-256=[name=$admin,password=$admin_pass]"
                    --add-scram "SCRAM-SHA-256=[name=$limited,password=$limited_pass]")
            cat >>"$STATE_DIR/sasl.env" <<EOF
KAFKA_SASL_ADMIN_USERNAME=$admin
KAFKA_SASL_ADMIN_PASSWORD=$admin_pass
KAFKA_SASL_LIMITED_USERNAME=$limited
KAFKA_SASL_LIMITED_PASSWORD=$limited_pass
EOF
        fi
        chmod 600 "$STATE_DIR/sasl.env"
    fi
    if [[ -n "$SSL_PORT" ]]; then
        ( umask 077; cat >"$STATE_DIR/ssl.env" <<EOF
KAFKA_SSL_BOOTSTRAP_SERVERS=$HOST:$SSL_PORT
KAFKA_SSL_CAFILE=$STATE_DIR/tls/ca.pem
KAFKA_SSL_CERTFILE=$STATE_DIR/tls/client.pem
KAFKA_SSL_KEYFILE=$STATE_DIR/tls/client.key
KAFKA_SSL_KEY_PASSWORD_FILE=$STATE_DIR/tls/client.pass
KAFKA_SSL_PRINCIPAL=User:$(client_cn)
EOF
        )
    fi

    if [[ "${KAFKA_KEEP_DATA:-0}" == 1 && -f "$DATA_DIR/meta.properties" ]]; then
        log "reusing formatted data in $DATA_DIR"
        ((${#scram[@]})) && log "warning: KAFKA_KEEP_DATA=1 keeps the SCRAM users from the first format"
    else
        rm -rf "$DATA_DIR"
        local cid t_format; cid="$(new_cluster_id)"; t_format=$(ms)
        "$JAVA" -cp "$cp" -Dlog4j.configuration="file:$LOG4J" kafka.tools.StorageTool format \
            -t "$cid" -c "$PROPS" "${scram[@]}" >"$STATE_DIR/format.log" 2>&1 \
            || { cat "$STATE_DIR/format.log" >&2; die "kafka-storage format failed"; }
        log "formatted $DATA_DIR (cluster id $cid) in $(secs_since "$t_format")"
    fi

    local started; started=$(ms)
    : >"$LOG_FILE"
    # setsid: own session, so a Ctrl-C in the calling shell does not kill the broker.
    # shellcheck disable=SC2086
    setsid nohup "$JAVA" $HEAP_OPTS -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:+ExitOnOutOfMemoryError \
        -Djava.awt.headless=true -Dlog4j.configuration="file:$LOG4J" \
        -cp "$cp" kafka.Kafka "$PROPS" </dev/null >>"$LOG_FILE" 2>&1 8>&- 9>&- &
    pid=$!
    echo "$pid" >"$PID_FILE"
    echo "$addr" >"$ADDR_FILE"
    [[ -n "${KAFKA_WATCH_PID:-}" ]] && start_watchdog "$KAFKA_WATCH_PID" "$pid"

    if ! wait_ready "$pid" "$addr"; then
        log "broker failed to start; last lines of $LOG_FILE:"
        tail -n 40 "$LOG_FILE" >&2 || true
        stop_pid "$pid"
        rm -f "$PID_FILE"
        exit 1
    fi
    log "ready on $addr (pid $pid, ${HEAP_OPTS}) $(secs_since "$started") after launch; log: $LOG_FILE"
    [[ -n "$SASL_PORT" ]] && log "SASL_SSL/SCRAM-SHA-256 on $HOST:$SASL_PORT; client settings in $STATE_DIR/sasl.env"
    [[ -n "$SSL_PORT" ]] && log "SSL with client certificates on $HOST:$SSL_PORT; client settings in $STATE_DIR/ssl.env"
    [[ "$AUTHORIZER" == 1 ]] && log "StandardAuthorizer on: clients other than the super users need ACLs (deploy/kafka/acls.sh)"
    echo "$addr"
}

wait_ready() {  # pid addr
    local deadline=$(( $(now) + START_TIMEOUT ))
    while :; do
        kill -0 "$1" 2>/dev/null || { log "broker process $1 exited"; return 2; }
        # Cheap TCP connect first; then a real metadata request (an open port is not enough).
        if port_in_use "${2%:*}" "${2##*:}" && probe "$2"; then return 0; fi
        (( $(now) < deadline )) || { log "no metadata response within ${START_TIMEOUT}s"; return 1; }
        sleep 0.2
    done
}

stop_pid() {  # pid
    local pid="$1" deadline
    kill -TERM "$pid" 2>/dev/null || return 0
    deadline=$(( $(now) + STOP_TIMEOUT ))
    while kill -0 "$pid" 2>/dev/null; do
        if (( $(now) >= deadline )); then
            log "pid $pid still alive after ${STOP_TIMEOUT}s; sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
            while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
            return 0
        fi
        sleep 0.1
    done
}

stop_watchdog() {
    [[ "${KAFKA_FROM_WATCHDOG:-0}" == 1 ]] && return 0
    if [[ -f "$WATCHDOG_PID_FILE" ]]; then
        local w; w="$(cat "$WATCHDOG_PID_FILE")"
        if [[ "$w" =~ ^[0-9]+$ ]] && [[ -r "/proc/$w/cmdline" ]] \
                && tr '\0' ' ' <"/proc/$w/cmdline" | grep -qF kafka-watchdog; then
            kill -TERM "$w" 2>/dev/null || true
        fi
        rm -f "$WATCHDOG_PID_FILE"
    fi
}

cmd_stop() {
    [[ -d "$STATE_DIR" ]] || { log "not running (no state dir $STATE_DIR)"; return 0; }
    local pid
    stop_watchdog
    if pid="$(broker_pid)"; then
        local t0; t0=$(now)
        stop_pid "$pid"
        log "stopped pid $pid in $(( $(now) - t0 ))s"
    else
        log "not running"
    fi
    rm -f "$PID_FILE"
}

cmd_status() {
    local pid addr
    if ! pid="$(broker_pid)"; then echo "stopped"; return 3; fi
    addr="$(current_address)"
    if probe "$addr"; then echo "running pid=$pid bootstrap=$addr"; return 0; fi
    echo "running pid=$pid bootstrap=$addr (not answering metadata requests)"; return 1
}

cmd_address() {
    broker_pid >/dev/null || die "not running"
    current_address
}

case "${1:-}" in
    fetch) cmd_fetch ;;
    start) cmd_start ;;
    stop) cmd_stop ;;
    restart) cmd_stop; cmd_start ;;
    status) cmd_status ;;
    address) cmd_address ;;
    -h|--help|help) sed -n '2,/^set -euo/p' "$SCRIPT" | sed '$d; s/^# \{0,1\}//' ;;
    *) echo "usage: $0 {fetch|start|stop|restart|status|address|help}" >&2; exit 2 ;;
esac
