//! `Pool`: the matchmaking pool of one `(game, mode)`. Forms matches from its [`MatchQueue`],
//! creates each match's room through `RoomHost` with the players already seated, and tells every
//! matched player's session (`match_found`, then the room sends `room_state`).
//!
//! Supervised by `PoolHost`.

use std::sync::Arc;
use std::time::Duration;

use ractor::concurrency::JoinHandle;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort, call};
use serde_json::Map;
use tracing::{debug, warn};
use warren_protocol::{GameName, PlayerId, TicketId};

use crate::matchmaking::{MatchQueue, Windows};
use crate::node::{NodeCtx, now_ms};
use crate::room_host::RoomHostMsg;
use crate::session::SessionMsg;

/// A queued player.
pub struct Ticket {
    /// Ticket id, returned to the client.
    pub id: TicketId,
    /// The player.
    pub player: PlayerId,
    /// Display name, for the seat.
    pub name: String,
    /// Rating.
    pub mmr: i64,
    /// The player's session, told when the match forms.
    pub session: ActorRef<SessionMsg>,
}

/// Messages of a pool.
pub enum PoolMsg {
    /// Queue a ticket.
    Enqueue(Ticket),
    /// Remove a ticket; answers false when it was not queued (already matched or never queued).
    Remove {
        /// The ticket.
        ticket: TicketId,
        /// Answered when given.
        reply: Option<RpcReplyPort<bool>>,
    },
    /// Look again at waiting tickets, whose windows have widened.
    Sweep,
}

// Local-only: never crosses nodes (the cluster layer carries its own envelopes).
impl ractor::Message for PoolMsg {}

/// How a pool starts.
pub struct PoolArgs {
    /// Node context.
    pub ctx: Arc<NodeCtx>,
    /// Its game.
    pub game: GameName,
    /// Its mode.
    pub mode: String,
    /// Players per match.
    pub seats: u32,
}

/// The pool actor.
pub struct Pool;

/// A pool's changing state.
pub struct PoolState {
    ctx: Arc<NodeCtx>,
    game: GameName,
    label: String,
    queue: MatchQueue<TicketId, Ticket>,
    sweeper: Option<JoinHandle<()>>,
}

impl Actor for Pool {
    type Msg = PoolMsg;
    type State = PoolState;
    type Arguments = PoolArgs;

    async fn pre_start(
        &self,
        me: ActorRef<PoolMsg>,
        a: PoolArgs,
    ) -> Result<PoolState, ActorProcessingErr> {
        let every =
            Duration::from_millis(a.ctx.settings.load().matchmaking.sweep_interval_ms.max(10));
        Ok(PoolState {
            label: format!("{}:{}", a.game, a.mode),
            ctx: a.ctx,
            game: a.game,
            queue: MatchQueue::new(a.seats as usize),
            sweeper: Some(me.send_interval(every, || PoolMsg::Sweep)),
        })
    }

    async fn post_stop(
        &self,
        _me: ActorRef<PoolMsg>,
        st: &mut PoolState,
    ) -> Result<(), ActorProcessingErr> {
        if let Some(s) = st.sweeper.take() {
            s.abort();
        }
        Ok(())
    }

    async fn handle(
        &self,
        _me: ActorRef<PoolMsg>,
        msg: PoolMsg,
        st: &mut PoolState,
    ) -> Result<(), ActorProcessingErr> {
        let windows = Windows::from(&st.ctx.settings.load().matchmaking);
        let now = now_ms();
        match msg {
            PoolMsg::Enqueue(t) => {
                let id = t.id.clone();
                if st.queue.insert(id.clone(), t.mmr, now, t)
                    && let Some(group) = st.queue.match_around(&id, now, &windows)
                {
                    st.seat(group, now).await;
                }
            }
            PoolMsg::Remove { ticket, reply } => {
                let removed = st.queue.remove(&ticket).is_some();
                if let Some(r) = reply {
                    let _ = r.send(removed);
                }
            }
            PoolMsg::Sweep => {
                for group in st.queue.sweep(now, &windows) {
                    st.seat(group, now).await;
                }
            }
        }
        metrics::gauge!("warren_matchmaking_tickets", "pool" => st.label.clone())
            .set(st.queue.len() as f64);
        Ok(())
    }
}

impl PoolState {
    async fn seat(&mut self, group: Vec<(TicketId, Ticket, u64)>, now: u64) {
        let players: Vec<(PlayerId, String)> = group
            .iter()
            .map(|(_, t, _)| (t.player.clone(), t.name.clone()))
            .collect();
        let host = self.ctx.hosts().rooms.clone();
        let game = self.game.clone();
        let created = call!(host, |reply| RoomHostMsg::Create {
            game,
            params: Map::new(),
            private: true,
            players,
            reply,
        });
        let room = match created {
            Ok(Ok((room, _))) => room,
            other => {
                let why = match other {
                    Ok(Err(e)) => e.to_string(),
                    Err(e) => e.to_string(),
                    Ok(Ok(_)) => String::new(),
                };
                warn!(pool = %self.label, error = %why, "match formed but its room could not be created; tickets requeued");
                for (id, t, since) in group {
                    let mmr = t.mmr;
                    self.queue.insert(id, mmr, since, t);
                }
                return;
            }
        };
        debug!(pool = %self.label, room = %room, "match formed");
        metrics::counter!("warren_matches_total", "game" => self.game.to_string()).increment(1);
        let ids: Vec<PlayerId> = group.iter().map(|(_, t, _)| t.player.clone()).collect();
        for (id, t, since) in group {
            metrics::histogram!("warren_match_wait_seconds", "game" => self.game.to_string())
                .record(now.saturating_sub(since) as f64 / 1000.0);
            let _ = t.session.cast(SessionMsg::MatchFound {
                ticket: id,
                room: room.clone(),
                game: self.game.clone(),
                players: ids.clone(),
            });
        }
    }
}
