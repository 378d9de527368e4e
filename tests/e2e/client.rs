//! The typed Rust client (warren-client) against a real node: requests as futures with their
//! answers or refusals, pushes as a stream, a whole dice round, and a resume that keeps the seat.

use std::time::Duration;

use serde_json::{Map, Value, json};
use warren_client::{ClientError, ErrorCode, Push, Pushes, Request, ServerMessage, connect};

use crate::common::{Node, WAIT, token};

/// The next push matching `pred`, within the harness's wait.
pub(crate) async fn until(
    pushes: &mut Pushes,
    pred: impl Fn(&ServerMessage) -> bool,
) -> ServerMessage {
    tokio::time::timeout(WAIT, async {
        loop {
            match pushes.next().await {
                Some(Push::Message(m)) if pred(&m) => return m,
                Some(Push::Message(_)) => {}
                other => panic!("connection ended while waiting: {other:?}"),
            }
        }
    })
    .await
    .expect("timed out waiting for a push")
}

fn object(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

fn event_kind(m: &ServerMessage) -> Option<&str> {
    match m {
        ServerMessage::RoomEvent { event, .. } => event["kind"].as_str(),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rust_client_plays_a_dice_round_and_resumes_its_seat() {
    let node = Node::start(&[]).await;
    let url = format!("ws://{}:{}", node.host, node.port);
    let (a, mut pa) = connect(&url, &token("rc-a", &[]), None).await.unwrap();
    let (b, mut pb) = connect(&url, &token("rc-b", &[]), None).await.unwrap();
    assert_eq!(a.welcome().player.as_str(), "rc-a");
    assert!(!a.welcome().resumed);

    let room = a.create_room("dice", Map::new()).await.unwrap();
    let rs = until(&mut pa, |m| matches!(m, ServerMessage::RoomState { .. })).await;
    assert!(
        matches!(&rs, ServerMessage::RoomState { room: r, .. } if *r == room),
        "{rs:?}"
    );
    b.join_room(&room).await.unwrap();
    until(&mut pb, |m| matches!(m, ServerMessage::RoomState { .. })).await;

    // Refusals come back as typed errors, to the request that caused them.
    match a
        .request(Request::CreateRoom {
            game: "dice".into(),
            params: Map::new(),
            private: false,
        })
        .await
    {
        Err(ClientError::Refused {
            code: ErrorCode::AlreadyInRoom,
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
    match b
        .request(Request::Chat {
            text: "x".repeat(501),
        })
        .await
    {
        Err(ClientError::Refused {
            code: ErrorCode::BadRequest,
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
    // Concurrent requests each get their own answer.
    let (x, y, z) = tokio::join!(
        a.request(Request::Ping),
        a.request(Request::ListRooms { game: None }),
        a.request(Request::Ping)
    );
    assert!(x.unwrap().contains_key("server_time_ms"));
    assert!(y.unwrap().contains_key("rooms"));
    assert!(z.unwrap().contains_key("server_time_ms"));

    // A whole round.
    a.request(Request::Ready).await.unwrap();
    b.request(Request::Ready).await.unwrap();
    let started = until(&mut pa, |m| event_kind(m) == Some("round_started")).await;
    let ServerMessage::RoomEvent { event, .. } = started else {
        unreachable!()
    };
    for p in event["order"].as_array().unwrap() {
        let c = if p == "rc-a" { &a } else { &b };
        c.input(object(json!({"action": "roll"}))).await.unwrap();
    }
    until(&mut pb, |m| event_kind(m) == Some("round_over")).await;

    // The connection drops; the next one resumes with the token and the seat is kept.
    let resume = a.resume_token().to_owned();
    a.close();
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Some(Push::Closed { code, .. }) = pa.next().await {
                return code;
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(closed, Some(1000));
    let (a2, mut pa2) = connect(&url, &token("rc-a", &[]), Some(&resume))
        .await
        .unwrap();
    assert!(a2.welcome().resumed);
    let rs = until(&mut pa2, |m| matches!(m, ServerMessage::RoomState { .. })).await;
    assert!(
        matches!(&rs, ServerMessage::RoomState { room: r, .. } if *r == room),
        "{rs:?}"
    );
    // A request on a closed client fails at once.
    assert!(matches!(
        a.request(Request::Ping).await,
        Err(ClientError::Closed)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_upgrade_is_a_connect_error() {
    let node = Node::start(&[]).await;
    let url = format!("ws://{}:{}", node.host, node.port);
    match connect(&url, "not-a-jwt", None).await {
        Err(ClientError::Connect(why)) => assert!(why.contains("401"), "{why}"),
        Err(other) => panic!("{other:?}"),
        Ok(_) => panic!("connected with a bad token"),
    }
}
