#!/usr/bin/env bash
# Runs Apache Cassandra 5.0 nodes on loopback for the project's tests, demo and benchmarks.
#
#   cassandra.sh start [NODES]   start (or reuse) NODES nodes on 127.0.0.1..NODES (default 1)
#   cassandra.sh start NODES --dcs D
#                                start (or reuse) NODES nodes in D data centers dc1..dcD on
#                                127.0.0.11..(10+NODES), beside any ring on 127.0.0.1..9
#   cassandra.sh start-secure    start (or reuse) the secured node on 127.0.0.21: client TLS with
#                                client certificates required, PasswordAuthenticator and
#                                CassandraAuthorizer (see "The secured node" below)
#   cassandra.sh stop [RING]     stop exactly the nodes this script started (by pid file); only
#                                those of RING (ring1, ring3, ring3dc2, ..., secure) when it is given
#   cassandra.sh status          print each node's state
#   cassandra.sh pids [RING]     print the pids of RING's running nodes (default ring1), one a line;
#                                nothing when none runs (make bench lowers their CPU priority for
#                                one run of its window step)
#   cassandra.sh with RING[,RING...] -- COMMAND [ARGS...]
#                                run COMMAND with each RING running (ring1, ring3, ring3dc2, ...,
#                                secure), starting those that are not and stopping afterwards (also
#                                on SIGINT or SIGTERM) exactly those it started; the exit status is
#                                COMMAND's, or 1 when a ring cannot start. A ring whose variable names
#                                a cluster is left alone: HOLDOVER_CASSANDRA_HOSTS for single-DC
#                                rings, HOLDOVER_CASSANDRA_DC_HOSTS for multi-DC ones,
#                                HOLDOVER_CASSANDRA_SECURE_HOSTS for secure. The Makefile's targets
#                                that need Cassandra run through it.
#   cassandra.sh config          prepare node 1's directory as start would (cassandra.yaml, and
#                                deleting what dropped tables left), print its cassandra.yaml, start
#                                nothing
#   cassandra.sh clean           stop, then delete the nodes' data (the fetched server is kept)
#   cassandra.sh nodetool N ARGS run nodetool against node N (e.g. nodetool 1 status; DCS=2 for
#                                node N of the multi-DC ring)
#   cassandra.sh fetch           fetch the server only, and print the directory of its jars
#   cassandra.sh fetch-stress    fetch cassandra-stress, and print the path of its launcher
#
# Environment (all optional):
#   CASSANDRA_CACHE          where the server and node directories live (default: <repo>/.cache/cassandra)
#   MAX_HEAP_SIZE            JVM heap per node (default 1G with one node, 768M with more)
#   HEAP_NEWSIZE             young generation per node (default 200M)
#   CASSANDRA_START_TIMEOUT  seconds to wait for a node to answer CQL (default 240)
#   CASSANDRA_CLUSTER_NAME   cluster name (default holdover-local; a multi-DC ring appends -<D>dc)
#   CASSANDRA_PAXOS_VARIANT  paxos_variant of the nodes started: v1 (default) or v2; a running node
#                            keeps its own until restarted (docs/performance.md compares them)
#   DCS                      data centers, as --dcs (default 1)
#
# Rings: each layout has its own node directories under $CASSANDRA_CACHE, named ring<NODES> or
# ring<NODES>dc<D>. A single-DC ring (ring1, ring3, ...) uses SimpleSnitch, 127.0.0.<n> and JMX port
# 7198+n; only one of them runs at a time. A multi-DC ring (ring3dc2, ...) uses
# GossipingPropertyFileSnitch with a cassandra-rackdc.properties per node (node n in data center
# dc<(n-1) mod D + 1>, rack rack1), 127.0.0.<10+n>, JMX port 7210+n, a cluster name of its own and
# seeds of its own (the first node of each data center), so it runs beside a single-DC ring and
# never gossips with it. Both serve CQL on port 9042 of their own addresses.
#
# The secured node (start-secure) is a one-node cluster of its own in $CASSANDRA_CACHE/secure, on
# 127.0.0.21 (JMX port 7221, heap SECURE_HEAP_SIZE, default 512M), beside any ring. Each fresh start
# wipes its data and makes new certificates with certgen (beside this script) in
# $CASSANDRA_CACHE/secure/certs: ca.pem verifies the node, client.pem/client-key.pem is a client
# certificate the node accepts (it requires one), and the other files are the wrong ones the tests
# try. Nothing of it is committed. Its only role at start is the default superuser cassandra
# (password cassandra), which the tests use as the operator. Once it serves TLS and logs a client
# in, it prints "cassandra: tls+auth at 127.0.0.21:9042".
#
# Maven Central carries no apache-cassandra binary tarball for 5.0.x (its newest is 4.0-alpha2),
# so the server comes as the cassandra-all jar with its runtime dependencies (pom.xml beside this
# script) and starts as org.apache.cassandra.service.CassandraDaemon with the distribution's JVM
# options for Java 17 (conf/jvm.options), which is what bin/cassandra -f does.
set -euo pipefail

