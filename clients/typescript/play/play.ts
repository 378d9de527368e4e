// The playground the node serves at /play: a guest plays dice and arena through the SDK, and
// watches the cluster (nodes, their rooms, where its own room is, a room moving in a drain).
import {
  Client,
  WarrenError,
  WarrenHttpError,
  clusterView,
  type ArenaState,
  type DiceState,
  type Room,
  type TypesOf,
} from "./warren.js";

const $ = <T extends HTMLElement = HTMLElement>(id: string): T => {
  const el = document.getElementById(id);
  if (!el) throw new Error(`#${id} is missing`);
  return el as T;
};

// The nodes to connect to: this page's own node, or the list in `?nodes=`.
const params = new URLSearchParams(location.search);
const nodes = (params.get("nodes") ?? location.origin)
  .split(",")
  .map((s) => s.trim())
  .filter(Boolean);
$("nodes").textContent = nodes.join(", ");

let client: Client | null = null;
let adminToken = sessionStorage.getItem("warren.admin") ?? undefined;

function log(text: string): void {
  const li = document.createElement("li");
  li.textContent = `${new Date().toLocaleTimeString()} ${text}`;
  const list = $("log");
  list.prepend(li);
  while (list.children.length > 200) list.lastChild?.remove();
}

function showError(id: string, e: unknown): void {
  const text =
    e instanceof WarrenError || e instanceof WarrenHttpError ? `${e.code}: ${e.message}` : String(e);
  $(id).textContent = text;
  log(`error ${text}`);
}

function setStatus(): void {
  const badge = $("status");
  const status = client?.status ?? "offline";
  badge.dataset["status"] = status;
  badge.textContent = client && status === "open" ? `connected to ${client.node}` : status;
  $("whoami").textContent = client ? `${client.name} (${client.player})` : "";
}

// -- signing in -------------------------------------------------------------------------------

$("guest-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  void signIn($<HTMLInputElement>("guest-name").value.trim());
});

async function signIn(name: string): Promise<void> {
  $("signin-error").textContent = "";
  const c = new Client({ url: nodes, guest: name });
  c.on("welcome", (w) => {
    log(`welcome from ${w.node}${w.resumed ? " (resumed)" : ""}`);
    setStatus();
  });
  c.on("reconnecting", (r) => {
    log(`connection closed (${r.code}); reconnecting in ${r.delayMs} ms`);
    setStatus();
  });
  c.on("resumed", (r) => {
    log(`reconnected to ${r.node}: ${r.resumed ? "resumed" : r.recovering ? "recovering the seat" : "new session"}`);
    setStatus();
  });
  c.on("recovery", (r) => log(r.room ? `seat recovered in ${r.room}` : "the seat was not recovered"));
  c.on("lost", (l) => {
    log(`connection lost for good (${l.code}): ${l.reason}`);
    setStatus();
  });
  c.on("rtt", (ms) => ($("rtt").textContent = `RTT ${ms.toFixed(1)} ms`));
  c.on("room", (room) => enterRoom(room));
  c.on("match_found", (m) => {
    log(`match found: ${m.room} with ${m.players.join(", ")}`);
    showQueue(false, "");
  });
  c.on("error", (e) => log(`error ${e.code}: ${e.message}`));
  try {
    await c.open();
  } catch (e) {
    showError("signin-error", e);
    return;
  }
  client = c;
  setStatus();
  void c.ping();
  $("signin").hidden = true;
  $("lobby").hidden = false;
  void refreshRooms();
}

// -- the lobby --------------------------------------------------------------------------------

async function refreshRooms(): Promise<void> {
  if (!client) return;
  try {
    const rooms = await client.listRooms();
    const body = $("rooms").querySelector("tbody")!;
    body.replaceChildren(
      ...rooms.map((r) => {
        const tr = document.createElement("tr");
        for (const text of [r.room, r.game, `${r.players}/${r.seats}`]) {
          const td = document.createElement("td");
          td.textContent = text;
          tr.append(td);
        }
        const td = document.createElement("td");
        const b = document.createElement("button");
        b.textContent = "Join";
        b.type = "button";
        b.addEventListener("click", () => void join(r.room));
        td.append(b);
        tr.append(td);
        return tr;
      }),
    );
  } catch (e) {
    showError("lobby-error", e);
  }
}

