#!/usr/bin/env python3
"""What membership costs an idle cluster: N release `warren` nodes on loopback, all seeded with
the first, no players. Once every node sees N ready members, measures for a while the CPU of all
nodes together (from /proc/PID/stat) and the bytes loopback carries (from /proc/net/dev), and
prints one table row per cluster size.

    cargo build --release && python3 scripts/membership_cost.py [--nodes 4,8,16,32] [--seconds 20]

Loopback counts every byte once per direction it is received; nothing else should run meanwhile.
"""
import argparse
import json
import os
import signal
import time

from warren_local import free_ports, start, view

TICK = os.sysconf("SC_CLK_TCK")


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def lo_bytes():
    with open("/proc/net/dev") as f:
        for line in f:
            name, _, rest = line.partition(":")
            if name.strip() == "lo":
                return int(rest.split()[0])
    raise SystemExit("no loopback interface")


def measure(n, seconds, settle, form_limit):
    ports = free_ports(2 * n)
    http, cluster = ports[:n], ports[n:]
    seed = f"127.0.0.1:{cluster[0]}"
    procs = []
    try:
        for i in range(n):
            procs.append(start(i + 1, http[i], cluster[i], seed, "membership"))
        t0 = time.monotonic()
        while True:
            ready = [sum(s == "ready" for s in view(h).values()) for h in http]
            if all(r == n for r in ready):
                break
            dead = [i + 1 for i, p in enumerate(procs) if p.poll() is not None]
            if dead or time.monotonic() - t0 > form_limit:
                raise SystemExit(f"{n} nodes did not form within {form_limit} s: {ready}; exited: {dead}")
            time.sleep(0.2)
        formed = time.monotonic() - t0
        time.sleep(settle)
        pids = [p.pid for p in procs]
        c0, b0, w0 = sum(cpu_ticks(p) for p in pids), lo_bytes(), time.monotonic()
        time.sleep(seconds)
        c1, b1, w1 = sum(cpu_ticks(p) for p in pids), lo_bytes(), time.monotonic()
        rss = sum(rss_kib(p) for p in pids) / n
        still = [sum(s == "ready" for s in view(h).values()) for h in http]
        wall = w1 - w0
        cpu = (c1 - c0) / TICK / wall * 100
        return {
            "nodes": n,
            "formed_s": round(formed, 1),
            "cpu_pct_all": round(cpu, 1),
            "cpu_pct_per_node": round(cpu / n, 2),
            "lo_kb_s": round((b1 - b0) / wall / 1000, 1),
            "lo_kb_s_per_node": round((b1 - b0) / wall / 1000 / n, 2),
            "rss_mib_per_node": round(rss / 1024, 1),
            "all_ready_after": all(r == n for r in still),
        }
    finally:
        for p in procs:
            p.send_signal(signal.SIGKILL)
        for p in procs:
            p.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", default="4,8,16,32")
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--settle", type=float, default=5)
    ap.add_argument("--form-limit", type=float, default=120)
    a = ap.parse_args()
    rows = []
    print("| nodes | formed in | idle CPU, all nodes (% of one core) | per node | loopback traffic | per node | RSS per node |")
    print("|---|---|---|---|---|---|---|")
    for n in (int(x) for x in a.nodes.split(",")):
        r = measure(n, a.seconds, a.settle, a.form_limit)
        rows.append(r)
        note = "" if r["all_ready_after"] else " (a node lost sight of another meanwhile)"
        print(f"| {n} | {r['formed_s']} s | {r['cpu_pct_all']} | {r['cpu_pct_per_node']} | "
              f"{r['lo_kb_s']} KB/s | {r['lo_kb_s_per_node']} KB/s | {r['rss_mib_per_node']} MiB |{note}",
              flush=True)
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
