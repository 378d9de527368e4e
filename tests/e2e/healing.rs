//! Rooms outliving their node: kill -9 of the host (the backup adopts the room from its replica),
//! a network partition (the minority stops hosting, the majority adopts, one host per room after
//! healing), and rooms spreading onto a node that joins. Also, with the same network namespace,
//! admin endpoints seen from a client off loopback.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::cluster::{COOKIE, start, start_env, view, wait_for};
use crate::cluster_matchmaking::trio;
use crate::common::{Client, Node, roll_first, start_dice_round, token};

/// Rooms each node hosts, each read from the node itself.
async fn hosted(nodes: &[&Node]) -> Vec<u64> {
    let mut out = Vec::new();
    for n in nodes {
        out.push(view(n).await[0].2);
    }
    out
}

pub(crate) async fn metric(node: &Node, name: &str) -> f64 {
    let (_, body) = node.http("GET", "/metrics", None, None).await.unwrap();
    body.lines()
        .find(|l| l.starts_with(name) && !l.starts_with('#'))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

use crate::common::eventually;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_host_brings_a_dice_round_back_on_its_backup_with_turns_and_totals() {
    let nodes = trio().await;
    let mut a = nodes[0].connect("a").await;
    let room = a.create_room("dice", json!({})).await;
    assert!(room.starts_with("n1."), "{room}");
    let mut b = nodes[1].connect("b").await;
    b.ok(json!({"type":"join_room","room":room})).await;
    let order = start_dice_round(&mut a, &mut b).await;
    let first_is_a = order[0] == "a";
    let (first_roll, version) = roll_first(&mut a, &mut b, &order).await;
    // The roll reached the room's backup before its node dies.
    crate::common::replicated(&[&nodes[1], &nodes[2]], &room, version, 0).await;
    let resume = a.resume_token();

    nodes[0].signal("KILL");
    let killed = Instant::now();
    let rs = b
        .until(|m| m["type"] == "room_state" && m["version"].as_u64() >= Some(version))
        .await;
    let back_after = killed.elapsed();
    println!("kill -9 to room_state from the adopting node: {back_after:?}");
    assert_eq!(rs["room"], room.as_str());
    assert_eq!(rs["state"]["phase"], "rolling", "{rs}");
    assert_eq!(rs["state"]["totals"][&order[0]], first_roll, "{rs}");
    // a sits in seat 0, b in seat 1: the turn is the second in order's.
    let second_seat = if order[1] == "a" { 0 } else { 1 };
    assert_eq!(rs["state"]["turn"], second_seat, "turn order changed: {rs}");

    // Exactly one of the survivors hosts it, and counted the adoption.
    let survivors = [&nodes[1], &nodes[2]];
    eventually("one live copy", Duration::from_secs(5), || async {
        hosted(&survivors).await.iter().sum::<u64>() == 1
    })
    .await;
    let adopter = if hosted(&survivors).await[0] == 1 {
        1
    } else {
        2
    };
    assert_eq!(
        metric(&nodes[adopter], "warren_room_adoptions_total").await,
        1.0
    );

    // The dead node's player resumes on n3 with its token and finishes the round.
    let tok = token("a", &[]);
    let mut a = nodes[2]
        .connect_with(&format!("token={tok}&resume={resume}"))
        .await;
    assert_eq!(a.welcome["resumed"], true, "{}", a.welcome);
    let rs = a.until_type("room_state").await;
    assert_eq!(rs["room"], room.as_str());
    let second = if first_is_a { &mut b } else { &mut a };
    second
        .ok(json!({"type":"input","data":{"action":"roll"}}))
        .await;
    let over = b.until_event("round_over").await;
    assert!(over["version"].as_u64().unwrap() > version);
    assert_eq!(over["event"]["totals"][&order[0]], first_roll, "{over}");
}

/// A node killed with -9 and started again under its id faster than the failure timeout never
/// looks unreachable to its peers: they tell the new process from the old one by the incarnation
/// its heartbeats carry, and adopt the old one's rooms from their replicas. (Before protocol 7
/// the room was lost: nothing adopted it, and the new process did not have it.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_restarted_within_the_failure_timeout_has_its_rooms_adopted() {
    let ft = [("WARREN_CLUSTER__FAILURE_TIMEOUT_MS", "3000")];
    let n1 = crate::cluster::start_env("n1", 0, "", COOKIE, &ft).await;
    let n2 = crate::cluster::start_env("n2", 0, &n1.cluster, COOKIE, &ft).await;
    let n3 = crate::cluster::start_env("n3", 0, &n1.cluster, COOKIE, &ft).await;
    let all = [("n1", "ready"), ("n2", "ready"), ("n3", "ready")];
    for n in [&n1, &n2, &n3] {
        wait_for(n, &all, Duration::from_secs(15)).await;
    }
    let mut a = n3.connect("a").await;
    let room = a.create_room("dice", json!({})).await;
    assert!(room.starts_with("n3."), "{room}");
    let mut b = n1.connect("b").await;
    b.ok(json!({"type":"join_room","room":room})).await;
    b.until_type("room_state").await;
    crate::common::replicated(&[&n1, &n2], &room, 0, 0).await;

    n3.signal("KILL");
    let killed = Instant::now();
    drop(n3);
    let n3 = crate::cluster::start_env("n3", 0, &n1.cluster, COOKIE, &ft).await;
    let restarted = killed.elapsed();
    assert!(
        restarted < Duration::from_secs(3),
        "restart took {restarted:?}"
    );
    // The room runs again on n1 or n2, and b, seated there, gets its full state.
    let rs = b
        .until(|m| m["type"] == "room_state" && m["room"] == room.as_str())
        .await;
    let back = killed.elapsed();
    println!("kill -9 and restart in {restarted:?}; room_state from the adopter after {back:?}");
    assert!(back < Duration::from_secs(4), "{back:?}: {rs}");
    assert_ne!(rs["node"], "n3", "{rs}");
    let players = rs["players"].as_array().unwrap();
    assert_eq!(players.len(), 2, "{rs}");
    // The room answers: b readies up.
    b.ok(json!({"type":"ready"})).await;
    let ev = b.until_event("player_ready").await;
    assert_eq!(ev["room"], room.as_str());
    drop(n3);
}

