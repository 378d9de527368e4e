//! `Room`: one per room. Owns the authoritative seats and the game, drives its ticks and deadline,
//! broadcasts events with an ever-increasing `version`, and writes its snapshot to the node's
//! snapshot store (held by `RoomHost`, not here) so that a crash loses at most the last interval.
//!
//! Supervised by `RoomHost`, which restarts it from that snapshot when it panics.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use ractor::concurrency::JoinHandle;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use tracing::{debug, info, warn};
use warren_protocol::{
    ErrorCode, GameName, NodeId, Outbound, PlayerId, PlayerView, RoomId, ServerMsg, encode,
    error_frame, state_frame,
};

use crate::game::{Game, GameCtx, GameError, SeatView};
use crate::inputs::{InputBox, QueuedInput};
use crate::node::{NodeCtx, lock, now_ms};
use crate::remote::{OpResult, RoomOp};

/// Version of [`RoomSnapshot`]'s layout.
///
/// Snapshots cross between nodes of two builds during a rolling upgrade, in both directions, and
/// postcard is not self-describing, so the layout only ever grows by appending: the format-1 fields
/// come first, unchanged, and each later format adds a tail after them. A reader ignores a tail it
/// does not know (postcard stops after the fields it expects) and defaults a tail that is missing.
/// - 1: the base fields.
/// - 2: tail [`SnapshotTail2`]: when the snapshot was taken.
pub const SNAPSHOT_FORMAT: u32 = 2;

/// What format 2 appends to a snapshot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotTail2 {
    /// When the snapshot was taken (ms since the Unix epoch): an adopting node reports how old the
    /// state it revived was, which is what its players lost. 0 when unknown (a format-1 snapshot).
    pub saved_ms: u64,
}

/// A seat, as kept in snapshots.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SeatRecord {
    /// The player.
    pub player: PlayerId,
    /// Display name.
    pub name: String,
    /// Seat index.
    pub seat: u32,
    /// Live connection.
    pub connected: bool,
    /// Sent `ready`.
    pub ready: bool,
    /// Node of the player's session: where its frames go.
    pub home: NodeId,
}

/// Everything needed to bring a room back: on restart, and later on another node.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RoomSnapshot {
    /// [`SNAPSHOT_FORMAT`].
    pub format: u32,
    /// The room.
    pub room: RoomId,
    /// Its game.
    pub game: GameName,
    /// Hidden from listings.
    pub private: bool,
    /// Version of the last event.
    pub version: u64,
    /// Last realtime tick.
    pub tick: u64,
    /// Seats.
    pub seats: Vec<SeatRecord>,
    /// The game's schema version.
    pub game_version: u32,
    /// The game's own snapshot.
    pub game_state: Vec<u8>,
    /// Format 2's tail (not part of the format-1 layout; see [`SNAPSHOT_FORMAT`]).
    #[serde(skip)]
    pub tail2: SnapshotTail2,
}

impl RoomSnapshot {
    /// The snapshot's bytes: the format-1 layout, then the tails.
    pub fn encode(&self) -> Result<Vec<u8>, postcard::Error> {
        let base = postcard::to_stdvec(self)?;
        postcard::to_extend(&self.tail2, base)
    }

    /// Reads a snapshot of any format: the tails it lacks get their defaults, tails of formats
    /// newer than this build are ignored.
    pub fn decode(bytes: &[u8]) -> Result<Self, postcard::Error> {
        let (mut snap, rest) = postcard::take_from_bytes::<RoomSnapshot>(bytes)?;
        if snap.format >= 2 && !rest.is_empty() {
            snap.tail2 = postcard::from_bytes(rest)?;
        }
        Ok(snap)
    }
}

