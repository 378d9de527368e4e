//! The matchmaking queue of one pool, without actors: tickets sorted by rating, matched in groups
//! of `seats` whose rating spread fits the narrowest window among them. A ticket's window starts at
//! `initial_window` and widens by `widen_per_sec` while it waits, up to `max_window`.
//!
//! A new ticket is tried against its rating neighbours at once (O(log n + seats)); a periodic sweep
//! (O(n · seats)) catches groups that only fit after their windows widened.

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;

use crate::settings::MatchSettings;

/// Window parameters, copied from settings when a pool acts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Windows {
    /// Window of a new ticket.
    pub initial: u32,
    /// Widening per second.
    pub widen_per_sec: u32,
    /// Widest window.
    pub max: u32,
}

impl Windows {
    /// The window of a ticket that has waited `waited_ms`.
    pub fn at(&self, waited_ms: u64) -> i64 {
        let widened = u64::from(self.initial) + u64::from(self.widen_per_sec) * waited_ms / 1000;
        widened.min(u64::from(self.max.max(self.initial))) as i64
    }
}

impl From<&MatchSettings> for Windows {
    fn from(s: &MatchSettings) -> Self {
        Self {
            initial: s.initial_window,
            widen_per_sec: s.widen_per_sec,
            max: s.max_window,
        }
    }
}

struct Entry<K, T> {
    key: K,
    since_ms: u64,
    item: T,
}

/// Tickets of one pool.
pub struct MatchQueue<K, T> {
    seats: usize,
    sorted: BTreeMap<(i64, u64), Entry<K, T>>,
    index: HashMap<K, (i64, u64)>,
    next: u64,
}

impl<K: Clone + Eq + Hash, T> MatchQueue<K, T> {
    /// An empty queue forming groups of `seats`.
    pub fn new(seats: usize) -> Self {
        Self {
            seats: seats.max(1),
            sorted: BTreeMap::new(),
            index: HashMap::new(),
            next: 0,
        }
    }

    /// Tickets waiting.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Whether no ticket waits.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Adds a ticket; false if the key is already queued.
    pub fn insert(&mut self, key: K, rating: i64, now_ms: u64, item: T) -> bool {
        if self.index.contains_key(&key) {
            return false;
        }
        let pos = (rating, self.next);
        self.next += 1;
        self.index.insert(key.clone(), pos);
        self.sorted.insert(
            pos,
            Entry {
                key,
                since_ms: now_ms,
                item,
            },
        );
        true
    }

    /// Takes every ticket out, as `(key, item, queued_since_ms)` in rating order.
    pub fn drain(&mut self) -> Vec<(K, T, u64)> {
        self.index.clear();
        std::mem::take(&mut self.sorted)
            .into_values()
            .map(|e| (e.key, e.item, e.since_ms))
            .collect()
    }

    /// Removes a ticket.
    pub fn remove(&mut self, key: &K) -> Option<T> {
        self.remove_since(key).map(|(item, _)| item)
    }

    /// Takes one ticket out, with when it queued.
    pub fn remove_since(&mut self, key: &K) -> Option<(T, u64)> {
        let pos = self.index.remove(key)?;
        self.sorted.remove(&pos).map(|e| (e.item, e.since_ms))
    }

    fn fits(&self, group: &[((i64, u64), u64)], now_ms: u64, w: &Windows) -> Option<i64> {
        let (first, last) = (group.first()?.0.0, group.last()?.0.0);
        let spread = last - first;
        let narrowest = group
            .iter()
            .map(|(_, since)| w.at(now_ms.saturating_sub(*since)))
            .min()?;
        (spread <= narrowest).then_some(spread)
    }

    fn take(&mut self, group: &[((i64, u64), u64)]) -> Vec<(K, T, u64)> {
        group
            .iter()
            .filter_map(|(pos, _)| {
                let e = self.sorted.remove(pos)?;
                self.index.remove(&e.key);
                Some((e.key, e.item, e.since_ms))
            })
            .collect()
    }