$("refresh-button").addEventListener("click", () => void refreshRooms());

$("create-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  if (!client) return;
  const game = $<HTMLSelectElement>("create-game").value;
  const seats = Number($<HTMLInputElement>("create-seats").value);
  $("lobby-error").textContent = "";
  client
    .createRoom(game, { seats }, { private: $<HTMLInputElement>("create-private").checked })
    .catch((e: unknown) => showError("lobby-error", e));
});

$("join-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  void join($<HTMLInputElement>("join-id").value.trim());
});

async function join(room: string): Promise<void> {
  if (!client) return;
  $("lobby-error").textContent = "";
  await client.joinRoom(room).catch((e: unknown) => showError("lobby-error", e));
}

function showQueue(queued: boolean, text: string): void {
  $("queue-button").hidden = queued;
  $("unqueue-button").hidden = !queued;
  $("queue-status").textContent = text;
}

$("queue-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  if (!client) return;
  const game = $<HTMLSelectElement>("queue-game").value;
  client
    .queue(game, "playground")
    .then(() => showQueue(true, `looking for a ${game} match…`))
    .catch((e: unknown) => showError("lobby-error", e));
});

$("unqueue-button").addEventListener("click", () => {
  client
    ?.unqueue()
    .then(() => showQueue(false, ""))
    .catch((e: unknown) => showError("lobby-error", e));
});

// -- the room ---------------------------------------------------------------------------------

let current: Room | null = null;

function enterRoom(room: Room): void {
  current = room;
  $("room").hidden = false;
  $("lobby").hidden = true;
  $("room-error").textContent = "";
  $("chat").replaceChildren();
  $("room-id").textContent = room.id;
  $("room-game").textContent = room.game;
  $("dice").hidden = room.game !== "dice";
  $("arena").hidden = room.game !== "arena";
  log(`in room ${room.id} (${room.game}) on ${room.node ?? "?"}`);
  let node = room.node;
  const render = () => {
    if (current !== room) return;
    $("room-node").textContent = room.node ?? "?";
    $("room-version").textContent = String(room.version);
    $("room-players").replaceChildren(
      ...room.players.map((p) => {
        const li = document.createElement("li");
        li.textContent = `seat ${p.seat}: ${p.name}${p.player === client?.player ? " (you)" : ""}${p.ready ? " ✓ ready" : ""}${p.connected ? "" : " (away)"}`;
        li.className = p.connected ? "" : "away";
        return li;
      }),
    );
    if (room.game === "dice") renderDice(room as unknown as Room<TypesOf<"dice">>);
  };
  room.on("state", () => {
    if (room.node !== node) {
      log(`room ${room.id} moved: ${node ?? "?"} → ${room.node ?? "?"}`);
      node = room.node;
    }
    render();
  });
  room.on("players", render);
  room.on("event", (e) => {
    log(`v${e.version} ${JSON.stringify(e.event)}`);
    if (room.game === "dice") diceEvent(room as unknown as Room<TypesOf<"dice">>, e.event as TypesOf<"dice">["event"]);
    render();
  });
  room.on("chat", (c) => {
    const li = document.createElement("li");
    li.textContent = `${c.name}: ${c.text}`;
    $("chat").append(li);
  });
  room.on("message", (m) => log(`message ${JSON.stringify(m)}`));
  room.on("left", ({ reason }) => {
    log(`left room ${room.id} (${reason})`);
    if (current !== room) return;
    current = null;
    stopArena();
    $("room").hidden = true;
    $("lobby").hidden = false;
    void refreshRooms();
  });
  if (room.game === "arena") startArena(room as unknown as Room<TypesOf<"arena">>);
  render();
}

$("chat-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const input = $<HTMLInputElement>("chat-text");
  current
    ?.chat(input.value)
    .then(() => (input.value = ""))
    .catch((e: unknown) => showError("room-error", e));
});

