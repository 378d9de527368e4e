//! `Room`: one per room. Owns the authoritative seats and the game, drives its ticks and deadline,
//! broadcasts events with an ever-increasing `version`, and writes its snapshot to the node's
//! snapshot store (held by `RoomHost`, not here) so that a crash loses at most the last interval.
//!
//! Supervised by `RoomHost`, which restarts it from that snapshot when it panics.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use arc_swap::ArcSwap;
use ractor::concurrency::JoinHandle;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde_json::Value;
use serde_json::value::RawValue;
use tracing::{debug, info, warn};
use warren_protocol::{
    ErrorCode, GameName, JsonObject, NodeId, Outbound, PlayerId, RoomId, ServerMsg, encode,
    error_frame, state_frame,
};

use crate::directory::{Directory, RoomEntry, RoomSlot};
use crate::game::{AnyGame, Effects, Env, GameError, Out, SeatView};
use crate::inputs::{InputBox, QueuedInput};
use crate::remote::{Peers, TickState};
use crate::routes::Sessions;
use crate::settings::Settings;
use crate::util::now_ms;

mod reach;
mod seats;
mod snapshot;
mod timers;

pub use reach::{RoomCallErr, apply, call_room, send_room};
pub use snapshot::{RoomSnapshot, SNAPSHOT_FORMAT, SeatRecord, SnapshotTail2, SnapshotTail3};
use timers::on_grid;

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
        /// `room_full`, or the game's refusal.
        reply: RpcReplyPort<Result<(), GameError>>,
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
        /// Payload, as the client sent it.
        data: JsonObject,
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
        /// Whether the seat was called for once already because its node was reachable again.
        called: bool,
    },
    /// The room was adopted after its node died and is in the directory now: tell the sessions
    /// of its orphaned seats' players, wherever they reconnected, that their seats wait here,
    /// and ask the sessions of its doubted seats to claim them.
    CallOrphans,
    /// The grace period of a seat adopted while its session's node was reachable is over: the
    /// seat goes unless that session (or the player's, anywhere) claimed it since. Its player
    /// may have left the room, or its session ended, while the room's old host was dying: what
    /// the session said then reached no copy, and nothing else would ever release the seat.
    Unclaimed {
        /// The player.
        player: PlayerId,
        /// Whether the seat was called for twice already (at the adoption and at the end of a
        /// first grace).
        called: bool,
    },
    /// The player's session on `home` ended after its reconnect grace: the seat goes, unless a
    /// session on another node holds it now.
    GraceOver {
        /// The player.
        player: PlayerId,
        /// Node of the session that ended.
        home: NodeId,
    },
    /// These nodes left the cluster (died or were cut off): seats whose sessions were there are
    /// disconnected and released after the reconnect grace unless their players come back.
    HomesLost(Arc<Vec<NodeId>>),
    /// These nodes run a new process under their id (restarted, or back from being cut off,
    /// which drops every session and room): seats whose sessions were there are disconnected and
    /// released after the reconnect grace unless their players come back, and the cluster is told
    /// where they wait (the players reconnected elsewhere are looking for them).
    HomesReplaced(Arc<Vec<NodeId>>),
    /// These nodes are heard again after being unreachable, the same process: their sessions
    /// may still be connected (the node was out of sight, not gone). The disconnected seats whose
    /// sessions were there are called for, and a session still connected takes its seat back.
    HomesBack(Arc<Vec<NodeId>>),
}

impl Directory {
    /// The room's actor, if the room is hosted here and not frozen for a move.
    pub fn actor(&self, room: &RoomId) -> Option<ActorRef<RoomMsg>> {
        self.actor_cell(room).map(ActorRef::from)
    }
}

impl RoomEntry {
    /// The room actor.
    pub fn actor(&self) -> ActorRef<RoomMsg> {
        ActorRef::from(self.cell.clone())
    }
}

// Local-only: never crosses nodes (the cluster layer carries its own envelopes).
impl ractor::Message for RoomMsg {}

/// What a room reads of its node: its id, the routing table of live connections, the other
/// nodes and the settings. Nothing else of the node is the room's business; what it writes goes
/// through its `RoomSlot`.
#[derive(Clone)]
pub struct RoomEnv {
    pub(crate) node: NodeId,
    pub(crate) sessions: Arc<Sessions>,
    pub(crate) peers: Arc<OnceLock<Arc<dyn Peers>>>,
    pub(crate) settings: Arc<ArcSwap<Settings>>,
}

