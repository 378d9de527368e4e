//! Server → client messages, encoded to JSON text once and shared between recipients.

use bytestring::ByteString;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::codes::ErrorCode;
use crate::ids::{GameName, NodeId, PlayerId, RoomId, SessionId, TicketId};

/// One encoded text frame on its way to a client. Cloning it shares the bytes.
pub type Outbound = ByteString;

/// One seat of a room as clients see it.
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct PlayerView {
    /// The seated player.
    pub player: PlayerId,
    /// Display name.
    pub name: String,
    /// Seat index, from 0.
    pub seat: u32,
    /// Whether the player has a live connection.
    pub connected: bool,
    /// Whether the player sent `ready`.
    pub ready: bool,
}

/// One entry of `list_rooms`.
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct RoomSummary {
    /// The room.
    pub room: RoomId,
    /// Its game.
    pub game: GameName,
    /// Seated players.
    pub players: u32,
    /// Seats in all.
    pub seats: u32,
}

/// Server messages other than `ok`, `error` and `state`, which have their own encoders.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMsg<'a> {
    /// First message of every connection.
    Welcome {
        /// The connection.
        session: &'a SessionId,
        /// `sub` of the token.
        player: &'a PlayerId,
        /// Display name.
        name: &'a str,
        /// The node serving the connection.
        node: &'a NodeId,
        /// Resume token for the next connection.
        resume: &'a str,
        /// Whether this connection resumed an earlier one.
        resumed: bool,
        /// The resume token named a session of another node that is gone, and no room holds the
        /// player's seat yet: the seat is being looked for while the cluster recovers that node's
        /// rooms, and one `recovery_done` follows. Sent only when true.
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        recovering: bool,
        /// Ping interval.
        heartbeat_ms: u64,
    },
    /// The end of the seat search that a `welcome` with `recovering` started: `room` holds the
    /// player's seat again (its `room_state` follows), or is null when no room did in time.
    RecoveryDone {
        /// The room, if the seat was found.
        room: Option<&'a RoomId>,
    },
    /// A full resync of a room.
    RoomState {
        /// The room.
        room: &'a RoomId,
        /// Its game.
        game: &'a GameName,
        /// Version of the last event.
        version: u64,
        /// Seats.
        players: &'a [PlayerView],
        /// The game's state object, as this player sees it (already-encoded JSON).
        state: &'a serde_json::value::RawValue,
        /// The node hosting the room as it sends this state (an addition to the contract: a
        /// room keeps its id when it moves).
        node: &'a NodeId,
    },
    /// One change of a room.
    RoomEvent {
        /// The room.
        room: &'a RoomId,
        /// Version after this event.
        version: u64,
        /// `{"kind": ...}`.
        event: &'a Value,
    },
    /// Something a room's game told this player only (an addition to the contract). Not a
    /// `room_event`: it has no `version`.
    RoomMessage {
        /// The room.
        room: &'a RoomId,
        /// `{"kind": ...}`.
        message: &'a Value,
    },
    /// A chat line.
    Chat {
        /// The room.
        room: &'a RoomId,
        /// Who said it.
        player: &'a PlayerId,
        /// Their display name.
        name: &'a str,
        /// What they said.
        text: &'a str,
    },
    /// Matchmaking seated the player.
    MatchFound {
        /// The player's ticket.
        ticket: &'a TicketId,
        /// The room they were seated in.
        room: &'a RoomId,
        /// Its game.
        game: &'a GameName,
        /// Every matched player.
        players: &'a [PlayerId],
    },
}

/// Encodes a server message.
pub fn encode(msg: &ServerMsg<'_>) -> Outbound {
    // Serializing these types cannot fail: every map key is a string.
    ByteString::from(serde_json::to_string(msg).unwrap_or_default())
}

/// `{"type":"ok","rid":..,...fields}`.
pub fn ok_frame(rid: u64, fields: Map<String, Value>) -> Outbound {
    let mut obj = Map::with_capacity(fields.len() + 2);
    obj.insert("type".into(), Value::from("ok"));
    obj.insert("rid".into(), Value::from(rid));
    obj.extend(fields);
    ByteString::from(Value::Object(obj).to_string())
}

/// `{"type":"error","rid":..,"code":..,"message":..}`; `rid` only when the request had one.
pub fn error_frame(rid: Option<u64>, code: ErrorCode, message: &str) -> Outbound {
    #[derive(Serialize)]
    struct Error<'a> {
        r#type: &'static str,
        #[serde(skip_serializing_if = "Option::is_none")]
        rid: Option<u64>,
        code: ErrorCode,
        message: &'a str,
    }
    let e = Error {
        r#type: "error",
        rid,
        code,
        message,
    };
    ByteString::from(serde_json::to_string(&e).unwrap_or_default())
}

/// A realtime tick for one recipient. `room_json` and `state_json` are already-encoded JSON, shared
/// by every recipient of the tick: only `ack` differs between them.
pub fn state_frame(room_json: &str, tick: u64, ack: u64, state_json: &str) -> Outbound {
    let mut s = String::with_capacity(state_json.len() + room_json.len() + 64);
    s.push_str(r#"{"type":"state","room":"#);
    s.push_str(room_json);
    s.push_str(r#","tick":"#);
    s.push_str(itoa(tick).as_str());
    s.push_str(r#","ack":"#);
    s.push_str(itoa(ack).as_str());
    s.push_str(r#","state":"#);
    s.push_str(state_json);
    s.push('}');
    ByteString::from(s)
}

fn itoa(n: u64) -> String {
    n.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_frame_is_valid_json() {
        let f = state_frame("\"r1\"", 3, 9, r#"{"players":{}}"#);
        let v: Value = serde_json::from_str(&f).unwrap();
        assert_eq!(v["type"], "state");
        assert_eq!(v["ack"], 9);
        assert_eq!(v["tick"], 3);
        assert_eq!(v["room"], "r1");
    }

    #[test]
    fn welcome_says_recovering_only_when_true() {
        let (session, player, node) = ("s1".into(), "p".into(), "n1".into());
        let welcome = |recovering| {
            let f = encode(&ServerMsg::Welcome {
                session: &session,
                player: &player,
                name: "p",
                node: &node,
                resume: "t",
                resumed: false,
                recovering,
                heartbeat_ms: 15000,
            });
            serde_json::from_str::<Value>(&f).unwrap()
        };
        assert!(welcome(false).get("recovering").is_none());
        assert_eq!(welcome(true)["recovering"], true);
        let room = RoomId::from("n2.r");
        let done: Value =
            serde_json::from_str(&encode(&ServerMsg::RecoveryDone { room: Some(&room) })).unwrap();
        assert_eq!(
            done,
            serde_json::json!({"type":"recovery_done","room":"n2.r"})
        );
        let none: Value =
            serde_json::from_str(&encode(&ServerMsg::RecoveryDone { room: None })).unwrap();
        assert_eq!(
            none,
            serde_json::json!({"type":"recovery_done","room":null})
        );
    }

    #[test]
    fn error_without_rid_has_no_rid_field() {
        let v: Value =
            serde_json::from_str(&error_frame(None, ErrorCode::BadRequest, "x")).unwrap();
        assert!(v.get("rid").is_none());
        assert_eq!(v["code"], "bad_request");
    }
}
