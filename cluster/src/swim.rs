//! SWIM membership on [foca]: failure detection by probing (a random member each period, others
//! asked to probe it indirectly when it does not answer, suspicion it can refute), and the
//! dissemination of membership changes and of each node's status on the messages that probing
//! sends anyway. Each node sends a bounded number of messages per period whatever the cluster's
//! size, where all-to-all heartbeats cost every node one message per peer per beat (issue 23:
//! 8→32 nodes made each node's idle traffic 10.6× and its CPU 5×).
//!
//! foca does no IO. [`Swim`] holds one foca instance and collects what it asks for (bytes to send
//! to a member, timers to run, membership events) in an [`Output`] that its owner carries out: the
//! bytes travel over the cluster's authenticated links (cookie, mutual TLS), never a port of their
//! own.
//!
//! - **Identity** ([`NodeIdentity`]): the node id (foca's address: one member per id), the address
//!   its peers dial, when its process started, and a bump. A node declared down comes back under
//!   a bumped identity; a restarted process wins over its previous one by its start time.
//! - **Status** (ready or draining, version, rooms, …) is opaque bytes here, disseminated as a foca
//!   broadcast ordered by the process's start time and a counter: a newer status replaces an older
//!   one wherever it meets it. A broadcast lives for a few transmissions, so a member that comes
//!   up later is sent each node's status directly, once, by that node ([`Output::statuses`]).
//! - **A closed link** is evidence, not proof: [`Swim::suspect`] marks the member suspect, which it
//!   refutes if alive; a killed process, whose links all close at once, is down everywhere one
//!   suspicion timeout later.

use std::collections::HashMap;
use std::num::{NonZeroU8, NonZeroUsize};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use foca::{
    BroadcastHandler, Config, Foca, Identity, Invalidates, Member, Notification, PeriodicParams,
    PostcardCodec, Runtime, State, Timer,
};
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

/// A member as SWIM knows it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct NodeIdentity {
    /// The node id: one member per id.
    pub id: String,
    /// The address its peers dial.
    pub advertise: String,
    /// When its process started (ms since the Unix epoch): a restarted process is newer.
    pub started: u64,
    /// Raised each time the process comes back after being declared down, or cut itself off.
    pub bump: u32,
}

impl NodeIdentity {
    /// Orders the processes, and the comebacks of one process, that have used this id.
    fn age(&self) -> (u64, u32) {
        (self.started, self.bump)
    }
}

impl Identity for NodeIdentity {
    type Addr = String;

    fn renew(&self) -> Option<Self> {
        Some(Self {
            bump: self.bump.wrapping_add(1),
            ..self.clone()
        })
    }

    fn addr(&self) -> String {
        self.id.clone()
    }

    fn win_addr_conflict(&self, adversary: &Self) -> bool {
        self.age() > adversary.age()
    }
}

/// One node's status as it travels: opaque bytes, ordered by the process and a counter.
#[derive(Serialize, Deserialize)]
struct StatusItem {
    node: String,
    started: u64,
    seq: u64,
    body: Vec<u8>,
}

/// What identifies a status among those in flight: a newer one of the same node replaces it.
pub struct StatusKey {
    node: String,
    order: (u64, u64),
}

impl Invalidates for StatusKey {
    fn invalidates(&self, other: &Self) -> bool {
        self.node == other.node && self.order >= other.order
    }
}