$("leave-button").addEventListener("click", () => {
  current?.leave().catch((e: unknown) => showError("room-error", e));
});

// dice: the state shows in `room_state`; between states, the events tell the round's story.
const dice = { phase: "waiting", turn: "" as string, order: [] as string[], rolled: 0 };

function diceEvent(room: Room<TypesOf<"dice">>, event: TypesOf<"dice">["event"]): void {
  switch (event.kind) {
    case "round_started":
      Object.assign(dice, { phase: "rolling", order: event.order, rolled: 0, turn: event.order[0] ?? "" });
      $("dice-result").textContent = "";
      break;
    case "rolled":
      dice.rolled++;
      dice.turn = dice.order[dice.rolled] ?? "";
      $("dice-result").textContent = `${name(room, event.player)} rolled ${event.dice.join(" + ")} = ${event.total}${event.auto ? " (auto)" : ""}`;
      break;
    case "round_over":
      Object.assign(dice, { phase: "waiting", turn: "" });
      for (const p of room.players) p.ready = false;
      $("dice-result").textContent = `Round ${event.round} over: ${event.winners.map((w) => name(room, w)).join(", ")} won`;
      break;
    default:
      break;
  }
}

function name(room: Room, player: string): string {
  return room.players.find((p) => p.player === player)?.name ?? player;
}

function renderDice(room: Room<TypesOf<"dice">>): void {
  const s: DiceState = room.state;
  // A fresh state is the truth; events since move the round on.
  if (s.phase === "rolling" && dice.phase !== "rolling") {
    Object.assign(dice, { phase: "rolling", turn: room.players.find((p) => p.seat === s.turn)?.player ?? "" });
  }
  const mine = dice.turn === client?.player;
  $("dice-state").textContent =
    dice.phase === "rolling"
      ? `Rolling: ${mine ? "your turn" : `${name(room, dice.turn)}'s turn`}`
      : "Waiting: everyone presses Ready to start a round";
  $<HTMLButtonElement>("roll-button").disabled = !(dice.phase === "rolling" && mine);
  $<HTMLButtonElement>("ready-button").disabled = dice.phase === "rolling";
}

$("ready-button").addEventListener("click", () => {
  current?.ready().catch((e: unknown) => showError("room-error", e));
});
$("roll-button").addEventListener("click", () => {
  (current as Room<TypesOf<"dice">> | null)
    ?.send({ action: "roll" })
    .catch((e: unknown) => showError("room-error", e));
});

// arena: a canvas of the 1000×1000 field; the player's own dot is predicted from its pending inputs.
const held = { dx: 0, dy: 0 };
const keys = new Set<string>();
let arenaTimer: ReturnType<typeof setInterval> | undefined;
const auto = { dx: 1, dy: 0.4 };

function startArena(room: Room<TypesOf<"arena">>): void {
  stopArena();
  const canvas = $<HTMLCanvasElement>("arena-canvas");
  canvas.focus();
  room.on("tick", () => draw(room));
  // Inputs at 10 Hz while moving, plus one when the direction changes: the room keeps the
  // latest direction of each player.
  let last = "";
  arenaTimer = setInterval(() => {
    if (current !== room) return;
    let dir = { ...held };
    if ($<HTMLInputElement>("auto-move").checked) {
      const me = room.state.players[client?.player ?? ""];
      if (me) {
        if (me.x > 950) auto.dx = -1;
        if (me.x < 50) auto.dx = 1;
        if (me.y > 950) auto.dy = -0.4;
        if (me.y < 50) auto.dy = 0.4;
      }
      dir = { ...auto };
    }
    const key = `${dir.dx},${dir.dy}`;
    if (key !== last || dir.dx !== 0 || dir.dy !== 0) {
      last = key;
      room.send(dir).catch((e: unknown) => {
        if (e instanceof WarrenError && e.code === "disconnected") return; // resent by the next one
        showError("room-error", e);
      });
    }
  }, 100);
  draw(room);
}

function stopArena(): void {
  clearInterval(arenaTimer);
  arenaTimer = undefined;
}

