//! A full rolling restart of a three-node cluster (scripts/rolling-restart.sh, as `kubectl rollout
//! restart` does it) while a few hundred simulated players play arena rooms spread over all
//! nodes: no room is lost and no acknowledged input is lost. The same from the previous release
//! (scripts/build-previous.sh) to this build: an upgrade.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio_tungstenite::connect_async;
use warren_client::{Connection, Frame};

use crate::common::free_port;
use crate::common::{Client, Node, TEST_NODE, token};

const ROOMS: usize = 60;
const SEATS: usize = 4;
/// Inputs per second per player, each with a `rid` (its `ok` is the acknowledgement).
const INPUT_EVERY: Duration = Duration::from_millis(250);

type Ws = Connection;

/// What one simulated player saw.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    pub(crate) sent: u64,
    /// Highest input `seq` answered `ok`.
    pub(crate) acked: u64,
    /// Highest input `seq` answered at all.
    pub(crate) answered: u64,
    /// The room's `ack` for this player in its last `state`.
    pub(crate) final_ack: u64,
    /// Times a `state` carried a lower `ack` than the one before.
    pub(crate) backwards: u64,
    /// Each time it did: when (since the unix epoch, µs), the `ack` before and after, the
    /// connection's node (its index in the list) and how many resumes the player had made.
    pub(crate) backwards_at: Vec<(i64, u64, u64, usize, u64)>,
    pub(crate) resumes: u64,
    pub(crate) errors: BTreeMap<String, u64>,
    /// Longest time between two `state` frames.
    pub(crate) longest_pause: Duration,
    /// The room still plays for this player at the end.
    pub(crate) room_alive: bool,
}

async fn connect(url: &str) -> Option<(Ws, Value)> {
    let (ws, _) = tokio::time::timeout(Duration::from_secs(5), connect_async(url))
        .await
        .ok()?
        .ok()?;
    let conn = tokio::time::timeout(Duration::from_secs(5), Connection::over(ws))
        .await
        .ok()?
        .ok()?;
    let welcome = serde_json::from_str(conn.welcome_text()).ok()?;
    Some((conn, welcome))
}

