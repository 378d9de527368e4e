//! The built-in games played to the letter of PROTOCOL.md.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{Value, json};

use crate::common::Node;

fn versions_increase(seen: &mut u64, msg: &Value) {
    if let Some(v) = msg["version"].as_u64() {
        if msg["type"] == "room_event" {
            assert!(v > *seen, "room_event versions increase: {msg}");
        } else {
            assert!(v >= *seen, "room_state never goes back: {msg}");
        }
        *seen = v;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dice_round_with_out_of_turn_input_auto_roll_and_a_leaver() {
    let node = Node::start(&[]).await;
    let mut a = node.connect("alice").await;
    let mut b = node.connect("bob").await;
    let mut c = node.connect("carol").await;

    let created = a
        .ok(json!({"type":"create_room","game":"dice","params":{"seats":3,"turn_ms":1000}}))
        .await;
    let room = created["room"].as_str().unwrap().to_owned();
    let state = a.until_type("room_state").await;
    assert_eq!(state["game"], "dice");
    assert_eq!(state["state"]["phase"], "waiting");
    assert_eq!(state["players"][0]["player"], "alice");
    assert_eq!(state["players"][0]["seat"], 0);
    let mut a_version = state["version"].as_u64().unwrap();

    b.ok(json!({"type":"join_room","room":room})).await;
    let bs = b.until_type("room_state").await;
    assert_eq!(bs["players"][1]["player"], "bob");
    c.ok(json!({"type":"join_room","room":room})).await;
    c.until_type("room_state").await;

    // Out of turn and out of phase.
    a.err(
        json!({"type":"input","data":{"action":"roll"}}),
        "invalid_state",
    )
    .await;
    for p in [&mut a, &mut b, &mut c] {
        p.ok(json!({"type":"ready"})).await;
    }
    let started = a.until_event("round_started").await;
    assert_eq!(started["event"]["order"], json!(["alice", "bob", "carol"]));
    assert_eq!(started["event"]["round"], 1);
    b.err(
        json!({"type":"input","data":{"action":"roll"}}),
        "not_your_turn",
    )
    .await;
    // The game's decoder says what is wrong.
    let e = a
        .request(json!({"type":"input","data":{"action":"jump"}}))
        .await;
    assert_eq!(e["code"], "invalid_input", "{e}");
    assert_eq!(
        e["message"], "unknown variant `jump`, expected `roll`",
        "{e}"
    );
    a.err(json!({"type":"ready"}), "invalid_state").await;

    // Carol leaves before her turn: she is skipped.
    c.ok(json!({"type":"leave_room"})).await;
    a.ok(json!({"type":"input","data":{"action":"roll"}})).await;

    // Alice's and Bob's rounds, as Alice sees them, with versions going up by one.
    let mut totals = HashMap::new();
    let mut saw_left = false;
    let over = loop {
        let m = a.next().await;
        versions_increase(&mut a_version, &m);
        if m["type"] != "room_event" {
            continue;
        }
        match m["event"]["kind"].as_str().unwrap() {
            "player_left" => {
                assert_eq!(m["event"]["player"], "carol");
                saw_left = true;
            }
            "rolled" => {
                let e = &m["event"];
                let dice: Vec<u64> = e["dice"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|d| d.as_u64().unwrap())
                    .collect();
                assert!(dice.iter().all(|d| (1..=6).contains(d)));
                assert_eq!(e["total"].as_u64().unwrap(), dice[0] + dice[1]);
                // Alice rolled herself; Bob never sends input, so his timer rolls for him.
                let expect_auto = e["player"] == "bob";
                assert_eq!(e["auto"], expect_auto, "{m}");
                totals.insert(
                    e["player"].as_str().unwrap().to_owned(),
                    e["total"].as_u64().unwrap(),
                );
            }
            "round_over" => break m,
            _ => {}
        }
    };
    assert!(saw_left);
    assert_eq!(totals.len(), 2, "carol was skipped: {totals:?}");
    let top = *totals.values().max().unwrap();
    let winners: Vec<&str> = over["event"]["winners"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap())
        .collect();
    for (p, t) in &totals {
        assert_eq!(over["event"]["totals"][p].as_u64(), Some(*t));
        assert_eq!(winners.contains(&p.as_str()), *t == top);
    }
    assert!(over["event"]["totals"].get("carol").is_none());

    // After the round: waiting again, ready flags cleared (a resync shows it).
    a.ok(json!({"type":"leave_room"})).await;
    a.ok(json!({"type":"join_room","room":room})).await;
    let st = a.until_type("room_state").await;
    assert_eq!(st["state"]["phase"], "waiting");
    assert!(
        st["players"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["ready"] == false)
    );
    assert!(st["version"].as_u64().unwrap() > a_version);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arena_of_eight_every_state_has_every_player_and_their_ack() {
    let node = Node::start(&[]).await;
    let mut players = Vec::new();
    for i in 0..8 {
        players.push(node.connect(&format!("p{i}")).await);
    }
    let room = players[0]
        .ok(json!({"type":"create_room","game":"arena","params":{"tick_hz":20}}))
        .await["room"]
        .as_str()
        .unwrap()
        .to_owned();
    for p in players.iter_mut().skip(1) {
        p.ok(json!({"type":"join_room","room":room})).await;
    }
    for p in players.iter_mut() {
        let st = p.until_type("room_state").await;
        assert_eq!(st["game"], "arena");
    }
    let ids: Vec<String> = (0..8).map(|i| format!("p{i}")).collect();
    // Each player sends 20 inputs with increasing seq, then the states must acknowledge the last.
    for seq in 1..=20u64 {
        for (i, p) in players.iter_mut().enumerate() {
            let dx = if i % 2 == 0 { 1.0 } else { -1.0 };
            p.send(json!({"type":"input","seq":seq,"data":{"dx":dx,"dy":0.5}}))
                .await;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for (i, p) in players.iter_mut().enumerate() {
        p.clear();
        let mut last_ack = 0;
        let mut states = 0;
        let mut skipped = 0;
        loop {
            let m = p.next().await;
            assert_ne!(m["type"], "error", "p{i}: {m}");
            if m["type"] != "state" {
                continue;
            }
            assert_eq!(m["room"], room.as_str());
            let ack = m["ack"].as_u64().unwrap();
            skipped += 1;
            assert!(
                skipped < 400,
                "p{i} never saw its last input acknowledged (ack {last_ack})"
            );
            if ack == 0 {
                // Sent before this player's first input, possibly before everyone had joined.
                continue;
            }
            states += 1;
            let ps = m["state"]["players"].as_object().unwrap();
            assert_eq!(ps.len(), 8, "{m}");
            for id in &ids {
                let pos = &ps[id];
                let (x, y) = (pos["x"].as_f64().unwrap(), pos["y"].as_f64().unwrap());
                assert!((0.0..=1000.0).contains(&x) && (0.0..=1000.0).contains(&y));
            }
            assert!(
                ack >= last_ack,
                "ack went backwards for p{i}: {ack} < {last_ack}"
            );
            assert!(ack <= 20);
            last_ack = ack;
            if ack == 20 {
                let me = &ps[&format!("p{i}")];
                let expect_right = i % 2 == 0;
                assert_eq!(me["x"].as_f64().unwrap() > 500.0, expect_right, "{m}");
                break;
            }
        }
        assert!(states > 0);
    }
}

/// Inputs without `rid` to a realtime room on the player's node take the realtime path (straight
/// into the room's input box); the player's other frames must still take effect in the order they
/// were sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn realtime_inputs_keep_their_order_among_the_players_other_frames() {
    let node = Node::start(&[]).await;
    let mut a = node.connect("a").await;
    let mut b = node.connect("b").await;
    let room = a.create_room("arena", json!({"tick_hz":20})).await;
    b.ok(json!({"type":"join_room","room":room})).await;
    a.until_type("room_state").await;
    crate::common::realtime_inputs_keep_order(&mut a, "a").await;
    // b plays on without a.
    let st = b
        .until(|m| m["type"] == "state" && m["state"]["players"].get("a").is_none())
        .await;
    assert!(st["state"]["players"].get("b").is_some(), "{st}");
}

/// A realtime room far behind (stalled by its game) fills its input box; the inputs past it go to
/// the room's mailbox, and the later ones must not overtake them through the box once the room
/// empties it. 3,000 one-way inputs over about 3 s, a 1.5 s stall at their start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn realtime_inputs_past_a_full_input_box_keep_their_order() {
    let node = Node::start(&[
        ("WARREN_LIMITS__MESSAGES_PER_SEC", "100000"),
        ("WARREN_LIMITS__MESSAGE_BURST", "100000"),
    ])
    .await;
    let mut p = node.connect("p").await;
    let room = p
        .create_room("crash", json!({"seats":1,"tick_ms":50}))
        .await;
    assert!(!room.is_empty());
    p.send(json!({"type":"input","data":{"action":"stall","ms":1500}}))
        .await;
    let total: u64 = 3000;
    // About 3 s of inputs: the box fills during the stall, and they go on after it ends.
    for seq in 1..=total {
        p.send(json!({"type":"input","seq":seq,"data":{"action":"count"}}))
            .await;
        if seq % 10 == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    let st = p
        .until(|m| m["type"] == "state" && m["state"]["count"] == total)
        .await;
    assert_eq!(st["state"]["out_of_order"], 0, "inputs out of order: {st}");
}

/// A realtime room whose players have all dropped (their seats kept for the reconnect grace)
/// stops ticking until one of them is back: an abandoned arena costs nothing for the grace period.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_arena_nobody_is_connected_to_does_not_tick_until_a_player_is_back() {
    let node = Node::start(&[]).await;
    let ticks =
        || async { crate::common::metric_sum(&node, "warren_room_tick_seconds_count").await };
    let mut a = node.connect("alice").await;
    let room = a.create_room("arena", json!({"tick_hz":20})).await;
    a.until_type("state").await;
    let resume = a.resume_token();
    drop(a);
    // Let the node see the drop, then count ticks over a second.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = ticks().await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle = ticks().await - before;
    assert_eq!(idle, 0.0, "the empty arena ticked {idle} times in a second");
    // Back within the grace: the room ticks again, and the player gets its states.
    let mut a = node
        .connect_with(&format!(
            "token={}&resume={resume}",
            crate::common::token("alice", &[])
        ))
        .await;
    assert_eq!(a.welcome["resumed"], true);
    let st = a.until_type("state").await;
    assert_eq!(st["room"], room.as_str());
    assert!(ticks().await > before);
}
