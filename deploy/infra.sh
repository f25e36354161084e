#!/usr/bin/env bash
# Local infrastructure without Docker: a private PostgreSQL cluster and a
# single-node KRaft Kafka broker, both bound to 127.0.0.1, state in .local/.
#
# Usage: deploy/infra.sh <command>
#   up             start PostgreSQL + Kafka (idempotent), create databases and topics
#   down           stop Kafka and PostgreSQL
#   status         print what runs (exit 0 if both run, 3 otherwise)
#   env            print `export` lines for PG_ADMIN_DSN and KAFKA_BOOTSTRAP
#   topics         print "<topic> <partitions>" for each topic `up` creates
#   databases      print the databases `up` creates
#                  (both lists come from deploy/services.toml)
#   start-pg | stop-pg | kill-pg                (kill-pg = immediate shutdown, like a crash)
#   start-kafka | stop-kafka | restart-kafka | kill-kafka   (kill-kafka = SIGKILL)
#
# Environment:
#   LOCAL_PG_PORT     PostgreSQL port (default 54329)
#   LOCAL_PG_DIR      state folder of the PostgreSQL cluster (default .local/pg); with another
#                     port, a second private server for tests that stop and restart it
#   LOCAL_KAFKA_PORT  Kafka PLAINTEXT port (default 59092); controller = port + 1
#   LOCAL_KAFKA_DIR   state folder of the broker (default .local/kafka); with another port,
#                     a second private broker for tests that stop and start it
#   KAFKA_HEAP        broker heap options (default "-Xms256m -Xmx512m")
#   INFRA_WAIT        seconds to wait for a service to come up (default 60)
#
# Prerequisites (Debian): postgresql-15 (or any postgresql-NN), openjdk-17-jre-headless,
# maven, python3 (>= 3.11, for tomllib); kcat optional (faster readiness checks).
set -Eeuo pipefail

SCRIPT_DIR="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"
REPO_ROOT="$(cd -- "$SCRIPT_DIR/.." && pwd -P)"
LOCAL_DIR="$REPO_ROOT/.local"
SERVICES_TOML="$SCRIPT_DIR/services.toml"

HOST=127.0.0.1
PG_PORT="${LOCAL_PG_PORT:-54329}"
KAFKA_PORT="${LOCAL_KAFKA_PORT:-59092}"
CONTROLLER_PORT=$((KAFKA_PORT + 1))
KAFKA_HEAP="${KAFKA_HEAP:-${KAFKA_HEAP_OPTS:--Xms256m -Xmx512m}}"
WAIT_SECS="${INFRA_WAIT:-60}"

# LOCAL_PG_DIR runs a second, private PostgreSQL (own data directory), like LOCAL_KAFKA_DIR.
PG_DIR="${LOCAL_PG_DIR:-$LOCAL_DIR/pg}"
PG_DATA="$PG_DIR/data"
PG_SOCK_DIR="$PG_DIR/run"
PG_LOG="$PG_DIR/postgres.log"
PG_OS_USER=postgres

# LOCAL_KAFKA_DIR runs a second, private broker (own state; the jars stay shared), e.g. for a
# test that stops its broker without disturbing anyone else's.
KAFKA_DIR="${LOCAL_KAFKA_DIR:-$LOCAL_DIR/kafka}"
KAFKA_LIBS="$LOCAL_DIR/kafka/libs"
KAFKA_DATA="$KAFKA_DIR/data"
KAFKA_PID="$KAFKA_DIR/kafka.pid"
KAFKA_LOG="$KAFKA_DIR/kafka.log"
KAFKA_PROPS="$KAFKA_DIR/server.properties"
KAFKA_TOOLS_LOG4J="$KAFKA_DIR/tools-log4j.properties"
KAFKA_POM="$SCRIPT_DIR/kafka/pom.xml"
KAFKA_TEMPLATE="$SCRIPT_DIR/kafka/server.properties.template"
KAFKA_LOG4J="$SCRIPT_DIR/kafka/log4j.properties"
M2_REPO="$LOCAL_DIR/m2"

