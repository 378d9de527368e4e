//! Server → client messages as a client reads them: owned values that deserialize from the JSON
//! text frames the server sends ([`crate::ServerMsg`], `ok`, `error` and `state`). The typed
//! client (warren-client) and tools read frames with these.
//!
//! Additions to the protocol are allowed (PROTOCOL.md): a message of a type this build does not
//! know reads as [`ServerMessage::Unknown`], and fields it does not know are ignored.

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::codes::ErrorCode;
use crate::ids::{GameName, NodeId, PlayerId, RoomId, SessionId, TicketId};
use crate::server::PlayerView;

/// The first message of every connection.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Welcome {
    /// The session.
    pub session: SessionId,
    /// `sub` of the token.
    pub player: PlayerId,
    /// Display name.
    pub name: String,
    /// The node serving the connection.
    pub node: NodeId,
    /// Resume token for the next connection.
    pub resume: String,
    /// Whether this connection resumed an earlier one (the player keeps its seat).
    pub resumed: bool,
    /// The seat is being looked for while the cluster recovers a node that died: one
    /// [`ServerMessage::RecoveryDone`] follows.
    #[serde(default)]
    pub recovering: bool,
    /// The server pings this often.
    pub heartbeat_ms: u64,
}

/// One message from the server.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// First message of every connection.
    Welcome(Welcome),
    /// A request with this `rid` succeeded; `fields` holds what the `ok` carries (`room`,
    /// `ticket`, `rooms`, `server_time_ms`).
    Ok {
        /// The request's id.
        rid: u64,
        /// Everything else the `ok` carries.
        #[serde(flatten)]
        fields: Map<String, Value>,
    },
    /// A request failed (with its `rid`), or an error without a request (a push).
    Error {
        /// The request's id, when the error answers one.
        #[serde(default)]
        rid: Option<u64>,
        /// What went wrong.
        code: ErrorCode,
        /// Human-readable detail.
        message: String,
    },
    /// A full resync of a room.
    RoomState {
        /// The room.
        room: RoomId,
        /// Its game.
        game: GameName,
        /// Version of the last event.
        version: u64,
        /// Seats.
        players: Vec<PlayerView>,
        /// The game's state.
        state: Value,
        /// The node hosting the room (absent from servers before it was added).
        #[serde(default)]
        node: Option<NodeId>,
    },
    /// One change of a room.
    RoomEvent {
        /// The room.
        room: RoomId,
        /// Version after this event.
        version: u64,
        /// `{"kind": …}`.
        event: Value,
    },
    /// Something the room's game told this player only; no `version`.
    RoomMessage {
        /// The room.
        room: RoomId,
        /// `{"kind": …}`.
        message: Value,
    },
    /// A realtime tick.
    State {
        /// The room.
        room: RoomId,
        /// Tick number.
        tick: u64,
        /// The highest `seq` of this player's inputs the tick applied.
        ack: u64,
        /// The game's state.
        state: Value,
    },
    /// A chat line in the room.
    Chat {
        /// The room.
        room: RoomId,
        /// Who said it.
        player: PlayerId,
        /// Their display name.
        name: String,
        /// What they said.
        text: String,
    },
    /// Matchmaking seated the player; a `room_state` follows.
    MatchFound {
        /// The player's ticket.
        ticket: TicketId,
        /// The room.
        room: RoomId,
        /// Its game.
        game: GameName,
        /// Every matched player.
        players: Vec<PlayerId>,
    },
    /// The end of the seat search a `welcome` with `recovering` started.
    RecoveryDone {
        /// The room holding the seat again, or `None`.
        room: Option<RoomId>,
    },
    /// A message type this build does not know.
    #[serde(other)]
    Unknown,
}

