//! `SessionHost`: where a new connection finds its session. It spawns a `Session` on a player's
//! first connection and hands later connections (resume or replacement) to the same one, decides
//! whether a resume token is valid, and forgets a session once its grace period is over.
//!
//! Supervises the sessions. A session that fails is restarted under the same id, detached: its
//! connection is closed with 1011, the new session finds the player's seat and starts the grace
//! period, and the client resumes with the token it holds.

use std::collections::HashMap;
use std::sync::Arc;

use ractor::{Actor, ActorId, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};
use tracing::{error, warn};
use warren_protocol::{CloseCode, PlayerId, SessionId};

use crate::node::{Conn, NodeCtx};
use crate::routes::SessionsWriter;
use crate::session::ticket::HeldTickets;
use crate::session::{Session, SessionArgs, SessionMsg};

/// Messages of the session host.
pub enum SessionHostMsg {
    /// A new, authenticated connection.
    Connect {
        /// `sub` of its token.
        player: PlayerId,
        /// Display name.
        name: String,
        /// Rating.
        mmr: i64,
        /// `?resume=` token, if any.
        resume: Option<String>,
        /// The connection.
        conn: Conn,
        /// The session that now serves it.
        reply: RpcReplyPort<Option<ActorRef<SessionMsg>>>,
    },
    /// A session's grace period is over: forget it unless a connection arrived since `epoch`.
    Expire {
        /// The player.
        player: PlayerId,
        /// The session's last registration epoch.
        epoch: u64,
        /// True when the session should end.
        reply: RpcReplyPort<bool>,
    },
    /// The player's session, connected or in its grace period.
    Find {
        /// The player.
        player: PlayerId,
        /// Its session, if it has one here.
        reply: RpcReplyPort<Option<ActorRef<SessionMsg>>>,
    },
}

// Local-only: never crosses nodes (the cluster layer carries its own envelopes).
impl ractor::Message for SessionHostMsg {}

/// The session of `player` on this node: from the routing table when connected, else from the
/// host (a session in its grace period).
pub async fn find_session(ctx: &NodeCtx, player: &PlayerId) -> Option<ActorRef<SessionMsg>> {
    if let Some(r) = ctx.sessions.route(player) {
        return Some(r.session());
    }
    let host = SessionHost::of(ctx);
    let player = player.clone();
    ractor::call!(host, |reply| SessionHostMsg::Find { player, reply })
        .ok()
        .flatten()
}

struct Entry {
    session: ActorRef<SessionMsg>,
    id: SessionId,
    epoch: u64,
    mmr: i64,
}

/// The session host actor.
pub struct SessionHost;

impl SessionHost {
    /// The node's session host.
    pub fn of(ctx: &NodeCtx) -> ActorRef<SessionHostMsg> {
        ActorRef::from(ctx.hosts().sessions.clone())
    }
}

/// Its state.
pub struct SessionHostState {
    ctx: Arc<NodeCtx>,
    /// The one writer of the routing table.
    routes: SessionsWriter,
    /// The tickets its sessions hold.
    held: Arc<HeldTickets>,
    players: HashMap<PlayerId, Entry>,
    by_actor: HashMap<ActorId, PlayerId>,
    epochs: u64,
}

impl Actor for SessionHost {
    type Msg = SessionHostMsg;
    type State = SessionHostState;
    type Arguments = (Arc<NodeCtx>, SessionsWriter);

    async fn pre_start(
        &self,
        _me: ActorRef<SessionHostMsg>,
        (ctx, routes): (Arc<NodeCtx>, SessionsWriter),
    ) -> Result<SessionHostState, ActorProcessingErr> {
        Ok(SessionHostState {
            ctx,
            routes,
            held: Arc::default(),
            players: HashMap::new(),
            by_actor: HashMap::new(),
            epochs: 0,
        })
    }

