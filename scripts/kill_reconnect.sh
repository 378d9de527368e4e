#!/usr/bin/env bash
# What a node crash costs players who reconnect at once (BENCHMARKS.md, "Node death: every client
# reconnects at once"). Starts the three-node local cluster (config/local-cluster), runs arena
# rooms through the load tester with players spread over the three nodes, kills n1 with SIGKILL
# KILL_AT seconds in, and prints the load tester's report: how many players lost their connection
# while seated, how many got their seat back (their room's room_state on the new connection), and
# how long after the loss (p50/p99/max). Every client reconnects at once, to the next node, with
# its resume token, as PROTOCOL.md tells clients to.
#
#   scripts/kill_reconnect.sh [ROOMS] [SEATS] [KILL_AT] [DURATION]   (defaults 60 4 8 20)
set -euo pipefail
cd "$(dirname "$0")/.."
rooms=${1:-60}
seats=${2:-4}
kill_at=${3:-8}
duration=${4:-20}
cargo build --release --quiet --workspace --bins
dir=target/kill-reconnect
mkdir -p "$dir"
pids=()
stop() {
  local p
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
}
trap stop EXIT
for i in 1 2 3; do
  ./target/release/warren --config "config/local-cluster/n$i.toml" >"$dir/n$i.log" 2>&1 &
  pids+=($!)
done
for _ in $(seq 1 100); do
  view=$(curl -fsS http://127.0.0.1:7361/v1/cluster 2>/dev/null || true)
  [ "$(grep -o '"state":"ready"' <<<"$view" | wc -l)" -eq 3 ] && break
  sleep 0.1
done
./target/release/warren-loadtest arena --quiet \
  --target http://127.0.0.1:7361,http://127.0.0.1:7362,http://127.0.0.1:7363 \
  -n "$rooms" --seats "$seats" --hz 20 --tick-hz 20 --duration "$duration" \
  --kill "${pids[0]}@$kill_at" --json "$dir/report.json"
echo "logs: $dir/n{1,2,3}.log, report: $dir/report.json"
