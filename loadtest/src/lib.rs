//! warren-loadtest: drives one or more Warren nodes with simulated players over real WebSocket
//! connections and reports what they saw.
//!
//! Scenarios (see `warren-loadtest --help`):
//! - `idle`: connections that only answer the server's pings (capacity, RSS per session);
//! - `arena`: rooms of S players sending inputs at H Hz (input→ack latency, updates per second);
//! - `dice`: turn-based rooms played to the end, round after round (roll→reply latency);
//! - `matchmaking`: players queueing, matched, leaving, queueing again (tickets/s, wait);
//! - `churn`: connect, create a room, vanish, resume with the token, leave.
//!
//! Chaos hooks kill a process (`--kill PID@S`) or drain a node (`--drain URL@S`) during the run, so
//! one run measures what a crash or a drain costs the players (resumes, closes, longest pause).

#![cfg_attr(test, allow(clippy::unwrap_used))]

// The binary's progress bar.
// A dev-dependency of the examples (examples/idle_floor.rs) only.
#[cfg(test)]
use futures_util as _;
use indicatif as _;

pub mod chaos;
pub mod chart;
pub mod net;
pub mod player;
pub mod scenarios;
pub mod stats;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context as _, bail};

use crate::net::{Sources, Target, http, proc_usage};
use crate::scenarios::{Arena, Shared};
use crate::stats::{Recorder, Report, ServerUse};

/// Which load.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    /// Connections doing nothing but heartbeats.
    Idle,
    /// Realtime rooms.
    Arena,
    /// Turn-based rooms.
    Dice,
    /// Queue, match, leave, again.
    Matchmaking,
    /// Connect, play briefly, vanish, resume.
    Churn,
}

impl Scenario {
    /// Its name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Idle => "idle",
            Self::Arena => "arena",
            Self::Dice => "dice",
            Self::Matchmaking => "matchmaking",
            Self::Churn => "churn",
        }
    }
}

/// A chaos action at a point of the run.
#[derive(Clone, Debug, PartialEq)]
pub enum Chaos {
    /// SIGKILL to a process.
    Kill {
        /// Process.
        pid: u32,
        /// Seconds into the run.
        at: f64,
    },
    /// `POST /v1/admin/drain` to a node.
    Drain {
        /// The node.
        target: Target,
        /// Seconds into the run.
        at: f64,
    },
}

impl Chaos {
    /// Parses `PID@SECONDS` (`kill`) or `URL@SECONDS` (`drain`).
    pub fn parse(kind: &str, s: &str) -> anyhow::Result<Self> {
        let (what, at) = s
            .rsplit_once('@')
            .with_context(|| format!("--{kind} {s}: expected WHAT@SECONDS"))?;
        let at: f64 = at
            .parse()
            .with_context(|| format!("--{kind} {s}: seconds"))?;
        Ok(match kind {
            "kill" => Chaos::Kill {
                pid: what.parse().with_context(|| format!("--kill {s}: pid"))?,
                at,
            },
            _ => Chaos::Drain {
                target: Target::parse(what)?,
                at,
            },
        })
    }

    fn at(&self) -> f64 {
        match self {
            Chaos::Kill { at, .. } | Chaos::Drain { at, .. } => *at,
        }
    }
}

/// A whole run.
#[derive(Clone, Debug)]
pub struct Config {
    /// Scenario.
    pub scenario: Scenario,
    /// Nodes, connected to round-robin.
    pub targets: Vec<Target>,
    /// Source addresses.
    pub sources: Sources,
    /// Clients (idle, matchmaking, churn) or rooms (arena, dice).
    pub count: usize,
    /// Arena: players per room, inputs per second, room tick rate.
    pub arena: Arena,
    /// Matchmaking mode (one pool).
    pub mode: String,
    /// New clients (or rooms) started per second; 0: as fast as they connect.
    pub rate: f64,
    /// How long the load holds once every client started.
    pub duration: Duration,
    /// The server process to measure.
    pub server_pid: Option<u32>,
    /// Chaos actions.
    pub chaos: Vec<Chaos>,
    /// Bearer token for `--drain`.
    pub admin_token: Option<String>,
    /// Most connection attempts in flight at once.
    pub max_connecting: usize,
    /// Most frames each client sends per second, bursts of [`scenarios::SEND_BURST`] aside;
    /// 0: no cap. Arena inputs are not paced: they follow `arena.hz`. Keep it below the node's `limits.messages_per_sec` to measure the node, not
    /// its rate limiter.
    pub msg_rate: f64,
}

/// A running load: its counters, while it runs.
pub struct Run {
    /// Counters.
    pub rec: Arc<Recorder>,
    shared: Arc<Shared>,
}

