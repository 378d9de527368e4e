//! A cluster of [`Swim`] members in virtual time: messages take a millisecond or two, timers fire
//! when due, and a member can be killed (its links close), stopped and continued, or cut off. The
//! tests check SWIM's promises at the sizes Warren runs (issue 23): what a dead member costs to
//! detect, that a stalled one is not declared dead, and what each member sends per second as the
//! cluster grows.

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::{Event, NodeIdentity, Swim, config};

/// What the simulation hands a member when its time comes.
enum Due {
    /// SWIM bytes from member `from`.
    Data { from: usize, bytes: Vec<u8> },
    /// A status sent directly.
    Status { bytes: Vec<u8> },
    /// One of its timers.
    Timer { timer: foca::Timer<NodeIdentity> },
    /// Its link to member `node` closed (that member was killed).
    Closed { node: usize },
}

struct Member {
    swim: Swim,
    /// Killed: receives nothing, sends nothing.
    dead: bool,
    /// Stopped until then: what arrives waits, as it would in its socket buffers.
    stopped_until: Option<Duration>,
    /// Messages and bytes sent since counting started.
    sent: (u64, u64),
    /// Members this one declared down, and when.
    downs: Vec<(String, Duration)>,
}

/// A simulated cluster.
pub(super) struct Sim {
    now: Duration,
    seq: u64,
    queue: BinaryHeap<Reverse<(Duration, u64, usize)>>,
    /// Payloads of the queue's entries, by their sequence number.
    due: std::collections::HashMap<u64, Due>,
    members: Vec<Member>,
    rng: StdRng,
    /// Pairs that cannot reach each other.
    cut: BTreeSet<(usize, usize)>,
    failure_timeout: Duration,
}

fn identity(i: usize) -> NodeIdentity {
    NodeIdentity {
        id: format!("n{i}"),
        advertise: format!("10.0.0.{i}:7351"),
        started: 1_000 + i as u64,
        bump: 0,
    }
}

impl Sim {
    /// `n` members, each announced to the first; every member's status set.
    pub(super) fn new(n: usize, failure_timeout: Duration, seed: u64) -> Self {
        let mut sim = Sim {
            now: Duration::ZERO,
            seq: 0,
            queue: BinaryHeap::new(),
            due: Default::default(),
            members: Vec::new(),
            rng: StdRng::seed_from_u64(seed),
            cut: BTreeSet::new(),
            failure_timeout,
        };
        for i in 0..n {
            let mut swim = Swim::new(identity(i), config(failure_timeout), seed ^ (i as u64 + 1));
            swim.set_status(format!("ready {i}").into_bytes()).unwrap();
            if i > 0 {
                swim.announce(identity(0)).unwrap();
            }
            sim.members.push(Member {
                swim,
                dead: false,
                stopped_until: None,
                sent: (0, 0),
                downs: Vec::new(),
            });
            sim.flush(i);
        }
        sim
    }

    /// Queues `what` for member `node`, `after` from now.
    fn at(&mut self, after: Duration, node: usize, what: Due) {
        self.seq += 1;
        self.due.insert(self.seq, what);
        self.queue.push(Reverse((self.now + after, self.seq, node)));
    }

    fn latency(&mut self) -> Duration {
        Duration::from_micros(self.rng.random_range(500..2_000))
    }

    /// Carries out what member `i`'s foca asked for.
    fn flush(&mut self, i: usize) {
        let out = self.members[i].swim.take_output();
        for (to, bytes) in out.sends {
            let Some(j) = self.index(&to.id) else {
                continue;
            };
            self.members[i].sent.0 += 1;
            self.members[i].sent.1 += bytes.len() as u64;
            if self.members[j].dead || self.cut.contains(&(i.min(j), i.max(j))) {
                continue;
            }
            let after = self.latency();
            self.at(after, j, Due::Data { from: i, bytes });
        }
        for (to, bytes) in out.statuses {
            let Some(j) = self.index(&to.id) else {
                continue;
            };
            self.members[i].sent.0 += 1;
            self.members[i].sent.1 += bytes.len() as u64;
            let after = self.latency();
            self.at(after, j, Due::Status { bytes });
        }
        for (timer, after) in out.timers {
            self.at(after, i, Due::Timer { timer });
        }
        for e in out.events {
            if let Event::Down(id) = e {
                let now = self.now;
                self.members[i].downs.push((id.id, now));
            }
        }
    }

