//! Throughput of one matchmaking pool's queue, without actors or sockets: tickets inserted and
//! matched as the pool does it (insert, then try the new ticket against its rating neighbours),
//! and the periodic sweep over a backlog whose windows have widened.
//!
//! `cargo bench -p warren-actors --bench pool`; the figure is tickets per second
//! (criterion's "thrpt", elements/s).

// A bench links every dependency of the package and uses one.
#![allow(unused_crate_dependencies, missing_docs)]

use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use warren_actors::matchmaking::{MatchQueue, Windows};

const TICKETS: u64 = 100_000;

/// Ratings spread like a real pool: a pseudo-normal distribution around 1500 (sum of uniforms),
/// from a fixed-seed generator so every run sees the same tickets.
fn ratings(n: u64) -> Vec<i64> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..n)
        .map(|_| {
            let mut sum = 0i64;
            for _ in 0..4 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                sum += (x % 400) as i64;
            }
            1100 + sum / 2
        })
        .collect()
}

fn windows() -> Windows {
    Windows {
        initial: 100,
        widen_per_sec: 50,
        max: 1000,
    }
}

fn insert_and_match(c: &mut Criterion) {
    let r = ratings(TICKETS);
    let w = windows();
    let mut g = c.benchmark_group("pool");
    g.throughput(Throughput::Elements(TICKETS));
    for seats in [2usize, 8] {
        g.bench_function(format!("insert_and_match_{seats}_seats"), |b| {
            b.iter_batched(
                || MatchQueue::<u64, ()>::new(seats),
                |mut q| {
                    let mut matched = 0usize;
                    for (i, rating) in r.iter().enumerate() {
                        let key = i as u64;
                        // Tickets arrive over 10 s of pool time.
                        let now = i as u64 / 10;
                        q.insert(key, *rating, now, ());
                        if let Some(group) = q.match_around(&key, now, &w) {
                            matched += group.len();
                        }
                    }
                    black_box((matched, q.len()))
                },
                BatchSize::LargeInput,
            );
        });
    }
    g.finish();
}

fn sweep(c: &mut Criterion) {
    let r = ratings(TICKETS);
    let narrow = Windows {
        initial: 0,
        widen_per_sec: 0,
        max: 0,
    };
    let mut g = c.benchmark_group("pool");
    g.throughput(Throughput::Elements(TICKETS));
    g.bench_function("sweep_backlog_of_100k", |b| {
        b.iter_batched(
            || {
                // A backlog that could not match on arrival (window 0) ...
                let mut q = MatchQueue::<u64, ()>::new(2);
                for (i, rating) in r.iter().enumerate() {
                    q.insert(i as u64, *rating * 1000 + i as i64, 0, ());
                    let _ = q.match_around(&(i as u64), 0, &narrow);
                }
                q
            },
            // ... swept once its windows have widened.
            |mut q| black_box(q.sweep(60_000, &windows()).len()),
            BatchSize::LargeInput,
        );
    });
    g.finish();
}

criterion_group!(benches, insert_and_match, sweep);
criterion_main!(benches);
