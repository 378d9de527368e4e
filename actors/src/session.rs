//! `Session`: one per player session, serving its WebSocket connection.
//!
//! It handles the player's requests in the order they arrived (so replies keep that order), holds
//! the player's seat and ticket, and outlives a dropped connection for `rooms.reconnect_grace_ms`
//! so that a resume, on this socket's successor, keeps the seat. A newer connection of the same
//! player takes the session over and the old socket is closed with 4002.
//!
//! Supervised by `SessionHost`, which spawns it on the player's first connection.

use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef, call};
use serde_json::{Map, Value, json};
use tracing::{debug, warn};
use warren_protocol::{
    ClientRequest, CloseCode, DecodeError, ErrorCode, GameName, Outbound, PlayerId, Request,
    RoomId, ServerMsg, SessionId, TicketId, encode, error_frame, ok_frame,
};

use crate::node::{Conn, NodeCtx, Route, now_ms};
use crate::pool::{PoolMsg, Ticket};
use crate::pool_host::PoolHostMsg;
use crate::room::RoomMsg;
use crate::room_host::{CreateRoomError, RoomHostMsg};
use crate::session_host::SessionHostMsg;

/// Most rooms one `list_rooms` answer lists.
pub const LIST_ROOMS_LIMIT: usize = 500;
const MAX_MODE_CHARS: usize = 32;

/// Messages of a session.
pub enum SessionMsg {
    /// A connection takes over the session (first connection, resume, or replacement).
    Attach {
        /// The new connection.
        conn: Conn,
        /// Whether it presented a valid resume token for this session.
        resumed: bool,
        /// Display name from its token.
        name: String,
        /// Registration epoch from `SessionHost`.
        epoch: u64,
    },
    /// A decoded frame, or the error to answer it with, from connection `conn_id`.
    Frame {
        /// Which connection it came from.
        conn_id: u64,
        /// The request or its decoding error.
        frame: Result<ClientRequest, DecodeError>,
    },
    /// Connection `conn_id` ended.
    ConnClosed(u64),
    /// The grace period started at `gen` is over.
    GraceOver(u64),
    /// A pool seated the player.
    MatchFound {
        /// The player's ticket.
        ticket: TicketId,
        /// The room.
        room: RoomId,
        /// Its game.
        game: GameName,
        /// Everyone matched.
        players: Vec<PlayerId>,
    },
    /// The player's room was closed for good.
    RoomClosed(RoomId),
}

// Local-only: never crosses nodes (the cluster layer carries its own envelopes).
impl ractor::Message for SessionMsg {}

/// How a session starts.
pub struct SessionArgs {
    /// Node context.
    pub ctx: Arc<NodeCtx>,
    /// Session id.
    pub id: SessionId,
    /// The player.
    pub player: PlayerId,
    /// Rating for matchmaking.
    pub mmr: i64,
}

/// The session actor.
pub struct Session;

/// A session's changing state.
pub struct SessionState {
    me: ActorRef<SessionMsg>,
    ctx: Arc<NodeCtx>,
    id: SessionId,
    player: PlayerId,
    name: String,
    mmr: i64,
    conn: Option<Conn>,
    room: Option<RoomId>,
    ticket: Option<(TicketId, ActorRef<PoolMsg>)>,
    grace_gen: u64,
    epoch: u64,
}

impl Actor for Session {
    type Msg = SessionMsg;
    type State = SessionState;
    type Arguments = SessionArgs;

    async fn pre_start(
        &self,
        me: ActorRef<SessionMsg>,
        a: SessionArgs,
    ) -> Result<SessionState, ActorProcessingErr> {
        Ok(SessionState {
            me,
            ctx: a.ctx,
            id: a.id,
            name: a.player.to_string(),
            player: a.player,
            mmr: a.mmr,
            conn: None,
            room: None,
            ticket: None,
            grace_gen: 0,
            epoch: 0,
        })
    }

    async fn post_stop(
        &self,
        _me: ActorRef<SessionMsg>,
        st: &mut SessionState,
    ) -> Result<(), ActorProcessingErr> {
        if let Some(c) = st.conn.take() {
            st.ctx.sessions.remove(&st.player, c.id);
        }
        Ok(())
    }

