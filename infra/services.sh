#!/usr/bin/env bash
# Local Kafka, Cassandra and schema registry for development, tests and
# benchmarks on one machine. Everything binds to 127.0.0.1 only.
#
#   bash infra/services.sh up     [kafka|cassandra|registry ...]  fetch (first time), start, wait until ready
#   bash infra/services.sh down   [--purge] [service ...]         stop what `up` started (--purge: also wipe data and logs)
#   bash infra/services.sh status [service ...]                   one line per server
#   bash infra/services.sh clean                                  same as `down --purge`
#   bash infra/services.sh fetch  [service ...]                   only download the servers (Maven, cached in ~/.m2)
#
# The servers come from Maven Central through the small poms next to this
# script; the jars land in infra/target/ (git-ignored). Data, logs and pid files
# live in <repo>/.run/. See infra/README.md.
set -Eeuo pipefail

INFRA_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT_DIR="$(dirname "$INFRA_DIR")"
# SERVICES_RUN_DIR: a second, separate set of servers (infra/secure.sh) keeps its own state.
RUN_DIR="${SERVICES_RUN_DIR:-$ROOT_DIR/.run}"
LOG_DIR="$RUN_DIR/logs"
TARGET_DIR="$INFRA_DIR/target"

# ---- versions (env overridable) ---------------------------------------------
KAFKA_VERSION="${KAFKA_VERSION:-4.1.1}"
LOG4J_VERSION="${LOG4J_VERSION:-2.24.3}"
SLF4J_VERSION="${SLF4J_VERSION:-2.0.17}"
CASSANDRA_VERSION="${CASSANDRA_VERSION:-5.0.6}"
# Apicurio Registry 3.x needs Java 21+; without such a JDK the 2.x line runs on 17.
REGISTRY_VERSION="${REGISTRY_VERSION:-3.3.3}"
REGISTRY_FALLBACK_VERSION="${REGISTRY_FALLBACK_VERSION:-2.6.13.Final}"

# ---- ports (env overridable); the bind address is always 127.0.0.1 ---------
HOST=127.0.0.1
KAFKA_PORT="${KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-9093}"
CASSANDRA_PORT="${CASSANDRA_PORT:-9042}"
CASSANDRA_STORAGE_PORT="${CASSANDRA_STORAGE_PORT:-7000}"
CASSANDRA_JMX_PORT="${CASSANDRA_JMX_PORT:-7199}"
REGISTRY_PORT="${REGISTRY_PORT:-8081}"
REGISTRY_MANAGEMENT_PORT="${REGISTRY_MANAGEMENT_PORT:-9081}"

# ---- memory and timeouts (env overridable) ---------------------------------
KAFKA_HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xms512m -Xmx1g}"
CASSANDRA_HEAP_OPTS="${CASSANDRA_HEAP_OPTS:--Xms1g -Xmx1g}"
REGISTRY_HEAP_OPTS="${REGISTRY_HEAP_OPTS:--Xmx512m}"
KAFKA_READY_TIMEOUT="${KAFKA_READY_TIMEOUT:-90}"
CASSANDRA_READY_TIMEOUT="${CASSANDRA_READY_TIMEOUT:-150}"
REGISTRY_READY_TIMEOUT="${REGISTRY_READY_TIMEOUT:-120}"
STOP_TIMEOUT="${STOP_TIMEOUT:-20}"
# A server already listening that was not started here is probed this long.
FOREIGN_PROBE_TIMEOUT="${FOREIGN_PROBE_TIMEOUT:-10}"
# Optional explicit JDKs (path to a `java` binary); discovered otherwise.
KAFKA_JAVA="${KAFKA_JAVA:-}"
CASSANDRA_JAVA="${CASSANDRA_JAVA:-}"
REGISTRY_JAVA="${REGISTRY_JAVA:-}"

ALL_SERVICES=(kafka cassandra registry)

# ---- small helpers -----------------------------------------------------------
say() { printf '%s\n' "$*"; }
err() { printf 'services: %s\n' "$*" >&2; }
die() { err "$*"; exit 1; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

main_port() {
  case "$1" in
    kafka) echo "$KAFKA_PORT" ;;
    cassandra) echo "$CASSANDRA_PORT" ;;
    registry) echo "$REGISTRY_PORT" ;;
  esac
}

