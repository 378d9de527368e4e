//! What crosses between nodes: Warren's own envelope (protocol version + postcard bytes) inside one
//! ractor message type per remotable actor, so Warren decodes, versions, counts and logs failures
//! itself instead of relying on ractor to drop what it cannot read.

use ractor::BytesConvertable;
use serde::{Deserialize, Serialize};
use warren_actors::node::Location;
use warren_actors::remote::{
    AdoptError, CreateError, OpResult, PoolWire, RoomOp, SeatPlan, SessionNote, TickState,
};
use warren_protocol::{GameName, JsonObject, PlayerId, RoomId, RoomSummary, TicketId};

/// Version of the cluster wire format. Nodes exchange it in every envelope, and a node sends a
/// kind only to peers whose protocol has it.
/// - 1: every kind up to `HostedAt`.
/// - 2: `Input`, a realtime input sent one way.
/// - 3: the `RoomClosed` session note.
/// - 4: the `SeatWaiting` session note.
/// - 5: `DeliverSame` and `State`: a frame, or a tick's state, crosses to a node once for all of
///   its players.
/// - 6: heartbeats end with a [`HeartbeatTail`]: the games the node runs and the state versions
///   each restores, so rooms only go where they can be restored.
/// - 7: after the tail, the sender's incarnation (a number drawn when its process started): a
///   node killed and started again under the same id faster than the failure timeout is seen as
///   a new process, and its predecessor's rooms are adopted from their replicas.
/// - 8: `RoomOp::GraceOver`: a session's grace ended, and its seat goes only if no session on
///   another node has taken it since; `PoolWire::Park`: a ticket whose player its node sent away
///   leaves its pool, which keeps its place for the player's next ticket.
/// - 9: `ReplicateFrom`: snapshots carry the incarnation of the process that sent them.
/// - 10: `AdoptFrom`: a room's move carries the incarnation of the process that froze it, and the
///   target refuses a move from a process it does not see as that node's current one.
/// - 11: membership on SWIM ([`crate::swim`]): `Swim` carries foca's messages, `SwimStatus` a
///   node's [`SwimStatus`] sent directly (`SwimAsk` asks for it), and `SwimVia` passes SWIM's bytes on through a node linked to their
///   receiver. Nodes of this protocol send no heartbeats to each
///   other; they still heartbeat the nodes of older protocols (a rolling upgrade), which they
///   tell apart by the group they join ([`crate::membership::swim_group`]).
pub const CLUSTER_PROTOCOL: u32 = 11;

/// The protocol that added [`Body::Swim`] and [`Body::SwimStatus`].
pub const PROTO_SWIM: u32 = 11;

/// The protocol that added [`Body::AdoptFrom`].
pub const PROTO_ADOPT_INCARNATION: u32 = 10;

/// The protocol that added [`Body::ReplicateFrom`].
pub const PROTO_REPLICA_INCARNATION: u32 = 9;

/// The protocol that added [`RoomOp::GraceOver`] and [`PoolWire::Park`].
pub const PROTO_GRACE_OVER: u32 = 8;

/// The protocol whose heartbeats end with the sender's incarnation.
pub const PROTO_INCARNATION: u32 = 7;

/// The protocol whose heartbeats carry a [`HeartbeatTail`].
pub const PROTO_GAMES: u32 = 6;

/// What a heartbeat of protocol 6 appends after its envelope. A build of an older protocol reads
/// the envelope and ignores the rest (postcard stops after the fields it expects), and a node that
/// hears a heartbeat without it takes the sender to restore version 1 of every game
/// ([`warren_actors::game::node_reads`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeartbeatTail {
    /// Games this node runs, each with the state versions it restores.
    pub games: warren_actors::game::GameVersions,
}

/// The protocol that added [`Body::Input`].
pub const PROTO_INPUT: u32 = 2;

/// The protocol that added [`SessionNote::RoomClosed`].
pub const PROTO_ROOM_CLOSED: u32 = 3;

/// The protocol that added [`SessionNote::SeatWaiting`].
pub const PROTO_SEAT_WAITING: u32 = 4;

/// The protocol that added [`Body::DeliverSame`] and [`Body::State`].
pub const PROTO_FANOUT: u32 = 5;

/// A remotable actor's message: one postcard-encoded [`Envelope`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wire(pub Vec<u8>);

impl BytesConvertable for Wire {
    fn into_bytes(self) -> Vec<u8> {
        self.0
    }

    fn from_bytes(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }
}

/// The envelope every cross-node message travels in.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// [`CLUSTER_PROTOCOL`] of the sender.
    pub proto: u32,
    /// The message.
    pub body: Body,
}

