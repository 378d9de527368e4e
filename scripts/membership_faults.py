#!/usr/bin/env python3
"""Failure detection at size (issue 23): N release `warren` nodes on loopback, all seeded with the
first, each logging its membership warnings to a file. Once every node sees N ready members:

1. stall: SIGSTOP one node for half the failure timeout, then SIGCONT (repeated on a few nodes);
   no node may log it unreachable, and it may not log that its peers declared it so;
2. busy: the load tester drives one node to full CPU (arena rooms on it alone) for a while; no
   node may log it unreachable;
3. kill: SIGKILL one node; every other node must log it unreachable within the failure timeout
   + 1 s. Prints each node's detection time (from its log's timestamps).

    cargo build --release --bin warren --bin warren-loadtest
    python3 scripts/membership_faults.py [--nodes 32] [--stalls 3] [--busy-seconds 20]

Exits non-zero if a promise broke. Uses the default failure timeout (cluster.failure_timeout_ms).
"""
import argparse
import datetime
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

from warren_local import BIN, free_ports, start, view

FAILURE_TIMEOUT_S = 2.0
LOADTEST = os.path.join(os.path.dirname(BIN), "warren-loadtest")
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def log_lines(path):
    with open(path, errors="replace") as f:
        return [ANSI.sub("", line) for line in f]


def stamp(line):
    """The UTC time a log line was written, as seconds since the epoch."""
    ts = line.split(" ", 1)[0].rstrip("Z")
    return datetime.datetime.fromisoformat(ts[:26]).replace(tzinfo=datetime.timezone.utc).timestamp()


def reports_about(logs, node, since):
    """node id -> when it first logged `node` unreachable, at or after `since`."""
    out = {}
    for who, path in logs.items():
        for line in log_lines(path):
            if "peer unreachable" in line and re.search(rf"peer={node}(\s|$)", line) and stamp(line) >= since:
                out.setdefault(who, stamp(line))
    return out


def declared_down(path, since):
    return [l for l in log_lines(path) if "declared it unreachable" in l and stamp(l) >= since]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=32)
    ap.add_argument("--stalls", type=int, default=3)
    ap.add_argument("--busy-seconds", type=float, default=20)
    ap.add_argument("--busy-rooms", type=int, default=150)
    a = ap.parse_args()
    n = a.nodes
    tmp = tempfile.mkdtemp(prefix="warren-faults-")
    ports = free_ports(2 * n)
    http, cluster = ports[:n], ports[n:]
    seed = f"127.0.0.1:{cluster[0]}"
    procs, logs = [], {}
    broken = []
    try:
        for i in range(n):
            path = os.path.join(tmp, f"n{i + 1}.log")
            logs[f"n{i + 1}"] = path
            procs.append(start(i + 1, http[i], cluster[i], seed, "faults", stderr=open(path, "w"),
                               WARREN_LOG__LEVEL=os.environ.get("FAULTS_LOG", "warn")))
        t0 = time.monotonic()
        while not all(sum(s == "ready" for s in view(h).values()) == n for h in http):
            if time.monotonic() - t0 > 120:
                raise SystemExit(f"{n} nodes did not form within 120 s")
            time.sleep(0.2)
        print(f"{n} nodes formed in {time.monotonic() - t0:.1f} s", flush=True)
        time.sleep(3)

        # 1. Stalls of half the failure timeout.
        for k in range(a.stalls):
            i = 1 + (k * 7) % (n - 1)  # never the seed
            node = f"n{i + 1}"
            since = time.time()
            procs[i].send_signal(signal.SIGSTOP)
            time.sleep(FAILURE_TIMEOUT_S / 2)
            procs[i].send_signal(signal.SIGCONT)
            time.sleep(3 * FAILURE_TIMEOUT_S)
            seen = reports_about(logs, node, since)
            down = declared_down(logs[node], since)
            ok = not seen and not down
            print(f"stall {node} for {FAILURE_TIMEOUT_S / 2:.1f} s: declared unreachable by "
                  f"{len(seen)} of {n - 1} nodes{', it heard it was declared down' if down else ''}"
                  f" -> {'ok' if ok else 'FALSE POSITIVE'}", flush=True)
            if not ok:
                broken.append(f"stall of {node}")

        # 2. A node at full CPU.
        if os.path.exists(LOADTEST) and a.busy_seconds > 0:
            i = n // 2
            node = f"n{i + 1}"
            since = time.time()
            lt = subprocess.Popen([LOADTEST, "arena", "--target", f"http://127.0.0.1:{http[i]}",
                                   "-n", str(a.busy_rooms), "--seats", "8", "--hz", "20",
                                   "--duration", str(a.busy_seconds), "--quiet", "--server-pid",
                                   str(procs[i].pid)],
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            # CPU of the loaded node, sampled while the load holds.
            cpu = []
            last = None
            while lt.poll() is None:
                with open(f"/proc/{procs[i].pid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                ticks = int(fields[11]) + int(fields[12])
                now = time.monotonic()
                if last:
                    cpu.append((ticks - last[0]) / os.sysconf("SC_CLK_TCK") / (now - last[1]) * 100)
                last = (ticks, now)
                time.sleep(1)
            out = lt.stdout.read()
            seen = reports_about(logs, node, since)
            busiest = max(cpu) if cpu else 0
            ok = not seen
            print(f"busy {node}: {busiest:.0f}% of a core at its busiest (median "
                  f"{sorted(cpu)[len(cpu) // 2] if cpu else 0:.0f}%, {len(cpu)} s sampled): declared "
                  f"unreachable by {len(seen)} of {n - 1} nodes -> {'ok' if ok else 'FALSE POSITIVE'}",
                  flush=True)
            if lt.returncode != 0:
                print(out[-2000:])
            if not ok:
                broken.append(f"busy {node}")
            time.sleep(2)
        else:
            print(f"busy: skipped ({LOADTEST} not built)")

        # 3. kill -9.
        i = n - 1
        node = f"n{i + 1}"
        killed = time.time()
        procs[i].send_signal(signal.SIGKILL)
        procs[i].wait()
        others = {k: v for k, v in logs.items() if k != node}
        deadline = time.time() + FAILURE_TIMEOUT_S + 5
        while time.time() < deadline:
            seen = reports_about(others, node, killed)
            if len(seen) == len(others):
                break
            time.sleep(0.2)
        seen = reports_about(others, node, killed)
        times = sorted(t - killed for t in seen.values())
        limit = FAILURE_TIMEOUT_S + 1
        ok = len(times) == len(others) and times[-1] <= limit
        if times:
            print(f"kill -9 {node}: seen unreachable by {len(times)} of {len(others)} nodes; first "
                  f"{times[0]:.2f} s, median {times[len(times) // 2]:.2f} s, last {times[-1]:.2f} s "
                  f"(limit {limit:.1f} s) -> {'ok' if ok else 'TOO SLOW'}", flush=True)
        else:
            print(f"kill -9 {node}: seen unreachable by no node -> MISSED")
        if not ok:
            broken.append(f"kill of {node}")
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGCONT)
                p.send_signal(signal.SIGKILL)
        for p in procs:
            p.wait()
    if broken:
        print(f"broken: {broken} (logs in {tmp})")
        sys.exit(1)
    print(f"every promise held (logs in {tmp})")


if __name__ == "__main__":
    main()