# Ports a server binds besides its main one, as "port:purpose".
aux_ports() {
  case "$1" in
    kafka) echo "$KAFKA_CONTROLLER_PORT:KAFKA_CONTROLLER_PORT" ;;
    cassandra) echo "$CASSANDRA_STORAGE_PORT:CASSANDRA_STORAGE_PORT $CASSANDRA_JMX_PORT:CASSANDRA_JMX_PORT" ;;
    registry) echo "$REGISTRY_MANAGEMENT_PORT:REGISTRY_MANAGEMENT_PORT" ;;
  esac
}

ready_timeout() {
  case "$1" in
    kafka) echo "$KAFKA_READY_TIMEOUT" ;;
    cassandra) echo "$CASSANDRA_READY_TIMEOUT" ;;
    registry) echo "$REGISTRY_READY_TIMEOUT" ;;
  esac
}

log_file() { echo "$LOG_DIR/$1.log"; }
out_file() { echo "$LOG_DIR/$1.out"; }
pid_file() { echo "$RUN_DIR/$1.pid"; }
port_file() { echo "$RUN_DIR/$1.port"; }

# The port our running server was started with (the env may differ now).
running_port() {
  local f
  f="$(port_file "$1")"
  if [[ -s "$f" ]]; then tr -dc '0-9' <"$f"; else main_port "$1"; fi
}

# Every java process started here carries this on its command line, so a pid
# file can never make us signal an unrelated process that reused the pid.
marker() { echo "-Dservices.instance=$1@$RUN_DIR"; }

port_open() {
  timeout 2 bash -c "exec 3<>/dev/tcp/$HOST/$1" 2>/dev/null
}

has_marker() {
  # Reads the command line with bash builtins only: a helper process such as
  # grep would carry the marker in its own argv and match itself.
  local pid="$1" m arg
  local -a args=()
  m="$(marker "$2")"
  [[ -r "/proc/$pid/cmdline" ]] || return 1
  mapfile -d '' args <"/proc/$pid/cmdline" 2>/dev/null || return 1
  for arg in "${args[@]}"; do
    [[ "$arg" == "$m" ]] && return 0
  done
  return 1
}

# Prints the pid of our running server, or fails.
our_pid() {
  local svc="$1" pf pid
  pf="$(pid_file "$svc")"
  if [[ -s "$pf" ]]; then
    pid="$(tr -dc '0-9' <"$pf")"
    if [[ -n "$pid" ]] && has_marker "$pid" "$svc"; then
      echo "$pid"
      return 0
    fi
  fi
  # pid file lost or stale: look for a live process carrying our marker
  local d
  for d in /proc/[0-9]*; do
    pid="${d#/proc/}"
    if has_marker "$pid" "$svc"; then
      echo "$pid"
      return 0
    fi
  done
  return 1
}

# java_major /path/to/java -> 8, 11, 17, 21, 25 ...
java_major() {
  local v
  v="$("$1" -version 2>&1 | awk -F'"' '/version/ { print $2; exit }')"
  [[ -n "$v" ]] || return 1
  if [[ "$v" == 1.* ]]; then v="${v#1.}"; fi
  echo "${v%%[.+-]*}"
}

