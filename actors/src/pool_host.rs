//! `PoolHost`: hosts the matchmaking pools this node owns, one `Pool` per `(game, mode)`, spawned on
//! first use and restarted empty if one fails (its players' sessions see their ticket vanish and
//! can queue again), and retired once it has been empty for `matchmaking.pool_idle_ms`.
//!
//! Every pool message goes through here, from this node's sessions or from other nodes: a message
//! for a pool another node owns (by this node's view of the ring) is forwarded there, at most
//! [`MAX_HOPS`] times so that nodes disagreeing for a moment about the ring cannot bounce a ticket
//! forever; after that, or when the owner cannot be reached, the pool is served here.

use std::collections::HashMap;
use std::sync::Arc;

use ractor::{Actor, ActorProcessingErr, ActorRef, SupervisionEvent};
use tracing::{error, warn};
use warren_protocol::{NodeId, TicketId};

use crate::node::NodeCtx;
use crate::pool::{Pool, PoolArgs, PoolMsg};
use crate::remote::{PoolKey, PoolWire};

/// Most forwards of one pool message between nodes.
pub const MAX_HOPS: u8 = 3;

/// Messages of the pool host.
pub enum PoolHostMsg {
    /// A pool message, from a session here or from another node.
    Wire(PoolWire),
    /// A pool has been empty for a while and asks to stop.
    Retire {
        /// Its key.
        pool: PoolKey,
        /// The asking actor (a newer pool of the same key is kept).
        id: ractor::ActorId,
    },
}

// Local-only: never crosses nodes (the cluster layer carries its own envelopes).
impl ractor::Message for PoolHostMsg {}

/// The node owning the pool with ring key `key` (this node when alone, or when no node is ready).
pub fn owner_of(ctx: &NodeCtx, key: &str) -> NodeId {
    ctx.peers()
        .and_then(|p| p.pool_owner(key))
        .unwrap_or_else(|| ctx.node.clone())
}

/// Sends a pool message to `node`'s pool host; served here when `node` is this one or cannot be
/// reached.
pub fn send_pool(ctx: &NodeCtx, node: &NodeId, msg: PoolWire) {
    let msg = if *node == ctx.node {
        msg
    } else {
        match ctx.peers() {
            Some(p) if p.pool(node, msg.clone()) => return,
            _ => final_hop(msg),
        }
    };
    if PoolHost::of(ctx).cast(PoolHostMsg::Wire(msg)).is_err() {
        warn!("the pool host is gone; a matchmaking message was dropped");
    }
}

fn final_hop(msg: PoolWire) -> PoolWire {
    match msg {
        PoolWire::Enqueue {
            pool,
            seats,
            ticket,
            ..
        } => PoolWire::Enqueue {
            pool,
            seats,
            ticket,
            hops: MAX_HOPS,
        },
        PoolWire::Remove { pool, ticket, .. } => PoolWire::Remove {
            pool,
            ticket,
            hops: MAX_HOPS,
        },
        PoolWire::Park { pool, ticket, .. } => PoolWire::Park {
            pool,
            ticket,
            hops: MAX_HOPS,
        },
        h @ PoolWire::Handoff { .. } => h,
    }
}

/// The pool host actor.
pub struct PoolHost;

impl PoolHostState {
    /// A `Remove` (or, `park`ed, a `Park`): to the pool here, or on to its owner.
    fn remove(&mut self, pool: PoolKey, ticket: TicketId, hops: u8, park: bool) {
        if let Some(p) = self.pools.get(&pool) {
            let _ = p.cast(PoolMsg::Remove { ticket, hops, park });
            return;
        }
        let owner = owner_of(&self.ctx, &pool.label());
        if owner != self.ctx.node && hops < MAX_HOPS {
            let hops = hops + 1;
            let msg = match park {
                true => PoolWire::Park { pool, ticket, hops },
                false => PoolWire::Remove { pool, ticket, hops },
            };
            send_pool(&self.ctx, &owner, msg);
        }
    }
}

impl PoolHost {
    /// The node's pool host.
    pub fn of(ctx: &NodeCtx) -> ActorRef<PoolHostMsg> {
        ActorRef::from(ctx.hosts().pools.clone())
    }
}