log() { printf '[infra] %s\n' "$*" >&2; }
die() { printf '[infra] ERROR: %s\n' "$*" >&2; exit 1; }
is_root() { [[ $(id -u) -eq 0 ]]; }

# ---------------------------------------------------------------- prerequisites

need_cmd() { # need_cmd <command> <debian package>
    command -v "$1" >/dev/null 2>&1 || die "'$1' not found. Install it: apt-get install -y $2"
}

PG_BIN=""
find_pg_bin() {
    [[ -n "$PG_BIN" ]] && return 0
    local d=""
    if command -v pg_config >/dev/null 2>&1; then
        d="$(pg_config --bindir 2>/dev/null || true)"
    fi
    if [[ -z "$d" || ! -x "$d/initdb" || ! -x "$d/postgres" ]]; then
        d="$(printf '%s\n' /usr/lib/postgresql/*/bin | grep -v '\*' | sort -V | tail -n1 || true)"
    fi
    [[ -n "$d" && -x "$d/initdb" && -x "$d/postgres" && -x "$d/pg_ctl" ]] ||
        die "PostgreSQL server binaries (initdb, postgres, pg_ctl) not found. Install them: apt-get install -y postgresql-15"
    PG_BIN="$d"
}

need_python() {
    command -v python3 >/dev/null 2>&1 || die "'python3' not found. Install it: apt-get install -y python3 (>= 3.11)"
    python3 -c 'import tomllib' 2>/dev/null || die "python3 >= 3.11 is required (tomllib) to read $SERVICES_TOML"
}

need_java() {
    need_cmd java openjdk-17-jre-headless
    local v
    v="$(java -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p' | head -n1)"
    [[ "${v%%.*}" =~ ^[0-9]+$ && "${v%%.*}" -ge 11 ]] ||
        die "Java >= 11 is required for Kafka 3.9 (found '${v:-unknown}'). Install it: apt-get install -y openjdk-17-jre-headless"
}

# ----------------------------------------------------------------- small helpers

