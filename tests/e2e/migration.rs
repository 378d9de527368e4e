//! Live migration on drain: the node hosting a room drains while players on every node play;
//! the room keeps running on another node and nobody's acknowledged input goes missing.

use std::time::Duration;

use serde_json::{Value, json};

use crate::cluster_matchmaking::trio;
use crate::common::{Client, roll_first, start_dice_round, token};

/// What a player has seen of the room's realtime state so far.
#[derive(Default)]
struct Seen {
    ack: u64,
    tick: u64,
}

/// Reads until a `state` of `room` acknowledges `want`; every `state` on the way must keep `ack`
/// and `tick` from going backwards.
async fn acked(c: &mut Client, room: &str, want: u64, seen: &mut Seen) -> Value {
    loop {
        let m = c.until_type("state").await;
        assert_eq!(m["room"], room, "{m}");
        let (ack, tick) = (m["ack"].as_u64().unwrap(), m["tick"].as_u64().unwrap());
        assert!(ack >= seen.ack, "ack went back from {} to {ack}", seen.ack);
        assert!(
            tick >= seen.tick,
            "tick went back from {} to {tick}",
            seen.tick
        );
        (seen.ack, seen.tick) = (ack, tick);
        if ack >= want {
            return m;
        }
    }
}

/// Waits until a `crash` room on `node` has begun a stall (the test node logs it as it does).
async fn stalling(node: &crate::common::Node) {
    crate::common::eventually("the room stalls", Duration::from_secs(10), || async {
        node.logs().contains("crash room stalls")
    })
    .await;
}