# find_java MIN MAX prefer_path|newest -> path of a java binary within [MIN, MAX]
find_java() {
  local min="$1" max="$2" mode="$3" cand real major best="" best_major=0 seen=" "
  local path_java
  path_java="$(command -v java || true)"
  if [[ "$mode" == prefer_path && -n "$path_java" ]]; then
    major="$(java_major "$path_java" || echo 0)"
    if ((major >= min && major <= max)); then
      echo "$path_java"
      return 0
    fi
  fi
  for cand in "$path_java" "${JAVA_HOME:+$JAVA_HOME/bin/java}" /usr/lib/jvm/*/bin/java /opt/java/*/bin/java /opt/*/bin/java; do
    [[ -n "$cand" && -x "$cand" ]] || continue
    real="$(readlink -f "$cand")"
    [[ "$seen" == *" $real "* ]] && continue
    seen+="$real "
    major="$(java_major "$real" || echo 0)"
    if ((major >= min && major <= max && major > best_major)); then
      best="$real"
      best_major="$major"
    fi
  done
  [[ -n "$best" ]] || return 1
  echo "$best"
}

print_tail() {
  local f="$1" n="${2:-40}"
  if [[ -s "$f" ]]; then
    say "----- last $n lines of $f -----"
    tail -n "$n" "$f"
    say "----- end of $f -----"
  fi
}

# ---- fetching (Maven) --------------------------------------------------------
pom_sum() { sha1sum "$1" | cut -c1-12; }

registry_choice() {
  # Prints "<version> <java>" for the registry.
  local j
  if [[ -n "$REGISTRY_JAVA" ]]; then
    j="$REGISTRY_JAVA"
    if (($(java_major "$j" || echo 0) >= 21)); then echo "$REGISTRY_VERSION $j"; else echo "$REGISTRY_FALLBACK_VERSION $j"; fi
  elif j="$(find_java 21 999 newest)"; then
    echo "$REGISTRY_VERSION $j"
  elif j="$(find_java 17 999 prefer_path)"; then
    echo "$REGISTRY_FALLBACK_VERSION $j"
  else
    return 1
  fi
}

# fetch_stamp SERVICE -> the identity of what should be in infra/target for it
fetch_stamp() {
  case "$1" in
    kafka) echo "kafka=$KAFKA_VERSION log4j=$LOG4J_VERSION slf4j=$SLF4J_VERSION pom=$(pom_sum "$INFRA_DIR/kafka/pom.xml")" ;;
    cassandra) echo "cassandra=$CASSANDRA_VERSION pom=$(pom_sum "$INFRA_DIR/cassandra/pom.xml")" ;;
    registry) echo "registry=$2 pom=$(pom_sum "$INFRA_DIR/registry/pom.xml")" ;;
  esac
}

fetch_dir() {
  case "$1" in
    kafka | cassandra) echo "$TARGET_DIR/$1" ;;
    registry) echo "$TARGET_DIR/registry/$2" ;;
  esac
}

is_fetched() {
  local dir stamp
  dir="$(fetch_dir "$1" "${2:-}")"
  stamp="$(fetch_stamp "$1" "${2:-}")"
  [[ -f "$dir/.fetched" && "$(cat "$dir/.fetched")" == "$stamp" ]]
}

# fetch SERVICE [registry-version]; serialised with a lock so concurrent
# Maven runs never write the same files in ~/.m2 at once.
fetch() {
  local svc="$1" ver="${2:-}" dir stamp flog start
  is_fetched "$svc" "$ver" && return 0
  command -v mvn >/dev/null 2>&1 || die "mvn (Apache Maven) is not on PATH; it is needed once to download $svc (apt-get install maven)"
  dir="$(fetch_dir "$svc" "$ver")"
  stamp="$(fetch_stamp "$svc" "$ver")"
  flog="$LOG_DIR/fetch-$svc.log"
  mkdir -p "$TARGET_DIR" "$LOG_DIR"
  (
    flock 9
    is_fetched "$svc" "$ver" && exit 0
    start="$(now)"
    say "[$svc] fetching from Maven Central ($stamp)"
    local -a mvn_cmd=(mvn -q -B -Dstyle.color=never)
    case "$svc" in
      kafka)
        rm -rf "$dir/lib"
        mvn_cmd+=(-f "$INFRA_DIR/kafka/pom.xml" dependency:copy-dependencies
          "-Dkafka.version=$KAFKA_VERSION" "-Dlog4j.version=$LOG4J_VERSION" "-Dslf4j.version=$SLF4J_VERSION")
        ;;
      cassandra)
        rm -rf "$dir/lib"
        mvn_cmd+=(-f "$INFRA_DIR/cassandra/pom.xml" dependency:copy-dependencies
          "-Dcassandra.version=$CASSANDRA_VERSION")
        ;;
      registry)
        rm -rf "$dir" "$TARGET_DIR/registry/dependency-maven-plugin-markers"
        mvn_cmd+=(-f "$INFRA_DIR/registry/pom.xml" dependency:unpack "-Dregistry.version=$ver")
        ;;
    esac
    if ! "${mvn_cmd[@]}" >"$flog" 2>&1; then
      err "[$svc] Maven could not fetch $stamp: ${mvn_cmd[*]}"
      print_tail "$flog" 40 >&2
      exit 1
    fi
    mkdir -p "$dir"
    echo "$stamp" >"$dir/.fetched"
    say "[$svc] fetched in $(elapsed "$start") s"
  ) 9>"$TARGET_DIR/.fetch.lock"
}

# ---- launching -----------------------------------------------------------------
# launch SERVICE WORKDIR JAVA ARGS... : start detached (own session, immune to
# the calling shell's exit and SIGHUP); the process writes its own pid file
# and then execs java, so the pid is exactly the JVM's.
launch() {
  local svc="$1" workdir="$2" pf
  shift 2
  pf="$(pid_file "$svc")"
  rm -f "$pf"
  (
    cd "$workdir"
    # 8>&-: the JVM must not inherit (and so hold) the up/down lock
    exec setsid bash -c 'echo $$ >"$0"; exec "$@"' "$pf" "$@" \
      </dev/null >"$(out_file "$svc")" 2>&1 8>&-
  ) &
  local i
  for i in $(seq 1 50); do
    [[ -s "$pf" ]] && break
    sleep 0.1
  done
  [[ -s "$pf" ]] || return 1
  tr -dc '0-9' <"$pf"
}

render() {
  # render TEMPLATE OUTPUT KEY=VALUE...
  local tpl="$1" out="$2" kv sed_args=()
  shift 2
  for kv in "$@"; do
    sed_args+=(-e "s|@${kv%%=*}@|${kv#*=}|g")
  done
  sed "${sed_args[@]}" "$tpl" >"$out.tmp"
  mv "$out.tmp" "$out"
}

kafka_cluster_id() {
  # 16 random bytes, URL-safe base64 without padding, not starting with '-'
  # (the same shape as Kafka's own Uuid.randomUuid()).
  local id
  while :; do
    id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
    [[ "$id" != -* ]] && break
  done
  echo "$id"
}

start_kafka() {
  local java="$1" lib="$TARGET_DIR/kafka/lib" dir="$RUN_DIR/kafka" props
  props="$dir/server.properties"
  mkdir -p "$dir/data"
  render "$INFRA_DIR/kafka/server.properties.in" "$props" \
    "HOST=$HOST" "PORT=$KAFKA_PORT" "CONTROLLER_PORT=$KAFKA_CONTROLLER_PORT" "DATA_DIR=$dir/data"
  local -a common=(
    "-Dlog4j2.configurationFile=$INFRA_DIR/kafka/log4j2.xml"
    "-Dkafka.logs.dir=$LOG_DIR"
    -Djava.awt.headless=true
    -cp "$lib/*"
  )
  if [[ ! -s "$dir/data/meta.properties" ]]; then
    [[ -s "$dir/cluster.id" ]] || kafka_cluster_id >"$dir/cluster.id"
    if ! "$java" "${common[@]}" kafka.tools.StorageTool format \
      -t "$(cat "$dir/cluster.id")" -c "$props" >"$LOG_DIR/kafka-format.log" 2>&1; then
      err "[kafka] formatting the KRaft storage in $dir/data failed"
      print_tail "$LOG_DIR/kafka-format.log" 40 >&2
      return 1
    fi
  fi
  # shellcheck disable=SC2086 # heap options are a word list on purpose
  launch kafka "$dir" "$java" "$(marker kafka)" $KAFKA_HEAP_OPTS \
    -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 \
    -XX:+ExplicitGCInvokesConcurrent \
    "${common[@]}" kafka.Kafka "$props"
}

# Module flags from Cassandra's conf/jvm17-server.options (JPMS section).
CASSANDRA_JDK17_FLAGS=(
  -Djdk.attach.allowAttachSelf=true
  --add-exports java.base/jdk.internal.misc=ALL-UNNAMED
  --add-exports java.base/java.lang.ref=ALL-UNNAMED
  --add-exports java.management.rmi/com.sun.jmx.remote.internal.rmi=ALL-UNNAMED
  --add-exports java.rmi/sun.rmi.registry=ALL-UNNAMED
  --add-exports java.rmi/sun.rmi.server=ALL-UNNAMED
  --add-exports java.sql/java.sql=ALL-UNNAMED
  --add-exports jdk.unsupported/sun.misc=ALL-UNNAMED
  --add-exports jdk.compiler/com.sun.tools.javac.file=ALL-UNNAMED
  --add-exports jdk.attach/sun.tools.attach=ALL-UNNAMED
  --add-opens java.base/java.lang=ALL-UNNAMED
  --add-opens java.base/java.lang.module=ALL-UNNAMED
  --add-opens java.base/java.lang.reflect=ALL-UNNAMED
  --add-opens java.base/java.io=ALL-UNNAMED
  --add-opens java.base/java.util=ALL-UNNAMED
  --add-opens java.base/jdk.internal.loader=ALL-UNNAMED
  --add-opens java.base/jdk.internal.ref=ALL-UNNAMED
  --add-opens java.base/jdk.internal.reflect=ALL-UNNAMED
  --add-opens java.base/jdk.internal.math=ALL-UNNAMED
  --add-opens java.base/jdk.internal.module=ALL-UNNAMED
  --add-opens java.base/jdk.internal.util.jar=ALL-UNNAMED
  --add-opens java.base/sun.nio.ch=ALL-UNNAMED
  --add-opens jdk.management/com.sun.management.internal=ALL-UNNAMED
  --add-opens jdk.compiler/com.sun.tools.javac=ALL-UNNAMED
  -Dio.netty.tryReflectionSetAccessible=true
  -Dio.netty.allocator.useCacheForAllThreads=true
  -Dio.netty.allocator.maxOrder=11
)

start_cassandra() {
  local java="$1" lib="$TARGET_DIR/cassandra/lib" dir="$RUN_DIR/cassandra" jamm
  mkdir -p "$dir"/{data,commitlog,saved_caches,hints,cdc_raw,triggers}
  render "$INFRA_DIR/cassandra/cassandra.yaml.in" "$dir/cassandra.yaml" \
    "HOST=$HOST" "NATIVE_PORT=$CASSANDRA_PORT" "STORAGE_PORT=$CASSANDRA_STORAGE_PORT" "STORAGE_DIR=$dir"
  jamm="$(ls "$lib"/jamm-*.jar 2>/dev/null | head -n 1)"
  [[ -n "$jamm" ]] || { err "[cassandra] no jamm jar in $lib; delete $TARGET_DIR/cassandra and retry"; return 1; }
  local -a jdk_flags=()
  if (($(java_major "$java") >= 17)); then jdk_flags=("${CASSANDRA_JDK17_FLAGS[@]}"); fi
  # shellcheck disable=SC2086
  launch cassandra "$dir" "$java" "$(marker cassandra)" $CASSANDRA_HEAP_OPTS -Xss256k \
    -XX:+UseG1GC -XX:+ParallelRefProcEnabled -XX:MaxTenuringThreshold=1 -XX:MaxGCPauseMillis=300 \
    -XX:+ExitOnOutOfMemoryError \
    "${jdk_flags[@]}" \
    "-javaagent:$jamm" \
    -Djava.net.preferIPv4Stack=true \
    -Dcassandra-foreground=yes \
    "-Dcassandra.config=file://$dir/cassandra.yaml" \
    "-Dcassandra.storagedir=$dir" \
    "-Dcassandra.logdir=$LOG_DIR" \
    "-Dlogback.configurationFile=$INFRA_DIR/cassandra/logback.xml" \
    "-Dcassandra.jmx.local.port=$CASSANDRA_JMX_PORT" \
    -Dcassandra.skip_wait_for_gossip_to_settle=0 \
    -Dcassandra.ring_delay_ms=100 \
    -Dcassandra.superuser_setup_delay_ms=0 \
    "-Dcassandra.triggers_dir=$dir/triggers" \
    -cp "$lib/*" org.apache.cassandra.service.CassandraDaemon
}

start_registry() {
  local java="$1" ver="$2" home dir="$RUN_DIR/registry" jar
  home="$(fetch_dir registry "$ver")"
  mkdir -p "$dir/tmp"
  if [[ -f "$home/quarkus-run.jar" ]]; then
    jar="$home/quarkus-run.jar"
  else
    jar="$(ls "$home"/*-runner.jar "$home"/*/*-runner.jar 2>/dev/null | head -n 1)"
  fi
  [[ -n "$jar" && -f "$jar" ]] || { err "[registry] no quarkus-run.jar / *-runner.jar under $home; delete it and retry"; return 1; }
  # In-memory storage (the default of the app distribution): subjects are
  # gone after a restart, like a fresh registry.
  # shellcheck disable=SC2086
  launch registry "$dir" "$java" "$(marker registry)" $REGISTRY_HEAP_OPTS \
    -Djava.awt.headless=true \
    "-Djava.io.tmpdir=$dir/tmp" \
    "-Dquarkus.http.host=$HOST" \
    "-Dquarkus.http.port=$REGISTRY_PORT" \
    "-Dquarkus.management.host=$HOST" \
    "-Dquarkus.management.port=$REGISTRY_MANAGEMENT_PORT" \
    -Dquarkus.http.access-log.enabled=false \
    "-Dquarkus.log.console.format=%d{yyyy-MM-dd HH:mm:ss,SSS} %-5p [%c{3.}] (%t) %s%e%n" \
    "-Dapicurio.storage.snapshot.location=$dir/tmp" \
    "-Dapicurio.import.work-dir=$dir/tmp" \
    -jar "$jar"
}

