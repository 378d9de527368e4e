//! Warren's actors on one node: sessions, rooms, the room host, matchmaking pools, and the games.
//!
//! ```text
//! NodeSupervisor     a failure of any host ends the node (see `supervisor`)
//! ├── RoomHost       spawns and supervises rooms; restarts a failed room from its snapshot
//! │   └── Room*      one per room: seats, a Game, timers, snapshot
//! ├── PoolHost       one pool per (game, mode)
//! │   └── Pool*      tickets, rating windows, match formation
//! └── SessionHost    finds or spawns the session of each new connection
//!     └── Session*   one per player session: requests in order, seat and ticket, resume
//! ```
//! Actors address rooms and sessions by id through these hosts and the node's shared tables
//! ([`node::NodeCtx`]), never by holding each other's references for long: a room that was restarted
//! has a new actor, and the cluster layer will route the same ids to other nodes.

#![cfg_attr(test, allow(clippy::unwrap_used))]

// The pool's benchmark (benches/pool.rs) is the dev-dependency's only user.
#[cfg(test)]
use criterion as _;

pub mod conn;
pub mod directory;
pub mod game;
pub mod inputs;
pub mod local;
pub mod matchmaking;
pub mod migrate;
pub mod node;
pub mod outq;
pub mod pool;
pub mod pool_host;
pub mod remote;
pub mod resume;
pub mod ring;
pub mod room;
pub mod room_host;
pub mod router;
pub mod routes;
pub mod session;
pub mod session_host;
pub mod settings;
pub mod supervisor;
pub mod util;

use std::sync::Arc;

use ractor::{Actor, ActorRef, SpawnErr};
use tokio::sync::mpsc;

use crate::node::{Hosts, NodeCtx, Writers};
use crate::supervisor::{NodeSupervisor, NodeSupervisorMsg};

/// Starts the node's supervisor ([`supervisor`]); a failure of anything it watches is sent to
/// `fatal`, on which the node exits.
pub async fn start_supervisor(
    ctx: &NodeCtx,
    fatal: mpsc::UnboundedSender<String>,
) -> Result<ActorRef<NodeSupervisorMsg>, SpawnErr> {
    let name = format!("{}/supervisor", ctx.node);
    Ok(Actor::spawn(Some(name), NodeSupervisor, fatal).await?.0)
}

/// Spawns the node's host actors, linked to the supervisor, on the current tokio runtime,
/// gives each the handle that writes its table, and records them in `ctx`.
pub async fn start_node(
    ctx: &Arc<NodeCtx>,
    writers: Writers,
    sup: &ActorRef<NodeSupervisorMsg>,
) -> Result<Hosts, SpawnErr> {
    let (rooms, _) = Actor::spawn_linked(
        Some(format!("{}/rooms", ctx.node)),
        room_host::RoomHost,
        (ctx.clone(), writers.rooms),
        sup.get_cell(),
    )
    .await?;
    let (pools, _) = Actor::spawn_linked(
        Some(format!("{}/pools", ctx.node)),
        pool_host::PoolHost,
        ctx.clone(),
        sup.get_cell(),
    )
    .await?;
    let (sessions, _) = Actor::spawn_linked(
        Some(format!("{}/sessions", ctx.node)),
        session_host::SessionHost,
        (ctx.clone(), writers.sessions),
        sup.get_cell(),
    )
    .await?;
    let hosts = Hosts {
        rooms: rooms.get_cell(),
        pools: pools.get_cell(),
        sessions: sessions.get_cell(),
    };
    ctx.set_hosts(hosts.clone());
    Ok(hosts)
}

#[cfg(test)]
mod vendored_ractor {
    //! Warren builds ractor from `vendor/ractor` (one change: boxed mailbox slots, 5 KiB less per
    //! session; vendor/ractor/WARREN.md). These fail if a dependency ever pulls a ractor from the
    //! registry instead, which would build and run, only heavier.

    #[test]
    fn the_mailboxes_are_the_patched_ones() {
        let sender = std::any::type_name::<ractor::concurrency::MpscUnboundedSender<u8>>();
        assert!(
            sender.contains("boxed_unbounded"),
            "ractor's unbounded sender is {sender}: the vendored, patched ractor is not in use"
        );
    }

    #[test]
    fn the_lock_file_has_one_ractor_and_it_is_the_vendored_one() {
        let lock =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.lock")).unwrap();
        let packages: Vec<&str> = lock
            .split("[[package]]")
            .filter(|p| p.contains("\nname = \"ractor\"\n"))
            .collect();
        assert_eq!(packages.len(), 1, "more than one ractor in Cargo.lock");
        assert!(
            packages[0].contains("\nversion = \"0.16.5\"\n"),
            "{}",
            packages[0]
        );
        // A path dependency has no `source`; a registry one does.
        assert!(
            !packages[0].contains("source ="),
            "ractor comes from a registry, not vendor/ractor: {}",
            packages[0]
        );
    }
}
