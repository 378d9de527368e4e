//! Client → server messages, decoded once at the edge into validated values.

use std::collections::HashMap;

use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::codes::ErrorCode;
use crate::ids::{GameName, RoomId};
use crate::json::JsonObject;
use crate::text::MAX_CHAT_CHARS;

/// Longest game name a client may send (`game` of `create_room`, `list_rooms`, `queue`): longer
/// names are no game's, and are refused before they are looked up, echoed or sent to other nodes.
pub(crate) const MAX_GAME_CHARS: usize = 64;

/// Longest room id a client may send (`room` of `join_room`). Warren's ids are
/// `<node id>.r<random>` (node ids are at most 64 characters: at most 90 in all).
pub(crate) const MAX_ROOM_CHARS: usize = 128;

/// A decoded client frame: the request and its optional request id.
#[derive(Clone, Debug, PartialEq)]
pub struct ClientRequest {
    /// `rid` of the frame, echoed in the `ok`/`error` reply.
    pub rid: Option<u64>,
    /// What the client asks for.
    pub req: Request,
}

/// What a client can ask for (PROTOCOL.md "Client → server").
#[derive(Clone, Debug, PartialEq)]
pub enum Request {
    /// Create a room and take its first seat.
    CreateRoom {
        /// Registered game name.
        game: GameName,
        /// Game params, validated by the game.
        params: Map<String, Value>,
        /// Hidden from `list_rooms`.
        private: bool,
    },
    /// Take the lowest free seat of a room.
    JoinRoom {
        /// The room.
        room: RoomId,
    },
    /// Give up the seat.
    LeaveRoom,
    /// Public rooms with a free seat.
    ListRooms {
        /// Only rooms of this game.
        game: Option<GameName>,
    },
    /// Mark the player ready.
    Ready,
    /// Game input.
    Input {
        /// Game-specific payload, as the client sent it.
        data: JsonObject,
        /// Client sequence number, acknowledged by realtime games.
        seq: Option<u64>,
    },
    /// A chat line to the room.
    Chat {
        /// 1–500 characters.
        text: String,
    },
    /// Join the matchmaking pool of `(game, mode)`.
    Queue {
        /// Registered game name.
        game: GameName,
        /// Pool mode, `"default"` unless given.
        mode: String,
    },
    /// Leave the matchmaking pool.
    Unqueue,
    /// Clock probe.
    Ping,
}

impl Request {
    /// The wire `type` of the request, for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::CreateRoom { .. } => "create_room",
            Self::JoinRoom { .. } => "join_room",
            Self::LeaveRoom => "leave_room",
            Self::ListRooms { .. } => "list_rooms",
            Self::Ready => "ready",
            Self::Input { .. } => "input",
            Self::Chat { .. } => "chat",
            Self::Queue { .. } => "queue",
            Self::Unqueue => "unqueue",
            Self::Ping => "ping",
        }
    }
}

impl ClientRequest {
    /// The request as a client sends it: one JSON text frame, which [`decode_client_frame`] reads
    /// back as this request.
    pub fn encode(&self) -> String {
        let mut obj: Map<String, Value> = Map::new();
        obj.insert("type".into(), Value::from(self.req.kind()));
        if let Some(rid) = self.rid {
            obj.insert("rid".into(), Value::from(rid));
        }
        let mut put = |k: &str, v: Value| {
            obj.insert(k.into(), v);
        };
        match &self.req {
            Request::CreateRoom {
                game,
                params,
                private,
            } => {
                put("game", Value::from(game.as_str()));
                put("params", Value::Object(params.clone()));
                put("private", Value::from(*private));
            }
            Request::JoinRoom { room } => put("room", Value::from(room.as_str())),
            Request::ListRooms { game } => {
                if let Some(g) = game {
                    put("game", Value::from(g.as_str()));
                }
            }
            Request::Input { data, seq } => {
                put(
                    "data",
                    serde_json::from_str(data.as_str()).unwrap_or_default(),
                );
                if let Some(seq) = seq {
                    put("seq", Value::from(*seq));
                }
            }
            Request::Chat { text } => put("text", Value::from(text.as_str())),
            Request::Queue { game, mode } => {
                put("game", Value::from(game.as_str()));
                put("mode", Value::from(mode.as_str()));
            }
            Request::LeaveRoom | Request::Ready | Request::Unqueue | Request::Ping => {}
        }
        Value::Object(obj).to_string()
    }
}

