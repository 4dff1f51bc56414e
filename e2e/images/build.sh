#!/usr/bin/env bash
# Builds the drills' images locally, with no image registry, each only when its inputs changed.
#
#   build.sh [all|base|cassandra|node]   (default all)
#
#   base       a Debian root file system made with debootstrap (packages in base/packages, a
#              Java 17 runtime among them), imported with `docker import`. Cached twice: as the
#              image holdover/debian-jre17:<key> and as a tarball under the cache directory, so a
#              wiped engine re-imports it without running debootstrap again.
#   cassandra  FROM base: the cassandra-all jar and its runtime dependencies (fetched from Maven
#              Central as internal/devtools/cassandra/cassandra.sh does, into the same cache), the JVM
#              options of the distribution, a cassandra.yaml, and an entrypoint honouring the
#              official image's variables (cassandra/docker-entrypoint.sh).
#   node       FROM scratch: the static (CGO_ENABLED=0) cmd/holdover-node binary.
#
# Every image carries the label io.holdover.inputs, a SHA-256 over everything it is made of;
# an image whose label matches the inputs is reused as it is.
#
# Environment (optional):
#   HOLDOVER_E2E_CASSANDRA_IMAGE  Cassandra image (default holdover/cassandra:5.0.9). A name
#                                 outside holdover/ is not built: it is used if present, else
#                                 pulled (e.g. cassandra:5.0 for a user with registry access).
#   HOLDOVER_E2E_NODE_IMAGE       node image (default holdover/node:dev)
#   HOLDOVER_DEBIAN_MIRROR        Debian mirror for debootstrap (default: the machine's apt source)
#   HOLDOVER_DEBIAN_SUITE         Debian suite (default bookworm)
#   E2E_CACHE                     cache directory (default <repo>/.cache/e2e)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
CACHE="${E2E_CACHE:-$ROOT/.cache/e2e}"
CASSANDRA_SH="$ROOT/internal/devtools/cassandra/cassandra.sh"
CASSANDRA_VERSION="$(sed -n 's/^CASSANDRA_VERSION=//p' "$CASSANDRA_SH")"
SERVER_LIB="${CASSANDRA_CACHE:-$ROOT/.cache/cassandra}/server-$CASSANDRA_VERSION/lib"
SUITE="${HOLDOVER_DEBIAN_SUITE:-bookworm}"
CASSANDRA_IMAGE="${HOLDOVER_E2E_CASSANDRA_IMAGE:-holdover/cassandra:$CASSANDRA_VERSION}"
NODE_IMAGE="${HOLDOVER_E2E_NODE_IMAGE:-holdover/node:dev}"
LABEL=io.holdover.inputs
GO="${GO:-go}"

say() { echo "images: $*"; }
fail() {
	echo "images: ERROR: $*" >&2
	exit 1
}

# label IMAGE: the image's inputs label, or nothing when the image is absent.
label() { docker image inspect -f "{{index .Config.Labels \"$LABEL\"}}" "$1" 2>/dev/null || true; }

hash_stdin() { sha256sum | cut -c1-64; }

# hash_files FILE...: one hash over the files' names (relative to ROOT) and contents.
hash_files() {
	local f
	for f in "$@"; do
		printf '%s %s\n' "${f#"$ROOT"/}" "$(sha256sum <"$f" | cut -c1-64)"
	done | hash_stdin
}

mirror() {
	if [[ -n "${HOLDOVER_DEBIAN_MIRROR:-}" ]]; then
		echo "$HOLDOVER_DEBIAN_MIRROR"
		return
	fi
	local m=""
	if [[ -f /etc/apt/sources.list.d/debian.sources ]]; then
		m="$(awk '/^URIs:/ { for (i = 2; i <= NF; i++) if ($i ~ /\/debian\/?$/) { print $i; exit } }' /etc/apt/sources.list.d/debian.sources)"
	fi
	if [[ -z "$m" && -f /etc/apt/sources.list ]]; then
		m="$(awk '$1 == "deb" && $2 ~ /\/debian\/?$/ { print $2; exit }' /etc/apt/sources.list)"
	fi
	echo "${m:-http://deb.debian.org/debian}"
}

# ---- base: debootstrap + docker import -------------------------------------------------------

base_key() {
	{
		echo "suite $SUITE variant minbase v1"
		grep -v '^#' "$HERE/base/packages" | grep -v '^$'
	} | hash_stdin
}

base_image() { echo "holdover/debian-jre17:$(base_key | cut -c1-12)"; }

