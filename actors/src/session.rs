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

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort, call};
use serde_json::{Map, Value};
use tracing::{debug, warn};
use warren_protocol::{
    ClientRequest, CloseCode, DecodeError, ErrorCode, Outbound, PlayerId, RoomId, ServerMsg,
    SessionId, TicketId, encode, error_frame, ok_frame,
};

use crate::node::{Conn, NodeCtx, Route, now_ms};
use crate::remote::{OpResult, RoomError, RoomOp, SessionNote};
use crate::routes::RouteSlot;
use crate::session_host::{SessionHost, SessionHostMsg};
use ticket::HeldTicket;

mod requests;
mod seat;
pub(crate) mod ticket;

pub(crate) use ticket::Queued;

/// Most rooms one `list_rooms` answer lists.
pub const LIST_ROOMS_LIMIT: usize = 500;
const MAX_MODE_CHARS: usize = 32;
/// How often a queued session checks that the node holding its ticket is still a member.
const TICKET_CHECK: Duration = Duration::from_secs(1);

/// Messages of a session.
pub enum SessionMsg {
    /// A connection takes over the session (first connection, resume, or replacement).
    Attach {
        /// The new connection.
        conn: Conn,
        /// Whether it presented a valid resume token for this session.
        resumed: bool,
        /// It resumes a session of another node (which drained or died): look for the player's
        /// seat in the cluster.
        recover: bool,
        /// Display name from its token.
        name: String,
        /// Registration epoch from `SessionHost`.
        epoch: u64,
    },
    /// A decoded frame, or the error to answer it with, from connection `conn_id`.
    Frame {
        /// Which connection it came from.
        conn_id: u64,
        /// Its number among the frames this connection sent to the session (from 1): see
        /// [`crate::inputs`].
        n: u64,
        /// The request or its decoding error.
        frame: Result<ClientRequest, DecodeError>,
    },
    /// Connection `conn_id` ended.
    ConnClosed(u64),
    /// Close the connection with `code` (the node drains), once every request it sent before
    /// has been answered: a request still waiting for its room (frozen for its move) when the
    /// connection closed was applied later, after the player had resumed on another node and
    /// played on from there.
    Close(CloseCode),
    /// The grace period started at `gen` is over.
    GraceOver(u64),
    /// A pool wants the player's ticket for a match: answers true, and holds the ticket for that
    /// match, only if it is the current ticket and not held for another.
    Claim {
        /// The ticket.
        ticket: TicketId,
        /// The match.
        claim: String,
        /// The answer.
        reply: RpcReplyPort<bool>,
    },
    /// The outcome of a claim.
    Note(SessionNote),
    /// Periodic check that the node holding the ticket is still there.
    CheckTicket(TicketId),
    /// The seat search started at `gen` is over.
    SeatSearchOver(u64),
    /// Ask the cluster again for the player's seat (search `gen`, attempt `n`): a room that was
    /// moving when the search began (its node drained) holds it again once it runs on its new
    /// node, and, unlike a room revived after its node died, does not call for its players.
    SeekAgain(u64, u32),
    /// This session replaces one that failed (same id, registration `epoch`), with no connection:
    /// it finds the player's seat and starts the grace period.
    Restarted {
        /// The registration epoch of the failed session.
        epoch: u64,
    },
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
    /// What the session writes of the routing table: its player's route.
    pub slot: RouteSlot,
    /// Its entry in the table of held tickets.
    pub(crate) held: HeldTicket,
}

impl Route {
    /// A route to a connection served by `session`.
    pub(crate) fn new(conn: Conn, session: &ActorRef<SessionMsg>) -> Self {
        Self {
            conn,
            session_cell: session.get_cell(),
        }
    }

    /// The session serving the connection.
    pub fn session(&self) -> ActorRef<SessionMsg> {
        ActorRef::from(self.session_cell.clone())
    }
}

/// With the `test-hooks` feature only: a `chat` with this text makes the session fail, so
/// end-to-end tests can watch it restart.
#[cfg(feature = "test-hooks")]
pub const FAIL_SESSION_HOOK: &str = "test-hooks: fail the session";

