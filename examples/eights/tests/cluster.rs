//! Crazy eights on a real three-node cluster, played through the typed client (warren-client) by
//! three players each connected to a different node: a whole game, with the room's node drained in
//! the middle of it (one run) or killed with -9 (the other). The game goes on where it was, and on
//! every frame each player receives, no card it must not see is in it.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use warren_client::{Client, ClientError, Push, Pushes, Request, RoomId, ServerMessage};
use warren_eights::{Card, Event, Move, Phase, Suit, View};
use warren_protocol::{JsonObject, PlayerId};

// Dependencies of the example's library.
use {rand as _, serde as _, warren as _};

const WAIT: Duration = Duration::from_secs(20);

/// One `eights-node` process.
struct Node {
    child: Child,
    id: String,
    http: String,
    cluster: String,
    log: PathBuf,
}

impl Node {
    async fn start(bin: &str, id: &str, seeds: &str) -> Node {
        static STARTED: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = STARTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let log = std::env::temp_dir().join(format!("eights-{}-{n}-{id}.log", std::process::id()));
        let child = Command::new(bin)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("WARREN_NODE__ID", id)
            .env("WARREN_HTTP__LISTEN", "127.0.0.1:0")
            .env("WARREN_HTTP__WORKERS", "2")
            .env("WARREN_CLUSTER__LISTEN", "127.0.0.1:0")
            .env("WARREN_CLUSTER__SEEDS", seeds)
            .env("WARREN_CLUSTER__COOKIE", "eights-cookie")
            .env("WARREN_CLUSTER__FAILURE_TIMEOUT_MS", "1000")
            .env(
                "WARREN_AUTH__JWT_SECRET",
                "eights-test-secret-0123456789abcdef",
            )
            .env("WARREN_LOG__LEVEL", "warn,warren=info,warren_actors=info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start eights-node");
        let deadline = Instant::now() + WAIT;
        let (http, cluster) = loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if let Some(line) = text.lines().find(|l| l.contains("warren node ready")) {
                let field = |name: &str| {
                    line.split_whitespace()
                        .find_map(|w| w.strip_prefix(name))
                        .unwrap_or_else(|| panic!("no {name} in {line}"))
                        .to_owned()
                };
                break (field("http="), field("cluster="));
            }
            assert!(Instant::now() < deadline, "{id} did not start: {text}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        Node {
            child,
            id: id.to_owned(),
            http,
            cluster,
            log,
        }
    }

    fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// One HTTP/1.1 request; the status and body.
    async fn http(&self, method: &str, path: &str) -> (u16, String) {
        let mut s = tokio::net::TcpStream::connect(&self.http).await.unwrap();
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.http
        );
        s.write_all(req.as_bytes()).await.unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        let status = out[9..12].parse().unwrap();
        let body = out.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
        (status, body.to_owned())
    }

    /// Members this node sees as ready.
    async fn ready_members(&self) -> usize {
        let (_, body) = self.http("GET", "/v1/cluster").await;
        let v: Value = serde_json::from_str(&body).unwrap_or_default();
        v["nodes"]
            .as_array()
            .map_or(0, |n| n.iter().filter(|n| n["state"] == "ready").count())
    }

    /// The `version` of `room`'s replica here, if this node keeps one.
    async fn replica_version(&self, room: &RoomId) -> Option<u64> {
        let (_, body) = self.http("GET", "/v1/admin/replicas").await;
        let v: Value = serde_json::from_str(&body).ok()?;
        v["replicas"]
            .as_array()?
            .iter()
            .find(|r| r["room"] == room.as_str())
            .and_then(|r| r["version"].as_u64())
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One player: its connection, and everything it has been told.
struct Player {
    id: PlayerId,
    token: String,
    client: Client,
    pushes: Pushes,
    /// The node it is connected to.
    at: String,
    version: u64,
    order: Vec<PlayerId>,
    turn: Option<PlayerId>,
    hand: BTreeSet<Card>,
    top: Option<Card>,
    suit: Option<Suit>,
    winner: Option<PlayerId>,
    /// Frames checked for cards.
    frames: u64,
    /// `room_state`s received after a reconnection, and whether each showed the hand held before.
    resyncs: Vec<bool>,
}

/// Every string in `v` that reads as a card.
fn cards_in(v: &Value, out: &mut Vec<Card>) {
    match v {
        Value::String(s) => out.extend(s.parse::<Card>()),
        Value::Array(a) => a.iter().for_each(|x| cards_in(x, out)),
        Value::Object(o) => o.values().for_each(|x| cards_in(x, out)),
        _ => {}
    }
}

impl Player {
    async fn join(node: &Node, name: &str) -> Player {
        let token = warren_client::guest(&format!("http://{}", node.http), name)
            .await
            .unwrap();
        let (client, pushes) = warren_client::connect(&node.http_url(), &token, None)
            .await
            .unwrap();
        Player {
            id: client.welcome().player.clone(),
            token,
            client,
            pushes,
            at: node.http.clone(),
            version: 0,
            order: Vec::new(),
            turn: None,
            hand: BTreeSet::new(),
            top: None,
            suit: None,
            winner: None,
            frames: 0,
            resyncs: Vec::new(),
        }
    }

    fn next_after(&self, player: &PlayerId) -> Option<PlayerId> {
        let i = self.order.iter().position(|p| p == player)?;
        Some(self.order[(i + 1) % self.order.len()].clone())
    }

    /// Takes one server message in, checking it on the way: no card this player must not see,
    /// versions that only go up, no error.
    fn absorb(&mut self, msg: ServerMessage) {
        self.frames += 1;
        let (raw, what) = match &msg {
            ServerMessage::RoomState { version, state, .. } => {
                assert!(
                    *version >= self.version,
                    "{}: room_state went back",
                    self.id
                );
                let view: View = serde_json::from_value(state.clone()).unwrap();
                let hand: BTreeSet<Card> =
                    view.hand.clone().unwrap_or_default().into_iter().collect();
                if self.version > 0 && view.phase == Phase::Playing {
                    self.resyncs.push(hand == self.hand);
                }
                self.version = *version;
                self.hand = hand;
                self.order = view.order.clone();
                self.turn = view.turn.clone();
                self.top = view.top;
                self.suit = view.suit;
                self.winner = view.winner.clone();
                (state.clone(), "room_state")
            }
            ServerMessage::RoomEvent { version, event, .. } => {
                assert!(
                    *version > self.version,
                    "{}: event version went back",
                    self.id
                );
                self.version = *version;
                if event["kind"]
                    .as_str()
                    .is_some_and(|k| k.starts_with("player_"))
                {
                    return;
                }
                match serde_json::from_value::<Event>(event.clone()).unwrap() {
                    Event::Started { order, top, hand } => {
                        self.hand = hand.into_iter().collect();
                        self.turn = order.first().cloned();
                        self.order = order;
                        self.top = Some(top);
                        self.suit = Some(top.suit);
                    }
                    Event::Played {
                        player,
                        card,
                        suit,
                        cards,
                    } => {
                        if player == self.id {
                            assert!(
                                self.hand.remove(&card),
                                "{}: played {card} it did not hold",
                                self.id
                            );
                            assert_eq!(cards, self.hand.len());
                        }
                        self.top = Some(card);
                        self.suit = Some(suit);
                        // The last card wins: `game_over` follows, and nobody's turn comes.
                        self.turn = if cards == 0 {
                            None
                        } else {
                            self.next_after(&player)
                        };
                    }
                    Event::Drew {
                        player,
                        card,
                        cards,
                        ..
                    } => {
                        if player == self.id {
                            let card = card.expect("the drawer is told its card");
                            assert!(self.hand.insert(card));
                            assert_eq!(cards, self.hand.len());
                        } else {
                            assert!(
                                card.is_none(),
                                "{} was told {player}'s card: {event}",
                                self.id
                            );
                        }
                        self.turn = self.next_after(&player);
                    }
                    Event::Passed { player } => self.turn = self.next_after(&player),
                    Event::GameOver { winner, moves } => {
                        assert!(moves.is_some(), "version 2 counts moves");
                        self.winner = Some(winner);
                    }
                    Event::YourTurn { .. } => panic!("your_turn is a room_message"),
                }
                (event.clone(), "room_event")
            }
            ServerMessage::RoomMessage { message, .. } => {
                let ev: Event = serde_json::from_value(message.clone()).unwrap();
                assert!(matches!(ev, Event::YourTurn { .. }), "{message}");
                assert_eq!(
                    self.turn.as_ref(),
                    Some(&self.id),
                    "{}: your_turn out of turn",
                    self.id
                );
                (message.clone(), "room_message")
            }
            ServerMessage::Error { code, message, .. } => {
                panic!("{}: error pushed: {code:?} {message}", self.id)
            }
            ServerMessage::RecoveryDone { room } => {
                assert!(
                    room.is_some(),
                    "{}: the seat was not found after its node died",
                    self.id
                );
                return;
            }
            _ => return,
        };
        // Every card in the frame is this player's own or the face-up top of the pile.
        let mut seen = Vec::new();
        cards_in(&raw, &mut seen);
        for card in seen {
            assert!(
                self.hand.contains(&card) || self.top == Some(card),
                "{} saw {card}, neither in its hand {:?} nor on the pile ({:?}), in {what} {raw}",
                self.id,
                self.hand,
                self.top
            );
        }
    }

    /// Reads pushes until `done` holds; a connection that ends is resumed on the first of `nodes`.
    async fn pump(&mut self, nodes: &[&Node], done: impl Fn(&Player) -> bool) {
        let deadline = Instant::now() + WAIT;
        while !done(self) {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.pushes.next()).await {
                Ok(Some(Push::Message(m))) => self.absorb(m),
                Ok(Some(Push::Closed { .. }) | None) => self.resume(nodes).await,
                Err(_) => panic!("{}: waited {WAIT:?} in vain", self.id),
            }
        }
    }

    /// Reconnects with the resume token to the first node in `nodes` other than the one it was on.
    async fn resume(&mut self, nodes: &[&Node]) {
        let to = nodes
            .iter()
            .find(|n| n.http != self.at)
            .expect("a node to resume on");
        let resume = self.client.resume_token().to_owned();
        let (client, pushes) = warren_client::connect(&to.http_url(), &self.token, Some(&resume))
            .await
            .unwrap_or_else(|e| panic!("{}: resume on {}: {e}", self.id, to.id));
        // The old node drained (its session resumes here) or died (the seat is looked for while
        // the cluster recovers the node's rooms: `recovering`, then `recovery_done`).
        let w = client.welcome();
        assert!(
            w.resumed || w.recovering,
            "{}: neither resumed nor recovering: {w:?}",
            self.id
        );
        self.client = client;
        self.pushes = pushes;
        self.at = to.http.clone();
    }

    /// The move this player makes: a playable card (an 8 last, naming its most held suit), or a draw.
    fn choose(&self) -> Move {
        let (top, suit) = (self.top.expect("a top card"), self.suit);
        let playable = |c: &&Card| c.rank != 8 && (c.rank == top.rank || Some(c.suit) == suit);
        if let Some(card) = self.hand.iter().find(playable) {
            return Move::Play {
                card: *card,
                suit: None,
            };
        }
        if let Some(eight) = self.hand.iter().find(|c| c.rank == 8) {
            let most = [Suit::S, Suit::H, Suit::D, Suit::C]
                .into_iter()
                .max_by_key(|s| {
                    self.hand
                        .iter()
                        .filter(|c| c.suit == *s && c.rank != 8)
                        .count()
                })
                .unwrap_or(Suit::S);
            return Move::Play {
                card: *eight,
                suit: Some(most),
            };
        }
        Move::Draw {}
    }
}

