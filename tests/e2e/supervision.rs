//! A room whose game panics is restarted from its snapshot (test-only `crash` game, built with the
//! `test-hooks` feature only).

use std::time::{Duration, Instant};

use serde_json::json;

use crate::common::{Node, two_in_room};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_room_restarts_from_its_snapshot() {
    let node = Node::start(&[]).await;
    let mut a = node.connect("alice").await;
    let mut b = node.connect("bob").await;
    let room = a.ok(json!({"type":"create_room","game":"crash"})).await["room"]
        .as_str()
        .unwrap()
        .to_owned();
    b.ok(json!({"type":"join_room","room":room})).await;
    b.until_type("room_state").await;
    for _ in 0..3 {
        a.ok(json!({"type":"input","data":{"action":"count"}}))
            .await;
    }
    let counted = b
        .until(|m| m["type"] == "room_event" && m["event"]["count"] == 3)
        .await;
    let version = counted["version"].as_u64().unwrap();
    a.clear();
    b.clear();
    // The panic: the request gets `internal`, and both players get a full resync.
    a.err(
        json!({"type":"input","data":{"action":"panic"}}),
        "internal",
    )
    .await;
    for p in [&mut a, &mut b] {
        let st = p.until_type("room_state").await;
        assert_eq!(st["room"], room.as_str());
        assert_eq!(
            st["state"]["count"], 3,
            "state restored from the snapshot: {st}"
        );
        assert!(
            st["version"].as_u64().unwrap() >= version,
            "version never goes back: {st}"
        );
        assert_eq!(st["players"].as_array().unwrap().len(), 2);
    }
    // And it keeps playing.
    a.ok(json!({"type":"input","data":{"action":"count"}}))
        .await;
    let e = b
        .until(|m| m["type"] == "room_event" && m["event"]["kind"] == "counted")
        .await;
    assert_eq!(e["event"]["count"], 4);
    assert_eq!(e["version"].as_u64().unwrap(), version + 1);
    let (_, metrics) = node.http("GET", "/metrics", None, None).await.unwrap();
    assert!(
        metrics.contains("warren_room_restarts_total{game=\"crash\"} 1"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_that_keeps_crashing_is_closed_not_restarted_forever() {
    let node = Node::start(&[("WARREN_ROOMS__MAX_RESTARTS", "2")]).await;
    let mut a = node.connect("alice").await;
    a.ok(json!({"type":"create_room","game":"crash"})).await;
    // The room_state after the `ok`; each restart sends another.
    a.until_type("room_state").await;
    for _ in 0..2 {
        a.err(
            json!({"type":"input","data":{"action":"panic"}}),
            "internal",
        )
        .await;
        a.until_type("room_state").await;
    }
    a.err(
        json!({"type":"input","data":{"action":"panic"}}),
        "internal",
    )
    .await;
    let closed = a
        .until(|m| m["type"] == "error" && m.get("rid").is_none())
        .await;
    assert_eq!(closed["code"], "internal");
    // The seat is gone: the player can create a new room.
    a.ok(json!({"type":"create_room","game":"dice"})).await;
}

/// The players of a room closed for good are free at once, on its node and on another: the session
/// forgets the room before the player hears that it closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_room_frees_its_players_on_every_node() {
    use crate::cluster::{COOKIE, start_env, wait_for};

    use std::time::Duration;

    let budget = [("WARREN_ROOMS__MAX_RESTARTS", "0")];
    let n1 = start_env("n1", 0, "", COOKIE, &budget).await;
    let n2 = start_env("n2", 0, &n1.cluster, COOKIE, &budget).await;
    let both = [("n1", "ready"), ("n2", "ready")];
    wait_for(&n1, &both, Duration::from_secs(15)).await;
    wait_for(&n2, &both, Duration::from_secs(15)).await;

    let mut alice = n1.connect("alice").await;
    let mut bob = n2.connect("bob").await;
    let room = alice.create_room("crash", json!({})).await;
    assert!(room.starts_with("n1."), "{room}");
    bob.ok(json!({"type":"join_room","room":room})).await;
    bob.until_type("room_state").await;

    alice
        .err(
            json!({"type":"input","data":{"action":"panic"}}),
            "internal",
        )
        .await;
    for p in [&mut alice, &mut bob] {
        let closed = p
            .until(|m| m["type"] == "error" && m.get("rid").is_none())
            .await;
        assert_eq!(closed["code"], "internal", "{closed}");
        // Sent on hearing it: the player is in no room any more.
        p.ok(json!({"type":"create_room","game":"dice"})).await;
    }
}

/// A session that fails is restarted: the connection closes with 1011 at once, the room hears the
/// player disconnected, and resuming with the token keeps the seat. Uses the `test-hooks` chat
/// that fails the session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_session_closes_with_1011_and_the_player_resumes_into_its_seat() {
    use crate::common::token;
    let node = Node::start(&[]).await;
    let (mut a, mut b, room) = two_in_room(&node, "alice", "bob", "dice").await;
    let resume = a.resume_token();
    let session = a.welcome["session"].clone();

    a.send(json!({"type":"chat","text":"test-hooks: fail the session","rid":9}))
        .await;
    assert_eq!(a.close_code().await, 1011);
    let e = b.until_event("player_disconnected").await;
    assert_eq!(e["event"]["player"], "alice");

    let mut a2 = node
        .connect_with(&format!("token={}&resume={resume}", token("alice", &[])))
        .await;
    assert_eq!(a2.welcome["resumed"], true, "{}", a2.welcome);
    assert_eq!(a2.welcome["session"], session);
    let st = a2.until_type("room_state").await;
    assert_eq!(st["room"], room.as_str());
    assert_eq!(
        b.until_event("player_reconnected").await["event"]["player"],
        "alice"
    );
    a2.ok(json!({"type":"ready"})).await;
    let (_, metrics) = node.http("GET", "/metrics", None, None).await.unwrap();
    assert!(
        metrics.contains("warren_session_restarts_total 1"),
        "{metrics}"
    );
}

/// A restarted session that is never resumed ends with its grace period, like any other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_session_not_resumed_leaves_its_room_after_the_grace_period() {
    let node = Node::start(&[("WARREN_ROOMS__RECONNECT_GRACE_MS", "400")]).await;
    let (mut a, mut b, _room) = two_in_room(&node, "alice", "bob", "dice").await;
    a.send(json!({"type":"chat","text":"test-hooks: fail the session"}))
        .await;
    assert_eq!(a.close_code().await, 1011);
    b.until_event("player_disconnected").await;
    let left = b.until_event("player_left").await;
    assert_eq!(left["event"]["player"], "alice");
}