/// A status that could not be read.
#[derive(Debug, thiserror::Error)]
#[error("unreadable node status: {0}")]
pub struct StatusError(#[from] postcard::Error);

/// The newest status heard of each node.
#[derive(Default)]
struct StatusTable {
    latest: HashMap<String, ((u64, u64), Vec<u8>)>,
    /// Raised by every status kept.
    version: u64,
}

impl StatusTable {
    /// Keeps a status if it is newer than the one held; its key when it is.
    fn take(&mut self, data: &[u8]) -> Result<Option<StatusKey>, StatusError> {
        let item: StatusItem = postcard::from_bytes(data)?;
        let order = (item.started, item.seq);
        if self
            .latest
            .get(&item.node)
            .is_some_and(|(held, _)| *held >= order)
        {
            return Ok(None);
        }
        self.latest.insert(item.node.clone(), (order, item.body));
        self.version += 1;
        Ok(Some(StatusKey {
            node: item.node,
            order,
        }))
    }
}

/// foca's broadcast handler: the table, shared with [`Swim`], which reads it.
struct Statuses(Arc<Mutex<StatusTable>>);

impl BroadcastHandler<NodeIdentity> for Statuses {
    type Key = StatusKey;
    type Error = StatusError;

    fn receive_item(
        &mut self,
        data: &[u8],
        _sender: Option<&NodeIdentity>,
    ) -> Result<Option<StatusKey>, StatusError> {
        lock(&self.0).take(data)
    }
}

fn lock(t: &Mutex<StatusTable>) -> std::sync::MutexGuard<'_, StatusTable> {
    t.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A membership change, in the order foca saw them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A member became active (alive or suspect).
    Up(NodeIdentity),
    /// A member was declared down.
    Down(NodeIdentity),
    /// A newer identity replaced a member's (a restart, or a comeback after being declared down).
    Renamed {
        /// The identity replaced.
        old: NodeIdentity,
        /// The one now used.
        new: NodeIdentity,
    },
    /// This node was declared down and came back under a new identity.
    Rejoined(NodeIdentity),
    /// This node knows no active member.
    Alone,
    /// Some active member knows this node's current identity.
    Joined,
    /// A probe of this member got no answer, directly or through others (the member becomes
    /// suspect, unless it already was or answered meanwhile).
    ProbeFailed(NodeIdentity),
}

/// What foca asked for, to be carried out by the owner.
#[derive(Default)]
pub struct Output {
    /// Bytes for a member (its membership actor's [`Swim::handle_data`]).
    pub sends: Vec<(NodeIdentity, Vec<u8>)>,
    /// Timers: each to be handed back to [`Swim::handle_timer`] after its delay.
    pub timers: Vec<(Timer<NodeIdentity>, Duration)>,
    /// Membership changes.
    pub events: Vec<Event>,
    /// This node's status for a member that came up (to its [`Swim::handle_status`]).
    pub statuses: Vec<(NodeIdentity, Vec<u8>)>,
    /// The senders of the messages taken, one entry per message.
    pub heard: Vec<String>,
}

impl Runtime<NodeIdentity> for Output {
    fn notify(&mut self, n: Notification<'_, NodeIdentity>) {
        let event = match n {
            Notification::MemberUp(id) => Event::Up(id.clone()),
            Notification::MemberDown(id) => Event::Down(id.clone()),
            Notification::Rename(old, new) => Event::Renamed {
                old: old.clone(),
                new: new.clone(),
            },
            Notification::Rejoin(id) => Event::Rejoined(id.clone()),
            Notification::Idle => Event::Alone,
            Notification::Active => Event::Joined,
            Notification::ProbeFailed(_, id) => Event::ProbeFailed(id.clone()),
            // Identities renew themselves: foca rejoins instead of going defunct. A message in is
            // no event (its sender is noted), nor is one out.
            Notification::DataReceived(h) => {
                self.heard.push(h.src.id.clone());
                return;
            }
            Notification::Defunct | Notification::DataSent(_) => return,
        };
        self.events.push(event);
    }

    fn send_to(&mut self, to: NodeIdentity, data: &[u8]) {
        self.sends.push((to, data.to_vec()));
    }

    fn submit_after(&mut self, event: Timer<NodeIdentity>, after: Duration) {
        self.timers.push((event, after));
    }
}

