//! What every actor of one node shares: its id, settings, the game registry, the routing table of
//! live connections, the room directory, the room snapshots, and the host actors' addresses.
//!
//! Shared tables are plain locks rather than actors because they are read on every message (a
//! room delivering a tick, a session resolving its room); the actors that own them are the only
//! writers: `SessionHost`/`Session` for connections, `RoomHost` for rooms and snapshots.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use ractor::ActorRef;
use tokio::sync::{Notify, mpsc};
use warren_protocol::{CloseCode, GameName, NodeId, Outbound, PlayerId, RoomId, RoomSummary};

use crate::game::GameRegistry;
use crate::pool_host::PoolHostMsg;
use crate::remote::Peers;
use crate::resume::ResumeKey;
use crate::room::RoomMsg;
use crate::room_host::RoomHostMsg;
use crate::session::SessionMsg;
use crate::session_host::SessionHostMsg;
use crate::settings::Settings;

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Shared state of one node.
pub struct NodeCtx {
    /// This node.
    pub node: NodeId,
    /// Build version published to clients and peers.
    pub version: String,
    /// Games by name.
    pub games: GameRegistry,
    /// Settings; limits and matchmaking are swapped on reload.
    pub settings: ArcSwap<Settings>,
    /// Set once when the node starts draining.
    pub draining: AtomicBool,
    /// Live connections by player.
    pub sessions: Sessions,
    /// Rooms hosted here.
    pub directory: Directory,
    /// Latest snapshot of each room hosted here (postcard bytes), owned by `RoomHost`.
    pub snapshots: Mutex<HashMap<RoomId, Arc<Vec<u8>>>>,
    /// Signs and checks resume tokens.
    pub resume_key: ResumeKey,
    /// Tickets waiting in the pools hosted here (a drain waits for them to be handed over).
    pub tickets: AtomicU64,
    ids: AtomicU64,
    hosts: OnceLock<Hosts>,
    peers: OnceLock<Arc<dyn Peers>>,
}

/// Addresses of the node's host actors.
#[derive(Clone)]
pub struct Hosts {
    /// Spawns and supervises rooms.
    pub rooms: ActorRef<RoomHostMsg>,
    /// Hosts matchmaking pools.
    pub pools: ActorRef<PoolHostMsg>,
    /// Registers connections with sessions.
    pub sessions: ActorRef<SessionHostMsg>,
}

impl NodeCtx {
    /// A context with no hosts yet; `crate::start_node` spawns them.
    pub fn new(
        node: NodeId,
        version: String,
        games: GameRegistry,
        settings: Settings,
        resume_key: ResumeKey,
    ) -> Self {
        Self {
            node,
            version,
            games,
            settings: ArcSwap::from_pointee(settings),
            draining: AtomicBool::new(false),
            sessions: Sessions::default(),
            directory: Directory::default(),
            snapshots: Mutex::new(HashMap::new()),
            resume_key,
            tickets: AtomicU64::new(0),
            ids: AtomicU64::new(0),
            hosts: OnceLock::new(),
            peers: OnceLock::new(),
        }
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

    /// Whether the node is draining.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    /// A node-unique id with a prefix: random part first so ids from different nodes never clash.
    pub fn new_id(&self, prefix: &str) -> String {
        let n = self.ids.fetch_add(1, Ordering::Relaxed);
        format!("{prefix}{}{n:x}", random_token(8))
    }
}

/// Random lowercase alphanumerics.
pub fn random_token(len: usize) -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyz23456789";
    let mut rng = rand::rng();
    (0..len)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// Tells a connection's socket task to close with a code. The first code wins.
#[derive(Default)]
pub struct CloseSignal {
    code: AtomicU16,
    notify: Notify,
}

impl CloseSignal {
    /// Requests the close.
    pub fn close(&self, code: CloseCode) {
        if self
            .code
            .compare_exchange(0, code.code(), Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            self.notify.notify_one();
        }
    }

    /// The requested code, if any.
    pub fn requested(&self) -> Option<u16> {
        match self.code.load(Ordering::Acquire) {
            0 => None,
            c => Some(c),
        }
    }

    /// Waits for a close request and returns its code.
    pub async fn wait(&self) -> u16 {
        loop {
            if let Some(c) = self.requested() {
                return c;
            }
            self.notify.notified().await;
        }
    }
}

/// The sending half of one WebSocket connection: a bounded queue to its socket task.
#[derive(Clone)]
pub struct Conn {
    /// Unique per connection.
    pub id: u64,
    tx: mpsc::Sender<Outbound>,
    close: Arc<CloseSignal>,
}

impl Conn {
    /// A connection handle and the receiving end its socket task drains.
    pub fn new(id: u64, queue: usize) -> (Self, mpsc::Receiver<Outbound>, Arc<CloseSignal>) {
        let (tx, rx) = mpsc::channel(queue.max(1));
        let close = Arc::new(CloseSignal::default());
        (
            Self {
                id,
                tx,
                close: close.clone(),
            },
            rx,
            close,
        )
    }

