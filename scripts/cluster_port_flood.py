"""What an attacker on the cluster port costs a node: IDLE TCP connections that never
authenticate (the node's RSS and descriptors with them open, and 12 s later), then BIG connections
that each announce a 16 MiB frame and try to send it (how much each got in before the node closed
it, and the RSS), and how many lines the node logged meanwhile.

    cargo build --release && python3 scripts/cluster_port_flood.py [IDLE] [BIG]
"""
import asyncio
import os
import socket
import subprocess
import sys
import time

import warren_local as w

IDLE = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
BIG = int(sys.argv[2]) if len(sys.argv) > 2 else 10


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))


def fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def open_count(socks):
    """Connections the node has not closed (a read would not return EOF or an error)."""
    n = 0
    for s in socks:
        s.setblocking(False)
        try:
            if s.recv(1) != b"":
                n += 1
        except BlockingIOError:
            n += 1
        except OSError:
            pass
    return n


def main():
    http, cluster = w.free_port(), w.free_port()
    log = open("/tmp/cluster_port_flood.log", "w+")
    node = w.start(1, http, cluster, "", "flood", stderr=log, WARREN_LOG__LEVEL="info")
    asyncio.run(w.wait_ready(http, 1))
    time.sleep(0.5)
    lines0 = sum(1 for _ in open(log.name))
    r0, f0 = rss_kib(node.pid), fds(node.pid)
    idle = []
    for _ in range(IDLE):
        try:
            idle.append(socket.create_connection(("127.0.0.1", cluster), timeout=2))
        except OSError:
            break
    time.sleep(1)
    print(f"{len(idle)} idle connections: node RSS +{(rss_kib(node.pid) - r0) / 1024:.1f} MiB, "
          f"descriptors +{fds(node.pid) - f0}, still open {open_count(idle)}")
    time.sleep(11)
    print(f"12 s later: node RSS +{(rss_kib(node.pid) - r0) / 1024:.1f} MiB, "
          f"descriptors +{fds(node.pid) - f0}, still open {open_count(idle)}")
    for s in idle:
        s.close()
    taken = []
    big = []
    for _ in range(BIG):
        s = socket.create_connection(("127.0.0.1", cluster), timeout=2)
        s.sendall((16 << 20).to_bytes(8, "big"))
        sent = 0
        try:
            while sent < 16 << 20:
                s.sendall(b"\0" * 65536)
                sent += 65536
        except OSError:
            pass
        taken.append(sent)
        big.append(s)
    time.sleep(0.5)
    print(f"{BIG} connections announcing 16 MiB frames: sent before the node closed them "
          f"(KiB, kernel buffers included) {[t // 1024 for t in taken]}; node RSS "
          f"+{(rss_kib(node.pid) - r0) / 1024:.1f} MiB")
    for s in big:
        s.close()
    lines = sum(1 for _ in open(log.name)) - lines0
    print(f"lines the node logged meanwhile: {lines}")
    node.terminate()
    node.wait()


if __name__ == "__main__":
    main()
