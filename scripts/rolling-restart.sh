#!/usr/bin/env bash
# Rolling restart of a running local cluster, one node at a time, as
# `kubectl rollout restart statefulset/warren` does on Kubernetes: for each node, SIGTERM (the node
# drains: readiness 503, pools handed off, rooms live-migrated, sessions closed with 4001), wait for
# it to exit, start it again with the same command line and environment, and wait until it is
# ready and every node of the cluster sees every other one ready before the next.
#
#   scripts/rolling-restart.sh [DIR] [NEW_BINARY]
#
# DIR (default target/local-cluster, where scripts/local-cluster.sh keeps it) holds, per node,
# `<name>.pid` (its process id) and `<name>.http` (host:port of its HTTP listener). Nodes are
# restarted in the order of their names; a restarted node's output goes to `<name>.log` there.
# NEW_BINARY, when given, is the binary the nodes restart with: an upgrade, of Warren or of a game's
# logic (e.g. from `eights-node-v1` to `eights-node`: rooms move only to nodes that restore their
# state version, so players see a pause, not an error). Otherwise each node restarts its own.
# WARREN_ADMIN_TOKEN, when set, is sent to /v1/cluster (needed off loopback).
# Exits non-zero, naming the node, if a node does not drain or come back within the time limits.
set -euo pipefail
dir=${1:-target/local-cluster}
new_binary=${2:-}
if [ -n "$new_binary" ]; then
  new_binary=$(readlink -f "$new_binary")
  [ -x "$new_binary" ] || { echo "rolling-restart: $2 is not an executable" >&2; exit 2; }
fi
drain_limit=${DRAIN_LIMIT_SECS:-60}
ready_limit=${READY_LIMIT_SECS:-60}
auth=()
[ -n "${WARREN_ADMIN_TOKEN:-}" ] && auth=(-H "Authorization: Bearer $WARREN_ADMIN_TOKEN")

shopt -s nullglob
pidfiles=("$dir"/*.pid)
[ ${#pidfiles[@]} -gt 0 ] || { echo "rolling-restart: no *.pid files in $dir" >&2; exit 2; }
names=()
for f in "${pidfiles[@]}"; do names+=("$(basename "$f" .pid)"); done
total=${#names[@]}

now() { date +%s.%N; }
# Gone, or exited and waiting for its parent to reap it.
exited() { [ ! -d "/proc/$1" ] || grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }

# Every node answers /readyz 200 and sees $total ready members.
cluster_ready() {
  local n http view
  for n in "${names[@]}"; do
    http=$(cat "$dir/$n.http")
    curl -fsS -o /dev/null "http://$http/readyz" 2>/dev/null || return 1
    view=$(curl -fsS "${auth[@]}" "http://$http/v1/cluster" 2>/dev/null) || return 1
    [ "$(grep -o '"state":"ready"' <<<"$view" | wc -l)" -eq "$total" ] || return 1
  done
}

wait_until() { # seconds, command...
  local limit=$1; shift
  local start; start=$(now)
  until "$@"; do
    awk -v a="$start" -v b="$(now)" -v l="$limit" 'BEGIN { exit !(b - a > l) }' && return 1
    sleep 0.1
  done
}

wait_until "$ready_limit" cluster_ready || { echo "rolling-restart: the cluster is not ready to begin with" >&2; exit 1; }
for n in "${names[@]}"; do
  pid=$(cat "$dir/$n.pid")
  [ -d "/proc/$pid" ] || { echo "rolling-restart: $n (pid $pid) is not running" >&2; exit 1; }
  # The command line and environment to start it again with, read before it exits.
  mapfile -d '' cmd <"/proc/$pid/cmdline"
  mapfile -d '' env <"/proc/$pid/environ"
  cwd=$(readlink "/proc/$pid/cwd")
  [ -n "$new_binary" ] && cmd[0]=$new_binary
  t0=$(now)
  kill -TERM "$pid"
  wait_until "$drain_limit" exited "$pid" || { echo "rolling-restart: $n did not exit within ${drain_limit}s" >&2; exit 1; }
  drained=$(since "$t0")
  t1=$(now)
  (cd "$cwd" && exec env -i "${env[@]}" setsid "${cmd[@]}" >>"$dir/$n.log" 2>&1 </dev/null) &
  echo $! >"$dir/$n.pid"
  wait_until "$ready_limit" cluster_ready || { echo "rolling-restart: $n did not come back within ${ready_limit}s" >&2; exit 1; }
  echo "$n: drained and exited in ${drained}s, back and the cluster ready in $(since "$t1")s"
done
echo "rolling restart of $total nodes done"