CASSANDRA_VERSION=5.0.9
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SELF="$HERE/$(basename "${BASH_SOURCE[0]}")"
ROOT="$(cd "$HERE/../../.." && pwd)"
CACHE="${CASSANDRA_CACHE:-$ROOT/.cache/cassandra}"
LIB="$CACHE/server-$CASSANDRA_VERSION/lib"
# Each ring layout has its own node directories (ring1/node1, ring3/node1..3, ring3dc2/node1..3),
# so a single node never wakes up believing it still belongs to a ring whose other members are
# down. use_ring sets these for one layout; ring1 is the default.
RING_DIR="$CACHE/ring1"
ADDR_BASE=0       # node n listens on 127.0.0.<ADDR_BASE+n>
JMX_BASE=7198     # node n's JMX port on 127.0.0.1 is JMX_BASE+n
RING_DCS=1        # data centers of the ring
SNITCH=SimpleSnitch
BASE_CLUSTER_NAME="${CASSANDRA_CLUSTER_NAME:-holdover-local}"
CLUSTER_NAME="$BASE_CLUSTER_NAME"
START_TIMEOUT="${CASSANDRA_START_TIMEOUT:-240}"
PAXOS_VARIANT="${CASSANDRA_PAXOS_VARIANT:-v1}"
case "$PAXOS_VARIANT" in
v1 | v2) ;;
*) echo "cassandra: ERROR: CASSANDRA_PAXOS_VARIANT must be v1 or v2, got '$PAXOS_VARIANT'" >&2 && exit 2 ;;
esac
CQL_PORT=9042
STORAGE_PORT=7000
CQLPING="$CACHE/bin/cqlping"
CERTGEN="$CACHE/bin/certgen"
SECURE=0          # 1 while starting the secured node (use_secure)
JVM_EXTRA=()      # JVM options of the node being started, beyond the common ones

say() { echo "cassandra: $*"; }
fail() {
	echo "cassandra: ERROR: $*" >&2
	exit 1
}

# use_ring NODES DCS: select the ring of NODES nodes in DCS data centers.
use_ring() {
	local nodes="$1" dcs="$2"
	RING_DCS="$dcs"
	if ((dcs > 1)); then
		RING_DIR="$CACHE/ring${nodes}dc$dcs"
		ADDR_BASE=10
		JMX_BASE=7210
		SNITCH=GossipingPropertyFileSnitch
		CLUSTER_NAME="$BASE_CLUSTER_NAME-${dcs}dc"
	else
		RING_DIR="$CACHE/ring$nodes"
		ADDR_BASE=0
		JMX_BASE=7198
		SNITCH=SimpleSnitch
		CLUSTER_NAME="$BASE_CLUSTER_NAME"
	fi
}

# use_ring_dir DIR: use_ring for the ring whose directory is DIR (…/ring3dc2 or …/ring1).
use_ring_dir() {
	local name="${1##*/}"
	[[ "$name" =~ ^ring([0-9]+)(dc([0-9]+))?$ ]] || fail "$1 is not a ring directory"
	use_ring "${BASH_REMATCH[1]}" "${BASH_REMATCH[3]:-1}"
}

# use_secure: select the secured node's layout (one node in $CACHE/secure on 127.0.0.21).
use_secure() {
	RING_DIR="$CACHE/secure"
	RING_DCS=1
	ADDR_BASE=20
	JMX_BASE=7220
	SNITCH=SimpleSnitch
	CLUSTER_NAME="$BASE_CLUSTER_NAME-secure"
	SECURE=1
}

node_addr() { echo "127.0.0.$((ADDR_BASE + $1))"; }
node_dir() { echo "$RING_DIR/node$1"; }
node_dc() { echo "dc$((($1 - 1) % RING_DCS + 1))"; }
pid_file() { echo "$(node_dir "$1")/cassandra.pid"; }

# running N: the pid of node N when the process this script started is alive.
running() { running_in "$(node_dir "$1")"; }