/// Why a frame could not be decoded, with the `rid` to answer with when one was readable.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct DecodeError {
    /// The `rid` of the frame, if it was a JSON object with an integer `rid`.
    pub rid: Option<u64>,
    /// `bad_request` or `unknown_type`.
    pub code: ErrorCode,
    /// Human-readable detail.
    pub message: String,
}

/// The longest message of a [`DecodeError`], in characters: a decoder's message may quote what
/// it read, and a reply must not echo a client's frame back at it.
pub(crate) const MAX_ERROR_CHARS: usize = 200;

/// Decodes one text frame. The frame is read once: each field is decoded from its own text, and
/// an input's `data` is kept as the text the client sent ([`JsonObject`]). An error's message is
/// at most 200 characters: a reply does not echo a client's frame back at it.
pub fn decode_client_frame(text: &str) -> Result<ClientRequest, DecodeError> {
    decode(text).map_err(|mut e| {
        if e.message.chars().count() > MAX_ERROR_CHARS {
            e.message = format!("{}…", truncate(&e.message, MAX_ERROR_CHARS - 1));
        }
        e
    })
}

fn decode(text: &str) -> Result<ClientRequest, DecodeError> {
    let mut obj: HashMap<String, &RawValue> = match serde_json::from_str(text) {
        Ok(obj) => obj,
        Err(_) => {
            // The syntax error, which names a position; the type error would quote the value.
            let message = match serde_json::from_str::<serde::de::IgnoredAny>(text) {
                Ok(_) => "frame is not a JSON object".to_string(),
                Err(e) => format!("frame is not JSON: {e}"),
            };
            return Err(DecodeError {
                rid: None,
                code: ErrorCode::BadRequest,
                message,
            });
        }
    };
    let rid = match take(&mut obj, "rid") {
        None => None,
        Some(v) => match v.as_u64() {
            Some(r) => Some(r),
            None => {
                return Err(DecodeError {
                    rid: None,
                    code: ErrorCode::BadRequest,
                    message: "`rid` must be a non-negative integer".into(),
                });
            }
        },
    };
    let bad = |message: String| DecodeError {
        rid,
        code: ErrorCode::BadRequest,
        message,
    };
    let kind = match take(&mut obj, "type") {
        Some(Value::String(s)) => s,
        Some(_) => return Err(bad("`type` must be a string".into())),
        None => return Err(bad("missing `type`".into())),
    };
    let mut fields = Fields {
        obj: &mut obj,
        bad: &bad,
    };
    let req = match kind.as_str() {
        "create_room" => Request::CreateRoom {
            game: GameName::new(fields.name("game", MAX_GAME_CHARS)?),
            params: fields.opt_object("params")?.unwrap_or_default(),
            private: fields.opt_bool("private")?.unwrap_or(false),
        },
        "join_room" => Request::JoinRoom {
            room: RoomId::new(fields.name("room", MAX_ROOM_CHARS)?),
        },
        "leave_room" => Request::LeaveRoom,
        "list_rooms" => Request::ListRooms {
            game: fields.opt_name("game", MAX_GAME_CHARS)?.map(GameName::new),
        },
        "ready" => Request::Ready,
        "input" => Request::Input {
            data: fields.raw_object("data")?,
            seq: fields.opt_u64("seq")?,
        },
        "chat" => {
            let text = fields.string("text")?;
            if let Err(why) = crate::text::check_chat(&text) {
                return Err(bad(format!(
                    "`text` must be 1–{MAX_CHAT_CHARS} characters with a visible one, no control \
                     characters or bidirectional overrides: {why}"
                )));
            }
            Request::Chat { text }
        }
        "queue" => Request::Queue {
            game: GameName::new(fields.name("game", MAX_GAME_CHARS)?),
            mode: fields
                .opt_string("mode")?
                .unwrap_or_else(|| "default".into()),
        },
        "unqueue" => Request::Unqueue,
        "ping" => Request::Ping,
        other => {
            return Err(DecodeError {
                rid,
                code: ErrorCode::UnknownType,
                message: format!("unknown message type `{}`", truncate(other, 64)),
            });
        }
    };
    Ok(ClientRequest { rid, req })
}

