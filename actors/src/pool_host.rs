//! `PoolHost`: hosts this node's matchmaking pools, one `Pool` per `(game, mode)`, spawned on first
//! use and restarted empty if one fails (its players see no `match_found` and can queue again).

use std::collections::HashMap;
use std::sync::Arc;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};
use tracing::error;
use warren_protocol::GameName;

use crate::node::NodeCtx;
use crate::pool::{Pool, PoolArgs, PoolMsg};

/// Messages of the pool host.
pub enum PoolHostMsg {
    /// The pool of `(game, mode)`, spawned if needed.
    Pool {
        /// Game.
        game: GameName,
        /// Mode.
        mode: String,
        /// Players per match.
        seats: u32,
        /// The pool.
        reply: RpcReplyPort<ActorRef<PoolMsg>>,
    },
}

// Local-only: never crosses nodes (the cluster layer carries its own envelopes).
impl ractor::Message for PoolHostMsg {}

/// The pool host actor.
pub struct PoolHost;

/// Its state.
pub struct PoolHostState {
    ctx: Arc<NodeCtx>,
    pools: HashMap<(GameName, String), ActorRef<PoolMsg>>,
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
        match msg {
            PoolHostMsg::Pool {
                game,
                mode,
                seats,
                reply,
            } => {
                let key = (game.clone(), mode.clone());
                if let Some(p) = st.pools.get(&key) {
                    let _ = reply.send(p.clone());
                    return Ok(());
                }
                let args = PoolArgs {
                    ctx: st.ctx.clone(),
                    game,
                    mode,
                    seats,
                };
                let (pool, _) = Actor::spawn_linked(None, Pool, args, me.get_cell()).await?;
                st.pools.insert(key, pool.clone());
                let _ = reply.send(pool);
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
        Ok(())
    }
}
