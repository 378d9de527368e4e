//! One simulated player: its token, its connection (with its source address), pacing of what it
//! sends, requests and replies, and reconnecting with its resume token.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use warren_client::Frame;

use crate::net::{ConnectError, Sources, Target, Ws, connect, guest};
use crate::stats::Recorder;

/// What every simulated player shares.
pub struct Shared {
    /// Nodes, connected to round-robin.
    pub targets: Vec<Target>,
    /// Source addresses.
    pub sources: Sources,
    /// Counters.
    pub rec: Arc<Recorder>,
    /// Set when the run is over.
    pub stop: AtomicBool,
    /// Connections made so far (spreads them over targets and sources).
    pub seq: AtomicUsize,
    /// Prefix of player names, so that runs do not meet each other's sessions.
    pub prefix: String,
    /// Least time between two frames of one client, on average (`--msg-rate`).
    pub send_interval: Option<Duration>,
}

impl Shared {
    pub(crate) fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
}

/// One simulated player: its connection, and what it needs to reconnect.
pub struct Player {
    shared: Arc<Shared>,
    /// The player id the server gave (from `welcome`).
    pub id: String,
    token: String,
    resume: String,
    target: usize,
    ws: Option<Ws>,
    rid: u64,
    /// The send schedule for `send_interval`: see [`Player::pace`].
    next_send: Instant,
}

/// What a read gave.
pub enum Got {
    /// A server message.
    Msg(Value),
    /// The connection ended (the close is recorded).
    Closed(u16),
}

impl Player {
    /// Gets a token and connects, to the next target in turn.
    pub async fn join(shared: &Arc<Shared>, name: String) -> Option<Player> {
        let n = shared.seq.fetch_add(1, Ordering::Relaxed);
        let target = n % shared.targets.len();
        shared.rec.attempted.fetch_add(1, Ordering::Relaxed);
        let token = match guest(shared.targets[target].addr, &name).await {
            Ok(t) => t,
            Err(e) => {
                shared.rec.failed.fetch_add(1, Ordering::Relaxed);
                shared
                    .rec
                    .error(&format!("guest: {}", first_line(&e.to_string())));
                return None;
            }
        };
        let mut p = Player {
            shared: shared.clone(),
            id: String::new(),
            token,
            resume: String::new(),
            target,
            ws: None,
            rid: 0,
            next_send: Instant::now(),
        };
        p.open(n, false).await.then_some(p)
    }

