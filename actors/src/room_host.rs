//! `RoomHost`: spawns this node's rooms, keeps the directory, and supervises them.
//!
//! A room that panics or fails is restarted from its last snapshot (held here in the node's
//! snapshot store, not in the room) and its players get a full `room_state`. A room that keeps
//! failing, more than `rooms.max_restarts` within `rooms.restart_window_ms`, is closed and its
//! players get an `internal` error instead of an endless restart loop.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ractor::{Actor, ActorId, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};
use serde_json::{Map, Value};
use tracing::{error, info, warn};
use warren_protocol::{GameName, NodeId, RoomId};

use crate::directory::RoomsWriter;
use crate::game::{Env, GameError, ParamsError, RestoreError, SeatView};
use crate::node::{Location, NodeCtx, RoomEntry};
use crate::remote::{AdoptError, CreateError, SeatPlan, SessionNote};
use crate::room::{Room, RoomArgs, RoomMsg, RoomSnapshot, SeatRecord};

/// Why a room could not be created.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CreateRoomError {
    /// No such game.
    #[error("unknown game")]
    UnknownGame,
    /// The game refused the params.
    #[error("{0}")]
    InvalidParams(#[from] ParamsError),
    /// The node takes no new rooms.
    #[error("the node is draining")]
    Draining,
    /// The game refused a player seated at creation ([`crate::game::Game::on_join`]).
    #[error("{0}")]
    Refused(GameError),
    /// Spawning failed, or the game's state does not survive its snapshot codec.
    #[error("room could not be started")]
    Internal,
}

/// Messages of the room host.
pub enum RoomHostMsg {
    /// Create a room with these players seated in order.
    Create {
        /// Game name.
        game: GameName,
        /// Game params.
        params: Map<String, Value>,
        /// Hidden from listings.
        private: bool,
        /// Players to seat in order: id, display name, node of the session.
        players: Vec<SeatPlan>,
        /// The new room's id and actor.
        reply: RpcReplyPort<Result<(RoomId, ActorRef<RoomMsg>), CreateRoomError>>,
    },
    /// Host a room from its snapshot at `epoch`: a room moving here from another node, one whose
    /// move failed coming back, or one whose node died (from the replica kept here).
    Adopt {
        /// The room.
        room: RoomId,
        /// Its epoch here.
        epoch: u64,
        /// Its snapshot (postcard [`RoomSnapshot`]).
        snapshot: Vec<u8>,
        /// Its node died (the room comes from a replica), rather than handing it over.
        after_death: bool,
        /// Whether it runs here now.
        reply: RpcReplyPort<Result<(), AdoptError>>,
    },
    /// Freeze a hosted room for a move (requests wait instead of reaching it), or thaw it when
    /// the move did not start; answered once the directory says so.
    SetMoving {
        /// The room.
        room: RoomId,
        /// Frozen or not.
        moving: bool,
        /// Done.
        reply: RpcReplyPort<()>,
    },
    /// A room frozen for a move runs on another node now: a tombstone naming it replaces the
    /// entry; answered once it is in place.
    MovedOut {
        /// The room.
        room: RoomId,
        /// Where it went.
        to: Location,
        /// Done.
        reply: RpcReplyPort<()>,
    },
    /// Stop hosting a room without telling its players: another node hosts it (`to`, which
    /// requests are redirected to), or this node is cut off from its cluster (`to` is `None`).
    Drop {
        /// The room.
        room: RoomId,
        /// Where it lives now, if known.
        to: Option<Location>,
    },
    /// Stop hosting every room (this node lost sight of the cluster's majority, which adopts them).
    DropAll,
    /// These nodes left the cluster: every room here lets go of the seats whose sessions lived
    /// there (disconnected now, released after the reconnect grace unless their players return).
    HomesLost(Vec<NodeId>),
    /// These nodes run a new process under their id: every room here lets go of the seats whose
    /// sessions lived in the old one (see `RoomMsg::HomesReplaced`).
    HomesReplaced(Vec<NodeId>),
    /// These nodes are heard again, the same process (see `RoomMsg::HomesBack`).
    HomesBack(Vec<NodeId>),
    /// With the `test-hooks` feature only: the host fails, so end-to-end tests can watch the node
    /// react.
    #[cfg(feature = "test-hooks")]
    FailForTest,
}

