//! `warren-loadtest <scenario> --target URL[,URL…]`: see the library's documentation and `--help`.

use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use warren_loadtest::net::{Sources, Target};
use warren_loadtest::scenarios::Arena;
use warren_loadtest::{Chaos, Config, Run, Scenario, chart};

// A dev-dependency of the examples (examples/idle_floor.rs) only.
#[cfg(test)]
use futures_util as _;

// The library's own dependencies, used through it.
use {
    hdrhistogram as _, serde as _, serde_json as _, tokio_tungstenite as _, warren_client as _,
    warren_protocol as _,
};

/// Load tester for Warren nodes.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// What the simulated players do.
    #[arg(value_enum)]
    scenario: Scenario,
    /// Nodes, `http://IP:PORT`, comma-separated; clients are spread over them round-robin.
    #[arg(long, required = true, value_delimiter = ',')]
    target: Vec<String>,
    /// Clients (idle, matchmaking, churn) or rooms (arena, dice).
    #[arg(long, short = 'n', default_value_t = 100)]
    count: usize,
    /// Arena: players per room.
    #[arg(long, default_value_t = 8)]
    seats: usize,
    /// Arena: inputs per second per player.
    #[arg(long, default_value_t = 20)]
    hz: u32,
    /// Arena: the rooms' tick rate.
    #[arg(long, default_value_t = 20)]
    tick_hz: u32,
    /// Matchmaking: the mode (one pool per mode).
    #[arg(long, default_value = "loadtest")]
    mode: String,
    /// Clients (or rooms) started per second; 0 with --ramp 0: as fast as they connect.
    #[arg(long, default_value_t = 0.0)]
    rate: f64,
    /// Seconds over which to start every client (sets the rate when --rate is 0).
    #[arg(long, default_value_t = 0.0)]
    ramp: f64,
    /// Seconds the load holds once every client started.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Source addresses, `127.0.0.1-127.0.0.8` or comma-separated (one address runs out of
    /// ephemeral ports near 28k connections to one target).
    #[arg(long, default_value = "")]
    source_ips: String,
    /// The server process to measure: CPU seconds and RSS per session.
    #[arg(long)]
    server_pid: Option<u32>,
    /// SIGKILL process PID at SECONDS into the run (repeatable).
    #[arg(long, value_name = "PID@SECONDS")]
    kill: Vec<String>,
    /// POST /v1/admin/drain to URL at SECONDS into the run (repeatable).
    #[arg(long, value_name = "URL@SECONDS")]
    drain: Vec<String>,
    /// Bearer token for --drain.
    #[arg(long)]
    admin_token: Option<String>,
    /// Most connection attempts in flight at once.
    #[arg(long, default_value_t = 256)]
    max_connecting: usize,
    /// Dice, matchmaking, churn: most frames each client sends per second (bursts of 10 aside);
    /// 0: no cap. The default stays under a node's default limit of 50, so the run measures the
    /// node, not its rate limiter. Arena inputs follow --hz.
    #[arg(long, default_value_t = 40.0)]
    msg_rate: f64,
    /// Write the report as JSON here.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
    /// Draw latency and throughput over time here (SVG).
    #[arg(long)]
    chart: Option<std::path::PathBuf>,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let targets = cli
        .target
        .iter()
        .map(|t| Target::parse(t))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut chaos = Vec::new();
    for k in &cli.kill {
        chaos.push(Chaos::parse("kill", k)?);
    }
    for d in &cli.drain {
        chaos.push(Chaos::parse("drain", d)?);
    }
    let rate = if cli.rate > 0.0 {
        cli.rate
    } else if cli.ramp > 0.0 {
        cli.count as f64 / cli.ramp
    } else {
        0.0
    };
    let cfg = Config {
        scenario: cli.scenario,
        targets,
        sources: Sources::parse(&cli.source_ips)?,
        count: cli.count,
        arena: Arena {
            seats: cli.seats,
            hz: cli.hz,
            tick_hz: cli.tick_hz,
        },
        mode: cli.mode.clone(),
        rate,
        duration: Duration::from_secs_f64(cli.duration),
        server_pid: cli.server_pid,
        chaos,
        admin_token: cli.admin_token.clone(),
        max_connecting: cli.max_connecting,
        msg_rate: cli.msg_rate,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("tokio runtime")?;
    let report = rt.block_on(async {
        let run = Run::new(&cfg)?;
        let rec = run.rec.clone();
        let bar = if cli.quiet {
            ProgressBar::hidden()
        } else {
            ProgressBar::new_spinner()
        };
        bar.set_style(ProgressStyle::with_template("{spinner} {elapsed} {msg}")?);
        let ticker = {
            let bar = bar.clone();
            tokio::spawn(async move {
                use std::sync::atomic::Ordering::Relaxed;
                loop {
                    bar.set_message(format!(
                        "open {} (failed {}), updates {}, acked {}, matches {}, resumes {}",
                        rec.open.load(Relaxed),
                        rec.failed.load(Relaxed),
                        rec.updates.load(Relaxed),
                        rec.acked.load(Relaxed),
                        rec.matches.load(Relaxed),
                        rec.resumes.load(Relaxed),
                    ));
                    bar.tick();
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            })
        };
        let report = run.drive(cfg).await;
        ticker.abort();
        bar.finish_and_clear();
        report
    })?;
    print!("{}", report.text());
    if let Some(p) = &cli.json {
        std::fs::write(p, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("writing {}", p.display()))?;
    }
    if let Some(p) = &cli.chart {
        std::fs::write(p, chart::svg(&report))
            .with_context(|| format!("writing {}", p.display()))?;
    }
    rt.shutdown_timeout(Duration::from_secs(1));
    Ok(())
}
