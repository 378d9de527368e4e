//! `warren-chaos`: the chaos soak. Starts a local cluster of `warren` nodes in network namespaces
//! (root, iproute2), plays on it while a seeded schedule kills, drains, restarts, cuts off and adds
//! nodes, then checks the recorded history. Exits 1 when a promise broke; the seed replays the
//! schedule. See `warren_loadtest::chaos`.

use std::path::PathBuf;

use clap::Parser;
use warren_loadtest::chaos::{Config, run};

// The library's dependencies, used through it.
#[cfg(test)]
use futures_util as _;
use {
    hdrhistogram as _, indicatif as _, serde as _, tokio_tungstenite as _, warren_client as _,
    warren_protocol as _,
};

/// Chaos soak of a local Warren cluster.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// Seconds of play in all, split over the rounds.
    #[arg(long, default_value_t = 60.0)]
    seconds: f64,
    /// Rounds: players join, play through the schedule, and leave; then the cluster must be
    /// back to zero connections and rooms.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// The schedule's seed (default: from the clock; printed, to replay a run).
    #[arg(long)]
    seed: Option<u64>,
    /// The node binary.
    #[arg(long, default_value = "target/release/warren")]
    node: PathBuf,
    /// Nodes at the start.
    #[arg(long, default_value_t = 5)]
    nodes: u8,
    /// Most nodes the schedule adds.
    #[arg(long, default_value_t = 2)]
    max_added: u8,
    /// Arena rooms per round.
    #[arg(long, default_value_t = 4)]
    rooms: usize,
    /// Players per arena room.
    #[arg(long, default_value_t = 3)]
    seats: usize,
    /// Queueing players per round.
    #[arg(long, default_value_t = 6)]
    queuers: usize,
    /// The nodes' cluster.failure_timeout_ms.
    #[arg(long, default_value_t = 2000)]
    failure_timeout_ms: u64,
    /// Where the nodes' logs and report.json go (default: target/chaos/SEED).
    #[arg(long)]
    out: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let seed = cli.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64 % 1_000_000)
    });
    anyhow::ensure!(
        cli.node.is_file(),
        "no node binary at {} (cargo build --release, or --node PATH)",
        cli.node.display()
    );
    let out = cli
        .out
        .unwrap_or_else(|| PathBuf::from(format!("target/chaos/{seed}")));
    println!(
        "chaos soak: seed {seed}, {} s, {} rounds, {} nodes, logs in {}",
        cli.seconds,
        cli.rounds,
        cli.nodes,
        out.display()
    );
    let report = run(Config {
        binary: cli.node,
        out: out.clone(),
        seed,
        seconds: cli.seconds,
        rounds: cli.rounds.max(1),
        nodes: cli.nodes.max(3),
        max_added: cli.max_added,
        rooms: cli.rooms,
        seats: cli.seats.max(1),
        tick_hz: 20,
        hz: 10,
        queuers: cli.queuers,
        failure_timeout_ms: cli.failure_timeout_ms,
    })
    .await?;
    std::fs::write(out.join("report.json"), serde_json::to_vec_pretty(&report)?)?;
    print!("{}", report.text());
    println!("report: {}", out.join("report.json").display());
    if !report.passed() {
        println!(
            "replay with: warren-chaos --seed {seed} --seconds {} --rounds {}",
            report.seconds, report.rounds
        );
        std::process::exit(1);
    }
    Ok(())
}