/// With the `test-hooks` feature only: a `chat` with this text makes the node's `RoomHost` fail.
#[cfg(feature = "test-hooks")]
pub const FAIL_ROOM_HOST_HOOK: &str = "test-hooks: fail the room host";

/// The session actor.
pub struct Session;

/// A session's changing state.
pub struct SessionState {
    me: ActorRef<SessionMsg>,
    ctx: Arc<NodeCtx>,
    slot: RouteSlot,
    held: HeldTicket,
    id: SessionId,
    player: PlayerId,
    name: String,
    mmr: i64,
    conn: Option<Conn>,
    room: Option<RoomId>,
    ticket: Option<Queued>,
    grace_gen: u64,
    epoch: u64,
    /// Frames of the current connection handled so far.
    handled: u64,
    /// The player's seat is being looked for (a `welcome` said `recovering`): the generation of
    /// the search's deadline timer.
    seeking: Option<u64>,
    search_gen: u64,
    /// The room and node the player's last one-way input went to: when the room has moved since,
    /// the next one goes through that node, behind the earlier ones ([`crate::router::input_via`]).
    input_via: Option<(RoomId, warren_protocol::NodeId)>,
    /// The room the player last left: a copy of it adopted from a replica older than the leave
    /// calls for the seat, and is not answered ([`SessionState::seat_waiting`]).
    left: Option<RoomId>,
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
            slot: a.slot,
            held: a.held,
            id: a.id,
            name: a.player.to_string(),
            player: a.player,
            mmr: a.mmr,
            conn: None,
            room: None,
            ticket: None,
            grace_gen: 0,
            epoch: 0,
            handled: 0,
            seeking: None,
            search_gen: 0,
            input_via: None,
            left: None,
        })
    }

    async fn post_stop(
        &self,
        _me: ActorRef<SessionMsg>,
        st: &mut SessionState,
    ) -> Result<(), ActorProcessingErr> {
        if let Some(c) = st.conn.take() {
            st.slot.remove(c.id);
        }
        if st.ticket.take().is_some() {
            st.save_ticket();
        }
        Ok(())
    }

    async fn handle(
        &self,
        me: ActorRef<SessionMsg>,
        msg: SessionMsg,
        st: &mut SessionState,
    ) -> Result<(), ActorProcessingErr> {
        // The handling of one message is boxed: ractor keeps the actor's loop future for the
        // session's whole life, and with the handler inline it would be as large as the deepest
        // request (several KiB per idle session). Boxed, that memory exists only while a message
        // is being handled.
        Box::pin(st.handle(me, msg)).await
    }
}

