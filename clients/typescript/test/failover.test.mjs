// The SDK keeps a player playing through a drain of its room's node and a kill -9 of its own
// node, on real 3-node clusters: the player's code never reconnects, resumes or rejoins; the SDK
// does, and the game goes on.
import assert from "node:assert/strict";
import { afterEach, describe, it } from "node:test";
import { player, startCluster, until } from "./harness.mjs";

describe("failover", () => {
  let nodes = [];
  const clients = [];
  afterEach(async () => {
    for (const c of clients.splice(0)) {
      c.close();
      assert.deepEqual(c.violations, [], "every frame follows the schema");
    }
    for (const n of nodes) await n.stop();
  });
  const join = async (urls, name) => {
    const c = await player(urls, name);
    clients.push(c);
    return c;
  };

  it("arena keeps moving while its room's node drains", async () => {
    nodes = await startCluster(3);
    const [n1, n2, n3] = nodes;
    // The player is on the room's node; the node list is what a load balancer would offer.
    const a = await join([n1.url, n2.url, n3.url], "dan");
    const b = await join([n2.url, n3.url], "dee");
    const room = await a.createRoom("arena", { seats: 2, tick_hz: 20 });
    assert.equal(room.node, "n1");
    const bRoom = await b.joinRoom(room.id);

    // A game loop: a new input every 50 ms, to the right and back, for as long as the test runs.
    let dx = 1;
    let inputs = 0;
    let failed = 0;
    const loop = setInterval(() => {
      if (!a.room) return;
      const x = a.room.state.players?.[a.player]?.x ?? 500;
      if (x > 900) dx = -1;
      if (x < 100) dx = 1;
      inputs++;
      a.room.send({ dx, dy: 0 }).catch(() => failed++);
    }, 50);
    try {
      await room.next("tick", (r) => r.ack >= 5);
      const events = [];
      a.on("reconnecting", (e) => events.push(`reconnecting ${e.code}`));
      a.on("resumed", (e) => events.push(`resumed ${e.resumed} on ${e.node}`));
      const moved = room.next("state", (r) => r.node !== "n1", 20_000);
      const resumed = a.next("resumed", () => true, 20_000);
      await n1.drain();
      await moved;
      await resumed;
      assert.equal(a.room, room, "the same room handle");
      assert.notEqual(a.node, "n1");
      assert.deepEqual(events.slice(0, 2), ["reconnecting 4001", `resumed true on ${a.node}`]);
      // Play goes on on the new node: the position keeps changing and inputs are acknowledged.
      const ack = room.ack;
      const x = room.state.players[a.player].x;
      await room.next("tick", (r) => r.ack > ack + 5 && r.state.players[a.player].x !== x);
      await bRoom.next("tick", (r) => r.state.players[a.player].x !== x);
      assert.equal(bRoom.node, room.node);
      assert.equal(b.status, "open");
      assert.equal((await n1.exited).code, 0, "the drained node exits cleanly");
      // Inputs in flight when the connection closed may fail (`disconnected`); no others do.
      assert.ok(failed <= 3, `${failed} of ${inputs} inputs failed`);
    } finally {
      clearInterval(loop);
    }
  });

  it("dice goes on after the player's node is killed with -9", async () => {
    nodes = await startCluster(3);
    const [, n2, n3] = nodes;
    const a = await join([n3.url, n2.url], "kim");
    const b = await join([n2.url], "kip");
    const bRoom = await b.createRoom("dice", { seats: 2, turn_ms: 60_000 });
    assert.equal(bRoom.node, "n2");
    const room = await a.joinRoom(bRoom.id);
    const starts = room.next("event", (e) => e.event.kind === "round_started");
    await room.ready();
    await bRoom.ready();
    const started = (await starts).event;

    const resumed = a.next("resumed", () => true, 20_000);
    n3.kill("SIGKILL");
    const r = await resumed;
    assert.equal(r.resumed || r.recovering, true, JSON.stringify(r));
    assert.equal(a.node, "n2");
    await until("the room handle is back", () => a.room === room && room.active);

    // The round goes on: each rolls on its turn, then it is over.
    const over = bRoom.next("event", (e) => e.event.kind === "round_over", 20_000);
    for (const who of started.order) {
      const handle = who === a.player ? room : bRoom;
      await handle.send({ action: "roll" });
    }
    const end = (await over).event;
    assert.deepEqual(Object.keys(end.totals).sort(), [a.player, b.player].sort());
    await until("a saw it too", () => room.version === bRoom.version);
  });
});