    async fn open(&mut self, n: usize, resume: bool) -> bool {
        let mut q = format!("token={}", self.token);
        if resume && !self.resume.is_empty() {
            q += &format!("&resume={}", self.resume);
        }
        let rec = &self.shared.rec;
        match connect(
            &self.shared.targets[self.target],
            &self.shared.sources,
            n,
            &q,
        )
        .await
        {
            Ok((ws, welcome)) => {
                rec.connected.fetch_add(1, Ordering::Relaxed);
                rec.frames_received.fetch_add(1, Ordering::Relaxed);
                rec.opened();
                if resume {
                    if welcome["resumed"] == true {
                        rec.resumes.fetch_add(1, Ordering::Relaxed);
                    } else {
                        rec.resume_misses.fetch_add(1, Ordering::Relaxed);
                        if welcome["recovering"] == true {
                            rec.recovering.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                self.resume = welcome["resume"].as_str().unwrap_or_default().to_owned();
                self.id = welcome["player"].as_str().unwrap_or_default().to_owned();
                self.ws = Some(ws);
                true
            }
            Err(ConnectError::Refused(status)) => {
                rec.failed.fetch_add(1, Ordering::Relaxed);
                rec.error(&format!("http {status}"));
                false
            }
            Err(ConnectError::Failed(why)) => {
                rec.failed.fetch_add(1, Ordering::Relaxed);
                rec.error(&format!("connect: {}", first_line(&why)));
                false
            }
        }
    }

    /// After a close: connects again with the resume token, to the next target, until it works
    /// or the run ends (at most 30 s).
    pub async fn reconnect(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.shared.stopped() && Instant::now() < deadline {
            self.target = (self.target + 1) % self.shared.targets.len();
            self.shared.rec.attempted.fetch_add(1, Ordering::Relaxed);
            let n = self.shared.seq.fetch_add(1, Ordering::Relaxed);
            if self.open(n, true).await {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    }

    /// Sends a message once the client's send rate (`--msg-rate`) allows; false when the
    /// connection is gone.
    pub async fn send(&mut self, v: &Value) -> bool {
        if self.ws.is_none() {
            return false;
        }
        self.pace().await;
        self.send_now(v).await
    }

    /// Sends a message at once: for frames on a schedule of their own (arena inputs at `--hz`).
    pub async fn send_now(&mut self, v: &Value) -> bool {
        let Some(ws) = self.ws.as_mut() else {
            return false;
        };
        if ws.send_text(v.to_string()).await.is_ok() {
            self.shared.rec.frames_sent.fetch_add(1, Ordering::Relaxed);
            true
        } else {
            false
        }
    }

    /// Waits until the client's send rate allows another frame (a generic cell rate algorithm:
    /// `next_send` runs ahead of the clock by one interval per frame sent, and a frame waits
    /// while it is more than `SEND_BURST` intervals ahead).
    async fn pace(&mut self) {
        let Some(interval) = self.shared.send_interval else {
            return;
        };
        let limit = Instant::now() + interval * SEND_BURST;
        if self.next_send > limit {
            tokio::time::sleep(self.next_send - limit).await;
        }
        self.next_send = self.next_send.max(Instant::now()) + interval;
    }

    /// Sends a request with a fresh `rid`; returns the rid.
    pub async fn request(&mut self, mut v: Value) -> Option<u64> {
        self.rid += 1;
        v["rid"] = json!(self.rid);
        self.send(&v).await.then_some(self.rid)
    }

    /// The next server message; error frames are counted here.
    pub async fn recv(&mut self) -> Got {
        let Some(ws) = self.ws.as_mut() else {
            return Got::Closed(0);
        };
        match ws.next().await {
            Frame::Text(t) => {
                self.shared
                    .rec
                    .frames_received
                    .fetch_add(1, Ordering::Relaxed);
                let v: Value = serde_json::from_str(&t).unwrap_or(Value::Null);
                if v["type"] == "error" {
                    self.shared.rec.error(v["code"].as_str().unwrap_or("?"));
                }
                Got::Msg(v)
            }
            Frame::Closed { code, .. } => self.lost(code.unwrap_or(1005)),
            Frame::Ended => self.lost(0),
        }
    }

    /// Reads until a message matches, within `wait`; `None` on close or timeout.
    pub async fn until(&mut self, wait: Duration, pred: impl Fn(&Value) -> bool) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, self.recv()).await {
                Ok(Got::Msg(v)) if pred(&v) => return Some(v),
                Ok(Got::Msg(_)) => continue,
                Ok(Got::Closed(_)) | Err(_) => return None,
            }
        }
    }

    /// The reply to request `rid`: true for `ok`.
    pub async fn reply(&mut self, rid: u64) -> Option<Value> {
        self.until(Duration::from_secs(30), |v| {
            (v["type"] == "ok" || v["type"] == "error") && v["rid"] == rid
        })
        .await
    }

    /// Sends a request and waits for its reply. A request the node dropped for the rate limit
    /// (counted under `rate_limited`) is sent again after a pause, as a client backing off would.
    pub async fn ask(&mut self, v: Value) -> Option<Value> {
        loop {
            let rid = self.request(v.clone()).await?;
            let r = self.reply(rid).await?;
            if r["type"] != "error" || r["code"] != "rate_limited" {
                return Some(r);
            }
            tokio::time::sleep(RATE_LIMIT_BACKOFF).await;
        }
    }

    fn lost(&mut self, code: u16) -> Got {
        if self.ws.take().is_some() {
            self.shared.rec.closed(code);
        }
        Got::Closed(code)
    }

    /// Closes normally.
    pub async fn close(&mut self) {
        if let Some(mut ws) = self.ws.take() {
            ws.close("done").await;
            // Read what the server sent meanwhile, and its answer, so the handshake completes.
            let rec = &self.shared.rec;
            let _ = tokio::time::timeout(Duration::from_secs(2), async {
                while let Frame::Text(_) = ws.next().await {
                    rec.frames_received.fetch_add(1, Ordering::Relaxed);
                }
            })
            .await;
            self.shared.rec.closed(1000);
        }
    }

    /// Drops the connection without a close frame (a client vanishing).
    pub fn vanish(&mut self) {
        if self.ws.take().is_some() {
            self.shared.rec.closed(0);
        }
    }

    /// Whether connected.
    pub fn connected(&self) -> bool {
        self.ws.is_some()
    }
}

/// How long a player waits before sending a request the node dropped for the rate limit again.
const RATE_LIMIT_BACKOFF: Duration = Duration::from_millis(200);

/// Frames a client may send back to back before `--msg-rate` spaces them.
pub const SEND_BURST: u32 = 10;

/// A random number in [0, 1).
pub(crate) fn random_fraction() -> f64 {
    use std::hash::{BuildHasher as _, Hasher as _};
    let bits = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

fn first_line(s: &str) -> String {
    s.lines()
        .next()
        .unwrap_or_default()
        .chars()
        .take(80)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_paced_client_sends_a_burst_then_one_frame_per_interval() {
        let interval = Duration::from_millis(2);
        let shared = Arc::new(Shared {
            targets: Vec::new(),
            sources: Sources::parse("").unwrap(),
            rec: Arc::new(Recorder::new()),
            stop: AtomicBool::new(false),
            seq: AtomicUsize::new(0),
            prefix: String::new(),
            send_interval: Some(interval),
        });
        let mut p = Player {
            shared,
            id: String::new(),
            token: String::new(),
            resume: String::new(),
            target: 0,
            ws: None,
            rid: 0,
            next_send: Instant::now(),
        };
        let t0 = Instant::now();
        for _ in 0..40 {
            p.pace().await;
        }
        // The first SEND_BURST + 1 frames go at once; each of the other 29 waits its interval.
        let least = interval * (40 - SEND_BURST - 1);
        assert!(t0.elapsed() >= least, "{:?} < {least:?}", t0.elapsed());
        // The schedule is never more than the burst ahead of the clock.
        assert!(p.next_send <= Instant::now() + interval * (SEND_BURST + 1));
    }
}