probe() {
  # probe SERVICE PORT TIMEOUT [PID] -> prints detail; exit code as wait-ready.js.
  # For a Kafka we start, readiness includes its group and transaction
  # coordinators (internal topics created), so tests never wait for them.
  local -a warm=()
  [[ "$1" == kafka && -n "${4:-}" ]] && warm=(--warm)
  node "$INFRA_DIR/wait-ready.js" "${warm[@]}" "$1" "$HOST" "$2" "$3" ${4:+"$4"}
}

stop_pid() {
  # stop_pid SERVICE PID: SIGTERM, wait, then SIGKILL
  local svc="$1" pid="$2" start i
  start="$(now)"
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < STOP_TIMEOUT * 5; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.2
  done
  if kill -0 "$pid" 2>/dev/null; then
    say "[$svc] pid $pid still alive after ${STOP_TIMEOUT} s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
  fi
  rm -f "$(pid_file "$svc")" "$(port_file "$svc")"
  say "[$svc] stopped (pid $pid) in $(elapsed "$start") s"
}

# ---- up ------------------------------------------------------------------------
# up_one SERVICE RESULT_FILE: runs in the background, one per server.
up_one() {
  local svc="$1" result="$2" port pid start timeout java ver detail rc aux p
  port="$(main_port "$svc")"
  timeout="$(ready_timeout "$svc")"
  echo "fail" >"$result"

  if pid="$(our_pid "$svc")"; then
    echo "$pid" >"$(pid_file "$svc")"
    p="$(running_port "$svc")"
    if [[ "$p" != "$port" ]]; then
      err "[$svc] already running (pid $pid) on port $p, not on the requested $port; run 'bash infra/services.sh down $svc' first"
      return 1
    fi
    start="$(now)"
    if detail="$(probe "$svc" "$port" "$timeout" "$pid")"; then
      echo "$port" >"$(port_file "$svc")"
      say "[$svc] already running (pid $pid, $HOST:$port): $detail"
      echo "ok running $pid $(elapsed "$start")" >"$result"
      return 0
    fi
    err "[$svc] our process (pid $pid) is running but not ready on $HOST:$port"
    print_tail "$(log_file "$svc")" 40 >&2
    print_tail "$(out_file "$svc")" 15 >&2
    return 1
  fi
  rm -f "$(pid_file "$svc")" "$(port_file "$svc")"

  if port_open "$port"; then
    if detail="$(probe "$svc" "$port" "$FOREIGN_PROBE_TIMEOUT" 2>/dev/null)"; then
      say "[$svc] $HOST:$port is already served by a $svc not started by services.sh ($detail); using it"
      echo "ok external - 0" >"$result"
      return 0
    fi
    err "[$svc] port $port on $HOST is taken by something that does not answer as $svc; stop it or set $(tr '[:lower:]' '[:upper:]' <<<"$svc")_PORT"
    return 1
  fi
  for aux in $(aux_ports "$svc"); do
    p="${aux%%:*}"
    if port_open "$p"; then
      err "[$svc] port $p on $HOST (${aux#*:}) is already in use; stop that process or set ${aux#*:}"
      return 1
    fi
  done

  case "$svc" in
    kafka)
      java="${KAFKA_JAVA:-$(find_java 17 999 prefer_path || true)}"
      [[ -n "$java" ]] || { err "[kafka] needs Java 17 or newer; none found (set KAFKA_JAVA)"; return 1; }
      fetch kafka || return 1
      ;;
    cassandra)
      java="${CASSANDRA_JAVA:-$(find_java 11 17 prefer_path || true)}"
      [[ -n "$java" ]] || { err "[cassandra] Cassandra $CASSANDRA_VERSION needs Java 11 or 17; none found (set CASSANDRA_JAVA)"; return 1; }
      fetch cassandra || return 1
      ;;
    registry)
      read -r ver java < <(registry_choice || true) || true
      [[ -n "${java:-}" ]] || { err "[registry] needs Java 17 or newer; none found (set REGISTRY_JAVA)"; return 1; }
      fetch registry "$ver" || return 1
      ;;
  esac

  start="$(now)"
  : >"$(out_file "$svc")"
  case "$svc" in
    kafka) pid="$(start_kafka "$java")" || { err "[kafka] could not be launched"; print_tail "$(out_file kafka)" 40 >&2; return 1; } ;;
    cassandra) pid="$(start_cassandra "$java")" || { err "[cassandra] could not be launched"; print_tail "$(out_file cassandra)" 40 >&2; return 1; } ;;
    registry) pid="$(start_registry "$java" "$ver")" || { err "[registry] could not be launched"; print_tail "$(out_file registry)" 40 >&2; return 1; } ;;
  esac
  echo "$port" >"$(port_file "$svc")"
  say "[$svc] started pid $pid with $java (java $(java_major "$java"))${ver:+, Apicurio Registry $ver}; waiting up to ${timeout} s"

  rc=0
  detail="$(probe "$svc" "$port" "$timeout" "$pid" 2>"$RUN_DIR/.probe-$svc.err")" || rc=$?
  if ((rc == 0)); then
    say "[$svc] ready on $HOST:$port in $(elapsed "$start") s ($detail)"
    echo "ok started $pid $(elapsed "$start")" >"$result"
    rm -f "$RUN_DIR/.probe-$svc.err"
    return 0
  fi
  err "[$svc] failed to become ready: $(cat "$RUN_DIR/.probe-$svc.err")"
  rm -f "$RUN_DIR/.probe-$svc.err"
  if [[ "$svc" == registry ]]; then
    print_tail "$(out_file "$svc")" 40 >&2
  else
    print_tail "$(log_file "$svc")" 40 >&2
    print_tail "$(out_file "$svc")" 15 >&2
  fi
  if kill -0 "$pid" 2>/dev/null; then
    err "[$svc] stopping the half-started process $pid"
    stop_pid "$svc" "$pid" >&2
  fi
  rm -f "$(pid_file "$svc")" "$(port_file "$svc")"
  return 1
}