/// Messages of the membership protocol.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Body {
    /// Local timer: send heartbeats and re-evaluate peers.
    Tick,
    /// A peer's periodic status.
    Heartbeat(NodeStatus),
    /// Run an operation on a room hosted by the receiver; answer with `OpReply`.
    RoomOp {
        /// Correlation id, echoed in the reply.
        corr: u64,
        /// Node to answer.
        from: String,
        /// The room.
        room: RoomId,
        /// The operation.
        op: RoomOp,
    },
    /// The answer to a `RoomOp`.
    OpReply {
        /// Correlation id of the request.
        corr: u64,
        /// Its result.
        result: OpResult,
    },
    /// Frames for players whose sessions live on the receiver, batched by the sending room.
    Deliver {
        /// Player and JSON text frame.
        frames: Vec<(PlayerId, String)>,
    },
    /// List the receiver's open public rooms; answer with `Rooms`.
    ListRooms {
        /// Correlation id.
        corr: u64,
        /// Node to answer.
        from: String,
        /// Only rooms of this game.
        game: Option<GameName>,
    },
    /// The answer to `ListRooms`.
    Rooms {
        /// Correlation id of the request.
        corr: u64,
        /// Open public rooms.
        rooms: Vec<RoomSummary>,
    },
    /// The answer to `RoomOp` for a room that moved: ask its new node.
    Moved {
        /// Correlation id of the request.
        corr: u64,
        /// Where the room lives now.
        to: Location,
    },
    /// A room lives at `to` now (sent to every node when a room moves).
    Located {
        /// The room.
        room: RoomId,
        /// Where it lives.
        to: Location,
    },
    /// Host this frozen room from its snapshot at `epoch`; answer with `Adopted`.
    Adopt {
        /// Correlation id.
        corr: u64,
        /// Node to answer.
        from: String,
        /// The room.
        room: RoomId,
        /// Its epoch on the receiver.
        epoch: u64,
        /// Its snapshot (postcard).
        snapshot: Vec<u8>,
    },
    /// The answer to `Adopt`.
    Adopted {
        /// Correlation id of the request.
        corr: u64,
        /// Whether the room runs on the receiver now, or why not.
        result: Result<(), AdoptError>,
    },
    /// Which room hosted on the receiver holds this player's seat? Answer with `Seat`.
    FindSeat {
        /// Correlation id.
        corr: u64,
        /// Node to answer.
        from: String,
        /// The player.
        player: PlayerId,
    },
    /// The answer to `FindSeat`.
    Seat {
        /// Correlation id of the request.
        corr: u64,
        /// The room, if the receiver hosts one with the player seated.
        room: Option<RoomId>,
    },
    /// For the receiver's matchmaking pools.
    Pool(PoolWire),
    /// For the session of a player connected to the receiver.
    Note {
        /// The player.
        player: PlayerId,
        /// What to tell the session.
        note: SessionNote,
    },
    /// Ask the session of a player connected to the receiver to claim a ticket; answer with
    /// `Claimed`.
    Claim {
        /// Correlation id.
        corr: u64,
        /// Node to answer.
        from: String,
        /// The player.
        player: PlayerId,
        /// The ticket.
        ticket: TicketId,
        /// The match.
        claim: String,
    },
    /// The answer to `Claim`.
    Claimed {
        /// Correlation id of the request.
        corr: u64,
        /// Whether the session claimed the ticket.
        ok: bool,
    },
    /// Create a private room on the receiver with these players seated; answer with `Created`.
    CreateRoom {
        /// Correlation id.
        corr: u64,
        /// Node to answer.
        from: String,
        /// Its game.
        game: GameName,
        /// Players to seat.
        players: Vec<SeatPlan>,
    },
    /// The answer to `CreateRoom`: the room's id, or why it could not be created.
    Created {
        /// Correlation id of the request.
        corr: u64,
        /// The result.
        result: Result<RoomId, CreateError>,
    },
    // New kinds go last, always: a kind's index is its tag on the wire, and nodes of the previous
    // build keep reading the kinds they know (an unknown tag is a counted decode error).
    /// The latest snapshots of rooms `host` hosts, for the receiver, their backup, to keep.
    Replicate {
        /// The hosting node.
        host: String,
        /// The snapshots.
        rooms: Vec<Replica>,
    },
    /// The receiver is no longer the backup of these rooms of `host` (they moved, closed, or got
    /// another backup): drop their snapshots.
    Unreplicate {
        /// The hosting node.
        host: String,
        /// The rooms.
        rooms: Vec<RoomId>,
    },
    /// The sender drained and is leaving the cluster: it no longer counts towards the cluster's
    /// size (for the majority rule) and is not shown as unreachable.
    Leaving {
        /// The node leaving.
        node: String,
    },
    /// Does the receiver host this room? Answer with `HostedAt` (a node that rejoined after its
    /// rooms moved on asks this for ids that name it).
    WhereIs {
        /// Correlation id.
        corr: u64,
        /// Node to answer.
        from: String,
        /// The room.
        room: RoomId,
    },
    /// The answer to `WhereIs`: the receiver and the room's epoch there, if it hosts the room.
    HostedAt {
        /// Correlation id of the request.
        corr: u64,
        /// Where the room lives, if on the receiver.
        at: Option<Location>,
    },
    /// An `input` without `rid` for a room hosted by the receiver, sent one way (protocol 2):
    /// its errors go to the player like those of any room event. The receiver takes it in
    /// arrival order, ahead of the player's later requests.
    Input {
        /// The room.
        room: RoomId,
        /// The player.
        player: PlayerId,
        /// The node of the player's session, where errors go.
        home: String,
        /// Its `seq`.
        seq: Option<u64>,
        /// Its `data`, the JSON object the client sent.
        data: JsonObject,
    },
    /// One frame for several players whose sessions live on the receiver (protocol 5).
    DeliverSame {
        /// JSON text frame.
        frame: String,
        /// Its recipients.
        players: Vec<PlayerId>,
    },
    /// One tick's `state` of a realtime room for its players whose sessions live on the receiver,
    /// which writes each player's frame with its `ack` (protocol 5).
    State(TickState),
    /// `Replicate`, with the incarnation of the host's process that sent the snapshots
    /// (protocol 9): a backup that hears the host's next incarnation adopts only the snapshots
    /// its previous ones sent, never those of the process that runs the rooms now.
    ReplicateFrom {
        /// The hosting node.
        host: String,
        /// Its incarnation when it sent these.
        incarnation: u64,
        /// The snapshots.
        rooms: Vec<Replica>,
    },
    /// `Adopt`, with the incarnation of the mover's process that froze the room (protocol 10;
    /// answered with `Adopted`). A move sent by a process that has since been replaced (its node
    /// was cut off, dropped its rooms and drew a new incarnation), and delivered late, is
    /// refused: the majority may have adopted the room from its replica meanwhile.
    AdoptFrom {
        /// Correlation id.
        corr: u64,
        /// Node to answer.
        from: String,
        /// The mover's incarnation when it froze the room.
        incarnation: u64,
        /// The room.
        room: RoomId,
        /// Its epoch on the receiver.
        epoch: u64,
        /// Its snapshot (postcard).
        snapshot: Vec<u8>,
    },
    /// SWIM membership bytes (foca's), for the receiver's membership actor (protocol 11).
    Swim(Vec<u8>),
    /// The sender's status ([`SwimStatus`] inside SWIM's status item), sent directly to a member
    /// that came up after the status went out on SWIM's dissemination (protocol 11).
    SwimStatus(Vec<u8>),
    /// Local timer: SWIM's timer `key` is due (a key this node did not set is ignored).
    SwimTimer(u64),
    /// Node `from` has the receiver among SWIM's members but not its status: answer with
    /// `SwimStatus` (protocol 11; the direct status sent when a member comes up is lost when no
    /// link to it is up yet).
    SwimAsk {
        /// The node asking.
        from: String,
    },
    /// SWIM bytes for node `to`, sent through the receiver because the sender has no link to
    /// `to` yet (a node that just joined links to its members one by one): the receiver passes
    /// them on if it has one (protocol 11).
    SwimVia {
        /// The node they are for.
        to: String,
        /// foca's bytes.
        bytes: Vec<u8>,
    },
}

