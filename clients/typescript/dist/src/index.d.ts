import type { ArenaInput, ArenaParams, ArenaState, ChatRequest, ClientMessage, CreateRoom, DiceEvent, DiceInput, DiceParams, DiceState, ErrorCode, Event as GameEvent, GuestToken, Input, JoinRoom, ListRooms, MatchFound, PlayerView, Queue, Replies, RoomState, RoomSummary, SeatEvent, ServerMessage, Welcome } from "./protocol.js";
export type * from "./protocol.js";
export { ERROR_CODES } from "./protocol.js";
/**
 * Why a request failed: a server `error` (its `code` is one of PROTOCOL.md's), or one of the
 * SDK's own codes: `disconnected` (the connection closed before the answer came: the request may
 * or may not have taken effect), `timeout` (no answer within `requestTimeoutMs`), `closed`
 * (the client was closed, or gave up reconnecting).
 */
export declare class WarrenError extends Error {
    readonly code: ErrorCode | "disconnected" | "timeout" | "closed";
    readonly rid: number | undefined;
    constructor(code: WarrenError["code"], message: string, rid?: number);
}
/** An HTTP refusal (`POST /v1/auth/guest`, `GET /v1/cluster`): its status and JSON body. */
export declare class WarrenHttpError extends Error {
    readonly status: number;
    readonly code: string;
    constructor(status: number, code: string, message: string);
}
type Handler<T> = (value: T) => void;
/** A small typed event emitter: `on` returns the function that removes the handler. */
export declare class Emitter<Events extends object> {
    #private;
    on<K extends keyof Events>(event: K, handler: Handler<Events[K]>): () => void;
    off<K extends keyof Events>(event: K, handler: Handler<Events[K]>): void;
    /** The next value of `event` that `filter` accepts, or a rejection after `timeoutMs`. */
    next<K extends keyof Events>(event: K, filter?: (value: Events[K]) => boolean, timeoutMs?: number): Promise<Events[K]>;
    protected emit<K extends keyof Events>(event: K, value: Events[K]): void;
}
/** The types of one game: what `create_room` takes, what the state, events and inputs are. */
export interface GameTypes {
    params: object;
    state: unknown;
    event: {
        kind: string;
    };
    input: object;
}
/**
 * The games the SDK knows the types of, by name. A studio adds its own by declaration merging:
 * `declare module "@warren/client" { interface Games { eights: { params: …; state: …; event: …;
 * input: … } } }`. A game not listed here gets loose types.
 */