impl RoomEnv {
    /// The other nodes, when the node is part of a cluster.
    pub(crate) fn peers(&self) -> Option<&Arc<dyn Peers>> {
        self.peers.get()
    }
}

/// How a room starts.
pub struct RoomArgs {
    /// What the room reads of its node.
    pub env: RoomEnv,
    /// The schema version of its game's state, written into its snapshots.
    pub state_version: u32,
    /// The room.
    pub id: RoomId,
    /// What the room writes of the directory: its player list and snapshot.
    pub slot: RoomSlot,
    /// Its game's name.
    pub game_name: GameName,
    /// The game.
    pub game: Box<dyn AnyGame>,
    /// The highest input `seq` acknowledged to each player so far.
    pub acks: HashMap<PlayerId, u64>,
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
    /// Adopted from a replica while its session's node is reachable: the snapshot may be older
    /// than what that session last told the room's old host (it left, its grace ended), so the
    /// seat is kept only if the session claims it (see [`RoomMsg::Unclaimed`]).
    doubted: bool,
}

/// The room actor.
pub struct Room;

/// A room's changing state.
pub struct RoomState {
    env: RoomEnv,
    state_version: u32,
    id: RoomId,
    slot: RoomSlot,
    room_json: String,
    game_name: GameName,
    game: Box<dyn AnyGame>,
    acks: HashMap<PlayerId, u64>,
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
    /// The room took its final snapshot for a move: it ended here (logged) before its actor stops.
    frozen: bool,
}