/// A failed session's ticket is handled as on any dropped connection: it leaves its pool at once,
/// rather than wait there for a match its player no longer knows of. The player, resumed, queues
/// again and is matched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_sessions_ticket_leaves_its_pool_and_the_player_queues_again() {
    use crate::common::token;
    let node = Node::start(&[]).await;
    let waiting = "warren_matchmaking_tickets{pool=\"dice:default\"}";
    let mut a = node.connect("alice").await;
    let resume = a.resume_token();
    a.ok(json!({"type":"queue","game":"dice"})).await;
    until_metric(&node, waiting, 1.0).await;

    a.send(json!({"type":"chat","text":"test-hooks: fail the session"}))
        .await;
    assert_eq!(a.close_code().await, 1011);
    until_metric(&node, waiting, 0.0).await;

    let mut a2 = node
        .connect_with(&format!("token={}&resume={resume}", token("alice", &[])))
        .await;
    assert_eq!(a2.welcome["resumed"], true, "{}", a2.welcome);
    a2.ok(json!({"type":"queue","game":"dice"})).await;
    let mut b = node.connect("bob").await;
    b.ok(json!({"type":"queue","game":"dice"})).await;
    let ma = a2.until_type("match_found").await;
    let mb = b.until_type("match_found").await;
    assert_eq!(ma["room"], mb["room"]);
}

/// Waits up to 5 s for the metric line `series` to read `value`.
async fn until_metric(node: &Node, series: &str, value: f64) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let now = crate::healing::metric(node, series).await;
        if now == value {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{series} is {now}, not {value}, after 5 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A vital part of a node fails (its `RoomHost`, through a test hook): the node does not go on
/// looking ready while broken. It exits at once with code 3 and says why, and the cluster takes
/// over as after a crash: its room comes back on another node for the player connected there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_whose_room_host_fails_exits_with_3_and_its_rooms_come_back_elsewhere() {
    let mut nodes = crate::cluster_matchmaking::trio().await;
    let mut a = nodes[0].connect("host-a").await;
    let mut b = nodes[1].connect("host-b").await;
    let room = a.create_room("dice", json!({})).await;
    assert!(room.starts_with("n1."), "{room}");
    a.until_type("room_state").await;
    b.ok(json!({"type":"join_room","room":room})).await;
    b.until_type("room_state").await;
    a.until_event("player_joined").await;
    b.clear();

    a.send(json!({"type":"chat","text":"test-hooks: fail the room host"}))
        .await;
    let code = nodes[0].wait_exit(Duration::from_secs(10)).await;
    assert_eq!(code, Some(3), "{}", nodes[0].logs());
    let logs = nodes[0].logs();
    assert!(
        logs.contains("a vital part of the node is gone") && logs.contains("n1/rooms"),
        "{logs}"
    );
    let back = b
        .until_what("the room's room_state from its new host", |m| {
            m["type"] == "room_state" && m["room"] == room.as_str()
        })
        .await;
    assert_eq!(back["state"]["phase"], "waiting", "{back}");
    b.ok(json!({"type":"ready"})).await;
}
