//! `NodeSupervisor`: the root of the node's supervision tree. The host actors (`RoomHost`,
//! `PoolHost`, `SessionHost`), the cluster layer's actors (node server, membership, inbox) are its
//! linked children, and it watches the node's long-lived tasks (replication, the guard, discovery,
//! rebalancing, metrics upkeep).
//!
//! None of them is meant to stop while the node runs. When one fails or stops anyway, the node
//! cannot serve as it claims to (a dead `SessionHost` takes no player; a dead inbox hears no other
//! node), and restarting it alone would lose the routes its children hold. So the supervisor
//! reports the failure and the node exits at once with a clear log line and a non-zero code,
//! exactly as a crash would: the other nodes adopt its rooms from their replicas and its players
//! resume elsewhere. Never a node that looks ready and is broken.
//!
//! ```text
//! NodeSupervisor
//! ├── RoomHost ── Room*
//! ├── PoolHost ── Pool*
//! ├── SessionHost ── Session*
//! ├── NodeServer, Membership, NodeInbox   (cluster layer)
//! └── watched tasks: replicate, guard, discovery, rebalance, metrics upkeep
//! ```

use ractor::concurrency::JoinHandle;
use ractor::{Actor, ActorProcessingErr, ActorRef, SupervisionEvent};
use tokio::sync::mpsc;
use tracing::error;

/// Messages of the node supervisor.
pub enum NodeSupervisorMsg {
    /// A watched task ended.
    TaskEnded {
        /// The task.
        name: &'static str,
        /// How: it returned, or panicked.
        why: String,
    },
}

// Local-only: never crosses nodes.
impl ractor::Message for NodeSupervisorMsg {}

/// The node supervisor actor.
pub struct NodeSupervisor;

/// Where it reports a failure: the node's main loop, which then exits.
pub struct NodeSupervisorState {
    fatal: mpsc::UnboundedSender<String>,
}

impl Actor for NodeSupervisor {
    type Msg = NodeSupervisorMsg;
    type State = NodeSupervisorState;
    type Arguments = mpsc::UnboundedSender<String>;

    async fn pre_start(
        &self,
        _me: ActorRef<NodeSupervisorMsg>,
        fatal: mpsc::UnboundedSender<String>,
    ) -> Result<NodeSupervisorState, ActorProcessingErr> {
        Ok(NodeSupervisorState { fatal })
    }

    async fn handle(
        &self,
        _me: ActorRef<NodeSupervisorMsg>,
        msg: NodeSupervisorMsg,
        st: &mut NodeSupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        let NodeSupervisorMsg::TaskEnded { name, why } = msg;
        st.report(format!("the {name} task {why}"));
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        _me: ActorRef<NodeSupervisorMsg>,
        evt: SupervisionEvent,
        st: &mut NodeSupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        match evt {
            SupervisionEvent::ActorFailed(cell, err) => {
                let name = cell.get_name().unwrap_or_else(|| cell.get_id().to_string());
                st.report(format!("the {name} actor failed: {err}"));
            }
            SupervisionEvent::ActorTerminated(cell, _, reason) => {
                let name = cell.get_name().unwrap_or_else(|| cell.get_id().to_string());
                let reason = reason.unwrap_or_else(|| "no reason given".into());
                st.report(format!("the {name} actor stopped ({reason})"));
            }
            _ => {}
        }
        Ok(())
    }
}

impl NodeSupervisorState {
    fn report(&self, what: String) {
        error!(failure = %what, "a vital part of the node is gone: the node exits so that the cluster takes over its rooms and players");
        let _ = self.fatal.send(what);
    }
}

/// Watches a long-lived task of the node: its end, for whatever reason, is reported to the
/// supervisor as a failure of the node.
pub fn watch(sup: &ActorRef<NodeSupervisorMsg>, name: &'static str, task: JoinHandle<()>) {
    let sup = sup.clone();
    tokio::spawn(async move {
        let why = match task.await {
            Ok(()) => "returned".to_owned(),
            Err(e) if e.is_panic() => "panicked".to_owned(),
            Err(_) => return, // cancelled: the runtime is shutting down
        };
        let _ = sup.cast(NodeSupervisorMsg::TaskEnded { name, why });
    });
}
