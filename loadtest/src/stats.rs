//! What a run records while it goes, and the report it ends with.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Serialize;

/// Latencies are recorded in microseconds, up to a minute, three significant digits.
fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3)
        .expect("constant bounds within hdrhistogram's limits")
}

/// Counters shared by every simulated client of a run.
pub struct Recorder {
    started: Instant,
    /// Connections attempted.
    pub attempted: AtomicU64,
    /// Connections that got their `welcome`.
    pub connected: AtomicU64,
    /// Connections refused or failed before `welcome`.
    pub failed: AtomicU64,
    /// Connections open now.
    pub open: AtomicU64,
    /// Most connections open at once.
    pub peak_open: AtomicU64,
    /// Text frames sent.
    pub frames_sent: AtomicU64,
    /// Text frames received.
    pub frames_received: AtomicU64,
    /// `state` frames received (realtime updates).
    pub updates: AtomicU64,
    /// Inputs sent.
    pub inputs: AtomicU64,
    /// Inputs acknowledged (by a `state` whose `ack` covers them, or an `ok` for turn-based games).
    pub acked: AtomicU64,
    /// Matches found.
    pub matches: AtomicU64,
    /// Rounds of dice finished.
    pub rounds: AtomicU64,
    /// Reconnections with a resume token that came back `resumed: true`.
    pub resumes: AtomicU64,
    /// Reconnections with a resume token that did not.
    pub resume_misses: AtomicU64,
    /// Of those, welcomes that said `recovering` (the seat was being looked for).
    pub recovering: AtomicU64,
    /// Realtime players that lost their connection while seated.
    pub seats_lost: AtomicU64,
    /// Longest time a realtime player went without a `state` of its room, in µs.
    pub longest_pause_us: AtomicU64,
    errors: Mutex<BTreeMap<String, u64>>,
    closes: Mutex<BTreeMap<u16, u64>>,
    latency: Mutex<Histogram<u64>>,
    after_tick: Mutex<Histogram<u64>>,
    /// Acknowledged inputs that the room applied later than on its first tick after they were
    /// sent (plus a millisecond of slack).
    pub missed_tick: AtomicU64,
    match_wait: Mutex<Histogram<u64>>,
    seat_back: Mutex<Histogram<u64>>,
    timeline: Mutex<Vec<Second>>,
}

/// One second of a run, for the chart.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Second {
    /// Seconds since the start.
    pub t: u64,
    /// Connections open at the end of that second.
    pub open: u64,
    /// `state` frames received in that second.
    pub updates: u64,
    /// Inputs acknowledged in that second.
    pub acked: u64,
    /// p99 latency of that second, in ms.
    pub p99_ms: f64,
}

impl Default for Recorder {
    fn default() -> Self {
        Self::new()
    }
}

impl Recorder {
    /// A recorder whose clock starts now.
    pub fn new() -> Self {
        Self {
            started: Instant::now(),
            attempted: AtomicU64::new(0),
            connected: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            open: AtomicU64::new(0),
            peak_open: AtomicU64::new(0),
            frames_sent: AtomicU64::new(0),
            frames_received: AtomicU64::new(0),
            updates: AtomicU64::new(0),
            inputs: AtomicU64::new(0),
            acked: AtomicU64::new(0),
            matches: AtomicU64::new(0),
            rounds: AtomicU64::new(0),
            resumes: AtomicU64::new(0),
            resume_misses: AtomicU64::new(0),
            recovering: AtomicU64::new(0),
            seats_lost: AtomicU64::new(0),
            longest_pause_us: AtomicU64::new(0),
            errors: Mutex::default(),
            closes: Mutex::default(),
            latency: Mutex::new(histogram()),
            after_tick: Mutex::new(histogram()),
            missed_tick: AtomicU64::new(0),
            match_wait: Mutex::new(histogram()),
            seat_back: Mutex::new(histogram()),
            timeline: Mutex::default(),
        }
    }

    /// Time since the run started.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// A connection opened.
    pub fn opened(&self) {
        let now = self.open.fetch_add(1, Ordering::Relaxed) + 1;
        self.peak_open.fetch_max(now, Ordering::Relaxed);
    }