/// What a node of protocol 11 says of itself on SWIM's dissemination: what its heartbeats said.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SwimStatus {
    /// Its [`CLUSTER_PROTOCOL`].
    pub proto: u32,
    /// Its status (`known` is empty: SWIM spreads the members).
    pub status: NodeStatus,
    /// The games it runs, with the state versions each restores.
    pub games: warren_actors::game::GameVersions,
    /// Its incarnation (see [`PROTO_INCARNATION`]).
    pub incarnation: u64,
}

/// One room's snapshot, as it travels to its backup.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Replica {
    /// The room.
    pub room: RoomId,
    /// Its epoch on its host.
    pub epoch: u64,
    /// Its snapshot (postcard `RoomSnapshot`).
    pub snapshot: Vec<u8>,
}

/// Whether a node takes new players and rooms.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum NodeState {
    /// Takes new players and rooms.
    Ready,
    /// Draining for an upgrade or scale-in.
    Draining,
}

/// What a node publishes about itself in every heartbeat.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NodeStatus {
    /// Node id.
    pub id: String,
    /// Address peers dial (`cluster.advertise`).
    pub advertise: String,
    /// Ready or draining.
    pub state: NodeState,
    /// Build version.
    pub version: String,
    /// Rooms hosted.
    pub rooms: u32,
    /// Live sessions.
    pub sessions: u32,
    /// Addresses of the members this node currently reaches, so that every node meets every
    /// other one even when its seeds name only some of them.
    pub known: Vec<String>,
}

