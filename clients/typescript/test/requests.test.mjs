// Every request of PROTOCOL.md and every error code a client can meet, through the SDK against a
// real node; a dice round played to `round_over`; the close codes the SDK must not retry after.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import WebSocket from "ws";
import { Client, WarrenError, WarrenHttpError, closeAction, guestToken } from "../dist/src/index.js";
import { checkFrames, player, startNode, token, playerId, until } from "./harness.mjs";

/** The `code` a promise rejects with. */
async function code(promise) {
  try {
    await promise;
  } catch (e) {
    assert.ok(e instanceof WarrenError, `not a WarrenError: ${e}`);
    return e.code;
  }
  assert.fail("resolved; expected an error");
}

describe("one node", () => {
  let node;
  const clients = [];
  const join = async (name, options) => {
    const c = await player(node.url, name, options);
    clients.push(c);
    return c;
  };

  before(async () => {
    node = await startNode({ bin: "warren-test-node" });
  });
  after(async () => {
    for (const c of clients) {
      c.close();
      assert.deepEqual(c.violations, [], "every frame follows the schema");
    }
    await node.stop();
  });

  it("connects as a guest, and says why a guest name is refused", async () => {
    const c = new Client({ url: node.url, guest: "Gus" });
    c.violations = checkFrames(c);
    await c.open();
    clients.push(c);
    assert.match(c.player, /^guest-/);
    assert.equal(c.name, "Gus");
    assert.equal(c.node, "n1");
    assert.ok(c.resumeToken);
    assert.equal(c.status, "open");
    const e = await guestToken(node.url, "").catch((e) => e);
    assert.ok(e instanceof WarrenHttpError);
    assert.equal(e.status, 400);
    assert.equal(e.code, "bad_request");
  });

  it("a bad token gets no connection", async () => {
    const c = new Client({ url: node.url, token: "not-a-jwt" });
    await assert.rejects(c.open(), /ended \(\d+\) before a welcome/);
    assert.equal(c.status, "closed");
  });

  it("ping, list_rooms, create_room, join_room, chat, leave_room", async () => {
    const a = await join("ann");
    const b = await join("bob");
    assert.ok((await a.ping()) >= 0);
    assert.equal(typeof a.rtt, "number");

    const room = await a.createRoom("dice", { seats: 2, turn_ms: 60_000 });
    assert.equal(room.game, "dice");
    assert.equal(room.node, "n1");
    assert.equal(room.state.phase, "waiting");
    assert.deepEqual(room.players.map((p) => p.player), [a.player]);
    assert.equal(a.room, room);

    const listed = await b.listRooms("dice");
    assert.ok(listed.some((r) => r.room === room.id && r.players === 1 && r.seats === 2));
    assert.deepEqual(await b.listRooms("no-such-game"), []);

    const joined = room.next("players", (ps) => ps.length === 2);
    const bRoom = await b.joinRoom(room.id);
    assert.equal(bRoom.id, room.id);
    assert.equal(bRoom.players.length, 2);
    await joined;
    assert.deepEqual(room.players.map((p) => [p.player, p.seat]), [[a.player, 0], [b.player, 1]]);

    // join_room of one's own room reattaches: the same handle, a full state.
    assert.equal(await b.joinRoom(room.id), bRoom);

    const heard = bRoom.next("chat");
    await room.chat("hello");
    assert.deepEqual(await heard, { player: a.player, name: "ann", text: "hello" });

    const gone = room.next("players", (ps) => ps.length === 1);
    const left = bRoom.next("left");
    await b.leaveRoom();
    assert.deepEqual(await left, { reason: "left" });
    assert.equal(b.room, null);
    assert.equal(bRoom.active, false);
    await gone;
    await a.leaveRoom();
  });

  it("every error a request can get", async () => {
    const a = await join("eve");
    const b = await join("fay");
    const c = await join("gil");
    assert.equal(await code(a.createRoom("chess")), "unknown_game");
    const bad = await a.createRoom("dice", { seats: 9 }).catch((e) => e);
    assert.equal(bad.code, "invalid_params");
    assert.equal(bad.message, "`seats` must be from 2 to 8");
    assert.equal(await code(a.joinRoom("n1.nope")), "not_found");
    assert.equal(await code(a.leaveRoom()), "not_in_room");
    assert.equal(await code(a.request({ type: "ready" })), "not_in_room");
    assert.equal(await code(a.request({ type: "input", data: { action: "roll" } })), "not_in_room");
    assert.equal(await code(a.request({ type: "chat", text: "hi" })), "not_in_room");
    assert.equal(await code(a.unqueue()), "not_queued");
    assert.equal(await code(a.queue("chess")), "unknown_game");

    const room = await a.createRoom("dice", { seats: 2 });
    assert.equal(await code(a.createRoom("dice")), "already_in_room");
    assert.equal(await code(a.queue("dice")), "already_in_room");
    const bRoom = await b.joinRoom(room.id);
    assert.equal(await code(c.joinRoom(room.id)), "room_full");
    assert.equal(await code(a.joinRoom("n1.other")), "already_in_room");
    assert.equal(await code(room.send({ action: "roll" })), "invalid_state");
    const invalid = await room.send({ action: "jump" }).catch((e) => e);
    assert.equal(invalid.code, "invalid_input");
    assert.match(invalid.message, /unknown variant `jump`/);
    assert.equal(room.pending.length, 0, "a refused input is not pending");

    const starts = room.next("event", (e) => e.event.kind === "round_started");
    await room.ready();
    await bRoom.ready();
    const { order } = (await starts).event;
    assert.equal(await code(room.ready()), "invalid_state");
    const second = order[1] === a.player ? room : bRoom;
    assert.equal(await code(second.send({ action: "roll" })), "not_your_turn");

    // What only a hand-made frame can carry: the schema check sees each of them as not the
    // protocol's (which shows the check works), and the server answers each as it should.
    const rogue = await join("rox");
    assert.equal(await code(rogue.request({ type: "fly" })), "unknown_type");
    assert.equal(await code(rogue.request({ type: "join_room" })), "bad_request");
    assert.equal(await code(rogue.request({ type: "chat", text: "" })), "bad_request");
    assert.equal(await code(rogue.queue("dice", "no spaces")), "bad_request");
    assert.deepEqual(
      rogue.violations.map((v) => v.sent?.type),
      ["fly", "join_room", "chat", "queue"],
    );
    rogue.violations.length = 0;

    await c.queue("dice", "ranked");
    assert.equal(await code(c.queue("dice")), "already_queued");
    await c.unqueue();
    assert.equal(c.queued, null);
  });

  it("rate_limited answers a flood, and the connection stays", async () => {
    const a = await join("flo");
    const answers = await Promise.allSettled(Array.from({ length: 160 }, () => a.request({ type: "ping" })));
    const limited = answers.filter((r) => r.status === "rejected" && r.reason.code === "rate_limited");
    assert.ok(limited.length > 0, "some pings were over the limit");
    assert.ok(answers.filter((r) => r.status === "fulfilled").length >= 90);
    assert.equal(a.status, "open");
  });

  it("internal: a room whose game fails restarts, and the room handle gets its state again", async () => {
    const a = await join("ivy");
    const room = await a.createRoom("crash");
    await room.send({ action: "count" });
    const resync = room.next("state");
    assert.equal(await code(room.send({ action: "panic" })), "internal");
    await resync;
    assert.equal(a.room, room);
    await room.send({ action: "count" });
  });

  it("a dice round, played to round_over by two players", async () => {
    const a = await join("ada");
    const b = await join("ben");
    const room = await a.createRoom("dice", { seats: 2, turn_ms: 60_000 });
    const bRoom = await b.joinRoom(room.id);
    const events = [];
    room.on("event", (e) => events.push(e));
    const over = room.next("event", (e) => e.event.kind === "round_over");
    const starts = room.next("event", (e) => e.event.kind === "round_started");
    await room.ready();
    await bRoom.ready();
    await starts;
    assert.equal(room.state.phase, "waiting", "state changes come in room_state only");
    for (let turn = 0; turn < 2; turn++) {
      const rolled = room.next("event", (e) => e.event.kind === "rolled");
      const mine = events.filter((e) => e.event.kind === "rolled").length === 0
        ? events.find((e) => e.event.kind === "round_started").event.order[0]
        : events.find((e) => e.event.kind === "round_started").event.order[1];
      await (mine === a.player ? room : bRoom).send({ action: "roll" });
      const r = (await rolled).event;
      assert.equal(r.player, mine);
      assert.equal(r.total, r.dice[0] + r.dice[1]);
    }
    const end = (await over).event;
    assert.equal(end.round, 1);
    assert.deepEqual(Object.keys(end.totals).sort(), [a.player, b.player].sort());
    const top = Math.max(...Object.values(end.totals));
    assert.deepEqual(end.winners.sort(), Object.keys(end.totals).filter((p) => end.totals[p] === top).sort());
    // Versions went up by one per event.
    const versions = events.map((e) => e.version);
    assert.deepEqual(versions, versions.map((_, i) => versions[0] + i));
  });

  it("4002: a newer connection of the player replaces this one, and the SDK stops", async () => {
    const id = playerId("rex");
    const first = new Client({ url: node.url, token: token(id) });
    await first.open();
    let reconnects = 0;
    first.on("reconnecting", () => reconnects++);
    const lost = first.next("lost");
    const second = new Client({ url: node.url, token: token(id) });
    second.violations = checkFrames(second);
    await second.open();
    clients.push(second);
    assert.equal((await lost).code, 4002);
    assert.equal(first.status, "closed");
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(reconnects, 0);
    assert.equal(second.status, "open");
    assert.equal(await code(first.ping()), "closed");
  });

  it("the close codes' advice", () => {
    assert.equal(closeAction(4001), "at_once");
    for (const c of [4002, 1002, 1003, 1009]) assert.equal(closeAction(c), "stop");
    assert.equal(closeAction(4004), "rate_limited");
    for (const c of [1006, 1011, 4000, 4003]) assert.equal(closeAction(c), "backoff");
  });

  it("a dropped connection resumes the seat by itself", async () => {
    // The client's sockets, through the public `WebSocket` option, so the test can cut one.
    const sockets = [];
    class Tapped extends WebSocket {
      constructor(url) {
        super(url, { allowSynchronousEvents: false });
        sockets.push(this);
      }
    }
    const a = await join("sam", { WebSocket: Tapped });
    const b = await join("sue");
    const room = await a.createRoom("dice", { seats: 2 });
    await b.joinRoom(room.id);
    const reconnecting = a.next("reconnecting");
    const resumed = a.next("resumed");
    const back = room.next("state");
    const seen = [];
    b.room.on("event", (e) => seen.push(e.event.kind));
    sockets.at(-1).terminate(); // no close frame: as a lost network
    assert.equal((await reconnecting).code, 1006);
    assert.deepEqual(await resumed, { resumed: true, recovering: false, node: "n1" });
    await back;
    assert.equal(a.room, room, "the same handle");
    assert.equal(sockets.length, 2);
    await until("the other player sees the drop and the return", () =>
      seen.includes("player_reconnected") && b.room.players.find((p) => p.player === a.player)?.connected === true,
    );
    assert.deepEqual(seen, ["player_disconnected", "player_reconnected"]);
  });
});
