//! The chaos soak (`warren-chaos`): a local cluster of real nodes, each in a network namespace of
//! its own, played on by realtime rooms and queueing players while a seeded schedule kills nodes
//! (SIGKILL), drains them, restarts them, cuts them off (a partition) and adds nodes. Then a
//! checker holds the recorded history to Warren's promises:
//!
//! - never two live copies of a room (from the nodes' `warren_room_life` log events);
//! - no acknowledged input lost except after a kill (at most one snapshot interval) or a
//!   partition (reported);
//! - every player whose connection ended is seated again within the failure timeout + 1 s;
//! - no matchmaking ticket matched twice;
//! - after each round's players leave, connections and rooms return to zero;
//! - the memory of a node that lives through the run does not grow round over round.
//!
//! The run is split into rounds: players join, play while the schedule runs, and leave; then the
//! cluster must be back to zero. The seed fixes the schedule (what happens to which node, when),
//! so a failing run is replayed with its seed.

// Settings and record types: each field is named for what it holds, as report.json shows it.
#![allow(missing_docs)]

pub mod check;
pub mod cluster;
pub mod players;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::PoisonError;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde::Serialize;

use self::check::{Bounds, Fault, Overlap, Verdict};
use self::cluster::{ADMIN, Cluster};
use self::players::{ArenaLog, Live, QueueLog};
use crate::net::{http, proc_usage};

/// Microseconds since the Unix epoch (the clock the nodes' logs use).
pub fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

/// SplitMix64: a small, fixed pseudo-random sequence per seed (the schedule must replay the same
/// on every machine and version of every dependency).
pub struct Rng(u64);