impl Body {
    /// Its name in metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Body::Tick => "tick",
            Body::Heartbeat(_) => "heartbeat",
            Body::RoomOp { .. } => "room_op",
            Body::OpReply { .. } => "op_reply",
            Body::Deliver { .. } => "deliver",
            Body::DeliverSame { .. } => "deliver_same",
            Body::State(_) => "state",
            Body::ReplicateFrom { .. } => "replicate_from",
            Body::AdoptFrom { .. } => "adopt_from",
            Body::ListRooms { .. } => "list_rooms",
            Body::Rooms { .. } => "rooms",
            Body::Moved { .. } => "moved",
            Body::Located { .. } => "located",
            Body::Adopt { .. } => "adopt",
            Body::Adopted { .. } => "adopted",
            Body::FindSeat { .. } => "find_seat",
            Body::Seat { .. } => "seat",
            Body::Pool(_) => "pool",
            Body::Note { .. } => "note",
            Body::Claim { .. } => "claim",
            Body::Claimed { .. } => "claimed",
            Body::CreateRoom { .. } => "create_room",
            Body::Created { .. } => "created",
            Body::Replicate { .. } => "replicate",
            Body::Unreplicate { .. } => "unreplicate",
            Body::Leaving { .. } => "leaving",
            Body::WhereIs { .. } => "where_is",
            Body::HostedAt { .. } => "hosted_at",
            Body::Input { .. } => "input",
            Body::Swim(_) => "swim",
            Body::SwimStatus(_) => "swim_status",
            Body::SwimTimer(_) => "swim_timer",
            Body::SwimAsk { .. } => "swim_ask",
            Body::SwimVia { .. } => "swim_via",
        }
    }
}

impl Envelope {
    /// Encodes a body with this node's protocol version.
    pub fn encode(body: Body) -> Wire {
        // Encoding plain data into a Vec cannot fail.
        Wire(
            postcard::to_stdvec(&Envelope {
                proto: CLUSTER_PROTOCOL,
                body,
            })
            .unwrap_or_default(),
        )
    }

    /// A heartbeat: the envelope, then the tail, then the sender's incarnation.
    pub fn encode_heartbeat(status: NodeStatus, tail: &HeartbeatTail, incarnation: u64) -> Wire {
        let Wire(bytes) = Self::encode(Body::Heartbeat(status));
        let bytes = postcard::to_extend(tail, bytes).unwrap_or_default();
        Wire(postcard::to_extend(&incarnation, bytes).unwrap_or_default())
    }

    /// The incarnation a heartbeat ends with, when its sender speaks [`PROTO_INCARNATION`].
    pub fn heartbeat_incarnation(w: &Wire) -> Option<u64> {
        let (env, rest) = postcard::take_from_bytes::<Envelope>(&w.0).ok()?;
        if env.proto < PROTO_INCARNATION {
            return None;
        }
        let (_, rest) = postcard::take_from_bytes::<HeartbeatTail>(rest).ok()?;
        postcard::from_bytes(rest).ok()
    }

    /// The tail of a heartbeat, when its sender speaks [`PROTO_GAMES`].
    pub fn heartbeat_tail(w: &Wire) -> Option<HeartbeatTail> {
        let (env, rest) = postcard::take_from_bytes::<Envelope>(&w.0).ok()?;
        if env.proto < PROTO_GAMES || rest.is_empty() {
            return None;
        }
        postcard::from_bytes(rest).ok()
    }

    /// Decodes an envelope.
    pub fn decode(w: &Wire) -> Result<Envelope, postcard::Error> {
        postcard::from_bytes(&w.0)
    }