/// A field's value; an absent field and `null` are alike.
fn take(obj: &mut HashMap<String, &RawValue>, key: &str) -> Option<Value> {
    let raw = obj.remove(key)?;
    // Well-formed JSON already (the frame parsed), so this cannot fail.
    serde_json::from_str::<Value>(raw.get())
        .ok()
        .filter(|v| !v.is_null())
}

fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

struct Fields<'a, 'f, F: Fn(String) -> DecodeError> {
    obj: &'a mut HashMap<String, &'f RawValue>,
    bad: &'a F,
}

impl<F: Fn(String) -> DecodeError> Fields<'_, '_, F> {
    fn take(&mut self, key: &str) -> Option<Value> {
        take(self.obj, key)
    }

    /// An object field kept as its text.
    fn raw_object(&mut self, key: &str) -> Result<JsonObject, DecodeError> {
        match self.obj.remove(key) {
            None => Err((self.bad)(format!("missing `{key}`"))),
            Some(raw) if raw.get() == "null" => Err((self.bad)(format!("missing `{key}`"))),
            Some(raw) => JsonObject::from_raw(raw)
                .ok_or_else(|| (self.bad)(format!("`{key}` must be an object"))),
        }
    }

    fn string(&mut self, key: &str) -> Result<String, DecodeError> {
        self.opt_string(key)?
            .ok_or_else(|| (self.bad)(format!("missing `{key}`")))
    }

    /// A name or id: 1 to `max` characters, none of them a control character.
    fn name(&mut self, key: &str, max: usize) -> Result<String, DecodeError> {
        self.opt_name(key, max)?
            .ok_or_else(|| (self.bad)(format!("missing `{key}`")))
    }

    fn opt_name(&mut self, key: &str, max: usize) -> Result<Option<String>, DecodeError> {
        let Some(s) = self.opt_string(key)? else {
            return Ok(None);
        };
        let chars = s.chars().count();
        if chars == 0 || chars > max || s.chars().any(char::is_control) {
            return Err((self.bad)(format!(
                "`{key}` must be 1–{max} characters, none of them a control character"
            )));
        }
        Ok(Some(s))
    }

    fn opt_string(&mut self, key: &str) -> Result<Option<String>, DecodeError> {
        match self.take(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err((self.bad)(format!("`{key}` must be a string"))),
        }
    }

    fn opt_object(&mut self, key: &str) -> Result<Option<Map<String, Value>>, DecodeError> {
        match self.take(key) {
            None => Ok(None),
            Some(Value::Object(m)) => Ok(Some(m)),
            Some(_) => Err((self.bad)(format!("`{key}` must be an object"))),
        }
    }

    fn opt_bool(&mut self, key: &str) -> Result<Option<bool>, DecodeError> {
        match self.take(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(b)),
            Some(_) => Err((self.bad)(format!("`{key}` must be a boolean"))),
        }
    }

    fn opt_u64(&mut self, key: &str) -> Result<Option<u64>, DecodeError> {
        match self.take(key) {
            None => Ok(None),
            Some(v) => v
                .as_u64()
                .map(Some)
                .ok_or_else(|| (self.bad)(format!("`{key}` must be a non-negative integer"))),
        }
    }
}