    fn index(&self, id: &str) -> Option<usize> {
        id.strip_prefix('n')?.parse().ok()
    }

    /// Runs until `until` (virtual time).
    pub(super) fn run_until(&mut self, until: Duration) {
        while let Some(Reverse((t, seq, node))) = self.queue.peek().copied() {
            if t > until {
                break;
            }
            self.queue.pop();
            let Some(what) = self.due.remove(&seq) else {
                continue;
            };
            self.now = t;
            if self.members[node].dead {
                continue;
            }
            if let Some(stop) = self.members[node].stopped_until {
                if t < stop {
                    // Waits in the socket buffers until the member runs again.
                    self.due.insert(seq, what);
                    self.queue.push(Reverse((stop, seq, node)));
                    continue;
                }
                self.members[node].stopped_until = None;
            }
            let m = &mut self.members[node].swim;
            let r = match what {
                Due::Data { from, bytes, .. } => {
                    // A message sent before a cut is lost with the cut.
                    if self.cut.contains(&(from.min(node), from.max(node))) {
                        continue;
                    }
                    m.handle_data(&bytes)
                }
                Due::Status { bytes, .. } => m.handle_status(&bytes),
                Due::Timer { timer, .. } => m.handle_timer(timer),
                Due::Closed { node: gone } => m.suspect(&identity(gone).id),
            };
            // A message for an identity this member left behind is refused; nothing else may be.
            if let Err(e) = r {
                let s = e.to_string();
                assert!(
                    s.contains("identity") || s.contains("Identity"),
                    "member n{node}: {s}"
                );
            }
            self.flush(node);
        }
        self.now = until;
    }

    pub(super) fn now(&self) -> Duration {
        self.now
    }

    /// Kills member `i` (kill -9): with `closes`, every other member's link to it closes a
    /// millisecond later, as a TCP reset tells them.
    pub(super) fn kill(&mut self, i: usize, closes: bool) {
        self.members[i].dead = true;
        if closes {
            for j in 0..self.members.len() {
                if j != i && !self.members[j].dead {
                    self.at(Duration::from_millis(1), j, Due::Closed { node: i });
                }
            }
        }
    }

    /// Stops member `i` (SIGSTOP) for `d`.
    pub(super) fn stop(&mut self, i: usize, d: Duration) {
        self.members[i].stopped_until = Some(self.now + d);
    }

    /// How many times member `i` rejoined under a new identity.
    pub(super) fn bump(&self, i: usize) -> u64 {
        u64::from(self.members[i].swim.identity().bump)
    }

    /// Cuts every link between the members of `a` and the others.
    pub(super) fn partition(&mut self, a: &[usize]) {
        for &i in a {
            for j in 0..self.members.len() {
                if !a.contains(&j) {
                    self.cut.insert((i.min(j), i.max(j)));
                }
            }
        }
    }

    /// Member `i` learns that it was declared down (foca's `TurnUndead`, or gossip of its own
    /// down state): it rejoins under a new identity.
    pub(super) fn told_down(&mut self, i: usize) {
        let me = self.members[i].swim.identity().clone();
        let m = &mut self.members[i].swim;
        m.foca
            .apply_many(
                std::iter::once(foca::Member::new(me, 0, foca::State::Down)),
                true,
                &mut m.out,
            )
            .unwrap();
        self.flush(i);
    }