# running_in DIR: the same for the node whose directory is DIR.
running_in() {
	local pf="$1/cassandra.pid"
	[[ -f "$pf" ]] || return 1
	local pid
	pid="$(cat "$pf")"
	if kill -0 "$pid" 2>/dev/null && grep -q CassandraDaemon "/proc/$pid/cmdline" 2>/dev/null; then
		echo "$pid"
		return 0
	fi
	rm -f "$pf"
	return 1
}

port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

show_logs() {
	local dir
	dir="$(node_dir "$1")"
	for f in "$dir/logs/system.log" "$dir/logs/stdout.log"; do
		if [[ -s "$f" ]]; then
			echo "---- last lines of ${f#"$ROOT"/} ----" >&2
			tail -n 25 "$f" | cut -c1-300 >&2
		fi
	done
}

check_tools() {
	command -v java >/dev/null || fail "no java on PATH: install a Java 17 runtime (Debian: apt-get install openjdk-17-jre-headless)"
	local major
	major="$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n1)"
	[[ "$major" == 17 || "$major" == 11 ]] || fail "Cassandra $CASSANDRA_VERSION needs Java 17 (or 11); java -version says ${major:-unknown}"
	command -v go >/dev/null || fail "no go on PATH (needed to build the CQL probe)"
}

fetch_server() {
	if [[ -f "$LIB/cassandra-all-$CASSANDRA_VERSION.jar" ]]; then
		return 0
	fi
	command -v mvn >/dev/null || fail "no mvn on PATH: install Maven (Debian: apt-get install maven)"
	say "fetching cassandra-all $CASSANDRA_VERSION and its dependencies from Maven Central"
	local tmp="$LIB.tmp.$$"
	rm -rf "$tmp"
	mkdir -p "$tmp"
	if ! mvn -q -B -f "$HERE/pom.xml" -Dcassandra.version="$CASSANDRA_VERSION" \
		dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$tmp" >"$tmp.log" 2>&1; then
		tail -n 30 "$tmp.log" >&2
		rm -rf "$tmp" "$tmp.log"
		fail "Maven could not fetch org.apache.cassandra:cassandra-all:$CASSANDRA_VERSION (see above)"
	fi
	rm -f "$tmp.log"
	mkdir -p "$(dirname "$LIB")"
	rm -rf "$LIB"
	mv "$tmp" "$LIB"
	say "server unpacked in ${LIB#"$ROOT"/}"
}

# cassandra-stress ships only in the binary tarball. The newest tarball on Maven Central is
# apache-cassandra 4.0-alpha2; its stress tool runs on Java 17 and writes to a 5.0 node over
# native protocol v4, so the benchmarks use it as their reference load generator.
STRESS_VERSION=4.0-alpha2
STRESS_SHA1=908f50725f0f94bcfa7670f3528df475972a8972
STRESS_DIR="$CACHE/stress-$STRESS_VERSION"

fetch_stress() {
	local bin="$STRESS_DIR/tools/bin/cassandra-stress"
	if [[ -x "$bin" ]]; then
		echo "$bin"
		return 0
	fi
	command -v curl >/dev/null || fail "no curl on PATH (Debian: apt-get install curl)"
	local url="https://repo1.maven.org/maven2/org/apache/cassandra/apache-cassandra/$STRESS_VERSION/apache-cassandra-$STRESS_VERSION-bin.tar.gz"
	local tmp="$STRESS_DIR.tmp.$$"
	rm -rf "$tmp"
	mkdir -p "$tmp"
	say "fetching cassandra-stress (apache-cassandra $STRESS_VERSION binary tarball) from Maven Central" >&2
	curl -fsS -o "$tmp/a.tgz" "$url" || { rm -rf "$tmp"; fail "could not download $url"; }
	local sum
	sum="$(sha1sum "$tmp/a.tgz" | cut -d' ' -f1)"
	[[ "$sum" == "$STRESS_SHA1" ]] || { rm -rf "$tmp"; fail "$url: sha1 $sum, want $STRESS_SHA1"; }
	tar -xzf "$tmp/a.tgz" -C "$tmp" --strip-components=1
	rm -f "$tmp/a.tgz"
	rm -rf "$STRESS_DIR"
	mv "$tmp" "$STRESS_DIR"
	echo "$bin"
}

build_probe() {
	if [[ -x "$CQLPING" && "$CQLPING" -nt "$HERE/cqlping/main.go" ]]; then
		return 0
	fi
	mkdir -p "$(dirname "$CQLPING")"
	(cd "$ROOT" && go build -o "$CQLPING" ./internal/devtools/cassandra/cqlping) || fail "could not build the CQL probe"
}

