//! `warren`: one node of a Warren game-server cluster, as a library.
//!
//! A studio's node is a few lines: its games, registered on the node, and the same configuration
//! (file and `WARREN_*` environment), signals and drain as the `warren` binary, which is this
//! library with the built-in games:
//!
//! ```no_run
//! use warren::game::GameRegistry;
//!
//! fn main() -> std::process::ExitCode {
//!     let mut games = GameRegistry::builtin();
//!     // games.add::<my_game::MyGame>();
//!     warren::main_with(games)
//! }
//! ```
//!
//! Composition root: reads the configuration, starts the actors on their own runtime, serves HTTP
//! and WebSocket clients with actix-web, and drains on SIGTERM.

#![cfg_attr(test, allow(clippy::unwrap_used))]

// Dev-dependencies serve the end-to-end tests in tests/, not the unit tests of this library.
#[cfg(test)]
use {
    futures_util as _, rustls as _, tokio_rustls as _, tokio_tungstenite as _, warren_client as _,
    warren_loadtest as _,
};

/// The game API: a game is a type implementing [`game::Game`], registered on the node by name
/// ([`game::GameRegistry::add`], [`Node::game`]). The `Game` trait's documentation has a whole
/// game; README.md "Write your game" has another, with a node and a cluster to run it.
pub mod game {
    pub use warren_actors::game::{
        Emit, Game, GameCtx, GameError, GameRegistry, GameSpec, NoEvent, ParamsError, RestoreError,
        SeatView, Upgrades, testing,
    };
    pub use warren_protocol::{ErrorCode, PlayerId};
}

mod config;
mod edge;

/// Entry points of the fuzz targets (`fuzz/`): what a client or an operator hands the node,
/// read as the node reads it, without a running node. Not an API.
#[doc(hidden)]
pub mod fuzzing {
    /// Reads a configuration file's text over the embedded default and validates it: `Err` is
    /// the message a node would exit with.
    pub fn config(text: &str) -> Result<(), String> {
        crate::config::Config::load_text(Some((text, "fuzz.toml")), std::iter::empty())
            .map(drop)
            .map_err(|e| e.to_string())
    }

    /// Reads the head of an HTTP request as the node's front does: the request line's kind (the
    /// WebSocket path, a probe, other HTTP), and for the WebSocket path the upgrade's checks.
    /// `Ok` carries the head's length; `Err` the status and code of the refusal.
    pub fn http_head(head: &[u8]) -> Result<usize, (u16, &'static str)> {
        let line = head.split(|b| *b == b'\n').next().unwrap_or_default();
        if crate::edge::front::is_websocket(line) {
            crate::edge::ws::read_upgrade_head(head)
        } else {
            Ok(0)
        }
    }
}
mod fdlimit;
mod shutdown;
mod telemetry;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize};

use anyhow::Context as _;
// A dev-dependency of the end-to-end tests (they check frames against the protocol's schema).
use clap::Parser;
#[cfg(test)]
use jsonschema as _;
use tracing::{info, warn};
use warren_actors::game::{GameRegistry, GameSpec};
use warren_actors::node::{NodeCtx, random_token};
use warren_actors::resume::ResumeKey;
use warren_protocol::NodeId;

use crate::config::Config;
use crate::edge::Edge;
use crate::shutdown::{Lifecycle, Outcome};

/// Warren game-server node.
#[derive(Parser)]
#[command(name = "warren", version, about)]
struct Cli {
    /// Configuration file (TOML). Without it, the embedded default. Env WARREN_<SECTION>__<KEY> overrides either.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Print the embedded default configuration and exit.
    #[arg(long)]
    print_default_config: bool,
}

/// A node's command line (`--config FILE`, `--print-default-config`), configuration and run, with
/// `games`: what a node's `main` calls. Exit codes: 0 drained, 1 drain timed out or failed to start,
/// 2 invalid configuration, 3 a vital part of the node failed.
pub fn main_with(games: GameRegistry) -> ExitCode {
    let cli = Cli::parse();
    if cli.print_default_config {
        print!("{}", config::DEFAULT_TOML);
        return ExitCode::SUCCESS;
    }
    match Node::configure(cli.config) {
        Ok(node) => node.with_games(games).run(),
        Err(e) => {
            eprintln!("warren: {e}");
            ExitCode::from(2)
        }
    }
}

/// How a node stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stopped {
    /// It drained (or its drain timed out): exit code 0.
    Drained,
    /// A second SIGTERM cut its drain short: exit code 1.
    Forced,
    /// A vital part of it failed: exit code 3.
    Failed,
}

