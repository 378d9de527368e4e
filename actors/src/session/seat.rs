//! Where the player's room is and how the session reaches it, and the seat search of a session
//! resumed from a node that is gone.

use tracing::{debug, info};
use warren_protocol::{ErrorCode, RoomId, ServerMsg, encode};

use super::SessionState;

/// The longest wait between two asks of a seat search.
const SEEK_EVERY_MOST: std::time::Duration = std::time::Duration::from_millis(400);
use crate::node::Location;
use crate::remote::{OpResult, RoomError, RoomOp};
use crate::router;

impl SessionState {
    /// The room holding the player's seat, wherever it is hosted: for a session resumed here
    /// from another node's (that node drained or died).
    pub(super) async fn find_seat(&self) -> Option<RoomId> {
        if let Some(room) = self.ctx.directory.seat_of(&self.player) {
            return Some(room);
        }
        let (room, at) = self.ctx.peers()?.find_seat(self.player.clone()).await?;
        // Where the room runs, as the node that has it said: this node may not know (it started,
        // or was cut off, after the room last moved, or missed a move), and the node its id
        // names, or the one it last heard of, may be gone.
        self.ctx.directory.hint(&room, at);
        Some(room)
    }

    /// Ends the seat search a `welcome` announced, if one is on: the player learns where its seat
    /// is, or that none was found.
    pub(super) fn end_search(&mut self, room: Option<&RoomId>) {
        if self.seeking.take().is_some() {
            self.push(encode(&ServerMsg::RecoveryDone { room }));
        }
    }

    /// A room holds the player's seat for a session it lost (revived after its node died, or
    /// out of sight of this node for a while), or asks whether the seat is still held (adopted
    /// from a replica that may predate the player's leaving). A session that holds no seat and no
    /// ticket takes it (the player reconnected here before the room came back); one seated in
    /// that room says so, connected or within its grace (the room took this node for gone while
    /// the player played on, or doubts the seat); one that has moved on, or whose player left that
    /// room, leaves it to be released after the grace period.
    pub(super) async fn seat_waiting(&mut self, room: RoomId, at: Location) {
        if self.room.as_ref() == Some(&room) {
            self.ctx.directory.learn(&room, at);
            let (player, home) = (self.player.clone(), self.ctx.node.clone());
            let op = if self.conn.is_some() {
                debug!(session = %self.id, player = %self.player, room = %room, "the room lost sight of this session, or asks whether it holds the seat; reattaching");
                RoomOp::Reconnected { player, home }
            } else {
                // Seated there, its player away within this session's grace: the seat stays
                // until the grace ends (`GraceOver`) or the player resumes.
                RoomOp::Disconnected { player, home }
            };
            self.room_notify(&room, op).await;
            return;
        }
        // The player left that room: the copy calling is older than the leave.
        if self.room.is_some() || self.ticket.is_some() || self.left.as_ref() == Some(&room) {
            return;
        }
        self.ctx.directory.learn(&room, at);
        self.seat_found(room).await;
    }

    /// Asks the cluster for the seat again after a while: 100 ms, then twice as long each time up
    /// to [`SEEK_EVERY_MOST`], while the search lasts (eight asks within the default
    /// `rooms.seat_search_ms`). The cap keeps a seat revived after the failure timeout found
    /// within a few hundred ms of its room's return: the player's wait is bounded by the failure
    /// timeout + 1 s, which a doubling wait (1.6 s after the fourth ask) overran.
    pub(super) fn seek_later(
        &self,
        me: &ractor::ActorRef<super::SessionMsg>,
        generation: u64,
        attempt: u32,
    ) {
        let wait = std::time::Duration::from_millis(100 << attempt.min(6)).min(SEEK_EVERY_MOST);
        drop(me.send_after(wait, move || {
            super::SessionMsg::SeekAgain(generation, attempt)
        }));
    }

    /// The seat searched for is in `room`: the session takes it and tells the room the player is
    /// connected here.
    pub(super) async fn seat_found(&mut self, room: RoomId) {
        if self.room.is_some() || self.ticket.is_some() {
            return;
        }
        info!(session = %self.id, player = %self.player, room = %room, "the player's seat is back; reattaching");
        self.room = Some(room.clone());
        self.end_search(Some(&room));
        if self.conn.is_some() {
            let op = RoomOp::Reconnected {
                player: self.player.clone(),
                home: self.ctx.node.clone(),
            };
            self.room_notify(&room, op).await;
        }
        self.publish_fast();
    }

    /// Whether the session can reach a room: hosted here, or, in a cluster, anywhere its id or
    /// the directory places it (a room whose id names this node but that is not here any more may
    /// have moved on while this node was cut off or restarting: the router asks the other nodes).
    pub(super) fn can_reach(&self, room: &RoomId) -> bool {
        self.ctx.directory.hosts(room)
            || (self.ctx.peers().is_some()
                && self.ctx.directory.locate(&self.ctx.node, room).is_some())
    }

    /// The player's room, if it can be reached; forgets one that cannot.
    pub(super) fn current_room(&mut self) -> Option<RoomId> {
        let room = self.room.clone()?;
        if !self.can_reach(&room) {
            self.room = None;
            return None;
        }
        Some(room)
    }

    /// Runs an operation on the player's room wherever it is hosted. A room that turned out to be
    /// gone is forgotten, and the player is told it is in no room (`not_in_room`, as PROTOCOL.md
    /// lists for every request on the player's room).
    pub(super) async fn room_op(&mut self, op: RoomOp) -> OpResult {
        let Some(room) = self.room.clone() else {
            return Err(RoomError::new(ErrorCode::NotInRoom, "not in a room"));
        };
        match self.op_on(&room, op).await {
            Err(e) if e.is_not_found() => {
                if self.room.as_ref() == Some(&room) {
                    self.room = None;
                }
                Err(RoomError::new(ErrorCode::NotInRoom, "the room is gone"))
            }
            r => r,
        }
    }

    /// Runs an operation on a room, through the router (which follows the room as it moves).
    pub(super) async fn op_on(&self, room: &RoomId, op: RoomOp) -> OpResult {
        router::op(&self.ctx, room, op).await
    }

    /// Tells a room about the player's connection; local rooms by a cast, remote ones in order
    /// (awaited, so a disconnect can never overtake the reconnect that follows it).
    pub(super) async fn room_notify(&mut self, room: &RoomId, op: RoomOp) {
        let delivered = self.can_reach(room)
            && !matches!(&self.op_on(room, op).await, Err(e) if e.is_not_found());
        if !delivered && self.room.as_ref() == Some(room) {
            self.room = None;
        }
    }
}
