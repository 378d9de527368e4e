#!/usr/bin/env bash
# What a proxy hop costs (BENCHMARKS.md, "Behind a proxy"). Runs one node, then the same arena
# load three times: straight to the node, through nginx configured as ingress-nginx configures
# itself (upstream keepalive pool), and through HAProxy with `http-reuse always`: the same
# configurations as tests/e2e/proxies.rs and the README. Prints each run's report.
#
#   scripts/proxy_hop.sh [ROOMS] [SEATS] [SECONDS]   (defaults 50 8 15)
# Needs nginx-light and haproxy (Debian packages).
set -euo pipefail
cd "$(dirname "$0")/.."
rooms=${1:-50}
seats=${2:-8}
secs=${3:-15}
cargo build --release --quiet --workspace --bins
dir=target/proxy-hop
rm -rf "$dir" && mkdir -p "$dir"
node_port=7390 nginx_port=7391 haproxy_port=7392
pids=()
stop() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
}
trap stop EXIT
# The load tester takes its guest tokens from one address; through a proxy they count against
# the forwarded address, so the per-address limit is off for this measurement.
WARREN_HTTP__LISTEN=127.0.0.1:$node_port WARREN_CLUSTER__LISTEN=127.0.0.1:7393 \
  WARREN_AUTH__GUEST_TOKENS_PER_MINUTE=0 WARREN_HTTP__TRUSTED_PROXIES=127.0.0.1/32 \
  ./target/release/warren >"$dir/node.log" 2>&1 &
node_pid=$!
pids+=($node_pid)
d=$(realpath "$dir")
cat >"$dir/nginx.conf" <<EOF
daemon off;
master_process off;
worker_processes 1;
error_log $d/nginx-error.log warn;
pid $d/nginx.pid;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $d/body;
  proxy_temp_path $d/proxy;
  fastcgi_temp_path $d/fastcgi;
  uwsgi_temp_path $d/uwsgi;
  scgi_temp_path $d/scgi;
  map \$http_upgrade \$connection_upgrade {
    default upgrade;
    '' '';
  }
  upstream warren {
    server 127.0.0.1:$node_port max_fails=0;
    keepalive 320;
    keepalive_time 1h;
    keepalive_timeout 60s;
    keepalive_requests 10000;
  }
  server {
    listen 127.0.0.1:$nginx_port;
    client_max_body_size 64k;
    location / {
      proxy_pass http://warren;
      proxy_http_version 1.1;
      proxy_set_header Host \$host;
      proxy_set_header Upgrade \$http_upgrade;
      proxy_set_header Connection \$connection_upgrade;
      proxy_set_header X-Real-IP \$remote_addr;
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto \$scheme;
      proxy_connect_timeout 5s;
      proxy_send_timeout 60s;
      proxy_read_timeout 60s;
      proxy_buffering off;
      proxy_next_upstream error timeout http_502 http_503;
    }
  }
}
EOF
cat >"$dir/haproxy.cfg" <<EOF
global
  maxconn 4096
defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  timeout tunnel 1h
  timeout http-keep-alive 60s
  option forwardfor
  option redispatch
  retries 3
  http-reuse always
frontend players
  bind 127.0.0.1:$haproxy_port
  default_backend warren
backend warren
  balance roundrobin
  option httpchk GET /readyz
  server n0 127.0.0.1:$node_port check inter 500ms fall 1 rise 2
EOF
/usr/sbin/nginx -p "$d" -c "$d/nginx.conf" 2>"$dir/nginx.stderr" &
nginx_pid=$!
pids+=($nginx_pid)
/usr/sbin/haproxy -db -f "$d/haproxy.cfg" >"$dir/haproxy.log" 2>&1 &
haproxy_pid=$!
pids+=($haproxy_pid)
# CPU seconds a process has used so far.
cpu() { awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / hz}' "/proc/$1/stat"; }
for port in $node_port $nginx_port $haproxy_port; do
  for _ in $(seq 1 100); do
    curl -fsS -o /dev/null "http://127.0.0.1:$port/readyz" 2>/dev/null && break
    sleep 0.1
  done
done
for via in direct:$node_port:0 nginx:$nginx_port:$nginx_pid haproxy:$haproxy_port:$haproxy_pid; do
  IFS=: read -r name port proxy <<<"$via"
  echo "== $name"
  before=0
  [ "$proxy" != 0 ] && before=$(cpu "$proxy")
  ./target/release/warren-loadtest arena --quiet --target "http://127.0.0.1:$port" \
    -n "$rooms" --seats "$seats" --hz 20 --tick-hz 20 --duration "$secs" \
    --server-pid "$node_pid" --json "$dir/$name.json"
  if [ "$proxy" != 0 ]; then
    echo "proxy pid $proxy: $(awk -v a="$before" -v b="$(cpu "$proxy")" 'BEGIN{printf "%.2f", b - a}') CPU s during the run"
  fi
done
