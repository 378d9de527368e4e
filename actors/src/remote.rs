//! What the actors need from the cluster layer, without depending on it: reaching a room hosted on
//! another node, delivering frames to players connected to another node, and listing other nodes'
//! rooms. The cluster crate implements [`Peers`]; a node running alone has none.

use std::future::Future;
use std::pin::Pin;

use serde::{Deserialize, Serialize};
use warren_protocol::{
    ErrorCode, GameName, JsonObject, NodeId, Outbound, PlayerId, RoomId, RoomSummary, TicketId,
};

use crate::inputs::QueuedInput;
use crate::ring::Candidate;

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
    /// The player sent `input`.
    Input {
        /// The player.
        player: PlayerId,
        /// Sequence number.
        seq: Option<u64>,
        /// The object as the client sent it.
        data: JsonObject,
    },
    /// A chat line.
    Chat {
        /// The player.
        player: PlayerId,
        /// Text.
        text: String,
    },
    /// The player's connection to its session on `home` closed (ignored when the seat has moved
    /// to a session on another node since).
    Disconnected {
        /// The player.
        player: PlayerId,
        /// Node of the session that lost its connection.
        home: NodeId,
    },
    /// The player is connected again, to a session on `home` (where its frames go from now on).
    Reconnected {
        /// The player.
        player: PlayerId,
        /// Node of the session.
        home: NodeId,
    },
    /// Send the player a full `room_state`.
    Resync(PlayerId),
    /// The player's session on `home` ended after its reconnect grace: the seat is released
    /// unless it has moved to a session on another node since (the player resumed there while
    /// `home` lived on). Added last, in cluster protocol 8; a node of an older protocol is sent
    /// `Leave` instead.
    GraceOver {
        /// The player.
        player: PlayerId,
        /// Node of the session that ended.
        home: NodeId,
    },
}

/// Where a room lives: its node, and the epoch of that placement (the higher epoch wins).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Location {
    /// The node hosting the room.
    pub node: NodeId,
    /// Bumped on every move; 0 for a location read from the room id (where it was created).
    pub epoch: u64,
}

/// A matchmaking pool: one per `(game, mode)` in the whole cluster.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PoolKey {
    /// Game.
    pub game: GameName,
    /// Mode.
    pub mode: String,
}

impl PoolKey {
    /// Its key on the consistent-hash ring, and its label in metrics and logs.
    pub fn label(&self) -> String {
        format!("{}:{}", self.game, self.mode)
    }
}

/// A queued player, as tickets travel between nodes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TicketWire {
    /// Ticket id.
    pub id: TicketId,
    /// The player.
    pub player: PlayerId,
    /// Display name, for the seat.
    pub name: String,
    /// Rating.
    pub mmr: i64,
    /// Node of the player's session.
    pub home: NodeId,
    /// When the player queued (ms since the Unix epoch): the window keeps widening across a handoff.
    pub since_ms: u64,
}

/// A message for the pool of `pool`, on whichever node owns it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum PoolWire {
    /// Queue a ticket; a node that does not own the pool forwards it (`hops` bounds the chain
    /// while nodes disagree about the ring).
    Enqueue {
        /// The pool.
        pool: PoolKey,
        /// Players per match.
        seats: u32,
        /// The ticket.
        ticket: TicketWire,
        /// Forwards so far.
        hops: u8,
    },
    /// Drop a ticket, forwarded like `Enqueue`.
    Remove {
        /// The pool.
        pool: PoolKey,
        /// The ticket.
        ticket: TicketId,
        /// Forwards so far.
        hops: u8,
    },
    /// The previous owner hands every waiting ticket of a pool over.
    Handoff {
        /// The pool.
        pool: PoolKey,
        /// Players per match.
        seats: u32,
        /// Its tickets.
        tickets: Vec<TicketWire>,
    },
    /// Drop a ticket whose player its node sent away (a drain, a node cut off), forwarded like
    /// `Remove`. The pool keeps the ticket's place (when it queued) for the reconnect grace: the
    /// player's next ticket in this pool takes it up. Added last, in cluster protocol 8; a node
    /// of an older protocol is sent `Remove`.
    Park {
        /// The pool.
        pool: PoolKey,
        /// The ticket.
        ticket: TicketId,
        /// Forwards so far.
        hops: u8,
    },
}

