//! Logs (tracing, text or JSON, with a level that SIGHUP can change) and metrics (every metric of
//! the protocol's table described, so `promtool check metrics` is clean).

use std::time::Duration;

use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Registry, reload};

/// Changes the log level at run time.
pub(crate) type LogReload = reload::Handle<EnvFilter, Registry>;

/// The filter of `log.level`. ractor_cluster logs at WARN every node session that ends (a peer
/// restarting, a duplicate connection closed by its election, a stranger on the cluster port) and
/// every refused authentication: the events of a normal rolling restart, and one line per
/// connection an attacker opens. Warren reports what an operator needs of those itself
/// (membership changes, a peer that refuses this node), so ractor_cluster logs only its errors
/// unless `log.level` names it (`info,ractor_cluster=warn`).
pub(crate) fn log_filter(level: &str) -> Result<EnvFilter, tracing_subscriber::filter::ParseError> {
    if level.contains("ractor_cluster") {
        EnvFilter::try_new(level)
    } else {
        EnvFilter::try_new(format!("{level},ractor_cluster=error"))
    }
}

/// Installs the global subscriber. `json` selects JSON lines.
pub(crate) fn init_logs(level: &str, json: bool) -> anyhow::Result<LogReload> {
    let filter = log_filter(level)?;
    let (filter, handle) = reload::Layer::new(filter);
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let fmt = tracing_subscriber::fmt::layer()
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    // A process runs one logger: a second node started in the same process (a test's) logs
    // through the first one's.
    let _already = if json {
        tracing_subscriber::registry()
            .with(filter)
            .with(ClientMistakes)
            .with(fmt.json().flatten_event(true))
            .try_init()
    } else {
        tracing_subscriber::registry()
            .with(filter)
            .with(ClientMistakes)
            .with(fmt)
            .try_init()
    };
    Ok(handle)
}

/// actix-http logs every request it cannot parse, and every connection that broke under it, as an
/// ERROR (`stream error: …`): a client's mistake, or a client gone, is not a server error that an
/// operator should be woken for. Those events are counted in `warren_http_stream_errors_total`
/// instead of logged.
struct ClientMistakes;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for ClientMistakes {
    fn event_enabled(
        &self,
        event: &tracing::Event<'_>,
        _: tracing_subscriber::layer::Context<'_, S>,
    ) -> bool {
        if !event.metadata().target().starts_with("actix_http::h1") {
            return true;
        }
        let mut message = StartsWith("stream error:", false);
        event.record(&mut message);
        if message.1 {
            metrics::counter!("warren_http_stream_errors_total").increment(1);
        }
        !message.1
    }
}

/// Whether an event's message starts with a prefix.
struct StartsWith(&'static str, bool);

impl tracing::field::Visit for StartsWith {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.1 = format!("{value:?}").starts_with(self.0);
        }
    }

    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "message" {
            self.1 = value.starts_with(self.0);
        }
    }
}

/// Every series of a labelled counter whose label values are known at start, at zero: an alert
/// on `rate(warren_room_restarts_total[5m])` or `increase(warren_closes_total{code="4003"}[1h])`
/// works from the node's first scrape, not only after the first increment.
pub(crate) fn init_labelled(games: &[&str]) {
    for game in games {
        let game = (*game).to_owned();
        metrics::counter!("warren_room_restarts_total", "game" => game.clone()).absolute(0);
        metrics::counter!("warren_matches_total", "game" => game).absolute(0);
    }
    for code in warren_protocol::CloseCode::ALL {
        metrics::counter!("warren_closes_total", "code" => code.code().to_string()).absolute(0);
    }
    for reason in [
        "unauthorized",
        "draining",
        "isolated",
        "capacity",
        "http_capacity",
    ] {
        metrics::counter!("warren_connections_rejected_total", "reason" => reason).absolute(0);
    }
}

/// The process's Prometheus recorder, once installed.
static METRICS: std::sync::OnceLock<PrometheusHandle> = std::sync::OnceLock::new();