export interface Games {
    dice: {
        params: DiceParams;
        state: DiceState;
        event: DiceEvent | SeatEvent;
        input: DiceInput;
    };
    arena: {
        params: ArenaParams;
        state: ArenaState;
        event: SeatEvent;
        input: ArenaInput;
    };
}
/** The types of game `G`: listed in [[Games]], or loose. */
export type TypesOf<G extends string> = G extends keyof Games ? Games[G] : GameTypes;
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
    chat: {
        player: string;
        name: string;
        text: string;
    };
    /** Something the game told this player only (`room_message`). */
    message: GameEvent;
    /** The seats changed (join, leave, connection, ready). */
    players: PlayerView[];
    /** The player is no longer in this room. */
    left: {
        reason: "left" | "removed" | "closed" | "seat_lost";
    };
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
export declare class Room<T extends GameTypes = GameTypes> extends Emitter<RoomEvents<T>> {
    #private;
    readonly id: string;
    readonly game: string;
    version: number;
    players: PlayerView[];
    state: T["state"];
    /** The node hosting the room, as of its last `room_state`. */
    node: string | undefined;
    /** Tick number of the last realtime tick. */
    tick: number;
    /** The highest input `seq` of this player that the room acknowledged. */
    ack: number;
    /** Whether the player still holds the seat. */
    active: boolean;
    /** @internal */
    constructor(client: Client, msg: RoomState);
    /** Inputs sent and not yet acknowledged, oldest first: replay them over `state` to predict. */
    get pending(): readonly PendingInput<T["input"]>[];
    /**
     * Sends an input with the next `seq`; resolves when the room accepted it (`ok`), rejects with
     * the game's refusal (`invalid_input`, `not_your_turn`, …). Realtime games acknowledge it in a
     * tick (`ack`), which takes it out of `pending`; turn-based ones, with the `ok`.
     */
    send(input: T["input"]): Promise<void>;
    /** `ready` (games with a ready phase). */
    ready(): Promise<void>;
    /** A chat line to the room. */
    chat(text: string): Promise<void>;
    /** Gives up the seat. */
    leave(): Promise<void>;
    /** @internal */
    _state(msg: RoomState): void;
    /** @internal */
    _event(version: number, event: GameEvent): void;
    /** @internal */
    _tick(tick: number, ack: number, state: unknown): void;
    /** @internal */
    _chat(player: string, name: string, text: string): void;
    /** @internal */
    _message(message: GameEvent): void;
    /** @internal */
    _left(reason: RoomEvents<T>["left"]["reason"]): void;
}
/** A WebSocket class: the browser's, or the `ws` package's on Node. */
export interface WebSocketLike {
    readonly readyState: number;
    send(data: string): void;
    close(code?: number, reason?: string): void;
    onopen: ((ev: unknown) => void) | null;
    onmessage: ((ev: {
        data: unknown;
    }) => void) | null;
    onclose: ((ev: {
        code: number;
        reason: string;
    }) => void) | null;
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
    reconnecting: {
        code: number;
        reason: string;
        attempt: number;
        delayMs: number;
    };
    /**
     * A reconnection is open. `resumed`: the server kept the session. `recovering`: the player's
     * node died and the cluster is reviving its room (a `recovery` event follows).
     */
    resumed: {
        resumed: boolean;
        recovering: boolean;
        node: string;
    };
    /** The seat search of a recovering resume ended: `room` holds the seat again, or null. */
    recovery: {
        room: string | null;
    };
    /** The client stopped for good: replaced (4002), a protocol fault, or no reconnection worked. */
    lost: {
        code: number;
        reason: string;
    };
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
export declare function closeAction(code: number): "at_once" | "backoff" | "rate_limited" | "stop";
/** Mints a guest token (`POST /v1/auth/guest`). */
export declare function guestToken(url: string, name: string): Promise<GuestToken>;
/** The cluster as a node sees it (`GET /v1/cluster`; admin: pass the admin token if one is set). */
export declare function clusterView(url: string, adminToken?: string): Promise<import("./protocol.js").ClusterView>;
/** Connects: resolves once the first `welcome` arrived. */
export declare function connect(options: ConnectOptions): Promise<Client>;
type Request = Omit<CreateRoom, "rid"> | Omit<JoinRoom, "rid"> | Omit<ListRooms, "rid"> | Omit<Input, "rid"> | Omit<ChatRequest, "rid"> | Omit<Queue, "rid"> | {
    type: "leave_room" | "ready" | "unqueue" | "ping";
};
/**
 * A player's connection to a Warren cluster. It reconnects by itself with its resume token
 * whenever a connection it did not close ends: at once after a drain (4001), with backoff after
 * a drop, never after 4002 (another connection of the player replaced it) or a protocol fault.
 */
export declare class Client extends Emitter<ClientEvents> {
    #private;
    /** The player id (`sub` of the token). */
    player: string;
    /** Display name. */
    name: string;
    /** The node serving the connection. */
    node: string;
    /** The session id. */
    session: string;
    /** The last resume token: keep it (e.g. in sessionStorage) to resume after a page reload. */
    resumeToken: string | undefined;
    /** The player's room, while it holds a seat. */
    room: Room | null;
    /** A matchmaking ticket the player waits with. */
    queued: {
        game: string;
        mode: string;
        ticket: string;
    } | null;
    /** Round-trip time of the last heartbeat, in ms. */
    rtt: number | undefined;
    /** `connecting`, `open`, `reconnecting`, or `closed` (for good). */
    status: "connecting" | "open" | "reconnecting" | "closed";
    constructor(options: ConnectOptions);
    /** The URL of the node (or load balancer) the client uses now. */
    get url(): string;
    /** Opens the first connection; rejects if no URL gives a `welcome`. */
    open(): Promise<void>;
    /** Closes the connection for good (the seat is kept for the grace period; see `leaveRoom`). */
    close(): void;
    /**
     * Sends a request and resolves with what its `ok` carries, or rejects with a [[WarrenError]].
     * While the client reconnects, the request waits for the connection.
     */
    request<M extends Request>(msg: M): Promise<Replies[M["type"]]>;
    /** Creates a room (`create_room`) and resolves with its handle once its state arrived. */
    createRoom<G extends string>(game: G, params?: TypesOf<G>["params"], options?: {
        private?: boolean;
    }): Promise<Room<TypesOf<G>>>;
    /** Joins a room (`join_room`) and resolves with its handle once its state arrived. */
    joinRoom<G extends string = string>(room: string): Promise<Room<TypesOf<G>>>;
    /** Gives up the seat (`leave_room`). */
    leaveRoom(): Promise<void>;
    /** Public rooms with a free seat (`list_rooms`). */
    listRooms(game?: string): Promise<RoomSummary[]>;
    /** Queues for a match (`queue`); `match_found` and a `room` event follow when it forms. */
    queue(game: string, mode?: string): Promise<string>;
    /** Leaves the matchmaking queue (`unqueue`). */
    unqueue(): Promise<void>;
    /** Measures the round trip (`ping`), in ms. */
    ping(): Promise<number>;
}
