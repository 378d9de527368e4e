"""The matchmaking-pool flood of an attacker: CONNS connections each queue and unqueue MODES
distinct modes, paced within the per-connection rate limit, so the node makes CONNS*MODES pools.
Prints the node's live pools, /metrics size, CPU and RSS at the peak, while the pools sit empty,
and after they retired (matchmaking.pool_idle_ms, 30 s by default).

With ROUNDS > 1 the flood repeats once the pools retired, which tells memory the allocator keeps
for reuse from memory that grows round over round.

    cargo build --release && python3 scripts/pool_flood.py [CONNS] [MODES] [ROUNDS]
"""
import asyncio
import json
import os
import sys
import time
import urllib.request

import websockets

import warren_local as w

CONNS = int(sys.argv[1]) if len(sys.argv) > 1 else 20
MODES = int(sys.argv[2]) if len(sys.argv) > 2 else 250
ROUNDS = int(sys.argv[3]) if len(sys.argv) > 3 else 1


def scrape(http):
    with urllib.request.urlopen(f"http://127.0.0.1:{http}/metrics", timeout=5) as r:
        body = r.read().decode()
    pools = next((float(l.split()[-1]) for l in body.splitlines()
                  if l.startswith("warren_matchmaking_pools ")), 0.0)
    return int(pools), len(body)


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def cpu_over(pid, seconds):
    c0, t0 = cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)
    return 100 * (cpu_seconds(pid) - c0) / (time.monotonic() - t0)


async def flood(http, i):
    token = w.guest(http, f"flood{i}")
    async with websockets.connect(f"ws://127.0.0.1:{http}/v1/ws?token={token}") as ws:
        json.loads(await ws.recv())  # welcome
        rid = 0
        for m in range(MODES):
            for msg in ({"type": "queue", "game": "dice", "mode": f"c{i}m{m}"}, {"type": "unqueue"}):
                rid += 1
                msg["rid"] = rid
                await ws.send(json.dumps(msg))
                while True:
                    r = json.loads(await ws.recv())
                    if r.get("rid") == rid:
                        assert r["type"] == "ok", r
                        break
                await asyncio.sleep(1 / 45)  # within limits.messages_per_sec (50)


def report(label, http, pid, seconds=10):
    cpu = cpu_over(pid, seconds)
    pools, size = scrape(http)
    print(f"{label:<28} pools {pools:>6}  /metrics {size / 1024:>7.1f} kB  "
          f"CPU {cpu:>5.1f}% of a core  RSS {rss_mb(pid):>6.1f} MB", flush=True)


async def main():
    http, cluster = w.free_port(), w.free_port()
    node = w.start(1, http, cluster, "", "pool-flood-secret-of-32-bytes-at-least")
    try:
        for _ in range(200):
            try:
                scrape(http)
                break
            except OSError:
                await asyncio.sleep(0.05)
        report("idle, before", http, node.pid, 5)
        for r in range(1, ROUNDS + 1):
            t0 = time.monotonic()
            await asyncio.gather(*(flood(http, i) for i in range(CONNS)))
            print(f"round {r}: {CONNS * MODES} modes queued and unqueued in "
                  f"{time.monotonic() - t0:.1f} s")
            report("just after (pools empty)", http, node.pid, 10)
            deadline = time.monotonic() + 60
            while scrape(http)[0] > 0 and time.monotonic() < deadline:
                await asyncio.sleep(1)
            report("after retirement", http, node.pid, 10)
    finally:
        node.terminate()
        node.wait()


asyncio.run(main())