impl Rng {
    /// The sequence of `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next number.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// Uniform in `[lo, hi)`.
    pub fn between(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// What the schedule does to a node.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Action {
    /// SIGKILL; the node starts again (same id) `down_s` later.
    #[allow(missing_docs)]
    Kill { node: String, down_s: f64 },
    /// `POST /v1/admin/drain`; once it has exited, the node starts again (same id).
    #[allow(missing_docs)]
    Drain { node: String },
    /// Its cluster link is cut for `for_s`, then restored.
    #[allow(missing_docs)]
    Partition { node: String, for_s: f64 },
    /// A new node joins.
    #[allow(missing_docs)]
    Add { node: String },
}

/// One step of the schedule.
#[derive(Clone, Debug, Serialize)]
pub struct Step {
    /// Round (from 0).
    pub round: usize,
    /// Seconds into the round (the step waits for the previous one's node to be back).
    pub at_s: f64,
    /// What it does.
    pub action: Action,
}

/// The soak's settings.
#[derive(Clone, Debug)]
pub struct Config {
    /// The `warren` binary the nodes run.
    pub binary: PathBuf,
    /// Where logs and the report go.
    pub out: PathBuf,
    pub seed: u64,
    /// Seconds of play in all (split over the rounds).
    pub seconds: f64,
    pub rounds: usize,
    /// Nodes at the start, and most nodes added.
    pub nodes: u8,
    pub max_added: u8,
    /// Arena rooms per round, their seats, tick rate and inputs per second per player.
    pub rooms: usize,
    pub seats: usize,
    pub tick_hz: u32,
    pub hz: u32,
    /// Queueing players per round.
    pub queuers: usize,
    pub failure_timeout_ms: u64,
}

/// The schedule `seed` gives: in each round, a step every 4–8 s from 3 s in (each waits for the
/// previous step's node to be back); a kill, a drain or a partition of one node (never `n1`, the
/// anchor whose memory is followed over the rounds, for kills and drains), or now and then a new
/// node. One node at a time is impaired, so the cluster always keeps its majority.
pub fn plan(cfg: &Config) -> Vec<Step> {
    let mut rng = Rng::new(cfg.seed);
    let mut nodes: Vec<String> = (1..=cfg.nodes).map(|i| format!("n{i}")).collect();
    let mut added = 0;
    let round_s = cfg.seconds / cfg.rounds.max(1) as f64;
    let ft = cfg.failure_timeout_ms as f64 / 1e3;
    let mut steps = Vec::new();
    for round in 0..cfg.rounds {
        let mut at = 3.0 + rng.between(0.0, 2.0);
        while at < round_s - 4.0 {
            let pick = rng.below(10);
            let others = &nodes[1..];
            let victim = others[rng.below(others.len() as u64) as usize].clone();
            let action = match pick {
                0..=2 => Action::Kill {
                    node: victim,
                    down_s: rng.between(1.0, 4.0),
                },
                3..=5 => Action::Drain { node: victim },
                6..=8 => Action::Partition {
                    // Shorter than the failure timeout (nothing may happen) to well past it.
                    node: nodes[rng.below(nodes.len() as u64) as usize].clone(),
                    for_s: rng.between(ft * 0.5, ft * 2.5),
                },
                _ if added < cfg.max_added => {
                    added += 1;
                    let node = format!("n{}", nodes.len() + 1);
                    nodes.push(node.clone());
                    Action::Add { node }
                }
                _ => Action::Kill {
                    node: victim,
                    down_s: rng.between(1.0, 4.0),
                },
            };
            steps.push(Step {
                round,
                at_s: at,
                action,
            });
            at += rng.between(4.0, 8.0);
        }
    }
    steps
}

/// One round's end.
#[derive(Clone, Debug, Default, Serialize)]
pub struct RoundEnd {
    pub round: usize,
    /// Time from the last player's close until every node had no connection and no room, in ms
    /// (`None`: not within the reconnect grace + 10 s).
    pub zero_after_ms: Option<f64>,
    pub connections_left: f64,
    pub rooms_left: f64,
    /// Where they were left: (node, connections, rooms).
    pub left_on: Vec<(String, f64, f64)>,
    /// Each node's memory then: (node, pid, RSS KiB).
    pub rss: Vec<(String, u32, u64)>,
}

/// A step as it ran.
#[derive(Clone, Debug, Serialize)]
pub struct Done {
    pub step: Step,
    /// Seconds into the round it started, and how long until its node was back.
    pub started_s: f64,
    pub took_s: f64,
}

/// The whole run.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub seed: u64,
    pub seconds: f64,
    pub rounds: usize,
    pub steps: Vec<Done>,
    pub skipped: Vec<Step>,
    pub round_ends: Vec<RoundEnd>,
    pub verdict: Verdict,
    pub overlaps: Vec<Overlap>,
    pub rooms_seen: usize,
    pub room_runs: usize,
    pub inputs_sent: u64,
    pub log_errors: std::collections::BTreeMap<String, u64>,
    pub log_warnings: std::collections::BTreeMap<String, u64>,
    pub arena: Vec<ArenaLog>,
    pub queues: Vec<QueueLog>,
}

impl Report {
    /// Whether every promise held.
    pub fn passed(&self) -> bool {
        self.verdict.violations.is_empty()
    }

