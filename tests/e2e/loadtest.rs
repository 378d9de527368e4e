//! The load tester's report against what a node started by the test counted itself.

use std::time::Duration;

use warren_loadtest::net::{Sources, Target};
use warren_loadtest::scenarios::Arena;
use warren_loadtest::stats::Report;
use warren_loadtest::{Config, Run, Scenario, chart};

use crate::common::Node;

fn config(node: &Node, scenario: Scenario, count: usize) -> Config {
    Config {
        scenario,
        targets: vec![Target::parse(&format!("http://127.0.0.1:{}", node.port)).unwrap()],
        sources: Sources::parse("127.0.0.1-127.0.0.4").unwrap(),
        count,
        arena: Arena {
            seats: 4,
            hz: 10,
            tick_hz: 20,
        },
        mode: "lt".into(),
        rate: 0.0,
        duration: Duration::from_secs(2),
        server_pid: Some(node.pid()),
        chaos: Vec::new(),
        admin_token: None,
        max_connecting: 16,
        msg_rate: 40.0,
    }
}

async fn run(cfg: Config) -> Report {
    Run::new(&cfg).unwrap().drive(cfg).await.unwrap()
}

async fn counter(node: &Node, name: &str) -> u64 {
    let (_, body) = node.http("GET", "/metrics", None, None).await.unwrap();
    body.lines()
        .filter(|l| l.starts_with(name) && !l.starts_with('#'))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_matches_what_the_node_counted() {
    let node = Node::start(&[]).await;

    // Arena: 3 rooms of 4 players, inputs at 10 Hz for 2 s.
    let r = run(config(&node, Scenario::Arena, 3)).await;
    println!("{}", r.text());
    assert_eq!(r.connections.connected, 12);
    assert_eq!(r.connections.failed, 0);
    assert_eq!(r.connections.peak_open, 12);
    assert_eq!(r.connections.open_at_end, 12);
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!(r.closes.get("1000 (normal)"), Some(&12), "{:?}", r.closes);
    // Every frame either side sent, the other counted (the node counts as it reads: wait for
    // the last frames to be read).
    crate::common::eventually(
        "the node counted every frame",
        Duration::from_secs(5),
        || async { counter(&node, "warren_messages_received_total").await >= r.frames_sent },
    )
    .await;
    assert_eq!(
        r.frames_sent,
        counter(&node, "warren_messages_received_total").await
    );
    assert_eq!(
        r.frames_received,
        counter(&node, "warren_messages_sent_total").await
    );
    // Each acknowledged input has one latency sample, and inputs still unacknowledged at the end
    // are at most the last tick's worth.
    assert_eq!(r.latency_ms.count, r.acked);
    // The share after the tick: one sample per acknowledged input, never more than input→ack.
    assert_eq!(r.after_tick_ms.count, r.acked);
    assert!(r.after_tick_ms.max <= r.latency_ms.max, "{r:?}");
    assert!(r.missed_tick <= r.acked);
    assert!(r.inputs >= r.acked && r.inputs - r.acked <= 12 * 2, "{r:?}");
    assert!(r.inputs >= 12 * 10, "{r:?}");
    assert!(r.latency_ms.p50 > 0.0 && r.latency_ms.p50 <= r.latency_ms.p99);
    assert!(r.latency_ms.p99 <= r.latency_ms.max);
    assert!(r.updates > 0 && r.updates_per_sec > 0.0);
    let server = r.server.as_ref().unwrap();
    assert_eq!(server.pid, node.pid());
    assert!(server.cpu_seconds > 0.0 && server.rss_kib > 0, "{server:?}");
    assert!(!r.timeline.is_empty());
    assert!(chart::svg(&r).contains("<polyline"));
    let json: serde_json::Value = serde_json::to_value(&r).unwrap();
    assert_eq!(json["latency_ms"]["count"], r.acked);

    // Dice: rounds are played to the end, without a turn error.
    let before = counter(&node, "warren_messages_received_total").await;
    let r = run(config(&node, Scenario::Dice, 2)).await;
    assert!(r.rounds >= 2, "{}", r.text());
    // Dice players send each request as soon as the previous one is answered; paced at 40 frames
    // a second, they stay under the node's default limit of 50, so no error at all.
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!(r.latency_ms.count, r.acked);
    crate::common::eventually(
        "the node counted every frame",
        Duration::from_secs(5),
        || async {
            counter(&node, "warren_messages_received_total").await - before >= r.frames_sent
        },
    )
    .await;
    assert_eq!(
        r.frames_sent,
        counter(&node, "warren_messages_received_total").await - before
    );

    // Matchmaking: each ticket counted once; the node matched pairs.
    let r = run(config(&node, Scenario::Matchmaking, 6)).await;
    assert!(r.matches >= 6, "{}", r.text());
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert!(
        r.closes.keys().all(|c| c.starts_with("1000")),
        "{:?}",
        r.closes
    );
    assert!(counter(&node, "warren_matches_total").await * 2 >= r.matches);
    assert_eq!(r.match_wait_ms.count, r.matches);

    // Churn: every vanished player resumed its session (but one per client the end of the run
    // may have cut between vanishing and resuming).
    let r = run(config(&node, Scenario::Churn, 3)).await;
    assert!(r.resumes >= 3, "{}", r.text());
    assert_eq!(r.resume_misses, 0);
    let vanished = r.closes.get("0 (no close frame)").copied().unwrap_or(0);
    assert!(
        vanished >= r.resumes && vanished - r.resumes <= 3,
        "{:?}",
        r.closes
    );

    // Idle: sessions stay open and the node counts them.
    let cfg = Config {
        duration: Duration::from_secs(1),
        ..config(&node, Scenario::Idle, 50)
    };
    let r = run(cfg).await;
    assert_eq!(r.connections.open_at_end, 50);
    assert!(r.server.unwrap().rss_kib_per_session.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drain_during_a_run_shows_as_resumes_and_4001_closes() {
    let nodes = crate::cluster_matchmaking::trio().await;
    let mut cfg = config(&nodes[0], Scenario::Arena, 3);
    cfg.targets = nodes
        .iter()
        .map(|n| Target::parse(&format!("http://127.0.0.1:{}", n.port)).unwrap())
        .collect();
    cfg.duration = Duration::from_secs(4);
    cfg.chaos = vec![
        warren_loadtest::Chaos::parse("drain", &format!("http://127.0.0.1:{}@1.5", nodes[2].port))
            .unwrap(),
    ];
    let r = run(cfg).await;
    println!("{}", r.text());
    // A third of the players were on the drained node: closed with 4001, resumed elsewhere.
    assert_eq!(
        r.closes.get("4001 (node draining)"),
        Some(&4),
        "{:?}",
        r.closes
    );
    assert_eq!(r.resumes, 4);
    assert!(r.longest_pause_ms > 0.0);
}
