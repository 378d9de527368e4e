//! The room directory: the rooms hosted on this node (their actors, seats, epochs and latest
//! snapshots) and where other rooms live.
//!
//! It is read on every message (a session resolving its room, a request from another node), so
//! it is a table, not an actor; its writers are fixed by the types. The room host holds the one
//! [`RoomsWriter`] (rooms come, go, freeze for a move, and move out), and gives each room a
//! [`RoomSlot`] that writes only that room's player list and snapshot. The cache of where other
//! nodes' rooms live ([`Directory::learn`]) takes a location from anyone who learned one, as a
//! higher epoch always wins there.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use ractor::ActorCell;
use tokio::sync::mpsc;
use warren_protocol::{GameName, NodeId, PlayerId, RoomId, RoomSummary};

use crate::inputs::InputBox;
pub use crate::remote::Location;
use crate::util::{lock, now_ms, read, write};

/// One room hosted here, in the directory.
#[derive(Clone)]
pub struct RoomEntry {
    /// The room actor (changes when the room is restarted); typed by [`RoomEntry::actor`].
    pub(crate) cell: ActorCell,
    /// Its game.
    pub game: GameName,
    /// The state version its snapshots are written in.
    pub state_version: u32,
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

/// Most moved rooms remembered; beyond it the oldest half is forgotten (a request to a forgotten
/// room goes to the node its id names, which answers `not_found` once it forgot it too).
const MOVED_LIMIT: usize = 100_000;

/// The room directory: room id → (node, epoch). Rooms hosted here are entries with their actor;
/// a room that moved away leaves a tombstone naming its new node, so a request sent here by a
/// stale lookup is redirected; locations learned from such redirects are kept too. Any other room
/// is where its id says it was created (`<node>.<random>`, epoch 0).
pub struct Directory {
    rooms: RwLock<HashMap<RoomId, RoomEntry>>,
    moved: RwLock<HashMap<RoomId, (Location, u64)>>,
    seated: RwLock<HashMap<PlayerId, RoomId>>,
    /// Latest snapshot of each room hosted here (postcard bytes).
    snapshots: Mutex<HashMap<RoomId, Arc<Vec<u8>>>>,
    /// Where rooms hand each new snapshot for replication to their backup node (set by the
    /// cluster layer; a node running alone replicates nothing).
    replication: OnceLock<mpsc::UnboundedSender<(RoomId, Arc<Vec<u8>>)>>,
}

impl Directory {
    /// An empty directory, and the one handle that writes its hosted rooms (the room host's).
    pub fn new() -> (Arc<Self>, RoomsWriter) {
        let dir = Arc::new(Self {
            rooms: RwLock::default(),
            moved: RwLock::default(),
            seated: RwLock::default(),
            snapshots: Mutex::default(),
            replication: OnceLock::new(),
        });
        (dir.clone(), RoomsWriter { dir })
    }

    /// Sends every snapshot a room writes from now on to `tx` (once, at start), and an empty one
    /// when a room stops being hosted here.
    pub fn replicate_to(&self, tx: mpsc::UnboundedSender<(RoomId, Arc<Vec<u8>>)>) {
        let _ = self.replication.set(tx);
    }

    /// The latest snapshot of a room hosted here.
    pub fn snapshot(&self, room: &RoomId) -> Option<Arc<Vec<u8>>> {
        lock(&self.snapshots).get(room).cloned()
    }

    /// The latest snapshot of every room hosted here.
    pub fn snapshots(&self) -> HashMap<RoomId, Arc<Vec<u8>>> {
        lock(&self.snapshots)
            .iter()
            .map(|(r, b)| (r.clone(), b.clone()))
            .collect()
    }

