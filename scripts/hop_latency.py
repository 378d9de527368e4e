#!/usr/bin/env python3
"""Cross-node hop cost for arena inputs: two nodes on loopback, one arena room hosted on n2, one
player connected to n2 (local) and one to n1 (remote). Each sends an input every 50 ms; latency is
send -> first `state` acknowledging it. The difference between the two is the hop (there and back).

    cargo build --release && pip install websockets
    python3 scripts/hop_latency.py [--seconds 20] [--tick-hz 60]
"""
import argparse
import asyncio
import json
import random
import time


from warren_local import enter_arena, free_port, pct, start as start_node, wait_ready


def start(i, http, cluster, seed):
    return start_node(i, http, cluster, f"127.0.0.1:{seed}", "hop")


async def player(http, name, room, seconds, samples, create=None):
    ws = await enter_arena(http, name, room, create)
    sent = {}
    done = asyncio.Event()

    async def reader():
        async for raw in ws:
            m = json.loads(raw)
            if m["type"] == "state":
                now = time.perf_counter()
                for s in [s for s in sent if s <= m["ack"]]:
                    samples.append(now - sent.pop(s))
            if done.is_set() and not sent:
                return

    task = asyncio.create_task(reader())
    await asyncio.sleep(random.random() * 0.05)
    t_end = time.monotonic() + seconds
    seq = 0
    while time.monotonic() < t_end:
        seq += 1
        sent[seq] = time.perf_counter()
        await ws.send(json.dumps({"type": "input", "seq": seq, "data": {"dx": random.choice([-1, 1]), "dy": 0}}))
        await asyncio.sleep(0.05)
    done.set()
    try:
        await asyncio.wait_for(task, 2)
    except asyncio.TimeoutError:
        pass
    await ws.close()


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=20)
    ap.add_argument("--tick-hz", type=int, default=60)
    a = ap.parse_args()
    h1, h2, c1, c2 = free_port(), free_port(), free_port(), free_port()
    procs = [start(1, h1, c1, c2), start(2, h2, c2, c1)]
    try:
        await wait_ready(h1, 2)
        room = asyncio.get_running_loop().create_future()
        local, remote = [], []
        await asyncio.gather(player(h2, "local", room, a.seconds, local, create=a.tick_hz),
                             player(h1, "remote", room, a.seconds, remote))
        out = {"tick_hz": a.tick_hz, "seconds": a.seconds}
        for name, xs in (("local", local), ("remote", remote)):
            out[name] = {"samples": len(xs), "p50_ms": pct(xs, 0.5, 1000), "p99_ms": pct(xs, 0.99, 1000)}
        out["added_p50_ms"] = round(out["remote"]["p50_ms"] - out["local"]["p50_ms"], 2)
        out["added_p99_ms"] = round(out["remote"]["p99_ms"] - out["local"]["p99_ms"], 2)
        print(json.dumps(out))
    finally:
        for p in procs:
            p.kill()
            p.wait()


asyncio.run(main())
