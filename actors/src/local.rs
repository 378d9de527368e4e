//! [`LocalNode`]: this node as the cluster layer sees it. What another node may ask of this one,
//! and what membership and replication may change here, all go through these methods; the
//! cluster crate is transport and membership and does not reach into rooms, pools or sessions.

use std::sync::Arc;

use tokio::sync::mpsc;
use tracing::{info, warn};
use warren_protocol::{
    CloseCode, GameName, NodeId, Outbound, PlayerId, RoomId, RoomSummary, TicketId,
};

use crate::inputs::QueuedInput;
use crate::node::{Location, NodeCtx, now_ms};
use crate::pool::ask_claim;
use crate::pool_host::{PoolHost, PoolHostMsg};
use crate::remote::{
    AdoptError, BoxFuture, CreateError, OpResult, Peers, PoolWire, RoomOp, SeatPlan, SessionNote,
    TickState,
};
use crate::room::{self, RoomSnapshot};
use crate::room_host::{RoomHost, RoomHostMsg, create_matched};
use crate::session::{LIST_ROOMS_LIMIT, SessionMsg};
use crate::session_host::find_session;
use crate::{router, settings::Settings};

/// What a room snapshot holds ([`LocalNode::describe_snapshot`]).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct SnapshotInfo {
    /// The room's game.
    pub game: GameName,
    /// The version of its last event.
    pub version: u64,
    /// Its last realtime tick.
    pub tick: u64,
    /// When the room wrote it (ms since the Unix epoch; 0 for a snapshot of format 1).
    pub saved_ms: u64,
}

/// This node's answer to another node's room operation.
#[derive(Debug)]
pub enum Answer {
    /// The room answered.
    Done(OpResult),
    /// The room is not here any more; it lives there.
    Moved(Location),
}

/// This node, for the cluster layer.
#[derive(Clone)]
pub struct LocalNode {
    ctx: Arc<NodeCtx>,
}

impl LocalNode {
    /// The node whose actors `ctx` holds.
    pub fn new(ctx: Arc<NodeCtx>) -> Self {
        Self { ctx }
    }

    /// Its id.
    pub fn id(&self) -> &NodeId {
        &self.ctx.node
    }

    /// Its build version.
    pub fn version(&self) -> &str {
        &self.ctx.version
    }

    /// Current settings.
    pub fn settings(&self) -> Arc<Settings> {
        self.ctx.settings.load_full()
    }

    /// Connects the node's actors to the other nodes (once, at start).
    pub fn set_peers(&self, peers: Arc<dyn Peers>) {
        self.ctx.set_peers(peers);
    }

    /// Sends every snapshot a room writes from now on to `tx` (once, at start).
    pub fn replicate_to(&self, tx: mpsc::UnboundedSender<(RoomId, Arc<Vec<u8>>)>) {
        self.ctx.directory.replicate_to(tx);
    }

    /// Rooms hosted here.
    pub fn rooms(&self) -> usize {
        self.ctx.directory.len()
    }

    /// Live connections.
    pub fn sessions(&self) -> usize {
        self.ctx.sessions.len()
    }

    /// Whether the node is draining.
    pub fn is_draining(&self) -> bool {
        self.ctx.is_draining()
    }

    /// Whether the node is cut off from the majority of its cluster.
    pub fn is_isolated(&self) -> bool {
        self.ctx.is_isolated()
    }

    /// The latest snapshot of every room hosted here.
    pub fn snapshots(&self) -> std::collections::HashMap<RoomId, Arc<Vec<u8>>> {
        self.ctx.directory.snapshots()
    }

    /// What a room snapshot holds, for a view of the replicas this node keeps: the room's game,
    /// version, tick and when it was saved.
    pub fn describe_snapshot(bytes: &[u8]) -> Option<SnapshotInfo> {
        let s = RoomSnapshot::decode(bytes).ok()?;
        Some(SnapshotInfo {
            game: s.game,
            version: s.version,
            tick: s.tick,
            saved_ms: s.tail2.saved_ms,
        })
    }