impl From<Outcome> for Stopped {
    fn from(o: Outcome) -> Self {
        match o {
            Outcome::Drained => Self::Drained,
            Outcome::Forced => Self::Forced,
            Outcome::Failed => Self::Failed,
        }
    }
}

/// The node could not start (a listener, the cluster layer, its runtimes): what failed, with its
/// causes.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StartError(String);

/// The configuration could not be used: one line naming the key at fault.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(String);

/// One node: its configuration and the games it runs.
pub struct Node {
    config_file: Option<PathBuf>,
    /// The `WARREN_*` variables given to `configure_with` (read again on SIGHUP); `None`: the
    /// process's environment.
    env: Option<Vec<(String, String)>>,
    config: Config,
    games: GameRegistry,
}

impl Node {
    /// The configuration of `file` (or the embedded default) with the `WARREN_<SECTION>__<KEY>`
    /// environment over it, as `warren --config FILE` reads it; no games yet.
    pub fn configure(file: Option<PathBuf>) -> Result<Self, ConfigError> {
        let mut node = Self::configure_with(file, std::env::vars())?;
        node.env = None;
        Ok(node)
    }

    /// [`Node::configure`] with the given `WARREN_<SECTION>__<KEY>` variables instead of the
    /// process's environment (a test's own settings); SIGHUP reads the file again with them.
    pub fn configure_with(
        file: Option<PathBuf>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let env: Vec<(String, String)> = env.into_iter().collect();
        let config = Config::load(file.as_deref(), env.iter().cloned())
            .map_err(|e| ConfigError(e.to_string()))?;
        Ok(Self {
            config_file: file,
            env: Some(env),
            config,
            games: GameRegistry::default(),
        })
    }

    /// Runs these games (replacing any registered before).
    pub fn with_games(mut self, games: GameRegistry) -> Self {
        self.games = games;
        self
    }

    /// Runs one more game: `G`.
    pub fn game<G: warren_actors::game::Game>(mut self) -> Self {
        self.games.register(GameSpec::of::<G>());
        self
    }

    /// Starts the node in this process, on its own threads: it serves on `http`, a listener the
    /// caller bound (port 0 is fine), and drains when `shutdown` completes, as on SIGTERM. The
    /// handle's `join` gives how it stopped. For tests and tools that embed a node; a server runs
    /// one node per process ([`Node::run`]), since logs and metrics are the process's (a second
    /// node in one process logs and counts through the first one's).
    pub fn spawn(
        self,
        http: std::net::TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::thread::JoinHandle<Result<Stopped, StartError>> {
        std::thread::spawn(move || {
            let start = Start {
                env: self.env,
                http: Some(http),
                shutdown: Some(Box::pin(shutdown)),
            };
            run(self.config_file, self.config, self.games, start)
                .map(Stopped::from)
                .map_err(|e| StartError(format!("{e:#}")))
        })
    }

    /// Serves until SIGTERM or SIGINT drains the node (SIGHUP reloads the file), and gives the
    /// exit code: 0 drained, 1 drain timed out or failed to start, 3 a vital part failed.
    pub fn run(self) -> ExitCode {
        let start = Start {
            env: self.env,
            ..Start::default()
        };
        match run(self.config_file, self.config, self.games, start) {
            Ok(Outcome::Drained) => ExitCode::SUCCESS,
            Ok(Outcome::Forced) => ExitCode::from(1),
            Ok(Outcome::Failed) => ExitCode::from(3),
            Err(e) => {
                eprintln!("warren: {e:#}");
                ExitCode::from(1)
            }
        }
    }
}

fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_owned())
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "warren".into())
}

/// How `run` starts beyond the configuration: on a listener the caller bound, and with a future
/// that drains the node when it completes (the in-process start), or as `warren` does.
#[derive(Default)]
struct Start {
    env: Option<Vec<(String, String)>>,
    http: Option<std::net::TcpListener>,
    shutdown: Option<std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>>,
}

