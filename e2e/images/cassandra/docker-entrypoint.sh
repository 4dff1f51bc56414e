#!/bin/bash
# Entrypoint of the drills' Cassandra image. Like the official image's, it honours
#   CASSANDRA_LISTEN_ADDRESS     address to listen on for peers ("auto", the default: this container's)
#   CASSANDRA_BROADCAST_ADDRESS  address told to peers (default: the listen address)
#   CASSANDRA_RPC_ADDRESS        CQL listen address (default 0.0.0.0)
#   CASSANDRA_BROADCAST_RPC_ADDRESS  CQL address told to clients (default: the broadcast address)
#   CASSANDRA_SEEDS              comma-separated seeds (default: the broadcast address)
#   CASSANDRA_CLUSTER_NAME       cluster name (default 'Test Cluster')
#   CASSANDRA_NUM_TOKENS, CASSANDRA_ENDPOINT_SNITCH
#   MAX_HEAP_SIZE, HEAP_NEWSIZE  JVM heap and young generation (default 1G and 200M)
#   JVM_EXTRA_OPTS               more JVM options (e.g. -Dcassandra.ring_delay_ms=1000)
# and then runs org.apache.cassandra.service.CassandraDaemon in the foreground with the
# distribution's JVM options for Java 17 (conf/jvm.options). Any other command is run as given.
set -euo pipefail

if [[ "${1:-cassandra}" != cassandra ]]; then
	exec "$@"
fi

conf="$CASSANDRA_CONF/cassandra.yaml"

ip_address() {
	ip -4 -o address show scope global | awk '{ split($4, a, "/"); print a[1]; exit }'
}

: "${CASSANDRA_RPC_ADDRESS:=0.0.0.0}"
: "${CASSANDRA_LISTEN_ADDRESS:=auto}"
if [[ "$CASSANDRA_LISTEN_ADDRESS" == auto ]]; then
	CASSANDRA_LISTEN_ADDRESS="$(ip_address)"
fi
: "${CASSANDRA_BROADCAST_ADDRESS:=$CASSANDRA_LISTEN_ADDRESS}"
if [[ "$CASSANDRA_BROADCAST_ADDRESS" == auto ]]; then
	CASSANDRA_BROADCAST_ADDRESS="$(ip_address)"
fi
: "${CASSANDRA_BROADCAST_RPC_ADDRESS:=$CASSANDRA_BROADCAST_ADDRESS}"
: "${CASSANDRA_SEEDS:=$CASSANDRA_BROADCAST_ADDRESS}"
export CASSANDRA_RPC_ADDRESS CASSANDRA_LISTEN_ADDRESS CASSANDRA_BROADCAST_ADDRESS CASSANDRA_BROADCAST_RPC_ADDRESS

sed -ri 's/(- seeds:).*/\1 "'"$CASSANDRA_SEEDS"'"/' "$conf"
for yaml in broadcast_address broadcast_rpc_address cluster_name endpoint_snitch listen_address num_tokens rpc_address; do
	var="CASSANDRA_${yaml^^}"
	val="${!var:-}"
	if [[ -n "$val" ]]; then
		sed -ri 's/^(# )?('"$yaml"':).*/\2 '"$val"'/' "$conf"
	fi
done

heap="${MAX_HEAP_SIZE:-1G}"
newsize="${HEAP_NEWSIZE:-200M}"
jvm=()
while IFS= read -r line; do
	# "--add-opens a/b=C" is two words for the java launcher; "--add-opens=a/b=C" is one.
	[[ "$line" == -* ]] && jvm+=("${line/ /=}")
done <"$CASSANDRA_CONF/jvm.options"
jamm="$(ls "$CASSANDRA_HOME"/lib/jamm-*.jar | head -n1)"
jvm+=(
	"-Xms$heap" "-Xmx$heap" "-Xmn$newsize"
	"-javaagent:$jamm"
	"-Dcassandra.jmx.local.port=7199"
	"-Dcassandra.config=file://$conf"
	"-Dcassandra.storagedir=/var/lib/cassandra"
	"-Dcassandra.logdir=/var/log/cassandra"
	"-Dlogback.configurationFile=$CASSANDRA_CONF/logback.xml"
	"-Dcassandra-foreground=yes"
	"-XX:HeapDumpPath=/var/lib/cassandra"
	"-XX:ErrorFile=/var/log/cassandra/hs_err_%p.log"
)
# shellcheck disable=SC2206 # JVM_EXTRA_OPTS is a list of words, as in cassandra-env.sh
jvm+=(${JVM_EXTRA_OPTS:-})

echo "docker-entrypoint: cluster ${CASSANDRA_CLUSTER_NAME:-Test Cluster}, listen $CASSANDRA_LISTEN_ADDRESS, broadcast $CASSANDRA_BROADCAST_ADDRESS, seeds $CASSANDRA_SEEDS, heap $heap"
exec java "${jvm[@]}" -cp "$CASSANDRA_CONF:$CASSANDRA_HOME/lib/*" org.apache.cassandra.service.CassandraDaemon