/// Messages of a room.
pub enum RoomMsg {
    /// Seat a player at the lowest free seat.
    Join {
        /// The player.
        player: PlayerId,
        /// Display name.
        name: String,
        /// Node of the player's session.
        home: NodeId,
        /// `room_full`, `already_in_room`.
        reply: RpcReplyPort<Result<(), ErrorCode>>,
    },
    /// Remove a player (leave, or grace period over).
    Leave {
        /// The player.
        player: PlayerId,
        /// Answered when given.
        reply: Option<RpcReplyPort<Result<(), ErrorCode>>>,
    },
    /// A player sent `ready`.
    Ready {
        /// The player.
        player: PlayerId,
        /// The game's answer.
        reply: RpcReplyPort<Result<(), GameError>>,
    },
    /// A player sent `input`.
    Input {
        /// The player.
        player: PlayerId,
        /// Client sequence number.
        seq: Option<u64>,
        /// Payload.
        data: Map<String, Value>,
        /// When the request had a `rid`; otherwise errors are pushed without one.
        reply: Option<RpcReplyPort<Result<(), GameError>>>,
    },
    /// A chat line from a seated player.
    Chat {
        /// Speaker.
        player: PlayerId,
        /// Text, already validated.
        text: String,
    },
    /// The player's connection to its session on `home` closed; its seat is kept.
    Disconnected {
        /// The player.
        player: PlayerId,
        /// Node of that session; a seat whose player has since connected elsewhere ignores it.
        home: NodeId,
    },
    /// The player is connected again (resume or a new connection), to a session on `home`.
    Reconnected {
        /// The player.
        player: PlayerId,
        /// Node of the session, where the player's frames go from now on.
        home: NodeId,
    },
    /// Write a final snapshot, answer it, and stop: the room is moving to another node.
    Freeze(RpcReplyPort<Option<Vec<u8>>>),
    /// Send the player a full `room_state` and start delivering to it.
    Resync(PlayerId),
    /// Realtime tick.
    Tick,
    /// The game's deadline may have passed.
    Deadline(u64),
    /// Write a snapshot now.
    Snapshot,
    /// The grace period of a seat whose session was on a node that died is over: the seat goes
    /// unless its player came back (to a session on any node) since.
    OrphanGrace {
        /// The player.
        player: PlayerId,
        /// The dead node.
        home: NodeId,
    },
    /// The room was adopted after its node died and is in the directory now: tell the sessions
    /// of its orphaned seats' players, wherever they reconnected, that their seats wait here.
    CallOrphans,
    /// These nodes left the cluster (died or were cut off): seats whose sessions were there are
    /// disconnected and released after the reconnect grace unless their players come back.
    HomesLost(Arc<Vec<NodeId>>),
}

// Local-only: never crosses nodes (the cluster layer carries its own envelopes).
impl ractor::Message for RoomMsg {}

/// How a room starts.
pub struct RoomArgs {
    /// Node context.
    pub ctx: Arc<NodeCtx>,
    /// The room.
    pub id: RoomId,
    /// Its game's name.
    pub game_name: GameName,
    /// The game.
    pub game: Box<dyn Game>,
    /// Hidden from listings.
    pub private: bool,
    /// Initial seats.
    pub seats: Vec<SeatRecord>,
    /// Version to continue from.
    pub version: u64,
    /// Tick to continue from.
    pub tick: u64,
    /// Whether this start revives a crashed room (players get a full resync).
    pub restarted: bool,
    /// Adopted after its node died: seats whose sessions were on unreachable nodes are
    /// disconnected and released after the reconnect grace unless their players resume.
    pub orphans: bool,
    /// A realtime room's input box ([`crate::inputs`]); `RoomHost` sets it when it spawns the room.
    pub inputs: Option<Arc<InputBox>>,
}

struct Seat {
    rec: SeatRecord,
    /// Has had a `room_state` since it (re)connected; only synced seats get events and ticks.
    synced: bool,
}

/// The room actor.
pub struct Room;

/// A room's changing state.
pub struct RoomState {
    ctx: Arc<NodeCtx>,
    id: RoomId,
    room_json: String,
    game_name: GameName,
    game: Box<dyn Game>,
    private: bool,
    seats: Vec<Seat>,
    views: Vec<SeatView>,
    version: u64,
    tick: u64,
    rng: StdRng,
    timers: Vec<JoinHandle<()>>,
    deadline: Option<u64>,
    deadline_gen: u64,
    /// Time spent per tick (game step, encoding, routing), by game.
    tick_seconds: metrics::Histogram,
    /// The realtime input box, and a buffer to empty it into.
    inputs: Option<Arc<InputBox>>,
    queued: Vec<QueuedInput>,
}