    /// A connection closed, with the close code the server sent (0: none, the connection failed).
    pub fn closed(&self, code: u16) {
        self.open.fetch_sub(1, Ordering::Relaxed);
        *lock(&self.closes).entry(code).or_default() += 1;
    }

    /// An `error` frame with this code.
    pub fn error(&self, code: &str) {
        *lock(&self.errors).entry(code.to_owned()).or_default() += 1;
    }

    /// One input→ack (or request→reply) latency.
    pub fn latency(&self, d: Duration) {
        let _ = lock(&self.latency).record(d.as_micros().max(1) as u64);
        self.acked.fetch_add(1, Ordering::Relaxed);
    }

    /// `n` acknowledgements that arrived `d` after the room's tick that applied their inputs.
    pub fn after_tick(&self, d: Duration, n: u64) {
        let _ = lock(&self.after_tick).record_n(d.as_micros().max(1) as u64, n);
    }

    /// One ticket's wait for its match.
    pub fn match_wait(&self, d: Duration) {
        let _ = lock(&self.match_wait).record(d.as_micros().max(1) as u64);
        self.matches.fetch_add(1, Ordering::Relaxed);
    }

    /// A player that lost its connection while seated had its room's `room_state` again `d`
    /// after the loss.
    pub fn seat_back(&self, d: Duration) {
        let _ = lock(&self.seat_back).record(d.as_micros().max(1) as u64);
    }

    /// A realtime player went `d` without an update.
    pub fn pause(&self, d: Duration) {
        self.longest_pause_us
            .fetch_max(d.as_micros() as u64, Ordering::Relaxed);
    }

    /// Closes the current second of the timeline (called once a second).
    pub fn tick_second(&self, last: &mut (u64, u64), window: &mut Histogram<u64>) {
        let updates = self.updates.load(Ordering::Relaxed);
        let acked = self.acked.load(Ordering::Relaxed);
        let total = lock(&self.latency).clone();
        // The latency of this second: the histogram now minus the one a second ago.
        let mut this = total.clone();
        let _ = this.subtract(&*window);
        *window = total;
        lock(&self.timeline).push(Second {
            t: self.elapsed().as_secs(),
            open: self.open.load(Ordering::Relaxed),
            updates: updates - last.0,
            acked: acked - last.1,
            p99_ms: if this.is_empty() {
                0.0
            } else {
                this.value_at_quantile(0.99) as f64 / 1000.0
            },
        });
        *last = (updates, acked);
    }

    /// A fresh histogram to pass to [`Recorder::tick_second`].
    pub fn window() -> Histogram<u64> {
        histogram()
    }

