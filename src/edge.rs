//! The edge: HTTP endpoints (actix-web) and WebSocket connections (tokio-tungstenite), on one
//! listener that routes each connection by its request line (`front`). It authenticates, decodes
//! client frames once, enforces per-connection limits, and hands requests to the session actors;
//! the actors run on their own runtime.

pub(crate) mod auth;
pub(crate) mod front;
pub(crate) mod http;
pub(crate) mod ws;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize};

use metrics_exporter_prometheus::PrometheusHandle;
use tokio::sync::mpsc;
use warren_actors::node::NodeCtx;

/// What every HTTP handler and socket task shares.
pub(crate) struct Edge {
    /// The node.
    pub(crate) ctx: Arc<NodeCtx>,
    /// Token checks and minting.
    pub(crate) auth: auth::Auth,
    /// Renders `/metrics`.
    pub(crate) metrics: PrometheusHandle,
    /// Open WebSocket connections.
    pub(crate) connections: AtomicUsize,
    /// Next connection id.
    pub(crate) conn_ids: AtomicU64,
    /// The cluster as this node sees it.
    pub(crate) cluster: Arc<warren_cluster::membership::ClusterView>,
    /// Asks the node to drain (`/v1/admin/drain`).
    pub(crate) drain: mpsc::UnboundedSender<()>,
}