impl Actor for Room {
    type Msg = RoomMsg;
    type State = RoomState;
    type Arguments = RoomArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<RoomMsg>,
        a: RoomArgs,
    ) -> Result<RoomState, ActorProcessingErr> {
        let mut st = RoomState {
            tick_seconds: metrics::histogram!("warren_room_tick_seconds", "game" => a.game_name.to_string()),
            room_json: serde_json::to_string(a.id.as_str())?,
            ctx: a.ctx,
            id: a.id,
            game_name: a.game_name,
            game: a.game,
            private: a.private,
            seats: a
                .seats
                .into_iter()
                .map(|rec| Seat { rec, synced: false })
                .collect(),
            views: Vec::new(),
            version: a.version,
            tick: a.tick,
            rng: StdRng::from_os_rng(),
            timers: Vec::new(),
            deadline: None,
            deadline_gen: 0,
            inputs: a.inputs,
            queued: Vec::new(),
        };
        st.refresh_views();
        if !a.restarted {
            // Players seated at creation (the creator, or a matchmade group) join the new game; a
            // restarted game already knows its players from the snapshot.
            let players: Vec<PlayerId> = st.seats.iter().map(|s| s.rec.player.clone()).collect();
            st.with_game(|g, ctx| {
                for p in &players {
                    g.on_join(ctx, p);
                }
                Ok(())
            })
            .ok();
        }
        if let Some(period) = st.game.tick_interval() {
            let rooms = st.ctx.settings.load().rooms.clone();
            let grid = Duration::from_millis(rooms.tick_grid_ms);
            let snap = Duration::from_millis(rooms.snapshot_interval_ms.max(10));
            st.timers
                .push(on_grid(myself.clone(), grid, period, || RoomMsg::Tick));
            st.timers
                .push(on_grid(myself.clone(), grid, snap, || RoomMsg::Snapshot));
        }
        if a.orphans {
            st.orphan_seats(&myself);
        }
        if a.restarted {
            for i in 0..st.seats.len() {
                if st.seats[i].rec.connected {
                    let p = st.seats[i].rec.player.clone();
                    st.resync(&p);
                }
            }
        }
        st.write_snapshot();
        st.arm_deadline(&myself);
        Ok(st)
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<RoomMsg>,
        st: &mut RoomState,
    ) -> Result<(), ActorProcessingErr> {
        for t in st.timers.drain(..) {
            t.abort();
        }
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<RoomMsg>,
        msg: RoomMsg,
        st: &mut RoomState,
    ) -> Result<(), ActorProcessingErr> {
        // Inputs that took the realtime path arrived before this message.
        if let Some(b) = &st.inputs {
            let mut queued = std::mem::take(&mut st.queued);
            if matches!(msg, RoomMsg::Freeze(_)) {
                // Nothing may reach the box once the room has taken its final snapshot.
                b.close(&mut queued);
            } else {
                b.take(&mut queued);
            }
            st.apply_queued(&mut queued);
            st.queued = queued;
        }
        match msg {
            RoomMsg::Join {
                player,
                name,
                home,
                reply,
            } => {
                let r = st.join(player, name, home);
                let _ = reply.send(r);
            }
            RoomMsg::Leave { player, reply } => {
                let r = st.leave(&player);
                if let Some(reply) = reply {
                    let _ = reply.send(r);
                }
                if st.seats.is_empty() {
                    debug!(room = %st.id, "room empty, closing");
                    myself.stop(Some("empty".into()));
                    return Ok(());
                }
            }
            RoomMsg::Ready { player, reply } => {
                let _ = reply.send(st.ready(&player));
            }
            RoomMsg::Input {
                player,
                seq,
                data,
                reply,
            } => {
                let r = st.input(&player, seq, &data);
                match (reply, r) {
                    (Some(reply), r) => {
                        let _ = reply.send(r);
                    }
                    (None, Err(e)) => {
                        st.send_one(&player, error_frame(None, e.code, &e.message));
                    }
                    (None, Ok(())) => {}
                }
            }
            RoomMsg::Chat { player, text } => st.chat(&player, &text),
            RoomMsg::Disconnected { player, home } => {
                if st
                    .seat_of(&player)
                    .is_some_and(|i| st.seats[i].rec.home == home)
                {
                    st.set_connected(&player, false);
                }
            }
            RoomMsg::Reconnected { player, home } => {
                if let Some(i) = st.seat_of(&player)
                    && st.seats[i].rec.home != home
                {
                    st.seats[i].rec.home = home;
                    st.write_snapshot();
                }
                st.set_connected(&player, true);
                st.resync(&player);
            }
            RoomMsg::Freeze(reply) => {
                let bytes = st.snapshot().and_then(|s| s.encode());
                if let Ok(b) = &bytes {
                    lock(&st.ctx.snapshots).insert(st.id.clone(), Arc::new(b.clone()));
                }
                let _ = reply.send(bytes.ok());
                myself.stop(Some("moving".into()));
                return Ok(());
            }
            RoomMsg::Resync(player) => st.resync(&player),
            RoomMsg::Tick => st.on_tick(),
            RoomMsg::Deadline(generation) => {
                if generation == st.deadline_gen {
                    st.deadline = None;
                    st.with_game(|g, ctx| {
                        g.on_deadline(ctx);
                        Ok(())
                    })
                    .ok();
                }
            }
            RoomMsg::Snapshot => st.write_snapshot(),
            RoomMsg::CallOrphans => st.call_orphans(),
            RoomMsg::HomesLost(nodes) => {
                // A node that left and is back already (a restart) holds live sessions again.
                let peers = st.ctx.peers().cloned();
                st.orphan_seats_of(&myself, false, |home| {
                    nodes.contains(home) && !peers.as_ref().is_some_and(|p| p.reachable(home))
                })
            }
            RoomMsg::OrphanGrace { player, home } => {
                if st
                    .seat_of(&player)
                    .is_some_and(|i| st.seats[i].rec.home == home && !st.seats[i].rec.connected)
                {
                    info!(room = %st.id, player = %player, "seat of a player whose node died released");
                    let _ = st.leave(&player);
                    if st.seats.is_empty() {
                        myself.stop(Some("empty".into()));
                        return Ok(());
                    }
                }
            }
        }
        st.arm_deadline(&myself);
        Ok(())
    }
}