impl Run {
    /// Prepares a run (nothing connects until [`Run::drive`]).
    pub fn new(cfg: &Config) -> anyhow::Result<Self> {
        if cfg.targets.is_empty() {
            bail!("no target");
        }
        let rec = Arc::new(Recorder::new());
        let prefix = format!("lt{}x", std::process::id() % 100_000);
        let shared = Arc::new(Shared {
            targets: cfg.targets.clone(),
            sources: cfg.sources.clone(),
            rec: rec.clone(),
            stop: AtomicBool::new(false),
            seq: AtomicUsize::new(0),
            prefix,
            send_interval: (cfg.msg_rate > 0.0)
                .then(|| Duration::from_secs_f64(1.0 / cfg.msg_rate)),
        });
        Ok(Self { rec, shared })
    }

    /// Runs the load to its end and returns the report.
    pub async fn drive(self, cfg: Config) -> anyhow::Result<Report> {
        let rec = self.rec.clone();
        let before = cfg.server_pid.and_then(proc_usage);
        let peak_rss = Arc::new(std::sync::atomic::AtomicU64::new(before.map_or(0, |b| b.1)));
        // Timeline and the server's peak memory, once a second.
        let sampler = {
            let (rec, peak) = (rec.clone(), peak_rss.clone());
            let pid = cfg.server_pid;
            tokio::spawn(async move {
                let mut last = (0, 0);
                let mut window = Recorder::window();
                let mut every = tokio::time::interval(Duration::from_secs(1));
                every.tick().await;
                loop {
                    every.tick().await;
                    rec.tick_second(&mut last, &mut window);
                    if let Some((_, rss)) = pid.and_then(proc_usage) {
                        peak.fetch_max(rss, Ordering::Relaxed);
                    }
                }
            })
        };
        for c in cfg.chaos.clone() {
            let admin = cfg.admin_token.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs_f64(c.at())).await;
                match c {
                    Chaos::Kill { pid, .. } => {
                        let _ = std::process::Command::new("kill")
                            .args(["-KILL", &pid.to_string()])
                            .status();
                    }
                    Chaos::Drain { target, .. } => {
                        let _ = http(target.addr, "POST", "/v1/admin/drain", "", admin.as_deref())
                            .await;
                    }
                }
            });
        }
        // Start the clients (or rooms) at the given rate, at most `max_connecting` at once.
        let gate = Arc::new(tokio::sync::Semaphore::new(cfg.max_connecting.max(1)));
        let mut tasks = Vec::with_capacity(cfg.count);
        let started = tokio::time::Instant::now();
        for i in 0..cfg.count {
            if cfg.rate > 0.0 {
                tokio::time::sleep_until(started + Duration::from_secs_f64(i as f64 / cfg.rate))
                    .await;
            }
            let permit = gate.clone().acquire_owned().await?;
            let shared = self.shared.clone();
            let (scenario, arena, mode) = (cfg.scenario, cfg.arena, cfg.mode.clone());
            tasks.push(tokio::spawn(async move {
                // The permit covers connecting; once the first connection is up, the next starts.
                let s2 = shared.clone();
                let watch = tokio::spawn(async move {
                    let want = s2.rec.connected.load(Ordering::Relaxed);
                    for _ in 0..200 {
                        if s2.rec.connected.load(Ordering::Relaxed) > want
                            || s2.stop.load(Ordering::Relaxed)
                        {
                            break;
                        }
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    drop(permit);
                });
                match scenario {
                    Scenario::Idle => scenarios::idle(shared, i).await,
                    Scenario::Arena => scenarios::arena(shared, i, arena).await,
                    Scenario::Dice => scenarios::dice(shared, i).await,
                    Scenario::Matchmaking => scenarios::matchmaking(shared, i, mode).await,
                    Scenario::Churn => scenarios::churn(shared, i).await,
                }
                watch.abort();
            }));
        }
        tokio::time::sleep(cfg.duration).await;
        // Figures are taken at the end of the hold, before the clients close.
        let held = rec.elapsed().as_secs_f64();
        let server = cfg.server_pid.and_then(|pid| {
            let (cpu0, rss0) = before?;
            let (cpu1, rss1) = proc_usage(pid)?;
            let peak_rss = peak_rss.load(Ordering::Relaxed).max(rss1);
            let updates = rec.updates.load(Ordering::Relaxed);
            let peak_open = rec.peak_open.load(Ordering::Relaxed);
            Some(ServerUse {
                pid,
                cpu_seconds: cpu1 - cpu0,
                cpu_us_per_update: (updates > 0).then(|| (cpu1 - cpu0) * 1e6 / updates as f64),
                rss_kib: peak_rss,
                rss_kib_per_session: (peak_open > 0)
                    .then(|| (peak_rss as f64 - rss0 as f64) / peak_open as f64),
            })
        });
        let open = rec.open.load(Ordering::Relaxed);
        // Then every client stops and closes, so that the frame counts are complete.
        self.shared.stop.store(true, Ordering::Relaxed);
        for t in tasks {
            let _ = tokio::time::timeout(Duration::from_secs(10), t).await;
        }
        sampler.abort();
        let mut report = rec.report(cfg.scenario.name(), held, server);
        report.connections.open_at_end = open;
        Ok(report)
    }
}