/// Installs the Prometheus recorder and describes every metric.
pub(crate) fn init_metrics(node: &str, version: &str) -> anyhow::Result<PrometheusHandle> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full("warren_match_wait_seconds".into()),
            &[0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0],
        )?
        .set_buckets_for_metric(
            Matcher::Full("warren_room_tick_seconds".into()),
            &[
                0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
            ],
        )?
        .set_buckets_for_metric(
            Matcher::Full("warren_room_migration_pause_seconds".into()),
            &[
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
            ],
        )?
        .set_buckets_for_metric(
            Matcher::Full("warren_room_adoption_state_age_seconds".into()),
            &[0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0],
        )?
        .set_buckets_for_metric(
            Matcher::Full("warren_cluster_request_seconds".into()),
            &[
                0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 5.0,
            ],
        )?
        // A process has one recorder: a second node started in the same process (a test's)
        // renders the first one's metrics.
        ;
    let handle = match METRICS.get() {
        Some(h) => return Ok(h.clone()),
        None => handle.install_recorder()?,
    };
    let _ = METRICS.set(handle.clone());
    describe_gauge!(
        "warren_build_info",
        "Build of this node: 1, with version and node labels"
    );
    describe_gauge!("warren_connections", "Open WebSocket connections");
    describe_gauge!("warren_rooms", "Rooms hosted on this node, by game");
    describe_counter!(
        "warren_room_restarts_total",
        "Rooms restarted from their snapshot after a failure, by game"
    );
    describe_counter!(
        "warren_http_stream_errors_total",
        "HTTP connections ended on a request that could not be parsed, or a stream that broke"
    );
    metrics::counter!("warren_http_stream_errors_total").absolute(0);
    describe_counter!(
        "warren_session_restarts_total",
        "Player sessions restarted after a failure (their connection closed with 1011)"
    );
    describe_counter!(
        "warren_room_migrations_total",
        "Rooms moved to another node, by outcome"
    );
    describe_counter!(
        "warren_room_adoptions_total",
        "Rooms revived here after their node died"
    );
    describe_histogram!(
        "warren_room_adoption_state_age_seconds",
        Unit::Seconds,
        "Age of the snapshot a room was revived from after its node died, at the revival: failure detection plus the play lost"
    );
    describe_gauge!(
        "warren_room_replicas",
        "Snapshots this node keeps as the backup of rooms hosted on other nodes"
    );
    describe_gauge!(
        "warren_cluster_isolated",
        "1 while this node sees no strict majority of its cluster (it hosts no rooms then)"
    );
    // warren_matchmaking_tickets{pool} is rendered from the live pools (NodeCtx::render_pool_tickets),
    // so that a retired pool's series goes away with it.
    describe_counter!("warren_matches_total", "Matches formed, by game");
    describe_histogram!(
        "warren_match_wait_seconds",
        Unit::Seconds,
        "Time tickets waited before their match, by game"
    );
    describe_counter!("warren_messages_received_total", "Client frames received");
    describe_counter!("warren_messages_sent_total", "Frames sent to clients");
    describe_gauge!(
        "warren_cluster_nodes",
        "Cluster members by state, as this node sees them"
    );
    describe_gauge!("warren_draining", "1 while this node drains");
    describe_counter!(
        "warren_connections_rejected_total",
        "WebSocket upgrades refused, by reason"
    );
    describe_counter!(
        "warren_closes_total",
        "Connections closed by the server, by close code"
    );
    describe_counter!(
        "warren_cluster_decode_errors_total",
        "Cluster messages that could not be decoded, by receiving actor"
    );
    metrics::counter!("warren_cluster_decode_errors_total", "actor" => "membership").absolute(0);
    describe_gauge!(
        "warren_cluster_room_spread",
        "Rooms on the busiest reachable node divided by the mean over reachable nodes (1 is even)"
    );
    describe_gauge!(
        "warren_cluster_pool_spread",
        "Share of the matchmaking hash ring owned by the largest ready node divided by the mean share (1 is even)"
    );
    describe_gauge!(
        "warren_matchmaking_pools",
        "Matchmaking pools live on this node (an empty pool retires after matchmaking.pool_idle_ms)"
    );
    describe_counter!(
        "warren_matchmaking_handoffs_total",
        "Pools whose waiting tickets this node handed to the pool's new owner"
    );
    describe_counter!(
        "warren_matchmaking_handoff_tickets_total",
        "Tickets this node handed to other nodes with their pools"
    );
    describe_counter!(
        "warren_cluster_messages_sent_total",
        "Messages sent to other nodes' inboxes, by kind (deliver, room_op, pool, ...)"
    );
    describe_counter!(
        "warren_cluster_bytes_sent_total",
        "Bytes of the messages sent to other nodes' inboxes (Warren's envelope), by kind"
    );
    describe_counter!(
        "warren_cluster_messages_received_total",
        "Messages received from other nodes by this node's inbox, by kind"
    );
    describe_histogram!(
        "warren_room_tick_seconds",
        Unit::Seconds,
        "Time a realtime room spends on one tick (game step, encoding, routing), by game"
    );
    describe_histogram!(
        "warren_room_migration_pause_seconds",
        Unit::Seconds,
        "Time a migrating room was frozen: final snapshot to running on its new node"
    );
    describe_histogram!(
        "warren_cluster_request_seconds",
        Unit::Seconds,
        "Round trip of requests to other nodes (room operations, claims, listings), by kind"
    );
    metrics::counter!("warren_matchmaking_handoffs_total").absolute(0);
    metrics::counter!("warren_matchmaking_handoff_tickets_total").absolute(0);
    metrics::gauge!("warren_build_info", "version" => version.to_owned(), "node" => node.to_owned()).set(1.0);
    metrics::gauge!("warren_connections").set(0.0);
    metrics::gauge!("warren_draining").set(0.0);
    metrics::gauge!("warren_cluster_isolated").set(0.0);
    metrics::gauge!("warren_room_replicas").set(0.0);
    metrics::counter!("warren_room_migrations_total", "outcome" => "ok").absolute(0);
    metrics::counter!("warren_room_migrations_total", "outcome" => "failed").absolute(0);
    metrics::counter!("warren_room_adoptions_total").absolute(0);
    metrics::counter!("warren_messages_received_total").absolute(0);
    metrics::counter!("warren_messages_sent_total").absolute(0);
    Ok(handle)
}

/// Publishes whether this node drains (membership publishes `warren_cluster_nodes`).
pub(crate) fn set_draining(draining: bool) {
    metrics::gauge!("warren_draining").set(if draining { 1.0 } else { 0.0 });
}

/// Histograms need periodic upkeep when the recorder is installed without its own HTTP listener.
pub(crate) async fn metrics_upkeep(handle: PrometheusHandle) {
    let mut every = tokio::time::interval(Duration::from_secs(5));
    loop {
        every.tick().await;
        handle.run_upkeep();
    }
}