async fn input(c: &mut Client, seq: u64) {
    c.send(json!({"type":"input","seq":seq,"data":{"dx":1,"dy":0}}))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn draining_the_host_moves_a_live_arena_room_and_nothing_acknowledged_is_lost() {
    let mut nodes = trio().await;
    let mut host = nodes[2].connect("host").await;
    let room = host.create_room("arena", json!({"tick_hz":20})).await;
    assert!(room.starts_with("n3."), "{room}");
    let mut p1 = nodes[0].connect("p1").await;
    let mut p2 = nodes[1].connect("p2").await;
    p1.ok(json!({"type":"join_room","room":room})).await;
    p2.ok(json!({"type":"join_room","room":room})).await;
    let (mut s1, mut s2, mut sh) = (Seen::default(), Seen::default(), Seen::default());
    for seq in 1..=5 {
        input(&mut p1, seq).await;
        input(&mut p2, seq).await;
        input(&mut host, seq).await;
    }
    acked(&mut p1, &room, 5, &mut s1).await;
    acked(&mut p2, &room, 5, &mut s2).await;
    acked(&mut host, &room, 5, &mut sh).await;

    // Drain n3 while the remote players keep sending. These inputs carry a rid: each must be
    // answered `ok`, by the room wherever it is by then (requests that reach n3 during or after
    // the move wait for it and are redirected by n3's tombstone).
    let resume = host.resume_token();
    nodes[2].signal("TERM");
    for seq in 6..=10 {
        p1.ok(json!({"type":"input","seq":seq,"data":{"dx":1,"dy":0}}))
            .await;
        p2.ok(json!({"type":"input","seq":seq,"data":{"dx":1,"dy":0}}))
            .await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(host.close_code().await, 4001);
    let before = s1.tick;
    let st1 = acked(&mut p1, &room, 10, &mut s1).await;
    acked(&mut p2, &room, 10, &mut s2).await;
    assert!(
        st1["state"]["players"]
            .as_object()
            .is_some_and(|p| p.len() == 3),
        "{st1}"
    );
    assert!(s1.tick > before, "the room did not tick on after the move");

    // The drained node's player resumes on n1 and finds its seat.
    let tok = token("host", &[]);
    let mut host = nodes[0]
        .connect_with(&format!("token={tok}&resume={resume}"))
        .await;
    assert_eq!(host.welcome["resumed"], true, "{}", host.welcome);
    let rs = host.until_type("room_state").await;
    assert_eq!(rs["room"], room.as_str());
    assert_eq!(nodes[2].wait_exit(Duration::from_secs(20)).await, Some(0));
    let log = nodes[2].logs();
    assert!(log.contains("room migrated"), "{log}");

    // With n3 gone, everyone plays on; the resumed player's inputs continue its own sequence.
    for seq in 11..=15 {
        input(&mut p1, seq).await;
        input(&mut p2, seq).await;
    }
    for seq in 6..=8 {
        input(&mut host, seq).await;
    }
    acked(&mut p1, &room, 15, &mut s1).await;
    acked(&mut p2, &room, 15, &mut s2).await;
    acked(&mut host, &room, 8, &mut Seen::default()).await;
    let (_, metrics) = nodes[0]
        .http("GET", "/v1/cluster", None, None)
        .await
        .unwrap();
    let hosted: u32 = serde_json::from_str::<Value>(&metrics).unwrap()["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["state"] != "unreachable")
        .map(|n| n["rooms"].as_u64().unwrap() as u32)
        .sum();
    assert_eq!(hosted, 1, "exactly one live copy of the room: {metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dice_round_survives_its_host_draining_with_turns_totals_and_versions() {
    let mut nodes = trio().await;
    let mut b = nodes[1].connect("b").await;
    let room = b.ok(json!({"type":"create_room","game":"dice"})).await["room"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut a = nodes[0].connect("a").await;
    a.ok(json!({"type":"join_room","room":room})).await;
    let order = start_dice_round(&mut a, &mut b).await;
    // The first in turn order rolls before the drain.
    let first_is_a = order[0] == "a";
    let (first_roll, version) = roll_first(&mut a, &mut b, &order).await;

    // Drain b's node, which hosts the room, mid-round.
    let resume = b.resume_token();
    nodes[1].signal("TERM");
    assert_eq!(b.close_code().await, 4001);
    // The room_state a got when it joined is still buffered; the resync from the new host is the
    // one with the round in it.
    let rs = a
        .until(|m| m["type"] == "room_state" && m["version"].as_u64() >= Some(version))
        .await;
    assert_eq!(rs["room"], room.as_str());
    assert_eq!(rs["state"]["phase"], "rolling", "{rs}");
    let totals = &rs["state"]["totals"];
    assert_eq!(
        totals[&order[0]], first_roll,
        "the first roll was lost: {rs}"
    );
    assert_eq!(nodes[1].wait_exit(Duration::from_secs(20)).await, Some(0));

    // b resumes on n3 and finishes the round it is part of.
    let tok = token("b", &[]);
    let mut b = nodes[2]
        .connect_with(&format!("token={tok}&resume={resume}"))
        .await;
    assert_eq!(b.welcome["resumed"], true);
    assert_eq!(b.until_type("room_state").await["room"], room.as_str());
    let second = if first_is_a { &mut b } else { &mut a };
    second
        .ok(json!({"type":"input","data":{"action":"roll"}}))
        .await;
    let over = a.until_event("round_over").await;
    assert!(over["version"].as_u64().unwrap() > version);
    assert_eq!(over["event"]["totals"][&order[0]], first_roll, "{over}");
}

/// One-way inputs (no `rid`) that a player on another node sends while its room moves reach the
/// room in the order sent, and none is lost: 3,000 inputs at full speed, the host drained after
/// 300. The old host runs the inputs that wait for the room one after the other; the sender, once
/// it learns the room's new node, sends its next input through the old host, behind them, and
/// only then straight to the new node. Before, 321 to 472 of the 3,000 were applied after a later
/// one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_way_inputs_sent_while_the_room_moves_arrive_in_order() {
    inputs_in_order_through_a_drain("0").await;
}

/// The same, when the drain's first move of the room is refused (a target just heard again after
/// a silence refuses moves for a failure timeout): the room runs again on its old node, and the
/// drain moves it on its next pass. The inputs that waited for the failed move and those sent
/// after it still reach the room in the order sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_way_inputs_sent_while_a_move_fails_and_is_tried_again_arrive_in_order() {
    inputs_in_order_through_a_drain("1").await;
}

/// 3,000 one-way inputs from a player on `n1` to a room on `n3`, which drains after 300 of them;
/// `n1` and `n2` refuse the first `refusals` moves sent to them.
async fn inputs_in_order_through_a_drain(refusals: &str) {
    let env = [
        ("WARREN_LIMITS__MESSAGES_PER_SEC", "100000"),
        ("WARREN_LIMITS__MESSAGE_BURST", "100000"),
        ("TEST_NODE_REFUSE_MOVES", refusals),
        (
            "WARREN_LOG__LEVEL",
            "warn,warren=info,warren_actors=info,warren_cluster=info",
        ),
    ];
    let n1 = crate::cluster::start_env("n1", 0, "", crate::cluster::COOKIE, &env).await;
    let n2 = crate::cluster::start_env("n2", 0, &n1.cluster, crate::cluster::COOKIE, &env).await;
    let mut n3 =
        crate::cluster::start_env("n3", 0, &n1.cluster, crate::cluster::COOKIE, &env).await;
    let all = [("n1", "ready"), ("n2", "ready"), ("n3", "ready")];
    for n in [&n1, &n2, &n3] {
        crate::cluster::wait_for(n, &all, Duration::from_secs(15)).await;
    }
    let mut host = n3.connect("host").await;
    let room = host.create_room("crash", json!({})).await;
    assert!(room.starts_with("n3."), "{room}");
    let mut p = n1.connect("p").await;
    p.ok(json!({"type":"join_room","room":room})).await;
    let total: u64 = 3000;
    for seq in 1..=total {
        p.send(json!({"type":"input","seq":seq,"data":{"action":"count"}}))
            .await;
        if seq == 300 {
            n3.signal("TERM");
        }
        if seq % 200 == 0 {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        // With a refusal, the inputs go on past the drain's second pass (half a second later).
        if refusals != "0" && seq % 20 == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    // Every input counted, wherever the room is now.
    p.until(|m| m["type"] == "room_event" && m["event"]["count"] == total)
        .await;
    assert!(
        n3.wait_exit(Duration::from_secs(30)).await.is_some(),
        "n3 did not finish its drain"
    );
    p.clear();
    p.ok(json!({"type":"join_room","room":room})).await;
    let rs = p.until_type("room_state").await;
    assert_ne!(rs["node"], "n3", "the room did not move: {rs}");
    assert_eq!(rs["state"]["count"], total, "{rs}");
    // Seen once in CI (593 of 3,000) and never again here: the nodes' account of the move is
    // printed with the failure.
    let story: Vec<String> = [&n1, &n2, &n3]
        .iter()
        .flat_map(|n| {
            n.logs()
                .lines()
                .filter(|l| {
                    ["migrat", "move", "refused", "unreachable", "adopt", "heard"]
                        .iter()
                        .any(|k| l.contains(k))
                })
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(
        rs["state"]["out_of_order"],
        0,
        "inputs out of order: {rs}\n{}",
        story.join("\n")
    );
    drop(host);
}

/// A request still waiting for its room (frozen for the drain's move) when the drain closes its
/// node's connections is answered first, and its connection closes after. Closed at once, the
/// player resumed on another node with the request in doubt, played on, and the request took
/// effect after those later moves (the eights drain test: "not your turn" one move later, in
/// about one run in ten).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_waiting_for_its_moving_room_is_answered_before_the_drain_closes_the_connection()
{
    let mut nodes = trio().await;
    let mut p = nodes[2].connect("p").await;
    let room = p.create_room("crash", json!({"seats":1})).await;
    assert!(room.starts_with("n3."), "{room}");
    p.until_type("room_state").await;
    // The room is busy: the drain's freeze waits behind the stall, and the request, sent once the
    // room is marked moving, waits for the move.
    p.send(json!({"type":"input","data":{"action":"stall","ms":1500}}))
        .await;
    // The drain must begin once the room is in its stall: a freeze ahead of the stall moves the
    // room at once, and the drain is over before the request is sent.
    stalling(&nodes[2]).await;
    nodes[2].signal("TERM");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let r = p
        .request(json!({"type":"input","seq":1,"data":{"action":"count"}}))
        .await;
    assert_eq!(r["type"], "ok", "{r}");
    assert_eq!(p.close_code().await, 4001);
    assert!(
        nodes[2].wait_exit(Duration::from_secs(30)).await.is_some(),
        "n3 did not exit"
    );
}

/// A room that closes (its last player left) in the instant its node begins to move it away: the
/// move finds it stopped. The room must not outlive its close: not kept in the node's directory,
/// and not revived by its backup when the drained node exits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_that_closes_as_its_drain_begins_is_not_revived() {
    let mut nodes = trio().await;
    let mut host = nodes[2].connect("host").await;
    let room = host.create_room("crash", json!({"seats":1})).await;
    assert!(room.starts_with("n3."), "{room}");
    host.until_type("room_state").await;
    // Its backup has a copy by now (replicas go out as rooms are created).
    tokio::time::sleep(Duration::from_millis(500)).await;

    // The room is busy; the player's leave waits in its mailbox, and the drain's freeze lands
    // behind it: the room closes, empty, before the freeze is read.
    host.send(json!({"type":"input","data":{"action":"stall","ms":1500}}))
        .await;
    host.send(json!({"type":"leave_room","rid":1})).await;
    stalling(&nodes[2]).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    nodes[2].signal("TERM");
    let left = host.until(|m| m["rid"] == 1).await;
    assert_eq!(left["type"], "ok", "{left}");
    assert_eq!(host.close_code().await, 4001);
    assert!(
        nodes[2].wait_exit(Duration::from_secs(30)).await.is_some(),
        "n3 did not exit"
    );

    // Past the failure timeout (1 s in these nodes) and then some: no node hosts the room.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut probe = nodes[0].connect("probe").await;
    probe
        .err(json!({"type":"join_room","room":room}), "not_found")
        .await;
}