build_base() {
	local image key tarball
	key="$(base_key)"
	image="$(base_image)"
	if [[ "$(label "$image")" == "$key" ]]; then
		say "base $image is up to date"
		return 0
	fi
	local t0=$SECONDS
	tarball="$CACHE/base-${key:0:12}.tar"
	if [[ ! -s "$tarball" ]]; then
		[[ "$(id -u)" == 0 ]] || fail "building the base image runs debootstrap, which needs root"
		if ! command -v debootstrap >/dev/null; then
			say "installing Debian's debootstrap (apt-get update first)"
			apt-get update -qq >/dev/null
			DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null || fail "apt-get install debootstrap failed"
		fi
		local rootfs="$CACHE/rootfs.tmp.$$" include
		include="$(grep -v '^#' "$HERE/base/packages" | grep -v '^$' | paste -sd, -)"
		rm -rf "$rootfs"
		mkdir -p "$rootfs"
		say "debootstrap $SUITE (minbase + $include) from $(mirror)"
		if ! debootstrap --variant=minbase --include="$include" --components=main "$SUITE" "$rootfs" "$(mirror)" >"$CACHE/debootstrap.log" 2>&1; then
			tail -n 20 "$CACHE/debootstrap.log" >&2
			rm -rf "$rootfs"
			fail "debootstrap failed (log: ${CACHE#"$ROOT"/}/debootstrap.log)"
		fi
		# What an image does not need: package caches and lists, documentation, locales.
		rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/lib/apt/lists/* \
			"$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* "$rootfs"/usr/share/locale/*
		rm -f "$CACHE"/base-*.tar
		tar --numeric-owner -C "$rootfs" -cf "$tarball.tmp" .
		mv "$tarball.tmp" "$tarball"
		rm -rf "$rootfs"
		say "root file system made in $((SECONDS - t0)) s ($(du -h "$tarball" | cut -f1) tarball cached)"
	fi
	docker import \
		--change "LABEL $LABEL=$key" \
		--change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
		--change 'ENV LANG=C.UTF-8' \
		--change 'CMD ["/bin/bash"]' \
		"$tarball" "$image" >/dev/null
	say "base $image imported ($((SECONDS - t0)) s in all)"
	# Base images of older inputs.
	docker images holdover/debian-jre17 --format '{{.Repository}}:{{.Tag}}' | grep -vx "$image" |
		xargs -r docker rmi >/dev/null 2>&1 || true
}

# ---- cassandra ------------------------------------------------------------------------------

# fetch_server gets the server's jars through the script `make cassandra` uses, so both
# run the same bits.
fetch_server() {
	local lib
	lib="$("$CASSANDRA_SH" fetch)" || fail "could not fetch the Cassandra server (see above)"
	[[ "$lib" == "$SERVER_LIB" ]] || fail "cassandra.sh keeps the server in $lib, expected $SERVER_LIB"
}

build_cassandra() {
	if [[ "$CASSANDRA_IMAGE" != holdover/* ]]; then
		if docker image inspect "$CASSANDRA_IMAGE" >/dev/null 2>&1; then
			say "using Cassandra image $CASSANDRA_IMAGE as it is (not built here)"
		else
			say "pulling Cassandra image $CASSANDRA_IMAGE"
			docker pull -q "$CASSANDRA_IMAGE" >/dev/null || fail "could not pull $CASSANDRA_IMAGE"
		fi
		return 0
	fi
	build_base
	fetch_server
	local d="$HERE/cassandra" base key
	base="$(base_image)"
	key="$({
		echo "base $(label "$base")"
		hash_files "$d/Dockerfile" "$d/docker-entrypoint.sh" "$d/nodetool" "$d"/conf/* \
			"$ROOT/internal/devtools/cassandra/conf/jvm.options" "$ROOT/internal/devtools/cassandra/conf/logback-tools.xml"
		(cd "$SERVER_LIB" && sha256sum -- *.jar)
	} | hash_stdin)"
	if [[ "$(label "$CASSANDRA_IMAGE")" == "$key" ]]; then
		say "cassandra $CASSANDRA_IMAGE is up to date"
		return 0
	fi
	local t0=$SECONDS ctx="$CACHE/ctx-cassandra"
	rm -rf "$ctx"
	mkdir -p "$ctx/conf"
	cp "$d/Dockerfile" "$d/docker-entrypoint.sh" "$d/nodetool" "$ctx/"
	cp "$d"/conf/* "$ROOT/internal/devtools/cassandra/conf/jvm.options" "$ROOT/internal/devtools/cassandra/conf/logback-tools.xml" "$ctx/conf/"
	cp -al "$SERVER_LIB" "$ctx/lib" 2>/dev/null || cp -a "$SERVER_LIB" "$ctx/lib"
	if ! docker build -q --build-arg "BASE=$base" --label "$LABEL=$key" -t "$CASSANDRA_IMAGE" "$ctx" >"$CACHE/build-cassandra.log" 2>&1; then
		tail -n 20 "$CACHE/build-cassandra.log" >&2
		fail "docker build of $CASSANDRA_IMAGE failed"
	fi
	rm -rf "$ctx"
	say "cassandra $CASSANDRA_IMAGE built in $((SECONDS - t0)) s"
}

# ---- node -----------------------------------------------------------------------------------

build_node() {
	local d="$HERE/node" t0=$SECONDS ctx="$CACHE/ctx-node" key
	[[ -d "$ROOT/cmd/holdover-node" ]] || fail "cmd/holdover-node is missing"
	mkdir -p "$ctx"
	(cd "$ROOT" && CGO_ENABLED=0 "$GO" build -trimpath -ldflags='-s -w' -o "$ctx/holdover-node" ./cmd/holdover-node) ||
		fail "could not build cmd/holdover-node"
	cp "$d/Dockerfile" "$ctx/"
	key="$(hash_files "$ctx/Dockerfile" "$ctx/holdover-node")"
	if [[ "$(label "$NODE_IMAGE")" == "$key" ]]; then
		say "node $NODE_IMAGE is up to date"
		return 0
	fi
	if ! docker build -q --label "$LABEL=$key" -t "$NODE_IMAGE" "$ctx" >"$CACHE/build-node.log" 2>&1; then
		tail -n 20 "$CACHE/build-node.log" >&2
		fail "docker build of $NODE_IMAGE failed"
	fi
	say "node $NODE_IMAGE built in $((SECONDS - t0)) s"
}

mkdir -p "$CACHE"
exec 8>"$CACHE/.images.lock"
flock 8
case "${1:-all}" in
all)
	build_cassandra
	build_node
	# Images this script built before and has since replaced.
	docker image prune -f --filter "label=$LABEL" >/dev/null 2>&1 || true
	;;
base) build_base ;;
cassandra) build_cassandra ;;
node) build_node ;;
*)
	echo "usage: $0 [all|base|cassandra|node]" >&2
	exit 2
	;;
esac
