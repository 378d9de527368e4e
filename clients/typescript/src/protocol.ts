// Generated from protocol/schema/v1.json by scripts/gen-protocol.mjs: do not edit.
// Warren client protocol v1. Clients must ignore message types and fields they do not know.

/** A frame a client sends. */
export type ClientMessage = CreateRoom | JoinRoom | LeaveRoom | ListRooms | Ready | Input | ChatRequest | Queue | Unqueue | Ping;

/** A frame the server sends. */
export type ServerMessage = Welcome | Ok | ServerError | RoomState | RoomEvent | RoomMessage | TickState | Chat | MatchFound | RecoveryDone;

/** Request id: the `ok` or `error` answering the message carries it. */
export type Rid = number;

/** A registered game's name. */
export type GameName = string;

/** A room id (opaque to clients). */
export type RoomId = string;

/** A player id: the `sub` of its token. */
export type PlayerId = string;

/** A node id. */
export type NodeId = string;

/** A matchmaking ticket. */
export type TicketId = string;

/** The `code` of an `error`. */
export type ErrorCode = "bad_request" | "unknown_type" | "unknown_game" | "invalid_params" | "already_in_room" | "server_draining" | "not_found" | "room_full" | "not_in_room" | "invalid_state" | "invalid_input" | "not_your_turn" | "already_queued" | "not_queued" | "rate_limited" | "internal";

/** WebSocket close codes Warren sends: 1000 normal, 1002 protocol violation, 1003 binary frame, 1009 frame too large, 1011 internal error, 4000 heartbeat timeout, 4001 node draining or isolated, 4002 replaced by a newer connection, 4003 too slow, 4004 rate limit exceeded persistently. */
export type CloseCode = 1000 | 1002 | 1003 | 1009 | 1011 | 4000 | 4001 | 4002 | 4003 | 4004;

/** Create a room and take its first seat; a `room_state` follows the `ok`. */
export interface CreateRoom {
  type: "create_room";
  rid?: Rid;
  game: GameName;
  /** The game's params. */
  params?: Record<string, unknown>;
  /** Hidden from `list_rooms` (default false). */
  private?: boolean;
}

/** Take the lowest free seat of a room (or reattach to the player's own room); a `room_state` follows the `ok`. */
export interface JoinRoom {
  type: "join_room";
  rid?: Rid;
  room: RoomId;
}

/** Give up the seat. */
export interface LeaveRoom {
  type: "leave_room";
  rid?: Rid;
}

/** Public rooms with a free seat, from every node. */
export interface ListRooms {
  type: "list_rooms";
  rid?: Rid;
  game?: GameName;
}

/** Mark the player ready. */
export interface Ready {
  type: "ready";
  rid?: Rid;
}

/** Game input; `seq` is acknowledged in realtime ticks (`ack`). */
export interface Input {
  type: "input";
  rid?: Rid;
  /** The game's input object. */
  data: Record<string, unknown>;
  seq?: number;
}

/** A chat line to the room (echoed to the sender too). */
export interface ChatRequest {
  type: "chat";
  rid?: Rid;
  text: string;
}

/** Join the matchmaking pool of (game, mode). */
export interface Queue {
  type: "queue";
  rid?: Rid;
  game: GameName;
  /** Default `default`; 1–32 of [A-Za-z0-9_-]. */
  mode?: string;
}

/** Leave the matchmaking pool. */
export interface Unqueue {
  type: "unqueue";
  rid?: Rid;
}

/** Clock and round-trip probe. */
export interface Ping {
  type: "ping";
  rid?: Rid;
}

/** An `ok` that carries nothing. */
export type EmptyReply = Record<string, never>;

export interface RoomReply {
  room: RoomId;
}

export interface ListReply {
  rooms: RoomSummary[];
}

export interface QueueReply {
  ticket: TicketId;
}

export interface PingReply {
  /** The node's clock, ms since the Unix epoch. */
  server_time_ms: number;
}

/** One entry of `list_rooms`. */
export interface RoomSummary {
  room: RoomId;
  game: GameName;
  players: number;
  seats: number;
}

/** One seat of a room. */
export interface PlayerView {
  player: PlayerId;
  name: string;
  /** Seat index, from 0. */
  seat: number;
  connected: boolean;
  ready: boolean;
}

/** The first message of every connection. */
export interface Welcome {
  type: "welcome";
  session: string;
  player: PlayerId;
  name: string;
  node: NodeId;
  /** Resume token for the next connection. */
  resume: string;
  resumed: boolean;
  /** Present (true) only when the seat is being looked for after a node died: one `recovery_done` follows. */
  recovering?: true;
  heartbeat_ms: number;
}

/** A request succeeded. The fields besides `type` and `rid` are the request's `x-reply`. */
export interface Ok {
  type: "ok";
  rid: Rid;
  room?: RoomId;
  rooms?: RoomSummary[];
  ticket?: TicketId;
  server_time_ms?: number;
}

/** A request failed (with its `rid`), or an error without a request (a push). */
export interface ServerError {
  type: "error";
  rid?: Rid;
  code: ErrorCode;
  message: string;
}

