#!/usr/bin/env bash
# Builds once, then runs a three-node Warren cluster on loopback in the foreground:
#   n1: http 127.0.0.1:7361, cluster 127.0.0.1:7461   (n2: 7362/7462, n3: 7363/7463)
# Logs go to target/local-cluster/n*.log. Ctrl-C (or SIGTERM) drains and stops all three.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
mkdir -p target/local-cluster
pids=()
stop() {
  trap - INT TERM EXIT
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait || true
}
trap stop INT TERM EXIT
for i in 1 2 3; do
  ./target/release/warren --config "config/local-cluster/n$i.toml" >"target/local-cluster/n$i.log" 2>&1 &
  pids+=("$!")
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
echo "logs: target/local-cluster/n{1,2,3}.log; Ctrl-C to stop"
wait
