//! Resume, replacement and the reconnect grace period.

use serde_json::json;

use crate::common::{Node, token, two_in_room};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_within_grace_keeps_the_seat() {
    let node = Node::start(&[]).await;
    let (a, mut b, room) = two_in_room(&node, "alice", "bob", "dice").await;
    assert_eq!(a.welcome["resumed"], false);
    assert_eq!(a.welcome["node"], "n1");
    assert_eq!(a.welcome["heartbeat_ms"], 15000);
    let resume = a.resume_token();
    let session = a.welcome["session"].clone();
    drop(a);

    let e = b.until_event("player_disconnected").await;
    assert_eq!(e["event"]["player"], "alice");
    let tok = token("alice", &[]);
    let mut a2 = node
        .connect_with(&format!("token={tok}&resume={resume}"))
        .await;
    assert_eq!(a2.welcome["resumed"], true);
    assert_eq!(a2.welcome["session"], session);
    assert_ne!(
        a2.welcome["resume"].as_str().unwrap(),
        resume,
        "the resume token is refreshed"
    );
    let st = a2.until_type("room_state").await;
    assert_eq!(st["room"], room.as_str());
    let me = st["players"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["player"] == "alice")
        .unwrap()
        .clone();
    assert_eq!(me["connected"], true);
    assert_eq!(me["seat"], 0);
    let e = b.until_event("player_reconnected").await;
    assert_eq!(e["event"]["player"], "alice");
    // Still seated: ready works.
    a2.ok(json!({"type":"ready"})).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_or_foreign_resume_tokens_give_a_normal_welcome() {
    let node = Node::start(&[]).await;
    let a = node.connect("alice").await;
    let alice_resume = a.resume_token();
    let tok = token("mallory", &[]);
    let m = node
        .connect_with(&format!("token={tok}&resume={alice_resume}"))
        .await;
    assert_eq!(m.welcome["resumed"], false);
    assert_eq!(m.welcome["player"], "mallory");
    let m2 = node
        .connect_with(&format!(
            "token={}&resume=forged.token",
            token("mallory2", &[])
        ))
        .await;
    assert_eq!(m2.welcome["resumed"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_connection_replaces_the_first_with_4002() {
    let node = Node::start(&[]).await;
    let mut a = node.connect("alice").await;
    let room = a.ok(json!({"type":"create_room","game":"arena"})).await["room"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut a2 = node.connect("alice").await;
    assert_eq!(a.close_code().await, 4002);
    // The newer connection carries the player's seat on.
    let st = a2.until_type("room_state").await;
    assert_eq!(st["room"], room.as_str());
    a2.err(
        json!({"type":"create_room","game":"dice"}),
        "already_in_room",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_the_grace_period_the_player_is_removed() {
    let node = Node::start(&[("WARREN_ROOMS__RECONNECT_GRACE_MS", "400")]).await;
    let (a, mut b, _room) = two_in_room(&node, "alice", "bob", "dice").await;
    let resume = a.resume_token();
    drop(a);
    b.until_event("player_disconnected").await;
    let left = b.until_event("player_left").await;
    assert_eq!(left["event"]["player"], "alice");
    // Too late: the token no longer resumes anything and the seat is gone.
    let mut a2 = node
        .connect_with(&format!("token={}&resume={resume}", token("alice", &[])))
        .await;
    assert_eq!(a2.welcome["resumed"], false);
    a2.err(json!({"type":"leave_room"}), "not_in_room").await;
}

/// A joining player's events start after its `room_state`: what happened in the room before that
/// state (here a `ready` racing the join) is in it, never sent to the player as an event too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_joining_players_events_continue_from_its_room_state() {
    let node = Node::start(&[]).await;
    for round in 0..10 {
        let mut a = node.connect(&format!("a{round}")).await;
        let mut b = node.connect(&format!("b{round}")).await;
        let room = a.create_room("dice", json!({})).await;
        a.until_type("room_state").await;
        // Not waited for: the join and the ready race.
        a.send(json!({"type":"ready","rid":100})).await;
        b.ok(json!({"type":"join_room","room":room})).await;
        let first = b.next().await;
        assert_eq!(first["type"], "room_state", "before the state: {first}");
        let version = first["version"].as_u64().unwrap();
        let a_ready = first["players"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["player"] == format!("a{round}").as_str() && p["ready"] == true);
        if !a_ready {
            let ev = b.until_event("player_ready").await;
            assert_eq!(ev["version"].as_u64().unwrap(), version + 1, "{ev}");
        }
        // The next change reaches b as the event right after the state's version (or the one
        // after the ready's).
        a.ok(json!({"type":"chat","text":"x"})).await;
        a.ok(json!({"type":"leave_room"})).await;
        let left = b.until_event("player_left").await;
        let expected = if a_ready { version + 1 } else { version + 2 };
        assert_eq!(left["version"].as_u64().unwrap(), expected, "{left}");
        b.never_within(std::time::Duration::ZERO, "a second player_ready", |m| {
            m["type"] == "room_event" && m["event"]["kind"] == "player_ready"
        })
        .await;
    }
}

/// Resume tokens expire: one minted a day and a minute ago (with the cluster's key, naming the
/// player's live session) does not resume; the same token minted now does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_token_older_than_a_day_does_not_resume() {
    use warren_actors::resume::{MAX_AGE_MS, ResumeKey};
    let node = Node::start(&[]).await;
    let a = node.connect("alice").await;
    let session = a.welcome["session"].as_str().unwrap().to_owned();
    drop(a);
    let key = ResumeKey::derive(crate::common::SECRET.as_bytes());
    let now = crate::common::now_secs() * 1000;
    let tok = token("alice", &[]);
    let stale = key.sign(
        &"alice".into(),
        &session.as_str().into(),
        now - MAX_AGE_MS - 60_000,
    );
    let a = node
        .connect_with(&format!("token={tok}&resume={stale}"))
        .await;
    assert_eq!(a.welcome["resumed"], false, "{}", a.welcome);
    assert_eq!(
        a.welcome["session"],
        session.as_str(),
        "the seat's session stays"
    );
    drop(a);
    let fresh = key.sign(&"alice".into(), &session.as_str().into(), now);
    let a = node
        .connect_with(&format!("token={tok}&resume={fresh}"))
        .await;
    assert_eq!(a.welcome["resumed"], true, "{}", a.welcome);
}
