//! Upgrading a game's logic in a running cluster: three nodes run version 1 of crazy eights
//! (`eights-node-v1`, whose state names the pile `discard` and counts no moves) while three tables
//! of players play game after game, each table's players on three different nodes. The nodes are
//! replaced one at a time by version 2 (`eights-node`), as `kubectl rollout` or
//! `scripts/rolling-restart.sh DIR target/release/eights-node` does: drain, exit, start the new
//! build under the same id. Players see a pause, never an error; no game is lost or reset; a room
//! written by version 2 never goes to (and is never kept as a replica by) a version 1 node.
//!
//! The version 1 binary is the `warren-eights-v1` package's: `cargo test --workspace` builds it; to
//! run this test alone, `cargo build -p warren-eights-v1` first (with the same profile).

#![allow(clippy::unwrap_used)]

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use warren_client::{ClientError, ErrorCode, Request, RoomId};

use common::{Live, Node, Player, WAIT, cluster_ready, obj, one_move};

// Dependencies of the example's library.
use {rand as _, serde as _, warren as _};

/// The version 1 node, built next to this package's `eights-node`.
fn v1_binary() -> PathBuf {
    let v2 = PathBuf::from(env!("CARGO_BIN_EXE_eights-node"));
    let v1 = v2.with_file_name("eights-node-v1");
    assert!(
        v1.exists(),
        "{} is missing: build it with `cargo build -p warren-eights-v1` (same profile), or run `cargo test --workspace`",
        v1.display()
    );
    v1
}

