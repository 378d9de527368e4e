//! Per-connection limits: frame size, binary frames, heartbeat, rate limit, slow consumers.

use std::time::Duration;

use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use crate::common::{Node, token};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_frame_closes_with_1009_and_binary_with_1003() {
    let node = Node::start(&[]).await;
    let mut c = node.connect("big").await;
    let text = format!(r#"{{"type":"chat","text":"{}"}}"#, "x".repeat(70_000));
    c.send_raw(Message::text(text)).await;
    assert_eq!(c.close_code().await, 1009);
    let mut c = node.connect("bin").await;
    c.send_raw(Message::binary(vec![1u8, 2, 3])).await;
    assert_eq!(c.close_code().await, 1003);
    // A frame just under the limit is fine (and is a bad chat, not a close).
    let mut c = node.connect("edge").await;
    let text = format!(
        r#"{{"type":"chat","rid":1,"text":"{}"}}"#,
        "x".repeat(65_000)
    );
    c.send_raw(Message::text(text)).await;
    assert_eq!(c.until_type("error").await["code"], "bad_request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_client_is_closed_with_4000() {
    let node = Node::start(&[("WARREN_LIMITS__HEARTBEAT_MS", "200")]).await;
    let tok = token("quiet", &[]);
    // Connect without reading: the client library answers pings only while it reads.
    let (mut ws, _) = tokio_tungstenite::connect_async(node.ws_url(&format!("token={tok}")))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(800)).await;
    use futures_util::StreamExt;
    let mut code = None;
    while let Some(m) = ws.next().await {
        if let Ok(Message::Close(Some(c))) = m {
            code = Some(u16::from(c.code));
            break;
        }
    }
    assert_eq!(code, Some(4000));
    // A client that reads (and so answers pings) stays connected past two intervals.
    let mut alive = node.connect("chatty").await;
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(150)).await;
        alive.ok(json!({"type":"ping"})).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bursts_over_the_limit_are_dropped_with_rate_limited() {
    let node = Node::start(&[]).await;
    let mut c = node.connect("flood").await;
    // Default 50/s with a burst of 100: 150 at once leaves some dropped.
    for rid in 1..=150u64 {
        c.send(json!({"type":"ping","rid":rid})).await;
    }
    let (mut ok, mut limited) = (0, 0);
    let mut rids = Vec::new();
    while ok + limited < 150 {
        let m = c.next().await;
        match (m["type"].as_str(), m["code"].as_str()) {
            (Some("ok"), _) => ok += 1,
            (Some("error"), Some("rate_limited")) => limited += 1,
            _ => continue,
        }
        rids.push(m["rid"].as_u64().unwrap());
    }
    assert!(ok >= 100, "the burst is honoured: {ok}");
    assert!(limited > 0, "some were rate limited");
    assert_eq!(
        rids,
        (1..=150).collect::<Vec<_>>(),
        "every rid answered once, in order"
    );
    // After a pause the bucket refills: a ping is answered `ok` again.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let r = c.request(json!({"type":"ping"})).await;
        if r["type"] == "ok" {
            break;
        }
        assert_eq!(r["code"], "rate_limited", "{r}");
        assert!(
            std::time::Instant::now() < deadline,
            "the bucket never refilled"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistent_flooding_closes_with_4004() {
    let node = Node::start(&[
        ("WARREN_LIMITS__MESSAGES_PER_SEC", "10"),
        ("WARREN_LIMITS__MESSAGE_BURST", "10"),
        ("WARREN_LIMITS__RATE_LIMIT_CLOSE_MS", "300"),
    ])
    .await;
    let mut c = node.connect("flood").await;
    let flood = tokio::spawn(async move {
        for _ in 0..400 {
            if c.conn
                .send_frame(Message::text(r#"{"type":"ping"}"#))
                .await
                .is_err()
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        c
    });
    let mut c = flood.await.unwrap();
    assert_eq!(c.close_code().await, 4004);
}

use futures_util::SinkExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_gets_4003_and_memory_stays_bounded() {
    let node = Node::start(&[
        ("WARREN_LIMITS__MAX_OUTBOUND_QUEUE", "256"),
        ("WARREN_LIMITS__MESSAGES_PER_SEC", "100000"),
        ("WARREN_LIMITS__MESSAGE_BURST", "100000"),
    ])
    .await;
    let mut talker = node.connect("talker").await;
    let mut sleeper = node.connect("sleeper").await;
    let room = talker.create_room("arena", json!({"seats":2})).await;
    sleeper.ok(json!({"type":"join_room","room":room})).await;
    sleeper.until_type("room_state").await;
    let rss_before = node.rss_kib();
    // The talker reads everything it gets (its own echoes included) on a separate task.
    let (mut sink, mut stream) = futures_util::StreamExt::split(talker.conn.into_inner());
    let reader = tokio::spawn(async move {
        use futures_util::StreamExt;
        while let Some(Ok(_)) = stream.next().await {}
    });
    // ~2 KB per chat line; the sleeper reads nothing while the talker sends ~40 MB worth.
    let line = "\u{1F600}".repeat(500);
    let frame = json!({"type":"chat","text":line}).to_string();
    let mut closed = false;
    for i in 0..20_000 {
        // The talker may itself fall behind its own echoes and be closed; the sleeper is the subject.
        if sink.send(Message::text(frame.clone())).await.is_err() {
            break;
        }
        // Stop once the server has closed a connection with 4003, so the sleeper reads promptly.
        if i % 250 == 249 {
            let (_, metrics) = node.http("GET", "/metrics", None, None).await.unwrap();
            let code_4003 = "warren_closes_total{code=\"4003\"} ";
            if metrics
                .lines()
                .any(|l| l.strip_prefix(code_4003).is_some_and(|v| v != "0"))
            {
                closed = true;
                break;
            }
        }
    }
    assert!(
        closed,
        "no connection was closed with 4003 after 20,000 chat lines"
    );
    let rss_after = node.rss_kib();
    reader.abort();
    assert_eq!(sleeper.close_code().await, 4003);
    // Bounded: 256 queued frames per connection, not 40 MB.
    assert!(
        rss_after < rss_before + 64 * 1024,
        "rss grew from {rss_before} KiB to {rss_after} KiB"
    );
}

/// A node whose open-files limit allows fewer sessions than `limits.max_connections` (200,000 by
/// default) takes what its descriptors allow and answers the rest 503 `at_capacity`, rather than
/// leaving them unanswered in the listen queue once the kernel refuses it a socket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_files_limit_below_max_connections_caps_sessions_with_503() {
    // The node keeps 256 descriptors for itself, and an eighth of the rest for plain HTTP
    // connections: 28 of 288 are left for sessions.
    let node = Node::start_with_open_files(&[], 288, 288).await;
    assert!(
        node.logs()
            .contains("allows fewer sessions than limits.max_connections"),
        "{}",
        node.logs()
    );
    let mut clients = Vec::new();
    for i in 0..28 {
        clients.push(node.connect(&format!("fd{i}")).await);
    }
    let extra = format!("token={}", token("fd-extra", &[]));
    assert_eq!(node.refused(&extra).await, 503);
    // The sessions it took still play, and a freed slot takes a new session.
    clients[0].create_room("dice", json!({})).await;
    clients.pop();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match tokio_tungstenite::connect_async(node.ws_url(&extra)).await {
            Ok(_) => break,
            Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
                assert_eq!(resp.status().as_u16(), 503)
            }
            Err(e) => panic!("unexpected error: {e}"),
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the slot was not freed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A soft open-files limit below the hard one is raised to it at start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_soft_open_files_limit_is_raised_to_the_hard_one() {
    let node =
        Node::start_with_open_files(&[("WARREN_LIMITS__MAX_CONNECTIONS", "1000")], 276, 4096).await;
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", node.pid())).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    assert_eq!(
        line.split_whitespace().collect::<Vec<_>>()[3..5],
        ["4096", "4096"],
        "{line}"
    );
    assert!(
        !node.logs().contains("allows fewer sessions"),
        "{}",
        node.logs()
    );
    // More sessions than the soft limit it started with would allow.
    let mut clients = Vec::new();
    for i in 0..30 {
        clients.push(node.connect(&format!("fd{i}")).await);
    }
}

/// More slow HTTP requests (a body announced and never sent) than the node has descriptors:
/// past its HTTP share they are refused 503 at once, so the node keeps answering probes and
/// taking players, and never runs out of descriptors.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_http_bodies_past_the_descriptors_do_not_stop_the_node() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let node = Node::start_with_open_files(&[], 512, 512).await;
    let head = "POST /v1/auth/guest HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
                Content-Length: 1000\r\n\r\n";
    let mut held = Vec::new();
    let mut refused = 0;
    for _ in 0..520 {
        let Ok(mut s) = tokio::net::TcpStream::connect((node.host.as_str(), node.port)).await
        else {
            continue;
        };
        if s.write_all(head.as_bytes()).await.is_ok() {
            held.push(s);
        }
    }
    // Those past the share were answered 503 and closed.
    for s in &mut held {
        let mut buf = [0u8; 512];
        if let Ok(Ok(n)) = tokio::time::timeout(Duration::from_millis(20), s.read(&mut buf)).await
            && String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 503")
        {
            refused += 1;
        }
    }
    assert!(refused >= 400, "only {refused} of 520 were refused");
    // While the rest are held: probes answer, a player connects and plays.
    assert_eq!(
        node.http("GET", "/healthz", None, None).await.unwrap().0,
        200
    );
    let mut c = node.connect("through").await;
    c.ok(json!({"type":"ping"})).await;
    assert!(
        !node.logs().contains("Too many open files"),
        "{}",
        node.logs()
    );
    drop(held);
}

/// A WebSocket client of `player` whose socket's receive buffer is 4 KiB: what the node writes
/// and it does not read backs up in the node's buffers within a few kilobytes.
async fn small_buffer_client(
    node: &Node,
    player: &str,
) -> tokio_tungstenite::WebSocketStream<tokio::net::TcpStream> {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let addr = format!("{}:{}", node.host, node.port).parse().unwrap();
    let stream = socket.connect(addr).await.unwrap();
    let query = format!("token={}", token(player, &[]));
    tokio_tungstenite::client_async(node.ws_url(&query), stream)
        .await
        .unwrap()
        .0
}

/// A client that floods pings and never reads what comes back: pings count against the rate
/// limit, and no write waits for its socket without a bound, so the connection is closed (4000,
/// 4003 or 4004) instead of freezing with its heartbeat.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ping_flood_from_a_client_that_does_not_read_is_closed() {
    use futures_util::SinkExt as _;
    let node = Node::start(&[("WARREN_LIMITS__HEARTBEAT_MS", "2000")]).await;
    // The client's receive buffer is small, so what the node writes backs up in its own.
    let mut ws = small_buffer_client(&node, "pinger").await;
    let payload = vec![7u8; 125];
    let _ = tokio::time::timeout(Duration::from_secs(10), async {
        for _ in 0..100_000 {
            if ws
                .send(Message::Ping(payload.clone().into()))
                .await
                .is_err()
            {
                break;
            }
        }
    })
    .await;
    // Not reading, the client waits: the node must close it by itself.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
    loop {
        let closes = crate::common::metric_sum(&node, "warren_closes_total").await;
        let open = crate::common::metric_sum(&node, "warren_connections").await;
        if closes >= 1.0 && open == 0.0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the flooding connection is still open ({closes} closes, {open} open)"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (_, metrics) = node.http("GET", "/metrics", None, None).await.unwrap();
    assert!(
        ["4000", "4003", "4004"]
            .iter()
            .any(|c| metrics.contains(&format!("warren_closes_total{{code=\"{c}\"}} 1"))),
        "{metrics}"
    );
    drop(ws);
}

/// A client that reads, but slower than its frames come (7.5 kB/s against about 24 kB/s of
/// chat): the node's send buffer is kept small and a write may wait only so long, so the client
/// is closed with 4003 within seconds, not after the kernel's megabytes of buffers have filled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_reading_slower_than_its_frames_come_gets_4003() {
    use futures_util::SinkExt as _;
    use tokio::io::AsyncReadExt as _;
    let node = Node::start(&[]).await;
    let mut chatter = node.connect("chatter").await;
    let room = chatter.create_room("dice", json!({"seats": 8})).await;

    let mut ws = small_buffer_client(&node, "slow-reader").await;
    ws.send(Message::text(
        json!({"type":"join_room","room":room}).to_string(),
    ))
    .await
    .unwrap();
    let raw = ws.get_mut();

    let text = "c".repeat(500);
    let started = tokio::time::Instant::now();
    let mut buf = vec![0u8; 750];
    let mut next_chat = started;
    let mut closed = false;
    let mut read = 0;
    while started.elapsed() < Duration::from_secs(45) {
        // 750 bytes every 100 ms: 7.5 kB/s.
        match tokio::time::timeout(Duration::from_millis(100), raw.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => read += n,
            _ => {}
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        while tokio::time::Instant::now() >= next_chat {
            chatter.send(json!({"type":"chat","text":text})).await;
            next_chat += Duration::from_millis(25);
        }
        // The chatter's own copies are read, so only the slow reader falls behind.
        chatter.drain_now().await;
        // Closed by the node (the close frame itself waits behind what the reader has not read).
        if crate::common::metric_sum(&node, "warren_closes_total").await >= 1.0 {
            closed = true;
            break;
        }
    }
    let (_, m) = node.http("GET", "/metrics", None, None).await.unwrap();
    assert!(
        closed,
        "the slow reader was not closed in 45 s ({read} bytes read): {}",
        m.lines()
            .filter(|l| l.contains("closes") || l.contains("sent_total"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    let (_, metrics) = node.http("GET", "/metrics", None, None).await.unwrap();
    assert!(
        metrics.contains("warren_closes_total{code=\"4003\"} 1"),
        "{metrics}"
    );
}
