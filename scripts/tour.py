#!/usr/bin/env python3
"""Two guests play one round of dice against a Warren node.

    pip install websockets
    python3 scripts/tour.py [http://127.0.0.1:7350]
"""
import asyncio
import json
import sys
import urllib.request

import websockets

BASE = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:7350"


def guest(name):
    req = urllib.request.Request(f"{BASE}/v1/auth/guest", data=json.dumps({"name": name}).encode(),
                                 headers={"content-type": "application/json"}, method="POST")
    with urllib.request.urlopen(req) as r:
        return json.load(r)["token"]


class Player:
    def __init__(self, name):
        self.name, self.rid, self.inbox, self.kept = name, 0, asyncio.Queue(), []

    async def connect(self):
        url = BASE.replace("http", "ws", 1) + "/v1/ws?token=" + guest(self.name)
        self.ws = await websockets.connect(url)
        self.reader = asyncio.create_task(self._read())
        welcome = await self.next("welcome")
        print(f"{self.name}: welcome, player id {welcome['player']} on node {welcome['node']}")
        self.id = welcome["player"]

    async def _read(self):
        async for raw in self.ws:
            await self.inbox.put(json.loads(raw))

    async def next(self, mtype, **match):
        """The first message of a type (and matching fields), keeping the others for later calls."""
        def fits(m):
            return m["type"] == mtype and all(m.get(k) == v or m.get("event", {}).get(k) == v for k, v in match.items())
        for i, m in enumerate(self.kept):
            if fits(m):
                return self.kept.pop(i)
        while True:
            m = await self.inbox.get()
            if fits(m):
                return m
            self.kept.append(m)

    async def request(self, msg):
        self.rid += 1
        await self.ws.send(json.dumps({**msg, "rid": self.rid}))
        reply = await self._reply(self.rid)
        if reply["type"] == "error":
            print(f"{self.name}: {msg['type']} -> error {reply['code']}: {reply['message']}")
        return reply

    async def _reply(self, rid):
        for i, m in enumerate(self.kept):
            if m["type"] in ("ok", "error") and m.get("rid") == rid:
                return self.kept.pop(i)
        while True:
            m = await self.inbox.get()
            if m["type"] in ("ok", "error") and m.get("rid") == rid:
                return m
            self.kept.append(m)


async def main():
    alice, bob = Player("alice"), Player("bob")
    await alice.connect()
    await bob.connect()
    room = (await alice.request({"type": "create_room", "game": "dice", "params": {"turn_ms": 3000}}))["room"]
    print(f"alice: created dice room {room}")
    await bob.request({"type": "join_room", "room": room})
    await bob.request({"type": "chat", "text": "good luck!"})
    print(f"alice: chat from {(await alice.next('chat'))['name']}")
    await alice.request({"type": "ready"})
    await bob.request({"type": "ready"})
    started = await alice.next("room_event", kind="round_started")
    print(f"round {started['event']['round']} order: {started['event']['order']}")
    await bob.request({"type": "input", "data": {"action": "roll"}})  # not bob's turn yet
    players = {alice.id: alice, bob.id: bob}
    for pid in started["event"]["order"]:
        await players[pid].request({"type": "input", "data": {"action": "roll"}})
        rolled = await alice.next("room_event", kind="rolled", player=pid)
        print(f"{players[pid].name} rolled {rolled['event']['dice']} (version {rolled['version']})")
    over = await alice.next("room_event", kind="round_over")
    winners = [players[w].name for w in over["event"]["winners"]]
    print(f"round over, totals {over['event']['totals']}, winners {winners}")
    for p in (alice, bob):
        await p.ws.close()


asyncio.run(main())