    /// Adds (or replaces) a room hosted here.
    fn insert(&self, room: RoomId, entry: RoomEntry) {
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

    fn remove(&self, room: &RoomId) -> Option<RoomEntry> {
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

    fn set_players(&self, room: &RoomId, players: Vec<PlayerId>) {
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
    fn move_out(&self, room: &RoomId, to: Location) -> Option<RoomEntry> {
        write(&self.moved).insert(room.clone(), (to, now_ms()));
        self.remove(room)
    }

    /// The room's actor, if the room is hosted here and not frozen for a move (typed by
    /// `Directory::actor`, beside the room actor).
    pub(crate) fn actor_cell(&self, room: &RoomId) -> Option<ActorCell> {
        read(&self.rooms)
            .get(room)
            .filter(|e| !e.moving)
            .map(|e| e.cell.clone())
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

    /// The room's game and the state version its snapshots are written in, if hosted here.
    pub fn game_version_of(&self, room: &RoomId) -> Option<(GameName, u32)> {
        read(&self.rooms)
            .get(room)
            .map(|e| (e.game.clone(), e.state_version))
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
    fn set_moving(&self, room: &RoomId, moving: bool) {
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
        remember(&mut moved, room, loc);
    }

    /// Records that `node` said just now that it hosts `room`, its epoch unknown: it replaces
    /// what this node believed (which may be stale: a node that missed the room's last moves),
    /// at the epoch known so far, so any later announcement still overrides it.
    pub fn hint(&self, room: &RoomId, node: NodeId) {
        if read(&self.rooms).contains_key(room) {
            return;
        }
        let mut moved = write(&self.moved);
        let epoch = moved.get(room).map_or(0, |(l, _)| l.epoch);
        remember(&mut moved, room, Location { node, epoch });
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

/// The one handle that changes which rooms are hosted here: the room host's.
pub struct RoomsWriter {
    dir: Arc<Directory>,
}

impl RoomsWriter {
    /// Adds (or replaces) a room hosted here.
    pub(crate) fn insert(&self, room: RoomId, entry: RoomEntry) {
        self.dir.insert(room, entry);
    }

    /// Removes a room hosted here, and its snapshot.
    pub(crate) fn remove(&self, room: &RoomId) -> Option<RoomEntry> {
        lock(&self.dir.snapshots).remove(room);
        self.released(room);
        self.dir.remove(room)
    }

    /// Tells replication at once that a room is no longer hosted here (an empty snapshot), so
    /// its backup lets go of its copy now rather than at the next sweep: a copy kept past the
    /// room's end is adopted, seats and all, if this node dies in between.
    fn released(&self, room: &RoomId) {
        if let Some(tx) = self.dir.replication.get() {
            let _ = tx.send((room.clone(), Arc::new(Vec::new())));
        }
    }

    /// A room hosted here moved to `to`: its tombstone goes in before its entry (and snapshot)
    /// go out, so a concurrent lookup finds one or the other.
    pub(crate) fn move_out(&self, room: &RoomId, to: Location) -> Option<RoomEntry> {
        let e = self.dir.move_out(room, to);
        lock(&self.dir.snapshots).remove(room);
        self.released(room);
        e
    }

    /// Marks a hosted room as frozen for a move (or not).
    pub(crate) fn set_moving(&self, room: &RoomId, moving: bool) {
        self.dir.set_moving(room, moving);
    }

    /// Keeps a room's snapshot (one it arrived with).
    pub(crate) fn keep_snapshot(&self, room: &RoomId, bytes: Arc<Vec<u8>>) {
        lock(&self.dir.snapshots).insert(room.clone(), bytes);
    }

    /// The handle a room writes its own entry with.
    pub(crate) fn slot(&self, room: &RoomId) -> RoomSlot {
        RoomSlot {
            dir: self.dir.clone(),
            room: room.clone(),
        }
    }
}

/// What one room writes of the directory: its own player list and snapshot.
pub struct RoomSlot {
    dir: Arc<Directory>,
    room: RoomId,
}

impl RoomSlot {
    /// The room's seated players changed.
    pub(crate) fn set_players(&self, players: Vec<PlayerId>) {
        self.dir.set_players(&self.room, players);
    }

    /// The room's epoch here, while it is hosted here.
    pub(crate) fn epoch(&self) -> Option<u64> {
        self.dir.epoch_of(&self.room)
    }

    /// The room's final snapshot before a move: kept here for the move (not replicated).
    pub(crate) fn keep_snapshot(&self, bytes: Arc<Vec<u8>>) {
        lock(&self.dir.snapshots).insert(self.room.clone(), bytes);
    }

    /// The room wrote a snapshot: it is kept here and goes to the room's backup at once.
    pub(crate) fn write_snapshot(&self, bytes: Arc<Vec<u8>>) {
        lock(&self.dir.snapshots).insert(self.room.clone(), bytes.clone());
        if let Some(tx) = self.dir.replication.get() {
            let _ = tx.send((self.room.clone(), bytes));
        }
    }
}

/// Closes a departing entry's input box, so that its connections send inputs the ordinary way.
fn close_inputs(e: &RoomEntry) {
    if let Some(b) = &e.inputs {
        b.close(&mut Vec::new());
    }
}

/// Keeps `loc` as where `room` went; when [`MOVED_LIMIT`] places are kept, the older half goes.
fn remember(moved: &mut HashMap<RoomId, (Location, u64)>, room: &RoomId, loc: Location) {
    if moved.len() >= MOVED_LIMIT {
        let mut ages: Vec<u64> = moved.values().map(|(_, at)| *at).collect();
        ages.sort_unstable();
        let cut = ages[ages.len() / 2];
        moved.retain(|_, (_, at)| *at > cut);
    }
    moved.insert(room.clone(), (loc, now_ms()));
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
        let (d, _writer) = Directory::new();
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
        // A node that says it has the room replaces a stale place, at the epoch known; any later
        // announcement still wins.
        d.hint(&room, NodeId::from("n4"));
        assert_eq!(d.locate(&here, &room), Some(at("n4", 3)));
        d.learn(&room, at("n5", 4));
        assert_eq!(d.locate(&here, &room), Some(at("n5", 4)));
        let fresh = RoomId::from("n1.rnew");
        d.hint(&fresh, NodeId::from("n2"));
        assert_eq!(d.moved_to(&fresh), Some(at("n2", 0)));
        assert!(d.seat_of(&PlayerId::from("p")).is_none());
    }
}