/// Two veth pairs into a network namespace of its own: one carries the cluster port of the node
/// inside, the other its HTTP port, so cutting the first partitions the cluster while clients
/// still reach the node. Removed on drop.
struct Netns {
    name: String,
    cluster_in: String,
    subnet: u8,
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {}: {} (the partition test needs root and network namespaces)",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Netns {
    fn new() -> Netns {
        // Unique per test of this process too: tests run side by side.
        static MADE: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let made = MADE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let id = (std::process::id() + made * 7) % 10_000;
        let subnet = (id % 200) as u8 + 20;
        let name = format!("warren-part-{id}");
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        ip(&["netns", "add", &name]);
        let ns = Netns {
            cluster_in: format!("wpc{id}b"),
            name,
            subnet,
        };
        for (kind, net) in [("c", 201), ("h", 202)] {
            let (out, inside) = (format!("wp{kind}{id}a"), format!("wp{kind}{id}b"));
            let _ = Command::new("ip").args(["link", "del", &out]).output();
            ip(&["link", "add", &out, "type", "veth", "peer", "name", &inside]);
            ip(&["link", "set", &inside, "netns", &ns.name]);
            ip(&[
                "addr",
                "add",
                &format!("10.{net}.{subnet}.1/30"),
                "dev",
                &out,
            ]);
            ip(&["link", "set", &out, "up"]);
            ns.exec(&[
                "ip",
                "addr",
                "add",
                &format!("10.{net}.{subnet}.2/30"),
                "dev",
                &inside,
            ]);
            ns.exec(&["ip", "link", "set", &inside, "up"]);
        }
        ns.exec(&["ip", "link", "set", "lo", "up"]);
        ns
    }

    fn exec(&self, args: &[&str]) {
        let mut all = vec!["netns", "exec", &self.name];
        all.extend_from_slice(args);
        ip(&all);
    }

    /// Address of the cluster link: outside (`.1`) or inside (`.2`).
    fn cluster_addr(&self, inside: bool) -> String {
        format!("10.201.{}.{}", self.subnet, if inside { 2 } else { 1 })
    }

    fn http_addr(&self) -> String {
        format!("10.202.{}.2", self.subnet)
    }

