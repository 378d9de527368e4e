//! Matchmaking end to end: pairs, eights, rating windows, reload of windows with SIGHUP.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::{Client, Node, token};

async fn queue(node: &Node, player: &str, mmr: i64, game: &str) -> Client {
    let tok = token(player, &[("mmr", json!(mmr))]);
    let mut c = node.connect_with(&format!("token={tok}")).await;
    let r = c.ok(json!({"type":"queue","game":game})).await;
    assert!(r["ticket"].as_str().is_some());
    c
}

async fn matched(c: &mut Client, game: &str, n: usize) -> Value {
    let m = c.until_type("match_found").await;
    assert_eq!(m["game"], game);
    assert_eq!(m["players"].as_array().unwrap().len(), n);
    let st = c.until_type("room_state").await;
    assert_eq!(st["room"], m["room"]);
    assert_eq!(st["players"].as_array().unwrap().len(), n);
    m
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_and_eight_players_are_matched() {
    let node = Node::start(&[]).await;
    let mut a = queue(&node, "d1", 1000, "dice").await;
    let mut b = queue(&node, "d2", 1050, "dice").await;
    let ma = matched(&mut a, "dice", 2).await;
    let mb = matched(&mut b, "dice", 2).await;
    assert_eq!(ma["room"], mb["room"]);
    assert_ne!(ma["ticket"], mb["ticket"]);
    // Seated: playing works at once.
    a.ok(json!({"type":"ready"})).await;
    b.ok(json!({"type":"ready"})).await;
    a.until_event("round_started").await;

    let mut eight = Vec::new();
    for i in 0..8 {
        eight.push(queue(&node, &format!("a{i}"), 1000 + i * 10, "arena").await);
    }
    let mut rooms = Vec::new();
    for c in eight.iter_mut() {
        rooms.push(matched(c, "arena", 8).await["room"].clone());
    }
    assert!(rooms.windows(2).all(|w| w[0] == w[1]));
    let (_, metrics) = node.http("GET", "/metrics", None, None).await.unwrap();
    assert!(
        metrics.contains("warren_matches_total{game=\"arena\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("warren_match_wait_seconds_bucket"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn far_ratings_wait_until_the_window_widens_and_reload_applies() {
    let dir = std::env::temp_dir().join(format!("warren-mm-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("warren.toml");
    // No widening at all: 1000 and 1600 can never meet.
    std::fs::write(
        &cfg,
        "[matchmaking]\ninitial_window = 100\nwiden_per_sec = 0\nmax_window = 1000\n",
    )
    .unwrap();
    let node = Node::start_with(&[], Some(&cfg)).await;
    let mut low = queue(&node, "low", 1000, "dice").await;
    let mut high = queue(&node, "high", 1600, "dice").await;
    // Proving a match did NOT happen needs some waiting: pools sweep every 100 ms, give them six.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let r = low.request(json!({"type":"ping"})).await;
    assert_eq!(r["type"], "ok");
    assert!(
        low.pending.iter().all(|m| m["type"] != "match_found"),
        "matched too early: {:?}",
        low.pending
    );
    // A close rating does match.
    let mut near = queue(&node, "near", 1050, "dice").await;
    matched(&mut near, "dice", 2).await;
    matched(&mut low, "dice", 2).await;
    // Widen by reload: 600 apart needs (600-100)/1000 = 0.5 s now.
    std::fs::write(
        &cfg,
        "[matchmaking]\ninitial_window = 100\nwiden_per_sec = 1000\nmax_window = 1000\n",
    )
    .unwrap();
    let mut far = queue(&node, "far", 1000, "dice").await;
    node.signal("HUP");
    matched(&mut high, "dice", 2).await;
    matched(&mut far, "dice", 2).await;
    assert!(node.logs().contains("reloaded"), "{}", node.logs());
    // A broken file on reload keeps the old config and the node keeps serving.
    std::fs::write(&cfg, "[matchmaking]\nwiden_per_sec = \"fast\"\n").unwrap();
    node.signal("HUP");
    let deadline = Instant::now() + Duration::from_secs(5);
    while !node.logs().contains("keeping the old one") {
        assert!(Instant::now() < deadline, "{}", node.logs());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    far.ok(json!({"type":"ping"})).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_player_who_disconnects_leaves_the_queue() {
    let node = Node::start(&[]).await;
    let gone = queue(&node, "gone", 1000, "dice").await;
    drop(gone);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, metrics) = node.http("GET", "/metrics", None, None).await.unwrap();
        if metrics.contains("warren_matchmaking_tickets{pool=\"dice:default\"} 0") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "ticket of a disconnected player stayed queued: {metrics}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut a = queue(&node, "x", 1000, "dice").await;
    let mut b = queue(&node, "y", 1000, "dice").await;
    let m = matched(&mut a, "dice", 2).await;
    let players: Vec<&str> = m["players"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert!(!players.contains(&"gone"), "{players:?}");
    matched(&mut b, "dice", 2).await;
}

/// Clients choose the mode, so every distinct mode queued makes a pool: a pool nobody queues
/// for any more retires, with its timer and its metric series, and a mode queued again later
/// gets a new pool that matches as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pools_of_modes_nobody_queues_for_retire() {
    let node = Node::start(&[("WARREN_MATCHMAKING__POOL_IDLE_MS", "300")]).await;
    let series = |metrics: &str| {
        metrics
            .lines()
            .filter(|l| l.starts_with("warren_matchmaking_tickets{pool=\"dice:m"))
            .count()
    };
    let mut made = 0;
    for p in 0..3 {
        let mut c = node.connect(&format!("modes{p}")).await;
        for m in 0..30 {
            let mode = format!("m{p}-{m}");
            c.ok(json!({"type":"queue","game":"dice","mode":mode}))
                .await;
            c.ok(json!({"type":"unqueue"})).await;
            made += 1;
        }
    }
    assert_eq!(made, 90);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (_, metrics) = node.http("GET", "/metrics", None, None).await.unwrap();
        let pools = crate::common::metric_sum(&node, "warren_matchmaking_pools").await;
        if pools == 0.0 && series(&metrics) == 0 {
            // Described even with no pool, so dashboards and alerts see it from the start.
            assert!(metrics.contains("# TYPE warren_matchmaking_tickets gauge\n"));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{pools} pools and {} series left after every ticket left",
            series(&metrics)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A retired mode works again.
    let tok = |p: &str| token(p, &[("mmr", json!(1000))]);
    let mut a = node
        .connect_with(&format!("token={}", tok("again-a")))
        .await;
    let mut b = node
        .connect_with(&format!("token={}", tok("again-b")))
        .await;
    a.ok(json!({"type":"queue","game":"dice","mode":"m0-0"}))
        .await;
    b.ok(json!({"type":"queue","game":"dice","mode":"m0-0"}))
        .await;
    matched(&mut a, "dice", 2).await;
    matched(&mut b, "dice", 2).await;
}
