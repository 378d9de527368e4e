//! The simulated players of each scenario.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::player::random_fraction;
pub use crate::player::{Got, Player, SEND_BURST, Shared};
use crate::stats::Recorder;

/// `idle`: connects and does nothing but answer the server's pings until the run ends.
pub async fn idle(shared: Arc<Shared>, i: usize) {
    let Some(mut p) = Player::join(&shared, format!("{}i{i}", shared.prefix)).await else {
        return;
    };
    while !shared.stopped() {
        match tokio::time::timeout(Duration::from_millis(500), p.recv()).await {
            Ok(Got::Closed(_)) => {
                if !p.reconnect().await {
                    return;
                }
            }
            Ok(Got::Msg(_)) | Err(_) => {}
        }
    }
    p.close().await;
}

/// How the arena scenario plays.
#[derive(Clone, Copy, Debug)]
pub struct Arena {
    /// Players per room.
    pub seats: usize,
    /// Inputs per second per player.
    pub hz: u32,
    /// The rooms' tick rate.
    pub tick_hz: u32,
}

/// `arena`: one room of `seats` players; each sends inputs at `hz` and measures input→ack.
pub async fn arena(shared: Arc<Shared>, room_no: usize, cfg: Arena) {
    // Rooms of a real server are created at any time, so their ticks fall anywhere in the tick
    // period: start each room at a random point of it rather than all in step.
    let tick = Duration::from_secs_f64(1.0 / f64::from(cfg.tick_hz.max(1)));
    tokio::time::sleep(tick.mul_f64(random_fraction())).await;
    let mut players = Vec::new();
    let mut room = String::new();
    for s in 0..cfg.seats {
        let Some(mut p) = Player::join(&shared, format!("{}a{room_no}s{s}", shared.prefix)).await
        else {
            return;
        };
        let req = if s == 0 {
            json!({"type":"create_room","game":"arena",
                   "params":{"tick_hz":cfg.tick_hz,"seats":cfg.seats.max(1)}})
        } else {
            json!({"type":"join_room","room":room})
        };
        let Some(rid) = p.request(req).await else {
            return;
        };
        match p.reply(rid).await {
            Some(v) if v["type"] == "ok" => {
                if s == 0 {
                    room = v["room"].as_str().unwrap_or_default().to_owned();
                }
            }
            _ => return,
        }
        players.push(p);
    }
    let tasks: Vec<_> = players
        .into_iter()
        .map(|p| {
            tokio::spawn(arena_player(
                shared.clone(),
                p,
                room.clone(),
                cfg.hz,
                cfg.tick_hz,
            ))
        })
        .collect();
    for t in tasks {
        let _ = t.await;
    }
}

/// Splits a realtime player's input→ack into the wait for the room's tick and what follows the
/// tick. A room ticks on a fixed schedule, tick `k` at `T0 + k·P`, so over a stretch between two
/// `room_state`s (a restart or a move starts a new schedule) `T0` is the earliest arrival of any
/// tick `k` less `k·P`; an acknowledgement's share after its tick is its arrival less `T0 + k·P`.
/// Samples wait until the stretch ends (or a few thousand are held) so that every one is measured
/// against the earliest arrival seen.
struct TickClock {
    period: f64,
    base: Instant,
    t0: f64,
    /// Per acknowledged input: (arrival − k·P, sent − k·P), in seconds since `base`.
    held: Vec<(f64, f64)>,
}

impl TickClock {
    fn new(tick_hz: u32) -> Self {
        Self {
            period: 1.0 / f64::from(tick_hz.max(1)),
            base: Instant::now(),
            t0: f64::INFINITY,
            held: Vec::new(),
        }
    }

    /// Tick `k` arrived at `at`; returns its arrival less `k·P`.
    fn tick(&mut self, k: u64, at: Instant) -> f64 {
        let off = at.duration_since(self.base).as_secs_f64() - k as f64 * self.period;
        self.t0 = self.t0.min(off);
        off
    }

    /// An input sent at `sent` was acknowledged by tick `k`, which arrived at `off` (from
    /// [`TickClock::tick`]).
    fn acked(&mut self, rec: &Recorder, k: u64, off: f64, sent: Instant) {
        let sent = sent.duration_since(self.base).as_secs_f64() - k as f64 * self.period;
        self.held.push((off, sent));
        if self.held.len() >= 4096 {
            self.flush(rec);
        }
    }