    async fn handle(
        &self,
        me: ActorRef<SessionMsg>,
        msg: SessionMsg,
        st: &mut SessionState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            SessionMsg::Attach {
                conn,
                resumed,
                name,
                epoch,
            } => st.attach(&me, conn, resumed, name, epoch),
            SessionMsg::Frame { conn_id, frame } => {
                if st.conn.as_ref().is_some_and(|c| c.id == conn_id) {
                    match frame {
                        Ok(req) => st.request(req).await,
                        Err(e) => st.push(error_frame(e.rid, e.code, &e.message)),
                    }
                }
            }
            SessionMsg::ConnClosed(conn_id) => {
                if st.conn.as_ref().is_some_and(|c| c.id == conn_id) {
                    st.detach(&me);
                }
            }
            SessionMsg::GraceOver(generation) => {
                if generation == st.grace_gen && st.conn.is_none() {
                    let host = st.ctx.hosts().sessions.clone();
                    let (player, epoch) = (st.player.clone(), st.epoch);
                    let expired = call!(host, |reply| SessionHostMsg::Expire {
                        player,
                        epoch,
                        reply
                    })
                    .unwrap_or(true);
                    if expired {
                        if let Some(room) = st.room.take() {
                            st.room_cast(&room, |p| RoomMsg::Leave {
                                player: p,
                                reply: None,
                            });
                        }
                        debug!(session = %st.id, player = %st.player, "grace period over, session ended");
                        me.stop(None);
                    }
                }
            }
            SessionMsg::MatchFound {
                ticket,
                room,
                game,
                players,
            } => {
                if st.ticket.as_ref().is_some_and(|(t, _)| *t == ticket) {
                    st.ticket = None;
                }
                st.room = Some(room.clone());
                st.push(encode(&ServerMsg::MatchFound {
                    ticket: &ticket,
                    room: &room,
                    game: &game,
                    players: &players,
                }));
                if st.conn.is_some() {
                    st.room_cast(&room, RoomMsg::Resync);
                } else {
                    st.room_cast(&room, RoomMsg::Disconnected);
                }
            }
            SessionMsg::RoomClosed(room) => {
                if st.room.as_ref() == Some(&room) {
                    st.room = None;
                }
            }
        }
        Ok(())
    }
}

impl SessionState {
    fn push(&self, frame: Outbound) {
        if let Some(c) = &self.conn {
            c.send(frame);
        }
    }

    fn reply_ok(&self, rid: Option<u64>, fields: Map<String, Value>) {
        if let Some(rid) = rid {
            self.push(ok_frame(rid, fields));
        }
    }

    fn reply_err(&self, rid: Option<u64>, code: ErrorCode, message: &str) {
        self.push(error_frame(rid, code, message));
    }

    fn attach(
        &mut self,
        me: &ActorRef<SessionMsg>,
        conn: Conn,
        resumed: bool,
        name: String,
        epoch: u64,
    ) {
        if let Some(old) = self.conn.take() {
            old.close(CloseCode::Replaced);
        }
        self.grace_gen += 1;
        self.epoch = epoch;
        self.name = name;
        let issued = now_ms();
        let token = self.ctx.resume_key.sign(&self.player, &self.id, issued);
        let hb = self.ctx.settings.load().limits.heartbeat_ms;
        conn.send(encode(&ServerMsg::Welcome {
            session: &self.id,
            player: &self.player,
            name: &self.name,
            node: &self.ctx.node,
            resume: &token,
            resumed,
            heartbeat_ms: hb,
        }));
        self.ctx.sessions.insert(
            self.player.clone(),
            Route {
                conn: conn.clone(),
                session: me.clone(),
            },
        );
        self.conn = Some(conn);
        if let Some(room) = self.room.clone() {
            self.room_cast(&room, RoomMsg::Reconnected);
        }
    }

    fn detach(&mut self, me: &ActorRef<SessionMsg>) {
        if let Some(c) = self.conn.take() {
            self.ctx.sessions.remove(&self.player, c.id);
        }
        if let Some((ticket, pool)) = self.ticket.take() {
            let _ = pool.cast(PoolMsg::Remove {
                ticket,
                reply: None,
            });
        }
        if let Some(room) = self.room.clone() {
            self.room_cast(&room, RoomMsg::Disconnected);
        }
        self.grace_gen += 1;
        let generation = self.grace_gen;
        let grace = Duration::from_millis(self.ctx.settings.load().rooms.reconnect_grace_ms);
        let _ = me.send_after(grace, move || SessionMsg::GraceOver(generation));
    }

