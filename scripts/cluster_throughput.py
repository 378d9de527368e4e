#!/usr/bin/env python3
"""Cross-node traffic of arena rooms, with and without batching: two nodes on loopback, ROOMS arena
rooms hosted on n2, each with one player connected to n2 (its creator) and PER_ROOM players
connected to n1. Every player sends an input every 50 ms. For each mode (`cluster.batch_delivery`
true, then false) it reports the messages per second from n2 to n1 that carry frames, the frames
they stand for and their bytes, both nodes' CPU, and input->ack latency of the remote players.

    cargo build --release && pip install websockets
    python3 scripts/cluster_throughput.py [--rooms 20] [--per-room 7] [--seconds 15] [--tick-hz 20]
"""
import argparse
import asyncio
import json
import os
import random
import re
import time
import urllib.request


from warren_local import enter_arena, free_port, pct, start as start_node, wait_ready

HZ = os.sysconf("SC_CLK_TCK")


def fanout_msgs(http):
    """Messages carrying frames for players of another node: per-player frames (`deliver`), one
    frame for several players (`deliver_same`), one tick's state for several (`state`)."""
    return sum(metric(http, "warren_cluster_messages_sent_total", k) for k in ("deliver", "deliver_same", "state"))


def fanout_bytes(http):
    """Bytes of those messages (`warren_cluster_bytes_sent_total`; 0 on a build without it)."""
    return sum(metric(http, "warren_cluster_bytes_sent_total", k) for k in ("deliver", "deliver_same", "state"))


def loopback_bytes():
    """Bytes sent on the loopback interface so far (/proc/net/dev): every player's frames and
    inputs and everything between the nodes; the players' part is the same for any build."""
    with open("/proc/net/dev") as f:
        for line in f:
            name, _, rest = line.partition(":")
            if name.strip() == "lo":
                return int(rest.split()[8])
    return 0


def start(i, http, cluster, seed, batch):
    return start_node(i, http, cluster, f"127.0.0.1:{seed}", "tp",
                      WARREN_CLUSTER__BATCH_DELIVERY="true" if batch else "false",
                      WARREN_LIMITS__MAX_CONNECTIONS="100000",
                      # Every room stays on n2, with all but its creator on n1: rebalancing would
                      # move half of them to n1, where their players are.
                      WARREN_ROOMS__REBALANCE_PER_SEC="0")


def metric(http, name, label):
    with urllib.request.urlopen(f"http://127.0.0.1:{http}/metrics") as r:
        body = r.read().decode()
    m = re.search(rf'^{name}\{{kind="{label}"\}} (\S+)$', body, re.M)
    return float(m.group(1)) if m else 0.0


def cpu_secs(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / HZ


async def player(http, name, room, stop, samples, create=None):
    ws = await enter_arena(http, name, room, create)
    sent = {}

    async def reader():
        async for raw in ws:
            m = json.loads(raw)
            if m["type"] == "state":
                now = time.perf_counter()
                for s in [s for s in sent if s <= m["ack"]]:
                    t = sent.pop(s)
                    if samples is not None and measuring[0]:
                        samples.append(now - t)

    task = asyncio.create_task(reader())
    await asyncio.sleep(random.random() * 0.05)
    seq = 0
    while not stop.is_set():
        seq += 1
        sent[seq] = time.perf_counter()
        await ws.send(json.dumps({"type": "input", "seq": seq, "data": {"dx": random.choice([-1, 1]), "dy": 0}}))
        await asyncio.sleep(0.05)
    task.cancel()
    await ws.close()


measuring = [False]


async def run(batch, a):
    h1, h2, c1, c2 = free_port(), free_port(), free_port(), free_port()
    procs = [start(1, h1, c1, c2, batch), start(2, h2, c2, c1, batch)]
    try:
        await wait_ready(h1, 2)
        stop = asyncio.Event()
        remote = []
        tasks = []
        for r in range(a.rooms):
            room = asyncio.get_running_loop().create_future()
            tasks.append(asyncio.create_task(player(h2, f"c{r}", room, stop, None, create=a.tick_hz)))
            for p in range(a.per_room):
                tasks.append(asyncio.create_task(player(h1, f"r{r}x{p}", room, stop, remote)))
        await asyncio.sleep(3)  # everyone joined, ticking
        measuring[0] = True
        d0 = (fanout_msgs(h2), cpu_secs(procs[0].pid), cpu_secs(procs[1].pid),
              metric(h1, "warren_cluster_messages_sent_total", "room_op"),
              metric(h1, "warren_cluster_messages_sent_total", "input"),
              fanout_bytes(h2), loopback_bytes())
        t0 = time.monotonic()
        await asyncio.sleep(a.seconds)
        dt = time.monotonic() - t0
        d1 = (fanout_msgs(h2), cpu_secs(procs[0].pid), cpu_secs(procs[1].pid),
              metric(h1, "warren_cluster_messages_sent_total", "room_op"),
              metric(h1, "warren_cluster_messages_sent_total", "input"),
              fanout_bytes(h2), loopback_bytes())
        measuring[0] = False
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        players_remote = a.rooms * a.per_room
        return {
            "batch_delivery": batch,
            "rooms": a.rooms,
            "remote_players": players_remote,
            "tick_hz": a.tick_hz,
            "fanout_msgs_per_s_n2_to_n1": round((d1[0] - d0[0]) / dt),
            "fanout_bytes_per_s_n2_to_n1": round((d1[5] - d0[5]) / dt),
            "loopback_bytes_per_s": round((d1[6] - d0[6]) / dt),
            "remote_frames_per_s": round(players_remote * a.tick_hz),
            "room_op_msgs_per_s_n1_to_n2": round((d1[3] - d0[3]) / dt),
            "one_way_input_msgs_per_s_n1_to_n2": round((d1[4] - d0[4]) / dt),
            "cpu_n1_pct": round(100 * (d1[1] - d0[1]) / dt, 1),
            "cpu_n2_pct": round(100 * (d1[2] - d0[2]) / dt, 1),
            "remote_ack_samples": len(remote),
            "remote_ack_p50_ms": pct(remote, 0.5, 1000),
            "remote_ack_p99_ms": pct(remote, 0.99, 1000),
        }
    finally:
        for p in procs:
            p.terminate()
            p.wait()


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rooms", type=int, default=20)
    ap.add_argument("--per-room", type=int, default=7)
    ap.add_argument("--seconds", type=int, default=15)
    ap.add_argument("--tick-hz", type=int, default=20)
    a = ap.parse_args()
    for batch in (True, False):
        print(json.dumps(await run(batch, a)), flush=True)


asyncio.run(main())
