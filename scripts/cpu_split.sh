#!/usr/bin/env bash
# Splits the server CPU per delivered update into user and kernel time, for Colyseus and for a
# Warren node under the same arena load (../shared/peers/drive.mjs), one after the other.
# Run from the project root after `cargo build --release` and one run of ../shared/peers/compare.sh
# (which installs the peers' Node packages into /tmp/warren-peers).
#   bash scripts/cpu_split.sh [ROOMS] [SECONDS]
set -euo pipefail
rooms=${1:-50}
seconds=${2:-15}
work=${PEER_WORK:-/tmp/warren-peers}
bin=${WARREN_BIN:-target/release/warren}
[ -d "$work/node_modules" ] || { echo "run bash ../shared/peers/compare.sh once first" >&2; exit 2; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
ticks() { awk '{print $14, $15}' "/proc/$1/stat"; }
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done' EXIT

# Samples user and system ticks over the driver's measuring window (after its 5 s warm-up).
measure() { # name pid url target
  local name=$1 pid=$2 url=$3 target=$4 out
  out=$(mktemp)
  (cd "$work" && node drive.mjs --target "$target" --url "$url" --pid "$pid" --rooms "$rooms" --seconds "$seconds" >"$out") &
  local drv=$!
  sleep 6
  local a b
  a=$(ticks "$pid")
  sleep $((seconds - 2))
  b=$(ticks "$pid")
  wait "$drv"
  python3 - "$name" "$a" "$b" "$seconds" "$(cat "$out")" <<'PY'
import json, sys
name, a, b, secs, out = sys.argv[1], sys.argv[2].split(), sys.argv[3].split(), int(sys.argv[4]), json.loads(sys.argv[5])
span = secs - 2
ups = out["updates_per_sec"] * span
user = (int(b[0]) - int(a[0])) / 100 / ups * 1e6
system = (int(b[1]) - int(a[1])) / 100 / ups * 1e6
print(json.dumps({"server": name, "rooms": out["rooms"], "updates_per_sec": out["updates_per_sec"],
                  "user_us_per_update": round(user, 1), "kernel_us_per_update": round(system, 1),
                  "total_us_per_update": round(user + system, 1)}))
PY
  rm -f "$out"
}

cport=$(free_port)
(cd "$work" && PORT=$cport exec node server.mjs >"$work/colyseus.log" 2>&1) &
cpid=$!; pids+=("$cpid")
for _ in $(seq 1 100); do grep -q listening "$work/colyseus.log" 2>/dev/null && break; sleep 0.1; done
measure colyseus "$cpid" "ws://127.0.0.1:$cport" colyseus
kill "$cpid"; wait "$cpid" 2>/dev/null || true

hport=$(free_port); kport=$(free_port)
# WARREN_BIN is this script's, not a node setting: the node refuses unknown WARREN_ variables.
env -u WARREN_BIN WARREN_HTTP__LISTEN=127.0.0.1:$hport WARREN_CLUSTER__LISTEN=127.0.0.1:$kport WARREN_AUTH__ALLOW_GUEST=true \
  "$bin" >"$work/warren.log" 2>&1 &
wpid=$!; pids+=("$wpid")
for _ in $(seq 1 100); do curl -fsS -o /dev/null "http://127.0.0.1:$hport/readyz" 2>/dev/null && break; sleep 0.1; done
measure warren "$wpid" "http://127.0.0.1:$hport" warren
kill -TERM "$wpid"; wait "$wpid" 2>/dev/null || true
