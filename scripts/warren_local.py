"""Shared helpers of the measurement scripts: free loopback ports, starting release `warren`
nodes on loopback, guest tokens, waiting for a cluster to form, percentiles."""
import asyncio
import json
import os
import socket
import subprocess
import urllib.request

# MEASURE_BIN: another build to measure (say target/debug/warren, what the end-to-end tests run;
# a node refuses WARREN_* variables it does not know, so the name is not one of those).
BIN = os.environ.get("MEASURE_BIN") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "target", "release", "warren"
)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def free_ports(n):
    """`n` distinct free loopback ports (all held open while picked, so none repeats)."""
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def start(i, http, cluster, seeds, secret, stderr=subprocess.DEVNULL, **env):
    """Starts node n{i}; `env` adds WARREN_* variables (e.g. WARREN_LOG__LEVEL="info")."""
    full = dict(os.environ, WARREN_NODE__ID=f"n{i}", WARREN_HTTP__LISTEN=f"127.0.0.1:{http}",
                WARREN_CLUSTER__LISTEN=f"127.0.0.1:{cluster}", WARREN_CLUSTER__SEEDS=seeds,
                WARREN_CLUSTER__COOKIE=f"{secret}-cluster-cookie-of-this-script", WARREN_AUTH__JWT_SECRET=f"{secret}-jwt-secret-of-this-script", WARREN_LOG__LEVEL="error")
    full.update(env)
    return subprocess.Popen([BIN], env=full, stdout=subprocess.DEVNULL, stderr=stderr)


def view(http):
    """Node id -> state, as the node on `http` sees the cluster ({} while it does not answer)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{http}/v1/cluster", timeout=1) as r:
            return {n["id"]: n["state"] for n in json.load(r)["nodes"]}
    except OSError:
        return {}


async def wait_ready(http, n, tries=200):
    """Waits until the node on `http` sees `n` ready members."""
    for _ in range(tries):
        if sum(s == "ready" for s in view(http).values()) == n:
            return
        await asyncio.sleep(0.05)
    raise SystemExit(f"the cluster did not form ({view(http)})")


def guest(http, name):
    req = urllib.request.Request(f"http://127.0.0.1:{http}/v1/auth/guest",
                                 data=json.dumps({"name": name}).encode(), method="POST")
    with urllib.request.urlopen(req) as r:
        return json.load(r)["token"]


def pct(xs, p, scale=1.0, digits=2):
    """The p-quantile of xs (nearest rank), times scale; None when xs is empty."""
    if not xs:
        return None
    xs = sorted(xs)
    return round(xs[min(len(xs) - 1, int(p * len(xs)))] * scale, digits)


async def enter_arena(http, name, room, create_hz=None):
    """Connects `name` and seats it in an arena room: a new one at `create_hz` (its id is set on
    the future `room`), or the one `room` resolves to. Returns the open WebSocket."""
    import websockets

    ws = await websockets.connect(f"ws://127.0.0.1:{http}/v1/ws?token={guest(http, name)}", max_queue=None)
    await ws.recv()
    if create_hz:
        await ws.send(json.dumps({"type": "create_room", "game": "arena", "params": {"tick_hz": create_hz}, "rid": 1}))
    else:
        await ws.send(json.dumps({"type": "join_room", "room": await room, "rid": 1}))
    while True:
        m = json.loads(await ws.recv())
        if m["type"] == "ok":
            break
        if m["type"] == "error":
            raise RuntimeError(m)
    if create_hz:
        room.set_result(m["room"])
    return ws
