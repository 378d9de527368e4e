//! The soak's players: realtime (arena) rooms whose players send inputs and watch their
//! acknowledgements, and players that queue, get matched, leave and queue again. Every player
//! reconnects at once when its connection ends, with its resume token, to the next node, as real
//! clients do, and records what it saw for the checker.

// Record types: each field is named for what it holds, as report.json shows it.
#![allow(missing_docs)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{Value, json};
use warren_client::Frame;

use super::now_us;
use anyhow::Context as _;

use crate::net::{ConnectError, Sources, Target, Ws, connect, guest};

/// What every player shares: the nodes players may connect to (the harness keeps it current), and
/// the end of the round.
pub struct Live {
    /// Nodes with a process (a node killed is taken out before the kill; a restarted or added
    /// node is put in once it is ready).
    pub nodes: Mutex<Vec<(String, SocketAddr)>>,
    /// Set when the round ends: players leave their rooms and close.
    pub stop: AtomicBool,
    /// Spreads connections over the nodes.
    next: AtomicU64,
}

impl Live {
    /// Players of `nodes`.
    pub fn new(nodes: Vec<(String, SocketAddr)>) -> Arc<Live> {
        Arc::new(Live {
            nodes: Mutex::new(nodes),
            stop: AtomicBool::new(false),
            next: AtomicU64::new(0),
        })
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    fn nodes(&self) -> Vec<(String, SocketAddr)> {
        self.nodes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn pick(&self) -> u64 {
        self.next.fetch_add(1, Ordering::Relaxed)
    }
}

/// A connection lost, and how the player got back.
#[derive(Clone, Debug, Serialize)]
pub struct Loss {
    /// When (µs since the Unix epoch).
    pub at_us: i64,
    /// Close code (0: no close frame, 1006).
    pub code: u16,
    /// The node it was connected to.
    pub node: String,
    /// When its room's `room_state` arrived on a new connection (a queueing player: when it was
    /// connected again), in ms after the loss; `None`: never (within the round).
    pub seated_after_ms: Option<f64>,
    /// The new connection's `welcome`: resumed, recovering.
    pub resumed: bool,
    pub recovering: bool,
}

/// Acknowledged inputs that a later `state` no longer counted: the room went back.
#[derive(Clone, Debug, Serialize)]
pub struct Regression {
    /// When it was seen (µs since the Unix epoch).
    pub at_us: i64,
    /// The highest `ack` seen before, and the one now.
    pub acked: u64,
    pub now: u64,
    /// The room's tick before and now.
    pub tick_before: u64,
    pub tick_now: u64,
}

/// What one realtime player saw.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ArenaLog {
    pub player: String,
    pub room: String,
    /// Inputs sent, and the highest acknowledged.
    pub sent: u64,
    pub acked: u64,
    pub states: u64,
    pub losses: Vec<Loss>,
    pub regressions: Vec<Regression>,
    /// Longest time between two `state`s of its room, in ms.
    pub longest_pause_ms: f64,
    /// The seat is gone (`recovery_done` with no room, or an error saying so).
    pub seat_lost: Option<String>,
    /// Could not reconnect for 30 s, or could not leave at the end.
    pub failed: Option<String>,
    /// Error codes pushed or answered.
    pub errors: Vec<String>,
}

/// One `match_found`.
#[derive(Clone, Debug, Serialize)]
pub struct Matched {
    pub player: String,
    pub ticket: String,
    pub room: String,
    pub at_us: i64,
}

/// What one queueing player saw.
#[derive(Clone, Debug, Default, Serialize)]
pub struct QueueLog {
    pub player: String,
    pub queued: u64,
    pub matches: Vec<Matched>,
    pub losses: Vec<Loss>,
    /// Tickets lost with a connection (queued again after reconnecting).
    pub requeued: u64,
    pub failed: Option<String>,
    pub errors: Vec<String>,
}

/// A player's connection and what it needs to get it back.
struct Client {
    live: Arc<Live>,
    name: String,
    token: String,
    resume: String,
    ws: Option<Ws>,
    node: String,
    rid: u64,
}

/// What ended a read.
enum Read {
    Msg(Value),
    Closed(u16),
}

impl Client {
    async fn new(live: &Arc<Live>, name: String) -> anyhow::Result<Client> {
        let mut c = Client {
            live: live.clone(),
            name,
            token: String::new(),
            resume: String::new(),
            ws: None,
            node: String::new(),
            rid: 0,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while c.token.is_empty() {
            let nodes = c.live.nodes();
            let n = nodes[c.live.pick() as usize % nodes.len()].1;
            match guest(n, &c.name).await {
                Ok(t) => c.token = t,
                Err(e) if Instant::now() > deadline => return Err(e),
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        c.open().await?;
        Ok(c)
    }

    /// Connects (with the resume token once there is one) to the next node that takes it,
    /// trying them in turn, for at most 30 s; returns the `welcome`.
    async fn open(&mut self) -> anyhow::Result<Value> {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut last = String::new();
        let mut tried = 0;
        while Instant::now() < deadline {
            let nodes = self.live.nodes();
            let (id, addr) = nodes[self.live.pick() as usize % nodes.len()].clone();
            let mut q = format!("token={}", self.token);
            if !self.resume.is_empty() {
                q += &format!("&resume={}", self.resume);
            }
            match connect(&Target { addr }, &Sources::default(), 0, &q).await {
                Ok((ws, welcome)) => {
                    self.resume = welcome["resume"].as_str().unwrap_or_default().to_owned();
                    self.ws = Some(ws);
                    self.node = id;
                    return Ok(welcome);
                }
                Err(ConnectError::Refused(s)) => last = format!("{id}: HTTP {s}"),
                Err(ConnectError::Failed(e)) => last = format!("{id}: {e}"),
            }
            // Every node in turn at once; a pause only between rounds of them.
            tried += 1;
            if tried % nodes.len() == 0 {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        anyhow::bail!(
            "{}: no node took the connection for 30 s ({last})",
            self.name
        )
    }

    async fn send(&mut self, v: &Value) -> bool {
        match self.ws.as_mut() {
            Some(ws) => ws.send_text(v.to_string()).await.is_ok(),
            None => false,
        }
    }

    async fn request(&mut self, mut v: Value) -> Option<u64> {
        self.rid += 1;
        v["rid"] = json!(self.rid);
        self.send(&v).await.then_some(self.rid)
    }

    async fn read(&mut self) -> Read {
        let Some(ws) = self.ws.as_mut() else {
            return Read::Closed(0);
        };
        match ws.next().await {
            Frame::Text(t) => Read::Msg(serde_json::from_str(&t).unwrap_or(Value::Null)),
            Frame::Closed { code, .. } => {
                self.ws = None;
                Read::Closed(code.unwrap_or(1005))
            }
            Frame::Ended => {
                self.ws = None;
                Read::Closed(1006)
            }
        }
    }

    /// Reads until the reply to `rid`, within `wait`.
    async fn reply(&mut self, rid: u64, wait: Duration) -> Option<Value> {
        let until = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(until, self.read()).await {
                Ok(Read::Msg(v)) if v["rid"] == rid => return Some(v),
                Ok(Read::Msg(_)) => {}
                Ok(Read::Closed(_)) | Err(_) => return None,
            }
        }
    }

    /// Forgets the connection (the next `open` reconnects with the resume token).
    fn drop_connection(&mut self) {
        self.ws = None;
    }

    async fn close(&mut self) {
        if let Some(mut ws) = self.ws.take() {
            ws.close("done").await;
            let _ = tokio::time::timeout(Duration::from_secs(2), async {
                while let Frame::Text(_) = ws.next().await {}
            })
            .await;
        }
    }
}

fn loss(code: u16, node: &str) -> Loss {
    Loss {
        at_us: now_us(),
        code,
        node: node.to_owned(),
        seated_after_ms: None,
        resumed: false,
        recovering: false,
    }
}

/// One arena room of `seats` players (ticking at `tick_hz`, each sending `hz` inputs a second)
/// until the round ends; then each leaves and closes. Returns what each player saw.
pub async fn arena_room(
    live: Arc<Live>,
    name: String,
    seats: usize,
    tick_hz: u32,
    hz: u32,
) -> Vec<ArenaLog> {
    let mut players = Vec::new();
    let mut room = String::new();
    for s in 0..seats {
        let pname = format!("{name}s{s}");
        let req = if s == 0 {
            json!({"type":"create_room","game":"arena",
                   "params":{"tick_hz":tick_hz,"seats":seats}})
        } else {
            json!({"type":"join_room","room":room})
        };
        // A fault may hit the node the player asked: ask again (another node), as the same
        // player on its session (a new identity would find its own earlier seat taken).
        let mut c = match Client::new(&live, pname.clone()).await {
            Ok(c) => c,
            Err(e) => return unseated(players, pname, room, &e).await,
        };
        let mut tries = 0;
        loop {
            tries += 1;
            match sit(&mut c, &req).await {
                Ok(r) => {
                    if s == 0 {
                        room = r;
                    }
                    break;
                }
                Err(e) if tries >= 5 || live.stopped() => {
                    players.push(c);
                    return unseated(players, pname, room, &e).await;
                }
                Err(_) => {
                    c.drop_connection();
                    tokio::time::sleep(Duration::from_millis(300)).await;
                }
            }
        }
        players.push(c);
    }
    let tasks: Vec<_> = players
        .into_iter()
        .map(|c| tokio::spawn(arena_player(c, room.clone(), hz)))
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        if let Ok(l) = t.await {
            out.push(l);
        }
    }
    out
}

/// A new player, connected, that sent `req` (`create_room` or `join_room`) and got `ok`.
/// The log of a room whose player `pname` could not sit down; the players seated so far leave.
async fn unseated(
    players: Vec<Client>,
    pname: String,
    room: String,
    e: &anyhow::Error,
) -> Vec<ArenaLog> {
    for mut c in players {
        Client::close(&mut c).await;
    }
    vec![ArenaLog {
        player: pname,
        room,
        failed: Some(format!("could not sit down: {e}")),
        ..ArenaLog::default()
    }]
}

/// Sends `req` (`create_room` or `join_room`) on `c`, reconnecting first (with its resume token)
/// if its connection is gone; returns the room it sits in. A request whose reply was lost (its
/// node closed the connection) may have seated the player: then the resumed `welcome` is followed
/// by that room's `room_state`, and a `create_room` sent again is answered `already_in_room`.
async fn sit(c: &mut Client, req: &Value) -> anyhow::Result<String> {
    if c.ws.is_none() {
        c.open().await?;
    }
    let rid = c.request(req.clone()).await.context("send")?;
    let until = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut seated_in: Option<String> = None;
    let r = loop {
        match tokio::time::timeout_at(until, c.read()).await {
            Ok(Read::Msg(v)) if v["rid"] == rid => break v,
            Ok(Read::Msg(v)) if v["type"] == "room_state" => {
                seated_in = v["room"].as_str().map(str::to_owned);
            }
            Ok(Read::Msg(_)) => {}
            Ok(Read::Closed(code)) => anyhow::bail!("no reply: closed with {code}"),
            Err(_) => anyhow::bail!("no reply within 10 s"),
        }
    };
    match (r["type"].as_str(), r["code"].as_str(), seated_in) {
        (Some("ok"), _, _) => Ok(r["room"].as_str().unwrap_or_default().to_owned()),
        (_, Some("already_in_room"), Some(room)) => Ok(room),
        _ => anyhow::bail!("{r}"),
    }
}

async fn arena_player(mut c: Client, room: String, hz: u32) -> ArenaLog {
    let mut log = ArenaLog {
        player: c.name.clone(),
        room: room.clone(),
        ..ArenaLog::default()
    };
    let period = Duration::from_secs_f64(1.0 / f64::from(hz.max(1)));
    let mut every = tokio::time::interval(period);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let (mut acked, mut tick) = (0u64, 0u64);
    let mut last_state: Option<Instant> = None;
    // The loss being recovered from: its index in `log.losses`, and when it happened.
    let mut lost: Option<(usize, Instant)> = None;
    while !c.live.stopped() {
        if c.ws.is_none() {
            match c.open().await {
                Ok(w) => {
                    if let Some((i, _)) = lost {
                        log.losses[i].resumed = w["resumed"] == true;
                        log.losses[i].recovering = w["recovering"] == true;
                    }
                }
                Err(e) => {
                    log.failed = Some(e.to_string());
                    return log;
                }
            }
        }
        tokio::select! {
            _ = every.tick() => {
                let m = json!({"type":"input","seq":log.sent + 1,"data":{"dx":if (log.sent / 50).is_multiple_of(2) {1} else {-1},"dy":0}});
                if c.send(&m).await {
                    log.sent += 1;
                }
            }
            got = c.read() => match got {
                Read::Msg(v) if v["type"] == "state" && v["room"] == room.as_str() => {
                    log.states += 1;
                    if let Some(t) = last_state {
                        log.longest_pause_ms = log.longest_pause_ms.max(t.elapsed().as_secs_f64() * 1e3);
                    }
                    last_state = Some(Instant::now());
                    let (a, k) = (v["ack"].as_u64().unwrap_or(0), v["tick"].as_u64().unwrap_or(0));
                    if a < acked {
                        // Counted once: from here the room counts on from where it went back to.
                        log.regressions.push(Regression { at_us: now_us(), acked, now: a, tick_before: tick, tick_now: k });
                        (acked, tick) = (a, k);
                    }
                    acked = acked.max(a);
                    tick = tick.max(k);
                    log.acked = acked;
                }
                Read::Msg(v) if v["type"] == "room_state" && v["room"] == room.as_str() => {
                    if let Some((i, at)) = lost.take() {
                        log.losses[i].seated_after_ms = Some(at.elapsed().as_secs_f64() * 1e3);
                    }
                    // A restored room counts again from its snapshot.
                    last_state = None;
                }
                Read::Msg(v) if v["type"] == "recovery_done" && v["room"].is_null() => {
                    log.seat_lost = Some(format!("recovery_done without a room ({})", c.node));
                }
                Read::Msg(v) if v["type"] == "error" => {
                    log.errors.push(v["code"].as_str().unwrap_or("?").to_owned());
                }
                Read::Msg(_) => {}
                Read::Closed(code) => {
                    if lost.is_none() {
                        log.losses.push(loss(code, &c.node));
                        lost = Some((log.losses.len() - 1, Instant::now()));
                    }
                    last_state = None;
                }
            },
        }
    }
    // The round is over: leave the room (on a connection that works) and close.
    for _ in 0..3 {
        if c.ws.is_none() && c.open().await.is_err() {
            break;
        }
        if let Some(rid) = c.request(json!({"type":"leave_room"})).await
            && let Some(r) = c.reply(rid, Duration::from_secs(10)).await
        {
            if r["type"] != "ok" {
                log.failed = Some(format!("leave_room: {r}"));
            }
            c.close().await;
            return log;
        }
    }
    log.failed = Some("could not leave the room at the end".into());
    c.close().await;
    log
}

/// Where a queueing player stands.
#[derive(Clone, Debug, PartialEq)]
enum Stand {
    /// Not queued: queue.
    Idle,
    /// A `queue` is on its way.
    Asking(u64),
    Queued,
    /// Matched into a room: leave it.
    InRoom,
    Leaving(u64),
}

/// A player that queues for dice in mode `mode`, leaves the room it is matched into, and queues
/// again, until the round ends.
pub async fn queuer(live: Arc<Live>, name: String, mode: String) -> QueueLog {
    let mut log = QueueLog {
        player: name.clone(),
        ..QueueLog::default()
    };
    let mut c = match Client::new(&live, name).await {
        Ok(c) => c,
        Err(e) => {
            log.failed = Some(e.to_string());
            return log;
        }
    };
    let mut stand = Stand::Idle;
    let mut lost: Option<(usize, Instant)> = None;
    while !live.stopped() {
        if c.ws.is_none() {
            match c.open().await {
                Ok(w) => {
                    if let Some((i, at)) = lost.take() {
                        log.losses[i].resumed = w["resumed"] == true;
                        log.losses[i].seated_after_ms = Some(at.elapsed().as_secs_f64() * 1e3);
                    }
                }
                Err(e) => {
                    log.failed = Some(e.to_string());
                    return log;
                }
            }
            // A queued ticket does not outlive its connection's session (PROTOCOL.md): queue
            // again. Answers to requests of the old connection are gone too.
            stand = match stand {
                Stand::Queued | Stand::Asking(_) => {
                    log.requeued += 1;
                    Stand::Idle
                }
                Stand::Leaving(_) => Stand::InRoom,
                s => s,
            };
        }
        match stand {
            Stand::Idle => {
                if let Some(rid) = c
                    .request(json!({"type":"queue","game":"dice","mode":mode}))
                    .await
                {
                    stand = Stand::Asking(rid);
                }
            }
            Stand::InRoom => {
                if let Some(rid) = c.request(json!({"type":"leave_room"})).await {
                    stand = Stand::Leaving(rid);
                }
            }
            _ => {}
        }
        let got = match tokio::time::timeout(Duration::from_millis(500), c.read()).await {
            Ok(g) => g,
            Err(_) => continue,
        };
        match got {
            Read::Msg(v) if v["type"] == "match_found" => {
                log.matches.push(Matched {
                    player: c.name.clone(),
                    ticket: v["ticket"].as_str().unwrap_or_default().to_owned(),
                    room: v["room"].as_str().unwrap_or_default().to_owned(),
                    at_us: now_us(),
                });
                if !matches!(stand, Stand::Leaving(_)) {
                    stand = Stand::InRoom;
                }
            }
            Read::Msg(v) if v["rid"].is_u64() => {
                let rid = v["rid"].as_u64().unwrap_or(0);
                let ok = v["type"] == "ok";
                let code = v["code"].as_str().unwrap_or_default();
                if !ok {
                    log.errors.push(code.to_owned());
                }
                stand = match (&stand, ok, code) {
                    (Stand::Asking(r), true, _) if *r == rid => {
                        log.queued += 1;
                        Stand::Queued
                    }
                    (Stand::Asking(r), false, "already_queued") if *r == rid => Stand::Queued,
                    (Stand::Asking(r), false, "already_in_room") if *r == rid => Stand::InRoom,
                    (Stand::Asking(r), false, _) if *r == rid => {
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        Stand::Idle
                    }
                    (Stand::Leaving(r), _, _) if *r == rid => {
                        // A player looks at the result before queueing again.
                        tokio::time::sleep(Duration::from_millis(250)).await;
                        Stand::Idle
                    }
                    (s, _, _) => s.clone(),
                };
            }
            Read::Msg(v) if v["type"] == "error" => {
                log.errors
                    .push(v["code"].as_str().unwrap_or("?").to_owned());
            }
            Read::Msg(_) => {}
            Read::Closed(code) => {
                if lost.is_none() {
                    log.losses.push(loss(code, &c.node));
                    lost = Some((log.losses.len() - 1, Instant::now()));
                }
            }
        }
    }
    // The round is over: out of the queue or the room, then close.
    for _ in 0..3 {
        if c.ws.is_none() && c.open().await.is_err() {
            break;
        }
        let Some(rid) = c.request(json!({"type":"leave_room"})).await else {
            continue;
        };
        let Some(r) = c.reply(rid, Duration::from_secs(10)).await else {
            continue;
        };
        if (r["type"] == "ok" || r["code"] == "not_in_room")
            && let Some(rid) = c.request(json!({"type":"unqueue"})).await
            && c.reply(rid, Duration::from_secs(10)).await.is_some()
        {
            c.close().await;
            return log;
        }
    }
    log.failed = Some("could not leave the queue and the room at the end".into());
    c.close().await;
    log
}