impl RoomState {
    fn refresh_views(&mut self) {
        self.views = self
            .seats
            .iter()
            .map(|s| SeatView {
                player: s.rec.player.clone(),
                seat: s.rec.seat,
                ready: s.rec.ready,
            })
            .collect();
        self.ctx.directory.set_players(
            &self.id,
            self.seats.iter().map(|s| s.rec.player.clone()).collect(),
        );
    }

    fn seat_of(&self, player: &PlayerId) -> Option<usize> {
        self.seats.iter().position(|s| &s.rec.player == player)
    }

    /// Runs a game call with a fresh context, then publishes its events. Turn-based rooms snapshot
    /// after every change; realtime rooms on their interval.
    fn with_game(
        &mut self,
        f: impl FnOnce(&mut dyn Game, &mut GameCtx<'_>) -> Result<(), GameError>,
    ) -> Result<(), GameError> {
        self.with_game_pre(Vec::new(), f)
    }

    fn with_game_pre(
        &mut self,
        pre: Vec<Value>,
        f: impl FnOnce(&mut dyn Game, &mut GameCtx<'_>) -> Result<(), GameError>,
    ) -> Result<(), GameError> {
        let mut ctx = GameCtx::new(now_ms(), &self.views, &mut self.rng);
        ctx.events = pre;
        f(self.game.as_mut(), &mut ctx)?;
        let (events, clear) = (std::mem::take(&mut ctx.events), ctx.clear_ready);
        if clear {
            for s in &mut self.seats {
                s.rec.ready = false;
            }
            self.refresh_views();
        }
        let changed = !events.is_empty() || clear;
        for e in events {
            self.publish(&e);
        }
        if changed && self.game.tick_interval().is_none() {
            self.write_snapshot();
        }
        Ok(())
    }

    fn publish(&mut self, event: &Value) {
        self.version += 1;
        let frame = encode(&ServerMsg::RoomEvent {
            room: &self.id,
            version: self.version,
            event,
        });
        self.broadcast(frame);
    }

    /// Sends one frame to every seat that is connected and has had its `room_state`.
    fn broadcast(&self, frame: Outbound) {
        let to = self
            .seats
            .iter()
            .filter(|s| s.synced && s.rec.connected)
            .map(|s| (&s.rec, frame.clone()));
        route(&self.ctx, to);
    }

    /// Sends a frame to one seated player, wherever its session is.
    fn send_one(&self, player: &PlayerId, frame: Outbound) {
        if let Some(i) = self.seat_of(player) {
            route(&self.ctx, std::iter::once((&self.seats[i].rec, frame)));
        }
    }

    /// Seats a player, or gives a player who already holds a seat here its seat back (its session
    /// lost track of the room: it resumed on another node before the room came back there).
    fn join(&mut self, player: PlayerId, name: String, home: NodeId) -> Result<(), ErrorCode> {
        if let Some(i) = self.seat_of(&player) {
            if self.seats[i].rec.home != home {
                self.seats[i].rec.home = home;
                self.write_snapshot();
            }
            self.set_connected(&player, true);
            return Ok(());
        }
        if self.seats.len() as u32 >= self.game.seats() {
            return Err(ErrorCode::RoomFull);
        }
        let seat = (0..)
            .find(|i| self.seats.iter().all(|s| s.rec.seat != *i))
            .unwrap_or(0);
        let rec = SeatRecord {
            player: player.clone(),
            name: name.clone(),
            seat,
            connected: true,
            ready: false,
            home,
        };
        let at = self
            .seats
            .iter()
            .position(|s| s.rec.seat > seat)
            .unwrap_or(self.seats.len());
        self.seats.insert(at, Seat { rec, synced: false });
        self.refresh_views();
        let pre = vec![json!({"kind":"player_joined","player":player,"name":name,"seat":seat})];
        self.with_game_pre(pre, |g, ctx| {
            g.on_join(ctx, &player);
            Ok(())
        })
        .ok();
        self.write_snapshot();
        Ok(())
    }

    fn leave(&mut self, player: &PlayerId) -> Result<(), ErrorCode> {
        let Some(i) = self.seat_of(player) else {
            return Err(ErrorCode::NotInRoom);
        };
        self.seats.remove(i);
        self.refresh_views();
        let pre = vec![json!({"kind":"player_left","player":player})];
        self.with_game_pre(pre, |g, ctx| {
            g.on_leave(ctx, player);
            Ok(())
        })
        .ok();
        self.write_snapshot();
        Ok(())
    }

    fn ready(&mut self, player: &PlayerId) -> Result<(), GameError> {
        let Some(i) = self.seat_of(player) else {
            return Err(GameError {
                code: ErrorCode::NotInRoom,
                message: "not in this room".into(),
            });
        };
        let was = self.seats[i].rec.ready;
        self.seats[i].rec.ready = true;
        self.refresh_views();
        let pre = vec![json!({"kind":"player_ready","player":player})];
        let r = self.with_game_pre(pre, |g, ctx| g.on_ready(ctx, player));
        if r.is_err() {
            self.seats[i].rec.ready = was;
            self.refresh_views();
        }
        r
    }

    fn input(
        &mut self,
        player: &PlayerId,
        seq: Option<u64>,
        data: &Map<String, Value>,
    ) -> Result<(), GameError> {
        if self.seat_of(player).is_none() {
            return Err(GameError {
                code: ErrorCode::NotInRoom,
                message: "not in this room".into(),
            });
        }
        self.with_game(|g, ctx| g.on_input(ctx, player, seq, data))
    }

    /// Applies inputs that took the realtime path, in their order; errors go to their senders.
    fn apply_queued(&mut self, queued: &mut Vec<QueuedInput>) {
        for q in queued.drain(..) {
            if let Err(e) = self.input(&q.player, q.seq, &q.data) {
                self.send_one(&q.player, error_frame(None, e.code, &e.message));
            }
        }
    }

    fn chat(&mut self, player: &PlayerId, text: &str) {
        let Some(i) = self.seat_of(player) else {
            return;
        };
        let name = self.seats[i].rec.name.clone();
        let frame = encode(&ServerMsg::Chat {
            room: &self.id,
            player,
            name: &name,
            text,
        });
        self.broadcast(frame);
    }

    /// After a restart or an adoption: seats whose session was on a node that is not reachable
    /// any more are disconnected, and released after the reconnect grace unless their players
    /// resume on another node (their sessions, which would have done that, died with the node).
    fn orphan_seats(&mut self, myself: &ActorRef<RoomMsg>) {
        let Some(peers) = self.ctx.peers().cloned() else {
            return;
        };
        let here = self.ctx.node.clone();
        self.orphan_seats_of(myself, true, |home| *home != here && !peers.reachable(home));
    }

    /// Disconnects the seats whose sessions lived on a node for which `lost` holds, and releases
    /// each after the reconnect grace unless its player comes back to a session anywhere.
    /// `quiet` while the room starts (an adoption): the revived state shows the seats, no event.
    fn orphan_seats_of(
        &mut self,
        myself: &ActorRef<RoomMsg>,
        quiet: bool,
        lost: impl Fn(&NodeId) -> bool,
    ) {
        let grace = Duration::from_millis(self.ctx.settings.load().rooms.reconnect_grace_ms);
        let mut gone = Vec::new();
        for seat in &mut self.seats {
            let home = seat.rec.home.clone();
            if !lost(&home) {
                continue;
            }
            if seat.rec.connected && !quiet {
                gone.push(seat.rec.player.clone());
            } else {
                seat.rec.connected = false;
            }
            seat.synced = false;
            let player = seat.rec.player.clone();
            drop(myself.send_after(grace, move || RoomMsg::OrphanGrace { player, home }));
        }
        for player in gone {
            self.set_connected(&player, false);
        }
    }

    /// Tells the cluster that the seats of players whose sessions were lost with a node wait
    /// here: a player who already reconnected elsewhere gets its seat back at once. A player who
    /// reconnects later finds the seat when its new session asks the cluster for it.
    fn call_orphans(&self) {
        let Some(peers) = self.ctx.peers() else {
            return;
        };
        let orphans: Vec<PlayerId> = self
            .seats
            .iter()
            .filter(|s| {
                !s.rec.connected && s.rec.home != self.ctx.node && !peers.reachable(&s.rec.home)
            })
            .map(|s| s.rec.player.clone())
            .collect();
        if orphans.is_empty() {
            return;
        }
        let Some(epoch) = self.ctx.directory.epoch_of(&self.id) else {
            return;
        };
        let at = crate::node::Location {
            node: self.ctx.node.clone(),
            epoch,
        };
        let note = crate::remote::SessionNote::SeatWaiting {
            room: self.id.clone(),
            at: at.clone(),
        };
        for p in &orphans {
            if let Some(route) = self.ctx.sessions.route(p) {
                let _ = route
                    .session
                    .cast(crate::session::SessionMsg::Note(note.clone()));
            }
        }
        peers.seat_waiting(&self.id, &at, &orphans);
    }

    fn set_connected(&mut self, player: &PlayerId, connected: bool) {
        let Some(i) = self.seat_of(player) else {
            return;
        };
        let seat = &mut self.seats[i];
        if seat.rec.connected == connected {
            return;
        }
        seat.rec.connected = connected;
        seat.synced = false;
        let kind = if connected {
            "player_reconnected"
        } else {
            "player_disconnected"
        };
        self.publish(&json!({"kind": kind, "player": player}));
        self.write_snapshot();
    }

    fn resync(&mut self, player: &PlayerId) {
        let Some(i) = self.seat_of(player) else {
            return;
        };
        let players: Vec<PlayerView> = self
            .seats
            .iter()
            .map(|s| PlayerView {
                player: s.rec.player.clone(),
                name: s.rec.name.clone(),
                seat: s.rec.seat,
                connected: s.rec.connected,
                ready: s.rec.ready,
            })
            .collect();
        let state = self.game.state_json();
        let frame = encode(&ServerMsg::RoomState {
            room: &self.id,
            game: &self.game_name,
            version: self.version,
            players: &players,
            state: &state,
        });
        let rec = &self.seats[i].rec;
        // A remote player's frame is on its way; a local one only if the player is connected here.
        let sent = if rec.home == self.ctx.node {
            self.ctx.sessions.send(player, frame)
        } else {
            route(&self.ctx, std::iter::once((rec, frame)));
            true
        };
        if sent {
            self.seats[i].synced = true;
        }
    }

    fn on_tick(&mut self) {
        let started = std::time::Instant::now();
        let mut ctx = GameCtx::new(now_ms(), &self.views, &mut self.rng);
        let Some(out) = self.game.on_tick(&mut ctx) else {
            return;
        };
        self.tick += 1;
        let (room_json, tick) = (&self.room_json, self.tick);
        let to = self
            .seats
            .iter()
            .filter(|s| s.synced && s.rec.connected)
            .map(|s| {
                let ack = out.acks.get(&s.rec.player).copied().unwrap_or(0);
                (&s.rec, state_frame(room_json, tick, ack, &out.state_json))
            });
        route(&self.ctx, to);
        self.tick_seconds.record(started.elapsed().as_secs_f64());
    }

    fn arm_deadline(&mut self, myself: &ActorRef<RoomMsg>) {
        let want = self.game.deadline_ms();
        if want == self.deadline {
            return;
        }
        self.deadline = want;
        self.deadline_gen += 1;
        if let Some(at) = want {
            let generation = self.deadline_gen;
            let wait = Duration::from_millis(at.saturating_sub(now_ms()));
            // Detached: the timer runs on, and a stale one carries an old generation and is ignored.
            drop(myself.send_after(wait, move || RoomMsg::Deadline(generation)));
        }
    }

    fn snapshot(&self) -> Result<RoomSnapshot, postcard::Error> {
        let spec_version = self
            .ctx
            .games
            .get(&self.game_name)
            .map_or(1, |s| s.state_version);
        Ok(RoomSnapshot {
            format: SNAPSHOT_FORMAT,
            room: self.id.clone(),
            game: self.game_name.clone(),
            private: self.private,
            version: self.version,
            tick: self.tick,
            seats: self.seats.iter().map(|s| s.rec.clone()).collect(),
            game_version: spec_version,
            game_state: self.game.snapshot()?,
            tail2: SnapshotTail2 { saved_ms: now_ms() },
        })
    }

    fn write_snapshot(&mut self) {
        match self.snapshot().and_then(|s| s.encode()) {
            Ok(bytes) => {
                let bytes = Arc::new(bytes);
                lock(&self.ctx.snapshots).insert(self.id.clone(), bytes.clone());
                self.ctx.snapshot_written(&self.id, &bytes);
            }
            Err(e) => warn!(room = %self.id, error = %e, "failed to snapshot room"),
        }
    }
}

/// Sends `msg()` to the room every `period`, starting on the node's timer grid
/// (`rooms.tick_grid_ms`). Rooms whose timers share a grid point fire in one turn of the runtime,
/// and their output reaches each socket thread in one wake-up, instead of one wake-up per room.
fn on_grid(
    me: ActorRef<RoomMsg>,
    grid: Duration,
    period: Duration,
    msg: impl Fn() -> RoomMsg + Send + 'static,
) -> JoinHandle<()> {
    static EPOCH: OnceLock<tokio::time::Instant> = OnceLock::new();
    let epoch = *EPOCH.get_or_init(tokio::time::Instant::now);
    let start = epoch + grid_start(tokio::time::Instant::now() - epoch, grid, period);
    tokio::spawn(async move {
        let mut every = tokio::time::interval_at(start, period);
        loop {
            every.tick().await;
            if me.cast(msg()).is_err() {
                break;
            }
        }
    })
}

/// When a timer started `since` after the grid's epoch first fires: one `period` after the next
/// grid point (or after now, without a grid).
fn grid_start(since: Duration, grid: Duration, period: Duration) -> Duration {
    if grid.is_zero() {
        return since + period;
    }
    let slots = since.as_nanos() / grid.as_nanos() + 1;
    Duration::from_nanos((slots * grid.as_nanos()) as u64) + period
}

/// Delivers frames to seats: local sessions directly, remote ones batched per node.
fn route<'a>(ctx: &NodeCtx, items: impl Iterator<Item = (&'a SeatRecord, Outbound)>) {
    let mut remote: std::collections::HashMap<&NodeId, Vec<(PlayerId, Outbound)>> =
        Default::default();
    let mut local = Vec::new();
    for (rec, frame) in items {
        if rec.home == ctx.node {
            local.push((&rec.player, frame));
        } else {
            remote
                .entry(&rec.home)
                .or_default()
                .push((rec.player.clone(), frame));
        }
    }
    ctx.sessions.send_each(local);
    if let Some(peers) = ctx.peers() {
        for (node, frames) in remote {
            peers.deliver(node, frames);
        }
    }
}

