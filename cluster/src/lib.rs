//! Warren's cluster layer on ractor_cluster: one `NodeServer` per node (cookie auth), discovery by
//! seeds, and membership with failure detection. A node with no seeds runs alone and still listens,
//! so that others can join it.
//!
//! ```text
//! start
//! ├── front         task: the cluster port; bounds connections until they authenticate
//! ├── NodeServer    ractor_cluster: one session per peer (optionally mutual TLS), pg groups
//! ├── Membership    heartbeats, failure detection, the published ClusterView
//! ├── NodeInbox     remote room operations, frames for local sessions, room listings, replicas
//! ├── discovery     task: resolve seeds, dial, redial with backoff
//! ├── replicate     task: room snapshots to their backup nodes
//! └── guard         task: the majority rule (and a node its peers refuse hosts nothing), and
//!                   adoption of dead nodes' rooms
//! ```

#![cfg_attr(test, allow(clippy::unwrap_used))]

mod admission;
mod discovery;
mod front;
pub mod inbox;
pub mod membership;
pub mod peers;
pub mod replication;
pub mod swim;
pub mod tls;
pub mod wire;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ractor::Actor;
use ractor_cluster::node::NodeConnectionMode;
use ractor_cluster::{IncomingEncryptionMode, NodeServer};

use ractor::ActorRef;
use warren_actors::local::LocalNode;
use warren_actors::supervisor::{NodeSupervisorMsg, watch};

use crate::membership::{ClusterView, Membership, MembershipArgs, StatusFn};

/// What the cluster layer needs from the node's configuration.
#[derive(Clone, Debug)]
pub struct ClusterConfig {
    /// This node's id.
    pub node: String,
    /// Build version.
    pub version: String,
    /// Node-to-node listener.
    pub listen: SocketAddr,
    /// Address peers dial; the listen address when empty.
    pub advertise: String,
    /// `host:port` of other nodes.
    pub seeds: Vec<String>,
    /// Shared secret.
    pub cookie: String,
    /// Heartbeat silence before a peer is unreachable.
    pub failure_timeout: Duration,
    /// How long an unreachable member counts towards the cluster's size before it is forgotten
    /// (`None`: until it comes back).
    pub forget_after: Option<Duration>,
    /// Room output for another node's players goes as one message per node (else per player).
    pub batch_delivery: bool,
    /// Mutual TLS between nodes; plain TCP when `None`.
    pub tls: Option<tls::TlsFiles>,
}

/// Why the cluster layer could not start.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// An actor failed to spawn (the listener could not bind, for one).
    #[error("cluster layer failed to start: {0}")]
    Spawn(String),
    /// The cluster listener could not bind its address (taken, or not this host's).
    #[error("cluster listener could not bind {0}: {1}")]
    Listen(SocketAddr, String),
    /// The TLS files could not be used.
    #[error("cluster TLS: {0}")]
    Tls(#[from] tls::TlsError),
}

/// A running cluster layer.
pub struct Cluster {
    /// The membership view.
    pub view: Arc<ClusterView>,
    /// Where the cluster listener is bound (the kernel's port when `cluster.listen` named 0).
    pub listen: SocketAddr,
    /// The snapshots this node keeps for other nodes' rooms.
    pub replicas: Arc<replication::Replicas>,
}

