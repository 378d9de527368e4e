// Warren's client SDK: one connection to a Warren cluster, requests as promises, pushes as typed
// events, a handle per room, and the connection's life (heartbeats, resume, reconnect) handled
// as PROTOCOL.md asks. No runtime dependency in browsers; on Node 20 it uses the `ws` package.
import type {
  ArenaInput,
  ArenaParams,
  ArenaState,
  ChatRequest,
  ClientMessage,
  CloseCode,
  CreateRoom,
  DiceEvent,
  DiceInput,
  DiceParams,
  DiceState,
  ErrorCode,
  Event as GameEvent,
  GuestToken,
  HttpError,
  Input,
  JoinRoom,
  ListRooms,
  MatchFound,
  PlayerView,
  Queue,
  Replies,
  RoomState,
  RoomSummary,
  SeatEvent,
  ServerMessage,
  Welcome,
} from "./protocol.js";

export type * from "./protocol.js";
export { ERROR_CODES } from "./protocol.js";

// ---------------------------------------------------------------------------------------------
// Errors

/**
 * Why a request failed: a server `error` (its `code` is one of PROTOCOL.md's), or one of the
 * SDK's own codes: `disconnected` (the connection closed before the answer came: the request may
 * or may not have taken effect), `timeout` (no answer within `requestTimeoutMs`), `closed`
 * (the client was closed, or gave up reconnecting).
 */
export class WarrenError extends Error {
  readonly code: ErrorCode | "disconnected" | "timeout" | "closed";
  readonly rid: number | undefined;
  constructor(code: WarrenError["code"], message: string, rid?: number) {
    super(message);
    this.name = "WarrenError";
    this.code = code;
    this.rid = rid;
  }
}

/** An HTTP refusal (`POST /v1/auth/guest`, `GET /v1/cluster`): its status and JSON body. */
export class WarrenHttpError extends Error {
  readonly status: number;
  readonly code: string;
  constructor(status: number, code: string, message: string) {
    super(message);
    this.name = "WarrenHttpError";
    this.status = status;
    this.code = code;
  }
}

// ---------------------------------------------------------------------------------------------
// Events

type Handler<T> = (value: T) => void;

/** A small typed event emitter: `on` returns the function that removes the handler. */
export class Emitter<Events extends object> {
  #handlers = new Map<keyof Events, Set<Handler<never>>>();

  on<K extends keyof Events>(event: K, handler: Handler<Events[K]>): () => void {
    let set = this.#handlers.get(event);
    if (!set) {
      set = new Set();
      this.#handlers.set(event, set);
    }
    set.add(handler as Handler<never>);
    return () => this.off(event, handler);
  }

  off<K extends keyof Events>(event: K, handler: Handler<Events[K]>): void {
    this.#handlers.get(event)?.delete(handler as Handler<never>);
  }

