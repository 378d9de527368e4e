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
use serde_json::{Map, Value, json};
use tracing::{debug, info, warn};
use warren_protocol::{
    ClientRequest, CloseCode, DecodeError, ErrorCode, GameName, NodeId, Outbound, PlayerId,
    Request, RoomId, ServerMsg, SessionId, TicketId, encode, error_frame, ok_frame,
};

use crate::node::{Conn, Location, NodeCtx, Route, lock, now_ms};
use crate::pool_host::{owner_of, send_pool};
use crate::remote::{OpResult, PoolKey, PoolWire, RoomOp, SessionNote, TicketWire};
use crate::room::{self, RoomMsg};
use crate::room_host::{CreateRoomError, RoomHostMsg};
use crate::session_host::SessionHostMsg;

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
            handled: 0,
            seeking: None,
            search_gen: 0,
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
                            let player = st.player.clone();
                            st.room_notify(&room, RoomOp::Leave(player)).await;
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
                let ok = st.room.is_none()
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
                st.ticket = lock(&st.ctx.held_tickets).get(&st.player).cloned();
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
            Err((code, message)) => self.reply_err(rid, code, &message),
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
        self.ctx.sessions.insert(
            self.player.clone(),
            Route {
                conn: conn.clone(),
                session: me.clone(),
            },
        );
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

    /// The room holding the player's seat, wherever it is hosted: for a session resumed here
    /// from another node's (that node drained or died).
    async fn find_seat(&self) -> Option<RoomId> {
        if let Some(room) = self.ctx.directory.seat_of(&self.player) {
            return Some(room);
        }
        self.ctx.peers()?.find_seat(self.player.clone()).await
    }

    /// Ends the seat search a `welcome` announced, if one is on: the player learns where its seat
    /// is, or that none was found.
    fn end_search(&mut self, room: Option<&RoomId>) {
        if self.seeking.take().is_some() {
            self.push(encode(&ServerMsg::RecoveryDone { room }));
        }
    }

    /// A room revived after its node died holds the player's seat. A session that holds no seat
    /// and no ticket takes it (the player reconnected here before the room came back); one that
    /// has moved on leaves it to be released after the grace period.
    async fn seat_waiting(&mut self, room: RoomId, at: Location) {
        if self.room.is_some() || self.ticket.is_some() {
            return;
        }
        info!(session = %self.id, player = %self.player, room = %room, "the player's seat is back; reattaching");
        self.ctx.directory.learn(&room, at);
        self.room = Some(room.clone());
        self.end_search(Some(&room));
        if self.conn.is_some() {
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
            self.ctx.sessions.remove(&self.player, c.id);
        }
        // A ticket held for a match stays: the match will seat the player, who may resume.
        if self.ticket.as_ref().is_some_and(|q| q.claim.is_none()) {
            self.leave_queue();
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

    /// Where a room is: hosted here, or on another node of the cluster.
    fn link_to(&self, room: &RoomId) -> Option<Link> {
        if self.ctx.directory.hosts(room) {
            return Some(Link::Local);
        }
        let at = self.ctx.directory.locate(&self.ctx.node, room)?;
        self.ctx.peers()?;
        // A room whose id names this node but that is not here (any more) may have moved on
        // while this node was cut off or restarting: the cluster layer asks the other nodes.
        Some(Link::Remote(at.node))
    }

    /// The link to the player's room; forgets a room that is gone.
    fn room_link(&mut self) -> Option<Link> {
        let room = self.room.clone()?;
        let link = self.link_to(&room);
        if link.is_none() {
            self.room = None;
        }
        link
    }

    /// Runs an operation on the player's room wherever it is hosted. A room that turned out to be
    /// gone is forgotten.
    async fn room_op(&mut self, op: RoomOp) -> OpResult {
        let Some(room) = self.room.clone() else {
            return Err((ErrorCode::NotInRoom, "not in a room".into()));
        };
        let r = self.op_on(&room, op).await;
        if matches!(&r, Err((ErrorCode::NotFound, _))) && self.room.as_ref() == Some(&room) {
            self.room = None;
        }
        r
    }

    async fn op_on(&self, room: &RoomId, op: RoomOp) -> OpResult {
        match (self.link_to(room), self.ctx.peers()) {
            // In a cluster, the room may leave while the request waits for it; the cluster layer
            // follows it.
            (Some(Link::Local), Some(peers)) => peers.room_op(&self.ctx.node, room, op).await,
            (Some(Link::Local), None) => room::apply(&self.ctx, room, op).await,
            (Some(Link::Remote(node)), Some(peers)) => peers.room_op(&node, room, op).await,
            _ => Err((ErrorCode::NotFound, "no such room".into())),
        }
    }

    /// Tells a room about the player's connection; local rooms by a cast, remote ones in order
    /// (awaited, so a disconnect can never overtake the reconnect that follows it).
    async fn room_notify(&mut self, room: &RoomId, op: RoomOp) {
        let delivered = match self.link_to(room) {
            Some(_) => !matches!(self.op_on(room, op).await, Err((ErrorCode::NotFound, _))),
            None => false,
        };
        if !delivered && self.room.as_ref() == Some(room) {
            self.room = None;
        }
    }

    /// Leaves the queue. False if a pool holds the ticket for a match (its `match_found` is on
    /// the way, so the player is about to be seated).
    fn leave_queue(&mut self) -> bool {
        let Some(q) = self.ticket.take() else {
            return true;
        };
        if q.claim.is_some() {
            self.ticket = Some(q);
            return false;
        }
        self.save_ticket();
        let msg = PoolWire::Remove {
            pool: q.pool,
            ticket: q.id,
            hops: 0,
        };
        send_pool(&self.ctx, &q.owner, msg);
        true
    }

    /// Puts the session's ticket (or its absence) in the node's table of held tickets.
    fn save_ticket(&self) {
        let mut held = lock(&self.ctx.held_tickets);
        match &self.ticket {
            Some(q) => {
                held.insert(self.player.clone(), q.clone());
            }
            None => {
                held.remove(&self.player);
            }
        }
    }

    /// Queues the ticket again on the pool's current owner when the node it was sent to has left
    /// the cluster; a ticket never depends on a dead node.
    fn check_ticket(&mut self, me: &ActorRef<SessionMsg>, ticket: TicketId) {
        let Some(q) = self.ticket.as_mut().filter(|q| q.id == ticket) else {
            return;
        };
        if q.claim.is_none()
            && q.owner != self.ctx.node
            && let Some(peers) = self.ctx.peers()
            && !peers.reachable(&q.owner)
        {
            let owner = owner_of(&self.ctx, &q.pool.label());
            info!(player = %self.player, from = %q.owner, to = %owner, "the ticket's node left the cluster; queueing again");
            q.owner = owner.clone();
            // An owned copy, so the table can be updated once it is sent.
            let q = q.clone();
            let msg = PoolWire::Enqueue {
                pool: q.pool.clone(),
                seats: q.seats,
                ticket: TicketWire {
                    id: q.id.clone(),
                    player: self.player.clone(),
                    name: self.name.clone(),
                    mmr: self.mmr,
                    home: self.ctx.node.clone(),
                    since_ms: q.since_ms,
                },
                hops: 0,
            };
            send_pool(&self.ctx, &owner, msg);
            self.save_ticket();
        }
        drop(me.send_after(TICKET_CHECK, move || SessionMsg::CheckTicket(ticket)));
    }

    async fn request(&mut self, ClientRequest { rid, req }: ClientRequest) {
        #[cfg(feature = "test-hooks")]
        if matches!(&req, Request::Chat { text } if text == FAIL_SESSION_HOOK) {
            panic!("test hook: the session fails");
        }
        #[cfg(feature = "test-hooks")]
        if matches!(&req, Request::Chat { text } if text == FAIL_ROOM_HOST_HOOK) {
            let _ = self.ctx.hosts().rooms.cast(RoomHostMsg::FailForTest);
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
                if self.room_link().is_none() {
                    return self.reply_err(rid, ErrorCode::NotInRoom, "not in a room");
                }
                let player = self.player.clone();
                match self.room_op(RoomOp::Leave(player)).await {
                    Err((ErrorCode::NotFound, _)) => {
                        self.reply_err(rid, ErrorCode::NotInRoom, "not in a room")
                    }
                    _ => {
                        self.room = None;
                        self.reply_ok(rid, Map::new());
                    }
                }
            }
            Request::Ready => {
                if self.room_link().is_none() {
                    return self.reply_err(rid, ErrorCode::NotInRoom, "not in a room");
                }
                let player = self.player.clone();
                let r = self.room_op(RoomOp::Ready(player)).await;
                self.reply_result(rid, r);
            }
            Request::Input { data, seq } => {
                let player = self.player.clone();
                match self.room_link() {
                    None => self.reply_err(rid, ErrorCode::NotInRoom, "not in a room"),
                    // Inputs without a rid are the realtime hot path: a cast, no reply to wait for.
                    Some(Link::Local)
                        if rid.is_none()
                            && !self
                                .ctx
                                .directory
                                .is_moving(self.room.as_ref().unwrap_or(&RoomId::new(""))) =>
                    {
                        let room = self.room.clone().unwrap_or_else(|| RoomId::new(""));
                        room::send_room(
                            &self.ctx,
                            &room,
                            RoomMsg::Input {
                                player,
                                seq,
                                data,
                                reply: None,
                            },
                        )
                        .await;
                    }
                    Some(Link::Local) if rid.is_none() => {
                        // The room is moving to another node: wait for it, then follow it.
                        let data = Value::Object(data).to_string();
                        if let Err((code, message)) =
                            self.room_op(RoomOp::Input { player, seq, data }).await
                        {
                            self.reply_err(None, code, &message);
                        }
                    }
                    Some(Link::Local) => {
                        let room = self.room.clone().unwrap_or_else(|| RoomId::new(""));
                        let r = room::call_room(&self.ctx, &room, |reply| RoomMsg::Input {
                            player: player.clone(),
                            seq,
                            data: data.clone(),
                            reply: Some(reply),
                        })
                        .await;
                        match r {
                            Ok(r) => self.reply_result(rid, r.map_err(|e| (e.code, e.message))),
                            Err(room::RoomCallErr::Gone)
                                if self.ctx.directory.moved_to(&room).is_some() =>
                            {
                                let data = Value::Object(data).to_string();
                                let r = self.room_op(RoomOp::Input { player, seq, data }).await;
                                self.reply_result(rid, r);
                            }
                            Err(room::RoomCallErr::Gone) => {
                                self.reply_err(rid, ErrorCode::NotInRoom, "the room is gone")
                            }
                            Err(room::RoomCallErr::Failed) => self.reply_err(
                                rid,
                                ErrorCode::Internal,
                                "the room failed while handling the input",
                            ),
                        }
                    }
                    Some(Link::Remote(node)) => {
                        let mut data = Value::Object(data).to_string();
                        // Without a rid there is no reply to wait for: one way, when the room's
                        // node can take it.
                        if rid.is_none()
                            && let (Some(peers), Some(room)) = (self.ctx.peers(), &self.room)
                        {
                            match peers.room_input(&node, room, player.clone(), seq, data) {
                                Ok(()) => return,
                                Err(back) => data = back,
                            }
                        }
                        let r = self.room_op(RoomOp::Input { player, seq, data }).await;
                        self.reply_result(rid, r);
                    }
                }
            }
            Request::Chat { text } => {
                if self.room_link().is_none() {
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

    async fn create_room(
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
        if self.room_link().is_some() {
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
        let host = self.ctx.hosts().rooms.clone();
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
        // Joining the room that holds the player's seat reattaches it (a fresh `room_state`).
        if self.room.as_ref() != Some(&room) && self.room_link().is_some() {
            return self.reply_err(
                rid,
                ErrorCode::AlreadyInRoom,
                "already in a room; leave it first",
            );
        }
        if self.link_to(&room).is_none() {
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
            Err((code, message)) => self.reply_err(rid, code, &message),
        }
    }

    async fn queue(&mut self, rid: Option<u64>, game: GameName, mode: String) {
        if self.room_link().is_some() {
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
            seats: spec.default_seats,
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
            seats: spec.default_seats,
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

/// The player's ticket.
#[derive(Clone)]
pub(crate) struct Queued {
    id: TicketId,
    pool: PoolKey,
    seats: u32,
    /// The node it was sent to.
    owner: NodeId,
    since_ms: u64,
    /// The match holding it, between a pool's claim and its outcome.
    claim: Option<String>,
}

/// Where a room is, as a session reaches it.
enum Link {
    /// Hosted on this node.
    Local,
    /// Hosted on another node.
    Remote(NodeId),
}