write_config() {
	local n="$1" seeds="$2" dir addr
	dir="$(node_dir "$n")"
	addr="$(node_addr "$n")"
	mkdir -p "$dir"/{conf,data,commitlog,saved_caches,hints,cdc_raw,logs}
	cat >"$dir/conf/cassandra.yaml" <<EOF
# Written by cassandra.sh for a local node; rewritten at every start.
cluster_name: '$CLUSTER_NAME'
num_tokens: 16
allocate_tokens_for_local_replication_factor: 3
partitioner: org.apache.cassandra.dht.Murmur3Partitioner
endpoint_snitch: $SNITCH
seed_provider:
  - class_name: org.apache.cassandra.locator.SimpleSeedProvider
    parameters:
      - seeds: "$seeds"
listen_address: $addr
rpc_address: $addr
storage_port: $STORAGE_PORT
native_transport_port: $CQL_PORT
start_native_transport: true
auto_bootstrap: false
data_file_directories:
  - $dir/data
commitlog_directory: $dir/commitlog
saved_caches_directory: $dir/saved_caches
hints_directory: $dir/hints
cdc_raw_directory: $dir/cdc_raw
commitlog_sync: periodic
commitlog_sync_period: 10000ms
commitlog_segment_size: 32MiB
authenticator: AllowAllAuthenticator
authorizer: AllowAllAuthorizer
role_manager: CassandraRoleManager
read_request_timeout: 5000ms
write_request_timeout: 2000ms
cas_contention_timeout: 1000ms
paxos_variant: $PAXOS_VARIANT
request_timeout: 10000ms
concurrent_reads: 32
concurrent_writes: 32
concurrent_counter_writes: 32
disk_optimization_strategy: ssd
user_defined_functions_enabled: false
materialized_views_enabled: false
sasi_indexes_enabled: false
auto_snapshot: false
EOF
	prune_dropped "$dir/data"
	cp "$HERE/conf/logback.xml" "$dir/conf/logback.xml"
	rm -f "$dir/conf/cassandra-rackdc.properties"
	if [[ "$SNITCH" == GossipingPropertyFileSnitch ]]; then
		# Read from the class path, where $dir/conf comes first.
		printf 'dc=%s\nrack=rack1\n' "$(node_dc "$n")" >"$dir/conf/cassandra-rackdc.properties"
	fi
	if ((SECURE)); then
		secure_config "$dir"
	fi
}

# prune_dropped DATA: delete what a stopped node keeps of the tables it dropped. The tests drop a
# keyspace each, and Cassandra keeps two things of every dropped table that has seen a
# lightweight transaction or was dropped with auto_snapshot on (its default; this script now
# turns it off):
# - its Paxos state tracker's files (system/_paxos_repair_state/<keyspace>-<table>-<id>-<n>.paxos,
#   or UNKNOWN-UNKNOWN-<id>-...), which every start reads: with 15,469 of them, left by many
#   runs, a node answered CQL after 236 s (START_TIMEOUT is 240), and after 17 s without them;
# - a snapshot (<table dir>/snapshots/dropped-*): 22,579 of them took 2 GB.
# A table counts as dropped when no directory of its id holds a file: Cassandra leaves a dropped
# table's directory empty, and a live one that is empty too has no data its tracker could
# concern (the node was drained, or its data is in the commit log, and a later transaction on a
# key completes an unfinished one). Nothing else is touched.
prune_dropped() {
	local data="$1" list live state="$1/system/_paxos_repair_state"
	[[ -d "$data" ]] || return 0
	list="$(mktemp)"
	find "$data" -mindepth 4 -maxdepth 4 -type d -path '*/snapshots/dropped-*' >"$list"
	if [[ -s "$list" ]]; then
		say "deleting $(wc -l <"$list") snapshots of dropped tables"
		tr '\n' '\0' <"$list" | xargs -0 rm -rf
		for _ in 1 2 3; do # snapshots/, then the table's directory, then the keyspace's
			sed -i 's|/[^/]*$||' "$list"
			sort -u -o "$list" "$list"
			tr '\n' '\0' <"$list" | xargs -0 rmdir --ignore-fail-on-non-empty
		done
	fi
	if [[ -d "$state" ]]; then
		live="$(mktemp)"
		# Table directories are <table>-<id as 32 hex digits>; each file under one makes it live.
		find "$data" -mindepth 3 -type f -printf '%P\n' | cut -d/ -f2 | sed 's/.*-//' | sort -u >"$live"
		find "$state" -maxdepth 1 -type f -name '*.paxos*' -printf '%f\n' |
			sed -nE 's/^.*-([0-9a-f]{8})-([0-9a-f]{4})-([0-9a-f]{4})-([0-9a-f]{4})-([0-9a-f]{12})-[0-9]+\.paxos(\.crc)?$/\1\2\3\4\5 &/p' |
			awk 'NR == FNR { live[$1] = 1; next } !($1 in live) { print $2 }' "$live" - >"$list"
		if [[ -s "$list" ]]; then
			say "deleting $(wc -l <"$list") Paxos state files of dropped tables"
			(cd "$state" && tr '\n' '\0' <"$list" | xargs -0 rm -f)
		fi
		rm -f "$live"
	fi
	rm -f "$list"
}