/// Its state.
pub struct PoolHostState {
    ctx: Arc<NodeCtx>,
    pools: HashMap<PoolKey, ActorRef<PoolMsg>>,
}

impl Actor for PoolHost {
    type Msg = PoolHostMsg;
    type State = PoolHostState;
    type Arguments = Arc<NodeCtx>;

    async fn pre_start(
        &self,
        _me: ActorRef<PoolHostMsg>,
        ctx: Arc<NodeCtx>,
    ) -> Result<PoolHostState, ActorProcessingErr> {
        Ok(PoolHostState {
            ctx,
            pools: HashMap::new(),
        })
    }

    async fn handle(
        &self,
        me: ActorRef<PoolHostMsg>,
        msg: PoolHostMsg,
        st: &mut PoolHostState,
    ) -> Result<(), ActorProcessingErr> {
        let msg = match msg {
            PoolHostMsg::Wire(msg) => msg,
            PoolHostMsg::Retire { pool, id } => {
                // From here on, messages for this key go to a new pool. The old one hands back
                // whatever reached it before it stops.
                if st.pools.get(&pool).is_some_and(|p| p.get_id() == id)
                    && let Some(p) = st.pools.remove(&pool)
                {
                    let _ = p.cast(PoolMsg::Stop);
                    metrics::gauge!("warren_matchmaking_pools").set(st.pools.len() as f64);
                }
                return Ok(());
            }
        };
        match msg {
            PoolWire::Enqueue {
                pool,
                seats,
                ticket,
                hops,
            } => {
                let owner = owner_of(&st.ctx, &pool.label());
                if owner != st.ctx.node && hops < MAX_HOPS {
                    let msg = PoolWire::Enqueue {
                        pool,
                        seats,
                        ticket,
                        hops: hops + 1,
                    };
                    send_pool(&st.ctx, &owner, msg);
                } else {
                    let p = st.pool(&me, pool, seats).await?;
                    let _ = p.cast(PoolMsg::Enqueue(vec![ticket]));
                }
            }
            PoolWire::Remove { pool, ticket, hops } => st.remove(pool, ticket, hops, false),
            PoolWire::Park { pool, ticket, hops } => st.remove(pool, ticket, hops, true),
            PoolWire::Handoff {
                pool,
                seats,
                tickets,
            } => {
                // A draining node is out of the ring in its own view before its peers hear of it,
                // so a peer may hand it a pool back; pass it straight on.
                let owner = owner_of(&st.ctx, &pool.label());
                if st.ctx.is_draining() && owner != st.ctx.node {
                    let msg = PoolWire::Handoff {
                        pool: pool.clone(),
                        seats,
                        tickets: tickets.clone(),
                    };
                    if st.ctx.peers().is_some_and(|p| p.pool(&owner, msg)) {
                        return Ok(());
                    }
                }
                let p = st.pool(&me, pool, seats).await?;
                let _ = p.cast(PoolMsg::Enqueue(tickets));
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        _me: ActorRef<PoolHostMsg>,
        evt: SupervisionEvent,
        st: &mut PoolHostState,
    ) -> Result<(), ActorProcessingErr> {
        let cell = match &evt {
            SupervisionEvent::ActorFailed(cell, err) => {
                error!(error = %err, "matchmaking pool failed");
                cell
            }
            SupervisionEvent::ActorTerminated(cell, _, _) => cell,
            _ => return Ok(()),
        };
        st.pools.retain(|_, p| p.get_id() != cell.get_id());
        metrics::gauge!("warren_matchmaking_pools").set(st.pools.len() as f64);
        Ok(())
    }
}

impl PoolHostState {
    /// The pool of `key`, spawned if needed.
    async fn pool(
        &mut self,
        me: &ActorRef<PoolHostMsg>,
        key: PoolKey,
        seats: u32,
    ) -> Result<ActorRef<PoolMsg>, ActorProcessingErr> {
        if let Some(p) = self.pools.get(&key) {
            return Ok(p.clone());
        }
        let args = PoolArgs {
            ctx: self.ctx.clone(),
            key: key.clone(),
            seats,
        };
        let (pool, _) = Actor::spawn_linked(None, Pool, args, me.get_cell()).await?;
        self.pools.insert(key, pool.clone());
        metrics::gauge!("warren_matchmaking_pools").set(self.pools.len() as f64);
        Ok(pool)
    }
}
