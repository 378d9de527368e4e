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
//! snapshot (`warren_room_migrations_total{outcome="failed"}`); the drain then ends it with the node.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ractor::rpc::CallResult;
use tracing::{info, warn};
use warren_protocol::{NodeId, RoomId};

use crate::node::{Location, NodeCtx, lock};
use crate::ring::place;
use crate::room::{RoomMsg, RoomSnapshot};
use crate::room_host::RoomHostMsg;

/// How long a room has to hand over its final snapshot.
const FREEZE_TIMEOUT: Duration = Duration::from_secs(2);

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
    for room in ctx.directory.ids() {
        if Instant::now() >= deadline {
            out.stayed += 1;
            continue;
        }
        if migrate(ctx, &room).await {
            out.moved += 1;
        } else {
            out.stayed += 1;
        }
    }
    out
}

/// Moves one room; true when it runs on another node now.
pub async fn migrate(ctx: &Arc<NodeCtx>, room: &RoomId) -> bool {
    let Some(peers) = ctx.peers() else {
        return false;
    };
    let Some(entry) = ctx.directory.entry(room) else {
        return false;
    };
    let started = Instant::now();
    ctx.directory.set_moving(room, true);
    let frozen = entry
        .actor
        .call(RoomMsg::Freeze, Some(FREEZE_TIMEOUT))
        .await;
    let bytes = match frozen {
        Ok(CallResult::Success(Some(b))) => b,
        other => {
            // The room did not freeze (it failed or is stuck); its supervisor deals with it.
            warn!(room = %room, result = ?other.map(|_| ()), "room did not freeze for its move");
            ctx.directory.set_moving(room, false);
            metrics::counter!("warren_room_migrations_total", "outcome" => "failed").increment(1);
            return false;
        }
    };
    let homes: Vec<NodeId> = postcard::from_bytes::<RoomSnapshot>(&bytes)
        .map(|s| s.seats.into_iter().map(|s| s.home).collect())
        .unwrap_or_default();
    let candidates: Vec<_> = peers
        .candidates()
        .into_iter()
        .filter(|c| c.node != ctx.node)
        .collect();
    let epoch = entry.epoch + 1;
    let result = match place(&homes, &candidates) {
        Some(target) => peers
            .adopt(&target, room.clone(), epoch, bytes.clone())
            .await
            .map(|()| target),
        None => Err("no ready node to move to".to_owned()),
    };
    match result {
        Ok(target) => {
            ctx.directory.move_out(
                room,
                Location {
                    node: target.clone(),
                    epoch,
                },
            );
            lock(&ctx.snapshots).remove(room);
            // Every node learns the new place, so sessions that send nothing during the move do
            // not depend on this node's tombstone, which goes when the node exits.
            peers.announce(
                room.clone(),
                Location {
                    node: target.clone(),
                    epoch,
                },
            );
            metrics::gauge!("warren_rooms", "game" => entry.game.to_string()).decrement(1.0);
            let pause = started.elapsed();
            metrics::counter!("warren_room_migrations_total", "outcome" => "ok").increment(1);
            metrics::histogram!("warren_room_migration_pause_seconds").record(pause.as_secs_f64());
            info!(room = %room, to = %target, epoch, pause_us = pause.as_micros() as u64, "room migrated");
            true
        }
        Err(why) => {
            warn!(room = %room, error = %why, "room could not move; it runs here again");
            metrics::counter!("warren_room_migrations_total", "outcome" => "failed").increment(1);
            let host = ctx.hosts().rooms.clone();
            let (room, snapshot) = (room.clone(), bytes);
            let back = ractor::call!(host, |reply| RoomHostMsg::Adopt {
                room,
                epoch: entry.epoch,
                snapshot,
                reply
            });
            if !matches!(back, Ok(Ok(()))) {
                warn!(error = ?back, "room could not be restarted here either");
            }
            false
        }
    }
}