# secure_config DIR: turn the node's configuration into the secured node's: password
# authentication, permissions, and client TLS requiring a client certificate signed by the
# test CA (PEM files, PEMBasedSslContextFactory). The credentials cache is off so that a
# changed password applies to the next login at once (the rotation test relies on it).
secure_config() {
	local dir="$1" certs="$RING_DIR/certs"
	sed -i -e 's/^authenticator: .*/authenticator: PasswordAuthenticator/' \
		-e 's/^authorizer: .*/authorizer: CassandraAuthorizer/' "$dir/conf/cassandra.yaml"
	cat >>"$dir/conf/cassandra.yaml" <<EOF
credentials_validity: 0ms
client_encryption_options:
  enabled: true
  optional: false
  require_client_auth: true
  protocol: TLS
  accepted_protocols: [TLSv1.2, TLSv1.3]
  ssl_context_factory:
    class_name: org.apache.cassandra.security.PEMBasedSslContextFactory
  keystore: $certs/server-keystore.pem
  truststore: $certs/ca.pem
EOF
}

start_node() {
	local n="$1" seeds="$2" nodes="$3" dir addr pid heap newsize
	dir="$(node_dir "$n")"
	addr="$(node_addr "$n")"
	if pid="$(running "$n")"; then
		say "node $n already running (pid $pid), reused"
		return 0
	fi
	local port
	for port in "$CQL_PORT" "$STORAGE_PORT"; do
		if port_open "$addr" "$port"; then
			fail "port $port on $addr is taken by a process this script did not start; stop it, or point the project at that Cassandra with HOLDOVER_CASSANDRA_HOSTS=$addr"
		fi
	done
	if port_open 127.0.0.1 $((JMX_BASE + n)); then
		fail "JMX port $((JMX_BASE + n)) on 127.0.0.1 is taken by a process this script did not start; stop it first"
	fi
	write_config "$n" "$seeds"
	if ((nodes > 1)); then heap="${MAX_HEAP_SIZE:-768M}"; else heap="${MAX_HEAP_SIZE:-1G}"; fi
	newsize="${HEAP_NEWSIZE:-200M}"
	local jvm=()
	while IFS= read -r line; do
		# "--add-opens a/b=C" is two words for the java launcher; "--add-opens=a/b=C" is one.
		[[ "$line" == -* ]] && jvm+=("${line/ /=}")
	done <"$HERE/conf/jvm.options"
	jvm+=(
		"-Xms$heap" "-Xmx$heap" "-Xmn$newsize"
		"-javaagent:$LIB/jamm-0.4.0.jar"
		"-Dcassandra.jmx.local.port=$((JMX_BASE + n))"
		"-Dcassandra.config=file://$dir/conf/cassandra.yaml"
		"-Dcassandra.storagedir=$dir"
		"-Dcassandra.logdir=$dir/logs"
		"-Dlogback.configurationFile=$dir/conf/logback.xml"
		"-Dcassandra.skip_wait_for_gossip_to_settle=0"
		"-Dcassandra.ring_delay_ms=1000"
		"-Dcassandra-foreground=yes"
		"-XX:HeapDumpPath=$dir/logs"
		"-XX:ErrorFile=$dir/logs/hs_err_%p.log"
		"-Xlog:gc=info,safepoint=info:file=$dir/logs/gc.log:time,uptime,level,tags:filecount=4,filesize=10M"
		"${JVM_EXTRA[@]}"
	)
	: >"$dir/logs/stdout.log"
	local where=""
	((RING_DCS > 1)) && where=" in $(node_dc "$n")"
	say "starting node $n$where on $addr:$CQL_PORT (heap $heap)"
	setsid nohup java "${jvm[@]}" -cp "$dir/conf:$LIB/*" org.apache.cassandra.service.CassandraDaemon \
		>"$dir/logs/stdout.log" 2>&1 </dev/null 9>&- &
	echo $! >"$(pid_file "$n")"
}

