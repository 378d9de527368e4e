//! What every part of one node shares: its id, settings, the game registry, its state (draining,
//! isolated), the tables read on every message (the room directory, the routing table of live
//! connections), the host actors and the other nodes.
//!
//! It names no actor's message type, so it sits below the actors: each actor module imports it,
//! and it imports none of them. The tables are read here by anyone and written only through the
//! handles their owners hold ([`Writers`]): the room host's `RoomsWriter` (and each room's
//! `RoomSlot`), the session host's `SessionsWriter` (and each session's `RouteSlot`). The hosts'
//! typed addresses are given by their own modules (`RoomHost::of`, `PoolHost::of`,
//! `SessionHost::of`).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use arc_swap::ArcSwap;
use ractor::ActorCell;
use warren_protocol::NodeId;

pub use crate::conn::{CloseSignal, Conn};
pub use crate::directory::RoomEntry;
use crate::directory::{Directory, RoomsWriter};
use crate::game::GameRegistry;
pub use crate::remote::Location;
use crate::remote::Peers;
use crate::resume::ResumeKey;
use crate::routes::SessionsWriter;
pub use crate::routes::{Route, Sessions};
use crate::settings::Settings;
pub use crate::util::{now_ms, random_token};

/// Shared state of one node.
pub struct NodeCtx {
    /// This node.
    pub node: NodeId,
    /// Build version published to clients and peers.
    pub version: String,
    /// Games by name.
    pub games: GameRegistry,
    /// Settings; limits and matchmaking are swapped on reload.
    pub settings: Arc<ArcSwap<Settings>>,
    /// Set once when the node starts draining.
    draining: AtomicBool,
    /// Live connections by player; written through the session host's handle.
    pub sessions: Arc<Sessions>,
    /// Rooms hosted here and where others live; written through the room host's handle.
    pub directory: Arc<Directory>,
    /// Signs and checks resume tokens.
    pub resume_key: ResumeKey,
    /// Tickets waiting in the pools hosted here (a drain waits for them to be handed over).
    tickets: AtomicU64,
    /// Tickets waiting in each live pool here, by label (`game:mode`). `/metrics` renders
    /// `warren_matchmaking_tickets{pool}` from it, so a retired pool's series goes with it.
    pool_tickets: std::sync::Mutex<std::collections::BTreeMap<String, u64>>,
    /// Set while this node sees no strict majority of the cluster: it hosts no rooms and takes
    /// no players (the majority side adopts its rooms).
    isolated: AtomicBool,
    ids: AtomicU64,
    hosts: OnceLock<Hosts>,
    peers: Arc<OnceLock<Arc<dyn Peers>>>,
    /// Other nodes' inputs for rooms not running here, waiting in order ([`crate::router`]).
    pub(crate) forwarders: crate::router::Forwarders,
}

/// The handles that write the node's tables, each for its one owner.
pub struct Writers {
    /// The room host's: which rooms are hosted here.
    pub rooms: RoomsWriter,
    /// The session host's: which connection serves each player.
    pub sessions: SessionsWriter,
}

/// The node's host actors, untyped: each host's module gives its typed address.
#[derive(Clone)]
pub struct Hosts {
    /// Spawns and supervises rooms (`RoomHost::of`).
    pub(crate) rooms: ActorCell,
    /// Hosts matchmaking pools (`PoolHost::of`).
    pub(crate) pools: ActorCell,
    /// Registers connections with sessions (`SessionHost::of`).
    pub(crate) sessions: ActorCell,
}

impl NodeCtx {
    /// A context with no hosts yet, and the handles that write its tables, which
    /// `crate::start_node` gives to their owners as it spawns them.
    pub fn new(
        node: NodeId,
        version: String,
        games: GameRegistry,
        settings: Settings,
        resume_key: ResumeKey,
    ) -> (Self, Writers) {
        let (directory, rooms) = Directory::new();
        let (sessions, sessions_writer) = Sessions::new();
        let ctx = Self {
            node,
            version,
            games,
            settings: Arc::new(ArcSwap::from_pointee(settings)),
            draining: AtomicBool::new(false),
            sessions,
            directory,
            resume_key,
            tickets: AtomicU64::new(0),
            pool_tickets: Default::default(),
            isolated: AtomicBool::new(false),
            ids: AtomicU64::new(0),
            hosts: OnceLock::new(),
            peers: Arc::default(),
            forwarders: Default::default(),
        };
        (
            ctx,
            Writers {
                rooms,
                sessions: sessions_writer,
            },
        )
    }