/// How long a request waits for a room that is being restarted to be back in the directory.
const RESTART_WAIT: Duration = Duration::from_millis(500);
const RESTART_POLL: Duration = Duration::from_millis(20);
/// How long a request waits for a room frozen for a move; then it finds the room gone (and the
/// caller follows its tombstone to the new node).
const MOVE_WAIT: Duration = Duration::from_secs(5);
const MOVE_POLL: Duration = Duration::from_millis(5);

/// The room's actor; waits while the room is frozen for a move.
async fn actor_of(ctx: &NodeCtx, room: &RoomId) -> Option<ActorRef<RoomMsg>> {
    let deadline = Instant::now() + MOVE_WAIT;
    loop {
        if let Some(a) = ctx.directory.actor(room) {
            return Some(a);
        }
        if !ctx.directory.is_moving(room) || Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(MOVE_POLL).await;
    }
}

/// Why a call to a room failed.
#[derive(Debug, PartialEq, Eq)]
pub enum RoomCallErr {
    /// No such room here (or it stayed gone through a restart).
    Gone,
    /// The room failed while handling the request; it may or may not have taken effect.
    Failed,
}

/// Sends to a room by id. A send that finds the actor already stopped (a restart in progress: the
/// directory still names the old actor) was never delivered, so it is re-sent to the actor the
/// directory names next, for up to [`RESTART_WAIT`].
pub async fn send_room(ctx: &NodeCtx, room: &RoomId, mut msg: RoomMsg) -> bool {
    let deadline = Instant::now() + RESTART_WAIT;
    loop {
        let Some(actor) = actor_of(ctx, room).await else {
            return false;
        };
        match actor.cast(msg) {
            Ok(()) => return true,
            Err(ractor::MessagingErr::SendErr(back)) if Instant::now() < deadline => {
                msg = back;
                tokio::time::sleep(RESTART_POLL).await;
            }
            Err(_) => return false,
        }
    }
}