/// What a pool tells a player's session after claiming its ticket.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum SessionNote {
    /// The claimed match has its room and the player's seat.
    MatchFound {
        /// The ticket.
        ticket: TicketId,
        /// The claim this confirms.
        claim: String,
        /// The room.
        room: RoomId,
        /// Its game.
        game: GameName,
        /// Everyone matched.
        players: Vec<PlayerId>,
    },
    /// The claimed match fell through; the ticket is queued again.
    Release {
        /// The ticket.
        ticket: TicketId,
        /// The claim released.
        claim: String,
    },
    /// The player's room was closed for good (it kept failing, or could not be restarted): the
    /// session forgets it, then tells the player why. Cluster protocol 3 and later.
    RoomClosed {
        /// The room.
        room: RoomId,
        /// Why, for the player's `error` message.
        why: String,
    },
    /// A room revived after its node died holds the player's seat, and the player's session died
    /// with that node: a session of the player that holds no seat (the client reconnected here)
    /// takes it back. Sent to every reachable node, as the room cannot know where the player
    /// reconnected. Cluster protocol 4 and later.
    SeatWaiting {
        /// The room.
        room: RoomId,
        /// Where it lives now.
        at: Location,
    },
}

/// What one attempt of a room operation on another node came to.
#[derive(Debug)]
pub enum Hop {
    /// The room answered.
    Done(OpResult),
    /// The node no longer hosts the room; it lives at this location now.
    Moved(Location),
    /// The node is gone or cut off (before or while the request waited).
    Unreachable,
    /// The node did not answer in time.
    TimedOut,
}

/// One tick's `state` of a realtime room, for the players of one node: the state object once,
/// and each player's `ack`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TickState {
    /// The room.
    pub room: RoomId,
    /// The tick.
    pub tick: u64,
    /// The `state` object, JSON.
    pub state: String,
    /// The players and the highest input `seq` applied for each.
    pub acks: Vec<(PlayerId, u64)>,
}

impl TickState {
    /// Each player's `state` frame.
    pub fn frames(&self) -> impl Iterator<Item = (&PlayerId, Outbound)> {
        let room = serde_json::to_string(self.room.as_str()).unwrap_or_default();
        self.acks.iter().map(move |(p, ack)| {
            (
                p,
                warren_protocol::state_frame(&room, self.tick, *ack, &self.state),
            )
        })
    }
}

/// A player to seat in a new room: id, display name, node of the session.
pub type SeatPlan = (PlayerId, String, NodeId);

/// A room's refusal of an operation, wherever the room is hosted: the protocol's error code and a
/// message for the player. It crosses nodes; its layout (code, then message) is the one the
/// cluster protocol has always carried.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{code:?}: {message}")]
pub struct RoomError {
    /// The error code the player gets.
    pub code: ErrorCode,
    /// What went wrong, for the player.
    pub message: String,
}

impl RoomError {
    /// A refusal with this code and message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// Whether it says the room does not exist (any more).
    pub fn is_not_found(&self) -> bool {
        self.code == ErrorCode::NotFound
    }
}

/// Why a room could not be adopted (handed over, or revived from its replica). It crosses nodes
/// as its message, the layout the cluster protocol has always carried.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct AdoptError {
    /// What went wrong.
    pub message: String,
}

impl AdoptError {
    /// An error with this message.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }

    /// The answer of a draining node to a room moved to it: several nodes draining at once (a
    /// scale-in) pick each other before they hear of each other's drain.
    pub fn draining() -> Self {
        Self::new(DRAINING)
    }

    /// Whether the target refused because it drains (the mover tries another node).
    pub fn is_draining(&self) -> bool {
        self.message == DRAINING
    }
}

/// [`AdoptError::draining`]'s message (it crosses nodes as its text).
const DRAINING: &str = "the node is draining: it takes no room";

/// Why a matchmade room could not be created on a node. It crosses nodes as its message, the
/// layout the cluster protocol has always carried.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct CreateError {
    /// What went wrong.
    pub message: String,
}

impl CreateError {
    /// An error with this message.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }
}

/// The answer to a [`RoomOp`].
pub type OpResult = Result<(), RoomError>;

