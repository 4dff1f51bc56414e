#!/usr/bin/env bash
# Makes a Docker engine answer for the drills, and stops it afterwards only if this script
# started it.
#
#   engine.sh start   use the engine that answers (DOCKER_HOST or /var/run/docker.sock); when
#                     none does and we run as root, install Debian's docker.io if dockerd is
#                     missing and start dockerd, remembering that we did (a pid file)
#   engine.sh stop    stop the dockerd this script started, if any; an engine it found running
#                     is left alone
#   engine.sh status  say which engine answers and whether this script started it
#
# Environment (optional):
#   E2E_CACHE                  state and logs (default: <repo>/.cache/e2e)
#   HOLDOVER_E2E_ENGINE_WAIT   seconds to wait for a started dockerd to answer (default 60)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
CACHE="${E2E_CACHE:-$ROOT/.cache/e2e}"
PID_FILE="$CACHE/dockerd.pid"
LOG="$CACHE/dockerd.log"
WAIT="${HOLDOVER_E2E_ENGINE_WAIT:-60}"

say() { echo "engine: $*"; }
fail() {
	echo "engine: ERROR: $*" >&2
	exit 1
}

answers() { docker info >/dev/null 2>&1; }

# running: pid is a process that has not exited (one that exited stays a zombie until reaped).
running() {
	local st
	st="$(ps -o stat= -p "$1" 2>/dev/null)" && [[ -n "$st" && "$st" != Z* ]]
}

# ours: the pid of the dockerd this script started, when it is still alive.
ours() {
	[[ -f "$PID_FILE" ]] || return 1
	local pid
	pid="$(cat "$PID_FILE")"
	if kill -0 "$pid" 2>/dev/null && grep -q dockerd "/proc/$pid/cmdline" 2>/dev/null; then
		echo "$pid"
		return 0
	fi
	rm -f "$PID_FILE"
	return 1
}

install_engine() {
	[[ "$(id -u)" == 0 ]] || fail "no Docker engine answers and dockerd is not installed; as root this script installs Debian's docker.io, otherwise install Docker and start it"
	command -v apt-get >/dev/null || fail "no Docker engine answers and there is no apt-get to install one; install Docker and start it"
	say "installing Debian's docker.io (apt-get update first)"
	apt-get update -qq >/dev/null
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null ||
		fail "apt-get install docker.io failed"
}

cmd_start() {
	command -v docker >/dev/null || install_engine
	if answers; then
		local v
		v="$(docker version --format '{{.Server.Version}}' 2>/dev/null || echo '?')"
		say "Docker engine $v answers"
		return 0
	fi
	[[ -n "${DOCKER_HOST:-}" ]] && fail "DOCKER_HOST=$DOCKER_HOST does not answer (docker info failed)"
	[[ "$(id -u)" == 0 ]] || fail "no Docker engine answers; start one (or run as root and this script starts dockerd)"
	command -v dockerd >/dev/null || install_engine
	command -v dockerd >/dev/null || fail "dockerd is still missing after installing docker.io"
	mkdir -p "$CACHE"
	exec 9>"$CACHE/.engine.lock"
	flock 9
	local pid
	if ! pid="$(ours)"; then
		say "no engine answers; starting dockerd (log: ${LOG#"$ROOT"/})"
		setsid nohup dockerd >"$LOG" 2>&1 </dev/null 9>&- &
		pid=$!
		echo "$pid" >"$PID_FILE"
	fi
	local started=$SECONDS
	until answers; do
		# Whether the process lives, not what it is called: until it has executed
		# dockerd it still bears this script's name (ours would say it is gone).
		if ! running "$pid"; then
			rm -f "$PID_FILE"
			tail -n 20 "$LOG" >&2 || true
			fail "dockerd exited during start-up (log above)"
		fi
		((SECONDS - started < WAIT)) || {
			tail -n 20 "$LOG" >&2 || true
			fail "dockerd did not answer within ${WAIT}s (log above)"
		}
		sleep 0.5
	done
	say "dockerd $(docker version --format '{{.Server.Version}}') started (pid $(cat "$PID_FILE")) in $((SECONDS - started)) s"
}

cmd_stop() {
	local pid
	if ! pid="$(ours)"; then
		return 0
	fi
	kill "$pid" 2>/dev/null || true
	for _ in $(seq 1 60); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.5
	done
	kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null || true
	rm -f "$PID_FILE"
	say "stopped the dockerd it started (pid $pid)"
}

cmd_status() {
	if answers; then
		if pid="$(ours)"; then say "answers (dockerd pid $pid, started by this script)"; else say "answers (not started by this script)"; fi
	else
		say "no engine answers"
	fi
}

case "${1:-}" in
start) cmd_start ;;
stop) cmd_stop ;;
status) cmd_status ;;
*)
	echo "usage: $0 start | stop | status" >&2
	exit 2
	;;
esac