/// Starts the node server, membership and discovery on the current tokio runtime, its actors
/// linked to the node's supervisor and its tasks watched by it.
pub async fn start(
    cfg: ClusterConfig,
    status: StatusFn,
    local: LocalNode,
    sup: &ActorRef<NodeSupervisorMsg>,
) -> Result<Cluster, ClusterError> {
    let name = |what: &str| Some(format!("{}/{what}", cfg.node));
    let hostname = if cfg.advertise.is_empty() {
        cfg.listen.ip().to_string()
    } else {
        cfg.advertise
            .rsplit_once(':')
            .map_or(cfg.advertise.as_str(), |(h, _)| h)
            .to_owned()
    };
    let tls = cfg
        .tls
        .as_ref()
        .map(tls::Tls::load)
        .transpose()
        .map_err(ClusterError::Tls)?;
    let incoming = tls
        .as_ref()
        .map(|t| IncomingEncryptionMode::Tls(t.acceptor.clone()));
    // The cluster port is this node's own listener (`front.rs`, which bounds connections that
    // have not authenticated); ractor_cluster's, which it always binds, is on an ephemeral
    // loopback port nothing dials.
    let front = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .map_err(|e| ClusterError::Listen(cfg.listen, e.to_string()))?;
    let listen = front
        .local_addr()
        .map_err(|e| ClusterError::Listen(cfg.listen, e.to_string()))?;
    let server = NodeServer::new(
        0,
        cfg.cookie.clone(),
        cfg.node.clone(),
        hostname,
        incoming,
        Some(NodeConnectionMode::Isolated),
    )
    .with_listen_addr(std::net::Ipv4Addr::LOCALHOST.into());
    let (server, _) = Actor::spawn_linked(name("node-server"), server, (), sup.get_cell())
        .await
        .map_err(|e| ClusterError::Spawn(e.to_string()))?;
    // Its name carries the port peers dial (ractor_cluster took the inner listener's).
    server
        .cast(ractor_cluster::NodeServerMessage::PortChanged {
            port: listen.port(),
        })
        .map_err(|e| ClusterError::Spawn(e.to_string()))?;
    let gates = Arc::new(front::Gates::default());
    server
        .cast(ractor_cluster::NodeServerMessage::SubscribeToEvents {
            id: "warren.front".to_owned(),
            subscription: Box::new(front::GateEvents(gates.clone())),
        })
        .map_err(|e| ClusterError::Spawn(e.to_string()))?;
    let accept = tokio::spawn(front::run(
        front,
        server.clone(),
        tls.as_ref().map(|t| t.acceptor.clone()),
        gates,
    ));
    watch(sup, "cluster front", accept);
    // Refusals of the sessions this node dials: a wrong cookie must not leave it running alone.
    let admission = admission::Admission::new(&cfg.node);
    server
        .cast(ractor_cluster::NodeServerMessage::SubscribeToEvents {
            id: "warren.admission".to_owned(),
            subscription: admission.subscription(),
        })
        .map_err(|e| ClusterError::Spawn(e.to_string()))?;
    let advertise = if cfg.advertise.is_empty() {
        listen.to_string()
    } else {
        cfg.advertise.clone()
    };
    let view = Arc::new(ClusterView::default());
    view.new_incarnation();
    let args = MembershipArgs {
        node: cfg.node.clone(),
        version: cfg.version.clone(),
        advertise: advertise.clone(),
        failure_timeout: cfg.failure_timeout,
        forget_after: cfg.forget_after,
        status,
        games: local.readable_versions(),
        view: view.clone(),
    };
    Actor::spawn_linked(name("membership"), Membership, args, sup.get_cell())
        .await
        .map_err(|e| ClusterError::Spawn(e.to_string()))?;
    let peers = peers::ClusterPeers::new(local.id(), view.clone(), cfg.batch_delivery);
    let replicas = Arc::new(replication::Replicas::default());
    let inbox_args = inbox::InboxArgs {
        local: local.clone(),
        peers: peers.clone(),
        replicas: replicas.clone(),
    };
    Actor::spawn_linked(name("inbox"), inbox::NodeInbox, inbox_args, sup.get_cell())
        .await
        .map_err(|e| ClusterError::Spawn(e.to_string()))?;
    local.set_peers(Arc::new(peers));
    let mut own = vec![listen];
    if let Ok(a) = advertise.parse::<SocketAddr>() {
        own.push(a);
    }
    let replicate = tokio::spawn(replication::replicate(local.clone(), view.clone()));
    watch(sup, "replication", replicate);
    let guard = tokio::spawn(replication::guard(
        local,
        view.clone(),
        replicas.clone(),
        admission.clone(),
        cfg.failure_timeout,
    ));
    watch(sup, "guard", guard);
    let discovery = tokio::spawn(discovery::run(
        server.clone(),
        cfg.seeds,
        own,
        view.clone(),
        tls,
        admission,
    ));
    watch(sup, "discovery", discovery);
    Ok(Cluster {
        view,
        listen,
        replicas,
    })
}