impl Node {
    fn http_url(&self) -> String {
        format!("ws://{}", self.http)
    }
}

fn move_json(m: &Move) -> Map<String, Value> {
    let v = match m {
        Move::Play { card, suit: None } => json!({"action":"play","card":card}),
        Move::Play {
            card,
            suit: Some(s),
        } => json!({"action":"play","card":card,"suit":s}),
        Move::Draw {} => json!({"action":"draw"}),
    };
    v.as_object().cloned().unwrap_or_default()
}

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
    let deadline = Instant::now() + WAIT;
    for n in [&n1, &n2, &n3] {
        while n.ready_members().await < 3 || n.http("GET", "/readyz").await.0 != 200 {
            assert!(
                Instant::now() < deadline,
                "{} never saw the cluster: {}",
                n.id,
                n.logs()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let mut nodes = vec![&n1, &n2, &n3];

    // Ann creates the room on n1 (its host); Bob joins from n2, Cy from n3.
    let mut players = vec![
        Player::join(&n1, "ann").await,
        Player::join(&n2, "bob").await,
        Player::join(&n3, "cy").await,
    ];
    let room = players[0]
        .client
        .create_room(
            "eights",
            json!({"seats": 4, "hand": 5}).as_object().cloned().unwrap(),
        )
        .await
        .unwrap();
    assert!(room.as_str().starts_with("n1."), "{room}");
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
        .create_room("eights", json!({"seats": 2}).as_object().cloned().unwrap())
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
        p.pump(&nodes, |p| !p.hand.is_empty() && p.turn.is_some())
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
        let turn = players[0].turn.clone().expect("someone's turn");
        for p in &players {
            assert_eq!(p.turn.as_ref(), Some(&turn), "players disagree on the turn");
            assert_eq!((p.top, p.suit), (players[0].top, players[0].suit));
        }
        // No card in two hands.
        let held: usize = players.iter().map(|p| p.hand.len()).sum();
        let union: BTreeSet<Card> = players
            .iter()
            .flat_map(|p| p.hand.iter().copied())
            .collect();
        assert_eq!(held, union.len(), "a card is in two hands");

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
                    let pid = nodes[0].child.id();
                    Command::new("kill")
                        .args(["-9", &pid.to_string()])
                        .status()
                        .unwrap();
                }
            }
            nodes.remove(0);
        }

        let actor = players.iter().position(|p| p.id == turn).unwrap();
        let choice = players[actor].choose();
        let sent = players[actor]
            .client
            .request(Request::Input {
                data: JsonObject::from_map(&move_json(&choice)),
                seq: None,
            })
            .await;
        match sent {
            Ok(_) => {
                moves += 1;
                for p in &mut players {
                    let before = turn.clone();
                    p.pump(&nodes, move |p| {
                        p.winner.is_some() || p.turn.as_ref().is_some_and(|t| *t != before)
                    })
                    .await;
                }
            }
            // The actor's node went away under the request: it resumes, and the room's state says
            // whether the move was made; the others catch up to that.
            Err(ClientError::Closed) => {
                let seen = players[actor].resyncs.len();
                players[actor]
                    .pump(&nodes, |p| p.resyncs.len() > seen)
                    .await;
                let v = players[actor].version;
                for p in &mut players {
                    p.pump(&nodes, |p| p.version >= v).await;
                }
            }
            Err(e) => panic!(
                "move {moves}: {turn}: {choice:?} refused: {e}\n{}",
                n2.logs()
            ),
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