/// Target of the room lifecycle events (`room live` when a room starts taking players' requests
/// on this node, `room stopped` when it no longer does), at debug level: an audit of where each
/// room ran and when, from which the chaos soak (`warren-chaos`) checks that no room ever ran on
/// two nodes at once. Enable it with `log.level = "info,warren_room_life=debug"`.
pub const LIFE_TARGET: &str = "warren_room_life";

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
            env: a.env,
            state_version: a.state_version,
            id: a.id,
            slot: a.slot,
            game_name: a.game_name,
            game: a.game,
            acks: a.acks,
            private: a.private,
            seats: a
                .seats
                .into_iter()
                .map(|rec| Seat {
                    rec,
                    synced: false,
                    doubted: false,
                })
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
            frozen: false,
        };
        // Players seated at creation (the creator, or a matched group) joined the game before
        // the room started (`RoomHost::create`), where a refusal fails the creation.
        st.refresh_views();
        st.pace(&myself);
        if a.orphans {
            st.orphan_seats(&myself);
            st.doubt_seats(&myself);
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
        debug!(target: LIFE_TARGET, room = %st.id, version = st.version, tick = st.tick, "room live");
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
        if !st.frozen {
            debug!(target: LIFE_TARGET, room = %st.id, version = st.version, tick = st.tick, "room stopped");
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
                // A one-way input in a realtime room's mailbox came there because its box was
                // full (`router::take_input`): the box takes inputs again once none is left.
                if let (None, Some(b)) = (&reply, &st.inputs) {
                    b.overflow_applied();
                }
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
                    st.claimed(&player);
                    st.set_connected(&player, false);
                }
            }
            RoomMsg::Reconnected { player, home } => {
                debug!(room = %st.id, player = %player, home = %home, seated = st.seat_of(&player).is_some(), "player reconnected");
                if let Some(i) = st.seat_of(&player)
                    && st.seats[i].rec.home != home
                {
                    st.seats[i].rec.home = home;
                    st.write_snapshot();
                }
                st.claimed(&player);
                st.set_connected(&player, true);
                st.resync(&player);
            }
            RoomMsg::Freeze(reply) => {
                let bytes = st.snapshot().and_then(|s| s.encode());
                if let Ok(b) = &bytes {
                    st.slot.keep_snapshot(Arc::new(b.clone()));
                }
                // Ended here before the snapshot leaves: the copy that restores it starts after.
                st.frozen = true;
                debug!(target: LIFE_TARGET, room = %st.id, version = st.version, tick = st.tick, moving = true, "room stopped");
                let _ = reply.send(bytes.ok());
                myself.stop(Some("moving".into()));
                return Ok(());
            }
            RoomMsg::Resync(player) => st.resync(&player),
            RoomMsg::Tick => st.on_tick(),
            RoomMsg::Deadline(generation) => {
                if generation == st.deadline_gen {
                    st.deadline = None;
                    st.with_game(|g, env| (Ok(()), g.on_deadline(env))).ok();
                }
            }
            RoomMsg::Snapshot => st.write_snapshot(),
            RoomMsg::CallOrphans => st.call_orphans(),
            RoomMsg::HomesLost(nodes) => {
                // A node that left and is back already (a restart) holds live sessions again.
                let peers = st.env.peers().cloned();
                st.orphan_seats_of(&myself, false, |home| {
                    nodes.contains(home) && !peers.as_ref().is_some_and(|p| p.reachable(home))
                })
            }
            RoomMsg::HomesReplaced(nodes) => {
                // Only seats already disconnected: a connected one may be a player who joined
                // or came back through the new process before this room heard of it.
                st.orphan_disconnected_of(&myself, |home| nodes.contains(home));
                st.call_orphans_where(|home| nodes.contains(home));
            }
            RoomMsg::GraceOver { player, home } => match st.seat_of(&player) {
                Some(i) if st.seats[i].rec.home == home => {
                    let _ = st.leave(&player);
                    if st.seats.is_empty() {
                        debug!(room = %st.id, "room empty, closing");
                        myself.stop(Some("empty".into()));
                        return Ok(());
                    }
                }
                Some(_) => {
                    debug!(room = %st.id, player = %player, home = %home, "a session's grace ended on a node the seat has left; seat kept");
                }
                None => {}
            },
            RoomMsg::HomesBack(nodes) => st.call_orphans_where(|home| nodes.contains(home)),
            RoomMsg::Unclaimed { player, called } => {
                if !st.seat_of(&player).is_some_and(|i| st.seats[i].doubted) {
                    return Ok(());
                }
                if !called {
                    // Called for again: a session that was busy (waiting for another room) or
                    // out of sight at the adoption has a second grace to answer.
                    let p = player.clone();
                    st.call_again(&myself, player, move || RoomMsg::Unclaimed {
                        player: p,
                        called: true,
                    });
                    return Ok(());
                }
                info!(room = %st.id, player = %player, "seat that no session claimed after the room's adoption released");
                if st.release_unclaimed(&myself, &player) {
                    return Ok(());
                }
            }
            RoomMsg::OrphanGrace {
                player,
                home,
                called,
            } => {
                if st
                    .seat_of(&player)
                    .is_some_and(|i| st.seats[i].rec.home == home && !st.seats[i].rec.connected)
                {
                    // Its node is reachable again: it was out of sight (a stall, a view that was
                    // behind), not gone, and its session may still hold the player. Called for
                    // once; released after one more grace if no session answers.
                    if !called
                        && home != st.env.node
                        && st.env.peers().is_some_and(|p| p.reachable(&home))
                    {
                        debug!(room = %st.id, player = %player, home = %home, "the node of a seat's lost session is reachable again; calling for the player");
                        let p = player.clone();
                        st.call_again(&myself, player, move || RoomMsg::OrphanGrace {
                            player: p,
                            home,
                            called: true,
                        });
                        return Ok(());
                    }
                    info!(room = %st.id, player = %player, "seat of a player whose node died released");
                    if st.release_unclaimed(&myself, &player) {
                        return Ok(());
                    }
                }
            }
        }
        st.pace(&myself);
        st.arm_deadline(&myself);
        Ok(())
    }
}