    /// Whether this node could restore a room from snapshot `bytes` (its game registered here, at
    /// a state version the game reads). A node keeps a replica only if so; a refusal is logged and
    /// counted (`warren_room_restore_refusals_total`).
    pub fn restorable(&self, room: &RoomId, bytes: &[u8]) -> bool {
        let Ok((game, version)) = RoomSnapshot::game_of(bytes) else {
            return false;
        };
        let why = match self.ctx.games.get(&game) {
            None => crate::game::RestoreError::UnknownGame(game.clone()),
            Some(spec) if spec.reads(version) => return true,
            Some(_) => crate::game::RestoreError::UnsupportedVersion(version),
        };
        crate::room_host::refused_restore(&game, version, room, &why);
        false
    }

    /// The game and state version of a room hosted here.
    pub fn game_version_of(&self, room: &RoomId) -> Option<(GameName, u32)> {
        self.ctx.directory.game_version_of(room)
    }

    /// The games this node runs, with the state versions each restores.
    pub fn readable_versions(&self) -> crate::game::GameVersions {
        self.ctx.games.readable_versions()
    }

    /// The room's epoch, if it is hosted here.
    pub fn epoch_of(&self, room: &RoomId) -> Option<u64> {
        self.ctx.directory.epoch_of(room)
    }

    // ---- requests from other nodes ----

    /// Runs an operation another node sent for a room here: the room's answer, or, when the room
    /// left, where it went.
    pub async fn room_op(&self, room: &RoomId, op: RoomOp) -> Answer {
        // An input behind others still waiting here for the room goes after them, wherever the
        // room is: the sender switches to the room's new node once this one is answered.
        let op = match op {
            RoomOp::Input { .. } => match router::input_op_from_peer(&self.ctx, room, op).await {
                Ok(result) => return Answer::Done(result),
                Err(op) => op,
            },
            op => op,
        };
        let result = room::apply(&self.ctx, room, op).await;
        match self.ctx.directory.moved_to(room) {
            Some(to) if matches!(&result, Err(e) if e.is_not_found()) => Answer::Moved(to),
            _ => Answer::Done(result),
        }
    }

    /// A one-way input another node sent for a room here ([`router::input_from_peer`]).
    pub fn input(&self, room: RoomId, home: NodeId, input: QueuedInput) {
        router::input_from_peer(&self.ctx, room, home, input);
    }

    /// Frames from a room on another node for players connected here.
    pub fn deliver(&self, frames: &[(PlayerId, Outbound)]) {
        self.ctx
            .sessions
            .send_each(frames.iter().map(|(p, f)| (p, f.clone())));
    }

    /// One frame from a room on another node for several players connected here.
    pub fn deliver_same(&self, frame: &Outbound, players: &[PlayerId]) {
        self.ctx
            .sessions
            .send_each(players.iter().map(|p| (p, frame.clone())));
    }

    /// One tick's `state` of a room on another node for its players connected here.
    pub fn deliver_state(&self, state: &TickState) {
        self.ctx.sessions.send_each(state.frames());
    }

    /// Another node announced where a room lives. Two copies of a room (adopted from replicas on
    /// two nodes at once): the higher epoch wins, then the lower node id; the loser drops its copy
    /// and redirects to the winner.
    pub fn located(&self, room: RoomId, to: Location) {
        match self.ctx.directory.epoch_of(&room) {
            Some(mine)
                if to.node != self.ctx.node
                    && (to.epoch > mine || (to.epoch == mine && to.node < self.ctx.node)) =>
            {
                warn!(room = %room, winner = %to.node, epoch = to.epoch, "another node hosts this room too; dropping this copy");
                let _ = RoomHost::of(&self.ctx).cast(RoomHostMsg::Drop { room, to: Some(to) });
            }
            // This copy wins: the other host learns it and drops its own (it may not have heard
            // this node's announcement when this node adopted the room).
            Some(mine) if to.node != self.ctx.node => {
                if let Some(peers) = self.ctx.peers() {
                    let here = Location {
                        node: self.ctx.node.clone(),
                        epoch: mine,
                    };
                    peers.announce(room, here);
                }
            }
            Some(_) => {}
            None => self.ctx.directory.learn(&room, to),
        }
    }

