//! Rooms outlive their node: every room's latest snapshot is kept on a backup node, which adopts
//! the room when its host dies.
//!
//! - **Replicator** (a task per node): every snapshot a room writes (realtime rooms every
//!   `rooms.snapshot_interval_ms`, turn-based rooms after every event) goes to the room's backup
//!   at once, batched per backup with the others written meanwhile. A room's backup is the owner of its id on the ring of ready
//!   nodes other than its host ([`Ring::owner_except`](warren_actors::ring::Ring::owner_except)): when membership changes, the backup moves
//!   and the new one gets the full snapshot, the old one an `Unreplicate`.
//! - **Replicas**: the snapshots this node keeps for other nodes' rooms, the newest epoch winning.
//! - **Guardian** (a task per node): applies the majority rule and adopts. A node that sees no
//!   strict majority of its cluster ([`ClusterView::majority`]) stops hosting rooms and closes its
//!   sessions with 4001 (the majority side adopts the rooms, and the players resume there). A node
//!   of the majority adopts every room it holds a replica of whose host is unreachable, or left
//!   without moving it: the room runs again from its snapshot at the next epoch, its players get
//!   a full `room_state`, and every node learns where it lives.
//! - Two copies of one room (two nodes adopting from replicas during a membership change) meet in
//!   the `Located` announcements: the higher epoch wins, then the lower node id; the other drops
//!   its copy (see `NodeInbox`).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tracing::debug;

use warren_actors::local::LocalNode;
use warren_protocol::{NodeId, RoomId};

use crate::admission::Admission;
use crate::inbox::{inbox_of, send};
use crate::membership::{ClusterView, MemberState, unseen_by_most};
use crate::wire::{Body, PROTO_REPLICA_INCARNATION, Replica};

/// Most snapshots in one `Replicate` message.
const BATCH: usize = 256;
/// Sweeps between two full resends of every snapshot (at 100 ms per sweep: every 10 s).
const REFRESH_SWEEPS: u64 = 100;
/// How often the guardian checks the cluster.
const GUARD_EVERY: Duration = Duration::from_millis(100);

struct Held {
    host: String,
    /// The incarnation of the host's process that sent it (`None` from a node of protocol 8
    /// or older).
    incarnation: Option<u64>,
    epoch: u64,
    snapshot: Vec<u8>,
    /// When it arrived: its host was alive then.
    at: std::time::Instant,
}

/// One snapshot this node keeps, as the admin view shows it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ReplicaInfo {
    /// The room.
    pub room: RoomId,
    /// The node that hosts it (and sent the snapshot).
    pub host: String,
    /// Its epoch there.
    pub epoch: u64,
    /// What the snapshot holds (`None`: it does not decode).
    #[serde(flatten)]
    pub snapshot: Option<warren_actors::local::SnapshotInfo>,
}

/// Snapshots this node keeps as the backup of rooms hosted elsewhere.
#[derive(Default)]
pub struct Replicas {
    held: Mutex<HashMap<RoomId, Held>>,
    /// Per host, the incarnations of its processes that are gone (it restarted, or dropped its
    /// rooms for being cut off), newest last, at most [`RETIRED_PER_HOST`]: a snapshot one of
    /// them sent is adopted whenever it arrives.
    retired: Mutex<HashMap<String, std::collections::VecDeque<u64>>>,
    /// Whether some snapshot held came from a retired incarnation (the guardian adopts it).
    stale: std::sync::atomic::AtomicBool,
}

/// Retired incarnations remembered per host: a snapshot sent by a process reaches its backup
/// milliseconds after the process is known to be gone, not several restarts later.
const RETIRED_PER_HOST: usize = 8;