    fn cut(&self, cut: bool) {
        let state = if cut { "down" } else { "up" };
        self.exec(&["ip", "link", "set", &self.cluster_in, state]);
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

const ADMIN: &str = "partition-admin-token";

async fn member(id: &str, at: &str, seeds: &str, netns: Option<&Netns>) -> Node {
    let env = [
        ("WARREN_NODE__ID", id),
        ("WARREN_CLUSTER__LISTEN", at),
        ("WARREN_CLUSTER__SEEDS", seeds),
        ("WARREN_CLUSTER__COOKIE", COOKIE),
        ("WARREN_CLUSTER__FAILURE_TIMEOUT_MS", "1000"),
    ];
    match netns {
        // Clients reach this node from outside loopback, so /v1/cluster needs the admin token.
        Some(ns) => {
            let mut env = env.to_vec();
            env.push(("WARREN_AUTH__ADMIN_TOKEN", ADMIN));
            let mut node = Node::start_in(Some(&ns.name), &ns.http_addr(), &env, None).await;
            node.admin = Some(ADMIN);
            node
        }
        None => Node::start(&env).await,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_leaves_one_host_per_room_the_minority_stops_and_the_majority_adopts() {
    let ns = Netns::new();
    let n1 = member("n1", &format!("{}:0", ns.cluster_addr(true)), "", Some(&ns)).await;
    let outside = format!("{}:0", ns.cluster_addr(false));
    let n2 = member("n2", &outside, &n1.cluster, None).await;
    let n3 = member("n3", &outside, &n1.cluster, None).await;
    let all = [("n1", "ready"), ("n2", "ready"), ("n3", "ready")];
    for n in [&n1, &n2, &n3] {
        wait_for(n, &all, Duration::from_secs(15)).await;
    }

    // An arena room on the node about to be cut off, with players on all three nodes, and a dice
    // room on the majority side with a player on the cut-off node.
    let mut pa = n1.connect("pa").await;
    let r1 = pa.create_room("arena", json!({"tick_hz":20})).await;
    let mut pb = n2.connect("pb").await;
    pb.ok(json!({"type":"join_room","room":r1})).await;
    let mut pc = n3.connect("pc").await;
    pc.ok(json!({"type":"join_room","room":r1})).await;
    let mut pd = n2.connect("pd").await;
    let r2 = pd.create_room("dice", json!({})).await;
    let mut pe = n1.connect("pe").await;
    pe.ok(json!({"type":"join_room","room":r2})).await;
    for seq in 1..=3 {
        pb.ok(json!({"type":"input","seq":seq,"data":{"dx":1,"dy":0}}))
            .await;
    }
    let before = pb
        .until(|m| m["type"] == "state" && m["ack"].as_u64() >= Some(3))
        .await;
    let version = before["version"].as_u64().unwrap_or(0);
    // The three inputs reached r1's backup (on the majority side) before the cut.
    let tick = before["tick"].as_u64().unwrap_or(0);
    crate::common::replicated(&[&n2, &n3], &r1, 0, tick).await;
    let resume = pa.resume_token();

    ns.cut(true);
    // The minority: closes its sessions with 4001, refuses players, hosts nothing.
    assert_eq!(pa.close_code().await, 4001);
    assert_eq!(pe.close_code().await, 4001);
    let (status, body) = n1.http("GET", "/readyz", None, None).await.unwrap();
    assert_eq!((status, body.contains("isolated")), (503, true), "{body}");
    assert_eq!(
        n1.refused(&format!("token={}", token("px", &[]))).await,
        503
    );
    eventually("n1 hosts nothing", Duration::from_secs(5), || async {
        view(&n1).await[0].2 == 0
    })
    .await;

    // The majority: the arena room plays on (adopted), and its acknowledged inputs are there.
    let rs = pb
        .until(|m| m["type"] == "room_state" && m["room"] == r1.as_str())
        .await;
    assert!(rs["version"].as_u64().unwrap() >= version, "{rs}");
    pb.ok(json!({"type":"input","seq":4,"data":{"dx":1,"dy":0}}))
        .await;
    let st = pb
        .until(|m| m["type"] == "state" && m["ack"].as_u64() >= Some(4))
        .await;
    assert_eq!(st["room"], r1.as_str());
    pc.ok(json!({"type":"input","seq":1,"data":{"dx":0,"dy":1}}))
        .await;
    // pa resumes on the majority side and finds its seat.
    let mut pa = n2
        .connect_with(&format!("token={}&resume={resume}", token("pa", &[])))
        .await;
    assert_eq!(pa.welcome["resumed"], true, "{}", pa.welcome);
    assert_eq!(pa.until_type("room_state").await["room"], r1.as_str());
    assert_eq!(hosted(&[&n2, &n3]).await.iter().sum::<u64>(), 2);

    // Healed: n1 takes players again, and every room has exactly one host.
    ns.cut(false);
    for n in [&n1, &n2, &n3] {
        wait_for(n, &all, Duration::from_secs(15)).await;
    }
    eventually("n1 ready again", Duration::from_secs(5), || async {
        n1.http("GET", "/readyz", None, None).await.unwrap().0 == 200
    })
    .await;
    // Two copies of a room, if any, settle on one (the `Located` exchange): wait for that.
    eventually("one host per room", Duration::from_secs(5), || async {
        hosted(&[&n1, &n2, &n3]).await.iter().sum::<u64>() == 2
    })
    .await;
    let per_node = hosted(&[&n1, &n2, &n3]).await;
    assert_eq!(per_node.iter().sum::<u64>(), 2, "{per_node:?}");
    let mut pf = n1.connect("pf").await;
    pf.ok(json!({"type":"join_room","room":r1})).await;
    pf.ok(json!({"type":"input","seq":1,"data":{"dx":1,"dy":1}}))
        .await;
    let st = pf
        .until(|m| m["type"] == "state" && m["ack"].as_u64() >= Some(1))
        .await;
    assert!(
        st["state"]["players"]
            .as_object()
            .is_some_and(|p| p.len() == 4),
        "{st}"
    );
    drop(pd);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_spread_onto_a_node_that_joins() {
    let n1 = start("n1", 0, "", COOKIE).await;
    let n2 = start("n2", 0, &n1.cluster, COOKIE).await;
    for n in [&n1, &n2] {
        wait_for(
            n,
            &[("n1", "ready"), ("n2", "ready")],
            Duration::from_secs(15),
        )
        .await;
    }
    // Three rooms on each node, each with its player connected to the node that hosts it.
    let mut players: Vec<(Client, String)> = Vec::new();
    for i in 0..6 {
        let node = if i % 2 == 0 { &n1 } else { &n2 };
        let mut c = node.connect(&format!("p{i}")).await;
        let room = c.create_room("dice", json!({})).await;
        players.push((c, room));
    }
    assert_eq!(hosted(&[&n1, &n2]).await, vec![3, 3]);

    let n3 = start("n3", 0, &n1.cluster, COOKIE).await;
    let all = [("n1", "ready"), ("n2", "ready"), ("n3", "ready")];
    for n in [&n1, &n2, &n3] {
        wait_for(n, &all, Duration::from_secs(15)).await;
    }
    eventually(
        "two rooms on every node",
        Duration::from_secs(15),
        || async { hosted(&[&n1, &n2, &n3]).await == vec![2, 2, 2] },
    )
    .await;
    // Moved live: every player is still seated and its room answers.
    for (c, room) in &mut players {
        c.ok(json!({"type":"ready"})).await;
        let ev = c.until_event("player_ready").await;
        assert_eq!(ev["room"], room.as_str());
    }
    let moved = metric(&n1, "warren_room_migrations_total{outcome=\"ok\"}").await
        + metric(&n2, "warren_room_migrations_total{outcome=\"ok\"}").await;
    assert_eq!(moved, 2.0);
}

/// With no admin token configured, admin endpoints answer loopback clients only: a client that
/// reaches the node over a network interface gets 403 `forbidden`, and the node does not drain.
/// With a token configured, that client needs the token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_endpoints_refuse_clients_off_loopback_without_a_token() {
    let ns = Netns::new();
    let open = Node::start_in(Some(&ns.name), &ns.http_addr(), &[], None).await;
    for (method, path) in [("GET", "/v1/cluster"), ("POST", "/v1/admin/drain")] {
        let (status, body) = open.http(method, path, None, None).await.unwrap();
        assert_eq!(status, 403, "{method} {path}: {body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["error"], "forbidden", "{body}");
        assert!(
            v["message"]
                .as_str()
                .is_some_and(|m| m.contains("loopback")),
            "{body}"
        );
    }
    let (status, _) = open.http("GET", "/readyz", None, None).await.unwrap();
    assert_eq!(status, 200, "a refused drain must not drain the node");
    drop(open);

    let env = [("WARREN_AUTH__ADMIN_TOKEN", ADMIN)];
    let guarded = Node::start_in(Some(&ns.name), &ns.http_addr(), &env, None).await;
    let (status, body) = guarded
        .http("GET", "/v1/cluster", None, None)
        .await
        .unwrap();
    assert_eq!(status, 401, "{body}");
    let (status, body) = guarded
        .http("GET", "/v1/cluster", None, Some(ADMIN))
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
}

/// A node out of its peers' sight for longer than their failure timeout, but not gone (a stall:
/// here SIGSTOP, on a node whose own failure timeout is long enough that it keeps its sessions).
/// The room elsewhere that seats its player disconnects the seat while the node is unreachable,
/// and gives it back when the node is heard again: the player gets states again, and the seat is
/// not released when the reconnect grace of the loss runs out. (Before, the seat stayed
/// disconnected, no state reached the player, and the grace released the seat of a player who
/// had played on throughout; the chaos soak saw it after a partition.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seat_whose_node_was_only_out_of_sight_stays_with_its_player() {
    let grace = [("WARREN_ROOMS__RECONNECT_GRACE_MS", "4000")];
    let stalled = [
        ("WARREN_ROOMS__RECONNECT_GRACE_MS", "4000"),
        ("WARREN_CLUSTER__FAILURE_TIMEOUT_MS", "20000"),
    ];
    let n1 = crate::cluster::start_env("n1", 0, "", COOKIE, &stalled).await;
    let n2 = crate::cluster::start_env("n2", 0, &n1.cluster, COOKIE, &grace).await;
    let n3 = crate::cluster::start_env("n3", 0, &n1.cluster, COOKIE, &grace).await;
    let all = [("n1", "ready"), ("n2", "ready"), ("n3", "ready")];
    for n in [&n1, &n2, &n3] {
        wait_for(n, &all, Duration::from_secs(15)).await;
    }
    // An arena room on n2, with a player on n2 and one on n1.
    let mut pb = n2.connect("pb").await;
    let room = pb.create_room("arena", json!({"tick_hz":20})).await;
    assert!(room.starts_with("n2."), "{room}");
    let mut pa = n1.connect("pa").await;
    pa.ok(json!({"type":"join_room","room":room})).await;
    pa.ok(json!({"type":"input","seq":1,"data":{"dx":1,"dy":0}}))
        .await;
    pa.until(|m| m["type"] == "state" && m["ack"].as_u64() >= Some(1))
        .await;

    // n1 stalls for 2.5 s: n2 and n3 see it unreachable after 1 s.
    n1.signal("STOP");
    let stopped = Instant::now();
    eventually("n2 sees n1 unreachable", Duration::from_secs(5), || async {
        view(&n2)
            .await
            .iter()
            .any(|(id, state, _)| id == "n1" && state == "unreachable")
    })
    .await;
    tokio::time::sleep(Duration::from_millis(2500).saturating_sub(stopped.elapsed())).await;
    n1.signal("CONT");
    pa.clear();
    eventually("n2 hears n1 again", Duration::from_secs(10), || async {
        view(&n2)
            .await
            .iter()
            .any(|(id, state, _)| id == "n1" && state == "ready")
    })
    .await;

    // Heard again: the seat is pa's, and states reach it. (An input sent the moment the stall
    // ends may be lost with the link n2 dropped meanwhile: sent again until acknowledged.)
    let mut seq = 1;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        seq += 1;
        pa.send(json!({"type":"input","seq":seq,"data":{"dx":1,"dy":0}}))
            .await;
        let acked = pa.until(|m| m["type"] == "state" && m["ack"].as_u64() >= Some(seq));
        if tokio::time::timeout(Duration::from_millis(700), acked)
            .await
            .is_ok()
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no state reached pa after the stall"
        );
    }
    // Past the grace of the loss (4 s from about 1 s after the stall began), still seated.
    tokio::time::sleep(Duration::from_millis(6500).saturating_sub(stopped.elapsed())).await;
    seq += 1;
    pa.ok(json!({"type":"input","seq":seq,"data":{"dx":0,"dy":1}}))
        .await;
    let st = pa
        .until(|m| m["type"] == "state" && m["ack"].as_u64() >= Some(seq))
        .await;
    assert!(
        st["state"]["players"]
            .as_object()
            .is_some_and(|p| p.contains_key("pa") && p.len() == 2),
        "{st}"
    );
    drop((pb, n3));
}

/// Three nodes of the chaos soak's network (each in a network namespace of its own, on bridges),
/// rooms kept where they are made, logs in a directory of their own; and the players' address of
/// each.
async fn namespaced_trio(
    name: &str,
    env: &[(&str, &str)],
) -> (
    warren_loadtest::chaos::cluster::Cluster,
    std::path::PathBuf,
    Vec<std::net::SocketAddr>,
) {
    let out = std::env::temp_dir().join(format!("warren-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&out).unwrap();
    let mut c = warren_loadtest::chaos::cluster::Cluster::new(
        env!("CARGO_BIN_EXE_warren").as_ref(),
        &out,
        3,
        1000,
    )
    .unwrap();
    c.env
        .push(("WARREN_ROOMS__REBALANCE_PER_SEC".into(), "0".into()));
    c.env
        .extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    for _ in 0..3 {
        c.add().unwrap();
    }
    c.converge(Duration::from_secs(20)).await.unwrap();
    let http = c.members.iter().map(|m| m.http).collect();
    (c, out, http)
}

/// A guest player named `name`, connected to the node whose players' address is `at`.
async fn guest_at(at: std::net::SocketAddr, name: &str) -> Client {
    let token = warren_loadtest::net::guest(at, name).await.unwrap();
    let url = format!("ws://{at}/v1/ws?token={token}");
    let (ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    Client::open(ws).await
}

/// The link between two nodes fails while both still reach the third (each node in a network
/// namespace of its own, as in the chaos soak): SWIM's indirect probes go through the third, so
/// neither is declared unreachable and neither adopts the other's rooms; every room keeps one
/// host, and plays on after the link is back. (With heartbeats, each saw the other unreachable;
/// before the majority vote on such a peer, each adopted the rooms it backed up for the other,
/// and both copies ran until the link came back: the chaos soak saw 304 ms of it.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_lost_between_two_nodes_that_a_third_still_hears_moves_no_room() {
    use warren_loadtest::chaos::cluster::{ADMIN, metric_sum};
    let (mut c, out, http) = namespaced_trio("cut-between", &[]).await;
    let get = |a: std::net::SocketAddr, path: &'static str| async move {
        let (_, body) = warren_loadtest::net::http(a, "GET", path, "", Some(ADMIN))
            .await
            .unwrap();
        body
    };

    // Arena rooms on n1, each with its creator, until n2 is the backup of one of them (the ring
    // decides; each room's chance is even), and as many on n2.
    let mut players = Vec::new();
    let mut rooms = Vec::new();
    let player = async |at: usize, i: usize| {
        let mut p = guest_at(http[at], &format!("cut{i}")).await;
        let room = p.create_room("arena", json!({"tick_hz":20})).await;
        assert!(room.starts_with(&format!("n{}.", at + 1)), "{room}");
        (p, room)
    };
    let backed_on_n2 = async |room: &str| {
        for _ in 0..50 {
            let held = get(http[1], "/v1/admin/replicas").await;
            if held.contains(room) {
                return true;
            }
            if get(http[2], "/v1/admin/replicas").await.contains(room) {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{room} was not replicated");
    };
    loop {
        let (p, room) = player(0, players.len()).await;
        let crossed = backed_on_n2(&room).await;
        players.push(p);
        rooms.push(room);
        if crossed {
            break;
        }
        assert!(players.len() < 16, "no room of n1 got n2 as its backup");
    }
    let on_n1 = players.len();
    for _ in 0..on_n1 {
        let (p, room) = player(1, players.len()).await;
        players.push(p);
        rooms.push(room);
    }
    let hosted = || async {
        let mut n = Vec::new();
        for a in &http {
            n.push(metric_sum(*a, "warren_rooms").await.unwrap_or(-1.0));
        }
        n
    };
    let placed = vec![on_n1 as f64, on_n1 as f64, 0.0];
    assert_eq!(hosted().await, placed);

    c.net.cut_between(1, 2, true).unwrap();
    let sees = |a: std::net::SocketAddr, id: &'static str, state: &'static str| async move {
        let v: serde_json::Value = serde_json::from_str(&get(a, "/v1/cluster").await).unwrap();
        v["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["id"] == id && n["state"] == state)
    };
    // Twice the failure timeout (and the fence) past the loss: long past a declaration and the
    // wait before an adoption.
    tokio::time::sleep(Duration::from_secs(4)).await;
    for (at, id) in [(0, "n2"), (1, "n1"), (2, "n1"), (2, "n2")] {
        assert!(
            sees(http[at], id, "ready").await,
            "n{} lost sight of {id} though the third node still hears both",
            at + 1
        );
    }
    let mut adopted = 0.0;
    for a in &http {
        adopted += metric_sum(*a, "warren_room_adoptions_total")
            .await
            .unwrap_or(0.0);
    }
    let during = hosted().await;
    c.net.cut_between(1, 2, false).unwrap();
    assert_eq!(
        adopted, 0.0,
        "rooms adopted while their hosts ran them: {during:?}"
    );
    assert_eq!(during, placed);

    // Back: every player plays on in its room.
    c.converge(Duration::from_secs(10)).await.unwrap();
    for (p, room) in players.iter_mut().zip(&rooms) {
        p.clear();
        p.ok(json!({"type":"input","seq":1,"data":{"dx":1,"dy":0}}))
            .await;
        let st = p
            .until(|m| m["type"] == "state" && m["ack"].as_u64() >= Some(1))
            .await;
        assert_eq!(st["room"], room.as_str(), "{st}");
    }
    assert_eq!(hosted().await, placed);
    drop(c);
    let _ = std::fs::remove_dir_all(&out);
}

/// A player resumes on a node that never heard where its room went (it joined after the room
/// moved), while the node the room's id names is stalled: the seat search's answer says which
/// node has the room, and the session goes there. (Before, it went through the node the id names
/// and waited for that node to be declared unreachable: 3.9 s in the chaos soak, past the bound
/// of the failure timeout + 1 s.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seat_found_on_another_node_is_reached_there_not_through_the_node_its_id_names() {
    let ft = [("WARREN_CLUSTER__FAILURE_TIMEOUT_MS", "5000")];
    let n1 = start_env("n1", 0, "", COOKIE, &ft).await;
    let n2 = start_env("n2", 0, &n1.cluster, COOKIE, &ft).await;
    let n3 = start_env("n3", 0, &n1.cluster, COOKIE, &ft).await;
    let three = [("n1", "ready"), ("n2", "ready"), ("n3", "ready")];
    for n in [&n1, &n2, &n3] {
        wait_for(n, &three, Duration::from_secs(15)).await;
    }
    // An arena room made on n1 whose players are on n2; its maker leaves.
    let mut maker = n1.connect("maker").await;
    let room = maker.create_room("arena", json!({"tick_hz":20})).await;
    assert!(room.starts_with("n1."), "{room}");
    let mut a = n2.connect("a").await;
    a.ok(json!({"type":"join_room","room":room})).await;
    let mut b = n2.connect("b").await;
    b.ok(json!({"type":"join_room","room":room})).await;
    maker.ok(json!({"type":"leave_room"})).await;

    // n1 drains (the room moves to n2, where its players are) and starts again; n4 joins. Neither
    // process heard where the room went.
    let mut n1 = n1;
    n1.signal("TERM");
    assert_eq!(n1.wait_exit(Duration::from_secs(20)).await, Some(0));
    drop(n1);
    let n1 = start_env("n1", 0, &n2.cluster, COOKIE, &ft).await;
    let n4 = start_env("n4", 0, &n2.cluster, COOKIE, &ft).await;
    let four = [
        ("n1", "ready"),
        ("n2", "ready"),
        ("n3", "ready"),
        ("n4", "ready"),
    ];
    for n in [&n1, &n2, &n3, &n4] {
        wait_for(n, &four, Duration::from_secs(15)).await;
    }
    // n1 stalls: every node takes it for reachable for 5 s more.
    n1.signal("STOP");
    let resume = a.resume_token();
    drop(a);
    let mut a = n4
        .connect_with(&format!("token={}&resume={resume}", token("a", &[])))
        .await;
    assert_eq!(a.welcome["resumed"], true, "{}", a.welcome);
    let rs = a
        .until(|m| m["type"] == "room_state" && m["room"] == room.as_str())
        .await;
    assert_eq!(rs["node"], "n2", "{rs}");
    // Seated again before any node could take n1 for gone.
    let n1_seen = view(&n4)
        .await
        .into_iter()
        .find(|(id, _, _)| id == "n1")
        .map(|(_, state, _)| state);
    assert_eq!(n1_seen.as_deref(), Some("ready"));
    a.ok(json!({"type":"input","seq":1,"data":{"dx":1,"dy":0}}))
        .await;
    n1.signal("CONT");
    drop((b, n3));
}

/// A node whose cluster link is cut as it drains: the move of its room waits for a target that
/// cannot answer, the node cuts itself off meanwhile (dropping the room; the majority's copy is
/// the one that counts), and when the move gives up the room is not run again there. (Before, it
/// ran again on the cut-off node, a second copy: 946 ms in the 10-minute soak.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_whose_move_fails_after_its_node_cut_itself_off_is_not_run_there_again() {
    use warren_loadtest::chaos::cluster::ADMIN;
    let (c, out, http) = namespaced_trio("cut-move", &[]).await;
    let mut players = [
        guest_at(http[0], "mover0").await,
        guest_at(http[1], "mover1").await,
    ];
    let room = players[0].create_room("dice", json!({})).await;
    assert!(room.starts_with("n1."), "{room}");
    players[1].ok(json!({"type":"join_room","room":room})).await;

    // n1's cluster link goes down, then n1 is told to drain: it still takes n2 (where the other
    // player is) for reachable, freezes the room and sends it there, where nothing arrives.
    c.net.cut(1, true).unwrap();
    let (status, body) =
        warren_loadtest::net::http(http[0], "POST", "/v1/admin/drain", "", Some(ADMIN))
            .await
            .unwrap();
    assert!(status < 300, "{status} {body}");
    // The move gives up after 5 s; n1 cut itself off after about 1 s.
    tokio::time::sleep(Duration::from_secs(7)).await;
    let log = std::fs::read_to_string(&c.lives[0].log).unwrap();
    let live = log
        .lines()
        .filter(|l| l.contains("\"room live\"") && l.contains(&room))
        .count();
    assert!(
        log.contains("this node is isolated"),
        "n1 did not cut itself off"
    );
    assert!(
        log.contains("room could not move"),
        "the move did not fail as set up"
    );
    assert_eq!(live, 1, "the room ran again on n1 after its move failed");
    c.net.cut(1, false).unwrap();
    drop(c);
    let _ = std::fs::remove_dir_all(&out);
}

/// A room's host dies after its players left it, before its backup heard that they did (here the
/// link between host and backup is cut, as a kill between a leave and its replication would
/// leave it): the backup adopts a snapshot with seats whose players have moved on, and whose
/// nodes are alive. No session claims those seats, so they go after the reconnect grace and the
/// room closes; a player who plays on in another adopted room keeps its seat. (Before, seats of
/// reachable nodes were kept as they were: the room stayed for ever, moving from node to node,
/// seen twice in the 30-minute chaos soak.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seats_left_before_a_host_died_go_with_the_room_its_backup_adopts() {
    use warren_loadtest::chaos::cluster::{ADMIN, metric_sum};
    let grace = Duration::from_millis(1500);
    let (mut c, out, http) = namespaced_trio(
        "stale-seats",
        &[("WARREN_ROOMS__RECONNECT_GRACE_MS", "1500")],
    )
    .await;
    let replica_version = async |room: &str| -> Option<u64> {
        let (_, body) =
            warren_loadtest::net::http(http[1], "GET", "/v1/admin/replicas", "", Some(ADMIN))
                .await
                .unwrap();
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        v["replicas"]
            .as_array()?
            .iter()
            .find(|r| r["room"] == room)
            .and_then(|r| r["version"].as_u64())
    };
    // Arena rooms made on n1 until two have n2 as their backup (the ring decides; even chances);
    // the others are left again, and close.
    let mut backed = Vec::new();
    for i in 0..24 {
        let mut creator = guest_at(http[0], &format!("maker{i}")).await;
        let room = creator.create_room("arena", json!({"tick_hz":20})).await;
        assert!(room.starts_with("n1."), "{room}");
        let mut on_n2 = false;
        for _ in 0..20 {
            if replica_version(&room).await.is_some() {
                on_n2 = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if on_n2 {
            backed.push((creator, room));
            if backed.len() == 2 {
                break;
            }
        } else {
            creator.ok(json!({"type":"leave_room"})).await;
        }
    }
    assert_eq!(
        backed.len(),
        2,
        "too few rooms of n1 got n2 as their backup"
    );
    // A player on n3 in each; n2's copies show them.
    let mut guests = Vec::new();
    for (i, (_, room)) in backed.iter().enumerate() {
        let before = replica_version(room).await.unwrap();
        let mut g = guest_at(http[2], &format!("guest{i}")).await;
        g.ok(json!({"type":"join_room","room":room})).await;
        eventually(
            "n2's copy shows the join",
            Duration::from_secs(5),
            || async { replica_version(room).await.is_some_and(|v| v > before) },
        )
        .await;
        guests.push(g);
    }

    // n1 and n2 lose their link; everyone leaves the first room (through n1 and n1's link to
    // n3), which closes on n1 while its backup still holds it with both seats. Then n1 dies.
    c.net.cut_between(1, 2, true).unwrap();
    let stale = backed[0].1.clone();
    guests[0].ok(json!({"type":"leave_room"})).await;
    backed[0].0.ok(json!({"type":"leave_room"})).await;
    eventually(
        "the left room closes on n1",
        Duration::from_secs(5),
        || async { metric_sum(http[0], "warren_rooms").await == Some(1.0) },
    )
    .await;
    assert!(replica_version(&stale).await.is_some());
    // The link stays cut: the kernel still sends what a killed process left in its sockets, and
    // the release would reach n2 once the link is back.
    c.kill(0);
    // (The other room may have had its backup moved to n3 once n1 saw n2 unreachable.)
    let survivors = async |name: &str| {
        metric_sum(http[1], name).await.unwrap_or(0.0)
            + metric_sum(http[2], name).await.unwrap_or(0.0)
    };
    eventually("both rooms adopted", Duration::from_secs(10), || async {
        survivors("warren_room_adoptions_total").await == 2.0
    })
    .await;

    // The creators' seats (their node died) and the departed guest's (nobody claims it) go
    // after the grace, once called again: the left room closes. The other guest plays on.
    let settled = Instant::now();
    eventually(
        "the room everyone left closes",
        grace * 2 + Duration::from_secs(5),
        || async { survivors("warren_rooms").await == 1.0 },
    )
    .await;
    tokio::time::sleep((grace * 2 + Duration::from_secs(1)).saturating_sub(settled.elapsed()))
        .await;
    let player = &mut guests[1];
    player.clear();
    player
        .ok(json!({"type":"input","seq":1,"data":{"dx":1,"dy":0}}))
        .await;
    let st = player
        .until(|m| m["type"] == "state" && m["ack"].as_u64() >= Some(1))
        .await;
    assert_eq!(st["room"], backed[1].1.as_str(), "{st}");
    assert_eq!(survivors("warren_rooms").await, 1.0);
    drop((guests, backed, c));
    let _ = std::fs::remove_dir_all(&out);
}

/// A node freezes a room to move it and is cut off before the move arrives; the majority adopts
/// the room from its replica on a third node; when the cut heals, the move, sent by the process
/// the node has since replaced (it dropped its rooms and drew a new incarnation), arrives late
/// at its target, which refuses it. (Before, the target ran the room too, at the same epoch as
/// the adopted copy, and the lower node id won: two copies, and players sent from the copy the
/// majority chose. 8.7 ms in the 30-minute chaos soak.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_move_sent_before_its_node_was_cut_off_and_delivered_late_is_refused() {
    use warren_loadtest::chaos::cluster::ADMIN;
    let (c, out, http) = namespaced_trio("late-move", &[]).await;
    let backup_of = async |room: &str| -> Option<usize> {
        for i in [1, 2] {
            let (_, body) =
                warren_loadtest::net::http(http[i], "GET", "/v1/admin/replicas", "", Some(ADMIN))
                    .await
                    .unwrap();
            if body.contains(room) {
                return Some(i);
            }
        }
        None
    };
    // A dice room on n1 with a player on n2 (where the drain sends it), backed up on n3.
    let mut room = None;
    let mut players = Vec::new();
    for i in 0..24 {
        let mut maker = guest_at(http[0], &format!("mover{i}")).await;
        let r = maker.create_room("dice", json!({})).await;
        let mut backup = None;
        for _ in 0..40 {
            backup = backup_of(&r).await;
            if backup.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if backup == Some(2) {
            let mut guest = guest_at(http[1], &format!("guest{i}")).await;
            guest.ok(json!({"type":"join_room","room":r})).await;
            players.push(maker);
            players.push(guest);
            room = Some(r);
            break;
        }
        maker.ok(json!({"type":"leave_room"})).await;
    }
    let room = room.expect("no room of n1 got n3 as its backup");

    // n1's cluster link goes down, then n1 is told to drain: it still takes n2 for reachable,
    // freezes the room and sends it there, where nothing arrives yet.
    c.net.cut(1, true).unwrap();
    let (status, body) =
        warren_loadtest::net::http(http[0], "POST", "/v1/admin/drain", "", Some(ADMIN))
            .await
            .unwrap();
    assert!(status < 300, "{status} {body}");
    let log = |i: usize| std::fs::read_to_string(&c.lives[i].log).unwrap();
    let live = |i: usize| {
        log(i)
            .lines()
            .filter(|l| l.contains("\"room live\"") && l.contains(&room))
            .count()
    };
    eventually("n3 adopts the room", Duration::from_secs(10), || async {
        live(2) == 1
    })
    .await;
    // Healed before the move gives up (5 s after it began): what n1 sent is delivered now.
    c.net.cut(1, false).unwrap();
    eventually("the move reaches n2", Duration::from_secs(5), || async {
        log(1).contains("a move from a node just heard again") || live(1) > 0
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        log(0).contains("this node is isolated"),
        "n1 did not cut itself off"
    );
    assert_eq!(live(1), 0, "n2 ran the room its cut-off mover sent late");
    assert!(
        !log(2).contains("another node hosts this room too"),
        "n3 gave up the copy the majority adopted"
    );
    drop((players, c));
    let _ = std::fs::remove_dir_all(&out);
}