impl SessionState {
    async fn handle(
        &mut self,
        me: ActorRef<SessionMsg>,
        msg: SessionMsg,
    ) -> Result<(), ActorProcessingErr> {
        let st = self;
        match msg {
            SessionMsg::Attach {
                conn,
                resumed,
                recover,
                name,
                epoch,
            } => st.attach(&me, conn, resumed, recover, name, epoch).await,
            SessionMsg::Frame { conn_id, n, frame } => {
                if st.conn.as_ref().is_some_and(|c| c.id == conn_id) {
                    match frame {
                        Ok(req) => st.request(req).await,
                        Err(e) => st.push(error_frame(e.rid, e.code, &e.message)),
                    }
                    st.handled = n;
                    st.publish_fast();
                }
            }
            SessionMsg::ConnClosed(conn_id) => {
                if st.conn.as_ref().is_some_and(|c| c.id == conn_id) {
                    st.detach(&me).await;
                }
            }
            SessionMsg::Close(code) => {
                // Frames the connection sends after this are not taken (it is detached now).
                if let Some(c) = &st.conn {
                    c.close(code);
                    st.detach(&me).await;
                }
            }
            SessionMsg::GraceOver(generation) => {
                if generation == st.grace_gen && st.conn.is_none() {
                    let host = SessionHost::of(&st.ctx);
                    let (player, epoch) = (st.player.clone(), st.epoch);
                    let expired = call!(host, |reply| SessionHostMsg::Expire {
                        player,
                        epoch,
                        reply
                    })
                    .unwrap_or(true);
                    if expired {
                        if let Some(room) = st.room.take() {
                            // Not a Leave: the player may have resumed on another node meanwhile,
                            // and its seat is that session's now.
                            let op = RoomOp::GraceOver {
                                player: st.player.clone(),
                                home: st.ctx.node.clone(),
                            };
                            st.room_notify(&room, op).await;
                        }
                        debug!(session = %st.id, player = %st.player, "grace period over, session ended");
                        me.stop(None);
                    }
                }
            }
            SessionMsg::Claim {
                ticket,
                claim,
                reply,
            } => {
                // A session whose node drains or is cut off, and whose player is gone, will not
                // see its player again: the player comes back on another node, where this ticket
                // does not follow (PROTOCOL.md). Seating it would hold a seat nobody learns of,
                // and the player, queued again there, would sit in two rooms.
                let gone = st.conn.is_none() && !st.ctx.is_serving();
                let ok = st.room.is_none()
                    && !gone
                    && match &mut st.ticket {
                        Some(q) if q.id == ticket && q.claim.is_none() => {
                            q.claim = Some(claim);
                            true
                        }
                        _ => false,
                    };
                if ok {
                    st.save_ticket();
                }
                let _ = reply.send(ok);
            }
            SessionMsg::Note(SessionNote::Release { ticket, claim }) => {
                if let Some(q) = &mut st.ticket
                    && q.id == ticket
                    && q.claim.as_ref() == Some(&claim)
                {
                    q.claim = None;
                    st.save_ticket();
                }
            }
            SessionMsg::Note(SessionNote::MatchFound {
                ticket,
                claim,
                room,
                game,
                players,
            }) => {
                let mine = st
                    .ticket
                    .as_ref()
                    .is_some_and(|q| q.id == ticket && q.claim.as_ref() == Some(&claim));
                if !mine {
                    // Cannot happen while pools claim first; give the seat back rather than
                    // hold two.
                    warn!(player = %st.player, room = %room, "match for a ticket not held; leaving its room");
                    let _ = st.op_on(&room, RoomOp::Leave(st.player.clone())).await;
                    return Ok(());
                }
                st.ticket = None;
                st.save_ticket();
                st.room = Some(room.clone());
                st.push(encode(&ServerMsg::MatchFound {
                    ticket: &ticket,
                    room: &room,
                    game: &game,
                    players: &players,
                }));
                st.publish_fast();
                let player = st.player.clone();
                let op = if st.conn.is_some() {
                    RoomOp::Resync(player)
                } else {
                    RoomOp::Disconnected {
                        player,
                        home: st.ctx.node.clone(),
                    }
                };
                st.room_notify(&room, op).await;
            }
            SessionMsg::CheckTicket(ticket) => st.check_ticket(&me, ticket),
            SessionMsg::SeekAgain(generation, attempt) => {
                if st.seeking == Some(generation) && st.room.is_none() {
                    match st.find_seat().await {
                        Some(room) => st.seat_found(room).await,
                        None => st.seek_later(&me, generation, attempt + 1),
                    }
                }
            }
            SessionMsg::SeatSearchOver(generation) => {
                if st.seeking == Some(generation) {
                    debug!(session = %st.id, player = %st.player, "no room holds the player's seat; seat search over");
                    st.end_search(None);
                }
            }
            SessionMsg::Note(SessionNote::SeatWaiting { room, at }) => {
                st.seat_waiting(room, at).await;
            }
            SessionMsg::Restarted { epoch } => {
                st.epoch = epoch;
                st.room = st.find_seat().await;
                // The failed session's ticket: the detach below treats it as on any dropped
                // connection (a queued ticket leaves its pool; one claimed for a match stays).
                st.ticket = st.held.last();
                if let Some(q) = &st.ticket {
                    let check = q.id.clone();
                    drop(me.send_after(TICKET_CHECK, move || SessionMsg::CheckTicket(check)));
                }
                st.detach(&me).await;
            }
            // The room is forgotten before the player hears of it, so a request sent on hearing
            // (a new `create_room`) finds the player free.
            SessionMsg::Note(SessionNote::RoomClosed { room, why }) => {
                if st.room.as_ref() == Some(&room) {
                    st.room = None;
                    st.publish_fast();
                }
                st.push(error_frame(None, ErrorCode::Internal, &why));
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

    /// Points the connection's realtime input path at the player's room, when that is a realtime
    /// room hosted here, as of the frames handled so far.
    fn publish_fast(&self) {
        if let Some(c) = &self.conn {
            let to = self
                .room
                .as_ref()
                .and_then(|r| self.ctx.directory.inputs(r));
            c.fast.set(self.handled, to);
        }
    }

    fn reply_ok(&self, rid: Option<u64>, fields: Map<String, Value>) {
        if let Some(rid) = rid {
            self.push(ok_frame(rid, fields));
        }
    }

    /// `ok` for success (only when there is a rid); `error` otherwise, with or without rid.
    fn reply_result(&self, rid: Option<u64>, r: OpResult) {
        match r {
            Ok(()) => self.reply_ok(rid, Map::new()),
            Err(RoomError { code, message }) => self.reply_err(rid, code, &message),
        }
    }

    fn reply_err(&self, rid: Option<u64>, code: ErrorCode, message: &str) {
        self.push(error_frame(rid, code, message));
    }

    async fn attach(
        &mut self,
        me: &ActorRef<SessionMsg>,
        conn: Conn,
        resumed: bool,
        recover: bool,
        name: String,
        epoch: u64,
    ) {
        if let Some(old) = self.conn.take() {
            old.fast.clear();
            old.close(CloseCode::Replaced);
        }
        self.handled = 0;
        self.grace_gen += 1;
        self.epoch = epoch;
        self.name = name;
        // A session of another node resumed here keeps its seat if the room still holds it. When
        // no room does yet (its node died and the cluster has not revived it), the seat is looked
        // for until `rooms.seat_search_ms`: the room calls for its player once it runs again.
        let search = (recover || self.seeking.is_some()) && self.room.is_none();
        let recovered = match search {
            true => self.find_seat().await,
            false => None,
        };
        let resumed = resumed || recovered.is_some();
        if recovered.is_some() {
            self.seeking = None;
        } else if search && self.seeking.is_none() {
            self.search_gen += 1;
            let generation = self.search_gen;
            self.seeking = Some(generation);
            let wait = Duration::from_millis(self.ctx.settings.load().rooms.seat_search_ms);
            drop(me.send_after(wait, move || SessionMsg::SeatSearchOver(generation)));
            self.seek_later(me, generation, 0);
        }
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
            recovering: self.seeking.is_some(),
            heartbeat_ms: hb,
        }));
        debug!(session = %self.id, player = %self.player, resumed, recover, room = ?self.room, found = ?recovered, seeking = self.seeking.is_some(), "connection attached");
        self.slot.install(Route::new(conn.clone(), me));
        self.conn = Some(conn);
        if recovered.is_some() {
            self.room = recovered;
        }
        if let Some(room) = self.room.clone() {
            let op = RoomOp::Reconnected {
                player: self.player.clone(),
                home: self.ctx.node.clone(),
            };
            self.room_notify(&room, op).await;
        }
        self.publish_fast();
    }

    async fn detach(&mut self, me: &ActorRef<SessionMsg>) {
        debug!(session = %self.id, player = %self.player, room = ?self.room, "connection detached, grace period starts");
        if let Some(c) = self.conn.take() {
            self.slot.remove(c.id);
        }
        // A ticket held for a match stays: the match will seat the player, who may resume. A
        // player this node sends away (draining, cut off) keeps its place for its next ticket.
        if self.ticket.as_ref().is_some_and(|q| q.claim.is_none()) {
            if self.ctx.is_serving() {
                self.leave_queue();
            } else {
                self.park_ticket();
            }
        }
        if let Some(room) = self.room.clone() {
            let op = RoomOp::Disconnected {
                player: self.player.clone(),
                home: self.ctx.node.clone(),
            };
            self.room_notify(&room, op).await;
        }
        self.grace_gen += 1;
        let generation = self.grace_gen;
        let grace = Duration::from_millis(self.ctx.settings.load().rooms.reconnect_grace_ms);
        // Detached: a stale timer carries an old generation and is ignored.
        drop(me.send_after(grace, move || SessionMsg::GraceOver(generation)));
    }
}