/// Calls a room by id, with the same retry as [`send_room`] for a stopped actor.
pub async fn call_room<R: Send + 'static>(
    ctx: &NodeCtx,
    room: &RoomId,
    make: impl Fn(ractor::RpcReplyPort<R>) -> RoomMsg,
) -> Result<R, RoomCallErr> {
    let deadline = Instant::now() + RESTART_WAIT;
    loop {
        let actor = actor_of(ctx, room).await.ok_or(RoomCallErr::Gone)?;
        match actor.call(&make, None).await {
            Ok(ractor::rpc::CallResult::Success(r)) => return Ok(r),
            Ok(_) => return Err(RoomCallErr::Failed),
            Err(ractor::MessagingErr::SendErr(_)) if Instant::now() < deadline => {
                tokio::time::sleep(RESTART_POLL).await;
            }
            Err(ractor::MessagingErr::SendErr(_)) => return Err(RoomCallErr::Gone),
            Err(_) => return Err(RoomCallErr::Failed),
        }
    }
}

/// Runs a [`RoomOp`] on a room hosted on this node: for the node's own sessions and for requests
/// arriving from other nodes alike.
pub async fn apply(ctx: &NodeCtx, room: &RoomId, op: RoomOp) -> OpResult {
    let fail = |e: RoomCallErr| match e {
        RoomCallErr::Gone => (ErrorCode::NotFound, "no such room".to_owned()),
        RoomCallErr::Failed => (
            ErrorCode::Internal,
            "the room failed while handling the request".to_owned(),
        ),
    };
    let game = |e: GameError| (e.code, e.message);
    let cast = |ok: bool| {
        if ok {
            Ok(())
        } else {
            Err(fail(RoomCallErr::Gone))
        }
    };
    match op {
        RoomOp::Join { player, name, home } => call_room(ctx, room, |reply| RoomMsg::Join {
            player: player.clone(),
            name: name.clone(),
            home: home.clone(),
            reply,
        })
        .await
        .map_err(fail)?
        .map_err(|c| (c, join_refusal(c).to_owned())),
        RoomOp::Leave(player) => call_room(ctx, room, |reply| RoomMsg::Leave {
            player: player.clone(),
            reply: Some(reply),
        })
        .await
        .map_err(fail)?
        .map_err(|c| (c, "not in this room".to_owned())),
        RoomOp::Ready(player) => call_room(ctx, room, |reply| RoomMsg::Ready {
            player: player.clone(),
            reply,
        })
        .await
        .map_err(fail)?
        .map_err(game),
        RoomOp::Input { player, seq, data } => {
            let data: Map<String, Value> = serde_json::from_str(&data)
                .map_err(|_| (ErrorCode::BadRequest, "`data` must be an object".to_owned()))?;
            call_room(ctx, room, |reply| RoomMsg::Input {
                player: player.clone(),
                seq,
                data: data.clone(),
                reply: Some(reply),
            })
            .await
            .map_err(fail)?
            .map_err(game)
        }
        RoomOp::Chat { player, text } => {
            cast(send_room(ctx, room, RoomMsg::Chat { player, text }).await)
        }
        RoomOp::Disconnected { player, home } => {
            cast(send_room(ctx, room, RoomMsg::Disconnected { player, home }).await)
        }
        RoomOp::Reconnected { player, home } => {
            cast(send_room(ctx, room, RoomMsg::Reconnected { player, home }).await)
        }
        RoomOp::Resync(p) => cast(send_room(ctx, room, RoomMsg::Resync(p)).await),
    }
}

