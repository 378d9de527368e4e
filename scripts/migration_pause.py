#!/usr/bin/env python3
"""Migration pause on drain: two nodes on loopback, ROOMS rooms (arena at 20 Hz, or dice) hosted on n2, each
with its creator connected to n2 and one player connected to n1. SIGTERM to n2 migrates every room
to n1; the script reports the pause per room (freeze to running on n1, from n2's log), the drain
time (SIGTERM to exit) and n2's exit code.

    cargo build --release && pip install websockets
    python3 scripts/migration_pause.py --rooms 100 [--game arena|dice] [--unread]

--unread leaves the clients' sockets unread (the kernel's socket buffers absorb the room output
for the minute the measurement takes): one Python process cannot read 2,000 sockets at 20 Hz.
"""
import argparse
import asyncio
import json
import re
import sys
import subprocess
import tempfile
import time
import urllib.request

import websockets

from warren_local import free_port, guest, pct, start as start_node, wait_ready

def start(i, http, cluster, seed, log):
    return start_node(i, http, cluster, f"127.0.0.1:{seed}", "mp", stderr=log, WARREN_LOG__LEVEL="info")


UNREAD = False


async def connect(http, name):
    # Unread sockets: a queue of one frame stops the client reading, so the kernel buffers fill.
    ws = await websockets.connect(f"ws://127.0.0.1:{http}/v1/ws?token={guest(http, name)}",
                                  max_queue=1 if UNREAD else None)
    await ws.recv()
    return ws


async def request(ws, msg):
    await ws.send(json.dumps(dict(msg, rid=1)))
    while True:
        m = json.loads(await ws.recv())
        if m["type"] in ("ok", "error") and m.get("rid") == 1:
            if m["type"] == "error":
                raise RuntimeError(m)
            return m


async def drain_socket(ws):
    try:
        async for _ in ws:
            pass
    except websockets.ConnectionClosed:
        pass


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rooms", type=int, default=100)
    ap.add_argument("--game", choices=["arena", "dice"], default="arena")
    ap.add_argument("--unread", action="store_true")
    a = ap.parse_args()
    global UNREAD
    UNREAD = a.unread
    h1, h2, c1, c2 = free_port(), free_port(), free_port(), free_port()
    log2 = tempfile.NamedTemporaryFile("w+", suffix=".log")
    procs = [start(1, h1, c1, c2, subprocess.DEVNULL), start(2, h2, c2, c1, log2)]
    try:
        await wait_ready(h1, 2)
        readers = []
        params = {"tick_hz": 20} if a.game == "arena" else {}
        for r in range(a.rooms):
            creator = await connect(h2, f"c{r}")
            room = (await request(creator, {"type": "create_room", "game": a.game, "params": params}))["room"]
            remote = await connect(h1, f"p{r}")
            await request(remote, {"type": "join_room", "room": room})
            if r % 100 == 99:
                print(f"{r + 1} rooms", file=sys.stderr, flush=True)
            if a.unread:
                readers.append(creator)
                readers.append(remote)
            else:
                readers.append(asyncio.create_task(drain_socket(creator)))
                readers.append(asyncio.create_task(drain_socket(remote)))
        await asyncio.sleep(1)
        t0 = time.monotonic()
        procs[1].terminate()
        while procs[1].poll() is None:
            await asyncio.sleep(0.005)
        drain_s = time.monotonic() - t0
        log2.seek(0)
        pauses = [int(m) / 1000 for m in re.findall(r"room migrated.*?pause_us=(\d+)", log2.read())]
        with urllib.request.urlopen(f"http://127.0.0.1:{h1}/v1/cluster") as r:
            n1_rooms = json.load(r)["nodes"][0]["rooms"]
        print(json.dumps({
            "rooms": a.rooms, "game": a.game, "migrated": len(pauses), "rooms_on_n1_after": n1_rooms,
            "pause_ms_p50": pct(pauses, 0.5),
            "pause_ms_p99": pct(pauses, 0.99),
            "pause_ms_max": round(max(pauses), 2) if pauses else None,
            "drain_s": round(drain_s, 3), "exit_code": procs[1].returncode,
        }))
        for t in readers:
            if isinstance(t, asyncio.Task):
                t.cancel()
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
                p.wait()


asyncio.run(main())