    fn flush(&mut self, rec: &Recorder) {
        for (off, sent) in self.held.drain(..) {
            rec.after_tick(Duration::from_secs_f64((off - self.t0).max(0.0)), 1);
            // The tick that applied it came later than the first one after it was sent.
            if self.t0 - sent > self.period + 0.001 {
                rec.missed_tick.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// A new schedule starts (the room was restarted or moved).
    fn resync(&mut self, rec: &Recorder) {
        self.flush(rec);
        self.t0 = f64::INFINITY;
    }
}

async fn arena_player(shared: Arc<Shared>, mut p: Player, room: String, hz: u32, tick_hz: u32) {
    let rec = shared.rec.clone();
    let mut clock = TickClock::new(tick_hz);
    // Real clients send at their own phase, not in step: each player starts at a random point of
    // its period, so the room sees inputs spread over its tick rather than in bursts.
    let period = Duration::from_secs_f64(1.0 / f64::from(hz.max(1)));
    let phase = period.mul_f64(random_fraction());
    let mut every = tokio::time::interval_at(tokio::time::Instant::now() + phase, period);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut pending: VecDeque<(u64, Instant)> = VecDeque::new();
    let mut seq = 0u64;
    let mut last_update = Instant::now();
    let mut dx = 1;
    // When the connection was lost, until the room's `room_state` arrives on a new one.
    let mut lost_at: Option<Instant> = None;
    while !shared.stopped() {
        // Inputs sent on a lost connection may or may not have arrived; an ack that covers them
        // later still counts them.
        if !p.connected() && !p.reconnect().await {
            return;
        }
        tokio::select! {
            _ = every.tick() => {
                seq += 1;
                // Alternate directions so avatars stay inside the field.
                if seq.is_multiple_of(50) { dx = -dx; }
                let m = json!({"type":"input","seq":seq,"data":{"dx":dx,"dy":0}});
                if p.send_now(&m).await {
                    rec.inputs.fetch_add(1, Ordering::Relaxed);
                    pending.push_back((seq, Instant::now()));
                }
            }
            got = p.recv() => match got {
                Got::Msg(v) if v["type"] == "state" && v["room"] == room.as_str() => {
                    rec.updates.fetch_add(1, Ordering::Relaxed);
                    rec.pause(last_update.elapsed());
                    last_update = Instant::now();
                    let ack = v["ack"].as_u64().unwrap_or(0);
                    let k = v["tick"].as_u64().unwrap_or(0);
                    let off = clock.tick(k, Instant::now());
                    while pending.front().is_some_and(|(s, _)| *s <= ack) {
                        if let Some((_, at)) = pending.pop_front() {
                            rec.latency(at.elapsed());
                            clock.acked(&rec, k, off, at);
                        }
                    }
                }
                Got::Msg(v) if v["type"] == "room_state" => {
                    clock.resync(&rec);
                    if v["room"] == room.as_str() && let Some(at) = lost_at.take() {
                        rec.seat_back(at.elapsed());
                    }
                }
                Got::Msg(_) => {}
                Got::Closed(_) => {
                    if lost_at.is_none() {
                        lost_at = Some(Instant::now());
                        rec.seats_lost.fetch_add(1, Ordering::Relaxed);
                    }
                }
            },
        }
    }
    clock.flush(&rec);
    p.close().await;
}

/// `dice`: two players play rounds to the end, round after round; the latency is roll→`ok`.
pub async fn dice(shared: Arc<Shared>, room_no: usize) {
    let mut a = match Player::join(&shared, format!("{}d{room_no}a", shared.prefix)).await {
        Some(p) => p,
        None => return,
    };
    let Some(rid) = a.request(json!({"type":"create_room","game":"dice"})).await else {
        return;
    };
    let room = match a.reply(rid).await {
        Some(v) if v["type"] == "ok" => v["room"].as_str().unwrap_or_default().to_owned(),
        _ => return,
    };
    let Some(mut b) = Player::join(&shared, format!("{}d{room_no}b", shared.prefix)).await else {
        return;
    };
    let Some(rid) = b.request(json!({"type":"join_room","room":room})).await else {
        return;
    };
    if b.reply(rid).await.is_none_or(|v| v["type"] != "ok") {
        return;
    }
    let ids = [a.id.clone(), b.id.clone()];
    let mut ps = [a, b];
    let wait = Duration::from_secs(30);
    'rounds: while !shared.stopped() {
        for p in &mut ps {
            let Some(rid) = p.request(json!({"type":"ready"})).await else {
                break 'rounds;
            };
            if p.reply(rid).await.is_none() {
                break 'rounds;
            }
        }
        let Some(started) = ps[0].until(wait, |v| is_event(v, "round_started")).await else {
            break;
        };
        let order: Vec<String> = started["event"]["order"]
            .as_array()
            .map(|o| {
                o.iter()
                    .filter_map(|p| p.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        for who in &order {
            let i = usize::from(ids[1] == *who);
            let t0 = Instant::now();
            let Some(rid) = ps[i]
                .request(json!({"type":"input","data":{"action":"roll"}}))
                .await
            else {
                break 'rounds;
            };
            shared.rec.inputs.fetch_add(1, Ordering::Relaxed);
            match ps[i].reply(rid).await {
                Some(v) if v["type"] == "ok" => shared.rec.latency(t0.elapsed()),
                Some(_) => {}
                None => break 'rounds,
            }
        }
        if ps[0]
            .until(wait, |v| is_event(v, "round_over"))
            .await
            .is_none()
        {
            break;
        }
        shared.rec.rounds.fetch_add(1, Ordering::Relaxed);
    }
    for p in &mut ps {
        p.close().await;
    }
}

fn is_event(v: &Value, kind: &str) -> bool {
    v["type"] == "room_event" && v["event"]["kind"] == kind
}

/// `matchmaking`: queues, waits for `match_found`, leaves the room, queues again.
pub async fn matchmaking(shared: Arc<Shared>, i: usize, mode: String) {
    let Some(mut p) = Player::join(&shared, format!("{}m{i}", shared.prefix)).await else {
        return;
    };
    while !shared.stopped() {
        let t0 = Instant::now();
        let queued = p
            .ask(json!({"type":"queue","game":"dice","mode":mode}))
            .await;
        if queued.is_none_or(|v| v["type"] != "ok") {
            break;
        }
        // A player whose partner never comes waits until the run ends.
        let found = loop {
            match tokio::time::timeout(Duration::from_millis(250), p.recv()).await {
                Ok(Got::Msg(v)) if v["type"] == "match_found" => break true,
                Ok(Got::Msg(_)) | Err(_) if !shared.stopped() => continue,
                _ => break false,
            }
        };
        if !found {
            break;
        }
        shared.rec.match_wait(t0.elapsed());
        if p.ask(json!({"type":"leave_room"})).await.is_none() {
            break;
        }
    }
    p.close().await;
}

/// `churn`: connect, create a room, play briefly, vanish, resume with the token, leave, close;
/// again and again with a new player each time.
pub async fn churn(shared: Arc<Shared>, i: usize) {
    let mut round = 0;
    while !shared.stopped() {
        round += 1;
        let Some(mut p) = Player::join(&shared, format!("{}c{i}r{round}", shared.prefix)).await
        else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        let t0 = Instant::now();
        let Some(rid) = p.request(json!({"type":"create_room","game":"dice"})).await else {
            continue;
        };
        shared.rec.inputs.fetch_add(1, Ordering::Relaxed);
        match p.reply(rid).await {
            Some(v) if v["type"] == "ok" => shared.rec.latency(t0.elapsed()),
            _ => {
                p.close().await;
                continue;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        if shared.stopped() {
            p.close().await;
            break;
        }
        p.vanish();
        if !p.reconnect().await {
            continue;
        }
        if let Some(rid) = p.request(json!({"type":"leave_room"})).await {
            let _ = p.reply(rid).await;
        }
        p.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_share_after_the_tick_is_measured_from_the_earliest_arrival() {
        let rec = Recorder::new();
        let mut clock = TickClock::new(20);
        let base = clock.base;
        let at = |ms: u64| base + Duration::from_millis(ms);
        // Ticks 1..=3 of a schedule starting 10 ms after `base` (period 50 ms), arriving 3, 1 and
        // 2 ms late; each acknowledges one input sent 20 ms before its tick.
        let ticks = [(1u64, 63u64), (2, 111), (3, 162)];
        let mut offs = Vec::new();
        for (k, arrived) in ticks {
            offs.push((k, clock.tick(k, at(arrived))));
        }
        for (k, off) in offs {
            let sent = at(10 + 50 * k - 20);
            clock.acked(&rec, k, off, sent);
        }
        // A fourth input, sent 70 ms before the tick that applied it, missed one tick.
        let off = clock.tick(4, at(212));
        clock.acked(&rec, 4, off, at(210 - 70));
        clock.resync(&rec);
        let r = rec.report("arena", 1.0, None);
        assert_eq!(r.after_tick_ms.count, 4);
        // Measured against the 1 ms arrival: 2, 0, 1 and 1 ms.
        assert!(
            r.after_tick_ms.max >= 1.9 && r.after_tick_ms.max <= 2.1,
            "{:?}",
            r.after_tick_ms
        );
        assert!(r.after_tick_ms.p50 <= 1.1, "{:?}", r.after_tick_ms);
        assert_eq!(r.missed_tick, 1);
    }
}
