//! What a player sends is read by the game's decoder: a malformed card is refused with
//! `invalid_input`, and the room goes on (no panic, no restart).

#![allow(clippy::unwrap_used)]

mod common;

// Dependencies of the package's other targets.
use rand as _;
use serde as _;
use warren as _;

use serde_json::json;

use common::{Node, Player, obj};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_card_that_ends_in_a_multibyte_character_is_refused_not_a_crash() {
    let bin = env!("CARGO_BIN_EXE_eights-node");
    let n1 = Node::start(bin, "n1", "").await;
    let ann = Player::join(&n1, "ann").await;
    let bob = Player::join(&n1, "bob").await;
    let room = ann
        .client
        .create_room("eights", obj(json!({"seats": 2})))
        .await
        .unwrap();
    bob.client.join_room(&room).await.unwrap();
    for card in ["Aé", "é", "10\u{1F0A1}", ""] {
        for p in [&ann, &bob] {
            let r = p
                .client
                .input(obj(json!({"action": "play", "card": card})))
                .await;
            let e = r.expect_err("a malformed card is refused");
            assert!(format!("{e:?}").contains("InvalidInput"), "{card:?}: {e:?}");
        }
    }
    let (_, metrics) = n1.http("GET", "/metrics").await;
    assert!(
        metrics.contains("warren_room_restarts_total{game=\"eights\"} 0"),
        "{metrics}\n{}",
        n1.logs()
    );
    // The room is still there, with both players.
    ann.client
        .input(obj(json!({"action": "draw"})))
        .await
        .or_else(|e| {
            // Not ann's turn: the game answers, which is what matters here.
            if format!("{e:?}").contains("Invalid") {
                Ok(())
            } else {
                Err(e)
            }
        })
        .unwrap();
}