    /// Sends a message to the player's room; forgets the room if it is gone.
    fn room_cast(&mut self, room: &RoomId, msg: impl FnOnce(PlayerId) -> RoomMsg) -> bool {
        let sent = self
            .ctx
            .directory
            .actor(room)
            .is_some_and(|a| a.cast(msg(self.player.clone())).is_ok());
        if !sent && self.room.as_ref() == Some(room) {
            self.room = None;
        }
        sent
    }

    fn room_actor(&mut self) -> Option<ActorRef<RoomMsg>> {
        let room = self.room.clone()?;
        let actor = self.ctx.directory.actor(&room);
        if actor.is_none() {
            self.room = None;
        }
        actor
    }

    /// Leaves the queue before taking a seat. False if the pool already matched the ticket (its
    /// `match_found` is on the way, so the player is about to be seated).
    async fn leave_queue(&mut self) -> bool {
        let Some((ticket, pool)) = self.ticket.take() else {
            return true;
        };
        call!(pool, |reply| PoolMsg::Remove {
            ticket,
            reply: Some(reply)
        })
        .unwrap_or(false)
    }

    async fn request(&mut self, ClientRequest { rid, req }: ClientRequest) {
        match req {
            Request::Ping => self.reply_ok(rid, obj(json!({"server_time_ms": now_ms()}))),
            Request::ListRooms { game } => {
                let rooms = self
                    .ctx
                    .directory
                    .list_open(game.as_ref(), LIST_ROOMS_LIMIT);
                self.reply_ok(rid, obj(json!({ "rooms": rooms })));
            }
            Request::CreateRoom {
                game,
                params,
                private,
            } => self.create_room(rid, game, params, private).await,
            Request::JoinRoom { room } => self.join_room(rid, room).await,
            Request::LeaveRoom => {
                let Some(actor) = self.room_actor() else {
                    return self.reply_err(rid, ErrorCode::NotInRoom, "not in a room");
                };
                let player = self.player.clone();
                let _ = call!(actor, |reply| RoomMsg::Leave {
                    player,
                    reply: Some(reply)
                });
                self.room = None;
                self.reply_ok(rid, Map::new());
            }
            Request::Ready => {
                let Some(actor) = self.room_actor() else {
                    return self.reply_err(rid, ErrorCode::NotInRoom, "not in a room");
                };
                let player = self.player.clone();
                match call!(actor, |reply| RoomMsg::Ready { player, reply }) {
                    Ok(Ok(())) => self.reply_ok(rid, Map::new()),
                    Ok(Err(e)) => self.reply_err(rid, e.code, &e.message),
                    Err(_) => self.reply_err(rid, ErrorCode::Internal, "the room did not answer"),
                }
            }
            Request::Input { data, seq } => {
                let Some(actor) = self.room_actor() else {
                    return self.reply_err(rid, ErrorCode::NotInRoom, "not in a room");
                };
                let player = self.player.clone();
                if rid.is_none() {
                    let _ = actor.cast(RoomMsg::Input {
                        player,
                        seq,
                        data,
                        reply: None,
                    });
                    return;
                }
                match call!(actor, |reply| RoomMsg::Input {
                    player,
                    seq,
                    data,
                    reply: Some(reply)
                }) {
                    Ok(Ok(())) => self.reply_ok(rid, Map::new()),
                    Ok(Err(e)) => self.reply_err(rid, e.code, &e.message),
                    Err(_) => self.reply_err(rid, ErrorCode::Internal, "the room did not answer"),
                }
            }
            Request::Chat { text } => {
                let Some(actor) = self.room_actor() else {
                    return self.reply_err(rid, ErrorCode::NotInRoom, "not in a room");
                };
                let _ = actor.cast(RoomMsg::Chat {
                    player: self.player.clone(),
                    text,
                });
                self.reply_ok(rid, Map::new());
            }
            Request::Queue { game, mode } => self.queue(rid, game, mode).await,
            Request::Unqueue => {
                if self.ticket.is_none() {
                    return self.reply_err(rid, ErrorCode::NotQueued, "not queued");
                }
                if self.leave_queue().await {
                    self.reply_ok(rid, Map::new());
                } else {
                    self.reply_err(rid, ErrorCode::NotQueued, "the ticket was already matched");
                }
            }
        }
    }