/// Plays until `stop`, reconnecting (with its resume token, to the next node) whenever its
/// connection closes; then checks that its room still plays and holds every acknowledged input.
pub(crate) async fn play(
    name: String,
    room: String,
    mut ws: Ws,
    mut resume: String,
    ports: Arc<Vec<u16>>,
    mut node: usize,
    stop: Arc<AtomicBool>,
) -> Outcome {
    let mut out = Outcome::default();
    let tok = token(&name, &[]);
    let mut seq = 0u64;
    let mut last_ack = 0u64;
    let mut last_state = Instant::now();
    let mut tick = tokio::time::interval(INPUT_EVERY);
    let mut stopped_at: Option<Instant> = None;
    loop {
        let mut lost = false;
        tokio::select! {
            _ = tick.tick() => {
                if stop.load(Ordering::Relaxed) {
                    // Done sending: wait for the room to show everything acknowledged.
                    let since = *stopped_at.get_or_insert_with(Instant::now);
                    if out.acked <= last_ack && out.answered >= out.sent {
                        out.room_alive = true;
                        break;
                    }
                    if since.elapsed() > Duration::from_secs(10) {
                        out.room_alive = last_state.elapsed() < Duration::from_secs(2);
                        break;
                    }
                    continue;
                }
                seq += 1;
                let m = json!({"type":"input","rid":seq,"seq":seq,"data":{"dx":1,"dy":0}});
                if ws.send_text(m.to_string()).await.is_ok() {
                    out.sent = seq;
                } else {
                    lost = true;
                }
            }
            m = ws.next() => match m {
                Frame::Text(t) => {
                    let v: Value = serde_json::from_str(&t).unwrap_or(Value::Null);
                    match v["type"].as_str() {
                        Some("state") if v["room"] == room.as_str() => {
                            let ack = v["ack"].as_u64().unwrap_or(0);
                            if ack < last_ack {
                                out.backwards += 1;
                                out.backwards_at.push((
                                    warren_loadtest::chaos::now_us(),
                                    last_ack,
                                    ack,
                                    node,
                                    out.resumes,
                                ));
                            }
                            last_ack = ack;
                            out.longest_pause = out.longest_pause.max(last_state.elapsed());
                            last_state = Instant::now();
                        }
                        Some("ok") => {
                            let rid = v["rid"].as_u64().unwrap_or(0);
                            out.acked = out.acked.max(rid);
                            out.answered = out.answered.max(rid);
                        }
                        Some("error") => {
                            let code = v["code"].as_str().unwrap_or("?").to_owned();
                            *out.errors.entry(code).or_default() += 1;
                            // Refused, so not taken: answered, but not owed.
                            if let Some(rid) = v["rid"].as_u64() {
                                out.answered = out.answered.max(rid);
                            }
                        }
                        _ => {}
                    }
                }
                Frame::Closed { .. } | Frame::Ended => lost = true,
            },
        }
        if lost {
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                assert!(Instant::now() < deadline, "{name} could not reconnect");
                node = (node + 1) % ports.len();
                let url = format!(
                    "ws://127.0.0.1:{}/v1/ws?token={tok}&resume={resume}",
                    ports[node]
                );
                if let Some((w, welcome)) = connect(&url).await {
                    ws = w;
                    resume = welcome["resume"].as_str().unwrap_or_default().to_owned();
                    out.resumes += 1;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            // Inputs in flight on the closed connection were never acknowledged, and will not be.
            out.answered = out.sent;
        }
    }
    out.final_ack = last_ack;
    out
}

/// Seats room `r`'s players: seat 0 creates an arena room (10 Hz) on node `node_of(0)`, the others
/// join it from theirs; each then plays (`play`) until `stop`, reconnecting through `ports`.
pub(crate) async fn seat_room(
    nodes: &[Node],
    r: usize,
    seats: usize,
    node_of: impl Fn(usize) -> usize,
    ports: &Arc<Vec<u16>>,
    stop: &Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<Outcome>> {
    let mut room = String::new();
    let mut players = Vec::new();
    for s in 0..seats {
        let node = node_of(s);
        let name = format!("r{r}s{s}");
        let mut c: Client = nodes[node].connect(&name).await;
        if s == 0 {
            room = c
                .ok(json!({"type":"create_room","game":"arena","params":{"tick_hz":10}}))
                .await["room"]
                .as_str()
                .unwrap()
                .to_owned();
        } else {
            c.ok(json!({"type":"join_room","room":room})).await;
        }
        let resume = c.resume_token();
        players.push(tokio::spawn(play(
            name,
            room.clone(),
            c.conn,
            resume,
            ports.clone(),
            node,
            stop.clone(),
        )));
    }
    players
}

/// What the players saw, summed: the promises the rolling and scale-in tests hold.
pub(crate) struct Tally {
    /// Rooms (runs of `seats` players) one of whose players found it gone at the end.
    pub(crate) rooms_lost: usize,
    /// Acknowledged inputs missing from their room's final `ack`.
    pub(crate) inputs_lost: u64,
    /// Times a player's `ack` went backwards.
    pub(crate) backwards: u64,
    /// Inputs acknowledged.
    pub(crate) acked: u64,
}

impl Tally {
    pub(crate) fn of(all: &[Outcome], seats: usize) -> Tally {
        Tally {
            rooms_lost: all
                .chunks(seats)
                .filter(|room| room.iter().any(|o| !o.room_alive))
                .count(),
            inputs_lost: all
                .iter()
                .map(|o| o.acked.saturating_sub(o.final_ack))
                .sum(),
            backwards: all.iter().map(|o| o.backwards).sum(),
            acked: all.iter().map(|o| o.acked).sum(),
        }
    }
}

/// Kills the processes named by `*.pid` files of `dir` when dropped (the nodes the script
/// restarted are not children of the test).
struct Restarted<'a>(&'a Path);

impl Drop for Restarted<'_> {
    fn drop(&mut self) {
        for i in 1..=3 {
            if let Ok(pid) = std::fs::read_to_string(self.0.join(format!("n{i}.pid"))) {
                let _ = std::process::Command::new("kill")
                    .args(["-KILL", pid.trim()])
                    .status();
            }
        }
    }
}

/// Three converged nodes at addresses reserved before they start: a rolling restart brings each
/// node back at its own address (as a StatefulSet's stable names do), so its peers' seeds and its
/// players' node list stay true across the restart.
async fn stable_trio(bin: &str) -> Vec<Node> {
    use crate::cluster::{COOKIE, start_env_bin, wait_for};
    let cluster = [free_port(), free_port(), free_port()];
    let http: Vec<String> = (0..3)
        .map(|_| format!("127.0.0.1:{}", free_port()))
        .collect();
    let addr = |i: usize| format!("127.0.0.1:{}", cluster[i]);
    let mut nodes = Vec::new();
    for i in 0..3 {
        let seeds = (0..3)
            .filter(|j| *j != i)
            .map(addr)
            .collect::<Vec<_>>()
            .join(",");
        let extra = [("WARREN_HTTP__LISTEN", http[i].as_str())];
        let id = format!("n{}", i + 1);
        nodes.push(start_env_bin(bin, &id, cluster[i], &seeds, COOKIE, &extra).await);
    }
    let all = [("n1", "ready"), ("n2", "ready"), ("n3", "ready")];
    for n in &nodes {
        wait_for(n, &all, std::time::Duration::from_secs(15)).await;
    }
    nodes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_restart_under_a_few_hundred_players_loses_no_room_and_no_acknowledged_input() {
    roll(TEST_NODE, None).await;
}

/// The previous release (protocol 10: membership by heartbeats) rolled to this build (protocol 11:
/// SWIM), node by node, under players: while the cluster is part old and part new every node sees
/// every other, rooms move both ways, and nothing is lost. The previous release is built by
/// scripts/build-previous.sh (which `.ci/run` runs before the tests; here, it reuses that build).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upgrade_from_the_previous_release_under_a_few_hundred_players_loses_no_room() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/build-previous.sh");
    let built = tokio::process::Command::new("bash")
        .arg(script)
        .output()
        .await
        .unwrap();
    assert!(
        built.status.success(),
        "scripts/build-previous.sh failed: {}",
        String::from_utf8_lossy(&built.stderr)
    );
    let previous = String::from_utf8(built.stdout).unwrap();
    roll(previous.trim(), Some(env!("CARGO_BIN_EXE_warren"))).await;
}

