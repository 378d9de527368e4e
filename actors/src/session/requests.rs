//! The player's requests (PROTOCOL.md "Client → server"), answered in the order they arrived.

use ractor::call;
use serde_json::{Map, Value, json};
use warren_protocol::{ClientRequest, ErrorCode, GameName, Request, RoomId, TicketId};

#[cfg(feature = "test-hooks")]
use super::{FAIL_ROOM_HOST_HOOK, FAIL_SESSION_HOOK};
use super::{LIST_ROOMS_LIMIT, MAX_MODE_CHARS, Queued, SessionMsg, SessionState, TICKET_CHECK};
use crate::node::now_ms;
use crate::pool_host::{owner_of, send_pool};
use crate::remote::{PoolKey, PoolWire, RoomError, RoomOp, TicketWire};
use crate::room::RoomMsg;
use crate::room_host::{CreateRoomError, RoomHost, RoomHostMsg};
use crate::router;

impl SessionState {
    pub(super) async fn request(&mut self, ClientRequest { rid, req }: ClientRequest) {
        #[cfg(feature = "test-hooks")]
        if matches!(&req, Request::Chat { text } if text == FAIL_SESSION_HOOK) {
            panic!("test hook: the session fails");
        }
        #[cfg(feature = "test-hooks")]
        if matches!(&req, Request::Chat { text } if text == FAIL_ROOM_HOST_HOOK) {
            let _ = RoomHost::of(&self.ctx).cast(RoomHostMsg::FailForTest);
            return;
        }
        match req {
            Request::Ping => self.reply_ok(rid, obj(json!({"server_time_ms": now_ms()}))),
            Request::ListRooms { game } => {
                let mut rooms = self
                    .ctx
                    .directory
                    .list_open(game.as_ref(), LIST_ROOMS_LIMIT);
                if let Some(peers) = self.ctx.peers() {
                    rooms.extend(peers.list_rooms(game).await);
                    rooms.sort_unstable_by(|a, b| a.room.cmp(&b.room));
                    rooms.truncate(LIST_ROOMS_LIMIT);
                }
                self.reply_ok(rid, obj(json!({ "rooms": rooms })));
            }
            Request::CreateRoom {
                game,
                params,
                private,
            } => self.create_room(rid, game, params, private).await,
            Request::JoinRoom { room } => self.join_room(rid, room).await,
            Request::LeaveRoom => {
                let Some(room) = self.current_room() else {
                    return self.reply_err(rid, ErrorCode::NotInRoom, "not in a room");
                };
                let player = self.player.clone();
                self.left = Some(room.clone());
                match self.op_on(&room, RoomOp::Leave(player)).await {
                    Err(e) if e.is_not_found() => {
                        self.room = None;
                        self.reply_err(rid, ErrorCode::NotInRoom, "not in a room")
                    }
                    _ => {
                        self.room = None;
                        self.reply_ok(rid, Map::new());
                    }
                }
            }
            Request::Ready => {
                if self.current_room().is_none() {
                    return self.reply_err(rid, ErrorCode::NotInRoom, "not in a room");
                }
                let player = self.player.clone();
                let r = self.room_op(RoomOp::Ready(player)).await;
                self.reply_result(rid, r);
            }
            Request::Input { data, seq } => {
                let Some(room) = self.current_room() else {
                    return self.reply_err(rid, ErrorCode::NotInRoom, "not in a room");
                };
                let player = self.player.clone();
                if rid.is_some() {
                    let r = self.room_op(RoomOp::Input { player, seq, data }).await;
                    return self.reply_result(rid, r);
                }
                // Without a rid there is no reply to wait for: one way, the realtime hot path.
                let via = self
                    .input_via
                    .as_ref()
                    .filter(|(r, _)| *r == room)
                    .map(|(_, n)| n);
                let (to, e) = router::input_via(&self.ctx, &room, via, player, seq, data).await;
                self.input_via = to.map(|n| (room.clone(), n));
                if let Some(e) = e {
                    if e.is_not_found() {
                        if self.room.as_ref() == Some(&room) {
                            self.room = None;
                        }
                        return self.reply_err(None, ErrorCode::NotInRoom, "the room is gone");
                    }
                    self.reply_err(None, e.code, &e.message);
                }
            }
            Request::Chat { text } => {
                if self.current_room().is_none() {
                    return self.reply_err(rid, ErrorCode::NotInRoom, "not in a room");
                }
                let player = self.player.clone();
                let r = self.room_op(RoomOp::Chat { player, text }).await;
                self.reply_result(rid, r);
            }
            Request::Queue { game, mode } => self.queue(rid, game, mode).await,
            Request::Unqueue => {
                if self.ticket.is_none() {
                    return self.reply_err(rid, ErrorCode::NotQueued, "not queued");
                }
                if self.leave_queue() {
                    self.reply_ok(rid, Map::new());
                } else {
                    self.reply_err(rid, ErrorCode::NotQueued, "the ticket was already matched");
                }
            }
        }
    }