fn reserve_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The sum of a metric's series on `node`.
async fn metric(node: &Node, name: &str) -> f64 {
    let (_, body) = node.http("GET", "/metrics").await;
    body.lines()
        .filter(|l| l.starts_with(name) && !l.starts_with('#'))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// What one table of three players went through.
#[derive(Default, Debug)]
struct Table {
    games: u32,
    moves: u32,
    /// How long each move's request took.
    waits: Vec<Duration>,
    /// Per game, its longest wait.
    worst: Vec<Duration>,
}

/// Sends a request, riding out the player's node draining under it (`server_draining`, or the
/// connection closing): the player resumes elsewhere and the request is sent again.
async fn steady(
    p: &mut Player,
    live: &Live,
    req: impl Fn() -> Request,
) -> serde_json::Map<String, Value> {
    let deadline = Instant::now() + WAIT;
    loop {
        match p.client.request(req()).await {
            Ok(ok) => return ok,
            Err(ClientError::Refused {
                code: ErrorCode::ServerDraining,
                ..
            })
            | Err(ClientError::Closed) => {
                assert!(
                    Instant::now() < deadline,
                    "{}: no node took the request",
                    p.id
                );
                let was = p.at.clone();
                p.pump(live, |p| p.at != was).await;
            }
            Err(e) => panic!("{}: {e}", p.id),
        }
    }
}

/// Plays game after game until `stop`, then finishes the game under way.
async fn play_tables(mut players: Vec<Player>, live: Live, stop: Arc<AtomicBool>) -> Table {
    let mut t = Table::default();
    loop {
        let params = obj(json!({"seats": 3, "hand": 7, "turn_ms": 60_000}));
        let ok = steady(&mut players[0], &live, || Request::CreateRoom {
            game: "eights".into(),
            params: params.clone(),
            private: true,
        })
        .await;
        let room = RoomId::new(ok["room"].as_str().unwrap());
        players[0].play_in(&room);
        for p in &mut players[1..] {
            steady(p, &live, || Request::JoinRoom { room: room.clone() }).await;
            p.play_in(&room);
        }
        for p in &mut players {
            // A `ready` lost with a connection is sent again; the game may have started meanwhile
            // (the lost one counted), which the game answers `invalid_state`.
            let deadline = Instant::now() + WAIT;
            loop {
                match p.client.request(Request::Ready).await {
                    Ok(_)
                    | Err(ClientError::Refused {
                        code: ErrorCode::InvalidState,
                        ..
                    }) => break,
                    Err(ClientError::Closed) => {
                        assert!(Instant::now() < deadline, "{}: ready never taken", p.id);
                        let was = p.at.clone();
                        p.pump(&live, |p| p.at != was).await;
                    }
                    Err(e) => panic!("{}: ready: {e}", p.id),
                }
            }
        }
        for p in &mut players {
            p.pump(&live, |p| !p.hand.is_empty() && p.turn.is_some())
                .await;
        }
        let mut worst = Duration::ZERO;
        let mut moves = 0;
        while players[0].winner.is_none() {
            assert!(moves < 500, "no winner after {moves} moves");
            tokio::time::sleep(Duration::from_millis(25)).await;
            if let Some(took) = one_move(&mut players, &live).await {
                moves += 1;
                worst = worst.max(took);
                t.waits.push(took);
            }
        }
        let winner = players[0].winner.clone().unwrap();
        let w = players.iter().find(|p| p.id == winner).unwrap();
        assert!(w.hand.is_empty(), "the winner holds {:?}", w.hand);
        t.games += 1;
        t.moves += moves;
        t.worst.push(worst);
        for p in &mut players {
            // Out of the game from here on: a leave lost with a connection may have been taken
            // (then the seat search after the resume finds none, and a second leave is
            // `not_in_room`).
            p.room = None;
            match p.client.request(Request::LeaveRoom).await {
                Ok(_)
                | Err(ClientError::Refused {
                    code: ErrorCode::NotInRoom,
                    ..
                }) => {}
                Err(ClientError::Closed) => {
                    let was = p.at.clone();
                    p.pump(&live, |p| p.at != was).await;
                    match p.client.request(Request::LeaveRoom).await {
                        Ok(_)
                        | Err(ClientError::Refused {
                            code: ErrorCode::NotInRoom,
                            ..
                        }) => {}
                        Err(e) => panic!("{}: leave_room: {e}", p.id),
                    }
                }
                Err(e) => panic!("{}: leave_room: {e}", p.id),
            }
        }
        if stop.load(Ordering::Relaxed) {
            // Only version 2 nodes are left: the last game was version 2's, which counts moves.
            assert!(
                players[0].moves_counted.is_some(),
                "the last game ran on version 1"
            );
            for p in &players {
                assert!(
                    p.resyncs.iter().all(|same| *same),
                    "{}: {:?}",
                    p.id,
                    p.resyncs
                );
            }
            return t;
        }
    }
}

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_upgrade_from_version_1_to_2_keeps_every_game() {
    let (v1, v2) = (v1_binary(), env!("CARGO_BIN_EXE_eights-node"));
    let v1 = v1.to_str().unwrap();
    let cluster: Vec<String> = (0..3)
        .map(|_| format!("127.0.0.1:{}", reserve_port()))
        .collect();
    let ids = ["n1", "n2", "n3"];
    let mut nodes = vec![
        Node::start_at(v1, ids[0], "", &cluster[0]).await,
        Node::start_at(v1, ids[1], &cluster[0], &cluster[1]).await,
        Node::start_at(v1, ids[2], &cluster[0], &cluster[2]).await,
    ];
    cluster_ready(&nodes.iter().collect::<Vec<_>>()).await;
    let live: Live = Arc::new(Mutex::new(nodes.iter().map(|n| n.http.clone()).collect()));

    // Three tables, each with its players on three different nodes.
    let stop = Arc::new(AtomicBool::new(false));
    let mut tables = Vec::new();
    for t in 0..3 {
        let mut players = Vec::new();
        for s in 0..3 {
            let mut p = Player::join(&nodes[(t + s) % 3], &format!("t{t}p{s}")).await;
            // They join and create rooms while nodes drain (see `strict_recovery`).
            p.strict_recovery = false;
            players.push(p);
        }
        tables.push(tokio::spawn(play_tables(
            players,
            live.clone(),
            stop.clone(),
        )));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;

    let mut refusals = 0.0;
    let mut logs = String::new();
    let mut witness: Option<(Player, RoomId)> = None;
    for i in 0..3 {
        let old = &nodes[i];
        live.lock().unwrap().retain(|n| *n != old.http);
        refusals += metric(old, "warren_room_restore_refusals_total").await;
        Command::new("kill")
            .args(["-TERM", &old.child.id().to_string()])
            .status()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        let exited = loop {
            if let Some(status) = nodes[i].child.try_wait().unwrap() {
                break status;
            }
            assert!(Instant::now() < deadline, "{} did not drain", ids[i]);
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert!(
            exited.success(),
            "{} exited with {exited}: {}",
            ids[i],
            nodes[i].logs()
        );
        logs.push_str(&nodes[i].logs());
        let seed = &cluster[(i + 1) % 3];
        nodes[i] = Node::start_at(v2, ids[i], seed, &cluster[i]).await;
        cluster_ready(&nodes.iter().collect::<Vec<_>>()).await;
        live.lock().unwrap().push(nodes[i].http.clone());

        if i == 0 {
            // A room of version 2 on n1 while n2 and n3 still run version 1: neither may keep its
            // replica (it has no backup until a second node runs version 2).
            let p = Player::join(&nodes[0], "witness").await;
            let room = p
                .client
                .create_room("eights", obj(json!({"seats": 2})))
                .await
                .unwrap();
            tokio::time::sleep(Duration::from_millis(800)).await;
            for n in &nodes[1..] {
                assert_eq!(
                    n.replica_version(&room).await,
                    None,
                    "{} keeps a v2 replica",
                    n.id
                );
                assert_eq!(metric(n, "warren_room_restore_refusals_total").await, 0.0);
            }
            witness = Some((p, room));
        }
        if i == 1 {
            // n2 runs version 2 now: the witness room has a backup again.
            let (_, room) = witness.as_ref().unwrap();
            let deadline = Instant::now() + WAIT;
            while nodes[1].replica_version(room).await.is_none()
                && nodes[2].replica_version(room).await.is_none()
            {
                assert!(
                    Instant::now() < deadline,
                    "the v2 room never got a v2 backup"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        // Games go on; the new node takes its share of rooms.
        tokio::time::sleep(Duration::from_millis(1500)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let mut reports = Vec::new();
    for t in tables {
        reports.push(
            tokio::time::timeout(Duration::from_secs(60), t)
                .await
                .unwrap()
                .unwrap(),
        );
    }
    for n in &nodes {
        refusals += metric(n, "warren_room_restore_refusals_total").await;
        logs.push_str(&n.logs());
    }
    assert_eq!(
        refusals, 0.0,
        "a node was asked to restore a room it cannot:\n{logs}"
    );
    for (i, t) in reports.iter().enumerate() {
        assert!(t.games >= 2, "table {i} played {} games", t.games);
    }

    // The figures (reported, not asserted): each move's wait, each game's longest, and the
    // server's pause per migrated room (`room migrated … pause_us=`).
    let mut waits: Vec<Duration> = reports.iter().flat_map(|t| t.waits.clone()).collect();
    waits.sort();
    let mut worst: Vec<Duration> = reports.iter().flat_map(|t| t.worst.clone()).collect();
    worst.sort();
    let mut pauses: Vec<Duration> = logs
        .lines()
        .filter(|l| l.contains("room migrated"))
        .filter_map(|l| {
            let us = l
                .split_whitespace()
                .find_map(|w| w.strip_prefix("pause_us="))?;
            Some(Duration::from_micros(us.parse().ok()?))
        })
        .collect();
    pauses.sort();
    let games: u32 = reports.iter().map(|t| t.games).sum();
    let moves: u32 = reports.iter().map(|t| t.moves).sum();
    eprintln!(
        "upgrade v1 → v2 of 3 nodes: {games} games, {moves} moves, 0 errors, 0 refusals\n\
         rooms migrated: {} — pause per room p50 {} p99 {} max {}\n\
         move wait (all moves): p50 {} p99 {} max {}\n\
         longest wait per game: p50 {} p99 {} max {}",
        pauses.len(),
        ms(percentile(&pauses, 0.5)),
        ms(percentile(&pauses, 0.99)),
        ms(pauses.last().copied().unwrap_or_default()),
        ms(percentile(&waits, 0.5)),
        ms(percentile(&waits, 0.99)),
        ms(waits.last().copied().unwrap_or_default()),
        ms(percentile(&worst, 0.5)),
        ms(percentile(&worst, 0.99)),
        ms(worst.last().copied().unwrap_or_default()),
    );
    assert!(
        !pauses.is_empty(),
        "no room was migrated: the test upgraded nothing under load"
    );
}