check_tools() {
  command -v java >/dev/null 2>&1 || die "java is not on PATH (Java 17 is needed: apt-get install openjdk-17-jdk-headless)"
  command -v node >/dev/null 2>&1 || die "node is not on PATH (needed for the readiness checks)"
  local svc need_mvn=0 ver
  for svc in "$@"; do
    case "$svc" in
      registry)
        ver="$(registry_choice | cut -d' ' -f1)" || ver="$REGISTRY_VERSION"
        is_fetched registry "$ver" || need_mvn=1
        ;;
      *) is_fetched "$svc" || need_mvn=1 ;;
    esac
  done
  if ((need_mvn)) && ! command -v mvn >/dev/null 2>&1; then
    die "mvn (Apache Maven) is not on PATH; it is needed to download the servers the first time (apt-get install maven)"
  fi
  for m in kafkajs cassandra-driver; do
    [[ -d "$ROOT_DIR/node_modules/$m" ]] || die "node module $m is missing in $ROOT_DIR/node_modules; run 'npm ci' (or make install) first"
  done
}

cmd_up() {
  local -a svcs=("$@")
  ((${#svcs[@]})) || svcs=("${ALL_SERVICES[@]}")
  check_tools "${svcs[@]}"
  mkdir -p "$RUN_DIR" "$LOG_DIR"
  local start svc failed=0 status kind pid secs
  start="$(now)"
  local -A job=()
  for svc in "${svcs[@]}"; do
    up_one "$svc" "$RUN_DIR/.up-$svc.result" &
    job[$svc]=$!
  done
  for svc in "${svcs[@]}"; do
    wait "${job[$svc]}" || true
  done
  say ""
  for svc in "${svcs[@]}"; do
    read -r status kind pid secs <"$RUN_DIR/.up-$svc.result" || status=fail
    rm -f "$RUN_DIR/.up-$svc.result"
    case "$status:${kind:-}" in
      ok:started) printf '  %-10s ready    %s:%-5s pid %-7s started in %s s\n' "$svc" "$HOST" "$(main_port "$svc")" "$pid" "$secs" ;;
      ok:running) printf '  %-10s ready    %s:%-5s pid %-7s (was already running)\n' "$svc" "$HOST" "$(main_port "$svc")" "$pid" ;;
      ok:external) printf '  %-10s ready    %s:%-5s (not started by services.sh)\n' "$svc" "$HOST" "$(main_port "$svc")" ;;
      *)
        printf '  %-10s FAILED   see above and %s\n' "$svc" "$LOG_DIR/"
        failed=1
        ;;
    esac
  done
  if ((failed)); then
    err "some servers are not ready (total $(elapsed "$start") s)"
    return 1
  fi
  say "all ready in $(elapsed "$start") s"
}