  /** The next value of `event` that `filter` accepts, or a rejection after `timeoutMs`. */
  next<K extends keyof Events>(
    event: K,
    filter: (value: Events[K]) => boolean = () => true,
    timeoutMs = 30_000,
  ): Promise<Events[K]> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        off();
        reject(new WarrenError("timeout", `no ${String(event)} within ${timeoutMs} ms`));
      }, timeoutMs);
      const off = this.on(event, (v) => {
        if (!filter(v)) return;
        clearTimeout(timer);
        off();
        resolve(v);
      });
    });
  }

  protected emit<K extends keyof Events>(event: K, value: Events[K]): void {
    for (const h of [...(this.#handlers.get(event) ?? [])]) {
      try {
        (h as Handler<Events[K]>)(value);
      } catch (e) {
        // A handler's failure is the application's: report it without breaking the connection.
        setTimeout(() => {
          throw e;
        });
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Games

/** The types of one game: what `create_room` takes, what the state, events and inputs are. */
export interface GameTypes {
  params: object;
  state: unknown;
  event: { kind: string };
  input: object;
}

/**
 * The games the SDK knows the types of, by name. A studio adds its own by declaration merging:
 * `declare module "@warren/client" { interface Games { eights: { params: …; state: …; event: …;
 * input: … } } }`. A game not listed here gets loose types.
 */
export interface Games {
  dice: { params: DiceParams; state: DiceState; event: DiceEvent | SeatEvent; input: DiceInput };
  arena: { params: ArenaParams; state: ArenaState; event: SeatEvent; input: ArenaInput };
}

/** The types of game `G`: listed in [[Games]], or loose. */
export type TypesOf<G extends string> = G extends keyof Games ? Games[G] : GameTypes;

// ---------------------------------------------------------------------------------------------
// Rooms

/** One room event as the room handle reports it. */
export interface RoomEventOf<E> {
  version: number;
  event: E;
}

/** What a room handle reports. */
export interface RoomEvents<T extends GameTypes> {
  /** A full resync (`room_state`): after joining, a resume, a restart or a move of the room. */
  state: Room<T>;
  /** A room event, in version order; stale events (at or below the state's version) are dropped. */
  event: RoomEventOf<T["event"]>;
  /** A realtime tick: `state`, `tick` and `ack` were updated. */
  tick: Room<T>;
  /** A chat line. */
  chat: { player: string; name: string; text: string };
  /** Something the game told this player only (`room_message`). */
  message: GameEvent;
  /** The seats changed (join, leave, connection, ready). */
  players: PlayerView[];
  /** The player is no longer in this room. */
  left: { reason: "left" | "removed" | "closed" | "seat_lost" };
}

/** An input sent and not yet acknowledged (for client-side prediction). */
export interface PendingInput<I> {
  seq: number;
  input: I;
  sentAt: number;
}

/**
 * The player's seat in a room. `state` and `players` are as of the last `room_state` or tick,
 * `players` also follows the seat events (join, leave, connection, ready); a game's own changes
 * to ready flags (dice clears them after a round) show in the next `room_state` only.
 */
export class Room<T extends GameTypes = GameTypes> extends Emitter<RoomEvents<T>> {
  readonly id: string;
  readonly game: string;
  version = 0;
  players: PlayerView[] = [];
  state: T["state"];
  /** The node hosting the room, as of its last `room_state`. */
  node: string | undefined;
  /** Tick number of the last realtime tick. */
  tick = 0;
  /** The highest input `seq` of this player that the room acknowledged. */
  ack = 0;
  /** Whether the player still holds the seat. */
  active = true;
  #client: Client;
  #seq = 0;
  #pending: PendingInput<T["input"]>[] = [];

  /** @internal */
  constructor(client: Client, msg: RoomState) {
    super();
    this.#client = client;
    this.id = msg.room;
    this.game = msg.game;
    this.state = msg.state as T["state"];
    this.#resync(msg);
  }

  /** Inputs sent and not yet acknowledged, oldest first: replay them over `state` to predict. */
  get pending(): readonly PendingInput<T["input"]>[] {
    return this.#pending;
  }

  /**
   * Sends an input with the next `seq`; resolves when the room accepted it (`ok`), rejects with
   * the game's refusal (`invalid_input`, `not_your_turn`, …). Realtime games acknowledge it in a
   * tick (`ack`), which takes it out of `pending`; turn-based ones, with the `ok`.
   */
  async send(input: T["input"]): Promise<void> {
    this.#seq = Math.max(this.#seq, this.ack) + 1;
    const seq = this.#seq;
    this.#pending.push({ seq, input, sentAt: now() });
    try {
      await this.#client.request({ type: "input", data: input as Input["data"], seq });
    } catch (e) {
      this.#pending = this.#pending.filter((p) => p.seq !== seq);
      throw e;
    }
    if (!this.#realtime) this.#pending = this.#pending.filter((p) => p.seq > seq);
  }

  /** `ready` (games with a ready phase). */
  ready(): Promise<void> {
    return this.#client.request({ type: "ready" }).then(() => undefined);
  }

  /** A chat line to the room. */
  chat(text: string): Promise<void> {
    return this.#client.request({ type: "chat", text } satisfies ChatRequest).then(() => undefined);
  }

  /** Gives up the seat. */
  leave(): Promise<void> {
    return this.#client.leaveRoom();
  }

  #realtime = false;

  /** @internal */
  _state(msg: RoomState): void {
    this.#resync(msg);
    this.emit("state", this);
    this.emit("players", this.players);
  }

  #resync(msg: RoomState): void {
    this.version = msg.version;
    this.players = msg.players;
    this.state = msg.state as T["state"];
    this.node = msg.node;
    this.active = true;
  }

  /** @internal */
  _event(version: number, event: GameEvent): void {
    if (version <= this.version) return; // stale: the last room_state already holds it
    this.version = version;
    if (this.#seats(event)) this.emit("players", this.players);
    this.emit("event", { version, event: event as T["event"] });
    const me = this.#client.player;
    if (event.kind === "player_left" && event["player"] === me) this._left("removed");
  }

  #seats(event: GameEvent): boolean {
    const player = event["player"] as string | undefined;
    const seat = this.players.find((p) => p.player === player);
    switch (event.kind) {
      case "player_joined":
        if (seat || player === undefined) return false;
        this.players = [
          ...this.players,
          {
            player,
            name: String(event["name"] ?? player),
            seat: Number(event["seat"] ?? this.players.length),
            connected: true,
            ready: false,
          },
        ].sort((a, b) => a.seat - b.seat);
        return true;
      case "player_left":
        this.players = this.players.filter((p) => p.player !== player);
        return true;
      case "player_disconnected":
      case "player_reconnected":
        if (seat) seat.connected = event.kind === "player_reconnected";
        return true;
      case "player_ready":
        if (seat) seat.ready = true;
        return true;
      default:
        return false;
    }
  }

  /** @internal */
  _tick(tick: number, ack: number, state: unknown): void {
    this.#realtime = true;
    this.tick = tick;
    this.ack = ack;
    this.state = state as T["state"];
    if (this.#pending.length && this.#pending[0]!.seq <= ack) {
      this.#pending = this.#pending.filter((p) => p.seq > ack);
    }
    this.emit("tick", this);
  }

  /** @internal */
  _chat(player: string, name: string, text: string): void {
    this.emit("chat", { player, name, text });
  }

  /** @internal */
  _message(message: GameEvent): void {
    this.emit("message", message);
  }

  /** @internal */
  _left(reason: RoomEvents<T>["left"]["reason"]): void {
    if (!this.active) return;
    this.active = false;
    this.#pending = [];
    this.emit("left", { reason });
  }
}

// ---------------------------------------------------------------------------------------------
// The client

/** A WebSocket class: the browser's, or the `ws` package's on Node. */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
}
export type WebSocketClass = new (url: string) => WebSocketLike;

/** How the client reconnects after a connection it did not close ends. */
export interface ReconnectOptions {
  /** Delay of the second attempt (the first after a drain or a dropped connection is at once). */
  initialDelayMs?: number;
  /** Longest delay between attempts. */
  maxDelayMs?: number;
  /** Give up (`lost`) after this many attempts in a row without a `welcome`. */
  maxAttempts?: number;
  /** Delay before reconnecting after close 4004 (rate limit exceeded persistently). */
  rateLimitedDelayMs?: number;
}

export interface ConnectOptions {
  /**
   * The cluster's URL (`https://play.example.com`, or `ws(s)://`), usually a load balancer in
   * front of every node; or several node URLs, tried in turn. The WebSocket path is `/v1/ws`.
   */
  url: string | string[];
  /** The player's JWT, or a function that returns a fresh one before each connection. */
  token?: string | (() => string | Promise<string>);
  /** No token: play as a guest with this display name (`POST /v1/auth/guest`). */
  guest?: string;
  /** A resume token from an earlier connection (for example kept across a page reload). */
  resume?: string;
  /**
   * The WebSocket class; default: the global one, else the `ws` package (Node 20). Messages must
   * be delivered one per event-loop turn, as browsers do (with `ws`: `allowSynchronousEvents:
   * false`), or an `await` on a request can miss the messages that arrived with its answer.
   */
  WebSocket?: WebSocketClass;
  reconnect?: ReconnectOptions;
  /** A request without an answer after this long rejects with `timeout` (default 20000). */
  requestTimeoutMs?: number;
}

/** What the client reports. */
export interface ClientEvents {
  /** Every `welcome` (the first connection and every reconnection). */
  welcome: Welcome;
  /** The connection ended and the client will try again after `delayMs`. */
  reconnecting: { code: number; reason: string; attempt: number; delayMs: number };
  /**
   * A reconnection is open. `resumed`: the server kept the session. `recovering`: the player's
   * node died and the cluster is reviving its room (a `recovery` event follows).
   */
  resumed: { resumed: boolean; recovering: boolean; node: string };
  /** The seat search of a recovering resume ended: `room` holds the seat again, or null. */
  recovery: { room: string | null };
  /** The client stopped for good: replaced (4002), a protocol fault, or no reconnection worked. */
  lost: { code: number; reason: string };
  /** A room handle became the player's room (create, join, match, resume). */
  room: Room;
  /** A full `room_state` of the player's room was applied (a new room, or a resync). */
  state: Room;
  /** Matchmaking seated the player; the room's `room_state` (and a `room` event) follows. */
  match_found: MatchFound;
  /** An `error` that answers no request (a push). */
  error: WarrenError;
  /** Round-trip time of the last heartbeat, in ms. */
  rtt: number;
  /** Every message from the server, before the client handles it. */
  message: ServerMessage;
  /** A message the client sent. */
  sent: ClientMessage;
}

/** Client-side handling of each close code (PROTOCOL.md "Close codes"). */
export function closeAction(code: number): "at_once" | "backoff" | "rate_limited" | "stop" {
  switch (code as CloseCode | 1001 | 1006) {
    case 4001: // draining or isolated: reconnect at once, through the load balancer
      return "at_once";
    case 4002: // replaced by a newer connection of the same player
    case 1002: // protocol violation, binary frame, frame too large: fix the client
    case 1003:
    case 1009:
      return "stop";
    case 4004:
      return "rate_limited";
    default: // 1011, 4000, 4003, and a connection that dropped (1006)
      return "backoff";
  }
}

type Pending = {
  resolve: (fields: Record<string, unknown>) => void;
  reject: (e: WarrenError) => void;
  timer: ReturnType<typeof setTimeout>;
  type: string;
};

function now(): number {
  return typeof performance !== "undefined" ? performance.now() : Date.now();
}

function httpBase(url: string): string {
  const u = new URL(url);
  if (u.protocol === "ws:") u.protocol = "http:";
  if (u.protocol === "wss:") u.protocol = "https:";
  return u.origin;
}

function wsUrl(url: string, query: Record<string, string>): string {
  const u = new URL(url);
  u.protocol = u.protocol === "https:" || u.protocol === "wss:" ? "wss:" : "ws:";
  u.pathname = "/v1/ws";
  u.search = new URLSearchParams(query).toString();
  return u.toString();
}

/** Mints a guest token (`POST /v1/auth/guest`). */
export async function guestToken(url: string, name: string): Promise<GuestToken> {
  const res = await fetch(`${httpBase(url)}/v1/auth/guest`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ name }),
  });
  return httpJson<GuestToken>(res);
}

/** The cluster as a node sees it (`GET /v1/cluster`; admin: pass the admin token if one is set). */
export async function clusterView(
  url: string,
  adminToken?: string,
): Promise<import("./protocol.js").ClusterView> {
  const headers: Record<string, string> = {};
  if (adminToken) headers["authorization"] = `Bearer ${adminToken}`;
  const res = await fetch(`${httpBase(url)}/v1/cluster`, { headers });
  return httpJson(res);
}

async function httpJson<T>(res: Response): Promise<T> {
  const text = await res.text();
  if (!res.ok) {
    let body: Partial<HttpError> = {};
    try {
      body = JSON.parse(text) as HttpError;
    } catch {
      // not JSON: reported by status
    }
    throw new WarrenHttpError(res.status, body.error ?? "http", body.message ?? `HTTP ${res.status}`);
  }
  return JSON.parse(text) as T;
}

async function defaultWebSocket(): Promise<WebSocketClass> {
  const global = (globalThis as { WebSocket?: WebSocketClass }).WebSocket;
  if (global) return global;
  // Node 20 has no WebSocket: the `ws` package provides one with the same interface.
  // (A computed name: browsers and bundlers never look for it.)
  const name = "ws";
  const ws = (await import(name)) as {
    default: new (url: string, options: { allowSynchronousEvents: boolean }) => WebSocketLike;
  };
  // One message per event-loop turn, as browsers deliver them: code that awaits a request's
  // answer then sees the messages that followed it (`ws` would otherwise deliver a batch at once).
  return class extends ws.default {
    constructor(url: string) {
      super(url, { allowSynchronousEvents: false });
    }
  };
}

/** Connects: resolves once the first `welcome` arrived. */
export async function connect(options: ConnectOptions): Promise<Client> {
  const client = new Client(options);
  await client.open();
  return client;
}

type Request =
  | Omit<CreateRoom, "rid">
  | Omit<JoinRoom, "rid">
  | Omit<ListRooms, "rid">
  | Omit<Input, "rid">
  | Omit<ChatRequest, "rid">
  | Omit<Queue, "rid">
  | { type: "leave_room" | "ready" | "unqueue" | "ping" };

/**
 * A player's connection to a Warren cluster. It reconnects by itself with its resume token
 * whenever a connection it did not close ends: at once after a drain (4001), with backoff after
 * a drop, never after 4002 (another connection of the player replaced it) or a protocol fault.
 */
export class Client extends Emitter<ClientEvents> {
  /** The player id (`sub` of the token). */
  player = "";
  /** Display name. */
  name = "";
  /** The node serving the connection. */
  node = "";
  /** The session id. */
  session = "";
  /** The last resume token: keep it (e.g. in sessionStorage) to resume after a page reload. */
  resumeToken: string | undefined;
  /** The player's room, while it holds a seat. */
  room: Room | null = null;
  /** A matchmaking ticket the player waits with. */
  queued: { game: string; mode: string; ticket: string } | null = null;
  /** Round-trip time of the last heartbeat, in ms. */
  rtt: number | undefined;
  /** `connecting`, `open`, `reconnecting`, or `closed` (for good). */
  status: "connecting" | "open" | "reconnecting" | "closed" = "connecting";

  readonly #options: ConnectOptions;
  readonly #urls: string[];
  #urlIndex = 0;
  #ws: WebSocketLike | null = null;
  #WebSocket: WebSocketClass | undefined;
  #token: string | undefined;
  #rid = 0;
  #pending = new Map<number, Pending>();
  #waiting: Array<() => void> = [];
  #heartbeat: ReturnType<typeof setInterval> | undefined;
  #lastHeard = 0;
  #heartbeatMs = 15_000;
  #attempt = 0;
  #retry: ReturnType<typeof setTimeout> | undefined;
  #closedByUs = false;
  #everOpen = false;
  #recovering = false;
  #openedAt = 0;

  constructor(options: ConnectOptions) {
    super();
    this.#options = options;
    this.#urls = Array.isArray(options.url) ? [...options.url] : [options.url];
    if (this.#urls.length === 0) throw new TypeError("connect: `url` names no node");
    this.resumeToken = options.resume;
  }

  /** The URL of the node (or load balancer) the client uses now. */
  get url(): string {
    return this.#urls[this.#urlIndex % this.#urls.length]!;
  }

  /** Opens the first connection; rejects if no URL gives a `welcome`. */
  async open(): Promise<void> {
    this.#WebSocket = this.#options.WebSocket ?? (await defaultWebSocket());
    let last: unknown;
    for (let i = 0; i < this.#urls.length; i++) {
      try {
        await this.#dial();
        return;
      } catch (e) {
        last = e;
        this.#urlIndex++;
      }
    }
    this.status = "closed";
    throw last instanceof Error ? last : new WarrenError("closed", String(last));
  }

  /** Closes the connection for good (the seat is kept for the grace period; see `leaveRoom`). */
  close(): void {
    this.#closedByUs = true;
    this.status = "closed";
    clearTimeout(this.#retry);
    this.#stopHeartbeat();
    this.#ws?.close(1000, "client closed");
    this.#failAll("closed", "the client was closed");
  }

  // -- requests ------------------------------------------------------------------------------

  /**
   * Sends a request and resolves with what its `ok` carries, or rejects with a [[WarrenError]].
   * While the client reconnects, the request waits for the connection.
   */
  async request<M extends Request>(msg: M): Promise<Replies[M["type"]]> {
    if (this.status === "closed") throw new WarrenError("closed", "the client is closed");
    if (this.status !== "open") await this.#open();
    // (The connection may have been given up while the request waited.)
    if (this.#isClosed()) throw new WarrenError("closed", "the client is closed");
    const rid = ++this.#rid;
    const frame = { ...msg, rid } as ClientMessage;
    return new Promise((resolve, reject) => {
      const timeout = this.#options.requestTimeoutMs ?? 20_000;
      const timer = setTimeout(() => {
        this.#pending.delete(rid);
        reject(new WarrenError("timeout", `no answer to ${msg.type} within ${timeout} ms`, rid));
      }, timeout);
      this.#pending.set(rid, {
        resolve: resolve as (f: Record<string, unknown>) => void,
        reject,
        timer,
        type: msg.type,
      });
      this.#send(frame);
    });
  }

  /** Creates a room (`create_room`) and resolves with its handle once its state arrived. */
  async createRoom<G extends string>(
    game: G,
    params?: TypesOf<G>["params"],
    options: { private?: boolean } = {},
  ): Promise<Room<TypesOf<G>>> {
    const msg: Omit<CreateRoom, "rid"> = { type: "create_room", game };
    if (params) msg.params = params as Record<string, unknown>;
    if (options.private) msg.private = true;
    const wait = this.#roomState();
    const { room } = await this.request(msg).catch((e: unknown) => {
      wait.cancel();
      throw e;
    });
    return (await wait.for(room)) as unknown as Room<TypesOf<G>>;
  }

  /** Joins a room (`join_room`) and resolves with its handle once its state arrived. */
  async joinRoom<G extends string = string>(room: string): Promise<Room<TypesOf<G>>> {
    const wait = this.#roomState();
    const ok = await this.request({ type: "join_room", room }).catch((e: unknown) => {
      wait.cancel();
      throw e;
    });
    return (await wait.for(ok.room)) as unknown as Room<TypesOf<G>>;
  }

  /** Gives up the seat (`leave_room`). */
  async leaveRoom(): Promise<void> {
    await this.request({ type: "leave_room" });
    this.#dropRoom("left");
  }

  /** Public rooms with a free seat (`list_rooms`). */
  async listRooms(game?: string): Promise<RoomSummary[]> {
    const msg: Omit<ListRooms, "rid"> = { type: "list_rooms" };
    if (game !== undefined) msg.game = game;
    return (await this.request(msg)).rooms;
  }

  /** Queues for a match (`queue`); `match_found` and a `room` event follow when it forms. */
  async queue(game: string, mode = "default"): Promise<string> {
    const { ticket } = await this.request({ type: "queue", game, mode });
    this.queued = { game, mode, ticket };
    return ticket;
  }

  /** Leaves the matchmaking queue (`unqueue`). */
  async unqueue(): Promise<void> {
    this.queued = null;
    await this.request({ type: "unqueue" });
  }

  /** Measures the round trip (`ping`), in ms. */
  async ping(): Promise<number> {
    const t = now();
    await this.request({ type: "ping" });
    const rtt = now() - t;
    this.rtt = rtt;
    this.emit("rtt", rtt);
    return rtt;
  }

  /**
   * Resolves with the handle of room `id` once a `room_state` of it arrived after this call.
   * (Listening starts before the request is sent: the `ok` and the state may be handled in one
   * go, before the code awaiting the `ok` runs.)
   */
  #roomState(): { for: (id: string) => Promise<Room>; cancel: () => void } {
    const seen = new Map<string, Room>();
    const off = this.on("state", (r) => seen.set(r.id, r));
    return {
      for: async (id) => {
        try {
          return seen.get(id) ?? (await this.next("state", (r) => r.id === id));
        } finally {
          off();
        }
      },
      cancel: off,
    };
  }

  #isClosed(): boolean {
    return this.status === "closed";
  }

  // -- the connection ------------------------------------------------------------------------

  #open(): Promise<void> {
    return new Promise((resolve) => this.#waiting.push(resolve));
  }

  async #tokenNow(): Promise<string> {
    const t = this.#options.token;
    if (typeof t === "function") return await t();
    if (typeof t === "string") return t;
    if (this.#token) return this.#token;
    if (this.#options.guest === undefined) {
      throw new TypeError("connect: give `token` or `guest`");
    }
    this.#token = (await guestToken(this.url, this.#options.guest)).token;
    return this.#token;
  }

  /** One connection attempt: resolves on its `welcome`, rejects if it ends before one. */
  async #dial(): Promise<void> {
    const token = await this.#tokenNow();
    const query: Record<string, string> = { token };
    if (this.resumeToken) query["resume"] = this.resumeToken;
    const WS = this.#WebSocket!;
    const ws = new WS(wsUrl(this.url, query));
    this.#ws = ws;
    await new Promise<void>((resolve, reject) => {
      let welcomed = false;
      ws.onmessage = (ev) => {
        if (typeof ev.data !== "string") return;
        let msg: ServerMessage;
        try {
          msg = JSON.parse(ev.data) as ServerMessage;
        } catch {
          return;
        }
        this.#lastHeard = now();
        if (!welcomed) {
          if (msg.type !== "welcome") return;
          welcomed = true;
          this.#welcome(msg);
          resolve();
          return;
        }
        this.#receive(msg);
      };
      ws.onerror = () => {
        // The close event follows and says what happened.
      };
      ws.onclose = (ev) => {
        if (this.#ws === ws) this.#ws = null;
        if (!welcomed) {
          reject(new WarrenError("disconnected", `connection to ${this.url} ended (${ev.code}) before a welcome`));
          return;
        }
        this.#closed(ev.code, ev.reason);
      };
    });
  }

  #welcome(w: Welcome): void {
    const again = this.#everOpen;
    this.#everOpen = true;
    this.#openedAt = now();
    this.player = w.player;
    this.name = w.name;
    this.node = w.node;
    this.session = w.session;
    this.resumeToken = w.resume;
    this.#heartbeatMs = w.heartbeat_ms;
    this.#recovering = w.recovering === true;
    this.status = "open";
    this.emit("message", w);
    this.emit("welcome", w);
    this.#startHeartbeat();
    if (again) {
      // Not resumed and not recovering: the old session and its seat are gone (a room_state may
      // still come if the server kept the seat: it brings the room back).
      if (!w.resumed && !this.#recovering) this.#dropRoom("seat_lost");
      // A queued ticket does not survive a reconnection: queue again.
      const q = this.queued;
      if (q && !this.room) {
        this.queued = null;
        void this.queue(q.game, q.mode).catch((e: unknown) => this.emit("error", asError(e)));
      }
      this.emit("resumed", { resumed: w.resumed, recovering: this.#recovering, node: w.node });
    }
    for (const w of this.#waiting.splice(0)) w();
  }

  #closed(code: number, reason: string): void {
    this.#stopHeartbeat();
    this.#failAll("disconnected", `the connection closed (${code}) before the answer`);
    if (this.#closedByUs) return;
    // A connection that lasted counts as a success: the next attempt is the first again. One
    // closed at once (a draining node that still takes resumes) keeps counting, so it backs off.
    if (now() - this.#openedAt > 1_000) this.#attempt = 0;
    const action = closeAction(code);
    if (action === "stop") {
      this.#lose(code, reason || (code === 4002 ? "replaced by a newer connection" : "protocol fault"));
      return;
    }
    this.status = "reconnecting";
    this.#schedule(code, reason, action);
  }

  #schedule(code: number, reason: string, action: "at_once" | "backoff" | "rate_limited"): void {
    const r = this.#options.reconnect ?? {};
    const max = r.maxAttempts ?? 20;
    if (this.#attempt >= max) {
      this.#lose(code, `no reconnection in ${max} attempts`);
      return;
    }
    this.#attempt++;
    const base = r.initialDelayMs ?? 250;
    const cap = r.maxDelayMs ?? 5_000;
    let delay: number;
    if (action === "rate_limited") {
      delay = r.rateLimitedDelayMs ?? 5_000;
    } else if (this.#attempt === 1) {
      delay = 0; // a drain or a dropped connection: at once (to the next node, given several)
    } else {
      const exp = Math.min(cap, base * 2 ** (this.#attempt - 2));
      delay = exp / 2 + Math.random() * (exp / 2);
    }
    if (this.#urls.length > 1) this.#urlIndex++;
    this.emit("reconnecting", { code, reason, attempt: this.#attempt, delayMs: Math.round(delay) });
    this.#retry = setTimeout(() => {
      if (this.#closedByUs) return;
      this.#dial().catch((e: unknown) => {
        if (this.#closedByUs) return;
        this.#schedule(e instanceof WarrenError ? 1006 : code, String(e), "backoff");
      });
    }, delay);
  }

  #lose(code: number, reason: string): void {
    this.status = "closed";
    this.#failAll("closed", reason);
    for (const w of this.#waiting.splice(0)) w();
    this.#dropRoom("closed");
    this.emit("lost", { code, reason });
  }

  #failAll(code: "disconnected" | "closed", message: string): void {
    for (const [rid, p] of this.#pending) {
      clearTimeout(p.timer);
      p.reject(new WarrenError(code, `${p.type}: ${message}`, rid));
    }
    this.#pending.clear();
    if (code === "closed") {
      // Requests waiting for a connection that will not come.
      for (const w of this.#waiting.splice(0)) w();
    }
  }

  #send(msg: ClientMessage): void {
    const ws = this.#ws;
    if (!ws || ws.readyState !== 1) {
      // The connection closed between the request and now: fail it as a dropped request.
      const p = msg.rid !== undefined ? this.#pending.get(msg.rid) : undefined;
      if (p && msg.rid !== undefined) {
        clearTimeout(p.timer);
        this.#pending.delete(msg.rid);
        p.reject(new WarrenError("disconnected", `${msg.type}: not connected`, msg.rid));
      }
      return;
    }
    this.emit("sent", msg);
    ws.send(JSON.stringify(msg));
  }

  // Heartbeats: the server pings every `heartbeat_ms` (answered by the WebSocket itself); the
  // client also sends a `ping` request each interval, which measures the round trip and finds a
  // connection that went silent without closing (a dead node behind a proxy): nothing heard for
  // two intervals closes it, and the client reconnects.
  #startHeartbeat(): void {
    this.#stopHeartbeat();
    const every = Math.max(1_000, this.#heartbeatMs);
    this.#heartbeat = setInterval(() => {
      if (now() - this.#lastHeard > 2 * every + 1_000) {
        this.#ws?.close(4000, "heartbeat timeout");
        return;
      }
      this.ping().catch(() => undefined);
    }, every);
  }

  #stopHeartbeat(): void {
    clearInterval(this.#heartbeat);
    this.#heartbeat = undefined;
  }

  // -- what the server says ------------------------------------------------------------------

  #receive(msg: ServerMessage): void {
    this.emit("message", msg);
    switch (msg.type) {
      case "ok": {
        const p = this.#pending.get(msg.rid);
        if (!p) return;
        this.#pending.delete(msg.rid);
        clearTimeout(p.timer);
        const { type: _t, rid: _r, ...fields } = msg;
        p.resolve(fields);
        return;
      }
      case "error": {
        const err = new WarrenError(msg.code, msg.message, msg.rid);
        const p = msg.rid !== undefined ? this.#pending.get(msg.rid) : undefined;
        if (p && msg.rid !== undefined) {
          this.#pending.delete(msg.rid);
          clearTimeout(p.timer);
          p.reject(err);
          return;
        }
        // An `internal` push: the player's room failed for good and the seat is gone.
        if (msg.code === "internal") this.#dropRoom("closed");
        this.emit("error", err);
        return;
      }
      case "room_state": {
        const room = this.room;
        if (room && room.id === msg.room && room.active) {
          room._state(msg);
          this.emit("state", room);
        } else {
          room?._left("left");
          this.queued = null;
          const fresh = new Room(this, msg);
          this.room = fresh;
          this.emit("room", fresh);
          fresh._state(msg);
          this.emit("state", fresh);
        }
        return;
      }
      case "room_event":
        this.#roomOf(msg.room)?._event(msg.version, msg.event);
        if (this.room && !this.room.active) this.room = null;
        return;
      case "state":
        this.#roomOf(msg.room)?._tick(msg.tick, msg.ack, msg.state);
        return;
      case "chat":
        this.#roomOf(msg.room)?._chat(msg.player, msg.name, msg.text);
        return;
      case "room_message":
        this.#roomOf(msg.room)?._message(msg.message);
        return;
      case "match_found":
        this.queued = null;
        this.emit("match_found", msg);
        return;
      case "recovery_done":
        this.#recovering = false;
        if (msg.room === null) this.#dropRoom("seat_lost");
        this.emit("recovery", { room: msg.room });
        return;
      default:
        return; // a message of a later version: ignored
    }
  }

  #roomOf(id: string): Room | undefined {
    const r = this.room;
    return r && r.id === id && r.active ? r : undefined;
  }

  #dropRoom(reason: RoomEvents<GameTypes>["left"]["reason"]): void {
    const r = this.room;
    if (!r) return;
    this.room = null;
    r._left(reason);
  }
}

function asError(e: unknown): WarrenError {
  return e instanceof WarrenError ? e : new WarrenError("internal", String(e));
}
