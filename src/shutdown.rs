//! The node's lifecycle after start: SIGHUP reloads, and a drain (SIGTERM or `/v1/admin/drain`)
//! that decommissions in order: readiness 503 and no new rooms or sessions; after
//! `drain.notice_ms`, matchmaking pools handed to their new owners, then every room live-migrated
//! to another ready node; sessions closed with 4001 (players resume elsewhere); then the HTTP
//! server stopped once no connection is left or `drain.timeout_ms` has passed. A second SIGTERM
//! exits at once.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use actix_web::dev::ServerHandle;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;
use tracing::{error, info, warn};
use warren_actors::node::NodeCtx;
use warren_protocol::CloseCode;

use crate::config::Config;
use crate::edge::Edge;
use crate::telemetry::{LogReload, set_draining};

/// How the process should end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Drained (or timed out draining): exit 0.
    Drained,
    /// A second SIGTERM cut the drain short: exit 1.
    Forced,
    /// A vital part of the node failed (`warren_actors::supervisor`): exit 3 at once, as a crash
    /// would, so that the cluster adopts the rooms.
    Failed,
}

/// Everything the lifecycle task needs.
pub(crate) struct Lifecycle {
    /// Shared edge state.
    pub(crate) edge: Arc<Edge>,
    /// Stops the HTTP server.
    pub(crate) server: ServerHandle,
    /// `/v1/admin/drain` requests.
    pub(crate) drain_rx: mpsc::UnboundedReceiver<()>,
    /// File to re-read on SIGHUP (`None`: the embedded default).
    pub(crate) config_file: Option<PathBuf>,
    /// The `WARREN_*` variables the node was configured with; `None`: the process's environment.
    pub(crate) env: Option<Vec<(String, String)>>,
    /// Log level handle.
    pub(crate) logs: LogReload,
    /// The config the node started with.
    pub(crate) config: Config,
    /// Failures of the node's vital parts, from its supervisor.
    pub(crate) fatal: mpsc::UnboundedReceiver<String>,
}

/// Runs until the node should exit.
pub(crate) async fn run(mut lc: Lifecycle) -> Outcome {
    let (mut term, mut int, mut hup) = match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
    ) {
        (Ok(t), Ok(i), Ok(h)) => (t, i, h),
        _ => {
            error!("cannot install signal handlers; stopping");
            lc.server.stop(false).await;
            return Outcome::Forced;
        }
    };
    loop {
        tokio::select! {
            _ = term.recv() => { info!("SIGTERM: draining"); break; }
            _ = int.recv() => { info!("SIGINT: draining"); break; }
            Some(()) = lc.drain_rx.recv() => { info!("drain requested by an admin"); break; }
            Some(why) = lc.fatal.recv() => {
                error!(failure = %why, "the node failed; exiting without a drain (its rooms come back on their backups)");
                lc.server.stop(false).await;
                return Outcome::Failed;
            }
            _ = hup.recv() => reload(&lc),
        }
    }
    let ctx = lc.edge.ctx.clone();
    ctx.begin_drain();
    set_draining(true);
    let timeout = Duration::from_millis(lc.config.drain.timeout_ms);
    let deadline = tokio::time::Instant::now() + timeout;
    let notice = Duration::from_millis(lc.config.drain.notice_ms).min(timeout);
    if !notice.is_zero() {
        info!(
            notice_ms = lc.config.drain.notice_ms,
            "readiness is 503; closing sessions after the notice"
        );
        tokio::select! {
            _ = term.recv() => { warn!("second SIGTERM: exiting now"); lc.server.stop(false).await; return Outcome::Forced; }
            _ = int.recv() => { warn!("second SIGINT: exiting now"); lc.server.stop(false).await; return Outcome::Forced; }
            _ = tokio::time::sleep(notice) => {}
        }
    }
    // Matchmaking pools go first: every waiting ticket moves to the pools' new owners (the node
    // already left the ring), so no player's wait starts over.
    let handoff_until = (tokio::time::Instant::now() + POOL_HANDOFF_MAX).min(deadline);
    while ctx.waiting_tickets() > 0 && other_ready_node(&ctx) {
        tokio::select! {
            _ = term.recv() => { warn!("second SIGTERM: exiting now"); lc.server.stop(false).await; return Outcome::Forced; }
            _ = int.recv() => { warn!("second SIGINT: exiting now"); lc.server.stop(false).await; return Outcome::Forced; }
            _ = tokio::time::sleep_until(handoff_until) => {
                warn!(tickets = ctx.waiting_tickets(), "matchmaking tickets not handed over in time");
                break;
            }
            _ = tokio::time::sleep(Duration::from_millis(20)) => {}
        }
    }
    // Then the rooms: each is frozen, shipped to another ready node and replaced here by a
    // tombstone, while its players keep their connections (remote players see a pause).
    if !ctx.directory.is_empty() && other_ready_node(&ctx) {
        let rooms = ctx.directory.len();
        let migrate = warren_actors::migrate::migrate_all(&ctx, deadline.into_std());
        tokio::pin!(migrate);
        tokio::select! {
            _ = term.recv() => { warn!("second SIGTERM: exiting now"); lc.server.stop(false).await; return Outcome::Forced; }
            _ = int.recv() => { warn!("second SIGINT: exiting now"); lc.server.stop(false).await; return Outcome::Forced; }
            done = &mut migrate => info!(rooms, moved = done.moved, stayed = done.stayed, "rooms migrated"),
        }
    }
    ctx.sessions.close_all_answered(CloseCode::Draining);
    let outcome = loop {
        if lc.edge.connections.load(Ordering::Acquire) == 0 && ctx.inputs_waiting() == 0 {
            info!("drained: no connection left");
            break Outcome::Drained;
        }
        // Connections that arrived with a resume token during the drain are closed as they attach.
        ctx.sessions.close_all_answered(CloseCode::Draining);
        tokio::select! {
            _ = term.recv() => { warn!("second SIGTERM: exiting now"); break Outcome::Forced; }
            _ = int.recv() => { warn!("second SIGINT: exiting now"); break Outcome::Forced; }
            _ = tokio::time::sleep_until(deadline) => {
                warn!(timeout_ms = lc.config.drain.timeout_ms, "drain timeout reached; exiting");
                break Outcome::Drained;
            }
            _ = tokio::time::sleep(Duration::from_millis(20)) => {}
        }
    };
    if outcome == Outcome::Drained {
        leave_no_room(&ctx).await;
        // The backups drop the replicas of the rooms that moved (within a replication interval
        // or two), and this node's last status (draining, empty) spreads by gossip to every
        // member, those not linked to it too (half a failure timeout: SWIM's gossip goes out
        // every tenth). Then the other nodes stop counting this one, so the majority rule is
        // reckoned over the nodes that remain (a rooms-left-behind replica is adopted by its
        // backup). A member the farewell misses sees the node leave when SWIM declares it down
        // (`membership::drained`): one was missed in a scale-in of 8 of 32 nodes.
        let interval = Duration::from_millis(ctx.settings.load().rooms.snapshot_interval_ms);
        let spread = Duration::from_millis(lc.config.cluster.failure_timeout_ms) / 2;
        tokio::time::sleep((interval * 2).min(Duration::from_secs(1)).max(spread)).await;
        warren_cluster::membership::announce_leaving(ctx.node.as_str());
        // The farewell waits in each link's queue: time for it to go out before the process ends.
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    lc.server.stop(outcome == Outcome::Drained).await;
    outcome
}