/// One rolling restart at a time: two at once (six nodes, 480 players) starve the two cores, and
/// a player's `ack` went backwards by one (a state from the room's previous host, on a lagging
/// link, arriving after the new host's; ARCHITECTURE.md, "Open").
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Three nodes of `from` under players, restarted one by one as `to` (each as itself when `None`).
async fn roll(from: &str, to: Option<&str>) {
    let _alone = ONE_AT_A_TIME.lock().await;
    let nodes = stable_trio(from).await;
    let ports: Arc<Vec<u16>> = Arc::new(nodes.iter().map(|n| n.port).collect());
    let stop = Arc::new(AtomicBool::new(false));
    let mut players = Vec::new();
    for r in 0..ROOMS {
        players.extend(seat_room(&nodes, r, SEATS, |s| (r + s) % 3, &ports, &stop).await);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;

    let dir = tempdir();
    for (i, n) in nodes.iter().enumerate() {
        std::fs::write(dir.join(format!("n{}.pid", i + 1)), n.pid().to_string()).unwrap();
        std::fs::write(
            dir.join(format!("n{}.http", i + 1)),
            format!("127.0.0.1:{}", n.port),
        )
        .unwrap();
    }
    let _guard = Restarted(&dir);
    let started = Instant::now();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/rolling-restart.sh");
    let run = tokio::process::Command::new("bash")
        .arg(script)
        .arg(&dir)
        .args(to)
        .output()
        .await
        .unwrap();
    let took = started.elapsed();
    let report = String::from_utf8_lossy(&run.stdout).to_string();
    assert!(
        run.status.success(),
        "rolling restart failed: {report}{}",
        String::from_utf8_lossy(&run.stderr)
    );
    for (i, n) in nodes.iter().enumerate() {
        let log = n.logs();
        assert!(log.contains("warren node stopped outcome=Drained"), "{log}");
        // The node as restarted (it logs to the script's directory).
        let again = std::fs::read_to_string(dir.join(format!("n{}.log", i + 1))).unwrap();
        assert!(again.contains("warren node ready"), "{again}");
        // A normal rolling restart logs nothing an operator would learn to ignore.
        for noise in ["auth_fail", "duplicate_connection", " ERROR "] {
            for log in [&log, &again] {
                assert!(
                    !log.contains(noise),
                    "`{noise}` in a rolling restart's log:\n{log}"
                );
            }
        }
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::Relaxed);

    let mut all = Vec::new();
    for p in players {
        all.push(p.await.unwrap());
    }
    let Tally {
        rooms_lost,
        inputs_lost,
        backwards,
        acked,
    } = Tally::of(&all, SEATS);
    let resumes: u64 = all.iter().map(|o| o.resumes).sum();
    let mut errors: BTreeMap<String, u64> = BTreeMap::new();
    for o in &all {
        for (k, v) in &o.errors {
            *errors.entry(k.clone()).or_default() += v;
        }
    }
    let mut pauses: Vec<Duration> = all.iter().map(|o| o.longest_pause).collect();
    pauses.sort();
    println!(
        "rolling restart of 3 nodes ({from} to {}) under {} players in {ROOMS} arena rooms: {took:.1?}\n{report}\
         inputs acknowledged {acked}, resumes {resumes}, errors {errors:?}\n\
         longest pause per player: median {:?}, max {:?}\n\
         rooms lost {rooms_lost}, acknowledged inputs lost {inputs_lost}, ack went backwards {backwards}",
        to.unwrap_or(from),
        all.len(),
        pauses[pauses.len() / 2],
        pauses[pauses.len() - 1],
    );
    assert_eq!(rooms_lost, 0);
    assert_eq!(inputs_lost, 0);
    assert_eq!(backwards, 0, "{:?}", backwards_of(&all));
    assert!(
        resumes >= (ROOMS * SEATS) as u64,
        "every player's node restarted once"
    );
}

/// The players whose `ack` went backwards, with when and where (for the failure's message).
pub(crate) fn backwards_of(all: &[Outcome]) -> Vec<String> {
    all.iter()
        .enumerate()
        .filter(|(_, o)| o.backwards > 0)
        .map(|(i, o)| format!("player {i}: {:?}", o.backwards_at))
        .collect()
}

fn tempdir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!(
        "warren-rolling-{}-{}",
        std::process::id(),
        crate::common::unique()
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}