/// A boxed future, as trait objects need.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// The other nodes, as the actors see them.
pub trait Peers: Send + Sync + 'static {
    /// Sends frames to players whose sessions live on `node`, in one message.
    fn deliver(&self, node: &NodeId, frames: Vec<(PlayerId, Outbound)>);
    /// Sends the same frame to several players whose sessions live on `node`: it crosses once.
    fn deliver_same(&self, node: &NodeId, frame: Outbound, players: Vec<PlayerId>) {
        let frames = players.into_iter().map(|p| (p, frame.clone())).collect();
        self.deliver(node, frames);
    }
    /// Sends a realtime room's `state` of one tick to its players whose sessions live on `node`:
    /// the state crosses once, and that node writes each player's frame with its `ack`.
    fn deliver_state(&self, node: &NodeId, state: TickState) {
        let frames = state.frames().map(|(p, f)| (p.clone(), f)).collect();
        self.deliver(node, frames);
    }
    /// Carries an operation to the room on `node` (not this node) once: the room's answer, or
    /// where it went. The [`crate::router`] decides what to do next.
    fn send_op(&self, node: &NodeId, room: &RoomId, op: RoomOp) -> BoxFuture<Hop>;
    /// The node hosting `room`, asked of every other reachable node (the highest epoch wins).
    fn where_is(&self, room: &RoomId) -> BoxFuture<Option<Location>>;
    /// Whether requests can be sent to `node` now (a reachable member this node is linked to).
    fn linked(&self, node: &NodeId) -> bool;
    /// Sends an `input` without `rid` to a room on another node, one way: it reaches the room
    /// ahead of the player's later operations there, and its errors are pushed to the player.
    /// Gives the input back when `node` cannot take it (unreachable, or of an older build): the
    /// router runs it as an operation then. `home` is the node of the player's session, where
    /// errors go (another node's, for an input this node forwards).
    fn send_input(
        &self,
        _node: &NodeId,
        _room: &RoomId,
        _home: &NodeId,
        input: QueuedInput,
    ) -> Result<(), QueuedInput> {
        Err(input)
    }
    /// Open public rooms hosted on every other reachable node.
    fn list_rooms(&self, game: Option<GameName>) -> BoxFuture<Vec<RoomSummary>>;
    /// The node owning the pool with ring key `key`: `None` while no node is ready.
    fn pool_owner(&self, key: &str) -> Option<NodeId>;
    /// Ready, reachable nodes (this one included when ready) and the rooms each hosts.
    fn candidates(&self) -> Vec<Candidate>;
    /// Whether `node` is a reachable member.
    fn reachable(&self, node: &NodeId) -> bool;
    /// Sends a pool message to `node`; false when it is not reachable.
    fn pool(&self, node: &NodeId, msg: PoolWire) -> bool;
    /// Tells the session of `player`, which lives on `node`.
    fn note(&self, node: &NodeId, player: PlayerId, note: SessionNote);
    /// Asks the session of `player` on `node` to claim `ticket` for the match `claim`; false when
    /// it refuses, is gone or does not answer.
    fn claim(
        &self,
        node: &NodeId,
        player: PlayerId,
        ticket: TicketId,
        claim: String,
    ) -> BoxFuture<bool>;
    /// Tells the sessions of `players` on every other reachable node that `room`, now at `at`,
    /// holds their seats ([`SessionNote::SeatWaiting`]).
    fn seat_waiting(&self, room: &RoomId, at: &Location, players: &[PlayerId]);
    /// Tells every other reachable node where a room lives now.
    fn announce(&self, room: RoomId, to: Location);
    /// The room holding `player`'s seat on any other reachable node, and that node.
    fn find_seat(&self, player: PlayerId) -> BoxFuture<Option<(RoomId, NodeId)>>;
    /// Hands a frozen room to `node`, which hosts it from `snapshot` at `epoch`.
    fn adopt(
        &self,
        node: &NodeId,
        room: RoomId,
        epoch: u64,
        snapshot: Vec<u8>,
    ) -> BoxFuture<Result<(), AdoptError>>;
    /// Creates a private room of `game` on `node` with these players seated.
    fn create_room(
        &self,
        node: &NodeId,
        game: GameName,
        players: Vec<SeatPlan>,
    ) -> BoxFuture<Result<RoomId, CreateError>>;
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
