//! What the actors need from the cluster layer, without depending on it: reaching a room hosted on
//! another node, delivering frames to players connected to another node, and listing other nodes'
//! rooms. The cluster crate implements [`Peers`]; a node running alone has none.

use std::future::Future;
use std::pin::Pin;

use serde::{Deserialize, Serialize};
use warren_protocol::{ErrorCode, GameName, NodeId, Outbound, PlayerId, RoomId, RoomSummary};

/// A request to a room, as it crosses nodes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum RoomOp {
    /// Seat a player whose session lives on `home`.
    Join {
        /// The player.
        player: PlayerId,
        /// Display name.
        name: String,
        /// Node of the player's session.
        home: NodeId,
    },
    /// Remove the player.
    Leave(PlayerId),
    /// The player sent `ready`.
    Ready(PlayerId),
    /// The player sent `input`; `data` is the JSON object as text.
    Input {
        /// The player.
        player: PlayerId,
        /// Sequence number.
        seq: Option<u64>,
        /// JSON object text.
        data: String,
    },
    /// A chat line.
    Chat {
        /// The player.
        player: PlayerId,
        /// Text.
        text: String,
    },
    /// The player's connection closed.
    Disconnected(PlayerId),
    /// The player is connected again.
    Reconnected(PlayerId),
    /// Send the player a full `room_state`.
    Resync(PlayerId),
}

/// The answer to a [`RoomOp`]: an error code and message on refusal.
pub type OpResult = Result<(), (ErrorCode, String)>;

/// A boxed future, as trait objects need.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// The other nodes, as the actors see them.
pub trait Peers: Send + Sync + 'static {
    /// Sends frames to players whose sessions live on `node`, in one message.
    fn deliver(&self, node: &NodeId, frames: Vec<(PlayerId, Outbound)>);
    /// Runs an operation on a room hosted on `node` and waits for its answer.
    fn room_op(&self, node: &NodeId, room: &RoomId, op: RoomOp) -> BoxFuture<OpResult>;
    /// Open public rooms hosted on every other reachable node.
    fn list_rooms(&self, game: Option<GameName>) -> BoxFuture<Vec<RoomSummary>>;
}

/// The node that hosts a room: room ids are `<node>.<random>`.
pub fn host_of(room: &RoomId) -> Option<NodeId> {
    room.as_str()
        .rsplit_once('.')
        .map(|(node, _)| NodeId::new(node))
        .filter(|n| !n.as_str().is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_ids_name_their_node() {
        assert_eq!(host_of(&"n1.rab12".into()), Some(NodeId::from("n1")));
        assert_eq!(
            host_of(&"warren-0.example.rab".into()),
            Some(NodeId::from("warren-0.example"))
        );
        assert_eq!(host_of(&"nodot".into()), None);
        assert_eq!(host_of(&".x".into()), None);
    }
}
