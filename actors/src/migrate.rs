//! Live migration of rooms off a draining node.
//!
//! Each room in turn is:
//! 1. **frozen**: marked moving in the directory, so requests for it wait instead of reaching it,
//!    then asked for a final snapshot, after which it stops (its timers with it);
//! 2. **shipped** to a target: the ready node where most of its players are connected, else the
//!    least loaded, whose `RoomHost` adopts it from the snapshot at the next epoch; the room resumes
//!    its timers there and sends every connected player a full `room_state`;
//! 3. **redirected**: the directory here swaps the room for a tombstone naming the target, so the
//!    requests that waited, and any that arrive late, are forwarded.
//!
//! A room whose target refuses it, or that finds no target, starts again here from the same
//! snapshot (`warren_room_migrations_total{outcome="failed"}`); a drain tries it again a few times
//! (`RETRY_PASSES`), then leaves it to its backup, which adopts it when the node leaves.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ractor::rpc::CallResult;
use tracing::{info, warn};
use warren_protocol::{NodeId, RoomId};

use crate::node::{Location, NodeCtx};
use crate::ring::{place, version_key};
use crate::room::{RoomMsg, RoomSnapshot};
use crate::room_host::{RoomHost, RoomHostMsg};

/// How long an imbalance must last before rooms move to even it out, and how long a room sent to
/// a node is counted there before that node's own heartbeat does.
const SETTLE: Duration = Duration::from_secs(1);

/// How long a room has to hand over its final snapshot.
const FREEZE_TIMEOUT: Duration = Duration::from_secs(2);

/// Further passes a drain makes over the rooms that could not move, [`RETRY_PAUSE`] apart: a
/// target refuses moves from a node it has just heard again for a failure timeout (2 s by
/// default), and a room left to its backup pauses its players longer than a move.
const RETRY_PASSES: u32 = 5;
const RETRY_PAUSE: Duration = Duration::from_millis(500);

/// What a drain's migration did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Migrated {
    /// Rooms now hosted elsewhere.
    pub moved: u32,
    /// Rooms still here (no target, refused, or the deadline came first).
    pub stayed: u32,
}

/// Moves every room hosted here to other ready nodes, one at a time, until `deadline`.
pub async fn migrate_all(ctx: &Arc<NodeCtx>, deadline: Instant) -> Migrated {
    let mut out = Migrated::default();
    // Nodes that answered they drain too: not tried again in this drain.
    let mut draining = HashSet::new();
    let mut left = ctx.directory.ids();
    for pass in 0..=RETRY_PASSES {
        // Rooms that closed meanwhile are not left behind.
        left.retain(|r| ctx.directory.entry(r).is_some());
        if pass > 0 {
            if left.is_empty() || Instant::now() + RETRY_PAUSE >= deadline {
                break;
            }
            tokio::time::sleep(RETRY_PAUSE).await;
        }
        let mut stayed = Vec::new();
        for room in left {
            if Instant::now() < deadline && move_room(ctx, &room, None, &mut draining).await {
                out.moved += 1;
            } else {
                stayed.push(room);
            }
        }
        left = stayed;
    }
    out.stayed = left.len() as u32;
    out
}

/// Moves one room, to `target` when given (else to the node [`place`] picks); true when it runs on
/// another node now.
pub async fn migrate_to(ctx: &Arc<NodeCtx>, room: &RoomId, target: Option<NodeId>) -> bool {
    move_room(ctx, room, target, &mut HashSet::new()).await
}

/// How many targets that answer they drain a move tries before the room runs here again.
const DRAINING_TARGETS_MAX: usize = 8;