/// Before its farewell a drained node hosts no room. The farewell makes each room's backup take
/// its replica at once, so a room still running here until the process ends would run on two
/// nodes (in a scale-in of 8 of 32 nodes, a room another draining node moved here before it
/// heard of this drain ran twice for 456 ms). A room that came here during the drain moves on;
/// one that cannot is stopped, and its backup adopts it on the farewell. With no other ready node
/// (a cluster of one, or its last node), nothing would adopt a room: it ends with the process.
async fn leave_no_room(ctx: &std::sync::Arc<NodeCtx>) {
    if ctx.directory.is_empty() || !other_ready_node(ctx) {
        return;
    }
    let until = std::time::Instant::now() + LEFTOVER_MAX;
    let done = warren_actors::migrate::migrate_all(ctx, until).await;
    info!(
        moved = done.moved,
        stayed = done.stayed,
        "rooms that came during the drain migrated"
    );
    if ctx.directory.is_empty() {
        return;
    }
    use warren_actors::room_host::{RoomHost, RoomHostMsg};
    let _ = RoomHost::of(ctx).cast(RoomHostMsg::DropAll);
    let until = tokio::time::Instant::now() + Duration::from_secs(1);
    while !ctx.directory.is_empty() && tokio::time::Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Longest a drain spends moving the rooms that came during it.
const LEFTOVER_MAX: Duration = Duration::from_secs(5);

/// Longest wait for the pools to hand their tickets over during a drain.
const POOL_HANDOFF_MAX: Duration = Duration::from_secs(5);

fn other_ready_node(ctx: &NodeCtx) -> bool {
    ctx.peers()
        .is_some_and(|p| p.candidates().iter().any(|c| c.node != ctx.node))
}

fn reload(lc: &Lifecycle) {
    let env: Vec<(String, String)> = match &lc.env {
        Some(given) => given.clone(),
        None => std::env::vars().collect(),
    };
    match Config::load(lc.config_file.as_deref(), env) {
        Ok(new) => {
            let ctx = &lc.edge.ctx;
            let mut settings = (**ctx.settings.load()).clone();
            let fresh = new.settings();
            settings.limits = fresh.limits;
            settings.matchmaking = fresh.matchmaking;
            let filter = match crate::telemetry::log_filter(&new.log.level) {
                Ok(f) => f,
                Err(e) => {
                    warn!(error = %e, "SIGHUP: log.level invalid; keeping the old configuration");
                    return;
                }
            };
            if let Err(e) = lc.logs.reload(filter) {
                warn!(error = %e, "SIGHUP: cannot change the log level; keeping the old configuration");
                return;
            }
            ctx.settings.store(Arc::new(settings));
            info!(level = %new.log.level, "SIGHUP: limits, matchmaking and log level reloaded");
        }
        Err(e) => warn!(error = %e, "SIGHUP: configuration refused; keeping the old one"),
    }
}