// Local-only: never crosses nodes (the cluster layer carries its own envelopes).
impl ractor::Message for RoomHostMsg {}

/// With the `test-hooks` feature only: how many more rooms moving here from other nodes this node
/// refuses, so end-to-end tests can watch a move fail and be tried again.
#[cfg(feature = "test-hooks")]
pub static REFUSE_MOVES_FOR_TEST: std::sync::atomic::AtomicU32 =
    std::sync::atomic::AtomicU32::new(0);

/// Takes one of the refusals [`REFUSE_MOVES_FOR_TEST`] still holds.
#[cfg(feature = "test-hooks")]
fn take_refusal() -> bool {
    use std::sync::atomic::Ordering;
    REFUSE_MOVES_FOR_TEST
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
        .is_ok()
}

/// The room host actor.
pub struct RoomHost;

impl RoomHost {
    /// The node's room host.
    pub fn of(ctx: &NodeCtx) -> ActorRef<RoomHostMsg> {
        ActorRef::from(ctx.hosts().rooms.clone())
    }
}

/// Its state.
pub struct RoomHostState {
    ctx: Arc<NodeCtx>,
    /// The one writer of the rooms hosted here.
    rooms: RoomsWriter,
    children: HashMap<ActorId, RoomId>,
    restarts: HashMap<RoomId, VecDeque<Instant>>,
}

impl Actor for RoomHost {
    type Msg = RoomHostMsg;
    type State = RoomHostState;
    type Arguments = (Arc<NodeCtx>, RoomsWriter);

    async fn pre_start(
        &self,
        _me: ActorRef<RoomHostMsg>,
        (ctx, rooms): (Arc<NodeCtx>, RoomsWriter),
    ) -> Result<RoomHostState, ActorProcessingErr> {
        Ok(RoomHostState {
            ctx,
            rooms,
            children: HashMap::new(),
            restarts: HashMap::new(),
        })
    }