/** A full resync of a room: after join or create, on resume, and after the room restarted or moved. */
export interface RoomState {
  type: "room_state";
  room: RoomId;
  game: GameName;
  /** Version of the room's last event. */
  version: number;
  players: PlayerView[];
  /** The game's state as this player sees it. */
  state: Record<string, unknown>;
  /** The node hosting the room when this state was sent (an addition to the contract). */
  node?: NodeId;
}

/** One change of a room; `version` goes up by one with each. */
export interface RoomEvent {
  type: "room_event";
  room: RoomId;
  version: number;
  event: Event;
}

/** A room event: one of the seat events, or the game's own (`kind` names it). */
export interface Event {
  kind: string;
  [key: string]: unknown;
}

/** The room events every game has. */
export type SeatEvent = PlayerJoined | PlayerLeft | PlayerDisconnected | PlayerReconnected | PlayerReady;

export interface PlayerJoined {
  kind: "player_joined";
  player: PlayerId;
  name: string;
  seat: number;
}

export interface PlayerLeft {
  kind: "player_left";
  player: PlayerId;
}

export interface PlayerDisconnected {
  kind: "player_disconnected";
  player: PlayerId;
}

export interface PlayerReconnected {
  kind: "player_reconnected";
  player: PlayerId;
}

export interface PlayerReady {
  kind: "player_ready";
  player: PlayerId;
}

/** Something the room's game tells this player only (an addition to the contract): no `version`, not kept for a player who is away. */
export interface RoomMessage {
  type: "room_message";
  room: RoomId;
  message: Event;
}

/** A realtime game's tick (wire type `state`). */
export interface TickState {
  type: "state";
  room: RoomId;
  tick: number;
  /** The highest input `seq` of this player the tick applied (0 if none). */
  ack: number;
  state: Record<string, unknown>;
}

/** A chat line in the room. */
export interface Chat {
  type: "chat";
  room: RoomId;
  player: PlayerId;
  name: string;
  text: string;
}

/** Matchmaking seated the player; a `room_state` follows. */
export interface MatchFound {
  type: "match_found";
  ticket: TicketId;
  room: RoomId;
  game: GameName;
  players: PlayerId[];
}

/** The end of the seat search a `welcome` with `recovering` started: the room holding the seat again (its `room_state` follows), or null. */
export interface RecoveryDone {
  type: "recovery_done";
  room: RoomId | null;
}

/** Body of `POST /v1/auth/guest`. */
export interface GuestRequest {
  name: string;
}

/** Answer of `POST /v1/auth/guest`. */
export interface GuestToken {
  token: string;
  player_id: PlayerId;
  /** Seconds. */
  expires_in: number;
}

/** The body of an HTTP refusal. */
export interface HttpError {
  error: string;
  message: string;
}

/** Answer of `GET /v1/cluster`. */
export interface ClusterView {
  node: NodeId;
  nodes: ClusterNode[];
  [key: string]: unknown;
}

export interface ClusterNode {
  id: NodeId;
  state: "ready" | "draining" | "unreachable";
  version: string;
  rooms: number;
  sessions: number;
  [key: string]: unknown;
}

/** `create_room` params of `dice`. */
export interface DiceParams {
  seats?: number;
  turn_ms?: number;
}

export interface DiceInput {
  action: "roll";
}

export interface DiceState {
  phase: "waiting" | "rolling";
  round: number;
  /** Seat of the player to roll. */
  turn: number | null;
  totals: Record<string, number>;
}

export type DiceEvent = RoundStarted | Rolled | RoundOver;

export interface RoundStarted {
  kind: "round_started";
  round: number;
  /** Players by seat. */
  order: PlayerId[];
}

export interface Rolled {
  kind: "rolled";
  player: PlayerId;
  dice: [number, number];
  total: number;
  /** Rolled by the server when the turn ran out. */
  auto: boolean;
}

export interface RoundOver {
  kind: "round_over";
  round: number;
  totals: Record<string, number>;
  winners: PlayerId[];
}

/** `create_room` params of `arena`. */
export interface ArenaParams {
  seats?: number;
  tick_hz?: number;
}

/** A held direction. */
export interface ArenaInput {
  dx: number;
  dy: number;
}

export interface ArenaState {
  players: Record<string, Position>;
}

export interface Position {
  x: number;
  y: number;
}

/** The fields of the `ok` that answers each request, by the request's `type`. */
export interface Replies {
  create_room: RoomReply;
  join_room: RoomReply;
  leave_room: EmptyReply;
  list_rooms: ListReply;
  ready: EmptyReply;
  input: EmptyReply;
  chat: EmptyReply;
  queue: QueueReply;
  unqueue: EmptyReply;
  ping: PingReply;
}

/** Every `code` an `error` may carry. */
export const ERROR_CODES: readonly ErrorCode[] = ["bad_request","unknown_type","unknown_game","invalid_params","already_in_room","server_draining","not_found","room_full","not_in_room","invalid_state","invalid_input","not_your_turn","already_queued","not_queued","rate_limited","internal"];