    /// Queues a frame. A full queue means the client is not reading: the connection is closed
    /// with 4003 rather than let it hold server memory.
    pub fn send(&self, msg: Outbound) -> bool {
        match self.tx.try_send(msg) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.close.close(CloseCode::TooSlow);
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    /// Asks the socket task to close.
    pub fn close(&self, code: CloseCode) {
        self.close.close(code);
    }
}

/// A live connection and the session it serves.
#[derive(Clone)]
pub struct Route {
    /// Where frames go.
    pub conn: Conn,
    /// The session actor.
    pub session: ActorRef<SessionMsg>,
}

/// Live connections by player: the fan-out table rooms deliver through.
#[derive(Default)]
pub struct Sessions {
    routes: RwLock<HashMap<PlayerId, Route>>,
}

impl Sessions {
    /// Installs (or replaces) the player's live connection.
    pub fn insert(&self, player: PlayerId, route: Route) {
        write(&self.routes).insert(player, route);
    }

    /// Removes the player's connection if it is still `conn_id`.
    pub fn remove(&self, player: &PlayerId, conn_id: u64) {
        let mut routes = write(&self.routes);
        if routes.get(player).is_some_and(|r| r.conn.id == conn_id) {
            routes.remove(player);
        }
    }

    /// Sends to one player; false if the player has no live connection here.
    pub fn send(&self, player: &PlayerId, msg: Outbound) -> bool {
        read(&self.routes)
            .get(player)
            .is_some_and(|r| r.conn.send(msg))
    }

    /// Sends to many players under one lock.
    pub fn send_each<'a>(&self, items: impl IntoIterator<Item = (&'a PlayerId, Outbound)>) {
        let routes = read(&self.routes);
        for (p, msg) in items {
            if let Some(r) = routes.get(p) {
                r.conn.send(msg);
            }
        }
    }

    /// The session serving a player, if connected.
    pub fn route(&self, player: &PlayerId) -> Option<Route> {
        read(&self.routes).get(player).cloned()
    }

    /// Live connections.
    pub fn len(&self) -> usize {
        read(&self.routes).len()
    }

    /// Whether there are no live connections.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Closes every live connection with `code`.
    pub fn close_all(&self, code: CloseCode) {
        for r in read(&self.routes).values() {
            r.conn.close(code);
        }
    }
}

/// One room in the directory.
#[derive(Clone)]
pub struct RoomEntry {
    /// The room actor (changes when the room is restarted).
    pub actor: ActorRef<RoomMsg>,
    /// Its game.
    pub game: GameName,
    /// Seated players.
    pub players: u32,
    /// Seats in all.
    pub seats: u32,
    /// Hidden from `list_rooms`.
    pub private: bool,
}

/// Rooms hosted on this node by id.
#[derive(Default)]
pub struct Directory {
    rooms: RwLock<HashMap<RoomId, RoomEntry>>,
}

impl Directory {
    pub(crate) fn insert(&self, room: RoomId, entry: RoomEntry) {
        write(&self.rooms).insert(room, entry);
    }

    pub(crate) fn remove(&self, room: &RoomId) -> Option<RoomEntry> {
        write(&self.rooms).remove(room)
    }

    pub(crate) fn set_players(&self, room: &RoomId, players: u32) {
        if let Some(e) = write(&self.rooms).get_mut(room) {
            e.players = players;
        }
    }

    /// The room's actor, if the room is hosted here.
    pub fn actor(&self, room: &RoomId) -> Option<ActorRef<RoomMsg>> {
        read(&self.rooms).get(room).map(|e| e.actor.clone())
    }

    /// Rooms hosted here.
    pub fn len(&self) -> usize {
        read(&self.rooms).len()
    }

    /// Whether no room is hosted here.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Public rooms with a free seat, optionally of one game, at most `limit`, sorted by id.
    pub fn list_open(&self, game: Option<&GameName>, limit: usize) -> Vec<RoomSummary> {
        let rooms = read(&self.rooms);
        let mut v: Vec<RoomSummary> = rooms
            .iter()
            .filter(|(_, e)| !e.private && e.players < e.seats && game.is_none_or(|g| *g == e.game))
            .map(|(id, e)| RoomSummary {
                room: id.clone(),
                game: e.game.clone(),
                players: e.players,
                seats: e.seats,
            })
            .collect();
        v.sort_unstable_by(|a, b| a.room.cmp(&b.room));
        v.truncate(limit);
        v
    }
}

// A poisoned lock only means another thread panicked while holding it; the maps stay usable.
fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Locks a mutex, ignoring poisoning (see `read`).
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