wait_node() {
	local n="$1" addr started version
	addr="$(node_addr "$n")"
	started=$SECONDS
	while :; do
		if ! running "$n" >/dev/null; then
			show_logs "$n"
			fail "node $n exited during start-up (logs above)"
		fi
		if version="$("$CQLPING" -host "$addr" -port "$CQL_PORT" -timeout 2s 2>/dev/null)"; then
			say "release_version $version at $addr:$CQL_PORT (answered after $((SECONDS - started)) s)"
			return 0
		fi
		if ((SECONDS - started > START_TIMEOUT)); then
			show_logs "$n"
			fail "node $n did not answer CQL on $addr:$CQL_PORT within ${START_TIMEOUT}s (logs above)"
		fi
		sleep 1
	done
}

build_certgen() {
	if [[ -x "$CERTGEN" && "$CERTGEN" -nt "$HERE/certgen/main.go" ]]; then
		return 0
	fi
	mkdir -p "$(dirname "$CERTGEN")"
	(cd "$ROOT" && go build -o "$CERTGEN" ./internal/devtools/cassandra/certgen) || fail "could not build the certificate generator"
}

# probe_secure: ask the secured node for its version over TLS, logged in as the default superuser.
probe_secure() {
	local certs="$RING_DIR/certs"
	CQLPING_PASSWORD=cassandra "$CQLPING" -host "$(node_addr 1)" -port "$CQL_PORT" -timeout 2s \
		-ca "$certs/ca.pem" -cert "$certs/client.pem" -key "$certs/client-key.pem" -user cassandra
}

# wait_secure: wait for the secured node to answer over TLS and log a client in.
wait_secure() {
	local addr started version
	addr="$(node_addr 1)"
	started=$SECONDS
	while :; do
		if ! running 1 >/dev/null; then
			show_logs 1
			fail "the secured node exited during start-up (logs above)"
		fi
		if version="$(probe_secure 2>/dev/null)"; then
			say "release_version $version at $addr:$CQL_PORT (answered after $((SECONDS - started)) s)"
			say "tls+auth at $addr:$CQL_PORT"
			return 0
		fi
		if ((SECONDS - started > START_TIMEOUT)); then
			show_logs 1
			echo "---- last probe ----" >&2
			probe_secure >&2 || true
			fail "the secured node did not answer CQL over TLS on $addr:$CQL_PORT within ${START_TIMEOUT}s (logs above)"
		fi
		sleep 1
	done
}

cmd_start_secure() {
	check_tools
	mkdir -p "$CACHE"
	exec 9>"$CACHE/.lock"
	flock 9
	use_secure
	fetch_server
	build_probe
	build_certgen
	local pid dir
	dir="$(node_dir 1)"
	if pid="$(running 1)"; then
		say "secured node already running (pid $pid), reused"
	else
		# A fresh node and fresh certificates every time: no role, password or key outlives a run.
		rm -rf "$dir" "$RING_DIR/certs"
		"$CERTGEN" -dir "$RING_DIR/certs" -ip "$(node_addr 1)" -dns cassandra-secure.holdover.test ||
			fail "could not write the certificates"
		MAX_HEAP_SIZE="${SECURE_HEAP_SIZE:-512M}"
		HEAP_NEWSIZE="${HEAP_NEWSIZE:-128M}"
		JVM_EXTRA=("-Dcassandra.superuser_setup_delay_ms=0")
		start_node 1 "$(node_addr 1):$STORAGE_PORT" 1
	fi
	say "certificates in ${RING_DIR#"$ROOT"/}/certs"
	wait_secure
}

# multi_dc_dir DIR: whether DIR (…/ringN/nodeM) belongs to a multi-DC ring.
multi_dc_dir() { [[ "$1" =~ /ring[0-9]+dc[0-9]+/node[0-9]+$ ]]; }

cmd_start() {
	local nodes="${1:-1}" dcs="${2:-1}"
	[[ "$nodes" =~ ^[1-9]$ ]] || fail "NODES must be a number from 1 to 9, got '$nodes'"
	[[ "$dcs" =~ ^[1-9]$ ]] && ((dcs <= nodes)) || fail "DCS must be a number from 1 to NODES ($nodes), got '$dcs'"
	check_tools
	mkdir -p "$CACHE"
	exec 9>"$CACHE/.lock"
	flock 9
	use_ring "$nodes" "$dcs"
	# Rings of the same kind share addresses; a single-DC and a multi-DC ring do not.
	local dir pid mine=0
	((dcs > 1)) && mine=1
	for dir in "$CACHE"/ring*/node*; do
		[[ -d "$dir" && "${dir%/node*}" != "$RING_DIR" ]] || continue
		local theirs=0
		multi_dc_dir "$dir" && theirs=1
		((theirs == mine)) || continue
		if pid="$(running_in "$dir")"; then
			fail "a ring of another size is running on the same addresses (${dir#"$CACHE"/}, pid $pid); stop it first with $0 stop ${dir#"$CACHE"/}"
		fi
	done
	fetch_server
	build_probe
	# The seeds are the first node of each data center (nodes 1..dcs).
	local n seeds=""
	for ((n = 1; n <= dcs; n++)); do
		seeds+="${seeds:+,}$(node_addr "$n"):$STORAGE_PORT"
	done
	for ((n = 1; n <= nodes; n++)); do
		start_node "$n" "$seeds" "$nodes"
		wait_node "$n"
	done
}