impl RoomState {
    /// A realtime room ticks (and snapshots on its interval) while one of its players is
    /// connected. With none connected (every player dropped, each seat kept for the reconnect
    /// grace) its timers stop, after a snapshot of where it stands, and start again when one is
    /// back: the game's clock does not run for nobody.
    fn pace(&mut self, me: &ActorRef<RoomMsg>) {
        let Some(period) = self.game.tick_interval() else {
            return;
        };
        let live = self.seats.iter().any(|s| s.rec.connected);
        if live != self.timers.is_empty() {
            return;
        }
        if live {
            let rooms = self.env.settings.load().rooms.clone();
            let grid = Duration::from_millis(rooms.tick_grid_ms);
            let snap = Duration::from_millis(rooms.snapshot_interval_ms.max(10));
            self.timers
                .push(on_grid(me.clone(), grid, period, || RoomMsg::Tick));
            self.timers
                .push(on_grid(me.clone(), grid, snap, || RoomMsg::Snapshot));
        } else {
            debug!(room = %self.id, "no player connected: ticks pause");
            for t in self.timers.drain(..) {
                t.abort();
            }
            self.write_snapshot();
        }
    }

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
        self.slot
            .set_players(self.seats.iter().map(|s| s.rec.player.clone()).collect());
    }

    fn seat_of(&self, player: &PlayerId) -> Option<usize> {
        self.seats.iter().position(|s| &s.rec.player == player)
    }

    /// Runs a game call, then publishes what it emitted. Turn-based rooms snapshot after every
    /// change; realtime rooms on their interval. A refused call publishes nothing.
    fn with_game(
        &mut self,
        f: impl FnOnce(&mut dyn AnyGame, Env<'_>) -> (Result<(), GameError>, Effects),
    ) -> Result<(), GameError> {
        self.with_game_pre(Vec::new(), f)
    }

    /// [`RoomState::with_game`], with Warren's own events (`pre`) published first when the call
    /// succeeds.
    fn with_game_pre(
        &mut self,
        pre: Vec<Value>,
        f: impl FnOnce(&mut dyn AnyGame, Env<'_>) -> (Result<(), GameError>, Effects),
    ) -> Result<(), GameError> {
        let env = Env {
            now_ms: now_ms(),
            seats: &self.views,
            rng: &mut self.rng,
        };
        let (r, effects) = f(self.game.as_mut(), env);
        r?;
        self.effects(pre, effects);
        Ok(())
    }

    fn effects(&mut self, pre: Vec<Value>, effects: Effects) {
        let clear = effects.clear_ready;
        if clear {
            for s in &mut self.seats {
                s.rec.ready = false;
            }
            self.refresh_views();
        }
        let changed = !pre.is_empty() || !effects.out.is_empty() || clear;
        for e in pre {
            self.publish(&e);
        }
        for out in effects.out {
            self.emit(out);
        }
        if changed && self.game.tick_interval().is_none() {
            self.write_snapshot();
        }
    }

    fn emit(&mut self, out: Out) {
        match out {
            Out::All(e) => self.publish(&e),
            Out::Each(each) => {
                self.version += 1;
                let frames = self.seats.iter().filter(|s| s.synced && s.rec.connected);
                let items: Vec<(&SeatRecord, Outbound)> = frames
                    .filter_map(|s| {
                        let e = each.iter().find(|(p, _)| *p == s.rec.player)?;
                        let frame = encode(&ServerMsg::RoomEvent {
                            room: &self.id,
                            version: self.version,
                            event: &e.1,
                        });
                        Some((&s.rec, frame))
                    })
                    .collect();
                route(&self.env, items.into_iter());
            }
            Out::To(player, message) => {
                if let Some(i) = self.seat_of(&player)
                    && self.seats[i].synced
                    && self.seats[i].rec.connected
                {
                    let frame = encode(&ServerMsg::RoomMessage {
                        room: &self.id,
                        message: &message,
                    });
                    route(&self.env, std::iter::once((&self.seats[i].rec, frame)));
                }
            }
        }
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

    /// What `player` sees of the game: its private view, or the common one, which `common`
    /// holds once encoded so a broadcast encodes it once.
    fn view_of(&self, player: &PlayerId, common: &mut Option<Box<RawValue>>) -> Box<RawValue> {
        match self.game.view_for(player) {
            Some(v) => self.checked_view(v),
            None => common
                .get_or_insert_with(|| self.checked_view(self.game.view()))
                .clone(),
        }
    }

    fn checked_view(&self, v: Result<Box<RawValue>, serde_json::Error>) -> Box<RawValue> {
        v.unwrap_or_else(|e| {
            warn!(room = %self.id, game = %self.game_name, error = %e, "the game's view does not serialize; players get an empty object");
            serde_json::value::to_raw_value(&serde_json::Map::new())
                .unwrap_or_else(|_| RawValue::NULL.to_owned())
        })
    }

    /// Sends one frame to every seat that is connected and has had its `room_state`: to each
    /// other node's players in one message holding the frame once.
    fn broadcast(&self, frame: Outbound) {
        let mut remote: HashMap<&NodeId, Vec<PlayerId>> = HashMap::new();
        let mut local = Vec::new();
        for s in self.seats.iter().filter(|s| s.synced && s.rec.connected) {
            if s.rec.home == self.env.node {
                local.push((&s.rec.player, frame.clone()));
            } else {
                remote
                    .entry(&s.rec.home)
                    .or_default()
                    .push(s.rec.player.clone());
            }
        }
        self.env.sessions.send_each(local);
        if let Some(peers) = self.env.peers() {
            for (node, players) in remote {
                peers.deliver_same(node, frame.clone(), players);
            }
        }
    }

    /// Sends a frame to one seated player, wherever its session is.
    fn send_one(&self, player: &PlayerId, frame: Outbound) {
        if let Some(i) = self.seat_of(player) {
            route(&self.env, std::iter::once((&self.seats[i].rec, frame)));
        }
    }

    fn on_tick(&mut self) {
        let started = std::time::Instant::now();
        let env = Env {
            now_ms: now_ms(),
            seats: &self.views,
            rng: &mut self.rng,
        };
        let effects = self.game.on_tick(env);
        self.effects(Vec::new(), effects);
        self.tick += 1;
        let (room_json, tick) = (&self.room_json, self.tick);
        // Local players get their frame now. Each other node gets the common view once, with the
        // acks of its players, and writes their frames itself; a private view goes to its player
        // alone.
        let mut common: Option<Box<RawValue>> = None;
        let mut remote: HashMap<&NodeId, Vec<(PlayerId, u64)>> = HashMap::new();
        let mut private_remote = Vec::new();
        let mut local = Vec::new();
        for s in self.seats.iter().filter(|s| s.synced && s.rec.connected) {
            let ack = self.acks.get(&s.rec.player).copied().unwrap_or(0);
            let here = s.rec.home == self.env.node;
            match self.game.view_for(&s.rec.player) {
                Some(v) => {
                    let frame = state_frame(room_json, tick, ack, self.checked_view(v).get());
                    if here {
                        local.push((&s.rec.player, frame));
                    } else {
                        private_remote.push((&s.rec, frame));
                    }
                }
                None if here => {
                    let view = common.get_or_insert_with(|| self.checked_view(self.game.view()));
                    local.push((&s.rec.player, state_frame(room_json, tick, ack, view.get())));
                }
                None => remote
                    .entry(&s.rec.home)
                    .or_default()
                    .push((s.rec.player.clone(), ack)),
            }
        }
        self.env.sessions.send_each(local);
        route(&self.env, private_remote.into_iter());
        if let Some(peers) = self.env.peers() {
            for (node, acks) in remote {
                let view = common.get_or_insert_with(|| self.checked_view(self.game.view()));
                peers.deliver_state(
                    node,
                    TickState {
                        room: self.id.clone(),
                        tick,
                        state: view.get().to_owned(),
                        acks,
                    },
                );
            }
        }
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
        let spec_version = self.state_version;
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
            tail3: SnapshotTail3 {
                acks: self.acks.iter().map(|(p, a)| (p.clone(), *a)).collect(),
            },
        })
    }

    fn write_snapshot(&mut self) {
        match self.snapshot().and_then(|s| s.encode()) {
            Ok(bytes) => {
                self.slot.write_snapshot(Arc::new(bytes));
            }
            Err(e) => warn!(room = %self.id, error = %e, "failed to snapshot room"),
        }
    }
}

/// Delivers frames to seats: local sessions directly, remote ones batched per node.
fn route<'a>(env: &RoomEnv, items: impl Iterator<Item = (&'a SeatRecord, Outbound)>) {
    let mut remote: std::collections::HashMap<&NodeId, Vec<(PlayerId, Outbound)>> =
        Default::default();
    let mut local = Vec::new();
    for (rec, frame) in items {
        if rec.home == env.node {
            local.push((&rec.player, frame));
        } else {
            remote
                .entry(&rec.home)
                .or_default()
                .push((rec.player.clone(), frame));
        }
    }
    env.sessions.send_each(local);
    if let Some(peers) = env.peers() {
        for (node, frames) in remote {
            peers.deliver(node, frames);
        }
    }
}
