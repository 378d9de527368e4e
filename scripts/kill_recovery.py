#!/usr/bin/env python3
"""kill -9 of a room's node: how long until the room plays again, and what its players lost.

Each run starts three release nodes on loopback (default failure detection, 2 s), an arena room at
20 Hz hosted on n1 with its creator on n1 and two players on n2 and n3, who send an input every
50 ms. After 2 s, n1 gets SIGKILL. Per run it reports:
- recovery: kill to the first `state` of the room after its `room_state` resync from the
  adopting node, as the player on n2 receives it;
- play lost: the highest `tick` the players saw before the kill minus the tick the revived room
  resumed from (its snapshot's), in ticks of 50 ms: the world rolls back by that much;
- acknowledged inputs lost: the highest `ack` the players saw before the kill minus the `ack` of
  the revived room's first `state` (inputs the players sent during the outage wait in their
  sessions and reach the adopted room before its first tick, so they count in that `ack`);
- inputs lost overall: inputs sent that the room never acknowledged, by the end of the run.

    cargo build --release && pip install websockets
    python3 scripts/kill_recovery.py [--runs 5]
"""
import argparse
import asyncio
import json
import statistics
import time

import websockets

from warren_local import enter_arena, free_port, start, wait_ready


async def player(ws, room, kill_at, out, stop):
    """Sends an input every 50 ms; records acks, and when the room plays again after the kill."""
    seq = 0
    resynced = False

    async def send():
        nonlocal seq
        while not stop.is_set():
            seq += 1
            await ws.send(json.dumps({"type": "input", "seq": seq, "data": {"dx": 1, "dy": 0}}))
            out["sent"] = seq
            await asyncio.sleep(0.05)

    sender = asyncio.create_task(send())
    try:
        async for raw in ws:
            m = json.loads(raw)
            if m.get("room") != room:
                continue
            killed = kill_at.get("t")
            if m["type"] == "room_state" and killed is not None:
                resynced = True
            if m["type"] != "state":
                continue
            if killed is None:
                out["ack_before"] = max(out.get("ack_before", 0), m["ack"])
                out["tick_before"] = max(out.get("tick_before", 0), m["tick"])
            elif resynced and "back_s" not in out:
                out["back_s"] = time.monotonic() - killed
                out["ack_after"] = m["ack"]
                # The first tick after the revival is the snapshot's tick + 1.
                out["tick_after"] = m["tick"] - 1
            out["last_ack"] = m["ack"]
            if stop.is_set() and out["last_ack"] >= out["sent"]:
                break
    finally:
        sender.cancel()


async def run(failure_ms):
    h = [free_port() for _ in range(3)]
    c = [free_port() for _ in range(3)]
    seeds = ",".join(f"127.0.0.1:{p}" for p in c)
    procs = [start(i + 1, h[i], c[i], seeds, "kr", WARREN_CLUSTER__FAILURE_TIMEOUT_MS=str(failure_ms))
             for i in range(3)]
    try:
        for i in range(3):
            await wait_ready(h[i], 3)
        room = asyncio.get_running_loop().create_future()
        creator = await enter_arena(h[0], "host", room, create_hz=20)
        players = [await enter_arena(h[i], f"p{i}", room) for i in (1, 2)]
        room_id = room.result()
        kill_at, stop = {}, asyncio.Event()
        outs = [{} for _ in players]
        tasks = [asyncio.create_task(player(ws, room_id, kill_at, o, stop)) for ws, o in zip(players, outs)]
        await asyncio.sleep(2)
        procs[0].kill()
        kill_at["t"] = time.monotonic()
        await asyncio.sleep(failure_ms / 1000 + 3)
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 10)
        await creator.close()
        first = outs[0]

        return {
            "back_s": round(first["back_s"], 3),
            "ticks_lost": max(0, first["tick_before"] - first["tick_after"]),
            "acked_lost": sum(max(0, o["ack_before"] - o["ack_after"]) for o in outs),
            "inputs_lost": sum(o["sent"] - o["last_ack"] for o in outs),
            "inputs_sent": sum(o["sent"] for o in outs),
        }
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
                p.wait()


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--failure-timeout-ms", type=int, default=2000)
    a = ap.parse_args()
    results = []
    for i in range(a.runs):
        r = await run(a.failure_timeout_ms)
        print(json.dumps(dict(run=i + 1, **r)), flush=True)
        results.append(r)
    print(json.dumps({
        "runs": a.runs,
        "failure_timeout_ms": a.failure_timeout_ms,
        "back_s_median": round(statistics.median(r["back_s"] for r in results), 3),
        "back_s_max": max(r["back_s"] for r in results),
        "ticks_lost": [r["ticks_lost"] for r in results],
        "acked_inputs_lost": [r["acked_lost"] for r in results],
        "inputs_lost": [r["inputs_lost"] for r in results],
    }))


asyncio.run(main())