cmd_stop() {
	local ring="${1:-}"
	[[ -z "$ring" || "$ring" == secure || "$ring" =~ ^ring[0-9]+(dc[0-9]+)?$ ]] || fail "stop takes a ring name such as ring1 or ring3dc2, or secure, got '$ring'"
	mkdir -p "$CACHE"
	exec 9>"$CACHE/.lock"
	flock 9
	local dir name pid dirs
	if [[ -n "$ring" ]]; then dirs=("$CACHE/$ring"/node*); else dirs=("$CACHE"/ring*/node* "$CACHE"/secure/node*); fi
	for dir in "${dirs[@]}"; do
		[[ -f "$dir/cassandra.pid" ]] || continue
		name="${dir#"$CACHE"/}"
		if pid="$(running_in "$dir")"; then
			kill "$pid" 2>/dev/null || true
			for _ in $(seq 1 60); do
				kill -0 "$pid" 2>/dev/null || break
				sleep 0.5
			done
			if kill -0 "$pid" 2>/dev/null; then
				kill -9 "$pid" 2>/dev/null || true
			fi
			say "stopped $name (pid $pid)"
		fi
		rm -f "$dir/cassandra.pid"
	done
}

cmd_status() {
	local dir name pid any=0
	for dir in "$CACHE"/ring*/node* "$CACHE"/secure/node*; do
		[[ -d "$dir" ]] || continue
		any=1
		name="${dir#"$CACHE"/}"
		if [[ "$name" == secure/* ]]; then use_secure; else use_ring_dir "${dir%/node*}"; fi
		if pid="$(running_in "$dir")"; then
			local where=""
			((RING_DCS > 1)) && where=" in $(node_dc "${dir##*/node}")"
			say "$name running (pid $pid) at $(node_addr "${dir##*/node}"):$CQL_PORT$where"
		else
			say "$name stopped"
		fi
	done
	((any)) || say "no node has been started"
}

# cmd_pids RING: the pids of RING's running nodes, one a line.
cmd_pids() {
	local ring="${1:-ring1}" dir pid
	[[ "$ring" == secure || "$ring" =~ ^ring[0-9]+(dc[0-9]+)?$ ]] || fail "pids takes a ring name such as ring1 or ring3dc2, or secure, got '$ring'"
	for dir in "$CACHE/$ring"/node*; do
		[[ -d "$dir" ]] || continue
		if pid="$(running_in "$dir")"; then echo "$pid"; fi
	done
}

# jvm_module_opts: the --add-exports/--add-opens options of conf/jvm.options, for tools.
jvm_module_opts() {
	local line
	while IFS= read -r line; do
		[[ "$line" == --add-* ]] && echo "${line/ /=}"
	done <"$HERE/conf/jvm.options"
}

cmd_nodetool() {
	local n="${1:-1}"
	shift || true
	[[ "${DCS:-1}" =~ ^[1-9]$ ]] || fail "DCS must be a number from 1 to 9, got '${DCS:-}'"
	use_ring 1 "${DCS:-1}"
	[[ -f "$LIB/cassandra-all-$CASSANDRA_VERSION.jar" ]] || fail "the server is not fetched yet: run make cassandra"
	local opts
	mapfile -t opts < <(jvm_module_opts)
	java "${opts[@]}" -Xmx256m -Dlogback.configurationFile="$HERE/conf/logback-tools.xml" \
		-cp "$LIB/*" org.apache.cassandra.tools.NodeTool -h 127.0.0.1 -p $((JMX_BASE + n)) "$@"
}

# start_args [NODES] [--dcs D]: cmd_start's arguments, NODES and DCS defaulting to the environment.
start_args() {
	local nodes="${NODES:-1}" dcs="${DCS:-1}" seen=0
	while (($#)); do
		case "$1" in
		--dcs) dcs="${2:-}"; shift 2 || fail "--dcs needs a number" ;;
		--dcs=*) dcs="${1#--dcs=}"; shift ;;
		*)
			((seen == 0)) || fail "start takes one NODES argument, got another: '$1'"
			nodes="$1"; seen=1; shift ;;
		esac
	done
	cmd_start "$nodes" "$dcs"
}

# ring_start_args RING: the arguments of this script that start RING.
ring_start_args() {
	case "$1" in
	secure) echo start-secure ;;
	ring[1-9]) echo "start ${1#ring}" ;;
	ring[1-9]dc[1-9]) local nd="${1#ring}"; echo "start ${nd%dc*} --dcs ${nd#*dc}" ;;
	*) return 1 ;;
	esac
}