function draw(room: Room<TypesOf<"arena">>): void {
  const canvas = $<HTMLCanvasElement>("arena-canvas");
  const ctx = canvas.getContext("2d");
  if (!ctx) return;
  const scale = canvas.width / 1000;
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  const state: ArenaState = room.state;
  for (const [player, pos] of Object.entries(state.players)) {
    const mine = player === client?.player;
    let { x, y } = pos;
    if (mine) {
      // Prediction: apply the inputs the room has not acknowledged yet, one tick each.
      for (const p of room.pending) {
        x = Math.min(1000, Math.max(0, x + p.input.dx * 10));
        y = Math.min(1000, Math.max(0, y + p.input.dy * 10));
      }
    }
    ctx.fillStyle = mine ? "#2a6af0" : "#e0662a";
    ctx.beginPath();
    ctx.arc(x * scale, y * scale, mine ? 9 : 7, 0, Math.PI * 2);
    ctx.fill();
    ctx.fillStyle = "#1d2330";
    ctx.fillText(name(room, player), x * scale + 10, y * scale - 8);
  }
  $("arena-tick").textContent = String(room.tick);
  $("arena-ack").textContent = String(room.ack);
  $("arena-pending").textContent = String(room.pending.length);
}

const directions: Record<string, [number, number]> = {
  ArrowLeft: [-1, 0],
  ArrowRight: [1, 0],
  ArrowUp: [0, -1],
  ArrowDown: [0, 1],
  a: [-1, 0],
  d: [1, 0],
  w: [0, -1],
  s: [0, 1],
};

function updateHeld(): void {
  held.dx = 0;
  held.dy = 0;
  for (const k of keys) {
    const d = directions[k];
    if (!d) continue;
    held.dx = Math.max(-1, Math.min(1, held.dx + d[0]));
    held.dy = Math.max(-1, Math.min(1, held.dy + d[1]));
  }
}

const canvas = $("arena-canvas");
canvas.addEventListener("keydown", (ev) => {
  if (!directions[ev.key]) return;
  ev.preventDefault();
  keys.add(ev.key);
  updateHeld();
});
canvas.addEventListener("keyup", (ev) => {
  keys.delete(ev.key);
  updateHeld();
});

// -- the cluster ------------------------------------------------------------------------------

async function refreshCluster(): Promise<void> {
  try {
    // The page's own node: the cluster view is an admin endpoint, which answers no other origin.
    const view = await clusterView(location.origin, adminToken);
    $("cluster-error").textContent = `as ${view.node} sees it`;
    $("admin-form").hidden = true;
    const body = $("cluster-nodes").querySelector("tbody")!;
    body.replaceChildren(
      ...view.nodes.map((n) => {
        const tr = document.createElement("tr");
        tr.dataset["state"] = n.state;
        tr.dataset["node"] = n.id;
        const marks = [
          n.id === client?.node ? "you are here" : "",
          n.id === current?.node ? "your room" : "",
        ].filter(Boolean);
        if (marks.length) tr.className = "mine";
        for (const text of [
          marks.length ? `${n.id} (${marks.join(", ")})` : n.id,
          n.state,
          String(n.rooms),
          String(n.sessions),
          n.version,
        ]) {
          const td = document.createElement("td");
          td.textContent = text;
          tr.append(td);
        }
        return tr;
      }),
    );
  } catch (e) {
    if (e instanceof WarrenHttpError && (e.status === 401 || e.status === 403)) {
      $("cluster-error").textContent = "The cluster view is for admins: give the admin token.";
      $("admin-form").hidden = false;
    } else {
      $("cluster-error").textContent = `cluster view unavailable: ${String(e)}`;
    }
  }
}

$("admin-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  adminToken = $<HTMLInputElement>("admin-token").value || undefined;
  if (adminToken) sessionStorage.setItem("warren.admin", adminToken);
  void refreshCluster();
});

setInterval(() => {
  void refreshCluster();
  setStatus();
}, 1000);
void refreshCluster();

// For the browser tests and the curious: the page's client.
Object.assign(globalThis, { warren: { get client() { return client; } } });