    /// The report of a run whose load held for `secs` (rates are per second of that).
    pub fn report(&self, scenario: &str, secs: f64, server: Option<ServerUse>) -> Report {
        let per_sec = |n: &AtomicU64| n.load(Ordering::Relaxed) as f64 / secs.max(1e-9);
        let latency = Latency::of(&lock(&self.latency));
        let after_tick = Latency::of(&lock(&self.after_tick));
        let match_wait = Latency::of(&lock(&self.match_wait));
        let closes = lock(&self.closes)
            .iter()
            .map(|(code, n)| (close_name(*code), *n))
            .collect();
        Report {
            scenario: scenario.to_owned(),
            seconds: round(secs, 3),
            connections: Connections {
                attempted: self.attempted.load(Ordering::Relaxed),
                connected: self.connected.load(Ordering::Relaxed),
                failed: self.failed.load(Ordering::Relaxed),
                peak_open: self.peak_open.load(Ordering::Relaxed),
                open_at_end: self.open.load(Ordering::Relaxed),
            },
            frames_sent: self.frames_sent.load(Ordering::Relaxed),
            frames_received: self.frames_received.load(Ordering::Relaxed),
            inputs: self.inputs.load(Ordering::Relaxed),
            acked: self.acked.load(Ordering::Relaxed),
            updates: self.updates.load(Ordering::Relaxed),
            updates_per_sec: round(per_sec(&self.updates), 1),
            acked_per_sec: round(per_sec(&self.acked), 1),
            matches: self.matches.load(Ordering::Relaxed),
            tickets_per_sec: round(per_sec(&self.matches), 1),
            rounds: self.rounds.load(Ordering::Relaxed),
            resumes: self.resumes.load(Ordering::Relaxed),
            resume_misses: self.resume_misses.load(Ordering::Relaxed),
            recovering: self.recovering.load(Ordering::Relaxed),
            seats_lost: self.seats_lost.load(Ordering::Relaxed),
            seat_back_ms: Latency::of(&lock(&self.seat_back)),
            longest_pause_ms: round(
                self.longest_pause_us.load(Ordering::Relaxed) as f64 / 1000.0,
                1,
            ),
            errors: lock(&self.errors).clone(),
            closes,
            latency_ms: latency,
            after_tick_ms: after_tick,
            missed_tick: self.missed_tick.load(Ordering::Relaxed),
            match_wait_ms: match_wait,
            server,
            timeline: lock(&self.timeline).clone(),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn round(x: f64, digits: i32) -> f64 {
    let p = 10f64.powi(digits);
    (x * p).round() / p
}

/// A close code and its name in PROTOCOL.md.
fn close_name(code: u16) -> String {
    let name = warren_protocol::CloseCode::from_code(code).map(|c| c.reason());
    match (code, name) {
        (0, _) => "0 (no close frame)".to_owned(),
        (c, Some(n)) => format!("{c} ({n})"),
        (c, None) => c.to_string(),
    }
}

/// Percentiles of a histogram, in ms.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Latency {
    /// Samples.
    pub count: u64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Largest.
    pub max: f64,
}

impl Latency {
    fn of(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Self::default();
        }
        let ms = |us: u64| round(us as f64 / 1000.0, 3);
        Self {
            count: h.len(),
            p50: ms(h.value_at_quantile(0.5)),
            p90: ms(h.value_at_quantile(0.9)),
            p99: ms(h.value_at_quantile(0.99)),
            p999: ms(h.value_at_quantile(0.999)),
            max: ms(h.max()),
        }
    }
}

/// Connection counts.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Connections {
    /// Attempted.
    pub attempted: u64,
    /// Got `welcome`.
    pub connected: u64,
    /// Refused or failed.
    pub failed: u64,
    /// Most open at once.
    pub peak_open: u64,
    /// Open at the end of the hold (before the clients closed).
    pub open_at_end: u64,
}

/// What the server process used, from /proc.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ServerUse {
    /// Process id.
    pub pid: u32,
    /// CPU seconds (user + system) during the run.
    pub cpu_seconds: f64,
    /// CPU µs per update delivered (`state` frame received), when there were updates.
    pub cpu_us_per_update: Option<f64>,
    /// Resident memory at the peak of the run, in KiB.
    pub rss_kib: u64,
    /// RSS growth over the run divided by the peak of open connections, in KiB.
    pub rss_kib_per_session: Option<f64>,
}

/// The final report, printed as text and written as JSON.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    /// Scenario.
    pub scenario: String,
    /// Length of the run.
    pub seconds: f64,
    /// Connections.
    pub connections: Connections,
    /// Text frames sent.
    pub frames_sent: u64,
    /// Text frames received.
    pub frames_received: u64,
    /// Inputs sent.
    pub inputs: u64,
    /// Inputs (or requests) acknowledged.
    pub acked: u64,
    /// `state` frames received.
    pub updates: u64,
    /// Of which per second.
    pub updates_per_sec: f64,
    /// Acknowledgements per second.
    pub acked_per_sec: f64,
    /// Matches found (per player).
    pub matches: u64,
    /// Tickets matched per second.
    pub tickets_per_sec: f64,
    /// Dice rounds finished.
    pub rounds: u64,
    /// Resumed reconnections.
    pub resumes: u64,
    /// Reconnections that did not resume.
    pub resume_misses: u64,
    /// Of those, welcomes that said `recovering`: the seat was being looked for.
    pub recovering: u64,
    /// Realtime players that lost their connection while seated.
    pub seats_lost: u64,
    /// Of those, the ones that had their room's `room_state` again, and how long after the loss
    /// (`count` is how many got their seat back).
    pub seat_back_ms: Latency,
    /// Longest pause between a realtime player's updates.
    pub longest_pause_ms: f64,
    /// `error` frames by code.
    pub errors: BTreeMap<String, u64>,
    /// Closes by close code.
    pub closes: BTreeMap<String, u64>,
    /// Input→ack latency (arena), request→reply (dice, churn).
    pub latency_ms: Latency,
    /// Arena: the part of input→ack after the room's tick that applied the input (the tick's
    /// own work and the delivery), per acknowledged input. Input→ack also holds the wait for
    /// that tick, 0 to one tick period by the protocol's definition of `ack`.
    pub after_tick_ms: Latency,
    /// Arena: acknowledged inputs applied later than on the room's first tick after they were
    /// sent.
    pub missed_tick: u64,
    /// Ticket wait (matchmaking).
    pub match_wait_ms: Latency,
    /// The server's CPU and memory, given `--server-pid`.
    pub server: Option<ServerUse>,
    /// Per second.
    pub timeline: Vec<Second>,
}