    async fn create_room(
        &mut self,
        rid: Option<u64>,
        game: GameName,
        params: Map<String, Value>,
        private: bool,
    ) {
        if self.ctx.is_draining() {
            return self.reply_err(
                rid,
                ErrorCode::ServerDraining,
                "the node is draining; reconnect to create rooms",
            );
        }
        if self.room_actor().is_some() {
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
        if !self.leave_queue().await {
            return self.reply_err(
                rid,
                ErrorCode::AlreadyInRoom,
                "matchmaking already seated you",
            );
        }
        let host = self.ctx.hosts().rooms.clone();
        let players = vec![(self.player.clone(), self.name.clone())];
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
                self.reply_ok(rid, obj(json!({ "room": room })));
                let _ = actor.cast(RoomMsg::Resync(self.player.clone()));
            }
            Ok(Err(CreateRoomError::UnknownGame)) => {
                self.reply_err(rid, ErrorCode::UnknownGame, "unknown game")
            }
            Ok(Err(CreateRoomError::InvalidParams(m))) => {
                self.reply_err(rid, ErrorCode::InvalidParams, &m)
            }
            Ok(Err(CreateRoomError::Draining)) => {
                self.reply_err(rid, ErrorCode::ServerDraining, "the node is draining")
            }
            Ok(Err(CreateRoomError::Internal)) | Err(_) => {
                self.reply_err(rid, ErrorCode::Internal, "the room could not be created")
            }
        }
    }

    async fn join_room(&mut self, rid: Option<u64>, room: RoomId) {
        if self.room_actor().is_some() {
            return self.reply_err(
                rid,
                ErrorCode::AlreadyInRoom,
                "already in a room; leave it first",
            );
        }
        let Some(actor) = self.ctx.directory.actor(&room) else {
            return self.reply_err(rid, ErrorCode::NotFound, "no such room");
        };
        if !self.leave_queue().await {
            return self.reply_err(
                rid,
                ErrorCode::AlreadyInRoom,
                "matchmaking already seated you",
            );
        }
        let (player, name) = (self.player.clone(), self.name.clone());
        match call!(actor, |reply| RoomMsg::Join {
            player,
            name,
            reply
        }) {
            Ok(Ok(())) => {
                self.room = Some(room.clone());
                self.reply_ok(rid, obj(json!({ "room": room })));
                let _ = actor.cast(RoomMsg::Resync(self.player.clone()));
            }
            Ok(Err(code)) => self.reply_err(rid, code, code_message(code)),
            // The room stopped between lookup and join: it is gone.
            Err(_) => self.reply_err(rid, ErrorCode::NotFound, "no such room"),
        }
    }

    async fn queue(&mut self, rid: Option<u64>, game: GameName, mode: String) {
        if self.room_actor().is_some() {
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
        let host = self.ctx.hosts().pools.clone();
        let pool = match call!(host, |reply| PoolHostMsg::Pool {
            game: game.clone(),
            mode,
            seats: spec.default_seats,
            reply
        }) {
            Ok(p) => p,
            Err(e) => {
                warn!(error = %e, "pool host did not answer");
                return self.reply_err(rid, ErrorCode::Internal, "matchmaking is unavailable");
            }
        };
        let ticket_id = TicketId::new(self.ctx.new_id("t"));
        let ticket = Ticket {
            id: ticket_id.clone(),
            player: self.player.clone(),
            name: self.name.clone(),
            mmr: self.mmr,
            session: self.me.clone(),
        };
        if pool.cast(PoolMsg::Enqueue(ticket)).is_err() {
            return self.reply_err(rid, ErrorCode::Internal, "matchmaking is unavailable");
        }
        self.ticket = Some((ticket_id.clone(), pool));
        self.reply_ok(rid, obj(json!({ "ticket": ticket_id })));
    }
}

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

fn code_message(code: ErrorCode) -> &'static str {
    match code {
        ErrorCode::RoomFull => "every seat is taken",
        ErrorCode::AlreadyInRoom => "already seated in this room",
        ErrorCode::NotFound => "no such room",
        _ => "request refused",
    }
}
