//! README.md's "Write your game" holds `src/main.rs` word for word, and that node plays its game:
//! two players race to the target through the typed client.

#![allow(clippy::unwrap_used)]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use warren_client::{ClientError, ErrorCode, Push, Request};

// The game's own dependencies.
use {serde as _, warren as _};

#[test]
fn the_readme_shows_this_game_as_it_is() {
    let readme = include_str!("../../../README.md");
    let main = include_str!("../src/main.rs");
    let start = readme
        .find("```rust\n//! A race to 21 on Warren")
        .expect("README.md shows examples/race/src/main.rs");
    let block = &readme[start + "```rust\n".len()..];
    let block = &block[..block.find("```").unwrap()];
    assert_eq!(
        block, main,
        "README.md's copy of examples/race/src/main.rs is stale"
    );
}

struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn two_players_race_to_the_target() {
    let log = std::env::temp_dir().join(format!("race-{}.log", std::process::id()));
    let _node = Killed(
        Command::new(env!("CARGO_BIN_EXE_race"))
            .env_clear()
            .env("WARREN_HTTP__LISTEN", "127.0.0.1:0")
            .env("WARREN_CLUSTER__LISTEN", "127.0.0.1:0")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    let http = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if let Some(at) = text
            .split_whitespace()
            .find_map(|w| w.strip_prefix("http="))
        {
            break at.to_owned();
        }
        assert!(Instant::now() < deadline, "the node did not start: {text}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let mut players = Vec::new();
    for name in ["ann", "bob"] {
        let token = warren_client::guest(&format!("http://{http}"), name)
            .await
            .unwrap();
        players.push(
            warren_client::connect(&format!("ws://{http}"), &token, None)
                .await
                .unwrap(),
        );
    }
    let params = json!({"target": 9}).as_object().cloned().unwrap();
    let room = players[0].0.create_room("race", params).await.unwrap();
    players[1].0.join_room(&room).await.unwrap();
    // Out of turn, and too much: refused with the game's errors.
    let add = |n: u32| Request::Input {
        data: warren_protocol::JsonObject::from_map(json!({ "add": n }).as_object().unwrap()),
        seq: None,
    };
    match players[1].0.request(add(1)).await {
        Err(ClientError::Refused { code, .. }) => assert_eq!(code, ErrorCode::NotYourTurn),
        other => panic!("{other:?}"),
    }
    match players[0].0.request(add(4)).await {
        Err(ClientError::Refused { code, .. }) => assert_eq!(code, ErrorCode::InvalidInput),
        other => panic!("{other:?}"),
    }
    // 3 + 3 + 3 = 9: Ann, Bob, Ann; Ann wins.
    for i in 0..3 {
        players[i % 2].0.request(add(3)).await.unwrap();
    }
    let pushes = &mut players[1].1;
    let won = loop {
        match tokio::time::timeout(Duration::from_secs(10), pushes.next())
            .await
            .unwrap()
        {
            Some(Push::Message(warren_client::ServerMessage::RoomEvent { event, .. }))
                if event["kind"] == "won" =>
            {
                break event;
            }
            Some(Push::Message(_)) => {}
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(
        won["player"],
        Value::from(players[0].0.welcome().player.as_str())
    );
}