    /// Tries to form a group containing `key` from its rating neighbours. Returns the group's
    /// `(key, item, queued_since_ms)` in rating order.
    pub fn match_around(&mut self, key: &K, now_ms: u64, w: &Windows) -> Option<Vec<(K, T, u64)>> {
        let pos = *self.index.get(key)?;
        let n = self.seats;
        let mut near: Vec<((i64, u64), u64)> = self
            .sorted
            .range(..pos)
            .rev()
            .take(n - 1)
            .map(|(p, e)| (*p, e.since_ms))
            .collect();
        near.reverse();
        let at = near.len();
        near.extend(
            self.sorted
                .range(pos..)
                .take(n)
                .map(|(p, e)| (*p, e.since_ms)),
        );
        if near.len() < n {
            return None;
        }
        let best = (at.saturating_sub(n - 1)..=at)
            .filter(|s| s + n <= near.len())
            .filter_map(|s| {
                self.fits(&near[s..s + n], now_ms, w)
                    .map(|spread| (spread, s))
            })
            .min()?;
        let group: Vec<_> = near[best.1..best.1 + n].to_vec();
        Some(self.take(&group))
    }

    /// Forms every group that fits now, scanning in rating order.
    pub fn sweep(&mut self, now_ms: u64, w: &Windows) -> Vec<Vec<(K, T, u64)>> {
        let n = self.seats;
        if self.len() < n {
            return Vec::new();
        }
        let all: Vec<((i64, u64), u64)> =
            self.sorted.iter().map(|(p, e)| (*p, e.since_ms)).collect();
        let mut groups = Vec::new();
        let mut i = 0;
        while i + n <= all.len() {
            if self.fits(&all[i..i + n], now_ms, w).is_some() {
                groups.push(all[i..i + n].to_vec());
                i += n;
            } else {
                i += 1;
            }
        }
        groups.iter().map(|g| self.take(g)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: Windows = Windows {
        initial: 100,
        widen_per_sec: 50,
        max: 1000,
    };

    #[test]
    fn close_ratings_match_at_once() {
        let mut q = MatchQueue::new(2);
        q.insert(1, 1000, 0, ());
        assert!(q.match_around(&1, 0, &W).is_none());
        q.insert(2, 1080, 0, ());
        let g = q.match_around(&2, 0, &W).unwrap();
        assert_eq!(g.iter().map(|x| x.0).collect::<Vec<_>>(), [1, 2]);
        assert!(q.is_empty());
    }

    #[test]
    fn far_ratings_wait_for_the_window() {
        let mut q = MatchQueue::new(2);
        q.insert(1, 1000, 0, ());
        q.insert(2, 1400, 0, ());
        assert!(q.match_around(&2, 0, &W).is_none());
        // 400 apart needs 6 s of widening: (400 - 100) / 50.
        assert!(q.sweep(5_900, &W).is_empty());
        assert_eq!(q.sweep(6_000, &W).len(), 1);
    }

    #[test]
    fn the_narrowest_window_of_a_group_decides() {
        let mut q = MatchQueue::new(2);
        q.insert(1, 1000, 0, ());
        q.insert(2, 1300, 10_000, ());
        // Ticket 1 has waited 10 s (window 600) but ticket 2 is new (window 100).
        assert!(q.match_around(&2, 10_000, &W).is_none());
        assert_eq!(q.sweep(14_000, &W).len(), 1);
    }

    #[test]
    fn groups_of_eight_pick_the_tightest() {
        let mut q = MatchQueue::new(8);
        for i in 0..7 {
            q.insert(i, 1000 + i as i64, 0, ());
        }
        q.insert(100, 5000, 0, ());
        q.insert(7, 1007, 0, ());
        let g = q.match_around(&7, 0, &W).unwrap();
        assert_eq!(g.len(), 8);
        assert!(g.iter().all(|x| x.0 != 100));
        assert_eq!(q.len(), 1);
    }

    #[test]
    fn every_ticket_matched_exactly_once() {
        let mut q = MatchQueue::new(4);
        let mut seen = std::collections::HashSet::new();
        for i in 0..10_000u64 {
            q.insert(i, (i * 7919 % 2000) as i64, 0, ());
            if let Some(g) = q.match_around(&i, 0, &W) {
                for (k, _, _) in g {
                    assert!(seen.insert(k));
                }
            }
        }
        for g in q.sweep(100_000, &W) {
            for (k, _, _) in g {
                assert!(seen.insert(k));
            }
        }
        assert_eq!(seen.len() + q.len(), 10_000);
        assert!(q.len() < 4);
    }
}