fn run(
    config_file: Option<PathBuf>,
    cfg: Config,
    games: GameRegistry,
    start: Start,
) -> anyhow::Result<Outcome> {
    let logs = telemetry::init_logs(&cfg.log.level, cfg.log.format == "json")
        .context("failed to set up logging")?;
    let node = if cfg.node.id.is_empty() {
        hostname()
    } else {
        cfg.node.id.clone()
    };
    let version = env!("CARGO_PKG_VERSION").to_owned();
    let open_files = fdlimit::raise(cfg.limits.max_connections);
    let metrics = telemetry::init_metrics(&node, &version).context("failed to set up metrics")?;
    telemetry::init_labelled(&games.names());

    for key in cfg.weak_secrets() {
        warn!(
            key,
            "a secret shorter than {} bytes: fine for a node running alone, refused with seeds; use \
             a random one of 32 bytes or more (`openssl rand -hex 32`)",
            config::MIN_SECRET_BYTES
        );
    }
    let secret = if cfg.auth.jwt_secret.is_empty() {
        warn!("auth.jwt_secret is not set: using a random secret, so tokens die with this process");
        random_token(48)
    } else {
        cfg.auth.jwt_secret.clone()
    };
    let auth = edge::auth::Auth::new(
        secret.as_bytes(),
        cfg.auth.allow_guest,
        cfg.auth.guest_ttl_secs,
        &cfg.auth.admin_token,
        cfg.auth.leeway_secs,
    )
    .context("auth.jwt_secret cannot key HS256")?;
    let (ctx, writers) = NodeCtx::new(
        NodeId::new(node.clone()),
        version.clone(),
        games,
        cfg.settings(),
        ResumeKey::derive(secret.as_bytes()),
    );
    let ctx = Arc::new(ctx);

    // Actors live on a runtime of their own; actix-web's workers only do socket IO.
    let actors = tokio::runtime::Builder::new_multi_thread()
        .thread_name("warren-actors")
        .enable_all()
        .build()
        .context("failed to start the actor runtime")?;
    let (fatal_tx, fatal) = tokio::sync::mpsc::unbounded_channel();
    let sup = actors
        .block_on(warren_actors::start_supervisor(&ctx, fatal_tx))
        .context("failed to start the node's supervisor")?;
    actors
        .block_on(warren_actors::start_node(&ctx, writers, &sup))
        .context("failed to start the node's actors")?;
    {
        let _guard = actors.enter();
        let upkeep = actors.spawn(telemetry::metrics_upkeep(metrics.clone()));
        warren_actors::supervisor::watch(&sup, "metrics upkeep", upkeep);
    }
    let cluster_listen: std::net::SocketAddr = cfg
        .cluster
        .listen
        .parse()
        .context("cluster.listen was validated as an address")?;
    let cookie = if cfg.cluster.cookie.is_empty() {
        warn!("cluster.cookie is not set: using a random cookie (fine for a node running alone)");
        random_token(32)
    } else {
        cfg.cluster.cookie.clone()
    };
    let status_ctx = ctx.clone();
    let status: warren_cluster::membership::StatusFn =
        Arc::new(move || warren_cluster::membership::LocalStatus {
            draining: status_ctx.is_draining(),
            rooms: status_ctx.directory.len() as u32,
            sessions: status_ctx.sessions.len() as u32,
        });
    let cluster = actors
        .block_on(warren_cluster::start(
            warren_cluster::ClusterConfig {
                node: node.clone(),
                version: version.clone(),
                listen: cluster_listen,
                advertise: cfg.cluster.advertise.clone(),
                seeds: cfg.cluster.seeds.clone(),
                cookie,
                failure_timeout: std::time::Duration::from_millis(cfg.cluster.failure_timeout_ms),
                forget_after: (cfg.cluster.forget_after_ms > 0)
                    .then(|| std::time::Duration::from_millis(cfg.cluster.forget_after_ms)),
                batch_delivery: cfg.cluster.batch_delivery,
                tls: (!cfg.cluster.tls_cert.is_empty()).then(|| warren_cluster::tls::TlsFiles {
                    cert: cfg.cluster.tls_cert.clone().into(),
                    key: cfg.cluster.tls_key.clone().into(),
                    ca: cfg.cluster.tls_ca.clone().into(),
                    server_name: cfg.cluster.tls_server_name.clone(),
                }),
            },
            status,
            warren_actors::local::LocalNode::new(ctx.clone()),
            &sup,
        ))
        .with_context(|| {
            format!("failed to start the cluster listener on cluster.listen {cluster_listen}")
        })?;

    {
        let _guard = actors.enter();
        let rebalance = actors.spawn(warren_actors::migrate::rebalance(ctx.clone()));
        warren_actors::supervisor::watch(&sup, "rebalance", rebalance);
    }
    let (drain_tx, drain_rx) = tokio::sync::mpsc::unbounded_channel();
    if let Some(shutdown) = start.shutdown {
        let drain = drain_tx.clone();
        actors.spawn(async move {
            shutdown.await;
            info!("shutdown requested by the embedding program: draining");
            let _ = drain.send(());
        });
    }
    let edge = Arc::new(Edge {
        ctx: ctx.clone(),
        auth,
        metrics,
        connections: AtomicUsize::new(0),
        conn_ids: AtomicU64::new(1),
        drain: drain_tx,
        cluster: cluster.view.clone(),
        replicas: cluster.replicas.clone(),
        keep_alive_ms: cfg.http.keep_alive_ms,
        // Checked when the configuration was read.
        trusted: edge::client::TrustedProxies::parse(&cfg.http.trusted_proxies).unwrap_or_default(),
        guest_limit: edge::client::PerAddress::new(cfg.auth.guest_tokens_per_minute),
        playground: cfg.http.playground,
        http_open: AtomicUsize::new(0),
        probes_open: AtomicUsize::new(0),
        http_max: fdlimit::http_connections(cfg.http.max_connections),
    });
    let listen = cfg.http.listen.clone();
    let workers = if cfg.http.workers == 0 {
        std::thread::available_parallelism().map_or(2, |n| n.get())
    } else {
        cfg.http.workers
    };
    let mut bound = listen.clone();
    let given = start.http;
    let outcome = actix_web::rt::System::new().block_on(async {
        let front_edge = edge.clone();
        let server = actix_server::Server::build()
            .workers(workers)
            .disable_signals()
            .shutdown_timeout(2)
            // The node's own limits answer 503 past `limits.max_connections` and
            // `http.max_connections`; actix-server's default (25,600 a worker) would instead stop
            // accepting before them. Past this one, connections wait in the listen queue: half of
            // the reserved descriptors stay the node's own (cluster links, files) whatever
            // clients do, such as opening connections that never send a request line. (The
            // bound is per worker.)
            .max_concurrent_connections(
                (open_files.saturating_sub(fdlimit::RESERVED / 2) / workers.max(1)).max(1),
            )
            .listen("warren-edge", http_listener(given, &listen, &mut bound)?, move || {
                edge::front::service(front_edge.clone())
            })
            .with_context(|| format!("failed to listen on http.listen {listen}"))?
            .run();
        let lifecycle = Lifecycle {
            edge: edge.clone(),
            server: server.handle(),
            drain_rx,
            config_file,
            env: start.env,
            logs,
            config: cfg.clone(),
            fatal,
        };
        let outcome = actors.spawn(shutdown::run(lifecycle));
        // The bound address, not the configured one: with port 0 the kernel picks it, and tests
        // and tools read it from this line.
        info!(node = %node, version = %version, http = %bound, cluster = %cluster.listen, games = ?ctx.games.readable_versions(), "warren node ready");
        server.await.context("http server failed")?;
        outcome.await.context("lifecycle task failed")
    })?;
    // An orderly end before the runtime cancels what is left. The supervisor goes first: parts
    // of the node ending now is no failure to report. Then the cluster's node server: its TCP
    // listener, cancelled under it, was respawned and logged as an error (26 errors from one
    // node in a scale-in test).
    actors.block_on(async {
        let wait = Some(std::time::Duration::from_millis(500));
        sup.stop_and_wait(None, wait).await.ok();
        if let Some(server) = ractor::registry::where_is(format!("{node}/node-server")) {
            server.stop_and_wait(None, wait).await.ok();
        }
    });
    actors.shutdown_timeout(std::time::Duration::from_secs(1));
    info!(?outcome, "warren node stopped");
    Ok(outcome)
}

/// The HTTP listener: the one the embedding program bound (`given`), or one on `listen` (port 0:
/// one the kernel picks) with the backlog actix-server would give it; its address goes to `bound`.
fn http_listener(
    given: Option<std::net::TcpListener>,
    listen: &str,
    bound: &mut String,
) -> anyhow::Result<std::net::TcpListener> {
    if let Some(l) = given {
        *bound = l.local_addr()?.to_string();
        return Ok(l);
    }
    let addr: std::net::SocketAddr = listen
        .parse()
        .with_context(|| format!("http.listen {listen} is not an address"))?;
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()
    } else {
        tokio::net::TcpSocket::new_v6()
    }
    .with_context(|| format!("failed to listen on http.listen {listen}"))?;
    socket.set_reuseaddr(true)?;
    socket
        .bind(addr)
        .with_context(|| format!("failed to listen on http.listen {listen}"))?;
    let listener = socket
        .listen(2048)
        .with_context(|| format!("failed to listen on http.listen {listen}"))?
        .into_std()?;
    *bound = listener.local_addr()?.to_string();
    Ok(listener)
}