    /// When member `by` last declared `id` down at or after `since`, if it did.
    pub(super) fn down_since(&self, by: usize, id: usize, since: Duration) -> Option<Duration> {
        let id = identity(id).id;
        self.members[by]
            .downs
            .iter()
            .find(|(d, t)| *d == id && *t >= since)
            .map(|(_, t)| *t)
    }

    /// When member `by` declared `id` down, if it did.
    pub(super) fn down_at(&self, by: usize, id: usize) -> Option<Duration> {
        let id = identity(id).id;
        self.members[by]
            .downs
            .iter()
            .find(|(d, _)| *d == id)
            .map(|(_, t)| *t)
    }

    /// Whether member `by` declared anyone down.
    pub(super) fn declared_any(&self, by: usize) -> bool {
        !self.members[by].downs.is_empty()
    }

    /// Active members member `i` knows (itself not counted).
    pub(super) fn known(&self, i: usize) -> usize {
        self.members[i].swim.members().count()
    }

    /// The status member `by` holds for member `of`.
    pub(super) fn status(&self, by: usize, of: usize) -> Option<String> {
        self.members[by]
            .swim
            .status_of(&identity(of).id)
            .map(|b| String::from_utf8(b).unwrap())
    }

    /// Sets member `i`'s status.
    pub(super) fn set_status(&mut self, i: usize, s: &str) {
        self.members[i]
            .swim
            .set_status(s.as_bytes().to_vec())
            .unwrap();
        self.flush(i);
    }

    /// Starts counting what each member sends.
    pub(super) fn reset_counts(&mut self) {
        for m in &mut self.members {
            m.sent = (0, 0);
        }
    }

    /// Mean messages and bytes each live member sent per second since the counts were reset
    /// `over` ago.
    pub(super) fn per_member(&self, over: Duration) -> (f64, f64) {
        let live: Vec<&Member> = self.members.iter().filter(|m| !m.dead).collect();
        let n = live.len().max(1) as f64;
        let secs = over.as_secs_f64();
        let msgs: u64 = live.iter().map(|m| m.sent.0).sum();
        let bytes: u64 = live.iter().map(|m| m.sent.1).sum();
        (msgs as f64 / n / secs, bytes as f64 / n / secs)
    }

    pub(super) fn len(&self) -> usize {
        self.members.len()
    }

