//! The player's matchmaking ticket, as its session holds it.

use ractor::ActorRef;
use tracing::info;
use warren_protocol::{NodeId, TicketId};

use super::{SessionMsg, SessionState, TICKET_CHECK};
use crate::pool_host::{owner_of, send_pool};
use crate::remote::{PoolKey, PoolWire, TicketWire};
use crate::util::lock;

impl SessionState {
    /// Leaves the queue. False if a pool holds the ticket for a match (its `match_found` is on
    /// the way, so the player is about to be seated).
    pub(super) fn leave_queue(&mut self) -> bool {
        self.leave_queue_as(false)
    }

    /// Leaves the queue because this node sent the player away (a drain, a node cut off): the
    /// pool keeps the ticket's place for the player's next ticket (`PoolWire::Park`).
    pub(super) fn park_ticket(&mut self) -> bool {
        self.leave_queue_as(true)
    }

    fn leave_queue_as(&mut self, park: bool) -> bool {
        let Some(q) = self.ticket.take() else {
            return true;
        };
        if q.claim.is_some() {
            self.ticket = Some(q);
            return false;
        }
        self.save_ticket();
        let (pool, ticket, hops) = (q.pool, q.id, 0);
        let msg = match park {
            true => PoolWire::Park { pool, ticket, hops },
            false => PoolWire::Remove { pool, ticket, hops },
        };
        send_pool(&self.ctx, &q.owner, msg);
        true
    }

    /// Puts the session's ticket (or its absence) in the node's table of held tickets.
    pub(super) fn save_ticket(&self) {
        self.held.hold(self.ticket.as_ref());
    }

    /// Queues the ticket again on the pool's current owner when the node it was sent to has left
    /// the cluster; a ticket never depends on a dead node.
    pub(super) fn check_ticket(&mut self, me: &ActorRef<SessionMsg>, ticket: TicketId) {
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
}

/// The ticket each session of this node holds, kept in step by the session, so that the session
/// that replaces a failed one takes its ticket up again. The session host owns the table; each
/// session writes only its own player's entry ([`HeldTicket`]).
#[derive(Default)]
pub(crate) struct HeldTickets {
    held: std::sync::Mutex<std::collections::HashMap<warren_protocol::PlayerId, Queued>>,
}

impl HeldTickets {
    /// The handle of `player`'s session.
    pub(crate) fn slot(
        self: &std::sync::Arc<Self>,
        player: &warren_protocol::PlayerId,
    ) -> HeldTicket {
        HeldTicket {
            table: self.clone(),
            player: player.clone(),
        }
    }
}

/// One session's entry in [`HeldTickets`].
pub(crate) struct HeldTicket {
    table: std::sync::Arc<HeldTickets>,
    player: warren_protocol::PlayerId,
}

impl HeldTicket {
    /// Records the ticket the session holds (or that it holds none).
    pub(crate) fn hold(&self, ticket: Option<&Queued>) {
        let mut held = lock(&self.table.held);
        match ticket {
            Some(q) => held.insert(self.player.clone(), q.clone()),
            None => held.remove(&self.player),
        };
    }

    /// The ticket the player's previous session held.
    pub(crate) fn last(&self) -> Option<Queued> {
        lock(&self.table.held).get(&self.player).cloned()
    }
}

/// The player's ticket.
#[derive(Clone)]
pub(crate) struct Queued {
    pub(super) id: TicketId,
    pub(super) pool: PoolKey,
    pub(super) seats: u32,
    /// The node it was sent to.
    pub(super) owner: NodeId,
    pub(super) since_ms: u64,
    /// The match holding it, between a pool's claim and its outcome.
    pub(super) claim: Option<String>,
}
