#!/usr/bin/env bash
# Make sure a Docker engine answers on this machine, starting one if needed.
#
# Idempotent: if `docker info` already works, it exits 0 at once.
# Otherwise (as root, on Debian) it installs the engine from Debian's
# packages when `dockerd` is missing, starts `dockerd` in the background and
# waits (bounded) until it answers. It fails loudly, printing the end of the
# daemon's log, if the engine does not come up.
#
# Environment:
#   BOTTLE_DOCKERD_LOG             daemon log file (default /tmp/dockerd.log)
#   BOTTLE_DOCKERD_TIMEOUT         seconds to wait for the engine (default 60)
#   BOTTLE_DOCKER_STORAGE_DRIVER   force a storage driver (default: dockerd's
#                                  own choice, overlay2 where it works; falls
#                                  back to vfs if the daemon won't start)
#
# Notes for this kind of machine (Debian bookworm VM, root, no engine running,
# no registry but Debian's and npm's reachable):
#   - Debian's docker.io is engine 20.10 (API 1.41). A newer client at
#     /usr/local/bin/docker negotiates the API version down and works with it.
#   - overlay2 on ext4 works; iptables (nf_tables backend) works, so user
#     defined bridge networks and `--internal` networks are honoured.
set -euo pipefail

LOG="${BOTTLE_DOCKERD_LOG:-/tmp/dockerd.log}"
TIMEOUT="${BOTTLE_DOCKERD_TIMEOUT:-60}"

say() { printf '[start-dockerd] %s\n' "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }

engine_up() { docker info >/dev/null 2>&1; }

if command -v docker >/dev/null 2>&1 && engine_up; then
  say "Docker engine already running ($(docker version --format '{{.Server.Version}}' 2>/dev/null || echo '?'))."
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  die "no Docker engine answers and we are not root, so we cannot start one"
fi

# --- install what is missing -------------------------------------------------
apt_updated=0
apt_install() {
  export DEBIAN_FRONTEND=noninteractive
  if [ "$apt_updated" -eq 0 ]; then
    say "apt-get update"
    apt-get update -qq >/dev/null || die "apt-get update failed"
    apt_updated=1
  fi
  say "apt-get install $*"
  apt-get install -y -qq --no-install-recommends "$@" >/dev/null \
    || die "apt-get install $* failed"
}

missing=()
command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
command -v iptables >/dev/null 2>&1 || missing+=(iptables)
# debootstrap is needed later by scripts/seed-base-images.sh.
command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
if [ "${#missing[@]}" -gt 0 ]; then
  apt_install "${missing[@]}"
fi
command -v dockerd >/dev/null 2>&1 || die "dockerd still not found after installing docker.io"
# Debian's docker.io also brings a client (/usr/bin/docker); an already
# present one earlier on PATH (e.g. /usr/local/bin/docker) is fine too.
command -v docker >/dev/null 2>&1 || die "docker client not found"

# --- start the daemon --------------------------------------------------------
PIDFILE=/var/run/docker.pid

daemon_alive() {
  [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE" 2>/dev/null)" 2>/dev/null
}

wait_for_engine() {
  local pid="$1" deadline=$((SECONDS + TIMEOUT))
  while [ "$SECONDS" -lt "$deadline" ]; do
    if engine_up; then return 0; fi
    if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
      say "dockerd (pid $pid) exited"
      return 1
    fi
    sleep 1
  done
  say "timed out after ${TIMEOUT}s waiting for the engine"
  return 1
}

start_daemon() {
  # $@: extra dockerd arguments
  say "starting dockerd $* (log: $LOG)"
  # setsid + nohup: the daemon outlives this script and the CI step that ran it.
  setsid nohup dockerd "$@" >>"$LOG" 2>&1 </dev/null &
  DOCKERD_PID=$!
}

show_log() {
  # the daemon's log without its (many) info/debug lines
  say "--- $LOG (errors and warnings, last lines) ---"
  grep -vE 'level=(info|debug)' "$LOG" | tail -n "${1:-25}" >&2 || true
}

stop_daemon() {
  local pid="$1"
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$PIDFILE"
}

if daemon_alive; then
  # A daemon is already starting (or hung): give it the same bounded wait.
  pid="$(cat "$PIDFILE")"
  say "dockerd already running as pid $pid; waiting for it to answer"
  wait_for_engine "$pid" && { say "Docker engine is up."; exit 0; }
  show_log
  die "an existing dockerd (pid $pid) does not answer; see $LOG"
fi
rm -f "$PIDFILE"

: >"$LOG" || die "cannot write $LOG"

args=()
if [ -n "${BOTTLE_DOCKER_STORAGE_DRIVER:-}" ]; then
  args+=(--storage-driver "$BOTTLE_DOCKER_STORAGE_DRIVER")
fi

start_daemon "${args[@]}"
if ! wait_for_engine "$DOCKERD_PID"; then
  show_log 10
  stop_daemon "$DOCKERD_PID"
  retried=0
  # iptables: if the nf_tables backend is refused, try the legacy one.
  if grep -iE 'level=(error|fatal)|failed' "$LOG" | grep -qi 'iptables' \
     && command -v iptables-legacy >/dev/null 2>&1 \
     && command -v update-alternatives >/dev/null 2>&1; then
    say "retrying with iptables-legacy"
    update-alternatives --set iptables /usr/sbin/iptables-legacy >/dev/null 2>&1 || true
    update-alternatives --set ip6tables /usr/sbin/ip6tables-legacy >/dev/null 2>&1 || true
    start_daemon "${args[@]}"
    wait_for_engine "$DOCKERD_PID" && retried=1 || stop_daemon "$DOCKERD_PID"
  fi
  # storage: if overlay2 (the default) does not work here, use vfs (slow, but
  # works everywhere).
  if [ "$retried" -eq 0 ] && [ -z "${BOTTLE_DOCKER_STORAGE_DRIVER:-}" ]; then
    say "retrying with --storage-driver vfs"
    start_daemon --storage-driver vfs
    wait_for_engine "$DOCKERD_PID" && retried=1 || stop_daemon "$DOCKERD_PID"
  fi
  if [ "$retried" -eq 0 ]; then
    show_log 30
    die "could not start a Docker engine"
  fi
fi

say "Docker engine is up: server $(docker version --format '{{.Server.Version}}'), storage driver $(docker info --format '{{.Driver}}')."
