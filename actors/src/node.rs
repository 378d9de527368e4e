//! What every actor of one node shares: its id, settings, the game registry, the routing table of
//! live connections, the room directory, the room snapshots, and the host actors' addresses.
//!
//! Shared tables are plain locks rather than actors because they are read on every message (a
//! room delivering a tick, a session resolving its room); the actors that own them are the only
//! writers: `SessionHost`/`Session` for connections, `RoomHost` for rooms and snapshots.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::task::Poll;
use std::time::{SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use futures_util::task::AtomicWaker;
use ractor::ActorRef;
use tokio::sync::mpsc;
use warren_protocol::{CloseCode, GameName, NodeId, Outbound, PlayerId, RoomId, RoomSummary};

use crate::game::GameRegistry;
use crate::inputs::{FastInput, InputBox};
use crate::outq;
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
    /// The ticket of each session of this node that holds one, kept in step by the session, so
    /// the session that replaces a failed one takes its ticket up again.
    pub(crate) held_tickets: Mutex<HashMap<PlayerId, crate::session::Queued>>,
    /// Where rooms hand each new snapshot for replication to their backup node (set by the
    /// cluster layer; a node running alone replicates nothing).
    replication: OnceLock<mpsc::UnboundedSender<(RoomId, Arc<Vec<u8>>)>>,
    /// Set while this node sees no strict majority of the cluster: it hosts no rooms and takes
    /// no players (the majority side adopts its rooms).
    pub isolated: AtomicBool,
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
            held_tickets: Mutex::new(HashMap::new()),
            resume_key,
            tickets: AtomicU64::new(0),
            replication: OnceLock::new(),
            isolated: AtomicBool::new(false),
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

    /// Sends every snapshot a room writes from now on to `tx` (once, at start).
    pub fn replicate_to(&self, tx: mpsc::UnboundedSender<(RoomId, Arc<Vec<u8>>)>) {
        let _ = self.replication.set(tx);
    }

    /// A room wrote a snapshot: it goes to the room's backup at once.
    pub(crate) fn snapshot_written(&self, room: &RoomId, bytes: &Arc<Vec<u8>>) {
        if let Some(tx) = self.replication.get() {
            let _ = tx.send((room.clone(), bytes.clone()));
        }
    }

    /// The other nodes, when this node is part of a cluster.
    pub fn peers(&self) -> Option<&Arc<dyn Peers>> {
        self.peers.get()
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

/// Tells a connection's socket task to close with a code. The first code wins. One task waits
/// on it (its socket task), so a single waker slot is enough, and cheaper to re-arm on every
/// turn of the socket loop than a list of waiters.
#[derive(Default)]
pub struct CloseSignal {
    code: AtomicU16,
    waker: AtomicWaker,
}

impl CloseSignal {
    /// Requests the close.
    pub fn close(&self, code: CloseCode) {
        if self
            .code
            .compare_exchange(0, code.code(), Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            self.waker.wake();
        }
    }

    /// The requested code, if any.
    pub fn requested(&self) -> Option<u16> {
        match self.code.load(Ordering::Acquire) {
            0 => None,
            c => Some(c),
        }
    }

    /// Waits for a close request and returns its code (one waiter at a time).
    pub async fn wait(&self) -> u16 {
        std::future::poll_fn(|cx| {
            if let Some(c) = self.requested() {
                return Poll::Ready(c);
            }
            self.waker.register(cx.waker());
            // A close between the check and the registration woke no one: look again.
            self.requested().map_or(Poll::Pending, Poll::Ready)
        })
        .await
    }
}

/// The sending half of one WebSocket connection: a bounded queue to its socket task.
#[derive(Clone)]
pub struct Conn {
    /// Unique per connection.
    pub id: u64,
    tx: outq::Sender<Outbound>,
    close: Arc<CloseSignal>,
    /// The realtime input path of this connection ([`crate::inputs`]).
    pub fast: Arc<FastInput>,
}

impl Conn {
    /// A connection handle and the receiving end its socket task drains.
    pub fn new(id: u64, queue: usize) -> (Self, outq::Receiver<Outbound>, Arc<CloseSignal>) {
        let (tx, rx) = outq::queue(queue);
        let close = Arc::new(CloseSignal::default());
        (
            Self {
                id,
                tx,
                close: close.clone(),
                fast: Arc::default(),
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
            Err(outq::Refused::Full) => {
                self.close.close(CloseCode::TooSlow);
                false
            }
            Err(outq::Refused::Closed) => false,
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

/// One room hosted here, in the directory.
#[derive(Clone)]
pub struct RoomEntry {
    /// The room actor (changes when the room is restarted).
    pub actor: ActorRef<RoomMsg>,
    /// Its game.
    pub game: GameName,
    /// Seated players.
    pub players: Vec<PlayerId>,
    /// Seats in all.
    pub seats: u32,
    /// Hidden from `list_rooms`.
    pub private: bool,
    /// Its epoch: 1 when created, one more each time it moves to another node.
    pub epoch: u64,
    /// Frozen for a move: requests wait for the move to end instead of reaching the actor.
    pub moving: bool,
    /// The realtime input box of a realtime room ([`crate::inputs`]).
    pub inputs: Option<Arc<InputBox>>,
}

/// Where a room lives: its node, and the epoch of that placement (the higher epoch wins).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Location {
    /// The node hosting the room.
    pub node: NodeId,
    /// Bumped on every move; 0 for a location read from the room id (where it was created).
    pub epoch: u64,
}

/// Most moved rooms remembered; beyond it the oldest half is forgotten (a request to a forgotten
/// room goes to the node its id names, which answers `not_found` once it forgot it too).
const MOVED_LIMIT: usize = 100_000;

/// The room directory: room id → (node, epoch). Rooms hosted here are entries with their actor;
/// a room that moved away leaves a tombstone naming its new node, so a request sent here by a
/// stale lookup is redirected; locations learned from such redirects are kept too. Any other room
/// is where its id says it was created (`<node>.<random>`, epoch 0).
#[derive(Default)]
pub struct Directory {
    rooms: RwLock<HashMap<RoomId, RoomEntry>>,
    moved: RwLock<HashMap<RoomId, (Location, u64)>>,
    seated: RwLock<HashMap<PlayerId, RoomId>>,
}

impl Directory {
    /// Adds (or replaces) a room hosted here.
    pub(crate) fn insert(&self, room: RoomId, entry: RoomEntry) {
        {
            let mut seated = write(&self.seated);
            for p in &entry.players {
                seated.insert(p.clone(), room.clone());
            }
        }
        write(&self.moved).remove(&room);
        if let Some(old) = write(&self.rooms).insert(room, entry) {
            // A restarted room has a new box: inputs still in the old one were sent to the
            // crashed actor, like those since its last snapshot.
            close_inputs(&old);
        }
    }

    pub(crate) fn remove(&self, room: &RoomId) -> Option<RoomEntry> {
        let e = write(&self.rooms).remove(room)?;
        close_inputs(&e);
        let mut seated = write(&self.seated);
        for p in &e.players {
            if seated.get(p) == Some(room) {
                seated.remove(p);
            }
        }
        Some(e)
    }

    pub(crate) fn set_players(&self, room: &RoomId, players: Vec<PlayerId>) {
        let mut rooms = write(&self.rooms);
        let Some(e) = rooms.get_mut(room) else {
            return;
        };
        let mut seated = write(&self.seated);
        for p in &e.players {
            if seated.get(p) == Some(room) {
                seated.remove(p);
            }
        }
        for p in &players {
            seated.insert(p.clone(), room.clone());
        }
        e.players = players;
    }

    /// A room hosted here moved to `to`: its tombstone goes in before its entry goes out, so a
    /// concurrent lookup finds one or the other.
    pub(crate) fn move_out(&self, room: &RoomId, to: Location) -> Option<RoomEntry> {
        write(&self.moved).insert(room.clone(), (to, now_ms()));
        self.remove(room)
    }

    /// The room's actor, if the room is hosted here and not frozen for a move.
    pub fn actor(&self, room: &RoomId) -> Option<ActorRef<RoomMsg>> {
        read(&self.rooms)
            .get(room)
            .filter(|e| !e.moving)
            .map(|e| e.actor.clone())
    }

    /// The input box of a realtime room hosted here and not frozen for a move.
    pub fn inputs(&self, room: &RoomId) -> Option<Arc<InputBox>> {
        read(&self.rooms)
            .get(room)
            .filter(|e| !e.moving)
            .and_then(|e| e.inputs.clone())
    }

    /// The room's entry, if hosted here.
    pub fn entry(&self, room: &RoomId) -> Option<RoomEntry> {
        read(&self.rooms).get(room).cloned()
    }

    /// The room's epoch, if hosted here.
    pub fn epoch_of(&self, room: &RoomId) -> Option<u64> {
        read(&self.rooms).get(room).map(|e| e.epoch)
    }

    /// Whether the room is hosted here (running or frozen for a move).
    pub fn hosts(&self, room: &RoomId) -> bool {
        read(&self.rooms).contains_key(room)
    }

    /// Marks a hosted room as frozen for a move (or not).
    pub fn set_moving(&self, room: &RoomId, moving: bool) {
        if let Some(e) = write(&self.rooms).get_mut(room) {
            e.moving = moving;
        }
    }

    /// Whether the room is hosted here and frozen for a move.
    pub fn is_moving(&self, room: &RoomId) -> bool {
        read(&self.rooms).get(room).is_some_and(|e| e.moving)
    }

    /// Where a room lives, as this node (`here`) knows it.
    pub fn locate(&self, here: &NodeId, room: &RoomId) -> Option<Location> {
        if let Some(e) = read(&self.rooms).get(room) {
            return Some(Location {
                node: here.clone(),
                epoch: e.epoch,
            });
        }
        if let Some((loc, _)) = read(&self.moved).get(room) {
            return Some(loc.clone());
        }
        crate::remote::host_of(room).map(|node| Location { node, epoch: 0 })
    }

    /// Where a room that left this node (or was found elsewhere) went, if known.
    pub fn moved_to(&self, room: &RoomId) -> Option<Location> {
        read(&self.moved).get(room).map(|(l, _)| l.clone())
    }

    /// Records where a room lives now, unless a newer epoch is known.
    pub fn learn(&self, room: &RoomId, loc: Location) {
        if read(&self.rooms).contains_key(room) {
            return;
        }
        let mut moved = write(&self.moved);
        if moved.get(room).is_some_and(|(l, _)| l.epoch >= loc.epoch) {
            return;
        }
        if moved.len() >= MOVED_LIMIT {
            let mut ages: Vec<u64> = moved.values().map(|(_, at)| *at).collect();
            ages.sort_unstable();
            let cut = ages[ages.len() / 2];
            moved.retain(|_, (_, at)| *at > cut);
        }
        moved.insert(room.clone(), (loc, now_ms()));
    }

    /// The room hosted here in which `player` is seated.
    pub fn seat_of(&self, player: &PlayerId) -> Option<RoomId> {
        read(&self.seated).get(player).cloned()
    }

    /// Ids of the rooms hosted here.
    pub fn ids(&self) -> Vec<RoomId> {
        read(&self.rooms).keys().cloned().collect()
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
            .filter(|(_, e)| {
                !e.private
                    && (e.players.len() as u32) < e.seats
                    && game.is_none_or(|g| *g == e.game)
            })
            .map(|(id, e)| RoomSummary {
                room: id.clone(),
                game: e.game.clone(),
                players: e.players.len() as u32,
                seats: e.seats,
            })
            .collect();
        v.sort_unstable_by(|a, b| a.room.cmp(&b.room));
        v.truncate(limit);
        v
    }
}

// A poisoned lock only means another thread panicked while holding it; the maps stay usable.
/// Closes a departing entry's input box, so that its connections send inputs the ordinary way.
fn close_inputs(e: &RoomEntry) {
    if let Some(b) = &e.inputs {
        b.close(&mut Vec::new());
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    fn at(node: &str, epoch: u64) -> Location {
        Location {
            node: node.into(),
            epoch,
        }
    }

    #[test]
    fn the_directory_keeps_the_highest_epoch_and_falls_back_to_the_id() {
        let d = Directory::default();
        let here = NodeId::from("n9");
        let room = RoomId::from("n1.rabc");
        assert_eq!(d.locate(&here, &room), Some(at("n1", 0)));
        assert_eq!(d.moved_to(&room), None);
        d.learn(&room, at("n2", 2));
        assert_eq!(d.locate(&here, &room), Some(at("n2", 2)));
        // A stale announcement (lower or equal epoch) does not win.
        d.learn(&room, at("n3", 1));
        d.learn(&room, at("n3", 2));
        assert_eq!(d.moved_to(&room), Some(at("n2", 2)));
        d.learn(&room, at("n3", 3));
        assert_eq!(d.locate(&here, &room), Some(at("n3", 3)));
        assert_eq!(d.locate(&here, &RoomId::from("no-node")), None);
        assert!(d.seat_of(&PlayerId::from("p")).is_none());
    }
}