    pub(super) async fn create_room(
        &mut self,
        rid: Option<u64>,
        game: GameName,
        params: Map<String, Value>,
        private: bool,
    ) {
        if !self.ctx.is_serving() {
            return self.reply_err(
                rid,
                ErrorCode::ServerDraining,
                "the node is draining; reconnect to create rooms",
            );
        }
        if self.current_room().is_some() {
            return self.reply_err(
                rid,
                ErrorCode::AlreadyInRoom,
                "already in a room; leave it first",
            );
        }
        if self.ctx.games.get(&game).is_none() {
            return self.reply_err(
                rid,
                ErrorCode::UnknownGame,
                &format!("no game named `{game}`"),
            );
        }
        if !self.leave_queue() {
            return self.reply_err(
                rid,
                ErrorCode::AlreadyInRoom,
                "matchmaking already seated you",
            );
        }
        let host = RoomHost::of(&self.ctx);
        let players = vec![(
            self.player.clone(),
            self.name.clone(),
            self.ctx.node.clone(),
        )];
        let r = call!(host, |reply| RoomHostMsg::Create {
            game,
            params,
            private,
            players,
            reply
        });
        match r {
            Ok(Ok((room, actor))) => {
                self.room = Some(room.clone());
                self.end_search(None);
                self.reply_ok(rid, obj(json!({ "room": room })));
                let _ = actor.cast(RoomMsg::Resync(self.player.clone()));
            }
            Ok(Err(CreateRoomError::UnknownGame)) => {
                self.reply_err(rid, ErrorCode::UnknownGame, "unknown game")
            }
            Ok(Err(CreateRoomError::InvalidParams(m))) => {
                self.reply_err(rid, ErrorCode::InvalidParams, &m.0)
            }
            Ok(Err(CreateRoomError::Draining)) => {
                self.reply_err(rid, ErrorCode::ServerDraining, "the node is draining")
            }
            Ok(Err(CreateRoomError::Refused(e))) => self.reply_err(rid, e.code, &e.message),
            Ok(Err(CreateRoomError::Internal)) | Err(_) => {
                self.reply_err(rid, ErrorCode::Internal, "the room could not be created")
            }
        }
    }

    pub(super) async fn join_room(&mut self, rid: Option<u64>, room: RoomId) {
        // Joining the room that holds the player's seat reattaches it (a fresh `room_state`).
        if self.room.as_ref() != Some(&room) && self.current_room().is_some() {
            return self.reply_err(
                rid,
                ErrorCode::AlreadyInRoom,
                "already in a room; leave it first",
            );
        }
        if !self.can_reach(&room) {
            return self.reply_err(rid, ErrorCode::NotFound, "no such room");
        }
        if !self.leave_queue() {
            return self.reply_err(
                rid,
                ErrorCode::AlreadyInRoom,
                "matchmaking already seated you",
            );
        }
        let (player, name, home) = (
            self.player.clone(),
            self.name.clone(),
            self.ctx.node.clone(),
        );
        match self.op_on(&room, RoomOp::Join { player, name, home }).await {
            Ok(()) => {
                self.room = Some(room.clone());
                self.end_search(Some(&room));
                self.reply_ok(rid, obj(json!({ "room": room })));
                self.room_notify(&room, RoomOp::Resync(self.player.clone()))
                    .await;
            }
            Err(RoomError { code, message }) => self.reply_err(rid, code, &message),
        }
    }

    pub(super) async fn queue(&mut self, rid: Option<u64>, game: GameName, mode: String) {
        if self.current_room().is_some() {
            return self.reply_err(
                rid,
                ErrorCode::AlreadyInRoom,
                "already in a room; leave it first",
            );
        }
        if self.ticket.is_some() {
            return self.reply_err(
                rid,
                ErrorCode::AlreadyQueued,
                "already queued; unqueue first",
            );
        }
        let Some(spec) = self.ctx.games.get(&game).copied() else {
            return self.reply_err(
                rid,
                ErrorCode::UnknownGame,
                &format!("no game named `{game}`"),
            );
        };
        let valid_mode = !mode.is_empty()
            && mode.chars().count() <= MAX_MODE_CHARS
            && mode
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !valid_mode {
            return self.reply_err(
                rid,
                ErrorCode::BadRequest,
                "`mode` must be 1–32 of [A-Za-z0-9_-]",
            );
        }
        let pool = PoolKey { game, mode };
        let id = TicketId::new(self.ctx.new_id("t"));
        let since_ms = now_ms();
        let owner = owner_of(&self.ctx, &pool.label());
        let msg = PoolWire::Enqueue {
            pool: pool.clone(),
            seats: spec.default_seats(),
            ticket: TicketWire {
                id: id.clone(),
                player: self.player.clone(),
                name: self.name.clone(),
                mmr: self.mmr,
                home: self.ctx.node.clone(),
                since_ms,
            },
            hops: 0,
        };
        send_pool(&self.ctx, &owner, msg);
        self.ticket = Some(Queued {
            id: id.clone(),
            pool,
            seats: spec.default_seats(),
            owner,
            since_ms,
            claim: None,
        });
        self.save_ticket();
        self.end_search(None);
        let check = id.clone();
        drop(
            self.me
                .send_after(TICKET_CHECK, move || SessionMsg::CheckTicket(check)),
        );
        self.reply_ok(rid, obj(json!({ "ticket": id })));
    }
}

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}