impl Report {
    /// The report as text.
    pub fn text(&self) -> String {
        let c = &self.connections;
        let mut s = format!(
            "scenario {} for {:.1} s\n\
             connections: {} attempted, {} connected, {} failed, peak {} open, {} open at the end\n\
             frames: {} sent, {} received\n",
            self.scenario,
            self.seconds,
            c.attempted,
            c.connected,
            c.failed,
            c.peak_open,
            c.open_at_end,
            self.frames_sent,
            self.frames_received
        );
        if self.inputs > 0 || self.acked > 0 {
            s += &format!(
                "inputs/requests: {} sent, {} acknowledged ({:.1}/s)\n",
                self.inputs, self.acked, self.acked_per_sec
            );
        }
        if self.updates > 0 {
            s += &format!(
                "updates: {} ({:.1}/s), longest pause {:.1} ms\n",
                self.updates, self.updates_per_sec, self.longest_pause_ms
            );
        }
        let l = &self.latency_ms;
        if l.count > 0 {
            s += &format!(
                "latency ms: p50 {} p90 {} p99 {} p99.9 {} max {} ({} samples)\n",
                l.p50, l.p90, l.p99, l.p999, l.max, l.count
            );
        }
        let t = &self.after_tick_ms;
        if t.count > 0 {
            s += &format!(
                "after the tick ms: p50 {} p90 {} p99 {} p99.9 {} max {}; inputs applied a tick late: {}\n",
                t.p50, t.p90, t.p99, t.p999, t.max, self.missed_tick
            );
        }
        if self.matches > 0 {
            let w = &self.match_wait_ms;
            s += &format!(
                "matches: {} tickets ({:.1}/s); wait ms p50 {} p99 {} max {}\n",
                self.matches, self.tickets_per_sec, w.p50, w.p99, w.max
            );
        }
        if self.rounds > 0 {
            s += &format!("dice rounds finished: {}\n", self.rounds);
        }
        if self.resumes + self.resume_misses > 0 {
            s += &format!(
                "reconnections: {} resumed, {} not ({} of them recovering their seat)\n",
                self.resumes, self.resume_misses, self.recovering
            );
        }
        if self.seats_lost > 0 {
            let b = &self.seat_back_ms;
            s += &format!(
                "seats: {} players lost their connection while seated, {} got their seat back; ms from the loss p50 {} p99 {} max {}\n",
                self.seats_lost, b.count, b.p50, b.p99, b.max
            );
        }
        if !self.errors.is_empty() {
            s += &format!("errors: {:?}\n", self.errors);
        }
        if !self.closes.is_empty() {
            s += &format!("closes: {:?}\n", self.closes);
        }
        if let Some(u) = &self.server {
            s += &format!(
                "server pid {}: {:.2} CPU s, RSS {} KiB",
                u.pid, u.cpu_seconds, u.rss_kib
            );
            if let Some(x) = u.cpu_us_per_update {
                s += &format!(", {x:.2} CPU µs per update");
            }
            if let Some(x) = u.rss_kib_per_session {
                s += &format!(", {x:.2} KiB RSS per session");
            }
            s.push('\n');
        }
        s
    }
}
