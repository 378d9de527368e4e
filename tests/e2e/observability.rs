//! `/metrics` carries every metric of PROTOCOL.md's table with its type, and passes `promtool`.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::json;

use crate::common::{Node, token};

const CONTRACT: &[(&str, &str)] = &[
    ("warren_build_info", "gauge"),
    ("warren_connections", "gauge"),
    ("warren_rooms", "gauge"),
    ("warren_room_restarts_total", "counter"),
    ("warren_room_migrations_total", "counter"),
    ("warren_room_adoptions_total", "counter"),
    ("warren_matchmaking_tickets", "gauge"),
    ("warren_matches_total", "counter"),
    ("warren_match_wait_seconds", "histogram"),
    ("warren_messages_received_total", "counter"),
    ("warren_messages_sent_total", "counter"),
    ("warren_cluster_nodes", "gauge"),
    ("warren_draining", "gauge"),
];

/// Labelled counters whose label values are known at start are there, at zero, on a fresh node:
/// `rate()` and `increase()` alerts work from the first scrape.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_node_exposes_its_known_labelled_counters_at_zero() {
    let node = Node::start(&[]).await;
    let (_, body) = node.http("GET", "/metrics", None, None).await.unwrap();
    for series in [
        "warren_room_restarts_total{game=\"dice\"} 0",
        "warren_room_restarts_total{game=\"arena\"} 0",
        "warren_matches_total{game=\"dice\"} 0",
        "warren_closes_total{code=\"4001\"} 0",
        "warren_closes_total{code=\"4003\"} 0",
        "warren_connections_rejected_total{reason=\"unauthorized\"} 0",
        "warren_connections_rejected_total{reason=\"capacity\"} 0",
        "warren_room_migrations_total{outcome=\"failed\"} 0",
    ] {
        assert!(
            body.lines().any(|l| l == series),
            "{series} missing:\n{body}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_contract_metric_is_exposed_typed_and_promtool_clean() {
    let node = Node::start(&[]).await;
    // Activity that makes every labelled metric appear.
    let mut a = node
        .connect_with(&format!("token={}", token("a", &[])))
        .await;
    let mut b = node
        .connect_with(&format!("token={}", token("b", &[])))
        .await;
    a.ok(json!({"type":"queue","game":"dice"})).await;
    b.ok(json!({"type":"queue","game":"dice"})).await;
    a.until_type("match_found").await;
    let mut c = node.connect("c").await;
    c.ok(json!({"type":"create_room","game":"arena"})).await;
    #[cfg(feature = "test-hooks")]
    {
        let mut d = node.connect("d").await;
        d.ok(json!({"type":"create_room","game":"crash"})).await;
        d.err(
            json!({"type":"input","data":{"action":"panic"}}),
            "internal",
        )
        .await;
        d.until_type("room_state").await;
        // The host counts the restart once the revived room is up, which may be just after the
        // room's resync reached the player.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while crate::healing::metric(&node, "warren_room_restarts_total").await < 1.0 {
            assert!(std::time::Instant::now() < deadline, "no restart counted");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
    let (status, body) = node.http("GET", "/metrics", None, None).await.unwrap();
    assert_eq!(status, 200);
    for (name, kind) in CONTRACT {
        #[cfg(not(feature = "test-hooks"))]
        if *name == "warren_room_restarts_total" {
            continue;
        }
        assert!(
            body.contains(&format!("# TYPE {name} {kind}\n")),
            "{name} is not a {kind}:\n{body}"
        );
        assert!(
            body.contains(&format!("# HELP {name} ")),
            "{name} is not described"
        );
    }
    assert!(
        body.contains("warren_build_info{version=\"0.1.0\",node=\"n1\"} 1"),
        "{body}"
    );
    assert!(
        body.contains("warren_connections 3") || body.contains("warren_connections 4"),
        "{body}"
    );
    assert!(
        body.contains("warren_cluster_nodes{state=\"ready\"} 1"),
        "{body}"
    );
    assert!(body.contains("warren_rooms{game=\"arena\"} 1"), "{body}");
    assert!(body.contains("warren_rooms{game=\"dice\"} 1"), "{body}");

    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool is needed for this test: apt-get install prometheus (bash .ci/run does)");
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let out = promtool.wait_with_output().unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && report.trim().is_empty(),
        "promtool check metrics:\n{report}"
    );

    // Clients that vanish without a close frame are gone, not closed by the server with a code.
    drop((a, b, c));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while crate::healing::metric(&node, "warren_connections").await > 0.0 {
        assert!(
            std::time::Instant::now() < deadline,
            "connections not released"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(
        crate::common::metric_sum(&node, "warren_closes_total").await,
        0.0,
        "{}",
        node.http("GET", "/metrics", None, None).await.unwrap().1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_tour_script_plays_a_round() {
    let node = Node::start(&[]).await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/tour.py");
    let url = format!("http://127.0.0.1:{}", node.port);
    let out = tokio::process::Command::new("python3")
        .arg(script)
        .arg(&url)
        .output();
    let out = tokio::time::timeout(std::time::Duration::from_secs(60), out)
        .await
        .expect("tour finished")
        .expect("python3 runs (the tour needs `pip install websockets`; bash .ci/run does)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("error not_your_turn"), "{text}");
    assert!(text.contains("round over"), "{text}");
    assert_eq!(text.matches(" rolled [").count(), 2, "{text}");
}