port_open() { # port_open <port>: something accepts TCP connections on 127.0.0.1:<port>
    (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null
}

show_log_tail() { # show_log_tail <file>
    if [[ -f "$1" ]]; then
        printf '[infra] ---- last 40 lines of %s ----\n' "$1" >&2
        tail -n 40 "$1" >&2 || true
        printf '[infra] ----\n' >&2
    fi
}

# Serialise concurrent invocations (parallel test sessions calling `up`).
# Long-lived children (postgres, the broker) are started with 9>&- so they
# do not keep holding the lock.
take_lock() {
    mkdir -p "$LOCAL_DIR"
    exec 9>"$LOCAL_DIR/infra.lock"
    if command -v flock >/dev/null 2>&1; then
        flock -w 300 9 || die "could not acquire $LOCAL_DIR/infra.lock within 300 s"
    fi
}

read_topology() { # prints "partitions <n>", "topic <name>" and "database <name>" lines
    need_python
    python3 - "$SERVICES_TOML" <<'PY'
import sys, tomllib
with open(sys.argv[1], "rb") as f:
    cfg = tomllib.load(f)
print("partitions", int(cfg["kafka"]["partitions"]))
for t in cfg["kafka"]["topics"]:
    print("topic", t)
for svc in cfg["services"].values():
    if svc.get("database"):
        print("database", svc["database"])
PY
}

TOPOLOGY_LOADED=""
PARTITIONS=""
TOPICS=()
PG_DATABASES=()
load_topology() {
    [[ -n "$TOPOLOGY_LOADED" ]] && return 0
    local out kind name
    out="$(read_topology)" || die "could not read $SERVICES_TOML"
    while read -r kind name; do
        case "$kind" in
            partitions) PARTITIONS="$name" ;;
            topic) TOPICS+=("$name") ;;
            database) PG_DATABASES+=("$name") ;;
        esac
    done <<<"$out"
    [[ -n "$PARTITIONS" && ${#TOPICS[@]} -gt 0 && ${#PG_DATABASES[@]} -gt 0 ]] ||
        die "$SERVICES_TOML lacks [kafka] partitions/topics or service databases"
    TOPOLOGY_LOADED=1
}

# --------------------------------------------------------------------- PostgreSQL

as_pg_user() {
    if is_root; then
        runuser -u "$PG_OS_USER" -- "$@"
    else
        "$@"
    fi
}

pg_prepare_user() {
    is_root || return 0
    if ! id -u "$PG_OS_USER" >/dev/null 2>&1; then
        log "creating OS user '$PG_OS_USER' (initdb/postgres refuse to run as root)"
        useradd --system --user-group --home-dir /var/lib/postgresql --no-create-home \
            --shell /bin/bash "$PG_OS_USER" || die "could not create OS user '$PG_OS_USER'"
    fi
    mkdir -p "$PG_DIR"
    chown -R "$PG_OS_USER:" "$PG_DIR"
    runuser -u "$PG_OS_USER" -- test -w "$PG_DIR" ||
        die "OS user '$PG_OS_USER' cannot write $PG_DIR (a parent directory is not searchable by it?)"
}

pg_running() {
    find_pg_bin
    [[ -f "$PG_DATA/PG_VERSION" ]] || return 1
    as_pg_user "$PG_BIN/pg_ctl" -D "$PG_DATA" status >/dev/null 2>&1
}

pg_write_conf() {
    # Regenerated on every start so LOCAL_PG_PORT overrides take effect.
    local sock="$PG_SOCK_DIR"
    if (( ${#sock} > 90 )); then
        log "socket dir path too long for a unix socket; using TCP only"
        sock=""
    fi
    cat >"$PG_DATA/infra.conf" <<EOF
# Written by deploy/infra.sh on every start; edits are overwritten.
listen_addresses = '$HOST'
port = $PG_PORT
unix_socket_directories = '$sock'
max_connections = 400
shared_buffers = 256MB
logging_collector = off
log_min_messages = warning
log_line_prefix = '%m [%p] %q%u@%d '
EOF
    if is_root; then chown "$PG_OS_USER:" "$PG_DATA/infra.conf"; fi
}

pg_init() {
    [[ -f "$PG_DATA/PG_VERSION" ]] && return 0
    log "initialising PostgreSQL cluster in $PG_DATA"
    rm -rf "$PG_DATA"
    mkdir -p "$PG_DATA"
    if is_root; then chown "$PG_OS_USER:" "$PG_DATA"; fi
    chmod 700 "$PG_DATA"
    as_pg_user "$PG_BIN/initdb" -D "$PG_DATA" -U postgres --auth=trust \
        --encoding=UTF8 --no-locale >"$PG_DIR/initdb.log" 2>&1 || {
        show_log_tail "$PG_DIR/initdb.log"
        rm -rf "$PG_DATA"
        die "initdb failed"
    }
    printf "\n# Local settings managed by deploy/infra.sh\ninclude = 'infra.conf'\n" >>"$PG_DATA/postgresql.conf"
}

pg_wait_ready() {
    local deadline=$((SECONDS + WAIT_SECS))
    until "$PG_BIN/pg_isready" -q -h "$HOST" -p "$PG_PORT" -U postgres -d postgres; do
        if (( SECONDS >= deadline )); then
            show_log_tail "$PG_LOG"
            die "PostgreSQL did not accept connections on $HOST:$PG_PORT within ${WAIT_SECS}s (log: $PG_LOG)"
        fi
        sleep 0.5
    done
}

pg_ensure_databases() {
    load_topology
    local db psql=("$PG_BIN/psql" -X -q -h "$HOST" -p "$PG_PORT" -U postgres -d postgres -v ON_ERROR_STOP=1)
    for db in "${PG_DATABASES[@]}"; do
        if [[ "$("${psql[@]}" -tAc "SELECT 1 FROM pg_database WHERE datname = '$db'")" != 1 ]]; then
            log "creating database $db"
            "${psql[@]}" -c "CREATE DATABASE \"$db\"" >/dev/null
        fi
    done
}

pg_start() {
    find_pg_bin
    pg_prepare_user
    mkdir -p "$PG_SOCK_DIR"
    if is_root; then chown "$PG_OS_USER:" "$PG_SOCK_DIR"; fi
    if pg_running; then
        log "PostgreSQL already running (port $PG_PORT)"
    else
        if port_open "$PG_PORT"; then
            die "port $HOST:$PG_PORT is already in use by another process; set LOCAL_PG_PORT to a free port"
        fi
        pg_init
        pg_write_conf
        log "starting PostgreSQL ($PG_BIN) on $HOST:$PG_PORT"
        touch "$PG_LOG"
        if is_root; then chown "$PG_OS_USER:" "$PG_LOG"; fi
        # 9>&-: the server must not inherit the lock file descriptor.
        as_pg_user "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_LOG" -w -t "$WAIT_SECS" start >/dev/null 2>&1 9>&- || {
            show_log_tail "$PG_LOG"
            die "PostgreSQL failed to start (log: $PG_LOG)"
        }
    fi
    pg_wait_ready
    pg_ensure_databases
}

pg_stop() { # pg_stop [fast|immediate]
    local mode="${1:-fast}"
    find_pg_bin
    if ! pg_running; then
        log "PostgreSQL not running"
        return 0
    fi
    log "stopping PostgreSQL (-m $mode)"
    as_pg_user "$PG_BIN/pg_ctl" -D "$PG_DATA" -m "$mode" -w -t "$WAIT_SECS" stop >/dev/null ||
        die "pg_ctl stop failed (log: $PG_LOG)"
}

# -------------------------------------------------------------------------- Kafka

kafka_pid() { # prints the broker pid if it runs
    [[ -f "$KAFKA_PID" ]] || return 1
    local pid
    pid="$(cat "$KAFKA_PID" 2>/dev/null || true)"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    # Guard against pid reuse: it must be our broker.
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q 'kafka\.Kafka' || return 1
    echo "$pid"
}

kafka_libs() {
    local stamp="$KAFKA_LIBS/.pom.sha256" want
    want="$(sha256sum "$KAFKA_POM" | cut -d' ' -f1)"
    if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]] && compgen -G "$KAFKA_LIBS/kafka_2.13-*.jar" >/dev/null; then
        return 0
    fi
    need_cmd mvn maven
    log "resolving Kafka jars with Maven (first run only; cache: $M2_REPO)"
    local tmp="$KAFKA_LIBS.tmp"
    mkdir -p "$KAFKA_DIR"
    rm -rf "$tmp"
    mkdir -p "$tmp"
    # Maven is silent for minutes on a first run (it fetches its plugins and ~100 jars): the full
    # log goes to mvn.log and a line every 10 downloaded files shows it is moving.
    mvn -B -f "$KAFKA_POM" -Dmaven.repo.local="$M2_REPO" \
        dependency:copy-dependencies -DoutputDirectory="$tmp" 2>&1 | tee "$KAFKA_DIR/mvn.log" |
        awk '/Downloaded from/ { n++; if (n % 10 == 0) { printf "[infra] Maven: %d files downloaded\n", n > "/dev/stderr"; fflush("/dev/stderr") } }' || {
        show_log_tail "$KAFKA_DIR/mvn.log"
        rm -rf "$tmp"
        die "Maven could not resolve the Kafka jars (is Maven Central reachable?)"
    }
    echo "$want" >"$tmp/.pom.sha256"
    rm -rf "$KAFKA_LIBS"
    mv "$tmp" "$KAFKA_LIBS"
}

kafka_tool() { # kafka_tool <main class> <args...>: short-lived JVM for admin tools
    java -Xms32m -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Djava.awt.headless=true \
        -Dlog4j.configuration="file:$KAFKA_TOOLS_LOG4J" -cp "$KAFKA_LIBS/*" "$@"
}

kafka_render_config() {
    local partitions="$1"
    mkdir -p "$KAFKA_DATA"
    sed -e "s|@HOST@|$HOST|g" -e "s|@KAFKA_PORT@|$KAFKA_PORT|g" \
        -e "s|@CONTROLLER_PORT@|$CONTROLLER_PORT|g" -e "s|@DATA_DIR@|$KAFKA_DATA|g" \
        -e "s|@PARTITIONS@|$partitions|g" "$KAFKA_TEMPLATE" >"$KAFKA_PROPS.tmp"
    mv "$KAFKA_PROPS.tmp" "$KAFKA_PROPS"
    cat >"$KAFKA_TOOLS_LOG4J" <<'EOF'
log4j.rootLogger=WARN, stderr
log4j.appender.stderr=org.apache.log4j.ConsoleAppender
log4j.appender.stderr.Target=System.err
log4j.appender.stderr.layout=org.apache.log4j.PatternLayout
log4j.appender.stderr.layout.ConversionPattern=[%d] %p %m (%c)%n
EOF
}

kafka_format() {
    [[ -f "$KAFKA_DATA/meta.properties" ]] && return 0
    local cid
    if [[ -s "$KAFKA_DIR/cluster.id" ]]; then
        cid="$(cat "$KAFKA_DIR/cluster.id")"
    else
        cid="$(kafka_tool kafka.tools.StorageTool random-uuid 2>>"$KAFKA_LOG" | tail -n1)"
        [[ -n "$cid" ]] || die "could not generate a Kafka cluster id (see $KAFKA_LOG)"
        echo "$cid" >"$KAFKA_DIR/cluster.id"
    fi
    log "formatting Kafka storage in $KAFKA_DATA (cluster id $cid)"
    kafka_tool kafka.tools.StorageTool format -t "$cid" -c "$KAFKA_PROPS" --ignore-formatted \
        >>"$KAFKA_LOG" 2>&1 || { show_log_tail "$KAFKA_LOG"; die "Kafka storage format failed"; }
}

kafka_answers() {
    if command -v kcat >/dev/null 2>&1; then
        kcat -b "$HOST:$KAFKA_PORT" -L -m 3 >/dev/null 2>&1
    else
        port_open "$KAFKA_PORT" &&
            kafka_tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$HOST:$KAFKA_PORT" --list >/dev/null 2>&1
    fi
}

kafka_wait_ready() {
    local deadline=$((SECONDS + WAIT_SECS))
    until kafka_answers; do
        if ! kafka_pid >/dev/null; then
            show_log_tail "$KAFKA_LOG"
            die "Kafka exited during startup (log: $KAFKA_LOG)"
        fi
        if (( SECONDS >= deadline )); then
            show_log_tail "$KAFKA_LOG"
            die "Kafka did not answer on $HOST:$KAFKA_PORT within ${WAIT_SECS}s (log: $KAFKA_LOG)"
        fi
        sleep 1
    done
}

kafka_existing_topics() {
    if command -v kcat >/dev/null 2>&1; then
        kcat -b "$HOST:$KAFKA_PORT" -L -m 10 2>/dev/null | sed -n 's/^ *topic "\([^"]*\)" with .*/\1/p'
    else
        kafka_tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$HOST:$KAFKA_PORT" --list
    fi
}

kafka_ensure_topics() {
    local partitions="$1"; shift
    local existing t
    existing="$(kafka_existing_topics || true)"
    for t in "$@"; do
        if grep -qxF -- "$t" <<<"$existing"; then
            continue
        fi
        log "creating topic $t ($partitions partitions)"
        kafka_tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$HOST:$KAFKA_PORT" \
            --create --if-not-exists --topic "$t" --partitions "$partitions" --replication-factor 1 \
            >/dev/null 2>>"$KAFKA_LOG" || { show_log_tail "$KAFKA_LOG"; die "could not create topic $t"; }
    done
}

kafka_start() {
    need_java
    load_topology
    mkdir -p "$KAFKA_DIR"
    if kafka_pid >/dev/null; then
        log "Kafka already running (pid $(kafka_pid), port $KAFKA_PORT)"
    else
        rm -f "$KAFKA_PID"
        if port_open "$KAFKA_PORT" || port_open "$CONTROLLER_PORT"; then
            die "port $KAFKA_PORT or $CONTROLLER_PORT on $HOST is already in use by another process; set LOCAL_KAFKA_PORT to a free port"
        fi
        kafka_libs
        kafka_render_config "$PARTITIONS"
        kafka_format
        log "starting Kafka on $HOST:$KAFKA_PORT (controller $CONTROLLER_PORT, heap: $KAFKA_HEAP)"
        # Keep one previous log once it gets big.
        if [[ -f "$KAFKA_LOG" ]] && (( $(stat -c %s "$KAFKA_LOG") > 50 * 1024 * 1024 )); then
            mv -f "$KAFKA_LOG" "$KAFKA_LOG.1"
        fi
        printf '\n===== %s starting broker =====\n' "$(date -Is)" >>"$KAFKA_LOG"
        # shellcheck disable=SC2086  # KAFKA_HEAP is a list of JVM options
        setsid nohup java $KAFKA_HEAP -server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
            -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true \
            -Dlog4j.configuration="file:$KAFKA_LOG4J" -Dkafka.logs.dir="$KAFKA_DIR" \
            -cp "$KAFKA_LIBS/*" kafka.Kafka "$KAFKA_PROPS" \
            </dev/null >>"$KAFKA_LOG" 2>&1 9>&- &
        echo $! >"$KAFKA_PID"
    fi
    kafka_wait_ready
    kafka_ensure_topics "$PARTITIONS" "${TOPICS[@]}"
}

kafka_stop() { # kafka_stop [TERM|KILL]
    local sig="${1:-TERM}" pid
    if ! pid="$(kafka_pid)"; then
        log "Kafka not running"
        rm -f "$KAFKA_PID"
        return 0
    fi
    log "stopping Kafka (pid $pid, SIG$sig)"
    kill -"$sig" "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + 30))
    while kill -0 "$pid" 2>/dev/null; do
        if (( SECONDS >= deadline )); then
            log "Kafka did not stop within 30 s; sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
            deadline=$((SECONDS + 10))
        fi
        sleep 0.3
    done
    rm -f "$KAFKA_PID"
}

# ----------------------------------------------------------------------- commands

cmd_status() {
    local rc=0 pid
    if pg_running; then
        echo "postgres: running  pid $(head -n1 "$PG_DATA/postmaster.pid")  $HOST:$PG_PORT  data $PG_DATA"
    else
        echo "postgres: stopped  (data $PG_DATA)"
        rc=3
    fi
    if pid="$(kafka_pid)"; then
        echo "kafka:    running  pid $pid  $HOST:$KAFKA_PORT (controller $CONTROLLER_PORT)  log $KAFKA_LOG"
    else
        echo "kafka:    stopped  (data $KAFKA_DATA)"
        rc=3
    fi
    return "$rc"
}

cmd_env() {
    echo "export PG_ADMIN_DSN=postgresql://postgres@$HOST:$PG_PORT/postgres"
    echo "export KAFKA_BOOTSTRAP=$HOST:$KAFKA_PORT"
}

usage() {
    sed -n '2,/^set -E/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'
}

main() {
    local cmd="${1:-}"
    case "$cmd" in
        up)
            take_lock
            pg_start
            kafka_start
            log "up: PostgreSQL $HOST:$PG_PORT, Kafka $HOST:$KAFKA_PORT"
            ;;
        down)
            take_lock
            kafka_stop
            pg_stop fast
            ;;
        status) cmd_status ;;
        env) cmd_env ;;
        topics) load_topology; for t in "${TOPICS[@]}"; do echo "$t $PARTITIONS"; done ;;
        databases) load_topology; printf '%s\n' "${PG_DATABASES[@]}" ;;
        start-pg) take_lock; pg_start ;;
        stop-pg) take_lock; pg_stop fast ;;
        kill-pg) take_lock; pg_stop immediate ;;
        start-kafka) take_lock; kafka_start ;;
        stop-kafka) take_lock; kafka_stop TERM ;;
        kill-kafka) take_lock; kafka_stop KILL ;;
        restart-kafka) take_lock; kafka_stop TERM; kafka_start ;;
        -h|--help|help) usage ;;
        *) usage >&2; exit 2 ;;
    esac
}

main "$@"