impl ServerMessage {
    /// Reads one text frame.
    pub fn decode(text: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::{ServerMsg, encode, error_frame, ok_frame, state_frame};

    fn read(frame: &str) -> ServerMessage {
        ServerMessage::decode(frame).unwrap()
    }

    #[test]
    fn every_server_frame_reads_back() {
        let (session, player, node) = ("s1".into(), "p".into(), "n1".into());
        let welcome = encode(&ServerMsg::Welcome {
            session: &session,
            player: &player,
            name: "P",
            node: &node,
            resume: "tok",
            resumed: true,
            recovering: false,
            heartbeat_ms: 15000,
        });
        let ServerMessage::Welcome(w) = read(&welcome) else {
            panic!("{welcome}");
        };
        assert_eq!(
            (w.player.as_str(), w.resumed, w.recovering),
            ("p", true, false)
        );

        let room: RoomId = "n1.r".into();
        let game: GameName = "dice".into();
        let players = vec![PlayerView {
            player: "p".into(),
            name: "P".into(),
            seat: 0,
            connected: true,
            ready: false,
        }];
        let state = serde_json::json!({"phase": "waiting"});
        let raw = serde_json::value::to_raw_value(&state).unwrap();
        let rs = encode(&ServerMsg::RoomState {
            room: &room,
            game: &game,
            version: 4,
            players: &players,
            state: &raw,
            node: &"n1".into(),
        });
        assert_eq!(
            read(&rs),
            ServerMessage::RoomState {
                room: room.clone(),
                game: game.clone(),
                version: 4,
                players: players.clone(),
                state: state.clone(),
                node: Some("n1".into()),
            }
        );
        let event = serde_json::json!({"kind": "player_ready", "player": "p"});
        let ev = encode(&ServerMsg::RoomEvent {
            room: &room,
            version: 5,
            event: &event,
        });
        assert!(matches!(
            read(&ev),
            ServerMessage::RoomEvent { version: 5, .. }
        ));
        let message = serde_json::json!({"kind": "hand", "cards": ["7H"]});
        let m = encode(&ServerMsg::RoomMessage {
            room: &room,
            message: &message,
        });
        assert_eq!(
            read(&m),
            ServerMessage::RoomMessage {
                room: room.clone(),
                message: message.clone()
            }
        );
        let chat = encode(&ServerMsg::Chat {
            room: &room,
            player: &player,
            name: "P",
            text: "hi",
        });
        assert!(matches!(read(&chat), ServerMessage::Chat { .. }));
        let ticket: TicketId = "t1".into();
        let found = encode(&ServerMsg::MatchFound {
            ticket: &ticket,
            room: &room,
            game: &game,
            players: std::slice::from_ref(&player),
        });
        assert!(matches!(read(&found), ServerMessage::MatchFound { .. }));
        let done = encode(&ServerMsg::RecoveryDone { room: None });
        assert_eq!(read(&done), ServerMessage::RecoveryDone { room: None });

        let mut fields = Map::new();
        fields.insert("room".into(), Value::from("n1.r"));
        let ok = ok_frame(3, fields.clone());
        assert_eq!(read(&ok), ServerMessage::Ok { rid: 3, fields });
        let err = error_frame(Some(4), ErrorCode::RoomFull, "full");
        assert_eq!(
            read(&err),
            ServerMessage::Error {
                rid: Some(4),
                code: ErrorCode::RoomFull,
                message: "full".into()
            }
        );
        let push = error_frame(None, ErrorCode::Internal, "gone");
        assert!(matches!(
            read(&push),
            ServerMessage::Error { rid: None, .. }
        ));
        let st = state_frame("\"n1.r\"", 7, 2, r#"{"players":{}}"#);
        assert!(matches!(
            read(&st),
            ServerMessage::State {
                tick: 7,
                ack: 2,
                ..
            }
        ));
    }

    #[test]
    fn additions_to_the_protocol_read_without_error() {
        assert_eq!(
            read(r#"{"type":"from_the_future","x":1}"#),
            ServerMessage::Unknown
        );
        let w = read(
            r#"{"type":"welcome","session":"s","player":"p","name":"p","node":"n","resume":"r","resumed":false,"heartbeat_ms":1,"extra":true}"#,
        );
        assert!(matches!(
            w,
            ServerMessage::Welcome(Welcome {
                recovering: false,
                ..
            })
        ));
    }
}
