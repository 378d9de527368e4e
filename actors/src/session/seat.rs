//! Where the player's room is and how the session reaches it, and the seat search of a session
//! resumed from a node that is gone.

use tracing::info;
use warren_protocol::{ErrorCode, NodeId, RoomId, ServerMsg, encode};

use super::SessionState;
use crate::node::Location;
use crate::remote::{OpResult, RoomError, RoomOp};
use crate::room;

impl SessionState {
    /// The room holding the player's seat, wherever it is hosted: for a session resumed here
    /// from another node's (that node drained or died).
    pub(super) async fn find_seat(&self) -> Option<RoomId> {
        if let Some(room) = self.ctx.directory.seat_of(&self.player) {
            return Some(room);
        }
        self.ctx.peers()?.find_seat(self.player.clone()).await
    }

    /// Ends the seat search a `welcome` announced, if one is on: the player learns where its seat
    /// is, or that none was found.
    pub(super) fn end_search(&mut self, room: Option<&RoomId>) {
        if self.seeking.take().is_some() {
            self.push(encode(&ServerMsg::RecoveryDone { room }));
        }
    }

    /// A room revived after its node died holds the player's seat. A session that holds no seat
    /// and no ticket takes it (the player reconnected here before the room came back); one that
    /// has moved on leaves it to be released after the grace period.
    pub(super) async fn seat_waiting(&mut self, room: RoomId, at: Location) {
        if self.room.is_some() || self.ticket.is_some() {
            return;
        }
        info!(session = %self.id, player = %self.player, room = %room, "the player's seat is back; reattaching");
        self.ctx.directory.learn(&room, at);
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

    /// Where a room is: hosted here, or on another node of the cluster.
    pub(super) fn link_to(&self, room: &RoomId) -> Option<Link> {
        if self.ctx.directory.hosts(room) {
            return Some(Link::Local);
        }
        let at = self.ctx.directory.locate(&self.ctx.node, room)?;
        self.ctx.peers()?;
        // A room whose id names this node but that is not here (any more) may have moved on
        // while this node was cut off or restarting: the cluster layer asks the other nodes.
        Some(Link::Remote(at.node))
    }

    /// The link to the player's room; forgets a room that is gone.
    pub(super) fn room_link(&mut self) -> Option<Link> {
        let room = self.room.clone()?;
        let link = self.link_to(&room);
        if link.is_none() {
            self.room = None;
        }
        link
    }

    /// Runs an operation on the player's room wherever it is hosted. A room that turned out to be
    /// gone is forgotten.
    pub(super) async fn room_op(&mut self, op: RoomOp) -> OpResult {
        let Some(room) = self.room.clone() else {
            return Err(RoomError::new(ErrorCode::NotInRoom, "not in a room"));
        };
        let r = self.op_on(&room, op).await;
        if matches!(
            &r,
            Err(RoomError {
                code: ErrorCode::NotFound,
                ..
            })
        ) && self.room.as_ref() == Some(&room)
        {
            self.room = None;
        }
        r
    }

    pub(super) async fn op_on(&self, room: &RoomId, op: RoomOp) -> OpResult {
        match (self.link_to(room), self.ctx.peers()) {
            // In a cluster, the room may leave while the request waits for it; the cluster layer
            // follows it.
            (Some(Link::Local), Some(peers)) => peers.room_op(&self.ctx.node, room, op).await,
            (Some(Link::Local), None) => room::apply(&self.ctx, room, op).await,
            (Some(Link::Remote(node)), Some(peers)) => peers.room_op(&node, room, op).await,
            _ => Err(RoomError::new(ErrorCode::NotFound, "no such room")),
        }
    }

    /// Tells a room about the player's connection; local rooms by a cast, remote ones in order
    /// (awaited, so a disconnect can never overtake the reconnect that follows it).
    pub(super) async fn room_notify(&mut self, room: &RoomId, op: RoomOp) {
        let delivered = match self.link_to(room) {
            Some(_) => !matches!(
                self.op_on(room, op).await,
                Err(RoomError {
                    code: ErrorCode::NotFound,
                    ..
                })
            ),
            None => false,
        };
        if !delivered && self.room.as_ref() == Some(room) {
            self.room = None;
        }
    }
}

/// Where a room is, as a session reaches it.
pub(super) enum Link {
    /// Hosted on this node.
    Local,
    /// Hosted on another node.
    Remote(NodeId),
}