/// The message of a refused join.
pub fn join_refusal(code: ErrorCode) -> &'static str {
    match code {
        ErrorCode::RoomFull => "every seat is taken",
        ErrorCode::AlreadyInRoom => "already seated in this room",
        ErrorCode::NotFound => "no such room",
        _ => "request refused",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The snapshot exactly as the previous build (format 1) wrote and read it.
    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    struct SnapshotV1 {
        format: u32,
        room: RoomId,
        game: GameName,
        private: bool,
        version: u64,
        tick: u64,
        seats: Vec<SeatRecord>,
        game_version: u32,
        game_state: Vec<u8>,
    }

    #[test]
    fn timers_started_in_one_grid_slot_fire_together() {
        let ms = Duration::from_millis;
        let (grid, period) = (ms(10), ms(50));
        // Started 1 ms and 9 ms into the same slot: both first fire at 10 + 50 ms.
        assert_eq!(grid_start(ms(1), grid, period), ms(60));
        assert_eq!(grid_start(ms(9), grid, period), ms(60));
        // On a grid point: the next one.
        assert_eq!(grid_start(ms(10), grid, period), ms(70));
        // Timers of different slots keep whole slots apart.
        assert_eq!(grid_start(ms(23), grid, period), ms(80));
        // Without a grid: one period from now.
        assert_eq!(grid_start(ms(7), Duration::ZERO, period), ms(57));
    }

    fn seats() -> Vec<SeatRecord> {
        vec![SeatRecord {
            player: "p1".into(),
            name: "Ann".into(),
            seat: 0,
            connected: true,
            ready: false,
            home: "n2".into(),
        }]
    }

    #[test]
    fn snapshots_cross_between_the_previous_format_and_this_one_both_ways() {
        // Previous build → this one: the tail it did not write gets its default.
        let old = SnapshotV1 {
            format: 1,
            room: "n1.rold".into(),
            game: "dice".into(),
            private: true,
            version: 41,
            tick: 7,
            seats: seats(),
            game_version: 1,
            game_state: vec![1, 2, 3],
        };
        let bytes = postcard::to_stdvec(&old).unwrap();
        let read = RoomSnapshot::decode(&bytes).unwrap();
        assert_eq!(
            (read.format, &read.room, read.version, read.tick),
            (1, &old.room, 41, 7)
        );
        assert_eq!(read.seats, old.seats);
        assert_eq!(read.game_state, old.game_state);
        assert_eq!(read.tail2, SnapshotTail2::default());

        // This build → the previous one: it reads the fields it knows and ignores the tail.
        let new = RoomSnapshot {
            format: SNAPSHOT_FORMAT,
            room: "n2.rnew".into(),
            game: "arena".into(),
            private: false,
            version: 9,
            tick: 1234,
            seats: seats(),
            game_version: 1,
            game_state: vec![9; 40],
            tail2: SnapshotTail2 {
                saved_ms: 1_790_000_000_000,
            },
        };
        let bytes = new.encode().unwrap();
        let back: SnapshotV1 = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(
            (back.room, back.version, back.tick, back.game_state),
            (new.room.clone(), 9, 1234, new.game_state.clone())
        );
        // And this build reads its own, tail included.
        assert_eq!(RoomSnapshot::decode(&bytes).unwrap(), new);
        // A snapshot of a later build, with a tail this one does not know, still reads.
        let mut later = bytes.clone();
        later.extend_from_slice(&[0xAA, 0x01, 0x02]);
        assert_eq!(RoomSnapshot::decode(&later).unwrap(), new);
        // Garbage is an error, not a room.
        assert!(RoomSnapshot::decode(&[0xff; 3]).is_err());
    }
}
