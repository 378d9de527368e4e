//! The harness of the example's end-to-end tests: `eights-node` processes, and players that
//! play through the typed client and check every frame they receive for cards they must not see.

#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use warren_client::{Client, ClientError, ErrorCode, Push, Pushes, RoomId, ServerMessage};
use warren_eights::{Card, Event, Move, Phase, Suit, View};
use warren_protocol::PlayerId;

/// How long anything may take before a test gives up.
pub const WAIT: Duration = Duration::from_secs(20);

/// HTTP addresses of the nodes players may resume on.
pub type Live = Arc<Mutex<Vec<String>>>;

/// One `eights-node` process.
pub struct Node {
    pub child: Child,
    pub id: String,
    pub http: String,
    pub cluster: String,
    pub log: PathBuf,
}

impl Node {
    pub async fn start(bin: &str, id: &str, seeds: &str) -> Node {
        Self::start_at(bin, id, seeds, "127.0.0.1:0").await
    }

    /// A node whose cluster listener is on `cluster` (a restarted node keeps its address).
    pub async fn start_at(bin: &str, id: &str, seeds: &str, cluster: &str) -> Node {
        static STARTED: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = STARTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let log = std::env::temp_dir().join(format!("eights-{}-{n}-{id}.log", std::process::id()));
        let child = Command::new(bin)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("WARREN_NODE__ID", id)
            .env("WARREN_HTTP__LISTEN", "127.0.0.1:0")
            .env("WARREN_HTTP__WORKERS", "2")
            .env("WARREN_CLUSTER__LISTEN", cluster)
            .env("WARREN_CLUSTER__SEEDS", seeds)
            .env("WARREN_CLUSTER__COOKIE", "eights-cluster-cookie-0123456789")
            .env("WARREN_CLUSTER__FAILURE_TIMEOUT_MS", "1000")
            .env(
                "WARREN_AUTH__JWT_SECRET",
                "eights-test-secret-0123456789abcdef",
            )
            .env(
                "WARREN_LOG__LEVEL",
                std::env::var("EIGHTS_LOG")
                    .unwrap_or_else(|_| "warn,warren=info,warren_actors=info".into()),
            )
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

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// One HTTP/1.1 request; the status and body.
    pub async fn http(&self, method: &str, path: &str) -> (u16, String) {
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
    pub async fn ready_members(&self) -> usize {
        let (_, body) = self.http("GET", "/v1/cluster").await;
        let v: Value = serde_json::from_str(&body).unwrap_or_default();
        v["nodes"]
            .as_array()
            .map_or(0, |n| n.iter().filter(|n| n["state"] == "ready").count())
    }

    /// The `version` of `room`'s replica here, if this node keeps one.
    pub async fn replica_version(&self, room: &RoomId) -> Option<u64> {
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
pub struct Player {
    pub id: PlayerId,
    pub token: String,
    pub client: Client,
    pub pushes: Pushes,
    /// The node it is connected to.
    pub at: String,
    /// The room being played; messages of any other are ignored.
    pub room: Option<RoomId>,
    pub version: u64,
    pub order: Vec<PlayerId>,
    pub turn: Option<PlayerId>,
    pub hand: BTreeSet<Card>,
    pub top: Option<Card>,
    pub suit: Option<Suit>,
    pub winner: Option<PlayerId>,
    /// The moves `game_over` counted (version 2 of the game counts them; version 1 does not).
    pub moves_counted: Option<u32>,
    /// Whether a `recovery_done` without a room fails the test while the player is in a game.
    /// A player that joins or creates a room during a seat search ends it that way too
    /// (PROTOCOL.md: "the player moved on first"), so a test whose players do is not strict.
    pub strict_recovery: bool,
    /// Its last request went unanswered with the connection: the room may still have applied
    /// it, and its event may still be on its way.
    pub in_doubt: bool,
    /// The last frames, for a failure's message.
    pub recent: Vec<String>,
    /// Frames checked for cards.
    pub frames: u64,
    /// `room_state`s received after a reconnection, and whether each showed the hand held before.
    pub resyncs: Vec<bool>,
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
    pub async fn join(node: &Node, name: &str) -> Player {
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
            room: None,
            version: 0,
            order: Vec::new(),
            turn: None,
            hand: BTreeSet::new(),
            top: None,
            suit: None,
            winner: None,
            moves_counted: None,
            strict_recovery: true,
            in_doubt: false,
            recent: Vec::new(),
            frames: 0,
            resyncs: Vec::new(),
        }
    }

    /// Forgets the last game: the next is in `room`.
    pub fn play_in(&mut self, room: &RoomId) {
        self.room = Some(room.clone());
        self.version = 0;
        self.order.clear();
        self.turn = None;
        self.hand.clear();
        self.top = None;
        self.suit = None;
        self.winner = None;
        self.moves_counted = None;
    }

    fn next_after(&self, player: &PlayerId) -> Option<PlayerId> {
        let i = self.order.iter().position(|p| p == player)?;
        Some(self.order[(i + 1) % self.order.len()].clone())
    }

    /// Takes one server message in, checking it on the way: no card this player must not see,
    /// versions that only go up, no error.
    fn absorb(&mut self, msg: ServerMessage) {
        let room = match &msg {
            ServerMessage::RoomState { room, .. }
            | ServerMessage::RoomEvent { room, .. }
            | ServerMessage::RoomMessage { room, .. } => Some(room),
            _ => None,
        };
        if room.is_some() && room != self.room.as_ref() {
            return;
        }
        self.frames += 1;
        self.recent
            .push(format!("{msg:?}").chars().take(220).collect());
        if self.recent.len() > 10 {
            self.recent.remove(0);
        }
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
                // A resync at the version this player had shows the hand it held; one after a gap
                // (events it missed while its connection moved) may show moves made meanwhile.
                if self.version > 0 && view.phase == Phase::Playing {
                    self.resyncs
                        .push(*version > self.version || hand == self.hand);
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
                        self.winner = Some(winner);
                        self.moves_counted = moves;
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
                // A player seated in a game gets its seat back; one between games has none.
                assert!(
                    room.is_some() || self.room.is_none() || !self.strict_recovery,
                    "{}: the seat was not found after its node went away",
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

    /// Reads pushes until `done` holds; a connection that ends is resumed on another live node.
    pub async fn pump(&mut self, live: &Live, done: impl Fn(&Player) -> bool) {
        let deadline = Instant::now() + WAIT;
        while !done(self) {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.pushes.next()).await {
                Ok(Some(Push::Message(m))) => self.absorb(m),
                Ok(Some(Push::Closed { .. }) | None) => self.resume(live).await,
                Err(_) => panic!(
                    "{}: waited {WAIT:?} in vain, at {} in {:?} v{} turn {:?} hand {:?} winner {:?}; last frames {:#?}",
                    self.id,
                    self.at,
                    self.room,
                    self.version,
                    self.turn,
                    self.hand,
                    self.winner,
                    self.recent
                ),
            }
        }
    }

    /// Reconnects with the resume token to a live node other than the one it was on (retrying
    /// while nodes come and go).
    async fn resume(&mut self, live: &Live) {
        let deadline = Instant::now() + WAIT;
        loop {
            let to = live
                .lock()
                .unwrap()
                .iter()
                .find(|n| **n != self.at)
                .cloned();
            if let Some(to) = to {
                match self.resume_on(&to).await {
                    Ok(()) => return,
                    Err(e) if Instant::now() < deadline => {
                        eprintln!("{}: resume on {to}: {e}; retrying", self.id);
                    }
                    Err(e) => panic!("{}: resume on {to}: {e}", self.id),
                }
            }
            assert!(
                Instant::now() < deadline,
                "{}: no node to resume on",
                self.id
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn resume_on(&mut self, to: &str) -> Result<(), ClientError> {
        let resume = self.client.resume_token().to_owned();
        let (client, pushes) =
            warren_client::connect(&format!("ws://{to}"), &self.token, Some(&resume)).await?;
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
        self.at = to.to_owned();
        Ok(())
    }

    /// The move this player makes: a playable card (an 8 last, naming its most held suit), or a draw.
    pub fn choose(&self) -> Move {
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
    pub fn http_url(&self) -> String {
        format!("ws://{}", self.http)
    }
}

/// A move as `input` data.
pub fn move_json(m: &Move) -> Map<String, Value> {
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

/// The rules' `json!` object helper for params.
pub fn obj(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

/// The player whose turn it is makes its move (see [`Player::choose`]), and everyone reads until
/// they have seen it. Checks first that all agree on the turn and the pile, and that no card is in
/// two hands. The time the move's request took, or `None` when the player's connection went away
/// under it (it resumed, and everyone caught up with whatever the room did).
pub async fn one_move(players: &mut [Player], live: &Live) -> Option<Duration> {
    let turn = players[0].turn.clone().expect("someone's turn");
    for p in players.iter() {
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

    let actor = players.iter().position(|p| p.id == turn).unwrap();
    let choice = players[actor].choose();
    let sent_at = Instant::now();
    let request = players[actor]
        .client
        .request(warren_client::Request::Input {
            data: warren_protocol::JsonObject::from_map(&move_json(&choice)),
            seq: None,
        });
    let sent = tokio::time::timeout(WAIT, request)
        .await
        .unwrap_or_else(|_| {
            for p in players.iter() {
                eprintln!(
                    "{} at {} v{} turn {:?}: {:#?}",
                    p.id, p.at, p.version, p.turn, p.recent
                );
            }
            panic!("{turn}: {choice:?} unanswered for {WAIT:?}")
        });
    let took = sent_at.elapsed();
    let in_doubt = std::mem::take(&mut players[actor].in_doubt);
    match sent {
        Ok(_) => {
            for p in players.iter_mut() {
                let before = turn.clone();
                p.pump(live, move |p| {
                    p.winner.is_some() || p.turn.as_ref().is_some_and(|t| *t != before)
                })
                .await;
            }
            Some(took)
        }
        // The actor's node went away under the request: it resumes, and the room's state says
        // whether the move was made; the others catch up to that.
        Err(ClientError::Closed) => {
            players[actor].in_doubt = true;
            let seen = players[actor].resyncs.len();
            players[actor].pump(live, |p| p.resyncs.len() > seen).await;
            let v = players[actor].version;
            for p in players.iter_mut() {
                p.pump(live, |p| p.version >= v).await;
            }
            None
        }
        // The move lost with the connection had been made after all (the room answers this one
        // as not the player's turn any more): its event comes, and the turn moves on.
        Err(ClientError::Refused {
            code: ErrorCode::NotYourTurn,
            ..
        }) if in_doubt => {
            for p in players.iter_mut() {
                let before = turn.clone();
                p.pump(live, move |p| {
                    p.winner.is_some() || p.turn.as_ref().is_some_and(|t| *t != before)
                })
                .await;
            }
            None
        }
        Err(e) => {
            for p in players.iter() {
                eprintln!(
                    "{} at {} v{} turn {:?}: {:#?}",
                    p.id, p.at, p.version, p.turn, p.recent
                );
            }
            panic!("{turn}: {choice:?} refused: {e:?}")
        }
    }
}

/// Waits until every node answers `/readyz` and sees all of `nodes` ready.
pub async fn cluster_ready(nodes: &[&Node]) {
    let deadline = Instant::now() + WAIT;
    for n in nodes {
        while n.ready_members().await < nodes.len() || n.http("GET", "/readyz").await.0 != 200 {
            assert!(
                Instant::now() < deadline,
                "{} never saw the cluster ready: {}",
                n.id,
                n.logs()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