/// foca's settings for a cluster whose failure timeout is `failure_timeout`: a dead member is
/// suspected within about one probe period (a quarter of the timeout) and declared down half a
/// timeout later; a member stopped for half the timeout answers, or refutes the suspicion, before
/// that. Updates go out with the probes and, every tenth of the timeout, to three members more.
pub fn config(failure_timeout: Duration) -> Config {
    let ft = failure_timeout.max(Duration::from_millis(200));
    let mut c = Config::simple();
    c.probe_period = ft / 4;
    c.probe_rtt = ft / 10;
    c.num_indirect_probes = NonZeroUsize::new(3).expect("3 > 0");
    // Enough for updates to reach some hundreds of members (memberlist's rule: 4·log10(n + 1)).
    c.max_transmissions = NonZeroU8::new(10).expect("10 > 0");
    c.suspect_to_down_after = ft / 2;
    // Links are TCP: one message may carry every update and status in flight.
    c.max_packet_size = NonZeroUsize::new(64 * 1024).expect("64 KiB > 0");
    c.notify_down_members = true;
    c.periodic_gossip = Some(PeriodicParams {
        frequency: ft / 10,
        num_members: NonZeroUsize::new(3).expect("3 > 0"),
    });
    c.periodic_announce = Some(PeriodicParams {
        frequency: Duration::from_secs(30),
        num_members: NonZeroUsize::new(1).expect("1 > 0"),
    });
    c.periodic_announce_to_down_members = Some(PeriodicParams {
        frequency: ft * 5,
        num_members: NonZeroUsize::new(2).expect("2 > 0"),
    });
    c
}

/// An error of the SWIM layer (a malformed message, or a status too large to send).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SwimError(String);

impl From<foca::Error> for SwimError {
    fn from(e: foca::Error) -> Self {
        Self(e.to_string())
    }
}

/// How many members a node that is not connected announces itself to at a time.
const REANNOUNCE_TO: usize = 3;

/// One node's SWIM membership: a foca instance and what it asked for since it was last taken.
pub struct Swim {
    foca: Foca<NodeIdentity, PostcardCodec, StdRng, Statuses>,
    out: Output,
    statuses: Arc<Mutex<StatusTable>>,
    /// This node's status as it travels (empty until set), and its counter.
    status: Vec<u8>,
    seq: u64,
    /// Whether foca probes (it knows an active member that knows this node's identity). Off
    /// after a rejoin until a member answers the new identity.
    connected: bool,
}

impl Swim {
    /// A member that knows nobody yet (it joins by [`Swim::announce`]).
    pub fn new(identity: NodeIdentity, config: Config, seed: u64) -> Self {
        let statuses = Arc::new(Mutex::new(StatusTable::default()));
        let foca = Foca::with_custom_broadcast(
            identity,
            config,
            StdRng::seed_from_u64(seed),
            PostcardCodec,
            Statuses(statuses.clone()),
        );
        Self {
            foca,
            out: Output::default(),
            statuses,
            status: Vec::new(),
            seq: 0,
            connected: false,
        }
    }

    /// This node's identity now.
    pub fn identity(&self) -> &NodeIdentity {
        self.foca.identity()
    }

    /// Asks `to` to let this node in (it answers with what it knows).
    pub fn announce(&mut self, to: NodeIdentity) -> Result<(), SwimError> {
        self.foca.announce(to, &mut self.out)?;
        Ok(())
    }

    /// Bytes another member sent.
    pub fn handle_data(&mut self, data: &[u8]) -> Result<(), SwimError> {
        self.foca.handle_data(data, &mut self.out)?;
        Ok(())
    }

    /// A timer foca asked for is due.
    pub fn handle_timer(&mut self, timer: Timer<NodeIdentity>) -> Result<(), SwimError> {
        self.foca.handle_timer(timer, &mut self.out)?;
        Ok(())
    }

    /// Sets this node's status, to be disseminated to every member.
    pub fn set_status(&mut self, body: Vec<u8>) -> Result<(), SwimError> {
        self.seq += 1;
        let item = StatusItem {
            node: self.identity().id.clone(),
            started: self.identity().started,
            seq: self.seq,
            body,
        };
        self.status = postcard::to_allocvec(&item).map_err(|e| SwimError(e.to_string()))?;
        self.foca.add_broadcast(&self.status)?;
        Ok(())
    }

    /// This node's status as it travels (empty until [`Swim::set_status`]), for a member that asks.
    pub fn own_status(&self) -> &[u8] {
        &self.status
    }

    /// A status a member sent this node directly (it came up after that status went out).
    pub fn handle_status(&mut self, data: &[u8]) -> Result<(), SwimError> {
        lock(&self.statuses)
            .take(data)
            .map_err(|e| SwimError(e.to_string()))?;
        Ok(())
    }