    /// Announces where every room hosted here lives, to every reachable node.
    pub fn announce_hosted(&self) {
        let Some(peers) = self.ctx.peers() else {
            return;
        };
        for room in self.ctx.directory.ids() {
            if let Some(epoch) = self.ctx.directory.epoch_of(&room) {
                let here = Location {
                    node: self.ctx.node.clone(),
                    epoch,
                };
                peers.announce(room, here);
            }
        }
    }

    /// Hosts a room another node hands over (a live migration) from its snapshot at `epoch`.
    pub async fn adopt(
        &self,
        room: RoomId,
        epoch: u64,
        snapshot: Vec<u8>,
    ) -> Result<(), AdoptError> {
        let host = RoomHost::of(&self.ctx);
        ractor::call!(host, |reply| RoomHostMsg::Adopt {
            room,
            epoch,
            snapshot,
            after_death: false,
            reply
        })
        .unwrap_or_else(|e| {
            Err(AdoptError::new(format!(
                "the room host did not answer: {e}"
            )))
        })
    }

    /// Revives a room of a node that died from the replica kept here (`epoch` is the replica's).
    /// Does nothing when the room is already here, or moved on before its node died.
    pub async fn revive(&self, room: RoomId, from: &str, epoch: u64, snapshot: Vec<u8>) {
        let ctx = &self.ctx;
        if ctx.directory.hosts(&room)
            || ctx
                .directory
                .moved_to(&room)
                .is_some_and(|l| l.epoch > epoch)
        {
            return;
        }
        // Two past the replica's: a move its host began from that epoch (to `epoch + 1`) and that
        // lands late, on a node that had not heard of this adoption, loses to this copy wherever
        // the two meet. The majority adopted this one, and sent the room's players here.
        let epoch = epoch + 2;
        let saved_ms = RoomSnapshot::decode(&snapshot).map_or(0, |s| s.tail2.saved_ms);
        let host = RoomHost::of(ctx);
        let r = room.clone();
        let result = ractor::call!(host, |reply| RoomHostMsg::Adopt {
            room: r,
            epoch,
            snapshot,
            after_death: true,
            reply
        })
        .unwrap_or_else(|e| {
            Err(AdoptError::new(format!(
                "the room host did not answer: {e}"
            )))
        });
        match result {
            Ok(()) => {
                metrics::counter!("warren_room_adoptions_total").increment(1);
                // How old the revived state was: what the room's players lost, at most.
                let age_ms = (saved_ms > 0).then(|| now_ms().saturating_sub(saved_ms));
                if let Some(age) = age_ms {
                    metrics::histogram!("warren_room_adoption_state_age_seconds")
                        .record(age as f64 / 1000.0);
                }
                info!(room = %room, from = %from, epoch, state_age_ms = ?age_ms, "room adopted from its replica after its node died");
                if let Some(peers) = ctx.peers() {
                    let at = Location {
                        node: ctx.node.clone(),
                        epoch,
                    };
                    peers.announce(room, at);
                }
            }
            Err(why) => warn!(room = %room, error = %why, "room could not be adopted"),
        }
    }

    /// The room hosted here that holds `player`'s seat.
    pub fn seat_of(&self, player: &PlayerId) -> Option<RoomId> {
        self.ctx.directory.seat_of(player)
    }

    /// Where `room` lives, if it is hosted here.
    pub fn where_is(&self, room: &RoomId) -> Option<Location> {
        self.ctx.directory.epoch_of(room).map(|epoch| Location {
            node: self.ctx.node.clone(),
            epoch,
        })
    }

