// The arena (realtime) through the SDK: ticks, `seq` numbering and acknowledgements (the pending
// inputs a client predicts with); and matchmaking: queue, match_found, the room handle.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { player, startNode, until } from "./harness.mjs";

describe("arena and matchmaking", () => {
  let node;
  const clients = [];
  const join = async (name) => {
    const c = await player(node.url, name);
    clients.push(c);
    return c;
  };
  before(async () => {
    node = await startNode();
  });
  after(async () => {
    for (const c of clients) {
      c.close();
      assert.deepEqual(c.violations, [], "every frame follows the schema");
    }
    await node.stop();
  });

  it("inputs are numbered, acknowledged by ticks, and pending until then", async () => {
    const a = await join("ace");
    const b = await join("bea");
    const room = await a.createRoom("arena", { seats: 4, tick_hz: 20 });
    assert.deepEqual(room.state, { players: { [a.player]: { x: 500, y: 500 } } });
    const t0 = (await room.next("tick")).tick;
    assert.equal(room.ack, 0);

    const sent = [room.send({ dx: 1, dy: 0 }), room.send({ dx: 1, dy: 0.5 })];
    assert.deepEqual(room.pending.map((p) => p.seq), [1, 2]);
    assert.deepEqual(room.pending[1].input, { dx: 1, dy: 0.5 });
    await Promise.all(sent);
    await room.next("tick", (r) => r.ack === 2);
    assert.equal(room.pending.length, 0);
    assert.ok(room.tick > t0);

    const x0 = room.state.players[a.player].x;
    await room.next("tick", (r) => r.state.players[a.player].x >= x0 + 30);
    assert.ok(room.state.players[a.player].y > 500);

    // Another player sees the same world, and its own ack.
    const bRoom = await b.joinRoom(room.id);
    await bRoom.next("tick", (r) => r.state.players[b.player] !== undefined);
    assert.equal(bRoom.ack, 0);
    await bRoom.send({ dx: -1, dy: 0 });
    await bRoom.next("tick", (r) => r.ack === 1 && r.state.players[b.player].x < 500);
    assert.equal(room.ack, 2, "a's ack is a's own");

    const refused = await room.send({ dx: 2, dy: 0 }).catch((e) => e);
    assert.equal(refused.code, "invalid_input");
    assert.deepEqual(room.pending, []);
    // The next seq is still above the refused one: the room ignores none of what follows.
    await room.send({ dx: 0, dy: 0 });
    await room.next("tick", (r) => r.ack === 4);
  });

  it("queue: two players are matched and seated in one room", async () => {
    const a = await join("mia");
    const b = await join("max");
    const rooms = [a.next("room"), b.next("room")];
    const found = [a.next("match_found"), b.next("match_found")];
    const ticket = await a.queue("dice", "sdk");
    assert.deepEqual(a.queued, { game: "dice", mode: "sdk", ticket });
    await b.queue("dice", "sdk");
    const [fa, fb] = await Promise.all(found);
    assert.equal(fa.ticket, ticket);
    assert.equal(fa.room, fb.room);
    assert.deepEqual([...fa.players].sort(), [a.player, b.player].sort());
    const [ra, rb] = await Promise.all(rooms);
    assert.equal(ra.id, fa.room);
    assert.equal(rb.id, fa.room);
    assert.equal(a.queued, null);
    await until("both seated", () => ra.players.length === 2 && rb.players.length === 2);
  });
});
