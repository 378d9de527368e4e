//! Matchmaking across nodes: players connected to different nodes reach the same pool (placed on
//! the hash ring) and play together; pools move when a node joins, drains or dies, and every
//! ticket is matched exactly once.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::cluster::{COOKIE, start, start_env, wait_for};
use crate::common::{Client, Node, start_dice_round, token};

async fn queue(node: &Node, player: &str, game: &str, mode: &str) -> Client {
    let tok = token(player, &[("mmr", json!(1000))]);
    let mut c = node.connect_with(&format!("token={tok}")).await;
    let r = c.ok(json!({"type":"queue","game":game,"mode":mode})).await;
    assert!(r["ticket"].as_str().is_some(), "{r}");
    c
}

/// The client's `match_found` and the `room_state` that follows it.
async fn matched(c: &mut Client, game: &str, n: usize) -> Value {
    let m = c.until_type("match_found").await;
    assert_eq!(m["game"], game, "{m}");
    assert_eq!(m["players"].as_array().unwrap().len(), n, "{m}");
    let st = c.until_type("room_state").await;
    assert_eq!(st["room"], m["room"]);
    assert_eq!(st["players"].as_array().unwrap().len(), n, "{st}");
    m
}

/// Three converged nodes.
pub(crate) async fn trio() -> Vec<Node> {
    let n1 = start("n1", 0, "", COOKIE).await;
    let n2 = start("n2", 0, &n1.cluster, COOKIE).await;
    let n3 = start("n3", 0, &format!("{},{}", n1.cluster, n2.cluster), COOKIE).await;
    let all = [("n1", "ready"), ("n2", "ready"), ("n3", "ready")];
    for n in [&n1, &n2, &n3] {
        wait_for(n, &all, Duration::from_secs(15)).await;
    }
    vec![n1, n2, n3]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn players_on_different_nodes_are_matched_and_play_dice_and_arena() {
    let nodes = trio().await;

    // Dice: one player on n1, one on n3.
    let mut a = queue(&nodes[0], "da", "dice", "cross").await;
    let mut b = queue(&nodes[2], "db", "dice", "cross").await;
    let ma = matched(&mut a, "dice", 2).await;
    let mb = matched(&mut b, "dice", 2).await;
    assert_eq!(ma["room"], mb["room"]);
    let order = start_dice_round(&mut a, &mut b).await;
    for p in &order {
        let c = if p == "da" { &mut a } else { &mut b };
        c.ok(json!({"type":"input","data":{"action":"roll"}})).await;
    }
    let over_a = a.until_event("round_over").await;
    let over_b = b.until_event("round_over").await;
    assert_eq!(over_a["event"], over_b["event"]);
    assert_eq!(over_a["version"], over_b["version"]);

    // Both players on n2: the room is placed where they are.
    let mut c = queue(&nodes[1], "dc", "dice", "local").await;
    let mut d = queue(&nodes[1], "dd", "dice", "local").await;
    let mc = matched(&mut c, "dice", 2).await;
    assert_eq!(matched(&mut d, "dice", 2).await["room"], mc["room"]);
    assert!(mc["room"].as_str().unwrap().starts_with("n2."), "{mc}");

    // Arena: eight players over the three nodes, one room.
    let mut eight = Vec::new();
    for i in 0..8 {
        eight.push(queue(&nodes[i % 3], &format!("ar{i}"), "arena", "cross").await);
    }
    let mut room = None;
    for c in eight.iter_mut() {
        let m = matched(c, "arena", 8).await;
        let r = m["room"].as_str().unwrap().to_owned();
        assert!(
            room.get_or_insert(r.clone()) == &r,
            "two rooms for one match"
        );
    }
    // Everyone plays: inputs from every node are acknowledged and everyone sees all eight.
    for c in eight.iter_mut() {
        for seq in 1..=3u64 {
            c.send(json!({"type":"input","seq":seq,"data":{"dx":1,"dy":0}}))
                .await;
        }
    }
    for c in eight.iter_mut() {
        c.until(|m| {
            m["type"] == "state"
                && m["ack"] == 3
                && m["state"]["players"]
                    .as_object()
                    .is_some_and(|p| p.len() == 8)
        })
        .await;
    }
    // And leave: the room empties, player by player, wherever it is hosted.
    for c in eight.iter_mut() {
        c.ok(json!({"type":"leave_room"})).await;
    }
    let (_, metrics) = nodes[0].http("GET", "/metrics", None, None).await.unwrap();
    assert!(metrics.contains("warren_cluster_pool_spread"), "{metrics}");
}

/// Queues the first player of each pair (one pool per mode), spread over `on`.
async fn first_halves(on: &[&Node], tag: &str, modes: usize) -> Vec<Client> {
    let mut v = Vec::new();
    for i in 0..modes {
        v.push(
            queue(
                on[i % on.len()],
                &format!("{tag}a{i}"),
                "dice",
                &format!("m{i}"),
            )
            .await,
        );
    }
    v
}

/// Queues the partners, then checks each pair shares one room and nobody gets a second match.
async fn complete_pairs(on: &[&Node], tag: &str, mut firsts: Vec<Client>) {
    let mut seconds = Vec::new();
    for i in 0..firsts.len() {
        seconds.push(
            queue(
                on[i % on.len()],
                &format!("{tag}b{i}"),
                "dice",
                &format!("m{i}"),
            )
            .await,
        );
    }
    for (i, (a, b)) in firsts.iter_mut().zip(seconds.iter_mut()).enumerate() {
        let ma = matched(a, "dice", 2).await;
        let mb = matched(b, "dice", 2).await;
        assert_eq!(ma["room"], mb["room"], "pair {i}");
        let mut players: Vec<&str> = ma["players"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_str().unwrap())
            .collect();
        players.sort();
        assert_eq!(players, [format!("{tag}a{i}"), format!("{tag}b{i}")]);
    }
    for c in firsts.iter_mut().chain(seconds.iter_mut()) {
        c.never_within(Duration::from_millis(300), "second match_found", |m| {
            m["type"] == "match_found"
        })
        .await;
    }
}

/// Waits until `count` tickets wait in the pools of `nodes` (each reached its pool's owner).
async fn waiting_in_pools(nodes: &[&Node], count: usize) {
    crate::common::eventually("tickets in their pools", Duration::from_secs(5), || async {
        let mut n = 0.0;
        for node in nodes {
            n += crate::common::metric_sum(node, "warren_matchmaking_tickets").await;
        }
        n == count as f64
    })
    .await;
}

fn counter(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pools_move_on_join_drain_and_death_and_every_ticket_is_matched_once() {
    const MODES: usize = 12;
    // A killed node stops counting towards the cluster's size after 2 s, so that n1 keeps a
    // majority of its own when n3 drains after n2 died.
    let forget = [("WARREN_CLUSTER__FORGET_AFTER_MS", "2000")];
    let n1 = start_env("n1", 0, "", COOKIE, &forget).await;
    let mut n2 = start_env("n2", 0, &n1.cluster, COOKIE, &forget).await;
    let pair = [("n1", "ready"), ("n2", "ready")];
    wait_for(&n1, &pair, Duration::from_secs(15)).await;
    wait_for(&n2, &pair, Duration::from_secs(15)).await;

    // Join: tickets wait in pools on n1 and n2 when n3 arrives and takes its share of the ring.
    let firsts = first_halves(&[&n1, &n2], "j", MODES).await;
    let seeds3 = format!("{},{}", n1.cluster, n2.cluster);
    let mut n3 = start_env("n3", 0, &seeds3, COOKIE, &forget).await;
    let all = [("n1", "ready"), ("n2", "ready"), ("n3", "ready")];
    for n in [&n1, &n2, &n3] {
        wait_for(n, &all, Duration::from_secs(15)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut handed = 0.0;
        for n in [&n1, &n2] {
            let (_, m) = n.http("GET", "/metrics", None, None).await.unwrap();
            handed += counter(&m, "warren_matchmaking_handoff_tickets_total");
        }
        if handed > 0.0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no pool moved to the joining node"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    complete_pairs(&[&n3, &n1, &n2], "j", firsts).await;

    // Death: tickets waiting on n2 when it is killed are queued again by their sessions on n1
    // and n3.
    let firsts = first_halves(&[&n1, &n3], "k", MODES).await;
    waiting_in_pools(&[&n1, &n2, &n3], MODES).await;
    n2.child.kill().unwrap();
    n2.child.wait().unwrap();
    complete_pairs(&[&n1, &n3], "k", firsts).await;
    assert!(
        n1.logs().contains("queueing again") || n3.logs().contains("queueing again"),
        "no ticket was waiting on the dead node:\n{}\n{}",
        n1.logs(),
        n3.logs()
    );
    let pair = [("n1", "ready"), ("n3", "ready")];
    wait_for(&n1, &pair, Duration::from_secs(15)).await;

    // Drain: n3's pools go to n1 before it exits.
    let firsts = first_halves(&[&n1], "d", MODES).await;
    waiting_in_pools(&[&n1, &n3], MODES).await;
    n3.signal("TERM");
    assert_eq!(n3.wait_exit(Duration::from_secs(20)).await, Some(0));
    assert!(
        n3.logs().contains("pool handed over"),
        "the draining node handed no pool over:\n{}",
        n3.logs()
    );
    complete_pairs(&[&n1], "d", firsts).await;
}

/// A queued player whose node drains is sent away (4001) and, as PROTOCOL.md says of every
/// dropped connection, leaves the queue. It queues again on another node within the reconnect
/// grace and keeps its place: its wait counts from its first `queue`, so its rating window has
/// kept widening (the pool's `warren_match_wait_seconds` records it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_player_a_drain_sends_away_keeps_its_place_in_the_queue() {
    const WAITED: Duration = Duration::from_millis(2500);
    let nodes = trio().await;
    let mut a = queue(&nodes[2], "pa", "dice", "place").await;
    tokio::time::sleep(WAITED).await;
    let resume = a.resume_token();
    nodes[2].signal("TERM");
    assert_eq!(a.close_code().await, 4001);
    let tok = token("pa", &[("mmr", json!(1000))]);
    let mut a = nodes[0]
        .connect_with(&format!("token={tok}&resume={resume}"))
        .await;
    a.ok(json!({"type":"queue","game":"dice","mode":"place"}))
        .await;
    let mut b = queue(&nodes[1], "pb", "dice", "place").await;
    matched(&mut a, "dice", 2).await;
    matched(&mut b, "dice", 2).await;
    // Whichever node owned the pool recorded both waits: `pb`'s is a moment, `pa`'s counts from
    // its first ticket.
    let mut waited = 0.0;
    for n in &nodes[..2] {
        waited += crate::common::metric_sum(n, "warren_match_wait_seconds_sum").await;
    }
    assert!(
        waited >= WAITED.as_secs_f64(),
        "the two players' waits add up to {waited} s: the drained player's place was lost"
    );
}
