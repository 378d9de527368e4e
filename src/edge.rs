//! The edge: HTTP endpoints (actix-web) and WebSocket connections (tokio-tungstenite), on one
//! listener that routes each connection by its request line (`front`). It authenticates, decodes
//! client frames once, enforces per-connection limits, and hands requests to the session actors;
//! the actors run on their own runtime.

pub(crate) mod auth;
pub(crate) mod client;
pub(crate) mod front;
pub(crate) mod http;
pub(crate) mod play;
pub(crate) mod ws;

use std::net::IpAddr;
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
    /// The snapshots this node keeps for other nodes' rooms (`/v1/admin/replicas`).
    pub(crate) replicas: Arc<warren_cluster::replication::Replicas>,
    /// Asks the node to drain (`/v1/admin/drain`).
    pub(crate) drain: mpsc::UnboundedSender<()>,
    /// Idle kept-alive HTTP connections close after this long (`http.keep_alive_ms`).
    pub(crate) keep_alive_ms: u64,
    /// Whose forwarding headers count (`http.trusted_proxies`).
    pub(crate) trusted: client::TrustedProxies,
    /// Guest tokens per client address (`auth.guest_tokens_per_minute`).
    pub(crate) guest_limit: client::PerAddress,
    /// `/play` is served (`http.playground`).
    pub(crate) playground: bool,
    /// Connections open that are not WebSocket sessions (front::HttpSlot).
    pub(crate) http_open: AtomicUsize,
    /// Of those, the ones that came for a probe or a scrape, counted apart.
    pub(crate) probes_open: AtomicUsize,
    /// Most such connections at once (`http.max_connections`, as the open-files limit allows).
    pub(crate) http_max: usize,
}

impl Edge {
    /// The client's address of an HTTP request ([`client`]); `None` when the peer is unknown.
    pub(crate) fn client_of(&self, req: &actix_web::HttpRequest) -> Option<IpAddr> {
        let peer = req.peer_addr()?.ip();
        let values = |name| req.headers().get_all(name).filter_map(|v| v.to_str().ok());
        Some(
            self.trusted
                .client(peer, values("forwarded"), values("x-forwarded-for")),
        )
    }
}

/// Whether a request came through a proxy: it carries a forwarding header.
pub(crate) fn forwarded(req: &actix_web::HttpRequest) -> bool {
    ["forwarded", "x-forwarded-for", "x-real-ip"]
        .iter()
        .any(|h| req.headers().contains_key(*h))
}