/// `migrate_to`, never to a node in `draining`; a target that answers it drains joins it, and
/// the frozen room goes to the next pick.
async fn move_room(
    ctx: &Arc<NodeCtx>,
    room: &RoomId,
    target: Option<NodeId>,
    draining: &mut HashSet<NodeId>,
) -> bool {
    let Some(peers) = ctx.peers() else {
        return false;
    };
    let Some(entry) = ctx.directory.entry(room).filter(|e| !e.moving) else {
        return false;
    };
    let started = Instant::now();
    let host = RoomHost::of(ctx);
    let set_moving = |moving: bool| {
        let (host, room) = (host.clone(), room.clone());
        async move {
            let _ = ractor::call!(host, |reply| RoomHostMsg::SetMoving {
                room,
                moving,
                reply
            });
        }
    };
    set_moving(true).await;
    let frozen = entry
        .actor()
        .call(RoomMsg::Freeze, Some(FREEZE_TIMEOUT))
        .await;
    let bytes = match frozen {
        Ok(CallResult::Success(Some(b))) => b,
        other => {
            // The room did not freeze: it closed (its last player left as the move began), and
            // ending the move forgets it; or it failed or is stuck, and its supervisor deals with
            // it.
            let closed = matches!(
                entry.actor().get_cell().get_status(),
                ractor::ActorStatus::Stopping | ractor::ActorStatus::Stopped
            );
            if closed {
                info!(room = %room, "room closed as its move began; not moved");
            } else {
                warn!(room = %room, result = ?other.map(|_| ()), "room did not freeze for its move");
            }
            set_moving(false).await;
            if !closed {
                metrics::counter!("warren_room_migrations_total", "outcome" => "failed")
                    .increment(1);
            }
            return false;
        }
    };
    let (homes, game, version): (Vec<NodeId>, String, u32) = RoomSnapshot::decode(&bytes)
        .map(|s| {
            let homes = s.seats.into_iter().map(|s| s.home).collect();
            (homes, s.game.to_string(), s.game_version)
        })
        .unwrap_or_else(|_| (Vec::new(), entry.game.to_string(), entry.state_version));
    // Only a node that restores the room's state version may take it (a rolling upgrade of the
    // game: a room written by the new build never goes to a node of the old one).
    // A node just heard again would refuse the room for a failure timeout
    // (`ClusterView::is_current`): it goes elsewhere meanwhile.
    let others: Vec<_> = peers
        .candidates()
        .into_iter()
        .filter(|c| c.node != ctx.node && !c.settling)
        .collect();
    let candidates: Vec<_> = others
        .iter()
        .filter(|c| c.reads(&game, version))
        .cloned()
        .collect();
    if candidates.len() < others.len() {
        let cannot: Vec<&str> = others
            .iter()
            .filter(|c| !c.reads(&game, version))
            .map(|c| c.node.as_str())
            .collect();
        info!(room = %room, game = %game, state_version = version, nodes = ?cannot, "nodes that cannot restore this room's state version are not considered for it");
    }
    let mut target = target.filter(|t| candidates.iter().any(|c| c.node == *t));
    let epoch = entry.epoch + 1;
    let mut refused = 0;
    let result = loop {
        let open: Vec<_> = candidates
            .iter()
            .filter(|c| !draining.contains(&c.node))
            .cloned()
            .collect();
        let pick = target
            .take()
            .filter(|t| !draining.contains(t))
            .or_else(|| place(&homes, &open));
        let Some(to) = pick else {
            break Err(crate::remote::AdoptError::new("no ready node to move to"));
        };
        match peers.adopt(&to, room.clone(), epoch, bytes.clone()).await {
            Ok(()) => break Ok(to),
            // It drains too, and its status has not reached this node yet.
            Err(why) if why.is_draining() && refused < DRAINING_TARGETS_MAX => {
                info!(room = %room, to = %to, "the move's target drains too; trying another node");
                draining.insert(to);
                refused += 1;
            }
            Err(why) => break Err(why),
        }
    };
    match result {
        Ok(target) => {
            let to = Location {
                node: target.clone(),
                epoch,
            };
            let _ = ractor::call!(host, |reply| RoomHostMsg::MovedOut {
                room: room.clone(),
                to,
                reply
            });
            // Every node learns the new place, so sessions that send nothing during the move do
            // not depend on this node's tombstone, which goes when the node exits.
            peers.announce(
                room.clone(),
                Location {
                    node: target.clone(),
                    epoch,
                },
            );
            let pause = started.elapsed();
            metrics::counter!("warren_room_migrations_total", "outcome" => "ok").increment(1);
            metrics::histogram!("warren_room_migration_pause_seconds").record(pause.as_secs_f64());
            info!(room = %room, to = %target, epoch, pause_us = pause.as_micros() as u64, "room migrated");
            true
        }
        Err(why) if ctx.is_isolated() || ctx.directory.entry(room).is_none() => {
            // Dropped while it moved: this node cut itself off (the majority adopts the room
            // from its replica), or another copy won. Run here again, it was a second copy (the
            // chaos soak saw one run for 946 ms on a node cut off during the move).
            info!(room = %room, error = %why, "room could not move, and was dropped here meanwhile; not run here again");
            metrics::counter!("warren_room_migrations_total", "outcome" => "failed").increment(1);
            false
        }
        Err(why) => {
            warn!(room = %room, error = %why, "room could not move; it runs here again");
            metrics::counter!("warren_room_migrations_total", "outcome" => "failed").increment(1);
            let (room, snapshot) = (room.clone(), bytes);
            let back = ractor::call!(host, |reply| RoomHostMsg::Adopt {
                room,
                epoch: entry.epoch,
                snapshot,
                after_death: false,
                reply
            });
            if !matches!(back, Ok(Ok(()))) {
                warn!(error = ?back, "room could not be restarted here either");
            }
            false
        }
    }
}