    pub(super) fn failure_timeout(&self) -> Duration {
        self.failure_timeout
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FT: Duration = Duration::from_secs(2);

    fn joined(n: usize, seed: u64) -> Sim {
        let mut sim = Sim::new(n, FT, seed);
        sim.run_until(Duration::from_secs(10));
        for i in 0..n {
            assert_eq!(
                sim.known(i),
                n - 1,
                "n{i} knows {} of {}",
                sim.known(i),
                n - 1
            );
        }
        sim
    }

    #[test]
    fn every_member_learns_every_other_and_its_status() {
        let mut sim = joined(32, 1);
        for by in 0..32 {
            for of in 0..32 {
                assert_eq!(
                    sim.status(by, of),
                    Some(format!("ready {of}")),
                    "n{by} of n{of}"
                );
            }
        }
        sim.set_status(7, "draining");
        let t = sim.now();
        sim.run_until(t + FT);
        for by in 0..32 {
            assert_eq!(sim.status(by, 7).as_deref(), Some("draining"), "n{by}");
        }
    }

    /// kill -9 at 32 members: every other member declares it down within the failure timeout +
    /// 1 s, whether its links close (a process killed on a live host) or not (a host gone).
    #[test]
    fn a_killed_member_is_down_everywhere_within_the_failure_timeout_and_a_second() {
        for (seed, closes) in [(2, true), (3, false), (4, false), (5, true)] {
            let mut sim = joined(32, seed);
            let killed_at = sim.now();
            sim.kill(9, closes);
            sim.run_until(killed_at + FT + Duration::from_secs(1));
            let mut slowest = Duration::ZERO;
            for by in (0..32).filter(|&i| i != 9) {
                let at = sim.down_at(by, 9).unwrap_or_else(|| {
                    panic!("seed {seed}, closes {closes}: n{by} still counts n9 after FT + 1 s")
                });
                slowest = slowest.max(at - killed_at);
            }
            eprintln!("seed {seed}, links close {closes}: down everywhere after {slowest:?}");
        }
    }

    /// SIGSTOP for half the failure timeout, then SIGCONT: never declared down, and never told
    /// so (foca 1.0 told a member that refuted its suspicion that it was down when the suspicion
    /// ran out, and it rejoined under a new identity: vendor/foca/WARREN.md).
    #[test]
    fn a_member_stopped_for_half_the_failure_timeout_is_not_declared_down() {
        for seed in 10..16 {
            let mut sim = joined(32, seed);
            let t = sim.now();
            sim.stop(5, FT / 2);
            sim.run_until(t + FT * 5);
            assert_eq!(
                sim.bump(5),
                0,
                "seed {seed}: the stopped n5 was told it was down and rejoined"
            );
            for by in 0..32 {
                assert!(
                    sim.down_at(by, 5).is_none(),
                    "seed {seed}: n{by} declared the stopped n5 down"
                );
                assert!(
                    !sim.declared_any(by),
                    "seed {seed}: n{by} declared someone down"
                );
            }
        }
    }

    /// Two members told at the same moment that they were declared down (the member that
    /// declared them could not hear them for a while), and that member killed right then: the two
    /// rejoin under new identities and must find each other again and keep probing, so that both
    /// declare the killed member down within the failure timeout + 1 s.
    #[test]
    fn members_declared_down_together_rejoin_and_still_detect_a_death() {
        for seed in 40..46 {
            let mut sim = joined(3, seed);
            let t = sim.now();
            sim.told_down(1);
            sim.told_down(2);
            sim.kill(0, false);
            sim.run_until(t + FT + Duration::from_secs(1));
            for by in [1, 2] {
                assert!(
                    sim.down_since(by, 0, t).is_some(),
                    "seed {seed}: n{by} still counts the killed n0 after FT + 1 s"
                );
                assert_eq!(sim.known(by), 1, "seed {seed}: n{by} lost the other");
            }
        }
    }

    /// A partition: each side declares the other down, and the two sides' counts say which holds
    /// the majority.
    #[test]
    fn a_partition_splits_the_members_by_side() {
        let mut sim = joined(5, 20);
        let t = sim.now();
        sim.partition(&[3, 4]);
        sim.run_until(t + FT * 3);
        for i in 0..3 {
            assert_eq!(sim.known(i), 2, "n{i}");
        }
        for i in 3..5 {
            assert_eq!(sim.known(i), 1, "n{i}");
        }
    }

    /// What one idle member sends per second, at 8, 32, 64 and 200 members: flat, where
    /// all-to-all heartbeats grow with the cluster.
    #[test]
    fn each_member_sends_the_same_whatever_the_cluster_size() {
        let mut rows = Vec::new();
        for n in [8, 32, 64, 200] {
            let mut sim = joined(n, 30 + n as u64);
            let t = sim.now();
            sim.reset_counts();
            let over = Duration::from_secs(20);
            sim.run_until(t + over);
            let (msgs, bytes) = sim.per_member(over);
            eprintln!("{n} members: {msgs:.1} messages/s, {bytes:.0} B/s per member");
            rows.push((n, msgs, bytes));
            assert_eq!(sim.len(), n);
            assert!(sim.failure_timeout() == FT);
        }
        let at = |n: usize| rows.iter().find(|r| r.0 == n).unwrap();
        let (eight, many) = (at(8), at(32));
        assert!(many.1 <= eight.1 * 1.5, "messages: {eight:?} → {many:?}");
        assert!(many.2 <= eight.2 * 1.5, "bytes: {eight:?} → {many:?}");
    }
}