    async fn handle(
        &self,
        me: ActorRef<RoomHostMsg>,
        msg: RoomHostMsg,
        st: &mut RoomHostState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            RoomHostMsg::Create {
                game,
                params,
                private,
                players,
                reply,
            } => {
                let r = st.create(&me, game, &params, private, players).await;
                let _ = reply.send(r);
            }
            RoomHostMsg::Adopt {
                room,
                epoch,
                snapshot,
                after_death,
                reply,
            } => {
                let r = st.adopt(&me, room, epoch, snapshot, after_death).await;
                let _ = reply.send(r);
            }
            RoomHostMsg::Drop { room, to } => st.drop_room(&room, to),
            RoomHostMsg::SetMoving {
                room,
                moving,
                reply,
            } => {
                st.rooms.set_moving(&room, moving);
                // A room that stopped while frozen for its move (it closed, empty, as the move
                // began) was left in the directory for the move to settle. The move failed: the
                // room goes now, and its backup lets go of its copy.
                if !moving
                    && st
                        .ctx
                        .directory
                        .entry(&room)
                        .is_some_and(|e| !st.children.contains_key(&e.cell.get_id()))
                {
                    st.forget(&room);
                }
                let _ = reply.send(());
            }
            RoomHostMsg::MovedOut { room, to, reply } => {
                st.drop_room(&room, Some(to));
                let _ = reply.send(());
            }
            #[cfg(feature = "test-hooks")]
            RoomHostMsg::FailForTest => panic!("test hook: the room host fails"),
            RoomHostMsg::HomesLost(nodes) => {
                let nodes = Arc::new(nodes);
                for room in st.ctx.directory.ids() {
                    if let Some(actor) = st.ctx.directory.actor(&room) {
                        let _ = actor.cast(RoomMsg::HomesLost(nodes.clone()));
                    }
                }
            }
            RoomHostMsg::HomesReplaced(nodes) => {
                let nodes = Arc::new(nodes);
                for room in st.ctx.directory.ids() {
                    if let Some(actor) = st.ctx.directory.actor(&room) {
                        let _ = actor.cast(RoomMsg::HomesReplaced(nodes.clone()));
                    }
                }
            }
            RoomHostMsg::HomesBack(nodes) => {
                let nodes = Arc::new(nodes);
                for room in st.ctx.directory.ids() {
                    if let Some(actor) = st.ctx.directory.actor(&room) {
                        let _ = actor.cast(RoomMsg::HomesBack(nodes.clone()));
                    }
                }
            }
            RoomHostMsg::DropAll => {
                let rooms = st.ctx.directory.ids();
                warn!(rooms = rooms.len(), "no longer hosting any room");
                for room in rooms {
                    st.drop_room(&room, None);
                }
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        me: ActorRef<RoomHostMsg>,
        evt: SupervisionEvent,
        st: &mut RoomHostState,
    ) -> Result<(), ActorProcessingErr> {
        match evt {
            SupervisionEvent::ActorTerminated(cell, _, _) => {
                // A room frozen for a move stopped itself; the move settles its entry. A room
                // dropped here may be hosted again already, by a newer actor.
                if let Some(room) = st.children.remove(&cell.get_id())
                    && !st.ctx.directory.is_moving(&room)
                    && st
                        .ctx
                        .directory
                        .entry(&room)
                        .is_some_and(|e| e.cell.get_id() == cell.get_id())
                {
                    st.forget(&room);
                }
            }
            SupervisionEvent::ActorFailed(cell, err) => {
                if let Some(room) = st.children.remove(&cell.get_id()) {
                    error!(room = %room, error = %err, "room failed");
                    st.restart(&me, room).await;
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// Creates a private matchmade room of `game` on this node with `players` seated.
pub async fn create_matched(
    ctx: &NodeCtx,
    game: GameName,
    players: Vec<SeatPlan>,
) -> Result<RoomId, CreateError> {
    let host = RoomHost::of(ctx);
    match ractor::call!(host, |reply| RoomHostMsg::Create {
        game,
        params: Map::new(),
        private: true,
        players,
        reply,
    }) {
        Ok(Ok((room, _))) => Ok(room),
        Ok(Err(e)) => Err(CreateError::new(e.to_string())),
        Err(e) => Err(CreateError::new(format!(
            "the room host did not answer: {e}"
        ))),
    }
}

/// Says that this node could not restore a room from its snapshot: in the log and in
/// `warren_room_restore_refusals_total{game,version}`. The room stays where it was (a move is
/// refused) or, for a dead node's room, with whoever can restore it.
pub(crate) fn refused_restore(game: &GameName, version: u32, room: &RoomId, why: &RestoreError) {
    metrics::counter!("warren_room_restore_refusals_total", "game" => game.to_string(), "version" => version.to_string()).increment(1);
    warn!(room = %room, game = %game, state_version = version, error = %why, "cannot restore this room here");
}

impl RoomHostState {
    async fn create(
        &mut self,
        me: &ActorRef<RoomHostMsg>,
        game: GameName,
        params: &Map<String, Value>,
        private: bool,
        players: Vec<SeatPlan>,
    ) -> Result<(RoomId, ActorRef<RoomMsg>), CreateRoomError> {
        if !self.ctx.is_serving() {
            return Err(CreateRoomError::Draining);
        }
        let spec = *self
            .ctx
            .games
            .get(&game)
            .ok_or(CreateRoomError::UnknownGame)?;
        let mut g = (spec.create)(params).map_err(CreateRoomError::InvalidParams)?;
        if players.len() as u32 > g.seats() {
            return Err(ParamsError("more players than seats".into()).into());
        }
        if let Err(e) =
            crate::game::erased::check_round_trip(g.as_ref(), spec.restore, spec.state_version())
        {
            error!(game = %game, error = %e, "the game's state does not read back from its snapshot; no room of it can open (see the `Game` trait's documentation)");
            return Err(CreateRoomError::Internal);
        }
        let seats: Vec<SeatRecord> = players
            .into_iter()
            .enumerate()
            .map(|(i, (player, name, home))| SeatRecord {
                home,
                player,
                name,
                seat: i as u32,
                connected: true,
                ready: false,
            })
            .collect();
        // The players seated at creation join the game here, where the game may refuse one; what
        // they emit nobody has seen yet (the first `room_state` shows its effect).
        let views: Vec<SeatView> = seats
            .iter()
            .map(|s| SeatView {
                player: s.player.clone(),
                seat: s.seat,
                ready: false,
            })
            .collect();
        let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::from_os_rng();
        let now = crate::util::now_ms();
        for (i, v) in views.iter().enumerate() {
            let env = Env {
                now_ms: now,
                seats: &views[..=i],
                rng: &mut rng,
            };
            g.on_join(env, &v.player)
                .0
                .map_err(CreateRoomError::Refused)?;
        }
        let id = RoomId::new(format!("{}.{}", self.ctx.node, self.ctx.new_id("r")));
        let args = RoomArgs {
            env: self.ctx.room_env(),
            state_version: spec.state_version(),
            acks: HashMap::new(),
            id: id.clone(),
            slot: self.rooms.slot(&id),
            game_name: game.clone(),
            inputs: None,
            game: g,
            private,
            seats,
            version: 0,
            tick: 0,
            restarted: false,
            orphans: false,
        };
        let actor = self
            .spawn(me, args, 1)
            .await
            .ok_or(CreateRoomError::Internal)?;
        metrics::gauge!("warren_rooms", "game" => game.to_string()).increment(1.0);
        info!(room = %id, game = %game, "room created");
        Ok((id, actor))
    }

    async fn spawn(
        &mut self,
        me: &ActorRef<RoomHostMsg>,
        mut args: RoomArgs,
        epoch: u64,
    ) -> Option<ActorRef<RoomMsg>> {
        let (id, game, private) = (args.id.clone(), args.game_name.clone(), args.private);
        let state_version = args.state_version;
        let players = args.seats.iter().map(|s| s.player.clone()).collect();
        let seats = args.game.seats();
        // A realtime room gets a fresh input box with every actor (a restart closes the old one).
        args.inputs = args.game.tick_interval().map(|_| Arc::default());
        let inputs = args.inputs.clone();
        // The directory entry must exist before the room runs so the room can update it.
        match Actor::spawn_linked(None, Room, args, me.get_cell()).await {
            Ok((actor, _)) => {
                self.children.insert(actor.get_id(), id.clone());
                self.rooms.insert(
                    id,
                    RoomEntry {
                        cell: actor.get_cell(),
                        game,
                        state_version,
                        players,
                        seats,
                        private,
                        epoch,
                        moving: false,
                        inputs,
                    },
                );
                Some(actor)
            }
            Err(e) => {
                error!(room = %id, error = %e, "room failed to start");
                None
            }
        }
    }

    fn drop_room(&mut self, room: &RoomId, to: Option<Location>) {
        let entry = match to {
            Some(to) => self.rooms.move_out(room, to),
            None => self.rooms.remove(room),
        };
        let Some(entry) = entry else {
            return;
        };
        metrics::gauge!("warren_rooms", "game" => entry.game.to_string()).decrement(1.0);
        self.restarts.remove(room);
        entry.cell.stop(Some("hosted elsewhere".into()));
    }

    fn forget(&mut self, room: &RoomId) {
        if let Some(e) = self.rooms.remove(room) {
            metrics::gauge!("warren_rooms", "game" => e.game.to_string()).decrement(1.0);
        }
        self.restarts.remove(room);
    }

    async fn restart(&mut self, me: &ActorRef<RoomHostMsg>, room: RoomId) {
        let rooms = self.ctx.settings.load().rooms.clone();
        let now = Instant::now();
        let window = Duration::from_millis(rooms.restart_window_ms);
        let history = self.restarts.entry(room.clone()).or_default();
        while history
            .front()
            .is_some_and(|t| now.duration_since(*t) > window)
        {
            history.pop_front();
        }
        let over_budget = history.len() as u32 >= rooms.max_restarts;
        history.push_back(now);
        let bytes = self.ctx.directory.snapshot(&room);
        let Some(bytes) = bytes else {
            warn!(room = %room, "no snapshot to restart from, closing room");
            self.close(&room, &[]);
            return;
        };
        if over_budget {
            let seats = RoomSnapshot::decode(&bytes)
                .map(|s| s.seats)
                .unwrap_or_default();
            warn!(room = %room, restarts = rooms.max_restarts, "room keeps failing, closing it");
            self.close(&room, &seats);
            return;
        }
        let epoch = self.ctx.directory.epoch_of(&room).unwrap_or(1);
        match self.revive(me, &room, &bytes, epoch, false).await {
            Ok(game) => {
                metrics::counter!("warren_room_restarts_total", "game" => game.to_string())
                    .increment(1);
                info!(room = %room, "room restarted from snapshot");
            }
            Err((why, seats)) => {
                warn!(room = %room, error = %why, "room could not be restarted, closing it");
                self.close(&room, &seats);
            }
        }
    }

    /// Hosts a room that arrives from another node, or comes back after its move failed.
    async fn adopt(
        &mut self,
        me: &ActorRef<RoomHostMsg>,
        room: RoomId,
        epoch: u64,
        snapshot: Vec<u8>,
        after_death: bool,
    ) -> Result<(), AdoptError> {
        let here = self.ctx.directory.hosts(&room);
        #[cfg(feature = "test-hooks")]
        if !after_death && !here && take_refusal() {
            return Err(AdoptError::new("refused by a test hook"));
        }
        // A copy already runs here: one this node adopted from a replica while the node now
        // moving the room to it looked dead (cut off, or restarted) and froze it for the move.
        // Left running beside the adopted one, both ticked and sent states to the players. A
        // newer copy stays (its epoch wins); an older or equal one gives way to the snapshot its
        // host froze.
        if let Some(e) = self.ctx.directory.entry(&room) {
            if e.epoch > epoch {
                return Err(AdoptError::new(format!(
                    "a copy of the room at epoch {} runs here",
                    e.epoch
                )));
            }
            RoomSnapshot::decode(&snapshot)
                .map_err(|e| AdoptError::new(format!("snapshot unreadable: {e}")))?;
            // A room whose own move failed comes back over its frozen entry: nothing to say.
            if !e.moving {
                warn!(room = %room, epoch, running = e.epoch, "a copy of this room already runs here; the adopted snapshot replaces it");
            }
            e.cell.stop(Some("replaced by an adopted snapshot".into()));
        }
        let game = self
            .revive(me, &room, &snapshot, epoch, after_death)
            .await
            .map_err(|(why, _)| AdoptError::new(why))?;
        self.rooms.keep_snapshot(&room, Arc::new(snapshot));
        if !here {
            metrics::gauge!("warren_rooms", "game" => game.to_string()).increment(1.0);
        }
        info!(room = %room, epoch, "room adopted from its snapshot");
        Ok(())
    }

    /// Starts a room from snapshot bytes at `epoch`; its connected players get a full `room_state`.
    /// On failure, why, and the seats to tell.
    async fn revive(
        &mut self,
        me: &ActorRef<RoomHostMsg>,
        room: &RoomId,
        bytes: &[u8],
        epoch: u64,
        orphans: bool,
    ) -> Result<GameName, (String, Vec<SeatRecord>)> {
        let snap = RoomSnapshot::decode(bytes)
            .map_err(|e| (format!("snapshot unreadable: {e}"), Vec::new()))?;
        if snap.room != *room {
            return Err(("snapshot of another room".into(), Vec::new()));
        }
        let seats = snap.seats.clone();
        let spec = *self.ctx.games.get(&snap.game).ok_or_else(|| {
            let e = RestoreError::UnknownGame(snap.game.clone());
            refused_restore(&snap.game, snap.game_version, room, &e);
            (e.to_string(), seats.clone())
        })?;
        let game = (spec.restore)(snap.game_version, &snap.game_state).map_err(|e| {
            refused_restore(&snap.game, snap.game_version, room, &e);
            (e.to_string(), seats.clone())
        })?;
        let game_name = snap.game.clone();
        let args = RoomArgs {
            env: self.ctx.room_env(),
            state_version: spec.state_version(),
            acks: snap.tail3.acks.into_iter().collect(),
            id: room.clone(),
            slot: self.rooms.slot(room),
            game_name: snap.game,
            inputs: None,
            game,
            private: snap.private,
            seats: snap.seats,
            version: snap.version,
            tick: snap.tick,
            restarted: true,
            orphans,
        };
        match self.spawn(me, args, epoch).await {
            Some(actor) => {
                // Only now is the room in the directory, where a session asking for the seat
                // finds it: whichever of the two looks second sees the other.
                if orphans {
                    let _ = actor.cast(RoomMsg::CallOrphans);
                }
                Ok(game_name)
            }
            None => Err(("the room actor failed to start".into(), seats)),
        }
    }

    /// Closes a room for good. Each seated player's session hears it through its mailbox, which
    /// forgets the room before it tells the player, wherever that session lives.
    fn close(&mut self, room: &RoomId, seats: &[SeatRecord]) {
        self.forget(room);
        let closed = SessionNote::RoomClosed {
            room: room.clone(),
            why: "the room failed and was closed".to_owned(),
        };
        let peers = self.ctx.peers();
        for s in seats {
            let note = closed.clone();
            if s.home == self.ctx.node {
                if let Some(route) = self.ctx.sessions.route(&s.player) {
                    let _ = route.session().cast(crate::session::SessionMsg::Note(note));
                }
            } else if let Some(peers) = &peers {
                peers.note(&s.home, s.player.clone(), note);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use ractor::{ActorStatus, call};

    use super::{RoomHost, RoomHostMsg};
    use crate::node::NodeCtx;

    /// A node that adopted a room from a replica while the room's host looked dead, and then
    /// hears from that host, which froze the room and moves it here: the snapshot it sends
    /// replaces the copy already running (both ran, and ticked, side by side in the chaos soak);
    /// a snapshot older than the running copy is refused.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_adopted_snapshot_replaces_a_copy_of_the_room_already_running_here() {
        let (ctx, writers) = NodeCtx::for_tests();
        let (fatal, _failures) = tokio::sync::mpsc::unbounded_channel();
        let sup = crate::start_supervisor(&ctx, fatal).await.unwrap();
        crate::start_node(&ctx, writers, &sup).await.unwrap();
        let host = RoomHost::of(&ctx);
        let players = vec![("p1".into(), "p1".to_owned(), "t1".into())];
        let (room, first) = call!(host, |reply| RoomHostMsg::Create {
            game: "dice".into(),
            params: Default::default(),
            private: false,
            players,
            reply,
        })
        .unwrap()
        .unwrap();
        let snapshot = ctx.directory.snapshot(&room).unwrap().as_ref().clone();

        let adopt = |epoch: u64| {
            let (room, snapshot) = (room.clone(), snapshot.clone());
            let host = host.clone();
            async move {
                call!(host, |reply| RoomHostMsg::Adopt {
                    room,
                    epoch,
                    snapshot,
                    after_death: false,
                    reply,
                })
                .unwrap()
            }
        };
        adopt(1).await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while first.get_status() != ActorStatus::Stopped {
            assert!(Instant::now() < deadline, "the first copy still runs");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let second = ctx.directory.actor(&room).unwrap();
        assert_ne!(second.get_id(), first.get_id());
        running(&second).await;
        assert_eq!(ctx.directory.len(), 1);

        // An older snapshot does not replace a newer copy.
        adopt(3).await.unwrap();
        assert!(adopt(2).await.is_err());
        let third = ctx.directory.actor(&room).unwrap();
        running(&third).await;
        assert_eq!(ctx.directory.epoch_of(&room), Some(3));
    }

    /// Waits (at most 5 s) until a room actor has finished starting: its `pre_start` restores
    /// the snapshot, so it reports `Starting` for a moment after the adoption is answered.
    async fn running(room: &ractor::ActorCell) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while room.get_status() != ActorStatus::Running {
            assert!(
                Instant::now() < deadline,
                "the adopted copy is {:?}, not running",
                room.get_status()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}