/// Spreads rooms evenly over the ready nodes, until the process ends: while this node is the
/// busiest ready node (ties: the lowest id), hosts more than the mean, and at least two rooms more
/// than the least loaded ready node of the newest version, it live-migrates one room there, at
/// most `rooms.rebalance_per_sec` a second. Every node does the same, so a node that joins fills
/// up to its share from all of them, one room at a time.
pub async fn rebalance(ctx: Arc<NodeCtx>) {
    // Since when the cluster has looked uneven: rooms being created in a burst make counts flicker
    // (each node reads the others' a heartbeat late), so only an imbalance that lasts is acted on.
    let mut uneven_since: Option<Instant> = None;
    // Rooms this node sent to each node lately, which that node's heartbeat may not count yet.
    let mut sent: Vec<(Instant, NodeId)> = Vec::new();
    loop {
        let per_sec = ctx.settings.load().rooms.rebalance_per_sec;
        if per_sec == 0 {
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        tokio::time::sleep(Duration::from_secs(1) / per_sec).await;
        if !ctx.is_serving() {
            continue;
        }
        let Some(peers) = ctx.peers() else {
            continue;
        };
        let mine = ctx.directory.len() as u64;
        sent.retain(|(at, _)| at.elapsed() < SETTLE);
        let mut candidates = peers.candidates();
        candidates.retain(|c| !c.settling);
        for c in &mut candidates {
            c.rooms += sent.iter().filter(|(_, n)| *n == c.node).count() as u32;
        }
        if candidates.len() < 2 {
            continue;
        }
        let total: u64 = candidates
            .iter()
            .map(|c| {
                if c.node == ctx.node {
                    mine
                } else {
                    u64::from(c.rooms)
                }
            })
            .sum();
        let newest = candidates.iter().map(|c| version_key(&c.version)).max();
        let Some(least) = candidates
            .iter()
            .filter(|c| c.node != ctx.node && Some(version_key(&c.version)) == newest)
            .min_by(|a, b| a.rooms.cmp(&b.rooms).then(a.node.cmp(&b.node)))
        else {
            continue;
        };
        let above_mean = mine * candidates.len() as u64 > total;
        // One sender at a time, the busiest node (ties: the lowest id), so that nodes reading each
        // other's counts a heartbeat late do not all fill the same node past its share.
        // Ordered by (rooms, then the lower id counting as busier).
        let busiest = candidates
            .iter()
            .filter(|c| c.node != ctx.node)
            .all(|c| (u64::from(c.rooms), &ctx.node) < (mine, &c.node));
        if !above_mean || !busiest || mine < u64::from(least.rooms) + 2 {
            uneven_since = None;
            continue;
        }
        if uneven_since.get_or_insert_with(Instant::now).elapsed() < SETTLE {
            continue;
        }
        // A room the target can restore (a node of an older build of a game takes none of the
        // rooms the newer build wrote).
        let Some(room) = ctx.directory.ids().into_iter().find(|r| {
            ctx.directory
                .entry(r)
                .is_some_and(|e| !e.moving && least.reads(e.game.as_str(), e.state_version))
        }) else {
            continue;
        };
        let to = least.node.clone();
        if migrate_to(&ctx, &room, Some(to.clone())).await {
            sent.push((Instant::now(), to.clone()));
            info!(room = %room, to = %to, rooms_here = mine - 1, "room moved to even out the cluster");
        }
    }
}