    async fn handle(
        &self,
        me: ActorRef<SessionHostMsg>,
        msg: SessionHostMsg,
        st: &mut SessionHostState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            SessionHostMsg::Connect {
                player,
                name,
                mmr,
                resume,
                conn,
                reply,
            } => {
                let r = st.connect(&me, player, name, mmr, resume, conn).await;
                let _ = reply.send(r);
            }
            SessionHostMsg::Expire {
                player,
                epoch,
                reply,
            } => {
                let expired = match st.players.get(&player) {
                    Some(e) if e.epoch == epoch => {
                        let e = st.players.remove(&player);
                        if let Some(e) = e {
                            st.by_actor.remove(&e.session.get_id());
                        }
                        true
                    }
                    Some(_) => false,
                    None => true,
                };
                let _ = reply.send(expired);
            }
            SessionHostMsg::Find { player, reply } => {
                let _ = reply.send(st.players.get(&player).map(|e| e.session.clone()));
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        me: ActorRef<SessionHostMsg>,
        evt: SupervisionEvent,
        st: &mut SessionHostState,
    ) -> Result<(), ActorProcessingErr> {
        let (cell, failed) = match evt {
            SupervisionEvent::ActorTerminated(cell, _, _) => (cell, None),
            SupervisionEvent::ActorFailed(cell, err) => (cell, Some(err)),
            _ => return Ok(()),
        };
        let Some(player) = st.by_actor.remove(&cell.get_id()) else {
            return Ok(());
        };
        let current = st
            .players
            .get(&player)
            .is_some_and(|e| e.session.get_id() == cell.get_id());
        if !current {
            return Ok(());
        }
        let Some(err) = failed else {
            st.players.remove(&player);
            return Ok(());
        };
        error!(player = %player, error = %err, "session failed; restarting it");
        metrics::counter!("warren_session_restarts_total").increment(1);
        // Its connection: the socket task would notice the dead session only at the client's
        // next frame.
        if let Some(route) = st.ctx.sessions.route(&player)
            && route.session_cell.get_id() == cell.get_id()
        {
            st.routes.remove(&player, route.conn.id);
            route.conn.close(CloseCode::Internal);
        }
        st.restart(&me, player).await;
        Ok(())
    }
}

impl SessionHostState {
    /// Starts the failed session of `player` again, same id, without a connection.
    async fn restart(&mut self, me: &ActorRef<SessionHostMsg>, player: PlayerId) {
        let Some(old) = self.players.remove(&player) else {
            return;
        };
        let args = SessionArgs {
            ctx: self.ctx.clone(),
            id: old.id.clone(),
            player: player.clone(),
            mmr: old.mmr,
            slot: self.routes.slot(&player),
            held: self.held.slot(&player),
        };
        let session = match Actor::spawn_linked(None, Session, args, me.get_cell()).await {
            Ok((s, _)) => s,
            Err(e) => {
                warn!(player = %player, error = %e, "session failed to restart");
                return;
            }
        };
        if session
            .cast(SessionMsg::Restarted { epoch: old.epoch })
            .is_err()
        {
            return;
        }
        self.by_actor.insert(session.get_id(), player.clone());
        self.players.insert(player, Entry { session, ..old });
    }

    async fn connect(
        &mut self,
        me: &ActorRef<SessionHostMsg>,
        player: PlayerId,
        name: String,
        mmr: i64,
        resume: Option<String>,
        conn: Conn,
    ) -> Option<ActorRef<SessionMsg>> {
        self.epochs += 1;
        let epoch = self.epochs;
        let claims = resume
            .as_deref()
            .and_then(|t| self.ctx.resume_key.verify(t, crate::util::now_ms()));
        if let Some(e) = self.players.get_mut(&player) {
            let resumed = claims
                .as_ref()
                .is_some_and(|c| c.player == player && c.session == e.id);
            e.epoch = epoch;
            let attach = SessionMsg::Attach {
                conn: conn.clone(),
                resumed,
                recover: false,
                name: name.clone(),
                epoch,
            };
            if e.session.cast(attach).is_ok() {
                return Some(e.session.clone());
            }
            // The session is stopping; start a fresh one below.
            self.by_actor.remove(&e.session.get_id());
            self.players.remove(&player);
        }
        let id = SessionId::new(self.ctx.new_id("s"));
        let args = SessionArgs {
            ctx: self.ctx.clone(),
            id: id.clone(),
            player: player.clone(),
            mmr,
            slot: self.routes.slot(&player),
            held: self.held.slot(&player),
        };
        let session = match Actor::spawn_linked(None, Session, args, me.get_cell()).await {
            Ok((s, _)) => s,
            Err(e) => {
                warn!(player = %player, error = %e, "session failed to start");
                return None;
            }
        };
        // Registered before it looks for the player's seat, so that a room revived meanwhile,
        // calling for its player, finds this session.
        self.by_actor.insert(session.get_id(), player.clone());
        self.players.insert(
            player.clone(),
            Entry {
                session: session.clone(),
                id,
                epoch,
                mmr,
            },
        );
        let attach = SessionMsg::Attach {
            conn,
            resumed: false,
            // A valid token naming a session this node does not have: one of another node
            // (drained or dead), or one that expired here. The session looks for the seat.
            recover: claims.is_some_and(|c| c.player == player),
            name,
            epoch,
        };
        if session.cast(attach).is_err() {
            self.by_actor.remove(&session.get_id());
            self.players.remove(&player);
            return None;
        }
        Some(session)
    }
}
