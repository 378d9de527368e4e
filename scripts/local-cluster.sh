#!/usr/bin/env bash
#   scripts/local-cluster.sh [BINARY]
# Builds once, then runs a three-node Warren cluster on loopback in the foreground, of BINARY
# (default target/release/warren; a studio's own node, e.g. target/release/eights-node-v1):
#   n1: http 127.0.0.1:7361, cluster 127.0.0.1:7461   (n2: 7362/7462, n3: 7363/7463)
# Logs go to target/local-cluster/n*.log, process ids to n*.pid and HTTP addresses to n*.http
# (what scripts/rolling-restart.sh reads). Ctrl-C (or SIGTERM) drains and stops all three,
# including nodes a rolling restart started since.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
bin=${1:-target/release/warren}
[ -x "$bin" ] || { echo "local-cluster: $bin is not an executable (cargo build --release -p <its package>)" >&2; exit 2; }
dir=target/local-cluster
mkdir -p "$dir"
running() {
  local f
  for f in "$dir"/n*.pid; do [ -d "/proc/$(cat "$f")" ] && return 0; done
  return 1
}
stop() {
  trap - INT TERM EXIT
  local f
  for f in "$dir"/n*.pid; do kill -TERM "$(cat "$f")" 2>/dev/null || true; done
  while running; do sleep 0.2; done
}
trap stop INT TERM EXIT
for i in 1 2 3; do
  "$bin" --config "config/local-cluster/n$i.toml" >"$dir/n$i.log" 2>&1 &
  echo $! >"$dir/n$i.pid"
  echo "127.0.0.1:736$i" >"$dir/n$i.http"
done
for i in 1 2 3; do
  for _ in $(seq 1 100); do
    curl -fsS -o /dev/null "http://127.0.0.1:736$i/readyz" 2>/dev/null && break
    sleep 0.1
  done
done
echo "three nodes up; the cluster as n1 sees it:"
for _ in $(seq 1 50); do
  view=$(curl -fsS http://127.0.0.1:7361/v1/cluster)
  [ "$(grep -o '"state":"ready"' <<<"$view" | wc -l)" -eq 3 ] && break
  sleep 0.1
done
echo "$view"
echo "logs: $dir/n{1,2,3}.log; scripts/rolling-restart.sh restarts them one by one; Ctrl-C to stop"
while running; do sleep 1; done