impl Replicas {
    fn held(&self) -> std::sync::MutexGuard<'_, HashMap<RoomId, Held>> {
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Keeps the latest snapshots of `host`'s rooms, sent by its process of `incarnation`; a
    /// snapshot of an older epoch than the one held (from a node the room has since left) is
    /// ignored.
    pub fn keep(&self, host: String, incarnation: Option<u64>, rooms: Vec<Replica>) {
        if self.is_retired(&host, incarnation) {
            // Sent before its process went, and read after this node heard that it had.
            self.stale.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        let mut held = self.held();
        for r in rooms {
            if held.get(&r.room).is_some_and(|h| h.epoch > r.epoch) {
                continue;
            }
            if !held.contains_key(&r.room) {
                debug!(room = %r.room, host = %host, epoch = r.epoch, "replica kept");
            }
            held.insert(
                r.room,
                Held {
                    host: host.clone(),
                    incarnation,
                    epoch: r.epoch,
                    snapshot: r.snapshot,
                    at: std::time::Instant::now(),
                },
            );
        }
        metrics::gauge!("warren_room_replicas").set(held.len() as f64);
    }

    fn is_retired(&self, host: &str, incarnation: Option<u64>) -> bool {
        incarnation.is_some_and(|i| {
            self.retired
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get(host)
                .is_some_and(|r| r.contains(&i))
        })
    }

    /// Records that `host`'s processes of these incarnations are gone: what they sent is adopted
    /// (by [`Replicas::take_of`]), what the host's current process sends is not.
    fn retire(&self, host: &str, incarnations: &[u64]) {
        let mut retired = self.retired.lock().unwrap_or_else(PoisonError::into_inner);
        let r = retired.entry(host.to_owned()).or_default();
        for i in incarnations {
            if !r.contains(i) {
                r.push_back(*i);
            }
        }
        while r.len() > RETIRED_PER_HOST {
            r.pop_front();
        }
        self.stale.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Drops the snapshots of these rooms, if `host` is the node they came from.
    pub fn release(&self, host: &str, rooms: Vec<RoomId>) {
        let mut held = self.held();
        for room in rooms {
            if held.get(&room).is_some_and(|h| h.host == host) {
                debug!(room = %room, host = %host, "replica released");
                held.remove(&room);
            }
        }
        metrics::gauge!("warren_room_replicas").set(held.len() as f64);
    }

    /// Every snapshot held, described: which room, from which node, its epoch, version, tick and
    /// age. For the admin view (`/v1/admin/replicas`).
    pub fn list(&self) -> Vec<ReplicaInfo> {
        let mut out: Vec<ReplicaInfo> = self
            .held()
            .iter()
            .map(|(room, h)| ReplicaInfo {
                room: room.clone(),
                host: h.host.clone(),
                epoch: h.epoch,
                snapshot: LocalNode::describe_snapshot(&h.snapshot),
            })
            .collect();
        out.sort_unstable_by(|a, b| a.room.cmp(&b.room));
        out
    }

    /// Snapshots held.
    pub fn len(&self) -> usize {
        self.held().len()
    }

    /// Whether none is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Takes the snapshots of rooms whose host is in `dead`, except those that arrived within
    /// `fresh` of now: a host that sent a snapshot that recently was alive then, whatever this
    /// node's view says (a view just back from a partition can be seconds behind, and replication
    /// can reach it before heartbeats do). A snapshot sent by a retired incarnation of its host
    /// (the process is gone: restarted, or cut off and emptied) is taken however recent, and so
    /// is one without an incarnation from a host in `replaced`; one that the host's current
    /// process sent is not (that process runs the room: it moved there). A host in `departed`
    /// said it leaves (the end of its drain): what it still sent is a room it could not move,
    /// taken however recent (waiting for it to age let the drained node's next process come
    /// back first, after which nothing took it: a room lost in the 10-minute soak).
    fn take_of(
        &self,
        dead: &HashSet<String>,
        departed: &std::collections::BTreeSet<String>,
        replaced: &std::collections::BTreeSet<String>,
        fresh: Duration,
    ) -> Vec<(RoomId, Held)> {
        self.stale
            .store(false, std::sync::atomic::Ordering::Relaxed);
        let retired = self
            .retired
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let gone = |h: &Held| {
            h.incarnation
                .is_some_and(|i| retired.get(&h.host).is_some_and(|r| r.contains(&i)))
        };
        let mut held = self.held();
        let rooms: Vec<RoomId> = held
            .iter()
            .filter(|(_, h)| {
                gone(h)
                    || (replaced.contains(&h.host) && h.incarnation.is_none())
                    || departed.contains(&h.host)
                    || (dead.contains(&h.host) && h.at.elapsed() >= fresh)
            })
            .map(|(r, _)| r.clone())
            .collect();
        let out = rooms
            .into_iter()
            .filter_map(|r| held.remove(&r).map(|h| (r, h)))
            .collect();
        metrics::gauge!("warren_room_replicas").set(held.len() as f64);
        out
    }

    fn clear(&self) {
        self.held().clear();
        metrics::gauge!("warren_room_replicas").set(0.0);
    }
}

/// What each backup has been sent, and what it must be told to drop.
struct Replicator {
    local: LocalNode,
    view: Arc<ClusterView>,
    me: String,
    /// Per room: its backup node and the snapshot it was sent.
    sent: HashMap<RoomId, (String, Arc<Vec<u8>>)>,
    /// Releases for nodes that could not be told yet.
    owed: HashMap<String, Vec<RoomId>>,
    /// Sweeps so far.
    sweeps: u64,
}

impl Replicator {
    /// Queues `bytes` of `room` for its backup in `out`, unless the backup already has them;
    /// a room whose backup changed is released at the old one.
    fn stage(
        &mut self,
        ring: &warren_actors::ring::Ring,
        room: &RoomId,
        bytes: &Arc<Vec<u8>>,
        out: &mut HashMap<String, Vec<Replica>>,
        refresh: bool,
    ) {
        let Some(epoch) = self.local.epoch_of(room) else {
            return;
        };
        let prev = self.sent.get(room);
        // The backup is a node that could restore the room: on a ring of nodes that all run the
        // same build of its game, its owner among the others; during a rolling upgrade of the
        // game, the first one clockwise whose build reads the room's state version.
        let me = self.local.id();
        let version = self.local.game_version_of(room);
        let Some(backup) = ring
            .owner_where(room.as_str(), |n| {
                n != me
                    && version
                        .as_ref()
                        .is_none_or(|(game, v)| self.view.reads(n.as_str(), game.as_str(), *v))
            })
            .map(ToString::to_string)
        else {
            // Alone: nobody to keep a copy.
            if let Some((node, _)) = self.sent.remove(room) {
                self.owed.entry(node).or_default().push(room.clone());
            }
            return;
        };
        if !refresh && prev.is_some_and(|(n, b)| *n == backup && Arc::ptr_eq(b, bytes)) {
            return;
        }
        if let Some((old, _)) = prev.filter(|(n, _)| *n != backup) {
            self.owed.entry(old.clone()).or_default().push(room.clone());
        }
        out.entry(backup.clone()).or_default().push(Replica {
            room: room.clone(),
            epoch,
            snapshot: bytes.as_ref().clone(),
        });
        self.sent.insert(room.clone(), (backup, bytes.clone()));
    }

    /// Sends the staged snapshots, written while this node's process was of `incarnation`, then
    /// the releases owed to reachable nodes.
    fn flush(&mut self, out: HashMap<String, Vec<Replica>>, incarnation: u64) {
        for (node, rooms) in out {
            match inbox_of(&node) {
                Some(inbox) => {
                    let tagged = self.view.speaks(&node, PROTO_REPLICA_INCARNATION);
                    for chunk in rooms.chunks(BATCH) {
                        let (host, rooms) = (self.me.clone(), chunk.to_vec());
                        let body = if tagged {
                            Body::ReplicateFrom {
                                host,
                                incarnation,
                                rooms,
                            }
                        } else {
                            Body::Replicate { host, rooms }
                        };
                        send(&inbox, body);
                    }
                }
                // Not connected (yet): sent again at the next sweep.
                None => {
                    for r in rooms {
                        self.sent.remove(&r.room);
                    }
                }
            }
        }
        if self.owed.is_empty() {
            return;
        }
        let members: HashSet<String> = self.view.members().into_iter().map(|m| m.id).collect();
        let me = self.me.clone();
        self.owed.retain(|node, rooms| {
            if !members.contains(node) {
                return false;
            }
            match inbox_of(node) {
                Some(inbox) => {
                    debug!(backup = %node, rooms = ?rooms, "releasing replicas");
                    for chunk in rooms.chunks(BATCH * 4) {
                        send(
                            &inbox,
                            Body::Unreplicate {
                                host: me.clone(),
                                rooms: chunk.to_vec(),
                            },
                        );
                    }
                    false
                }
                None => true,
            }
        });
    }

    /// Every room against its backup: catches backups that moved with membership, rooms that
    /// closed or moved away, and sends that failed. Every [`REFRESH_SWEEPS`]th sweep sends every
    /// snapshot again, so a backup that lost its copies (it restarted faster than failure
    /// detection noticed) has them back even for rooms that have not changed since.
    fn sweep(&mut self, incarnation: u64) {
        self.sweeps += 1;
        let refresh = self.sweeps.is_multiple_of(REFRESH_SWEEPS);
        let ring = self.view.ring();
        let snaps = self.local.snapshots();
        let mut out = HashMap::new();
        for (room, bytes) in &snaps {
            self.stage(&ring, room, bytes, &mut out, refresh);
        }
        let owed = &mut self.owed;
        self.sent.retain(|room, (node, _)| {
            let live = snaps.contains_key(room);
            if !live {
                owed.entry(node.clone()).or_default().push(room.clone());
            }
            live
        });
        self.flush(out, incarnation);
    }
}

/// Sends the snapshots of the rooms hosted here to their backups, until the process ends: each
/// snapshot as soon as its room writes it (batched with whatever else was written meanwhile), and
/// a sweep of every room every `rooms.snapshot_interval_ms`.
pub async fn replicate(local: LocalNode, view: Arc<ClusterView>) {
    let (tx, mut written) = tokio::sync::mpsc::unbounded_channel();
    local.replicate_to(tx);
    let mut r = Replicator {
        me: local.id().to_string(),
        local,
        view,
        sent: HashMap::new(),
        owed: HashMap::new(),
        sweeps: 0,
    };
    let mut next_sweep = tokio::time::Instant::now();
    loop {
        let every = Duration::from_millis(r.local.settings().rooms.snapshot_interval_ms.max(10));
        tokio::select! {
            _ = tokio::time::sleep_until(next_sweep) => {
                next_sweep = tokio::time::Instant::now() + every;
                // Read before the isolation check: a node cut off is isolated before it draws its
                // next incarnation, so what is sent here is tagged with the process that wrote it.
                let incarnation = r.view.incarnation();
                if r.local.is_isolated() {
                    r.sent.clear();
                    r.owed.clear();
                    continue;
                }
                // A node that lost sight of its cluster's majority is about to be cut off: its
                // ring has shrunk to what it still sees, and moving backups on that ring would
                // release every room at its real backup (the releases queue on the silent links
                // and arrive when the partition heals, leaving no copy anywhere).
                if !r.view.majority() {
                    continue;
                }
                r.sweep(incarnation);
            }
            Some(first) = written.recv() => {
                let incarnation = r.view.incarnation();
                if r.local.is_isolated() || !r.view.majority() {
                    continue;
                }
                let mut batch = HashMap::from([first]);
                while let Ok((room, bytes)) = written.try_recv() {
                    batch.insert(room, bytes);
                }
                let ring = r.view.ring();
                let mut out = HashMap::new();
                for (room, bytes) in &batch {
                    if bytes.is_empty() {
                        // The room closed or moved away: its backup lets go of it now.
                        if let Some((node, _)) = r.sent.remove(room) {
                            r.owed.entry(node).or_default().push(room.clone());
                        }
                    } else {
                        r.stage(&ring, room, bytes, &mut out, false);
                    }
                }
                r.flush(out, incarnation);
            }
        }
    }
}

/// How long a peer that fell silent while its link stays open (a partition, a frozen process) is
/// left unreachable before its rooms are adopted, beyond the failure timeout.
///
/// The two sides of a partition see the silence at about the same time, but not at once: each
/// side's last heartbeat from the other may be a heartbeat interval old (a tenth of the timeout),
/// and each checks on its own tick. The node cut off stops hosting once it sees no majority
/// (within a tenth of the timeout after it expires, and one guard check), so the majority waits
/// out that spread before it adopts: the cut-off copy has stopped before the adopted one starts
/// (the chaos soak measured two copies running together for 134 ms without this wait). A peer
/// whose link closed (its process died: killed, crashed) is adopted at once.
fn fence(failure_timeout: Duration) -> Duration {
    failure_timeout * 3 / 10 + GUARD_EVERY * 2
}

/// Applies the majority rule and adopts the rooms of dead nodes, until the process ends.
pub(crate) async fn guard(
    local: LocalNode,
    view: Arc<ClusterView>,
    replicas: Arc<Replicas>,
    admission: Arc<Admission>,
    failure_timeout: Duration,
) {
    let fence = fence(failure_timeout);
    // When this node last came back from being cut off: its view of who is unreachable is stale
    // until its peers' heartbeats reach it again.
    let mut rejoined = tokio::time::Instant::now();
    // Nodes whose loss the rooms here were told of.
    let mut lost: HashSet<String> = HashSet::new();
    // Unreachable peers whose link is still open, since when this guard has seen them so.
    let mut silent: HashMap<String, tokio::time::Instant> = HashMap::new();
    // Silent peers whose rooms wait because most other nodes still hear them (logged once).
    let mut held_back: HashSet<String> = HashSet::new();
    loop {
        tokio::time::sleep(GUARD_EVERY).await;
        // A node its peers refuse (wrong cookie or TLS) and that sees no peer is not a one-node
        // majority but a node outside its cluster: it hosts nothing until some peer lets it in.
        let peers = view.has_live_peer();
        if peers {
            admission.admitted();
        }
        let cut_off = !peers && admission.cut_off();
        if cut_off || !view.majority() {
            let first = !local.is_isolated();
            local.isolate(if cut_off {
                "its cluster peers refuse this node (cluster.cookie or TLS)"
            } else {
                "this node sees no majority of its cluster"
            });
            if first {
                replicas.clear();
                // What this node hosted is dropped now: when its peers hear it again, they adopt
                // those rooms from their replicas, as they would a dead node's (a cut shorter than
                // their fence, or healed before they saw it, leaves them nothing else to go on).
                // Drawn after the isolation, so that a snapshot the replicator tags with the new
                // incarnation is never one of the rooms just dropped.
                view.new_incarnation();
            }
            continue;
        }
        if local.rejoin() {
            rejoined = tokio::time::Instant::now();
            silent.clear();
        }
        let mut dead: HashSet<String> = view
            .members()
            .into_iter()
            .filter(|m| m.state == MemberState::Unreachable)
            .map(|m| m.id)
            .collect();
        dead.extend(view.departed());
        silent.retain(|n, _| dead.contains(n));
        lost.retain(|n| dead.contains(n));
        // Just back from being cut off, this node's view still shows unreachable the peers it
        // has not heard yet: their sessions are not lost (seats of players still playing there
        // were disconnected, and released after the grace, in the chaos soak). Those that stay
        // unreachable for a failure timeout are.
        let settled = tokio::time::Instant::now().duration_since(rejoined) >= failure_timeout;
        let departed = view.departed();
        let newly: Vec<NodeId> = dead
            .iter()
            .filter(|n| settled || departed.contains(*n))
            .filter(|n| lost.insert((*n).clone()))
            .map(|n| NodeId::new(n.as_str()))
            .collect();
        if !newly.is_empty() {
            local.homes_lost(newly);
        }
        // A silent peer still linked may still be running its rooms (see `fence`): not yet, and
        // not while most other nodes still hear it (see `unseen_by_most`).
        let now = tokio::time::Instant::now();
        let members = view.members();
        dead.retain(|n| {
            if departed.contains(n) || (settled && inbox_of(n).is_none()) {
                return true;
            }
            if now.duration_since(*silent.entry(n.clone()).or_insert(now)) < fence {
                return false;
            }
            let gone = unseen_by_most(&members, n);
            if !gone && held_back.insert(n.clone()) {
                debug!(peer = %n, "silent here but heard by most other nodes: its rooms are not adopted");
            }
            gone
        });
        held_back.retain(|n| silent.contains_key(n));
        // A node started again under its id (faster than the failure timeout, perhaps), or back
        // from being cut off: what its previous process hosted is gone with it, as with a node
        // that died. Its rooms are adopted first, so that they too let go of the old sessions.
        let restarted = view.take_restarted();
        if !restarted.is_empty() {
            debug!(nodes = ?restarted, replicas = replicas.len(), "adopting what replaced processes hosted");
        }
        for (node, gone) in &restarted {
            replicas.retire(node, gone);
        }
        let replaced: std::collections::BTreeSet<String> = restarted.into_keys().collect();
        let stale = replicas.stale.load(std::sync::atomic::Ordering::Relaxed);
        if (!dead.is_empty() || stale || !replaced.is_empty()) && !replicas.is_empty() {
            for (room, held) in replicas.take_of(&dead, &departed, &replaced, failure_timeout) {
                local
                    .revive(room, &held.host, held.epoch, held.snapshot)
                    .await;
            }
        }
        if !replaced.is_empty() {
            local.homes_replaced(replaced.into_iter().map(NodeId::new).collect());
        }
        // A peer heard again may host a room this node adopted while it could not hear it (its
        // messages stalled one way): say where every room here lives, so that the loser of the
        // two copies drops its own (`LocalNode::located`).
        let back = view.take_rejoined();
        if !back.is_empty() {
            local.announce_hosted();
            // The same processes, out of sight for a while: their sessions may hold players
            // whose seats here were disconnected meanwhile.
            local.homes_back(back.into_iter().map(NodeId::new).collect());
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeSet, HashSet};
    use std::sync::atomic::Ordering;
    use std::time::Duration;

    use super::{Held, Replicas};
    use crate::wire::Replica;
    use warren_protocol::RoomId;

    fn replica(room: &str, epoch: u64) -> Replica {
        Replica {
            room: room.into(),
            epoch,
            snapshot: vec![1],
        }
    }

    fn rooms(taken: Vec<(RoomId, Held)>) -> Vec<String> {
        let mut out: Vec<String> = taken.into_iter().map(|(r, _)| r.to_string()).collect();
        out.sort();
        out
    }

    /// A node killed and started again under its id: the backup adopts what its previous process
    /// sent, even a snapshot read after the restart was heard, and never what the new process
    /// sent (a room that moved there runs there: adopting it too ran it twice in the chaos soak).
    #[test]
    fn only_what_a_replaced_process_sent_is_adopted() {
        let r = Replicas::default();
        let (none, long) = (HashSet::new(), Duration::from_secs(10));
        let gone = BTreeSet::new();
        let x = BTreeSet::from(["x".to_owned()]);
        r.keep("x".into(), Some(1), vec![replica("x.a", 3)]);
        r.keep("x".into(), Some(2), vec![replica("x.b", 5)]);
        r.retire("x", &[1]);
        assert_eq!(rooms(r.take_of(&none, &gone, &x, long)), ["x.a"]);

        // Sent by the old process before it went, read after: adopted at the next look.
        r.keep("x".into(), Some(1), vec![replica("x.c", 1)]);
        assert!(r.stale.load(Ordering::Relaxed));
        assert_eq!(
            rooms(r.take_of(&none, &gone, &BTreeSet::new(), long)),
            ["x.c"]
        );
        assert!(!r.stale.load(Ordering::Relaxed));

        // The current process's snapshot stays, however often the guardian looks.
        assert!(r.take_of(&none, &gone, &x, long).is_empty());
        assert_eq!(r.len(), 1);

        // A host that dies: everything it sent, once older than the fresh bound.
        let dead = HashSet::from(["x".to_owned()]);
        assert!(r.take_of(&dead, &gone, &BTreeSet::new(), long).is_empty());
        assert_eq!(
            rooms(r.take_of(&dead, &gone, &BTreeSet::new(), Duration::ZERO)),
            ["x.b"]
        );

        // A node of protocol 8 sends no incarnation: all of a replaced host's snapshots, as before.
        r.keep("y".into(), None, vec![replica("y.a", 1)]);
        let y = BTreeSet::from(["y".to_owned()]);
        assert_eq!(rooms(r.take_of(&none, &gone, &y, long)), ["y.a"]);
    }

    /// A host that drained and left the cluster with a room it could not move: its backup takes
    /// the room at once, however recent the snapshot (the guardian, seeing the host departed,
    /// skipped a fresh one before; the drained node's next process came back within the failure
    /// timeout, and nothing took the room after that).
    #[test]
    fn what_a_departed_host_sent_is_taken_however_recent() {
        let r = Replicas::default();
        let long = Duration::from_secs(10);
        r.keep("x".into(), Some(1), vec![replica("x.a", 3)]);
        r.keep("y".into(), Some(1), vec![replica("y.a", 3)]);
        let departed = BTreeSet::from(["x".to_owned()]);
        let dead = HashSet::from(["x".to_owned()]);
        assert_eq!(
            rooms(r.take_of(&dead, &departed, &BTreeSet::new(), long)),
            ["x.a"]
        );
        assert_eq!(r.len(), 1);
    }

    #[test]
    fn a_host_keeps_only_its_latest_retired_incarnations() {
        let r = Replicas::default();
        for i in 0..20 {
            r.retire("x", &[i]);
        }
        assert!(!r.is_retired("x", Some(11)));
        assert!(r.is_retired("x", Some(12)));
        assert!(r.is_retired("x", Some(19)));
        assert!(!r.is_retired("x", None));
    }
}
