#!/usr/bin/env python3
"""Cluster timings on loopback with the release binary: cold-start convergence of three nodes and
failure detection after kill -9 (time until both survivors show the victim `unreachable`).

    cargo build --release && python3 scripts/cluster_timings.py [--runs 5] [--failure-timeout-ms 2000]
"""
import argparse
import json
import signal
import statistics
import time

from warren_local import free_port, start as start_node, view

def start(i, http, cluster, seeds, timeout_ms):
    return start_node(i, http, cluster, seeds, "timings",
                      WARREN_CLUSTER__FAILURE_TIMEOUT_MS=str(timeout_ms))


def until(pred, limit=30.0):
    t0 = time.monotonic()
    while not pred():
        if time.monotonic() - t0 > limit:
            raise SystemExit("timed out")
        time.sleep(0.005)
    return time.monotonic() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--failure-timeout-ms", type=int, default=2000)
    a = ap.parse_args()
    converge, detect = [], []
    for _ in range(a.runs):
        http = [free_port() for _ in range(3)]
        cl = [free_port() for _ in range(3)]
        seeds = ",".join(f"127.0.0.1:{p}" for p in cl)
        t0 = time.monotonic()
        procs = [start(i + 1, http[i], cl[i], seeds, a.failure_timeout_ms) for i in range(3)]
        try:
            until(lambda: all(list(view(h).values()).count("ready") == 3 for h in http))
            converge.append(time.monotonic() - t0)
            time.sleep(0.5)
            procs[2].send_signal(signal.SIGKILL)
            detect.append(until(lambda: all(view(h).get("n3") == "unreachable" for h in http[:2])))
        finally:
            for p in procs:
                p.kill()
                p.wait()
    print(json.dumps({
        "runs": a.runs,
        "failure_timeout_ms": a.failure_timeout_ms,
        "converge_s": {"median": round(statistics.median(converge), 3), "max": round(max(converge), 3)},
        "detect_s": {"median": round(statistics.median(detect), 3), "min": round(min(detect), 3),
                     "max": round(max(detect), 3)},
    }))


main()