# ring_override RING: the variable that, when set, names a cluster to use instead of RING.
ring_override() {
	case "$1" in
	secure) echo HOLDOVER_CASSANDRA_SECURE_HOSTS ;;
	ring[1-9]) echo HOLDOVER_CASSANDRA_HOSTS ;;
	*) echo HOLDOVER_CASSANDRA_DC_HOSTS ;;
	esac
}

# ring_running RING: whether any node of RING runs.
ring_running() {
	local dir
	for dir in "$CACHE/$1"/node*; do
		[[ -d "$dir" ]] && running_in "$dir" >/dev/null && return 0
	done
	return 1
}

# cmd_with RING[,RING...] -- COMMAND [ARGS...]: see the usage at the top. It takes no lock
# itself (each start and stop does), so COMMAND may run this script too.
WITH_STARTED=()
with_stop() {
	local i
	for ((i = ${#WITH_STARTED[@]} - 1; i >= 0; i--)); do
		"$SELF" stop "${WITH_STARTED[i]}" || true
	done
	WITH_STARTED=()
}
cmd_with() {
	local rings=() ring var args t0=$SECONDS rc
	[[ $# -ge 3 && "$2" == -- ]] || { echo "usage: $0 with RING[,RING...] -- COMMAND [ARGS...]" >&2; exit 2; }
	IFS=, read -ra rings <<<"$1"
	shift 2
	for ring in "${rings[@]}"; do
		ring_start_args "$ring" >/dev/null || { echo "cassandra: with: unknown ring '$ring' (ring1..ring9, ring3dc2, ..., secure)" >&2; exit 2; }
	done
	trap with_stop EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	for ring in "${rings[@]}"; do
		var="$(ring_override "$ring")"
		if [[ -n "${!var:-}" ]]; then
			say "$ring: using $var=${!var}"
			continue
		fi
		ring_running "$ring" || WITH_STARTED+=("$ring") # a start failing halfway is stopped too
		read -ra args <<<"$(ring_start_args "$ring")"
		"$SELF" "${args[@]}" || { say "$ring could not start"; exit 1; }
	done
	((${#WITH_STARTED[@]} == 0)) || say "started ${WITH_STARTED[*]} in $((SECONDS - t0)) s"
	set +e
	"$@"
	rc=$?
	set -e
	exit "$rc"
}

case "${1:-}" in
with)
	shift
	cmd_with "$@"
	;;
start)
	shift
	start_args "$@"
	;;
start-secure) cmd_start_secure ;;
config)
	# Node 1 of the one-node ring, prepared as start would prepare it, without starting it.
	mkdir -p "$CACHE"
	exec 9>"$CACHE/.lock"
	flock 9
	use_ring 1 1
	if pid="$(running 1)"; then
		fail "node 1 is running (pid $pid); stop it first"
	fi
	write_config 1 "$(node_addr 1):$STORAGE_PORT"
	cat "$(node_dir 1)/conf/cassandra.yaml"
	;;
stop) cmd_stop "${2:-}" ;;
status) cmd_status ;;
pids) cmd_pids "${2:-}" ;;
fetch)
	mkdir -p "$CACHE"
	exec 9>"$CACHE/.lock"
	flock 9
	fetch_server >&2
	echo "$LIB"
	;;
fetch-stress)
	mkdir -p "$CACHE"
	exec 9>"$CACHE/.lock"
	flock 9
	fetch_stress
	;;
nodetool)
	shift
	cmd_nodetool "$@"
	;;
clean)
	cmd_stop
	rm -rf "$CACHE"/ring* "$CACHE"/secure
	say "node data removed"
	;;
*)
	echo "usage: $0 start [NODES] [--dcs D] | start-secure | stop [RING] | status | pids [RING] | with RING[,RING...] -- COMMAND | config | clean | fetch | fetch-stress | nodetool N ARGS" >&2
	exit 2
	;;
esac