    /// The node whose status `data` is (a [`Body::SwimStatus`](crate::wire::Body) as it travels);
    /// `None` when it is not one.
    pub fn status_node(data: &[u8]) -> Option<String> {
        postcard::from_bytes::<StatusItem>(data)
            .ok()
            .map(|s| s.node)
    }

    /// Members that came up since the last look get this node's status directly: the broadcast
    /// that carried it may have been sent its last time before they joined. A rejoin announces
    /// the new identity at once ([`Swim::reannounce`]).
    fn after_events(&mut self) {
        let mut rejoined = false;
        for e in &self.out.events {
            match e {
                Event::Joined => self.connected = true,
                Event::Alone => self.connected = false,
                Event::Rejoined(_) => {
                    self.connected = false;
                    rejoined = true;
                }
                _ => {}
            }
        }
        if rejoined {
            // Best effort: the owner's periodic [`Swim::reannounce`] tries again while this node
            // is not connected.
            let _ = self.announce_to_some();
        }
        if self.status.is_empty() {
            return;
        }
        let up: Vec<NodeIdentity> = self
            .out
            .events
            .iter()
            .filter_map(|e| match e {
                Event::Up(id) | Event::Renamed { new: id, .. } => Some(id.clone()),
                _ => None,
            })
            .filter(|id| !self.out.statuses.iter().any(|(to, _)| to == id))
            .collect();
        for id in up {
            self.out.statuses.push((id, self.status.clone()));
        }
    }

    /// After a rejoin, foca takes no message addressed to anything but its new identity, which
    /// its members learn only from a message it sends them, and it sends its gossip and probes to
    /// their identities as it knows them. Members that rejoined at the same moment (one member
    /// declared them all down) then drop each other's messages: they declare each other down, or,
    /// rejoined from a message that left foca without a member to talk to, never probe again and
    /// keep counting every member alive, the one that declared them down included. An announce
    /// is taken under any identity of the receiver's id and answered to the new one, so a node
    /// that rejoined announces itself to a few active members at once, and again, through this
    /// method, while it is not connected. A no-op once connected.
    pub fn reannounce(&mut self) -> Result<(), SwimError> {
        if self.connected {
            return Ok(());
        }
        self.announce_to_some()
    }

    fn announce_to_some(&mut self) -> Result<(), SwimError> {
        use rand::seq::IteratorRandom;
        let to: Vec<NodeIdentity> = self
            .foca
            .iter_members()
            .map(|m| m.id().clone())
            .choose_multiple(&mut rand::rng(), REANNOUNCE_TO);
        for id in to {
            self.foca.announce(id, &mut self.out)?;
        }
        Ok(())
    }

    /// The link to member `id` closed: suspected, unless it proves alive within the suspicion
    /// timeout.
    pub fn suspect(&mut self, id: &str) -> Result<(), SwimError> {
        let Some(m) = self
            .foca
            .iter_members()
            .find(|m| m.id().id == id && m.state() == State::Alive)
            .cloned()
        else {
            return Ok(());
        };
        let suspect = Member::new(m.id().clone(), m.incarnation(), State::Suspect);
        self.foca
            .apply_many(std::iter::once(suspect), true, &mut self.out)?;
        Ok(())
    }

    /// This node leaves: a few members are told at once, and the rest learn it by gossip.
    pub fn leave(&mut self) -> Result<(), SwimError> {
        self.foca.leave_cluster(&mut self.out)?;
        Ok(())
    }

    /// Every active member (alive or suspect) but this node, with its state.
    pub fn members(&self) -> impl Iterator<Item = (&NodeIdentity, State)> {
        self.foca.iter_members().map(|m| (m.id(), m.state()))
    }

    /// The newest status heard of node `id` (this node's own included).
    pub fn status_of(&self, id: &str) -> Option<Vec<u8>> {
        lock(&self.statuses).latest.get(id).map(|(_, b)| b.clone())
    }

    /// A number raised by every newer status heard: unchanged, no status changed.
    pub fn status_version(&self) -> u64 {
        lock(&self.statuses).version
    }

    /// Takes what foca asked for since the last call.
    pub fn take_output(&mut self) -> Output {
        self.after_events();
        std::mem::take(&mut self.out)
    }
}

#[cfg(test)]
mod sim;