    /// A summary for people.
    pub fn text(&self) -> String {
        let v = &self.verdict;
        let mut s = format!(
            "chaos soak: seed {}, {:.0} s in {} rounds, {} steps run ({} skipped)\n",
            self.seed,
            self.seconds,
            self.rounds,
            self.steps.len(),
            self.skipped.len()
        );
        for d in &self.steps {
            s += &format!(
                "  round {} +{:.1}s {:?} (back after {:.1} s)\n",
                d.step.round, d.started_s, d.step.action, d.took_s
            );
        }
        s += &format!(
            "rooms: {} ({} runs on nodes), inputs sent: {}, two copies at once: {}\n",
            self.rooms_seen,
            self.room_runs,
            self.inputs_sent,
            self.overlaps.len()
        );
        s += &format!(
            "reconnects of seated players: {}, longest until seated: {:.0} ms; longest pause of a room's ticks: {:.0} ms\n",
            v.reseated, v.longest_reseat_ms, v.longest_pause_ms
        );
        s += &format!(
            "acknowledged ticks lost: after kills {} (most {} ticks), after partitions {} (most {} ticks), otherwise {}\n",
            v.kill_regressions,
            v.kill_loss_ticks,
            v.partition_regressions,
            v.partition_loss_ticks,
            v.other_regressions
        );
        s += &format!(
            "matches: {}, tickets matched twice: {}\n",
            v.matches, v.tickets_matched_twice
        );
        for r in &self.round_ends {
            s += &format!(
                "round {}: zero connections and rooms after {}; RSS {}\n",
                r.round,
                r.zero_after_ms
                    .map_or("never".to_owned(), |ms| format!("{ms:.0} ms")),
                r.rss
                    .iter()
                    .map(|(n, _, k)| format!("{n} {:.1} MiB", *k as f64 / 1024.0))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        if !self.log_errors.is_empty() {
            s += &format!("ERROR lines in the nodes' logs: {:?}\n", self.log_errors);
        }
        if v.violations.is_empty() {
            s += "every promise held\n";
        } else {
            s += &format!("{} broken promises:\n", v.violations.len());
            for x in v.violations.iter().take(40) {
                s += &format!("  - {x}\n");
            }
        }
        s
    }
}

fn live_nodes(c: &Cluster) -> Vec<(String, SocketAddr)> {
    c.running()
        .into_iter()
        .map(|i| (c.members[i].id.clone(), c.members[i].http))
        .collect()
}

fn set_live(live: &Live, c: &Cluster) {
    *live.nodes.lock().unwrap_or_else(PoisonError::into_inner) = live_nodes(c);
}

/// Runs the soak and checks it.
pub async fn run(cfg: Config) -> anyhow::Result<Report> {
    std::fs::create_dir_all(&cfg.out)?;
    let steps = plan(&cfg);
    let mut c = Cluster::new(&cfg.binary, &cfg.out, cfg.nodes, cfg.failure_timeout_ms)?;
    for _ in 0..cfg.nodes {
        c.add()?;
    }
    c.converge(Duration::from_secs(60)).await?;
    let round_s = cfg.seconds / cfg.rounds.max(1) as f64;
    let (mut done, mut skipped, mut faults) = (Vec::new(), Vec::new(), Vec::new());
    let (mut arena, mut queues, mut round_ends, mut ends_us) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for round in 0..cfg.rounds {
        let live = Live::new(live_nodes(&c));
        let mut rooms = Vec::new();
        for r in 0..cfg.rooms {
            rooms.push(tokio::spawn(players::arena_room(
                live.clone(),
                format!("chaos{round}a{r}"),
                cfg.seats,
                cfg.tick_hz,
                cfg.hz,
            )));
        }
        let mut qs = Vec::new();
        for q in 0..cfg.queuers {
            qs.push(tokio::spawn(players::queuer(
                live.clone(),
                format!("chaos{round}q{q}"),
                "chaos".to_owned(),
            )));
        }
        let t0 = Instant::now();
        let end = t0 + Duration::from_secs_f64(round_s);
        for step in steps.iter().filter(|s| s.round == round) {
            let at = t0 + Duration::from_secs_f64(step.at_s);
            tokio::time::sleep_until(at.max(Instant::now()).into()).await;
            // Room for the step and its recovery before the round ends.
            if Instant::now() + Duration::from_secs(4) > end {
                skipped.push(step.clone());
                continue;
            }
            let started = t0.elapsed().as_secs_f64();
            let (kind, node, at_us) = apply(&mut c, &live, &step.action).await?;
            faults.push(Fault {
                kind,
                node,
                at_us,
                back_us: now_us(),
            });
            done.push(Done {
                step: step.clone(),
                started_s: started,
                took_s: t0.elapsed().as_secs_f64() - started,
            });
        }
        tokio::time::sleep_until(end.max(Instant::now()).into()).await;
        live.stop.store(true, Ordering::Relaxed);
        ends_us.push(now_us());
        for t in rooms {
            if let Ok(Ok(logs)) = tokio::time::timeout(Duration::from_secs(60), t).await {
                arena.extend(logs);
            }
        }
        for t in qs {
            if let Ok(Ok(log)) = tokio::time::timeout(Duration::from_secs(60), t).await {
                queues.push(log);
            }
        }
        round_ends.push(settle(&mut c, round).await?);
    }
    let (runs, facts) = check::room_runs(&c.lives, now_us());
    c.stop_all();
    let overlaps = check::overlaps(&runs);
    let bounds = Bounds {
        failure_timeout_ms: cfg.failure_timeout_ms,
        // Realtime rooms snapshot every rooms.snapshot_interval_ms (100 ms by default).
        snapshot_ticks: (100 * u64::from(cfg.tick_hz)).div_ceil(1000),
    };
    let mut verdict = check::judge(&arena, &queues, &faults, &ends_us, &bounds);
    for o in &overlaps {
        verdict.violations.push(format!(
            "room {} ran on {} and {} at once for {:.1} ms",
            o.room, o.nodes.0, o.nodes.1, o.ms
        ));
    }
    for r in &round_ends {
        if r.zero_after_ms.is_none() {
            verdict.violations.push(format!(
                "round {}: {} connections and {} rooms left {:?} after every player left (node, connections, rooms: {:?})",
                r.round, r.connections_left, r.rooms_left, SETTLE, r.left_on
            ));
        }
    }
    // The anchor's memory, round over round (the first round warms it up).
    let anchor: Vec<u64> = round_ends
        .iter()
        .filter_map(|r| r.rss.iter().find(|(n, _, _)| n == "n1").map(|x| x.2))
        .collect();
    if anchor.len() >= 3 {
        let (second, last) = (anchor[1], anchor[anchor.len() - 1]);
        if last as f64 > second as f64 * 1.10 + 2048.0 {
            verdict.violations.push(format!(
                "n1's memory grew round over round: {second} KiB after round 2, {last} KiB after the last"
            ));
        }
    }
    Ok(Report {
        seed: cfg.seed,
        seconds: cfg.seconds,
        rounds: cfg.rounds,
        steps: done,
        skipped,
        round_ends,
        rooms_seen: runs.len(),
        room_runs: runs.values().map(Vec::len).sum(),
        inputs_sent: arena.iter().map(|a| a.sent).sum(),
        verdict,
        overlaps,
        log_errors: facts.errors,
        log_warnings: facts.warnings,
        arena,
        queues,
    })
}

/// Applies one action and waits until its node is back (ready, and seen ready by every other
/// node); returns the fault's kind, node and start.
async fn apply(
    c: &mut Cluster,
    live: &Live,
    action: &Action,
) -> anyhow::Result<(&'static str, String, i64)> {
    let within = Duration::from_secs(60);
    let index = |c: &Cluster, node: &str| {
        c.find(node)
            .ok_or_else(|| anyhow::anyhow!("no node {node}"))
    };
    Ok(match action {
        Action::Kill { node, down_s } => {
            let i = index(c, node)?;
            // Players stop trying it first, as a client's list of nodes would after a failure.
            *live.nodes.lock().unwrap_or_else(PoisonError::into_inner) = live_nodes(c)
                .into_iter()
                .filter(|(n, _)| n != node)
                .collect();
            let at = now_us();
            c.kill(i);
            tokio::time::sleep(Duration::from_secs_f64(*down_s)).await;
            c.start(i)?;
            c.converge(within).await?;
            set_live(live, c);
            ("kill", node.clone(), at)
        }
        Action::Drain { node } => {
            let i = index(c, node)?;
            let at = now_us();
            let (status, body) = http(
                c.members[i].http,
                "POST",
                "/v1/admin/drain",
                "",
                Some(ADMIN),
            )
            .await?;
            anyhow::ensure!(status < 300, "drain {node}: HTTP {status}: {body}");
            let t0 = Instant::now();
            while !c.exited(i) {
                anyhow::ensure!(t0.elapsed() < within, "{node} did not exit after its drain");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            set_live(live, c);
            c.start(i)?;
            c.converge(within).await?;
            set_live(live, c);
            ("drain", node.clone(), at)
        }
        Action::Partition { node, for_s } => {
            let i = index(c, node)?;
            let slot = c.members[i].slot;
            let at = now_us();
            c.net.cut(slot, true)?;
            tokio::time::sleep(Duration::from_secs_f64(*for_s)).await;
            c.net.cut(slot, false)?;
            c.converge(within).await?;
            ("partition", node.clone(), at)
        }
        Action::Add { node } => {
            let at = now_us();
            let i = c.add()?;
            anyhow::ensure!(
                c.members[i].id == *node,
                "added {} for {node}",
                c.members[i].id
            );
            c.converge(within).await?;
            set_live(live, c);
            ("add", node.clone(), at)
        }
    })
}

/// How long connections and rooms may take to reach zero after the players left: a seat whose
/// player's session was lost (with its node) and who never came back is held for the reconnect
/// grace, then released, and its room closes when empty.
const SETTLE: Duration = Duration::from_millis(cluster::GRACE_MS + 10_000);

/// After a round's players left: every node up, then no connection and no room anywhere.
async fn settle(c: &mut Cluster, round: usize) -> anyhow::Result<RoundEnd> {
    c.converge(Duration::from_secs(60)).await?;
    let t0 = Instant::now();
    let mut end = RoundEnd {
        round,
        ..RoundEnd::default()
    };
    loop {
        let (mut conns, mut rooms) = (0.0, 0.0);
        end.left_on.clear();
        for i in c.running() {
            let a = c.members[i].http;
            let n = cluster::metric_sum(a, "warren_connections")
                .await
                .unwrap_or(f64::NAN);
            let r = cluster::metric_sum(a, "warren_rooms")
                .await
                .unwrap_or(f64::NAN);
            if n != 0.0 || r != 0.0 {
                end.left_on.push((c.members[i].id.clone(), n, r));
            }
            (conns, rooms) = (conns + n, rooms + r);
        }
        (end.connections_left, end.rooms_left) = (conns, rooms);
        if conns == 0.0 && rooms == 0.0 {
            end.zero_after_ms = Some(t0.elapsed().as_secs_f64() * 1e3);
            break;
        }
        if t0.elapsed() > SETTLE {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for i in c.running() {
        let m = &c.members[i];
        if let Some(pid) = m.pid() {
            let rss = proc_usage(pid).map_or(0, |u| u.1);
            end.rss.push((m.id.clone(), pid, rss));
        }
    }
    Ok(end)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(seed: u64) -> Config {
        Config {
            binary: PathBuf::new(),
            out: PathBuf::new(),
            seed,
            seconds: 600.0,
            rounds: 5,
            nodes: 5,
            max_added: 2,
            rooms: 4,
            seats: 3,
            tick_hz: 20,
            hz: 10,
            queuers: 6,
            failure_timeout_ms: 2000,
        }
    }

    #[test]
    fn a_seed_gives_one_schedule_that_spares_the_anchor_and_bounds_the_nodes_added() {
        let a = plan(&cfg(7));
        let b = plan(&cfg(7));
        assert_eq!(
            serde_json::to_string(&a).unwrap(),
            serde_json::to_string(&b).unwrap()
        );
        assert_ne!(
            serde_json::to_string(&a).unwrap(),
            serde_json::to_string(&plan(&cfg(8))).unwrap()
        );
        assert!(a.len() >= 5 * 10, "{} steps", a.len());
        let mut added = 0;
        for s in &a {
            match &s.action {
                Action::Kill { node, .. } | Action::Drain { node } => assert_ne!(node, "n1"),
                Action::Add { .. } => added += 1,
                Action::Partition { .. } => {}
            }
            assert!(s.at_s >= 3.0 && s.at_s < 120.0 - 4.0, "{s:?}");
        }
        assert!(added <= 2);
        for kind in ["kill", "drain", "partition"] {
            assert!(
                serde_json::to_string(&a)
                    .unwrap()
                    .contains(&format!("\"kind\":\"{kind}\"")),
                "no {kind}"
            );
        }
    }
}
