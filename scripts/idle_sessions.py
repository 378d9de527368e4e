#!/usr/bin/env python3
"""Measure a node's RSS idle and with N connected idle sessions.

    pip install websockets
    python3 scripts/idle_sessions.py --pid $(pgrep -x warren) [--url http://127.0.0.1:7350] [--n 1000]

The sessions are guests; raise `ulimit -n` for large N. The full load tester (issue 5) replaces this.
"""
import argparse
import asyncio
import json
import urllib.request

import websockets


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise SystemExit("no VmRSS")


def guest(url, name):
    req = urllib.request.Request(f"{url}/v1/auth/guest", data=json.dumps({"name": name}).encode(), method="POST")
    with urllib.request.urlopen(req) as r:
        return json.load(r)["token"]


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--url", default="http://127.0.0.1:7350")
    ap.add_argument("--n", type=int, default=1000)
    a = ap.parse_args()
    idle = rss_kib(a.pid)
    tokens = [guest(a.url, f"idle{i}") for i in range(a.n)]
    ws_url = a.url.replace("http", "ws", 1) + "/v1/ws?token="
    conns = []
    for i in range(0, a.n, 100):
        conns += await asyncio.gather(*(websockets.connect(ws_url + t, ping_interval=None) for t in tokens[i:i + 100]))
    for c in conns:
        json.loads(await c.recv())  # welcome
    await asyncio.sleep(2)
    loaded = rss_kib(a.pid)
    print(json.dumps({"sessions": a.n, "rss_idle_kib": idle, "rss_loaded_kib": loaded,
                      "kib_per_session": round((loaded - idle) / a.n, 2)}))
    for c in conns:
        await c.close()


asyncio.run(main())