    /// Rooms for which other nodes' inputs wait here to be forwarded (rooms that moved away).
    pub fn inputs_waiting(&self) -> usize {
        self.forwarders.busy()
    }

    /// The host actors. Panics only if called before the node started, which is a programming error.
    pub fn hosts(&self) -> &Hosts {
        self.hosts
            .get()
            .expect("hosts are set when the node starts")
    }

    pub(crate) fn set_hosts(&self, hosts: Hosts) {
        let _ = self.hosts.set(hosts);
    }

    /// Connects the actors to the other nodes (once, at start).
    pub fn set_peers(&self, peers: Arc<dyn Peers>) {
        let _ = self.peers.set(peers);
    }

    /// The other nodes, when this node is part of a cluster.
    pub fn peers(&self) -> Option<&Arc<dyn Peers>> {
        self.peers.get()
    }

    /// Starts the drain (once; the lifecycle's call): the node takes no new players or rooms.
    pub fn begin_drain(&self) {
        self.draining.store(true, Ordering::Release);
    }

    /// Marks the node cut off from its cluster's majority, or back; gives the previous state.
    pub(crate) fn set_isolated(&self, isolated: bool) -> bool {
        self.isolated.swap(isolated, Ordering::AcqRel)
    }

    /// Tickets waiting in the pools hosted here.
    pub fn waiting_tickets(&self) -> u64 {
        self.tickets.load(Ordering::Acquire)
    }

    /// Records the tickets waiting in the pool `label`; `None` when the pool stopped.
    pub(crate) fn pool_tickets(&self, label: &str, waiting: Option<u64>) {
        let mut pools = crate::util::lock(&self.pool_tickets);
        match waiting {
            Some(n) => match pools.get_mut(label) {
                Some(v) => *v = n,
                None => {
                    pools.insert(label.to_owned(), n);
                }
            },
            None => {
                pools.remove(label);
            }
        }
    }

    /// `warren_matchmaking_tickets{pool}` in the Prometheus text format: one series per live
    /// pool (its help and type even when there is none).
    pub fn render_pool_tickets(&self, out: &mut String) {
        use std::fmt::Write;
        const NAME: &str = "warren_matchmaking_tickets";
        let _ = writeln!(out, "# HELP {NAME} Tickets waiting, by pool (game:mode)");
        let _ = writeln!(out, "# TYPE {NAME} gauge");
        for (label, n) in crate::util::lock(&self.pool_tickets).iter() {
            let mut escaped = String::with_capacity(label.len());
            for c in label.chars() {
                match c {
                    '\\' => escaped.push_str("\\\\"),
                    '"' => escaped.push_str("\\\""),
                    '\n' => escaped.push_str("\\n"),
                    c => escaped.push(c),
                }
            }
            let _ = writeln!(out, "{NAME}{{pool=\"{escaped}\"}} {n}");
        }
    }

    /// A pool's count of waiting tickets went from `was` to `now`.
    pub(crate) fn count_tickets(&self, was: u64, now: u64) {
        if now >= was {
            self.tickets.fetch_add(now - was, Ordering::AcqRel);
        } else {
            self.tickets.fetch_sub(was - now, Ordering::AcqRel);
        }
    }

    /// What a room reads of its node ([`crate::room::RoomEnv`]).
    pub(crate) fn room_env(&self) -> crate::room::RoomEnv {
        crate::room::RoomEnv {
            node: self.node.clone(),
            sessions: self.sessions.clone(),
            peers: self.peers.clone(),
            settings: self.settings.clone(),
        }
    }

    /// Whether the node is draining.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    /// Whether the node is cut off from the majority of its cluster.
    pub fn is_isolated(&self) -> bool {
        self.isolated.load(Ordering::Acquire)
    }

    /// Whether the node takes new players and rooms: neither draining nor isolated.
    pub fn is_serving(&self) -> bool {
        !self.is_draining() && !self.is_isolated()
    }

    /// A node `t1` with the built-in games and [`crate::settings::for_tests`], for unit tests.
    #[cfg(test)]
    pub(crate) fn for_tests() -> (std::sync::Arc<Self>, Writers) {
        let (ctx, writers) = Self::new(
            "t1".into(),
            "0".into(),
            GameRegistry::builtin(),
            crate::settings::for_tests(),
            ResumeKey::derive(b"a secret for unit tests"),
        );
        (std::sync::Arc::new(ctx), writers)
    }

    /// A node-unique id with a prefix: random part first so ids from different nodes never clash.
    pub fn new_id(&self, prefix: &str) -> String {
        let n = self.ids.fetch_add(1, Ordering::Relaxed);
        format!("{prefix}{}{n:x}", random_token(8))
    }
}