    /// Open public rooms hosted here.
    pub fn open_rooms(&self, game: Option<&GameName>) -> Vec<RoomSummary> {
        self.ctx.directory.list_open(game, LIST_ROOMS_LIMIT)
    }

    /// A matchmaking message for the pools hosted here.
    pub fn pool(&self, msg: PoolWire) {
        let _ = PoolHost::of(&self.ctx).cast(PoolHostMsg::Wire(msg));
    }

    /// A note for the session of `player` here: put in its mailbox before this returns, so notes
    /// keep the order they arrived in.
    pub async fn note(&self, player: &PlayerId, note: SessionNote) {
        if let Some(session) = find_session(&self.ctx, player).await {
            let _ = session.cast(SessionMsg::Note(note));
        }
    }

    /// Asks the session of `player` here to claim `ticket` for the match `claim`. The request is
    /// in the session's mailbox when this returns; the answer is the future it gives.
    pub async fn claim(
        &self,
        player: &PlayerId,
        ticket: TicketId,
        claim: String,
    ) -> BoxFuture<bool> {
        match find_session(&self.ctx, player).await {
            Some(s) => Box::pin(ask_claim(&s, ticket, claim)),
            None => Box::pin(async { false }),
        }
    }

    /// Creates a private matchmade room here with these players seated.
    pub async fn create_matched(
        &self,
        game: GameName,
        players: Vec<SeatPlan>,
    ) -> Result<RoomId, CreateError> {
        create_matched(&self.ctx, game, players).await
    }

    // ---- membership ----

    /// The node lost the majority of its cluster, or its peers refuse it: it stops hosting rooms (the majority side
    /// adopts them) and closes its sessions with 4001, so players reconnect to the majority.
    /// Closing is repeated on every call (a player may connect meanwhile).
    pub fn isolate(&self, why: &str) {
        let ctx = &self.ctx;
        if !ctx.set_isolated(true) {
            warn!(
                rooms = ctx.directory.len(),
                sessions = ctx.sessions.len(),
                why,
                "this node is isolated: it stops hosting rooms and closes its sessions (4001)"
            );
            metrics::gauge!("warren_cluster_isolated").set(1.0);
            let _ = RoomHost::of(ctx).cast(RoomHostMsg::DropAll);
        }
        ctx.sessions.close_all(CloseCode::Draining);
    }

    /// The node sees a majority again; true when it had been isolated.
    pub fn rejoin(&self) -> bool {
        let was = self.ctx.set_isolated(false);
        if was {
            info!(
                "this node is back in its cluster (a majority, its peers admit it): hosting rooms and taking players"
            );
            metrics::gauge!("warren_cluster_isolated").set(0.0);
        }
        was
    }

    /// These nodes left or died, and the sessions on them with them: seats here that they held
    /// wait for their players for the reconnect grace, then go.
    pub fn homes_lost(&self, nodes: Vec<NodeId>) {
        let _ = RoomHost::of(&self.ctx).cast(RoomHostMsg::HomesLost(nodes));
    }

    /// These nodes run a new process under their id (restarted, or back after being cut off):
    /// the sessions of the old one are gone, so seats here that they held wait for their players
    /// for the reconnect grace, then go.
    pub fn homes_replaced(&self, nodes: Vec<NodeId>) {
        let _ = RoomHost::of(&self.ctx).cast(RoomHostMsg::HomesReplaced(nodes));
    }

    /// These nodes are heard again after being unreachable, the same process: seats here that
    /// their sessions held, disconnected when they were lost, are called for (their sessions,
    /// still connected there, say so and the seats are theirs again).
    pub fn homes_back(&self, nodes: Vec<NodeId>) {
        let _ = RoomHost::of(&self.ctx).cast(RoomHostMsg::HomesBack(nodes));
    }
}
