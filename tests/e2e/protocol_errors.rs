//! Every row of PROTOCOL.md's error table that one node produces, and the HTTP refusals.

use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::common::{Node, SECRET, now_secs, token, token_claims};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_frames_get_bad_request_or_unknown_type_and_the_connection_stays_open() {
    let node = Node::start(&[]).await;
    let mut c = node.connect("eve").await;
    c.send_raw(Message::text("{not json")).await;
    let e = c.until_type("error").await;
    assert_eq!(e["code"], "bad_request");
    assert!(e.get("rid").is_none());
    c.send_raw(Message::text("[1,2]")).await;
    assert_eq!(c.until_type("error").await["code"], "bad_request");
    c.send(json!({"rid": 5})).await;
    let e = c.until_type("error").await;
    assert_eq!(
        (e["code"].as_str(), e["rid"].as_u64()),
        (Some("bad_request"), Some(5))
    );
    c.send(json!({"type":"teleport","rid": 6})).await;
    let e = c.until_type("error").await;
    assert_eq!(
        (e["code"].as_str(), e["rid"].as_u64()),
        (Some("unknown_type"), Some(6))
    );
    c.send(json!({"type":"teleport"})).await;
    let e = c.until_type("error").await;
    assert_eq!(e["code"], "unknown_type");
    assert!(e.get("rid").is_none());
    c.err(json!({"type":"join_room","room":42}), "bad_request")
        .await;
    c.err(json!({"type":"create_room"}), "bad_request").await;
    c.err(
        json!({"type":"create_room","game":"dice","private":"yes"}),
        "bad_request",
    )
    .await;
    c.err(json!({"type":"input","data":"up"}), "bad_request")
        .await;
    c.err(json!({"type":"input","data":{},"seq":-3}), "bad_request")
        .await;
    c.err(json!({"type":"chat","text":""}), "bad_request").await;
    c.err(json!({"type":"chat","text":"x".repeat(501)}), "bad_request")
        .await;
    // What a chat line may contain: no control characters (an ANSI escape), no bidirectional
    // override, something visible.
    for text in [
        "\u{1b}[2J\u{1b}[31mboo",
        "a\nb",
        "evil\u{202E}txt.exe",
        "\u{200B}\u{200B}",
        "   ",
    ] {
        c.err(json!({"type":"chat","text":text}), "bad_request")
            .await;
    }
    c.err(
        json!({"type":"queue","game":"dice","mode":"no spaces"}),
        "bad_request",
    )
    .await;
    // A reply does not echo the frame back (a JSON string followed by junk was quoted whole).
    c.send_raw(Message::text(format!(r#""{}" junk"#, "b".repeat(3000))))
        .await;
    let e = c.until_type("error").await;
    assert_eq!(e["code"], "bad_request");
    assert!(e["message"].as_str().unwrap().len() < 300, "{e}");
    // A frame with a rid that is not an integer: bad_request without a rid.
    c.send(json!({"type":"ping","rid":"seven"})).await;
    let e = c.until_type("error").await;
    assert_eq!(e["code"], "bad_request");
    assert!(e.get("rid").is_none());
    // Still open and answering in order.
    let r = c.ok(json!({"type":"ping"})).await;
    assert!(r["server_time_ms"].as_u64().unwrap() > 1_600_000_000_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_come_in_the_order_received() {
    let node = Node::start(&[]).await;
    let mut c = node.connect("ord").await;
    let frames = [
        json!({"type":"ping","rid":1}),
        json!({"type":"nope","rid":2}),
        json!({"type":"create_room","game":"dice","rid":3}),
        json!({"type":"ready","rid":4}),
        json!({"type":"list_rooms","rid":5}),
        json!({"type":"leave_room","rid":6}),
        json!({"type":"leave_room","rid":7}),
    ];
    for f in &frames {
        c.send(f.clone()).await;
    }
    let mut rids = Vec::new();
    while rids.len() < frames.len() {
        let m = c.next().await;
        if m["type"] == "ok" || m["type"] == "error" {
            rids.push(m["rid"].as_u64().unwrap());
            if m["rid"] == 7 {
                assert_eq!(m["code"], "not_in_room");
            }
        }
    }
    assert_eq!(rids, [1, 2, 3, 4, 5, 6, 7]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn room_and_queue_errors() {
    let node = Node::start(&[]).await;
    let mut a = node.connect("a").await;
    let mut b = node.connect("b").await;
    let mut c = node.connect("c").await;
    for req in [
        json!({"type":"leave_room"}),
        json!({"type":"ready"}),
        json!({"type":"input","data":{}}),
        json!({"type":"chat","text":"hi"}),
    ] {
        a.err(req, "not_in_room").await;
    }
    a.err(json!({"type":"unqueue"}), "not_queued").await;
    a.err(json!({"type":"create_room","game":"chess"}), "unknown_game")
        .await;
    a.err(json!({"type":"queue","game":"chess"}), "unknown_game")
        .await;
    for params in [
        json!({"seats":1}),
        json!({"seats":9}),
        json!({"turn_ms":500}),
        json!({"seats":"2"}),
        json!({"speed":3}),
    ] {
        a.err(
            json!({"type":"create_room","game":"dice","params":params}),
            "invalid_params",
        )
        .await;
    }
    a.err(
        json!({"type":"create_room","game":"arena","params":{"tick_hz":0}}),
        "invalid_params",
    )
    .await;
    let e = a
        .request(json!({"type":"create_room","game":"dice","params":{"colour":"red"}}))
        .await;
    assert_eq!(
        e["message"], "unknown field `colour`, expected `seats` or `turn_ms`",
        "{e}"
    );
    let e = a
        .request(json!({"type":"create_room","game":"dice","params":{"seats":9}}))
        .await;
    assert_eq!(e["message"], "`seats` must be from 2 to 8", "{e}");
    // Ids and names are bounded at the edge: refused without being echoed, looked up or sent on.
    let e = a
        .request(json!({"type":"join_room","room":"r".repeat(60_000)}))
        .await;
    assert_eq!(e["code"], "bad_request", "{e:.200}");
    assert!(e["message"].as_str().unwrap().len() < 100, "{e:.200}");
    let e = a
        .request(json!({"type":"create_room","game":"g".repeat(60_000)}))
        .await;
    assert_eq!(e["code"], "bad_request", "{e:.200}");
    assert!(e["message"].as_str().unwrap().len() < 100, "{e:.200}");
    a.err(json!({"type":"join_room","room":"r-missing"}), "not_found")
        .await;

    let room = a.ok(json!({"type":"create_room","game":"dice"})).await["room"]
        .as_str()
        .unwrap()
        .to_owned();
    a.err(
        json!({"type":"create_room","game":"dice"}),
        "already_in_room",
    )
    .await;
    // Joining the room that holds the seat reattaches it: `ok`, then a fresh `room_state`.
    let again = a.ok(json!({"type":"join_room","room":room})).await;
    assert_eq!(again["room"], room.as_str());
    a.clear();
    let fresh = a.until_type("room_state").await;
    assert_eq!(fresh["room"], room.as_str());
    a.err(json!({"type":"queue","game":"dice"}), "already_in_room")
        .await;
    b.ok(json!({"type":"join_room","room":room})).await;
    c.err(json!({"type":"join_room","room":room}), "room_full")
        .await;

    // list_rooms: public rooms with a free seat only.
    let open = c
        .ok(json!({"type":"create_room","game":"arena","params":{"seats":4}}))
        .await["room"]
        .as_str()
        .unwrap()
        .to_owned();
    // Another room, while seated: `already_in_room`.
    a.err(json!({"type":"join_room","room":open}), "already_in_room")
        .await;
    let listed = a.ok(json!({"type":"list_rooms"})).await;
    let rooms: Vec<Value> = listed["rooms"].as_array().unwrap().clone();
    assert!(rooms.iter().any(|r| r["room"] == open.as_str()
        && r["game"] == "arena"
        && r["players"] == 1
        && r["seats"] == 4));
    assert!(
        !rooms.iter().any(|r| r["room"] == room.as_str()),
        "a full room is not listed"
    );
    let dice_only = a.ok(json!({"type":"list_rooms","game":"dice"})).await;
    assert!(
        dice_only["rooms"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["game"] == "dice")
    );
    c.ok(json!({"type":"leave_room"})).await;
    let private = c
        .ok(json!({"type":"create_room","game":"arena","private":true}))
        .await["room"]
        .as_str()
        .unwrap()
        .to_owned();
    // Another room, while seated: `already_in_room`.
    a.err(json!({"type":"join_room","room":open}), "already_in_room")
        .await;
    let listed = a.ok(json!({"type":"list_rooms"})).await;
    assert!(
        !listed["rooms"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["room"] == private.as_str())
    );
    c.ok(json!({"type":"leave_room"})).await;

    // Queue errors.
    c.ok(json!({"type":"queue","game":"arena","mode":"ranked"}))
        .await;
    c.err(json!({"type":"queue","game":"arena"}), "already_queued")
        .await;
    c.ok(json!({"type":"unqueue"})).await;
    c.err(json!({"type":"unqueue"}), "not_queued").await;

    // Arena input validation (the room above closed when its only player left).
    c.ok(json!({"type":"create_room","game":"arena"})).await;
    c.err(
        json!({"type":"input","seq":1,"data":{"dx":3,"dy":0}}),
        "invalid_input",
    )
    .await;
    c.err(json!({"type":"ready"}), "invalid_state").await;
    // Input without rid: the error comes back without one.
    c.send(json!({"type":"input","seq":2,"data":{"dx":"left"}}))
        .await;
    let e = c.until_type("error").await;
    assert_eq!(e["code"], "invalid_input");
    assert_eq!(
        e["message"], "invalid type: string \"left\", expected f64",
        "{e}"
    );
    assert!(e.get("rid").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_refusals() {
    let node = Node::start(&[
        ("WARREN_AUTH__ADMIN_TOKEN", "admin-secret"),
        ("WARREN_LIMITS__MAX_CONNECTIONS", "2"),
    ])
    .await;
    // 401: missing, forged, expired, no sub, no exp, sub too long.
    assert_eq!(node.refused("").await, 401);
    assert_eq!(node.refused("token=garbage").await, 401);
    let forged = token_claims(&json!({"sub":"x","exp":now_secs()+60}), "wrong-secret");
    assert_eq!(node.refused(&format!("token={forged}")).await, 401);
    let expired = token("x", &[("exp", json!(now_secs() - 3600))]);
    assert_eq!(node.refused(&format!("token={expired}")).await, 401);
    let no_sub = token_claims(&json!({"exp":now_secs()+60}), SECRET);
    assert_eq!(node.refused(&format!("token={no_sub}")).await, 401);
    let no_exp = token_claims(&json!({"sub":"x"}), SECRET);
    assert_eq!(node.refused(&format!("token={no_exp}")).await, 401);
    let long_sub = token(&"x".repeat(65), &[]);
    assert_eq!(node.refused(&format!("token={long_sub}")).await, 401);
    // Not valid yet (`nbf` an hour ahead), and control characters in `sub` or `name`.
    let early = token("x", &[("nbf", json!(now_secs() + 3600))]);
    assert_eq!(node.refused(&format!("token={early}")).await, 401);
    let newline = token("x\ny", &[]);
    assert_eq!(node.refused(&format!("token={newline}")).await, 401);
    let escape = token("x", &[("name", json!("\u{1b}[31mred"))]);
    assert_eq!(node.refused(&format!("token={escape}")).await, 401);
    // A display name that reorders what follows it, shows nothing, or runs past 64 characters.
    for name in ["adm\u{202E}nimda", "\u{200B}\u{FEFF}", &"n".repeat(65)] {
        let t = token("x", &[("name", json!(name))]);
        assert_eq!(node.refused(&format!("token={t}")).await, 401, "{name:?}");
    }
    let t = token("x\u{2067}y", &[]);
    assert_eq!(node.refused(&format!("token={t}")).await, 401);

    // The header works as well as the query.
    let mut req = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
        node.ws_url(""),
    )
    .unwrap();
    req.headers_mut().insert(
        "Authorization",
        format!("Bearer {}", token("hdr", &[])).parse().unwrap(),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    use futures_util::StreamExt;
    let Some(Ok(Message::Text(t))) = ws.next().await else {
        panic!("no welcome")
    };
    let welcome: Value = serde_json::from_str(&t).unwrap();
    assert_eq!(welcome["player"], "hdr");

    // Connection cap (2): the header client plus one more, then 503.
    let _second = node.connect("second").await;
    assert_eq!(
        node.refused(&format!("token={}", token("third", &[])))
            .await,
        503
    );

    // Guests.
    let (s, body) = node
        .http("POST", "/v1/auth/guest", Some(r#"{"name":"ann"}"#), None)
        .await
        .unwrap();
    assert_eq!(s, 200);
    let g: Value = serde_json::from_str(&body).unwrap();
    assert!(g["token"].as_str().unwrap().len() > 20);
    assert!(g["player_id"].as_str().unwrap().starts_with("guest-"));
    assert_eq!(g["expires_in"], 86400);
    // Any script, and emoji with joiners.
    for name in ["Zoë", "李小龍", "محمد", "👨\u{200D}👩\u{200D}👧"] {
        let body = json!({ "name": name }).to_string();
        let (s, b) = node
            .http("POST", "/v1/auth/guest", Some(&body), None)
            .await
            .unwrap();
        assert_eq!(s, 200, "{name}: {b}");
    }
    for bad in [
        r#"{"name":""}"#,
        r#"{"nam":"x"}"#,
        "nope",
        &format!(r#"{{"name":"{}"}}"#, "n".repeat(33)),
        r#"{"name":"adm\u202enimda"}"#,
        r#"{"name":"\u200b\u200d"}"#,
        r#"{"name":"\u3164"}"#,
        r#"{"name":"a\u001b[31m"}"#,
    ] {
        assert_eq!(
            node.http("POST", "/v1/auth/guest", Some(bad), None)
                .await
                .unwrap()
                .0,
            400,
            "{bad}"
        );
    }

    // Admin: 401 without or with a wrong token; the right one works.
    assert_eq!(
        node.http("GET", "/v1/cluster", None, None).await.unwrap().0,
        401
    );
    assert_eq!(
        node.http("GET", "/v1/cluster", None, Some("nope"))
            .await
            .unwrap()
            .0,
        401
    );
    assert_eq!(
        node.http("POST", "/v1/admin/drain", None, Some("nope"))
            .await
            .unwrap()
            .0,
        401
    );
    let (s, body) = node
        .http("GET", "/v1/cluster", None, Some("admin-secret"))
        .await
        .unwrap();
    assert_eq!(s, 200);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["node"], "n1");
    assert_eq!(v["nodes"][0]["state"], "ready");
    assert_eq!(v["nodes"][0]["sessions"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guests_disabled_is_404_and_loopback_admin_without_token() {
    let node = Node::start(&[("WARREN_AUTH__ALLOW_GUEST", "false")]).await;
    assert_eq!(
        node.http("POST", "/v1/auth/guest", Some(r#"{"name":"ann"}"#), None)
            .await
            .unwrap()
            .0,
        404
    );
    // No admin token configured: loopback clients are served.
    let (s, body) = node.http("GET", "/v1/cluster", None, None).await.unwrap();
    assert_eq!(s, 200, "{body}");
}

/// Sends `request` on a new connection and reads until the node closes it: the raw response.
async fn raw_exchange(node: &Node, request: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect((node.host.as_str(), node.port))
        .await
        .unwrap();
    s.write_all(request).await.unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(std::time::Duration::from_secs(10), s.read_to_end(&mut buf))
        .await
        .expect("the node closes the connection")
        .unwrap();
    String::from_utf8_lossy(&buf).into_owned()
}

/// The status and JSON body of a whole response.
fn status_and_json(response: &str) -> (u16, Value) {
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = response.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrade_requests_that_are_not_websocket_handshakes_get_a_json_error() {
    let node = Node::start(&[]).await;
    let tok = token("hs", &[]);
    let upgrade = |path: &str, extra: &str| {
        format!(
            "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n{extra}\r\n"
        )
    };
    let key = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";
    let v13 = "Sec-WebSocket-Version: 13\r\n";

    // A plain GET of the WebSocket path.
    let (s, body) = node.http("GET", "/v1/ws", None, None).await.unwrap();
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (s, body["error"].as_str()),
        (400, Some("bad_request")),
        "{body}"
    );

    // A handshake without a key, with a key that is not the base64 of 16 bytes, or of another
    // WebSocket version.
    let path = format!("/v1/ws?token={tok}");
    for extra in [
        v13.to_owned(),
        format!("Sec-WebSocket-Key: not-a-key\r\n{v13}"),
        format!("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ\r\n{v13}"),
        format!("{key}Sec-WebSocket-Version: 8\r\n"),
    ] {
        let (s, body) =
            status_and_json(&raw_exchange(&node, upgrade(&path, &extra).as_bytes()).await);
        assert_eq!(
            (s, body["error"].as_str()),
            (400, Some("bad_request")),
            "{extra}: {body}"
        );
    }

    // A refusal carries the JSON error as a body, with its type.
    let response = raw_exchange(
        &node,
        upgrade("/v1/ws?token=garbage", &format!("{key}{v13}")).as_bytes(),
    )
    .await;
    assert!(
        response
            .to_ascii_lowercase()
            .contains("content-type: application/json"),
        "{response}"
    );
    let (s, body) = status_and_json(&response);
    assert_eq!(
        (s, body["error"].as_str()),
        (401, Some("unauthorized")),
        "{body}"
    );
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );

    // A head over 16 KiB.
    let big = format!("{key}{v13}X-Padding: {}\r\n", "p".repeat(17 * 1024));
    let (s, body) = status_and_json(&raw_exchange(&node, upgrade(&path, &big).as_bytes()).await);
    assert_eq!(
        (s, body["error"].as_str()),
        (431, Some("request_header_fields_too_large"))
    );

    // An upgrade as a later request of a kept-alive connection is served: `proxies.rs`.

    // The query is read as the URL encodes it, and the handshake still succeeds after all this.
    let mut c = node.connect_with(&format!("token={tok}&resume=")).await;
    assert_eq!(c.welcome["player"], "hs");
    c.send(json!({"type":"ping","rid":1})).await;
    assert_eq!(c.until_type("ok").await["rid"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_text_frame_that_is_not_utf8_closes_with_1002() {
    use tokio_tungstenite::tungstenite::protocol::frame::Frame;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
    let node = Node::start(&[]).await;
    let mut c = node.connect("bytes").await;
    let frame = Frame::message(vec![0x22, 0xff, 0xfe, 0x22], OpCode::Data(Data::Text), true);
    c.send_raw(Message::Frame(frame)).await;
    assert_eq!(c.close_code().await, 1002);
}

/// The answers of the listener's front and the WebSocket handshake to requests that are too slow
/// or too large: 408 when nothing (or not the whole head) arrives within 5 s, 414 for a request
/// line over 8 KiB, 431 for more than 64 headers. Each is a JSON error, and the connection ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_or_oversized_requests_get_408_414_and_431() {
    let node = Node::start(&[]).await;
    let tok = token("hs", &[]);
    let head = format!(
        "GET /v1/ws?token={tok} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
    );
    let expect = |what: &str, response: &str, status: u16, code: &str| {
        assert!(
            response
                .to_ascii_lowercase()
                .contains("content-type: application/json"),
            "{what}: {response}"
        );
        let (s, body) = status_and_json(response);
        assert_eq!(
            (s, body["error"].as_str()),
            (status, Some(code)),
            "{what}: {response}"
        );
    };

    // Silent clients: one sends nothing, one stops inside the upgrade's head. Both wait together.
    let silent = raw_exchange(&node, b"");
    let unfinished = raw_exchange(&node, head.as_bytes());
    let (silent, unfinished) = tokio::join!(silent, unfinished);
    expect("nothing sent", &silent, 408, "request_timeout");
    expect("head unfinished", &unfinished, 408, "request_timeout");

    // A request line longer than 8 KiB, with or without its end.
    let long = format!(
        "GET /v1/ws?token={tok}&pad={} HTTP/1.1\r\n\r\n",
        "p".repeat(9 * 1024)
    );
    expect(
        "long line",
        &raw_exchange(&node, long.as_bytes()).await,
        414,
        "uri_too_long",
    );
    let endless = format!("GET /{}", "p".repeat(9 * 1024));
    expect(
        "endless line",
        &raw_exchange(&node, endless.as_bytes()).await,
        414,
        "uri_too_long",
    );

    // 65 headers in a head well under the size limit.
    let many: String = (0..65).map(|i| format!("X-H{i}: v\r\n")).collect();
    let crowded = format!("{head}{many}\r\n");
    expect(
        "65 headers",
        &raw_exchange(&node, crowded.as_bytes()).await,
        431,
        "request_header_fields_too_large",
    );

    // None of it stopped the node from taking a proper handshake.
    let mut c = node.connect("after").await;
    c.ok(json!({"type":"ping"})).await;
}

/// Sends `request` and reads until the node closes the connection (at most `secs`).
async fn exchange_within(node: &Node, request: &[u8], secs: u64) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect((node.host.as_str(), node.port))
        .await
        .unwrap();
    s.write_all(request).await.unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(secs),
        s.read_to_end(&mut buf),
    )
    .await
    .expect("the node closes the connection")
    .unwrap();
    String::from_utf8_lossy(&buf).into_owned()
}

/// A request body is bounded in time and size, actix-web's own refusals are JSON like every
/// other, and plain HTTP connections are bounded in number (`http.max_connections`) without
/// taking anything from WebSocket players.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_bodies_are_bounded_in_time_and_size_and_connections_in_number() {
    use tokio::io::AsyncWriteExt;
    let node = Node::start(&[("WARREN_HTTP__MAX_CONNECTIONS", "4")]).await;
    let head = |len: usize| {
        format!(
            "POST /v1/auth/guest HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
             Content-Length: {len}\r\n\r\n"
        )
    };
    // Announced and never sent: 408 within the handler's time, and the connection closes.
    let started = std::time::Instant::now();
    let silent = exchange_within(&node, head(1000).as_bytes(), 30).await;
    let (status, body) = status_and_json(&silent);
    assert_eq!(
        (status, body["error"].as_str()),
        (408, Some("request_timeout")),
        "{silent}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(20));

    // Over the body limit: 413 as JSON.
    let big = format!("{}{}", head(20_000), "x".repeat(20_000));
    let (status, body) = status_and_json(&exchange_within(&node, big.as_bytes(), 10).await);
    assert_eq!(
        (status, body["error"].as_str()),
        (413, Some("payload_too_large"))
    );
    // Paths and methods actix-web refuses by itself.
    for request in [
        "GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        "GET /play/../v1/cluster HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
        "DELETE /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    ] {
        let response = exchange_within(&node, request.as_bytes(), 10).await;
        let (status, body) = status_and_json(&response);
        assert!(
            response
                .to_ascii_lowercase()
                .contains("content-type: application/json")
                && (400..500).contains(&status)
                && body["error"].is_string()
                && body["message"].is_string(),
            "{request}: {response}"
        );
    }

    // Four connections hold slow bodies; a fifth HTTP client is refused at once, 503.
    let mut held = Vec::new();
    for _ in 0..4 {
        let mut s = tokio::net::TcpStream::connect((node.host.as_str(), node.port))
            .await
            .unwrap();
        s.write_all(head(1000).as_bytes()).await.unwrap();
        held.push(s);
    }
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let refused = exchange_within(
        &node,
        b"GET /v1/cluster HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        5,
    )
    .await;
    let (status, body) = status_and_json(&refused);
    assert_eq!(
        (status, body["error"].as_str()),
        (503, Some("at_capacity")),
        "{refused}"
    );
    // Probes and scrapes have slots of their own: the node stays live and ready for its
    // orchestrator.
    for path in ["/healthz", "/readyz", "/metrics"] {
        assert_eq!(node.http("GET", path, None, None).await.unwrap().0, 200);
    }
    // Players are not HTTP clients: they still connect and play.
    let mut c = node.connect("player").await;
    c.ok(json!({"type":"ping"})).await;
    // Once the held connections go, HTTP is served again.
    drop(held);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        if let Ok((200, _)) = node.http("GET", "/v1/cluster", None, None).await {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "HTTP slots were not freed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Requests actix-http cannot parse get 400 and are counted, not logged as server errors: a
/// client's mistake is not something to wake an operator for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_http_requests_are_counted_not_logged_as_errors() {
    let node = Node::start(&[]).await;
    let requests: [&[u8]; 4] = [
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n",
        b"GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n",
    ];
    for request in requests {
        let response = raw_exchange(&node, request).await;
        assert!(response.starts_with("HTTP/1.1 400"), "{response}");
    }
    crate::common::eventually(
        "the errors are counted",
        std::time::Duration::from_secs(5),
        || async {
            crate::common::metric_sum(&node, "warren_http_stream_errors_total").await >= 4.0
        },
    )
    .await;
    assert!(!node.logs().contains("ERROR"), "{}", node.logs());
}