    /// Decodes an envelope for `actor`; a failure is counted and logged, never silently dropped.
    pub fn open(w: &Wire, actor: &'static str) -> Option<Envelope> {
        match Self::decode(w) {
            Ok(e) => Some(e),
            Err(e) => {
                metrics::counter!("warren_cluster_decode_errors_total", "actor" => actor)
                    .increment(1);
                tracing::warn!(actor, error = %e, bytes = w.0.len(), "undecodable cluster message dropped");
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heartbeat_round_trips_and_garbage_is_an_error() {
        let st = NodeStatus {
            id: "n1".into(),
            advertise: "127.0.0.1:7351".into(),
            state: NodeState::Draining,
            version: "0.1.0".into(),
            rooms: 3,
            sessions: 9,
            known: vec!["127.0.0.1:7352".into()],
        };
        let w = Envelope::encode(Body::Heartbeat(st.clone()));
        let back = Envelope::decode(&Wire::from_bytes(w.clone().into_bytes())).unwrap();
        assert_eq!(back.body, Body::Heartbeat(st.clone()));
        assert_eq!(back.proto, CLUSTER_PROTOCOL);
        assert!(Envelope::decode(&Wire(vec![0xff, 0xff, 0xff])).is_err());

        // Protocol 6: the games ride after the envelope. This build reads them, and the previous
        // builds' decoder reads the same bytes as a plain heartbeat.
        let tail = HeartbeatTail {
            games: vec![("eights".into(), vec![1, 2])],
        };
        let w6 = Envelope::encode_heartbeat(st.clone(), &tail, 42);
        assert_eq!(Envelope::heartbeat_tail(&w6), Some(tail.clone()));
        assert_eq!(Envelope::heartbeat_incarnation(&w6), Some(42));
        // A protocol-6 heartbeat (the tail, no incarnation) reads with its games and no incarnation.
        let bytes = postcard::to_stdvec(&Envelope {
            proto: 6,
            body: Body::Heartbeat(st.clone()),
        })
        .unwrap();
        let old6 = Wire(postcard::to_extend(&tail, bytes).unwrap());
        assert_eq!(Envelope::heartbeat_tail(&old6), Some(tail));
        assert_eq!(Envelope::heartbeat_incarnation(&old6), None);
        assert_eq!(
            Envelope::decode(&w6).unwrap().body,
            Body::Heartbeat(st.clone())
        );
        // A heartbeat without a tail (an older sender) has none.
        assert_eq!(Envelope::heartbeat_tail(&w), None);
    }

    #[test]
    fn a_room_closed_note_round_trips() {
        let body = Body::Note {
            player: "p".into(),
            note: SessionNote::RoomClosed {
                room: "n1.r".into(),
                why: "the room failed and was closed".into(),
            },
        };
        let back = Envelope::decode(&Envelope::encode(body.clone())).unwrap();
        assert_eq!(back.body, body);
    }

    #[test]
    fn a_seat_waiting_note_round_trips() {
        let body = Body::Note {
            player: "p".into(),
            note: SessionNote::SeatWaiting {
                room: "n1.r".into(),
                at: warren_actors::node::Location {
                    node: "n2".into(),
                    epoch: 3,
                },
            },
        };
        let back = Envelope::decode(&Envelope::encode(body.clone())).unwrap();
        assert_eq!(back.body, body);
    }
}

#[cfg(test)]
mod mixed_versions {
    //! A node of the previous build and one of this build in one cluster: each reads the other's
    //! messages of the kinds both know, and a kind only this build has is a clean decode error on
    //! the old node (counted and dropped), never a different message.
    use super::*;
    use warren_actors::remote::RoomOp;

    /// The previous build's envelope and its first kinds, in their order (their tags).
    mod v0 {
        use serde::{Deserialize, Serialize};
        use warren_protocol::{ErrorCode, NodeId, PlayerId, RoomId};

        /// The previous builds' answer to a room operation: a tuple, where this build has
        /// `RoomError` (same layout on the wire).
        pub(super) type OpResult = Result<(), (ErrorCode, String)>;

        #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
        pub(super) struct Envelope {
            pub(super) proto: u32,
            pub(super) body: Body,
        }

        /// The previous builds' room operation: an input's `data` was a string, where this build
        /// has `JsonObject` (same layout on the wire).
        #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
        pub(super) enum RoomOp {
            Join {
                player: PlayerId,
                name: String,
                home: NodeId,
            },
            Leave(PlayerId),
            Ready(PlayerId),
            Input {
                player: PlayerId,
                seq: Option<u64>,
                data: String,
            },
        }

        #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
        pub(super) enum Body {
            Tick,
            Heartbeat(NodeStatus),
            RoomOp {
                corr: u64,
                from: String,
                room: RoomId,
                op: RoomOp,
            },
            OpReply {
                corr: u64,
                result: OpResult,
            },
            Deliver {
                frames: Vec<(PlayerId, String)>,
            },
        }

        #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
        pub(super) enum NodeState {
            Ready,
            Draining,
        }

        #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
        pub(super) struct NodeStatus {
            pub(super) id: String,
            pub(super) advertise: String,
            pub(super) state: NodeState,
            pub(super) version: String,
            pub(super) rooms: u32,
            pub(super) sessions: u32,
            pub(super) known: Vec<String>,
        }
    }

    #[test]
    fn a_heartbeat_with_the_games_tail_reads_as_a_plain_one_on_an_older_node() {
        let st = NodeStatus {
            id: "n1".into(),
            advertise: "127.0.0.1:7351".into(),
            state: NodeState::Ready,
            version: "0.1.0".into(),
            rooms: 1,
            sessions: 2,
            known: Vec::new(),
        };
        let tail = HeartbeatTail {
            games: vec![("eights".into(), vec![1, 2])],
        };
        let w = Envelope::encode_heartbeat(st, &tail, 7);
        let old: v0::Envelope = postcard::from_bytes(&w.0).unwrap();
        assert!(matches!(old.body, v0::Body::Heartbeat(s) if s.id == "n1" && s.rooms == 1));
    }

    #[test]
    fn old_and_new_nodes_read_each_others_messages() {
        // Old → new.
        let beat = v0::Envelope {
            proto: 1,
            body: v0::Body::Heartbeat(v0::NodeStatus {
                id: "old".into(),
                advertise: "10.0.0.1:7351".into(),
                state: v0::NodeState::Draining,
                version: "0.0.9".into(),
                rooms: 4,
                sessions: 12,
                known: vec!["10.0.0.2:7351".into()],
            }),
        };
        let got = Envelope::decode(&Wire(postcard::to_stdvec(&beat).unwrap())).unwrap();
        match got.body {
            Body::Heartbeat(s) => {
                assert_eq!(
                    (s.id.as_str(), s.state, s.rooms),
                    ("old", NodeState::Draining, 4)
                );
                assert_eq!(s.version, "0.0.9");
            }
            other => panic!("read as {other:?}"),
        }
        let op = v0::Envelope {
            proto: 1,
            body: v0::Body::RoomOp {
                corr: 7,
                from: "old".into(),
                room: "old.r1".into(),
                op: v0::RoomOp::Input {
                    player: "p".into(),
                    seq: Some(3),
                    data: "{\"dx\":1}".into(),
                },
            },
        };
        let got = Envelope::decode(&Wire(postcard::to_stdvec(&op).unwrap())).unwrap();
        match &got.body {
            Body::RoomOp {
                corr: 7,
                room,
                op: RoomOp::Input { data, .. },
                ..
            } => {
                assert_eq!(room.as_str(), "old.r1");
                assert_eq!(data.as_str(), "{\"dx\":1}");
            }
            other => panic!("read as {other:?}"),
        }
        // New → old: the input's text is the string the old build reads.
        let new_op = Envelope::encode(Body::RoomOp {
            corr: 9,
            from: "new".into(),
            room: "old.r1".into(),
            op: RoomOp::Input {
                player: "p".into(),
                seq: None,
                data: JsonObject::parse("{\"dy\":2}").unwrap(),
            },
        });
        let old: v0::Envelope = postcard::from_bytes(&new_op.0).unwrap();
        assert!(
            matches!(&old.body, v0::Body::RoomOp { op: v0::RoomOp::Input { data, .. }, .. } if data == "{\"dy\":2}"),
            "{old:?}"
        );

        // New → old, for the kinds the old build knows.
        let reply = Envelope::encode(Body::OpReply {
            corr: 7,
            result: Ok(()),
        });
        let old: v0::Envelope = postcard::from_bytes(&reply.0).unwrap();
        assert_eq!(
            old.body,
            v0::Body::OpReply {
                corr: 7,
                result: Ok(())
            }
        );
        // A refusal: this build's `RoomError` is the old `(code, message)` tuple on the wire.
        let refused = Envelope::encode(Body::OpReply {
            corr: 8,
            result: Err(warren_actors::remote::RoomError::new(
                warren_protocol::ErrorCode::NotFound,
                "no such room",
            )),
        });
        let old: v0::Envelope = postcard::from_bytes(&refused.0).unwrap();
        assert_eq!(
            old.body,
            v0::Body::OpReply {
                corr: 8,
                result: Err((warren_protocol::ErrorCode::NotFound, "no such room".into()))
            }
        );
        let back = Envelope::decode(&Wire(postcard::to_stdvec(&old).unwrap())).unwrap();
        assert!(
            matches!(&back.body, Body::OpReply { result: Err(e), .. } if e.is_not_found()),
            "{back:?}"
        );
        let deliver = Envelope::encode(Body::Deliver {
            frames: vec![("p".into(), "{}".into())],
        });
        let old: v0::Envelope = postcard::from_bytes(&deliver.0).unwrap();
        assert_eq!(old.proto, CLUSTER_PROTOCOL);
        assert!(matches!(old.body, v0::Body::Deliver { .. }));

        // A kind the old build lacks is an error there, not another kind.
        for body in [
            Body::Replicate {
                host: "new".into(),
                rooms: vec![Replica {
                    room: "new.r".into(),
                    epoch: 1,
                    snapshot: vec![1, 2],
                }],
            },
            Body::Leaving { node: "new".into() },
            Body::Input {
                room: "new.r".into(),
                player: "p".into(),
                home: "new".into(),
                seq: Some(1),
                data: JsonObject::parse("{\"dx\":1,\"dy\":0}").unwrap(),
            },
            Body::DeliverSame {
                frame: "{}".into(),
                players: vec!["p".into()],
            },
            Body::State(TickState {
                room: "new.r".into(),
                tick: 1,
                state: "{}".into(),
                acks: vec![("p".into(), 3)],
            }),
            Body::ReplicateFrom {
                host: "new".into(),
                incarnation: 5,
                rooms: vec![],
            },
            Body::AdoptFrom {
                corr: 1,
                from: "new".into(),
                incarnation: 5,
                room: "new.r".into(),
                epoch: 2,
                snapshot: vec![1],
            },
        ] {
            let w = Envelope::encode(body);
            assert!(postcard::from_bytes::<v0::Envelope>(&w.0).is_err());
        }
    }
}

/// Every cluster message kind, frozen: one sample of each kind (and of each kind nested in it)
/// encodes to the bytes recorded in `wire_frozen.txt`. Postcard writes fields by position, with
/// no names and no lengths, so a node reads a message only as the layout it was built with.
/// The rule, for nodes of two builds to run side by side during an upgrade:
/// - an existing kind is never changed: no field added, removed, reordered or retyped, no variant
///   inserted before another (the variant's index is its tag);
/// - a new kind goes last in its enum, with its own `CLUSTER_PROTOCOL` number, and is sent only to
///   peers whose protocol has it ([`ClusterView::speaks`](crate::membership::ClusterView::speaks));
/// - new data for an existing kind rides after the envelope, as the heartbeat's
///   [`HeartbeatTail`] does, where older builds do not read.
///
/// A layout change fails this test. Regenerate the file (`WARREN_BLESS_WIRE=1 cargo test -p
/// warren-cluster frozen`) only for a kind added last.
#[cfg(test)]
mod frozen {
    use super::*;
    use warren_actors::remote::{PoolKey, RoomError, TicketWire};
    use warren_protocol::ErrorCode;

    fn samples() -> Vec<(&'static str, Body)> {
        let loc = Location {
            node: "n2".into(),
            epoch: 7,
        };
        let pool = PoolKey {
            game: "dice".into(),
            mode: "ranked".into(),
        };
        let ticket = TicketWire {
            id: "t1".into(),
            player: "p1".into(),
            name: "Ann".into(),
            mmr: -12,
            home: "n1".into(),
            since_ms: 1_700_000_000_000,
        };
        let data = JsonObject::parse(r#"{"dx":1}"#).unwrap();
        let op = |op: RoomOp| Body::RoomOp {
            corr: 1,
            from: "n1".into(),
            room: "n2.r1".into(),
            op,
        };
        let note = |note: SessionNote| Body::Note {
            player: "p1".into(),
            note,
        };
        vec![
            ("Tick", Body::Tick),
            (
                "Heartbeat",
                Body::Heartbeat(NodeStatus {
                    id: "n1".into(),
                    advertise: "10.0.0.1:7351".into(),
                    state: NodeState::Draining,
                    version: "0.1.0".into(),
                    rooms: 3,
                    sessions: 9,
                    known: vec!["10.0.0.2:7351".into()],
                }),
            ),
            (
                "RoomOp::Join",
                op(RoomOp::Join {
                    player: "p1".into(),
                    name: "Ann".into(),
                    home: "n1".into(),
                }),
            ),
            ("RoomOp::Leave", op(RoomOp::Leave("p1".into()))),
            ("RoomOp::Ready", op(RoomOp::Ready("p1".into()))),
            (
                "RoomOp::Input",
                op(RoomOp::Input {
                    player: "p1".into(),
                    seq: Some(4),
                    data: data.clone(),
                }),
            ),
            (
                "RoomOp::Chat",
                op(RoomOp::Chat {
                    player: "p1".into(),
                    text: "hi".into(),
                }),
            ),
            (
                "RoomOp::Disconnected",
                op(RoomOp::Disconnected {
                    player: "p1".into(),
                    home: "n1".into(),
                }),
            ),
            (
                "RoomOp::Reconnected",
                op(RoomOp::Reconnected {
                    player: "p1".into(),
                    home: "n1".into(),
                }),
            ),
            ("RoomOp::Resync", op(RoomOp::Resync("p1".into()))),
            (
                "OpReply::Ok",
                Body::OpReply {
                    corr: 2,
                    result: Ok(()),
                },
            ),
            (
                "OpReply::Err",
                Body::OpReply {
                    corr: 2,
                    result: Err(RoomError::new(ErrorCode::RoomFull, "full")),
                },
            ),
            (
                "Deliver",
                Body::Deliver {
                    frames: vec![("p1".into(), "{}".into())],
                },
            ),
            (
                "ListRooms",
                Body::ListRooms {
                    corr: 3,
                    from: "n1".into(),
                    game: Some("dice".into()),
                },
            ),
            (
                "Rooms",
                Body::Rooms {
                    corr: 3,
                    rooms: vec![RoomSummary {
                        room: "n2.r1".into(),
                        game: "dice".into(),
                        players: 1,
                        seats: 2,
                    }],
                },
            ),
            (
                "Moved",
                Body::Moved {
                    corr: 4,
                    to: loc.clone(),
                },
            ),
            (
                "Located",
                Body::Located {
                    room: "n2.r1".into(),
                    to: loc.clone(),
                },
            ),
            (
                "Adopt",
                Body::Adopt {
                    corr: 5,
                    from: "n1".into(),
                    room: "n2.r1".into(),
                    epoch: 8,
                    snapshot: vec![1, 2, 3],
                },
            ),
            (
                "Adopted",
                Body::Adopted {
                    corr: 5,
                    result: Err(AdoptError::new("no")),
                },
            ),
            (
                "FindSeat",
                Body::FindSeat {
                    corr: 6,
                    from: "n1".into(),
                    player: "p1".into(),
                },
            ),
            (
                "Seat",
                Body::Seat {
                    corr: 6,
                    room: Some("n2.r1".into()),
                },
            ),
            (
                "Pool::Enqueue",
                Body::Pool(PoolWire::Enqueue {
                    pool: pool.clone(),
                    seats: 2,
                    ticket: ticket.clone(),
                    hops: 1,
                }),
            ),
            (
                "Pool::Remove",
                Body::Pool(PoolWire::Remove {
                    pool: pool.clone(),
                    ticket: "t1".into(),
                    hops: 0,
                }),
            ),
            (
                "Pool::Handoff",
                Body::Pool(PoolWire::Handoff {
                    pool,
                    seats: 2,
                    tickets: vec![ticket],
                }),
            ),
            (
                "Note::MatchFound",
                note(SessionNote::MatchFound {
                    ticket: "t1".into(),
                    claim: "c".into(),
                    room: "n2.r1".into(),
                    game: "dice".into(),
                    players: vec!["p1".into(), "p2".into()],
                }),
            ),
            (
                "Note::Release",
                note(SessionNote::Release {
                    ticket: "t1".into(),
                    claim: "c".into(),
                }),
            ),
            (
                "Note::RoomClosed",
                note(SessionNote::RoomClosed {
                    room: "n2.r1".into(),
                    why: "failed".into(),
                }),
            ),
            (
                "Note::SeatWaiting",
                note(SessionNote::SeatWaiting {
                    room: "n2.r1".into(),
                    at: loc.clone(),
                }),
            ),
            (
                "Claim",
                Body::Claim {
                    corr: 7,
                    from: "n1".into(),
                    player: "p1".into(),
                    ticket: "t1".into(),
                    claim: "c".into(),
                },
            ),
            ("Claimed", Body::Claimed { corr: 7, ok: true }),
            (
                "CreateRoom",
                Body::CreateRoom {
                    corr: 8,
                    from: "n1".into(),
                    game: "dice".into(),
                    players: vec![("p1".into(), "Ann".into(), "n1".into())],
                },
            ),
            (
                "Created",
                Body::Created {
                    corr: 8,
                    result: Err(CreateError::new("no")),
                },
            ),
            (
                "Replicate",
                Body::Replicate {
                    host: "n2".into(),
                    rooms: vec![Replica {
                        room: "n2.r1".into(),
                        epoch: 2,
                        snapshot: vec![9],
                    }],
                },
            ),
            (
                "Unreplicate",
                Body::Unreplicate {
                    host: "n2".into(),
                    rooms: vec!["n2.r1".into()],
                },
            ),
            ("Leaving", Body::Leaving { node: "n2".into() }),
            (
                "WhereIs",
                Body::WhereIs {
                    corr: 9,
                    from: "n1".into(),
                    room: "n2.r1".into(),
                },
            ),
            (
                "HostedAt",
                Body::HostedAt {
                    corr: 9,
                    at: Some(loc),
                },
            ),
            (
                "Input",
                Body::Input {
                    room: "n2.r1".into(),
                    player: "p1".into(),
                    home: "n1".into(),
                    seq: None,
                    data,
                },
            ),
            (
                "DeliverSame",
                Body::DeliverSame {
                    frame: "{}".into(),
                    players: vec!["p1".into()],
                },
            ),
            (
                "State",
                Body::State(TickState {
                    room: "n2.r1".into(),
                    tick: 10,
                    state: "{}".into(),
                    acks: vec![("p1".into(), 3)],
                }),
            ),
            (
                "RoomOp::GraceOver",
                op(RoomOp::GraceOver {
                    player: "p1".into(),
                    home: "n1".into(),
                }),
            ),
            (
                "Pool::Park",
                Body::Pool(PoolWire::Park {
                    pool: PoolKey {
                        game: "dice".into(),
                        mode: "m".into(),
                    },
                    ticket: "t1".into(),
                    hops: 0,
                }),
            ),
            (
                "ReplicateFrom",
                Body::ReplicateFrom {
                    host: "n2".into(),
                    incarnation: 77,
                    rooms: vec![Replica {
                        room: "n2.r1".into(),
                        epoch: 2,
                        snapshot: vec![9],
                    }],
                },
            ),
            (
                "AdoptFrom",
                Body::AdoptFrom {
                    corr: 7,
                    from: "n1".into(),
                    incarnation: 77,
                    room: "n1.r1".into(),
                    epoch: 3,
                    snapshot: vec![9],
                },
            ),
            ("Swim", Body::Swim(vec![1, 2])),
            ("SwimStatus", Body::SwimStatus(vec![3])),
            ("SwimTimer", Body::SwimTimer(5)),
            ("SwimAsk", Body::SwimAsk { from: "n1".into() }),
            (
                "SwimVia",
                Body::SwimVia {
                    to: "n3".into(),
                    bytes: vec![4],
                },
            ),
        ]
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn every_kind_keeps_its_bytes() {
        // The envelope's protocol number is the part that changes with every new kind: fixed at 1.
        let lines: Vec<String> = samples()
            .into_iter()
            .map(|(name, body)| {
                let bytes = postcard::to_stdvec(&Envelope { proto: 1, body }).unwrap();
                format!("{name} {}", hex(&bytes))
            })
            .collect();
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/src/wire_frozen.txt");
        if std::env::var_os("WARREN_BLESS_WIRE").is_some() {
            std::fs::write(path, lines.join("\n") + "\n").unwrap();
            return;
        }
        let frozen = include_str!("wire_frozen.txt");
        let frozen: Vec<&str> = frozen.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            match frozen.get(i) {
                Some(old) => assert_eq!(
                    old, line,
                    "a cluster message's layout changed: nodes of the previous build can no longer \
                     read it (the rule is in wire.rs, `mod frozen`)"
                ),
                None => panic!("a new kind, `{line}`: record it with WARREN_BLESS_WIRE=1"),
            }
        }
        assert_eq!(frozen.len(), lines.len(), "a kind was removed");
    }
}