/// One sample of every request (both forms where a field is optional), shared by the tests of
/// the encoder and of the JSON Schema.
#[cfg(test)]
pub(crate) fn sample_requests() -> Vec<Request> {
    let data = |v: serde_json::Value| match v {
        serde_json::Value::Object(m) => m,
        _ => serde_json::Map::new(),
    };
    vec![
        Request::CreateRoom {
            game: "dice".into(),
            params: data(serde_json::json!({"seats": 3})),
            private: true,
        },
        Request::JoinRoom {
            room: "n1.r".into(),
        },
        Request::LeaveRoom,
        Request::ListRooms { game: None },
        Request::ListRooms {
            game: Some("arena".into()),
        },
        Request::Ready,
        Request::Input {
            data: JsonObject::from_map(&data(serde_json::json!({"dx": 1, "dy": -0.5}))),
            seq: Some(9),
        },
        Request::Input {
            data: JsonObject::from_map(&data(serde_json::json!({"action": "roll"}))),
            seq: None,
        },
        Request::Chat {
            text: "hi \"there\"".into(),
        },
        Request::Queue {
            game: "dice".into(),
            mode: "ranked".into(),
        },
        Request::Unqueue,
        Request::Ping,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by fuzzing (`fuzz/`, target `client_frame`): a JSON string followed by junk was
    /// answered with serde's type error, which quoted the whole string.
    #[test]
    fn an_error_does_not_echo_the_frame() {
        let long = format!(r#""{}" trailing"#, "b".repeat(5000));
        let e = decode_client_frame(&long).unwrap_err();
        assert!(e.message.starts_with("frame is not JSON"), "{}", e.message);
        assert!(!e.message.contains("bbbbbbbb"), "{}", e.message);
        let wrong = format!(r#"{{"type":"chat","text":{{"{}":1}}}}"#, "k".repeat(5000));
        let e = decode_client_frame(&wrong).unwrap_err();
        assert!(
            e.message.chars().count() <= MAX_ERROR_CHARS,
            "{}",
            e.message
        );
    }

    #[test]
    fn names_and_ids_are_bounded_before_anything_looks_them_up() {
        let long_room = "r".repeat(60_000);
        let long_game = "g".repeat(MAX_GAME_CHARS + 1);
        for frame in [
            format!(r#"{{"type":"join_room","rid":1,"room":"{long_room}"}}"#),
            format!(r#"{{"type":"create_room","rid":1,"game":"{long_game}"}}"#),
            format!(r#"{{"type":"queue","rid":1,"game":"{long_game}"}}"#),
            format!(r#"{{"type":"list_rooms","rid":1,"game":"{long_game}"}}"#),
            r#"{"type":"join_room","rid":1,"room":""}"#.to_owned(),
            r#"{"type":"create_room","rid":1,"game":"di\u001bce"}"#.to_owned(),
        ] {
            let e = decode_client_frame(&frame).unwrap_err();
            assert_eq!(
                (e.code, e.rid),
                (ErrorCode::BadRequest, Some(1)),
                "{frame:.80}"
            );
            // The answer does not echo what it refuses.
            assert!(e.message.len() < 100, "{}", e.message);
        }
        let ok = format!(
            r#"{{"type":"join_room","room":"{}"}}"#,
            "n".repeat(MAX_ROOM_CHARS)
        );
        assert!(decode_client_frame(&ok).is_ok());
    }

    #[test]
    fn an_inputs_data_must_be_an_object_and_is_kept_as_sent() {
        for (frame, why) in [
            (r#"{"type":"input","rid":4}"#, "missing `data`"),
            (r#"{"type":"input","rid":4,"data":null}"#, "missing `data`"),
            (
                r#"{"type":"input","rid":4,"data":[1]}"#,
                "`data` must be an object",
            ),
            (
                r#"{"type":"input","rid":4,"data":"up"}"#,
                "`data` must be an object",
            ),
            (
                r#"{"type":"input","rid":4,"data":7}"#,
                "`data` must be an object",
            ),
        ] {
            let e = decode_client_frame(frame).unwrap_err();
            assert_eq!(
                (e.code, e.rid, e.message.as_str()),
                (ErrorCode::BadRequest, Some(4), why)
            );
        }
        let r =
            decode_client_frame(r#"{"type":"input","data": {"dx" : 1.50, "k":"\u00e9"}}"#).unwrap();
        match r.req {
            Request::Input { data, .. } => {
                assert_eq!(data.as_str(), r#"{"dx" : 1.50, "k":"\u00e9"}"#);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn frames_that_are_not_objects_or_not_json_say_which() {
        let e = decode_client_frame("[1,2]").unwrap_err();
        assert_eq!(e.message, "frame is not a JSON object");
        let e = decode_client_frame("{\"type\":").unwrap_err();
        assert!(e.message.starts_with("frame is not JSON"), "{}", e.message);
        // The last of two equal keys counts, as a JSON object read into a map does.
        let r = decode_client_frame(r#"{"type":"ping","rid":1,"rid":2}"#).unwrap();
        assert_eq!(r.rid, Some(2));
    }

    #[test]
    fn not_json_is_bad_request_without_rid() {
        let e = decode_client_frame("{nope").unwrap_err();
        assert_eq!((e.code, e.rid), (ErrorCode::BadRequest, None));
    }

    #[test]
    fn unknown_type_keeps_rid() {
        let e = decode_client_frame(r#"{"type":"fly","rid":7}"#).unwrap_err();
        assert_eq!((e.code, e.rid), (ErrorCode::UnknownType, Some(7)));
    }

    #[test]
    fn missing_type_is_bad_request_with_rid() {
        let e = decode_client_frame(r#"{"rid":3}"#).unwrap_err();
        assert_eq!((e.code, e.rid), (ErrorCode::BadRequest, Some(3)));
    }

    #[test]
    fn wrongly_typed_field_is_bad_request() {
        let e = decode_client_frame(r#"{"type":"join_room","room":5,"rid":1}"#).unwrap_err();
        assert_eq!((e.code, e.rid), (ErrorCode::BadRequest, Some(1)));
        let e = decode_client_frame(r#"{"type":"input","data":{},"seq":-1}"#).unwrap_err();
        assert_eq!(e.code, ErrorCode::BadRequest);
    }

    #[test]
    fn chat_length_is_checked_in_characters() {
        let ok = format!(r#"{{"type":"chat","text":"{}"}}"#, "é".repeat(500));
        assert!(decode_client_frame(&ok).is_ok());
        let long = format!(r#"{{"type":"chat","text":"{}"}}"#, "é".repeat(501));
        assert_eq!(
            decode_client_frame(&long).unwrap_err().code,
            ErrorCode::BadRequest
        );
        let empty = r#"{"type":"chat","text":""}"#;
        assert_eq!(
            decode_client_frame(empty).unwrap_err().code,
            ErrorCode::BadRequest
        );
    }

    #[test]
    fn every_request_encodes_to_a_frame_that_decodes_back() {
        let all = sample_requests();
        for (i, req) in all.into_iter().enumerate() {
            for rid in [None, Some(i as u64)] {
                let r = ClientRequest {
                    rid,
                    req: req.clone(),
                };
                assert_eq!(decode_client_frame(&r.encode()).unwrap(), r);
            }
        }
    }

    #[test]
    fn defaults_apply() {
        let r = decode_client_frame(r#"{"type":"queue","game":"dice"}"#).unwrap();
        assert_eq!(
            r.req,
            Request::Queue {
                game: "dice".into(),
                mode: "default".into()
            }
        );
        let r = decode_client_frame(r#"{"type":"create_room","game":"dice","rid":2}"#).unwrap();
        assert_eq!(r.rid, Some(2));
        assert!(matches!(r.req, Request::CreateRoom { private: false, .. }));
    }
}
