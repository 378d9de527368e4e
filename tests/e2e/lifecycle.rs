//! Drain, signals, configuration errors and reload.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::common::{Node, token};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_readiness_first_then_4001_then_exit_0() {
    let mut node = Node::start(&[
        ("WARREN_DRAIN__NOTICE_MS", "1500"),
        ("WARREN_DRAIN__TIMEOUT_MS", "10000"),
    ])
    .await;
    let mut a = node.connect("alice").await;
    let mut b = node.connect("bob").await;
    b.ok(json!({"type":"create_room","game":"dice"})).await;
    assert_eq!(
        node.http("GET", "/readyz", None, None).await.unwrap().0,
        200
    );
    node.signal("TERM");
    // Readiness flips at once; during the notice new rooms and new sessions are refused.
    let deadline = Instant::now() + Duration::from_secs(1);
    while node.http("GET", "/readyz", None, None).await.unwrap().0 != 503 {
        assert!(Instant::now() < deadline, "readiness did not flip");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    a.err(
        json!({"type":"create_room","game":"dice"}),
        "server_draining",
    )
    .await;
    assert_eq!(
        node.refused(&format!("token={}", token("late", &[]))).await,
        503
    );
    let (_, metrics) = node.http("GET", "/metrics", None, None).await.unwrap();
    assert!(metrics.contains("warren_draining 1"), "{metrics}");
    assert_eq!(a.close_code().await, 4001);
    assert_eq!(b.close_code().await, 4001);
    assert_eq!(
        node.wait_exit(Duration::from_secs(10)).await,
        Some(0),
        "{}",
        node.logs()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_drain_and_a_resume_during_the_notice() {
    let mut node = Node::start(&[("WARREN_DRAIN__NOTICE_MS", "1000")]).await;
    let a = node.connect("alice").await;
    let resume = a.resume_token();
    drop(a);
    let (s, _) = node
        .http("POST", "/v1/admin/drain", None, None)
        .await
        .unwrap();
    assert_eq!(s, 202);
    let mut a2 = node
        .connect_with(&format!("token={}&resume={resume}", token("alice", &[])))
        .await;
    assert_eq!(a2.welcome["resumed"], true);
    assert_eq!(a2.close_code().await, 4001);
    assert_eq!(node.wait_exit(Duration::from_secs(10)).await, Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_timeout_and_second_sigterm() {
    // A client that never reads its close still lets the node exit at the timeout with 0.
    let mut node = Node::start(&[("WARREN_DRAIN__TIMEOUT_MS", "800")]).await;
    let _stuck = node.connect("stuck").await;
    node.signal("TERM");
    assert_eq!(node.wait_exit(Duration::from_secs(10)).await, Some(0));

    // A second SIGTERM exits at once (code 1: the drain did not finish).
    let mut node = Node::start(&[
        ("WARREN_DRAIN__NOTICE_MS", "20000"),
        ("WARREN_DRAIN__TIMEOUT_MS", "30000"),
    ])
    .await;
    let _c = node.connect("c").await;
    node.signal("TERM");
    let deadline = Instant::now() + Duration::from_secs(2);
    while node.http("GET", "/readyz", None, None).await.unwrap().0 != 503 {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    node.signal("TERM");
    assert_eq!(node.wait_exit(Duration::from_secs(5)).await, Some(1));
}

#[test]
fn bad_configuration_stops_the_node_with_one_line_naming_the_key() {
    let run = |env: &[(&str, &str)], args: &[&str]| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_warren"));
        cmd.env_clear().args(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (code, err) = run(&[("WARREN_LIMITS__MAX_FRAME_BYTES", "lots")], &[]);
    assert_eq!(code, Some(2));
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("limits.max_frame_bytes"), "{err}");
    let (code, err) = run(&[("WARREN_ROOMS__COLOUR", "red")], &[]);
    assert_eq!(code, Some(2));
    assert!(err.contains("rooms.colour"), "{err}");
    let (code, err) = run(&[("WARREN_CLUSTER__SEEDS", "n2:7351")], &[]);
    assert_eq!(code, Some(2));
    assert!(err.contains("cluster.cookie"), "{err}");
    let dir = std::env::temp_dir().join(format!("warren-badcfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("bad.toml");
    std::fs::write(&f, "[matchmaking]\nwiden_per_sec = -5\n").unwrap();
    let (code, err) = run(&[], &["--config", f.to_str().unwrap()]);
    assert_eq!(code, Some(2));
    assert!(err.contains("widen_per_sec"), "{err}");
    let (code, err) = run(&[], &["--config", "/nonexistent/warren.toml"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("/nonexistent/warren.toml"), "{err}");
    let (code, out) = {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_warren"))
            .arg("--print-default-config")
            .output()
            .unwrap();
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stdout).to_string(),
        )
    };
    assert_eq!(code, Some(0));
    assert!(out.contains("[limits]"));
}
