//! A room whose game panics is restarted from its snapshot (test-only `crash` game, built with the
//! `test-hooks` feature only).

use serde_json::json;

use crate::common::Node;

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