# ---- down / status / clean -----------------------------------------------------
down_one() {
  local svc="$1" pid
  if pid="$(our_pid "$svc")"; then
    stop_pid "$svc" "$pid"
  else
    rm -f "$(pid_file "$svc")" "$(port_file "$svc")"
    if port_open "$(main_port "$svc")"; then
      say "[$svc] not started by services.sh; $HOST:$(main_port "$svc") is served by another process, left alone"
    else
      say "[$svc] not running"
    fi
  fi
}

cmd_down() {
  local purge=0 svc
  local -a svcs=()
  for svc in "$@"; do
    case "$svc" in
      --purge) purge=1 ;;
      *) svcs+=("$svc") ;;
    esac
  done
  ((${#svcs[@]})) || svcs=("${ALL_SERVICES[@]}")
  local -a jobs=()
  for svc in "${svcs[@]}"; do
    down_one "$svc" &
    jobs+=($!)
  done
  local j
  for j in "${jobs[@]}"; do wait "$j" || true; done
  if ((purge)); then
    for svc in "${svcs[@]}"; do
      rm -rf "${RUN_DIR:?}/$svc"
      rm -f "$LOG_DIR/$svc".* "$LOG_DIR/$svc"-* "$LOG_DIR/fetch-$svc.log"
      say "[$svc] data and logs removed from $RUN_DIR"
    done
  fi
}

cmd_status() {
  local -a svcs=("$@")
  ((${#svcs[@]})) || svcs=("${ALL_SERVICES[@]}")
  local svc pid port answers
  for svc in "${svcs[@]}"; do
    if pid="$(our_pid "$svc")"; then
      port="$(running_port "$svc")"
      if port_open "$port"; then answers="answering"; else answers="NOT answering"; fi
      printf '%-10s running  pid %-7s %s:%-5s %s\n' "$svc" "$pid" "$HOST" "$port" "$answers"
    elif port="$(main_port "$svc")" && port_open "$port"; then
      printf '%-10s external %s:%-5s answering, not started by services.sh\n' "$svc" "$HOST" "$port"
    else
      printf '%-10s stopped\n' "$svc"
    fi
  done
}

cmd_fetch() {
  local -a svcs=("$@")
  ((${#svcs[@]})) || svcs=("${ALL_SERVICES[@]}")
  local svc ver
  mkdir -p "$LOG_DIR"
  for svc in "${svcs[@]}"; do
    if [[ "$svc" == registry ]]; then
      ver="$(registry_choice | cut -d' ' -f1)" || die "no Java 17+ found for the registry"
      fetch registry "$ver"
    else
      fetch "$svc"
    fi
    say "[$svc] fetched: $(fetch_dir "$svc" "${ver:-}")"
  done
}

usage() {
  awk 'NR == 1 { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "${BASH_SOURCE[0]}"
}

validate_services() {
  local s
  for s in "$@"; do
    case "$s" in
      kafka | cassandra | registry | --purge) ;;
      *) die "unknown service '$s' (expected: ${ALL_SERVICES[*]})" ;;
    esac
  done
}

main() {
  local cmd="${1:-}"
  shift || true
  validate_services "$@"
  if [[ "$cmd" == up || "$cmd" == down || "$cmd" == clean ]]; then
    # one up/down at a time per checkout (e.g. two test runners calling `up`)
    mkdir -p "$RUN_DIR"
    exec 8>"$RUN_DIR/.services.lock"
    if ! flock -n 8; then
      say "another 'services.sh up/down' is running for $RUN_DIR; waiting for it"
      flock 8
    fi
  fi
  case "$cmd" in
    up) cmd_up "$@" ;;
    down) cmd_down "$@" ;;
    status) cmd_status "$@" ;;
    clean) cmd_down --purge "$@" ;;
    fetch) cmd_fetch "$@" ;;
    -h | --help | help) usage ;;
    *)
      usage >&2
      exit 2
      ;;
  esac
}

# Sourced by infra/secure.sh for its functions; run as a script otherwise.
if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  main "$@"
fi
