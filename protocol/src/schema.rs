//! The protocol as a JSON Schema (draft 2020-12): `protocol/schema/v1.json`, one definition per
//! message of PROTOCOL.md. It is the one description other languages build on: the TypeScript
//! SDK's types are generated from it (`clients/typescript/scripts/gen-protocol.mjs`), and both
//! sides are tested against it: here, every frame this crate encodes; in the end-to-end tests,
//! every frame a real node sends; in the SDK's tests, every frame the SDK sends and receives.

/// The JSON Schema of protocol v1. Its `$defs` name every message: `ClientMessage` and
/// `ServerMessage` are the unions of what each side sends; `x-reply` on a request names the
/// definition of the fields its `ok` carries.
pub const SCHEMA_V1: &str = include_str!("../schema/v1.json");

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use serde_json::{Map, Value, json};

    use super::SCHEMA_V1;
    use crate::codes::{CloseCode, ErrorCode};
    use crate::ids::{GameName, NodeId, PlayerId, RoomId, SessionId, TicketId};
    use crate::{
        ClientRequest, PlayerView, RoomSummary, ServerMsg, decode_client_frame, encode,
        error_frame, ok_frame, state_frame,
    };

    fn schema() -> Value {
        serde_json::from_str(SCHEMA_V1).unwrap()
    }

    /// A validator of one definition of the schema.
    fn validator(def: &str) -> jsonschema::Validator {
        let mut root = schema();
        root.as_object_mut()
            .unwrap()
            .insert("$ref".into(), Value::from(format!("#/$defs/{def}")));
        jsonschema::validator_for(&root).unwrap()
    }

    fn check(v: &jsonschema::Validator, frame: &str) {
        let value: Value = serde_json::from_str(frame).unwrap();
        if let Err(e) = v.validate(&value) {
            panic!("{frame} does not follow the schema: {e}");
        }
    }

    /// The `type` consts of a union's members, with each member's definition name.
    fn members(union: &str) -> Vec<(String, String)> {
        let s = schema();
        s["$defs"][union]["oneOf"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                let name = r["$ref"].as_str().unwrap().trim_start_matches("#/$defs/");
                let ty = s["$defs"][name]["properties"]["type"]["const"]
                    .as_str()
                    .unwrap();
                (ty.to_owned(), name.to_owned())
            })
            .collect()
    }

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    #[test]
    fn every_request_follows_the_schema_and_the_schema_lists_every_request() {
        let v = validator("ClientMessage");
        let mut kinds = BTreeSet::new();
        for (i, req) in crate::client::sample_requests().into_iter().enumerate() {
            kinds.insert(req.kind().to_owned());
            for rid in [None, Some(i as u64)] {
                check(
                    &v,
                    &ClientRequest {
                        rid,
                        req: req.clone(),
                    }
                    .encode(),
                );
            }
        }
        let in_schema: BTreeSet<String> = members("ClientMessage")
            .into_iter()
            .map(|(ty, _)| ty)
            .collect();
        assert_eq!(in_schema, kinds);
    }

    #[test]
    fn what_the_schema_allows_a_client_to_send_the_decoder_reads() {
        // The least and the most each request may carry, as the schema describes them.
        let frames = [
            json!({"type": "create_room", "game": "dice"}),
            json!({"type": "create_room", "rid": 1, "game": "g", "params": {"a": [1]}, "private": false}),
            json!({"type": "join_room", "room": "n.r"}),
            json!({"type": "leave_room", "rid": 0}),
            json!({"type": "list_rooms"}),
            json!({"type": "list_rooms", "game": "arena", "rid": 2}),
            json!({"type": "ready"}),
            json!({"type": "input", "data": {}}),
            json!({"type": "input", "data": {"dx": 1}, "seq": 0, "rid": 5}),
            json!({"type": "chat", "text": "x"}),
            json!({"type": "queue", "game": "dice"}),
            json!({"type": "queue", "game": "dice", "mode": "a-b_C9"}),
            json!({"type": "unqueue"}),
            json!({"type": "ping", "rid": 18446744073709551615u64}),
        ];
        let v = validator("ClientMessage");
        for f in frames {
            let text = f.to_string();
            check(&v, &text);
            let decoded = decode_client_frame(&text)
                .unwrap_or_else(|e| panic!("{text}: the schema allows it, the decoder says {e}"));
            assert_eq!(decoded.req.kind(), f["type"]);
        }
        // And what it refuses, the decoder refuses too.
        for f in [
            json!({"type": "join_room"}),
            json!({"type": "input", "data": [1]}),
            json!({"type": "chat", "text": ""}),
            json!({"type": "create_room", "game": "dice", "private": "yes"}),
            json!({"type": "ping", "rid": -1}),
        ] {
            assert!(!v.is_valid(&f), "{f}");
            assert!(decode_client_frame(&f.to_string()).is_err(), "{f}");
        }
    }

    #[test]
    fn every_server_message_follows_the_schema_and_the_schema_lists_every_one() {
        let v = validator("ServerMessage");
        let room = RoomId::from("n1.r1");
        let game = GameName::from("dice");
        let player = PlayerId::from("p");
        let node = NodeId::from("n1");
        let session = SessionId::from("s1");
        let ticket = TicketId::from("t1");
        let players = [PlayerView {
            player: player.clone(),
            name: "P".into(),
            seat: 0,
            connected: true,
            ready: false,
        }];
        let state = serde_json::value::to_raw_value(&json!({"phase": "waiting"})).unwrap();
        let event = json!({"kind": "player_ready", "player": "p"});
        let mut frames: Vec<String> = Vec::new();
        for recovering in [false, true] {
            frames.push(
                encode(&ServerMsg::Welcome {
                    session: &session,
                    player: &player,
                    name: "P",
                    node: &node,
                    resume: "tok",
                    resumed: recovering,
                    recovering,
                    heartbeat_ms: 15000,
                })
                .to_string(),
            );
        }
        for room in [Some(&room), None] {
            frames.push(encode(&ServerMsg::RecoveryDone { room }).to_string());
        }
        frames.push(
            encode(&ServerMsg::RoomState {
                room: &room,
                game: &game,
                version: 0,
                players: &players,
                state: &state,
                node: &node,
            })
            .to_string(),
        );
        frames.push(
            encode(&ServerMsg::RoomEvent {
                room: &room,
                version: 1,
                event: &event,
            })
            .to_string(),
        );
        frames.push(
            encode(&ServerMsg::RoomMessage {
                room: &room,
                message: &json!({"kind": "hand", "cards": []}),
            })
            .to_string(),
        );
        frames.push(
            encode(&ServerMsg::Chat {
                room: &room,
                player: &player,
                name: "P",
                text: "hi",
            })
            .to_string(),
        );
        frames.push(
            encode(&ServerMsg::MatchFound {
                ticket: &ticket,
                room: &room,
                game: &game,
                players: std::slice::from_ref(&player),
            })
            .to_string(),
        );
        frames.push(state_frame("\"n1.r1\"", 3, 0, r#"{"players":{}}"#).to_string());
        let summary = RoomSummary {
            room: room.clone(),
            game: game.clone(),
            players: 1,
            seats: 2,
        };
        for fields in [
            json!({}),
            json!({"room": "n1.r1"}),
            json!({"rooms": [summary]}),
            json!({"ticket": "t1"}),
            json!({"server_time_ms": 1_700_000_000_000u64}),
        ] {
            frames.push(ok_frame(7, obj(fields)).to_string());
        }
        for code in ErrorCode::ALL {
            frames.push(error_frame(Some(1), code, "m").to_string());
        }
        frames.push(error_frame(None, ErrorCode::Internal, "m").to_string());

        let mut seen = BTreeSet::new();
        for f in &frames {
            check(&v, f);
            let value: Value = serde_json::from_str(f).unwrap();
            seen.insert(value["type"].as_str().unwrap().to_owned());
        }
        let in_schema: BTreeSet<String> = members("ServerMessage")
            .into_iter()
            .map(|(ty, _)| ty)
            .collect();
        assert_eq!(
            in_schema, seen,
            "a message without a sample, or one the schema lacks"
        );
    }

    #[test]
    fn the_schema_refuses_what_the_server_never_sends() {
        let v = validator("ServerMessage");
        for f in [
            // A field the schema does not know: Warren would have added it without the schema.
            json!({"type": "ok", "rid": 1, "roomz": "x"}),
            json!({"type": "room_event", "room": "r", "version": 1, "event": {}}),
            json!({"type": "error", "code": "no_such_code", "message": "m"}),
            json!({"type": "welcome", "session": "s"}),
            json!({"type": "state", "room": "r", "tick": 1, "ack": -1, "state": {}}),
        ] {
            assert!(!v.is_valid(&f), "{f}");
        }
    }

    #[test]
    fn every_reply_definition_is_what_the_ok_carries() {
        let s = schema();
        for (_, def) in members("ClientMessage") {
            let reply = s["$defs"][&def]["x-reply"].as_str().unwrap();
            let fields = &s["$defs"][reply]["properties"];
            // Every field a reply names is a field of `ok`.
            for (k, _) in fields.as_object().unwrap() {
                assert!(
                    s["$defs"]["Ok"]["properties"].get(k).is_some(),
                    "{def}: `ok` lacks {k}"
                );
            }
        }
    }

    #[test]
    fn error_and_close_codes_are_the_crates() {
        let s = schema();
        let codes: BTreeSet<String> = s["$defs"]["ErrorCode"]["enum"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect();
        let ours: BTreeSet<String> = ErrorCode::ALL
            .iter()
            .map(|c| c.as_str().to_owned())
            .collect();
        assert_eq!(codes, ours);
        // Each code reads back as itself through serde too.
        for c in ErrorCode::ALL {
            let v: ErrorCode = serde_json::from_value(Value::from(c.as_str())).unwrap();
            assert_eq!(v, c);
        }
        let closes: BTreeSet<u64> = s["$defs"]["CloseCode"]["enum"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect();
        let ours: BTreeSet<u64> = CloseCode::ALL.iter().map(|c| u64::from(c.code())).collect();
        assert_eq!(closes, ours);
    }
}
