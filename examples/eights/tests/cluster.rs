//! Crazy eights on a real three-node cluster, played through the typed client (warren-client) by
//! three players each connected to a different node: a whole game, with the room's node drained in
//! the middle of it (one run) or killed with -9 (the other). The game goes on where it was, and on
//! every frame each player receives, no card it must not see is in it.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use warren_client::{ClientError, Request};
use warren_eights::Card;

use common::{Live, Node, Player, WAIT, cluster_ready, obj, one_move};

// Dependencies of the example's library.
use {rand as _, serde as _, warren as _};

/// What happens to the room's node in the middle of the game.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Trouble {
    Drain,
    Kill,
}

async fn a_whole_game_on_three_nodes(trouble: Trouble) {
    let bin = env!("CARGO_BIN_EXE_eights-node");
    let n1 = Node::start(bin, "n1", "").await;
    let n2 = Node::start(bin, "n2", &n1.cluster).await;
    let n3 = Node::start(bin, "n3", &n1.cluster).await;
    cluster_ready(&[&n1, &n2, &n3]).await;
    let live: Live = Arc::new(Mutex::new(vec![
        n1.http.clone(),
        n2.http.clone(),
        n3.http.clone(),
    ]));

    // Ann creates the room on n1 (its host); Bob joins from n2, Cy from n3.
    let mut players = vec![
        Player::join(&n1, "ann").await,
        Player::join(&n2, "bob").await,
        Player::join(&n3, "cy").await,
    ];
    let room = players[0]
        .client
        .create_room("eights", obj(json!({"seats": 4, "hand": 5})))
        .await
        .unwrap();
    assert!(room.as_str().starts_with("n1."), "{room}");
    for p in &mut players {
        p.play_in(&room);
    }
    for p in &players[1..] {
        p.client.join_room(&room).await.unwrap();
    }
    // A full room refuses a player (Warren counts the seats the game declares).
    let (dan, eve, fay) = (
        Player::join(&n2, "dan").await,
        Player::join(&n3, "eve").await,
        Player::join(&n1, "fay").await,
    );
    let small = dan
        .client
        .create_room("eights", obj(json!({"seats": 2})))
        .await
        .unwrap();
    eve.client.join_room(&small).await.unwrap();
    match fay.client.join_room(&small).await {
        Err(ClientError::Refused { code, .. }) => {
            assert_eq!(code, warren_client::ErrorCode::RoomFull)
        }
        other => panic!("a third player in a 2-seat room: {other:?}"),
    }
    for p in &players {
        p.client.request(Request::Ready).await.unwrap();
    }
    for p in &mut players {
        p.pump(&live, |p| !p.hand.is_empty() && p.turn.is_some())
            .await;
    }
    // Everyone was dealt a hand of their own: five cards each, none shared.
    let dealt: BTreeSet<Card> = players
        .iter()
        .flat_map(|p| p.hand.iter().copied())
        .collect();
    assert_eq!(dealt.len(), 15);
    assert!(!dealt.contains(&players[0].top.unwrap()));
    // Started, with a seat free: the game refuses a new player.
    match fay.client.join_room(&room).await {
        Err(ClientError::Refused { code, message }) => {
            assert_eq!(code, warren_client::ErrorCode::InvalidState, "{message}");
        }
        other => panic!("joined a started game: {other:?}"),
    }

    let mut moves = 0;
    let mut troubled = false;
    while players[0].winner.is_none() {
        assert!(moves < 500, "no winner after {moves} moves");
        if moves == 6 && !troubled {
            troubled = true;
            match trouble {
                Trouble::Drain => {
                    let (status, _) = n1.http("POST", "/v1/admin/drain").await;
                    assert_eq!(status, 202);
                }
                Trouble::Kill => {
                    // The last event reached the room's backup (replicas are not acknowledged:
                    // this is the state a kill -9 keeps).
                    let v = players[0].version;
                    let deadline = Instant::now() + WAIT;
                    loop {
                        let mut got = None;
                        for n in [&n2, &n3] {
                            got = got.or(n.replica_version(&room).await);
                        }
                        if got == Some(v) {
                            break;
                        }
                        assert!(
                            Instant::now() < deadline,
                            "no replica of {room} at {v}: {got:?}"
                        );
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    let pid = n1.child.id();
                    Command::new("kill")
                        .args(["-9", &pid.to_string()])
                        .status()
                        .unwrap();
                }
            }
            live.lock().unwrap().retain(|n| *n != n1.http);
        }

        if one_move(&mut players, &live).await.is_some() {
            moves += 1;
        }
    }
    let winner = players[0].winner.clone().unwrap();
    eprintln!(
        "{trouble:?}: {winner} won after {moves} moves; frames checked: {:?}",
        players.iter().map(|p| p.frames).collect::<Vec<_>>()
    );
    assert!(troubled, "the game ended before its node was {trouble:?}ed");
    for p in &players {
        assert_eq!(p.winner.as_ref(), Some(&winner));
        assert!(p.moves_counted.is_some(), "version 2 counts moves");
        assert!(p.frames > 10, "{}: {} frames", p.id, p.frames);
    }
    let p = players.iter().find(|p| p.id == winner).unwrap();
    assert!(p.hand.is_empty(), "the winner holds {:?}", p.hand);
    // Every full resync (Ann resuming on another node, everyone after the move) showed the hand
    // as it was held: nothing was reset.
    for p in &players {
        assert!(
            p.resyncs.iter().all(|same| *same),
            "{}: {:?}",
            p.id,
            p.resyncs
        );
    }
    assert!(
        !players[0].resyncs.is_empty(),
        "Ann never resynced: {}",
        n1.logs()
    );
    assert_ne!(players[0].at, n1.http, "Ann is still on n1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_game_goes_on_while_its_node_drains_and_no_card_leaks() {
    a_whole_game_on_three_nodes(Trouble::Drain).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_game_goes_on_after_its_node_is_killed_and_no_card_leaks() {
    a_whole_game_on_three_nodes(Trouble::Kill).await;
}
