//! `Membership`: this node's view of the cluster.
//!
//! Between nodes of this build (cluster protocol 11 on), membership is SWIM ([`crate::swim`]):
//! each node probes one member per period, asks others to probe it indirectly when it does not
//! answer, and declares it unreachable when the suspicion is not refuted; node status (ready or
//! draining, version, rooms, …) rides on the same messages. A node's cost is the same at 8 nodes
//! as at 64. SWIM's messages travel over the cluster's authenticated links to the membership
//! actor's own `pg` group ([`swim_group`]).
//!
//! Nodes of an older build speak heartbeats: they send their status to the `Membership` of every
//! connected peer (the [`GROUP`] `pg` group) and mark a peer `unreachable` when none arrived for
//! `cluster.failure_timeout_ms`. During a rolling upgrade this node heartbeats those, and only
//! those (members of [`GROUP`] in no [`swim_group`]), and takes their heartbeats as before.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use ractor::{Actor, ActorProcessingErr, ActorRef, pg};
use serde::Serialize;
use tracing::{debug, info, warn};

use warren_actors::ring::Ring;
use warren_protocol::NodeId;

use warren_actors::game::{GameVersions, node_reads};

use crate::swim::{self, Event, NodeIdentity, Swim};
use crate::wire::{
    Body, CLUSTER_PROTOCOL, Envelope, HeartbeatTail, NodeState, NodeStatus, SwimStatus, Wire,
};

/// The `pg` group every node's membership actor joins.
pub const GROUP: &str = "warren.membership";

const SWIM_PREFIX: &str = "warren.membership.swim/";

/// The `pg` group of node `node`'s membership actor when its build speaks SWIM: SWIM's messages
/// for it go there.
pub fn swim_group(node: &str) -> String {
    format!("{SWIM_PREFIX}{node}")
}

/// The nodes whose membership actors speak SWIM, by their groups.
fn swim_nodes() -> Vec<String> {
    pg::which_groups()
        .into_iter()
        .filter_map(|g| g.strip_prefix(SWIM_PREFIX).map(str::to_owned))
        .collect()
}

/// How often, at most, a change of the rooms and sessions counts alone goes out on SWIM (a change
/// of state, incarnation or games goes at once).
const COUNTS_EVERY: Duration = Duration::from_secs(1);

/// What the node reports about itself, read at every heartbeat.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LocalStatus {
    /// Draining.
    pub draining: bool,
    /// Rooms hosted.
    pub rooms: u32,
    /// Live sessions.
    pub sessions: u32,
}

/// Reads the node's status.
pub type StatusFn = Arc<dyn Fn() -> LocalStatus + Send + Sync>;

/// One member as `/v1/cluster` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MemberView {
    /// Node id.
    pub id: String,
    /// Ready, draining or unreachable, as this node sees it.
    pub state: MemberState,
    /// Build version.
    pub version: String,
    /// Rooms hosted.
    pub rooms: u32,
    /// Live sessions.
    pub sessions: u32,
    /// Address peers dial.
    #[serde(skip)]
    pub advertise: String,
    /// The cluster protocol its messages carry ([`crate::wire::CLUSTER_PROTOCOL`] of its build):
    /// message kinds newer than that must not be sent to it.
    #[serde(skip)]
    pub proto: u32,
    /// The games it runs with the state versions each restores (`None`: it did not say).
    #[serde(skip)]
    pub games: Option<Arc<GameVersions>>,
    /// How many other reachable members said, in their last heartbeat, that they reach it: a
    /// member this node cannot hear but others can is out of this node's sight, not gone.
    #[serde(skip)]
    pub reached_by: u32,
    /// The incarnation of its process, from its last heartbeat (`None`: not said, or this node).
    #[serde(skip)]
    pub incarnation: Option<u64>,
    /// Heard again, after being unreachable, less than a failure timeout ago: what arrives from
    /// it now may have been sent before it was cut off (its link delivers the backlog first).
    #[serde(skip)]
    pub settling: bool,
}

/// A member's state as this node sees it (`/v1/cluster`, `warren_cluster_nodes{state}`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MemberState {
    /// Reachable and taking players and rooms.
    Ready,
    /// Reachable and draining.
    Draining,
    /// Silent for longer than the failure timeout.
    Unreachable,
}

impl MemberState {
    /// Every state, in the order metrics list them.
    pub const ALL: [MemberState; 3] = [Self::Ready, Self::Draining, Self::Unreachable];

    /// Its name in JSON and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ready => "ready",
            Self::Draining => "draining",
            Self::Unreachable => "unreachable",
        }
    }
}

/// The latest view, readable without asking the actor.
#[derive(Default)]
pub struct ClusterView {
    members: RwLock<Vec<MemberView>>,
    departed: RwLock<std::collections::BTreeSet<String>>,
    candidates: RwLock<Vec<String>>,
    ring: RwLock<Arc<Ring>>,
    /// Members heard from a new process under their id (killed and started again): their previous
    /// process's rooms are to be adopted. Taken by the guardian, with the incarnations that are
    /// gone.
    restarted: RwLock<std::collections::BTreeMap<String, Vec<u64>>>,
    /// This process's incarnation, sent in every heartbeat: drawn at start, and again whenever
    /// the node drops its rooms and sessions for being cut off (its peers then treat what it
    /// hosted before as they would a dead process's).
    incarnation: std::sync::atomic::AtomicU64,
    /// Members heard again after being unreachable, since the guardian last looked: while this
    /// node could not hear them, it may have adopted rooms they still ran (a one-way stall), and
    /// they did not hear it say so.
    rejoined: RwLock<std::collections::BTreeSet<String>>,
}

/// Empties a set of member ids and returns what it held.
fn take_set(
    set: &RwLock<std::collections::BTreeSet<String>>,
) -> std::collections::BTreeSet<String> {
    std::mem::take(
        &mut *set
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    )
}

/// Whether most of the members that can vote (this node, first in `members`, and every other
/// reachable member but `id`) do not reach `id`, by their last heartbeats' `known` lists. A node
/// silent here but heard by most others is out of this node's sight (a link stalled one way), and
/// still runs its rooms: adopting them ran two copies in the chaos soak.
pub fn unseen_by_most(members: &[MemberView], id: &str) -> bool {
    let voters = members
        .iter()
        .enumerate()
        .filter(|(i, m)| *i == 0 || (m.state != MemberState::Unreachable && m.id != id))
        .count();
    let reached_by = members
        .iter()
        .find(|m| m.id == id)
        .map_or(0, |m| m.reached_by as usize);
    voters.saturating_sub(reached_by) * 2 > voters
}

impl ClusterView {
    /// Every known member, this node first, then by id.
    pub fn members(&self) -> Vec<MemberView> {
        self.members
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Whether some other member is reachable (read in place).
    pub fn has_live_peer(&self) -> bool {
        self.members
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .skip(1)
            .any(|m| m.state != MemberState::Unreachable)
    }

    /// Whether `id` is a member that is not unreachable (read in place, without a copy of the
    /// member list: it is asked on every request to another node).
    pub fn is_reachable(&self, id: &str) -> bool {
        self.members
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .any(|m| m.id == id && m.state != MemberState::Unreachable)
    }

    /// Whether a request that `id` sent as process `incarnation` is as current as this node can
    /// tell: `id` is reachable, its heartbeats name that process, and it has not just been heard
    /// again after being unreachable (the backlog of a healed link, sent before the node was cut
    /// off and replaced its process, arrives ahead of the heartbeats that would say so).
    pub fn is_current(&self, id: &str, incarnation: u64) -> bool {
        self.members
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .any(|m| {
                m.id == id
                    && m.state != MemberState::Unreachable
                    && !m.settling
                    && m.incarnation == Some(incarnation)
            })
    }

    /// Whether member `id` restores rooms of `game` at state `version` (unknown members do not).
    pub fn reads(&self, id: &str, game: &str, version: u32) -> bool {
        self.members
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .any(|m| m.id == id && node_reads(m.games.as_deref(), game, version))
    }

    /// Whether `id` is a reachable member whose build reads messages of cluster protocol `proto`.
    pub fn speaks(&self, id: &str, proto: u32) -> bool {
        self.members
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .any(|m| m.id == id && m.state != MemberState::Unreachable && m.proto >= proto)
    }

    /// Addresses worth dialing: every member ever heard of, and every address peers gossiped.
    pub fn candidates(&self) -> Vec<String> {
        self.candidates
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The hash ring over ready, reachable members, on which matchmaking pools are placed.
    pub fn ring(&self) -> Arc<Ring> {
        self.ring
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Nodes that announced they drained and left (until they come back).
    pub fn departed(&self) -> std::collections::BTreeSet<String> {
        self.departed
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Members heard again after being unreachable since the last call.
    pub fn take_rejoined(&self) -> std::collections::BTreeSet<String> {
        take_set(&self.rejoined)
    }

    /// This node's current incarnation.
    pub fn incarnation(&self) -> u64 {
        self.incarnation.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Draws a new incarnation: this node dropped every room and session it had.
    pub fn new_incarnation(&self) {
        self.incarnation
            .store(rand::random(), std::sync::atomic::Ordering::SeqCst);
    }

    /// Members whose process was replaced (a restart under the same id, seen by its heartbeats'
    /// incarnation) since the last call, each with the incarnations replaced.
    pub fn take_restarted(&self) -> std::collections::BTreeMap<String, Vec<u64>> {
        std::mem::take(
            &mut *self
                .restarted
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }

    /// Whether this node sees a strict majority of the last known cluster: every member it has
    /// heard of that did not leave, reachable or not, itself included. Only a majority side hosts
    /// rooms and adopts those of unreachable nodes, so a partition never leaves two live copies.
    pub fn majority(&self) -> bool {
        let members = self
            .members
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let up = members
            .iter()
            .filter(|m| m.state != MemberState::Unreachable)
            .count();
        up * 2 > members.len().max(1)
    }

    fn set(&self, v: Vec<MemberView>, candidates: Vec<String>) {
        let mut ready: Vec<NodeId> = v
            .iter()
            .filter(|m| m.state == MemberState::Ready)
            .map(|m| NodeId::new(m.id.clone()))
            .collect();
        ready.sort_unstable();
        if self.ring().nodes() != ready.as_slice() {
            let ring = Ring::new(ready);
            metrics::gauge!("warren_cluster_pool_spread").set(ring.spread());
            *self
                .ring
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(ring);
        }
        *self
            .members
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = v;
        *self
            .candidates
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = candidates;
    }
}

/// How the membership actor starts.
pub struct MembershipArgs {
    /// This node's id.
    pub node: String,
    /// Build version.
    pub version: String,
    /// Address peers dial.
    pub advertise: String,
    /// Heartbeat silence before a peer is unreachable.
    pub failure_timeout: Duration,
    /// Unreachable this long, a member is forgotten (`None`: never).
    pub forget_after: Option<Duration>,
    /// Reads this node's status.
    pub status: StatusFn,
    /// The games this node runs, with the state versions each restores (sent in every heartbeat).
    pub games: GameVersions,
    /// Where the view is published (and this node's incarnation read).
    pub view: Arc<ClusterView>,
}

struct Peer {
    status: NodeStatus,
    proto: u32,
    games: Option<Arc<GameVersions>>,
    /// The process heard from (protocol 7 on), to tell a restart from a silence.
    incarnation: Option<u64>,
    last: Instant,
    reachable: bool,
    /// When it was last heard again after being unreachable.
    back_at: Option<Instant>,
    /// Known through SWIM (reachable while SWIM has it active), not heartbeats.
    swim: bool,
}

/// The membership actor.
pub struct Membership;

/// Its state.
pub struct MembershipState {
    args: MembershipArgs,
    peers: HashMap<String, Peer>,
    /// Addresses peers gossiped (their reachable peers'), and when last heard: one no peer has
    /// named for [`GOSSIP_TTL`] is dropped, so a dead node's address is not dialed for ever.
    gossip: HashMap<String, Instant>,
    swim: Swim,
    /// SWIM's timers waiting, by the key their message carries.
    timers: HashMap<u64, foca::Timer<NodeIdentity>>,
    next_timer: u64,
    /// Nodes in a SWIM group that SWIM does not have active, and when this node last announced
    /// itself to each.
    announced: HashMap<String, Instant>,
    /// Members whose status has not arrived, and when this node last asked each for it.
    asked: HashMap<String, Instant>,
    /// The status last put on SWIM, and when.
    said: Option<(SwimStatus, Instant)>,
    /// [`Swim::status_version`] when the view last took SWIM's statuses in.
    synced: u64,
    /// When this node last announced itself to its members while SWIM was not connected.
    reannounced: Option<Instant>,
    /// The reach check under way, if any (see [`ReachCheck`]).
    check: Option<ReachCheck>,
    /// When the last reach check began.
    checked: Option<Instant>,
    /// Members a reach check found this node cut off from: unreachable in the view until they
    /// are heard again (their status arrives, or SWIM has them up again).
    unanswered: HashSet<String>,
    /// The SWIM members a link was up to at the last tick.
    links: HashSet<String>,
    /// The incarnation each departed node had when it said it leaves: a status of that process
    /// arriving after its farewell (gossip lags behind the direct `Leaving`) is not a return.
    left_as: HashMap<String, u64>,
}

/// A node that cannot reach most of its cluster must stop hosting before the majority adopts
/// its rooms. SWIM alone tells it too late: it probes one member per period, so a node cut off
/// from everyone declares its members down one by one (a majority of 32 takes 16 periods), while
/// the majority, probing it from every side, declares it down within a period and a suspicion.
/// So when one of its probes fails, a node asks every member for its status at once
/// ([`Body::SwimAsk`]), and if fewer than half the cluster answer (or send it anything) within a
/// probe period, it counts those that did not as unreachable: it sees no majority and stops
/// hosting (the chaos soak ran rooms on both sides of a partition for up to 0.8 s without this).
/// Worst case at failure timeout FT: its probe fails FT/2 after the cut, the check ends FT/4 and
/// a tick later; the majority's earliest adoption is a probe period, a suspicion (FT/2) and the
/// adoption fence (0.3·FT + 0.2 s) after the cut.
struct ReachCheck {
    until: Instant,
    asked: HashSet<String>,
    answered: HashSet<String>,
    /// Members came up or this node rejoined while it ran: the links are back, and what did not
    /// answer yet may be on its way. Such a check is run again instead of taken (one ending just
    /// after a partition healed isolated the node again for 1.5 s in the chaos soak).
    overtaken: bool,
}

/// How long a gossiped address is kept after the last peer named it.
const GOSSIP_TTL: Duration = Duration::from_secs(300);

/// Drops the gossiped addresses no peer has named for [`GOSSIP_TTL`].
fn expire(gossip: &mut HashMap<String, Instant>, now: Instant) {
    gossip.retain(|_, at| now.saturating_duration_since(*at) < GOSSIP_TTL);
}

/// The most gossiped addresses kept (a cluster's nodes; a bound against a peer that gossips junk).
const MAX_GOSSIP: usize = 4096;

impl Actor for Membership {
    type Msg = Wire;
    type State = MembershipState;
    type Arguments = MembershipArgs;

    async fn pre_start(
        &self,
        me: ActorRef<Wire>,
        args: MembershipArgs,
    ) -> Result<MembershipState, ActorProcessingErr> {
        pg::join(GROUP.to_owned(), vec![me.get_cell()]);
        pg::join(swim_group(&args.node), vec![me.get_cell()]);
        // Ten heartbeats (and re-evaluations) per timeout: a few lost ones do not make a peer
        // unreachable, and a dead one is noticed within a tenth of the timeout after it expires.
        let every = (args.failure_timeout / 10).max(Duration::from_millis(20));
        me.send_interval(every, || Envelope::encode(Body::Tick));
        let started = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let identity = NodeIdentity {
            id: args.node.clone(),
            advertise: args.advertise.clone(),
            started,
            bump: 0,
        };
        let swim = Swim::new(identity, swim::config(args.failure_timeout), rand::random());
        let mut st = MembershipState {
            args,
            peers: HashMap::new(),
            gossip: Default::default(),
            swim,
            timers: HashMap::new(),
            next_timer: 0,
            announced: HashMap::new(),
            asked: HashMap::new(),
            said: None,
            synced: 0,
            reannounced: None,
            check: None,
            checked: None,
            unanswered: HashSet::new(),
            links: HashSet::new(),
            left_as: HashMap::new(),
        };
        st.say();
        st.drive(&me);
        st.publish();
        Ok(st)
    }

    async fn handle(
        &self,
        me: ActorRef<Wire>,
        msg: Wire,
        st: &mut MembershipState,
    ) -> Result<(), ActorProcessingErr> {
        let Some(env) = Envelope::open(&msg, "membership") else {
            return Ok(());
        };
        match env.body {
            Body::Tick => st.tick(&me),
            Body::Heartbeat(status) => {
                let games = Envelope::heartbeat_tail(&msg).map(|t| t.games);
                let incarnation = Envelope::heartbeat_incarnation(&msg);
                st.heard(status, env.proto, games, incarnation, false);
                st.publish();
            }
            Body::Swim(bytes) => {
                if let Err(e) = st.swim.handle_data(&bytes) {
                    debug!(error = %e, "SWIM message not taken");
                }
                st.drive(&me);
            }
            Body::SwimStatus(bytes) => {
                if let Some(node) = Swim::status_node(&bytes) {
                    st.answered(&node);
                }
                if let Err(e) = st.swim.handle_status(&bytes) {
                    debug!(error = %e, "SWIM status not taken");
                }
                st.drive(&me);
            }
            Body::SwimVia { to, bytes } => {
                if to == st.args.node {
                    if let Err(e) = st.swim.handle_data(&bytes) {
                        debug!(error = %e, "SWIM message not taken");
                    }
                    st.drive(&me);
                } else {
                    send_to(&to, Body::Swim(bytes));
                }
            }
            Body::SwimAsk { from } => {
                let own = st.swim.own_status();
                if !own.is_empty() {
                    send_to(&from, Body::SwimStatus(own.to_vec()));
                }
            }
            Body::SwimTimer(key) => {
                if let Some(timer) = st.timers.remove(&key) {
                    if let Err(e) = st.swim.handle_timer(timer) {
                        debug!(error = %e, "SWIM timer failed");
                    }
                    st.drive(&me);
                }
            }
            Body::Leaving { node } => st.left(node),
            // Inbox traffic sent to the wrong actor: count it like any other undeliverable message.
            other => {
                metrics::counter!("warren_cluster_decode_errors_total", "actor" => "membership")
                    .increment(1);
                warn!(message = ?std::mem::discriminant(&other), "unexpected message for membership dropped");
            }
        }
        Ok(())
    }
}

impl MembershipState {
    fn me(&self) -> NodeStatus {
        NodeStatus {
            known: self
                .peers
                .values()
                .filter(|p| p.reachable)
                .map(|p| p.status.advertise.clone())
                .collect(),
            ..self.bare()
        }
    }

    /// This node's status without the addresses it reaches.
    fn bare(&self) -> NodeStatus {
        let s = (self.args.status)();
        NodeStatus {
            id: self.args.node.clone(),
            advertise: self.args.advertise.clone(),
            state: if s.draining {
                NodeState::Draining
            } else {
                NodeState::Ready
            },
            version: self.args.version.clone(),
            rooms: s.rooms,
            sessions: s.sessions,
            known: Vec::new(),
        }
    }

    /// Puts this node's status on SWIM when it changed (counts alone: every [`COUNTS_EVERY`]).
    fn say(&mut self) {
        let now = SwimStatus {
            proto: CLUSTER_PROTOCOL,
            status: self.bare(),
            games: self.args.games.clone(),
            incarnation: self.args.view.incarnation(),
        };
        let due = match &self.said {
            None => true,
            Some((old, at)) => {
                old.status.state != now.status.state
                    || old.incarnation != now.incarnation
                    || old.games != now.games
                    || old.status.version != now.status.version
                    || ((old.status.rooms, old.status.sessions)
                        != (now.status.rooms, now.status.sessions)
                        && (at.elapsed() >= COUNTS_EVERY
                            || now.status.state == NodeState::Draining))
            }
        };
        if !due {
            return;
        }
        match postcard::to_allocvec(&now)
            .map_err(|e| e.to_string())
            .and_then(|body| self.swim.set_status(body).map_err(|e| e.to_string()))
        {
            Ok(()) => self.said = Some((now, Instant::now())),
            Err(e) => warn!(error = %e, "this node's status could not go out on SWIM"),
        }
    }

    /// Carries out what SWIM asked for, and takes what changed into the view.
    fn drive(&mut self, me: &ActorRef<Wire>) {
        let out = self.swim.take_output();
        for id in &out.heard {
            self.answered(id);
        }
        for (to, bytes) in out.sends {
            if linked(&to.id) {
                send_to(&to.id, Body::Swim(bytes));
            } else {
                self.relay(&to.id, bytes);
            }
        }
        for (to, bytes) in out.statuses {
            send_to(&to.id, Body::SwimStatus(bytes));
        }
        for (timer, after) in out.timers {
            let key = self.next_timer;
            self.next_timer += 1;
            self.timers.insert(key, timer);
            me.send_after(after, move || Envelope::encode(Body::SwimTimer(key)));
        }
        let back = out
            .events
            .iter()
            .any(|e| matches!(e, Event::Rejoined(_) | Event::Joined));
        let came_up = out
            .events
            .iter()
            .any(|e| matches!(e, Event::Up(_) | Event::Renamed { .. }));
        if let Some(c) = &mut self.check {
            c.overtaken |= back || came_up;
        }
        // Back under a new identity, or heard again by a member: the status this node put on SWIM
        // while it was cut off (a new incarnation, when it stopped hosting) went out to no one.
        if back {
            self.tell_status();
        }
        for e in &out.events {
            match e {
                Event::Rejoined(id) => {
                    warn!(
                        bump = id.bump,
                        "this node's peers declared it unreachable: it rejoined under a new identity"
                    );
                }
                Event::Down(id) => debug!(peer = %id.id, "SWIM: member down"),
                Event::Up(id) => {
                    debug!(peer = %id.id, "SWIM: member up");
                    self.unanswered.remove(&id.id);
                }
                Event::Renamed { old, new } => {
                    debug!(peer = %new.id, old = ?(old.started, old.bump), new = ?(new.started, new.bump), "SWIM: member renamed");
                    self.unanswered.remove(&new.id);
                    // Back after being declared down: its status may have changed meanwhile
                    // (a node cut off draws a new incarnation), and that broadcast was lost.
                    self.ask(&new.id);
                }
                Event::ProbeFailed(id) => {
                    debug!(peer = %id.id, "SWIM: probe failed");
                    self.start_check();
                }
                Event::Alone | Event::Joined => debug!(event = ?e, "SWIM"),
            }
        }
        if !out.events.is_empty() || self.swim.status_version() != self.synced {
            self.sync();
            self.publish();
        }
    }

    /// Takes SWIM's members and their statuses into the peers: a member SWIM has active (alive or
    /// suspect) and whose status arrived is reachable; one it no longer has is unreachable.
    fn sync(&mut self) {
        self.synced = self.swim.status_version();
        let active: HashSet<String> = self.swim.members().map(|(m, _)| m.id.clone()).collect();
        let now = Instant::now();
        for id in &active {
            let Some(body) = self.swim.status_of(id) else {
                continue;
            };
            let s: SwimStatus = match postcard::from_bytes(&body) {
                Ok(s) => s,
                Err(e) => {
                    debug!(peer = %id, error = %e, "unreadable SWIM status");
                    continue;
                }
            };
            if let Some(p) = self.peers.get_mut(id)
                && p.swim
                && p.reachable
                && p.status == s.status
                && p.proto == s.proto
                && p.incarnation == Some(s.incarnation)
                && p.games.as_deref() == Some(&s.games)
            {
                p.last = now;
                continue;
            }
            self.heard(s.status, s.proto, Some(s.games), Some(s.incarnation), true);
        }
        let mut gone = Vec::new();
        for (id, p) in &mut self.peers {
            if p.swim && p.reachable && !active.contains(id) {
                if drained(&p.status) {
                    gone.push(id.clone());
                    continue;
                }
                warn!(peer = %id, "peer unreachable: SWIM declared it down");
                p.reachable = false;
            }
        }
        for id in gone {
            info!(peer = %id, "a drained node is gone and its farewell did not arrive: it leaves the cluster");
            self.left(id);
        }
    }

    /// Sends SWIM's bytes for node `to`, to which no link is up, through a few linked members.
    fn relay(&mut self, to: &str, bytes: Vec<u8>) {
        use rand::seq::IteratorRandom;
        let linked = self
            .peers
            .iter()
            .filter(|(id, p)| p.swim && p.reachable && id.as_str() != to && linked(id))
            .map(|(id, _)| id.clone())
            .choose_multiple(&mut rand::rng(), RELAYS);
        for via in linked {
            send_to(
                &via,
                Body::SwimVia {
                    to: to.to_owned(),
                    bytes: bytes.clone(),
                },
            );
        }
    }

    /// Announces this node to the SWIM-speaking nodes it is linked to and SWIM does not have, and
    /// asks the members whose status has not arrived for it.
    fn announce(&mut self) {
        let active: HashSet<String> = self.swim.members().map(|(m, _)| m.id.clone()).collect();
        let again = self.args.failure_timeout / 2;
        for id in &active {
            if self.swim.status_of(id).is_some()
                || self.asked.get(id).is_some_and(|at| at.elapsed() < again)
            {
                continue;
            }
            self.asked.insert(id.clone(), Instant::now());
            self.ask(id);
        }
        self.asked.retain(|id, _| active.contains(id));
        // Rejoined and not yet answered (the first announce can be lost): again.
        if self.reannounced.is_none_or(|at| at.elapsed() >= again) {
            self.reannounced = Some(Instant::now());
            if let Err(e) = self.swim.reannounce() {
                debug!(error = %e, "SWIM announce failed");
            }
        }
        let nodes = swim_nodes();
        self.announced.retain(|id, _| nodes.contains(id));
        for id in nodes {
            if id == self.args.node || active.contains(&id) {
                continue;
            }
            if self
                .announced
                .get(&id)
                .is_some_and(|at| at.elapsed() < again)
            {
                continue;
            }
            self.announced.insert(id.clone(), Instant::now());
            // foca takes an announce addressed to any identity under the receiver's id.
            let to = NodeIdentity {
                id,
                advertise: String::new(),
                started: 0,
                bump: 0,
            };
            if let Err(e) = self.swim.announce(to) {
                debug!(error = %e, "SWIM announce failed");
            }
        }
    }

    fn tick(&mut self, me: &ActorRef<Wire>) {
        // Heartbeats go to the nodes of older builds only: the members of the heartbeat group
        // outside every SWIM group.
        let swimmers: HashSet<ractor::ActorId> = swim_nodes()
            .iter()
            .flat_map(|n| pg::get_members(&swim_group(n)))
            .map(|c| c.get_id())
            .collect();
        let legacy: Vec<ractor::ActorCell> = pg::get_members(&GROUP.to_owned())
            .into_iter()
            .filter(|c| !c.get_id().is_local() && !swimmers.contains(&c.get_id()))
            .collect();
        if !legacy.is_empty() {
            let tail = HeartbeatTail {
                games: self.args.games.clone(),
            };
            let beat = Envelope::encode_heartbeat(self.me(), &tail, self.args.view.incarnation());
            for cell in legacy {
                crate::inbox::count_sent("heartbeat", &beat);
                let peer: ActorRef<Wire> = cell.into();
                let _ = peer.cast(beat.clone());
            }
        }
        self.say();
        self.announce();
        self.suspect_unlinked();
        self.drive(me);
        self.sync();
        self.end_check();
        // Cut off: ask again until the members answer.
        if !self.unanswered.is_empty() {
            self.start_check();
        }
        let timeout = self.args.failure_timeout;
        for (id, p) in self.peers.iter_mut().filter(|(_, p)| !p.swim) {
            let reachable = p.last.elapsed() < timeout;
            if p.reachable && !reachable {
                warn!(peer = %id, silent_ms = p.last.elapsed().as_millis() as u64, "peer unreachable");
            }
            p.reachable = reachable;
        }
        expire(&mut self.gossip, Instant::now());
        if let Some(forget) = self.args.forget_after {
            let gone: Vec<String> = self
                .peers
                .iter()
                .filter(|(_, p)| !p.reachable && p.last.elapsed() > forget)
                .map(|(id, _)| id.clone())
                .collect();
            for id in gone {
                warn!(peer = %id, "peer unreachable for cluster.forget_after_ms: forgotten, it no longer counts towards the cluster's size");
                self.left(id);
            }
        }
        self.publish();
    }

    /// A member whose link just closed (its process died, most often) is suspected at once: left
    /// to the probes, the first one of a dead member could come up to a probe cycle (a period per
    /// member) later, and a node killed in the chaos soak was declared down 3.1 s after its death
    /// (failure timeout 2 s). A member alive behind a link that closed refutes the suspicion.
    fn suspect_unlinked(&mut self) {
        let now: HashSet<String> = self
            .swim
            .members()
            .map(|(m, _)| m.id.clone())
            .filter(|id| linked(id))
            .collect();
        for id in self.links.difference(&now) {
            if let Err(e) = self.swim.suspect(id) {
                debug!(peer = %id, error = %e, "SWIM suspicion failed");
            }
        }
        self.links = now;
    }

    /// Asks every member for its status ([`ReachCheck`]); at most one check per probe period.
    fn start_check(&mut self) {
        let period = self.args.failure_timeout / 4;
        if self.check.is_some() || self.checked.is_some_and(|at| at.elapsed() < period) {
            return;
        }
        let now = Instant::now();
        self.checked = Some(now);
        let asked: HashSet<String> = self
            .peers
            .iter()
            .filter(|(_, p)| p.swim)
            .map(|(id, _)| id.clone())
            .collect();
        for id in &asked {
            self.ask(id);
        }
        self.check = Some(ReachCheck {
            until: now + period,
            asked,
            answered: HashSet::new(),
            overtaken: false,
        });
    }

    /// Asks member `id` for its status (it answers with [`Body::SwimStatus`]).
    fn ask(&self, id: &str) {
        send_to(
            id,
            Body::SwimAsk {
                from: self.args.node.clone(),
            },
        );
    }

    /// Member `node` answered (its status or any SWIM message from it arrived).
    fn answered(&mut self, node: &str) {
        if let Some(c) = &mut self.check
            && c.asked.contains(node)
        {
            c.answered.insert(node.to_owned());
        }
        if self.unanswered.remove(node) {
            if self.unanswered.is_empty() {
                self.tell_status();
            }
            self.publish();
        }
    }

    /// Sends this node's status to every member directly. After a cut, the broadcast of the
    /// status it changed meanwhile (a new incarnation) was spent on members that could not hear
    /// it, and a member that holds an older status does not ask: in the chaos soak the majority
    /// adopted a cut node's rooms 2.6 s after it was back, at its next status change, and its
    /// players waited 3.6 s to be seated again.
    fn tell_status(&self) {
        let own = self.swim.own_status();
        if own.is_empty() {
            return;
        }
        for (m, _) in self.swim.members() {
            send_to(&m.id, Body::SwimStatus(own.to_vec()));
        }
    }

    /// Ends the reach check once its time is up: fewer than half the cluster answered, and the
    /// members that did not are unreachable until heard again.
    fn end_check(&mut self) {
        let Some(c) = self.check.take_if(|c| Instant::now() >= c.until) else {
            return;
        };
        if c.overtaken {
            self.start_check();
            return;
        }
        // This node, the members that answered, and those of older builds it hears.
        let up = 1
            + c.answered.len()
            + self
                .peers
                .values()
                .filter(|p| !p.swim && p.reachable)
                .count();
        let total = 1 + self.peers.len();
        if up * 2 > total {
            return;
        }
        let silent: HashSet<String> = c.asked.difference(&c.answered).cloned().collect();
        if silent != self.unanswered {
            warn!(
                answered = up,
                members = total,
                "this node reaches no majority of its cluster: it counts the members that did not answer unreachable until they do"
            );
        }
        self.unanswered = silent;
        self.publish();
    }

    fn left(&mut self, node: String) {
        if let Some(p) = self.peers.remove(&node) {
            if p.reachable {
                info!(peer = %node, "peer left the cluster");
            }
            match p.incarnation {
                Some(i) => self.left_as.insert(node.clone(), i),
                None => self.left_as.remove(&node),
            };
        }
        self.args
            .view
            .departed
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(node);
        self.publish();
    }

    fn heard(
        &mut self,
        status: NodeStatus,
        proto: u32,
        games: Option<GameVersions>,
        incarnation: Option<u64>,
        swim: bool,
    ) {
        if self.args.view.departed().contains(&status.id) {
            // A status sent before the node's farewell (the draining one, or an older one that
            // gossip delivers after the farewell: in a scale-in of 8 of 32 nodes, members took
            // a drained node back that way, and showed it unreachable once it exited); a node
            // that comes back, as a new process, is ready again.
            let same_process =
                incarnation.is_some() && incarnation == self.left_as.get(&status.id).copied();
            if status.state == NodeState::Draining || same_process {
                return;
            }
            self.left_as.remove(&status.id);
            self.args
                .view
                .departed
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .remove(&status.id);
        }
        if status.id == self.args.node {
            if status.advertise != self.args.advertise {
                warn!(node = %status.id, other = %status.advertise, "another node uses this node's id");
            }
            return;
        }
        let now = Instant::now();
        for addr in &status.known {
            if *addr == self.args.advertise {
                continue;
            }
            if let Some(at) = self.gossip.get_mut(addr) {
                *at = now;
            } else if self.gossip.len() < MAX_GOSSIP {
                self.gossip.insert(addr.clone(), now);
            }
        }
        let before = self.peers.get(&status.id).and_then(|p| p.incarnation);
        if let (Some(old), Some(new)) = (before, incarnation)
            && old != new
        {
            // Its previous process died without a farewell (its rooms' replicas are adopted),
            // perhaps so briefly that it never looked unreachable.
            warn!(peer = %status.id, "peer restarted: a new process under its id; the previous one's rooms come back from their replicas");
            self.args
                .view
                .restarted
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .entry(status.id.clone())
                .or_default()
                .push(old);
        }
        let known = self.peers.get(&status.id).is_some_and(|p| p.reachable);
        let mut back_at = self.peers.get(&status.id).and_then(|p| p.back_at);
        if !known && self.peers.contains_key(&status.id) {
            back_at = Some(now);
            self.args
                .view
                .rejoined
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .insert(status.id.clone());
        }
        if !known {
            info!(peer = %status.id, addr = %status.advertise, version = %status.version, proto, games = ?games, "peer joined");
        }
        // The same list every beat: share the one already held.
        let games = match (
            self.peers.get(&status.id).and_then(|p| p.games.clone()),
            games,
        ) {
            (Some(held), Some(new)) if *held == new => Some(held),
            (_, new) => new.map(Arc::new),
        };
        self.peers.insert(
            status.id.clone(),
            Peer {
                status,
                proto,
                games,
                incarnation: incarnation.or(before),
                last: Instant::now(),
                reachable: true,
                back_at,
                swim,
            },
        );
    }

    fn publish(&self) {
        let me = self.me();
        let mut members = vec![view_of(
            &me,
            CLUSTER_PROTOCOL,
            true,
            Some(Arc::new(self.args.games.clone())),
        )];
        let mut peers: Vec<MemberView> = self
            .peers
            .values()
            .map(|p| {
                let reachable = p.reachable && !self.unanswered.contains(&p.status.id);
                let mut v = view_of(&p.status, p.proto, reachable, p.games.clone());
                v.incarnation = p.incarnation;
                v.settling = p
                    .back_at
                    .is_some_and(|t| t.elapsed() < self.args.failure_timeout);
                v.reached_by = self
                    .peers
                    .values()
                    .filter(|q| q.reachable && q.status.id != p.status.id)
                    .filter(|q| q.status.known.contains(&p.status.advertise))
                    .count() as u32;
                v
            })
            .collect();
        peers.sort_by(|a, b| a.id.cmp(&b.id));
        members.extend(peers);
        // How evenly rooms spread: max / mean rooms over reachable nodes (1 is even; 0 without rooms).
        let rooms: Vec<f64> = members
            .iter()
            .filter(|m| m.state != MemberState::Unreachable)
            .map(|m| f64::from(m.rooms))
            .collect();
        let mean = rooms.iter().sum::<f64>() / rooms.len().max(1) as f64;
        let spread = if mean > 0.0 {
            rooms.iter().copied().fold(0.0, f64::max) / mean
        } else {
            0.0
        };
        metrics::gauge!("warren_cluster_room_spread").set(spread);
        for state in MemberState::ALL {
            let n = members.iter().filter(|m| m.state == state).count();
            metrics::gauge!("warren_cluster_nodes", "state" => state.as_str()).set(n as f64);
        }
        let mut candidates: Vec<String> = self.gossip.keys().cloned().collect();
        candidates.extend(self.peers.values().map(|p| p.status.advertise.clone()));
        // Members SWIM told of, before their statuses arrive: a link to them completes the mesh.
        candidates.extend(
            self.swim
                .members()
                .map(|(m, _)| m.advertise.clone())
                .filter(|a| !a.is_empty() && *a != self.args.advertise),
        );
        candidates.sort();
        candidates.dedup();
        self.args.view.set(members, candidates);
    }
}

fn view_of(
    s: &NodeStatus,
    proto: u32,
    reachable: bool,
    games: Option<Arc<GameVersions>>,
) -> MemberView {
    let state = match (reachable, s.state) {
        (false, _) => MemberState::Unreachable,
        (true, NodeState::Ready) => MemberState::Ready,
        (true, NodeState::Draining) => MemberState::Draining,
    };
    MemberView {
        id: s.id.clone(),
        state,
        version: s.version.clone(),
        rooms: s.rooms,
        sessions: s.sessions,
        advertise: s.advertise.clone(),
        proto,
        games,
        reached_by: 0,
        incarnation: None,
        settling: false,
    }
}

/// Whether a link to node `id`'s membership actor is up.
fn linked(id: &str) -> bool {
    pg::get_members(&swim_group(id))
        .iter()
        .any(|c| !c.get_id().is_local())
}

/// Sends `body` to node `id`'s membership actor; whether a link to it is up.
fn send_to(id: &str, body: Body) -> bool {
    let cells: Vec<ractor::ActorCell> = pg::get_members(&swim_group(id))
        .into_iter()
        .filter(|c| !c.get_id().is_local())
        .collect();
    if cells.is_empty() {
        return false;
    }
    let kind = body.kind();
    let w = Envelope::encode(body);
    for cell in cells {
        crate::inbox::count_sent(kind, &w);
        let peer: ActorRef<Wire> = cell.into();
        let _ = peer.cast(w.clone());
    }
    true
}

/// A node that drains and hosts nothing: when SWIM declares it down it has left, whether or not
/// its farewell (`Leaving`, a direct message sent just before it exits) arrived. One missed in a
/// scale-in of 8 of 32 nodes left the node unreachable in a member's view, counted towards the
/// cluster's size, until `forget_after_ms`. With no room and no session there is nothing to
/// adopt, so a node cut off while draining empty is no risk either. A draining node sends its
/// counts as soon as they change, so its last status says it is empty.
fn drained(status: &NodeStatus) -> bool {
    status.state == NodeState::Draining && status.rooms == 0 && status.sessions == 0
}

/// How many linked nodes SWIM's bytes for an unlinked member are sent through.
const RELAYS: usize = 2;

/// Tells every reachable node's membership that this node leaves the cluster (the end of a drain),
/// so that it stops counting towards the cluster's size.
pub fn announce_leaving(node: &str) {
    let bye = Envelope::encode(Body::Leaving {
        node: node.to_owned(),
    });
    for cell in pg::get_members(&GROUP.to_owned()) {
        if !cell.get_id().is_local() {
            let peer: ActorRef<Wire> = cell.into();
            let _ = peer.cast(bye.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gossiped_addresses_nobody_names_any_more_are_dropped() {
        let now = Instant::now();
        let mut g = HashMap::from([
            ("10.0.0.1:7351".to_owned(), now),
            (
                "10.0.0.2:7351".to_owned(),
                now - (GOSSIP_TTL - Duration::from_secs(1)),
            ),
        ]);
        expire(&mut g, now);
        assert_eq!(g.len(), 2);
        expire(&mut g, now + Duration::from_secs(2));
        assert_eq!(g.keys().collect::<Vec<_>>(), ["10.0.0.1:7351"]);
    }

    fn member(id: &str, state: MemberState, proto: u32) -> MemberView {
        MemberView {
            id: id.into(),
            state,
            version: "0.1.0".into(),
            rooms: 0,
            sessions: 0,
            advertise: String::new(),
            proto,
            games: None,
            reached_by: 0,
            incarnation: None,
            settling: false,
        }
    }

    #[test]
    fn a_member_only_this_node_cannot_hear_is_out_of_sight_not_gone() {
        let unreachable = |reached_by| MemberView {
            reached_by,
            ..member("x", MemberState::Unreachable, 9)
        };
        let me = member("me", MemberState::Ready, 9);
        let (a, b) = (
            member("a", MemberState::Ready, 9),
            member("b", MemberState::Ready, 9),
        );
        // Five nodes; x silent here. Both others still reach it: a stall between x and this node.
        let five = |x| {
            vec![
                me.clone(),
                a.clone(),
                b.clone(),
                member("c", MemberState::Unreachable, 9),
                x,
            ]
        };
        assert!(!unseen_by_most(&five(unreachable(2)), "x"));
        // One of the two still reaches it: two of three voters do not.
        assert!(unseen_by_most(&five(unreachable(1)), "x"));
        assert!(unseen_by_most(&five(unreachable(0)), "x"));
        // Three nodes, the third silent here and reached by the other: one of two, not most.
        let three = vec![me.clone(), a.clone(), unreachable(1)];
        assert!(!unseen_by_most(&three, "x"));
        assert!(unseen_by_most(&[me, a, unreachable(0)], "x"));
    }

    #[test]
    fn a_kind_goes_only_to_reachable_members_whose_protocol_has_it() {
        let view = ClusterView::default();
        view.set(
            vec![
                member("old", MemberState::Ready, 1),
                member("new", MemberState::Ready, 2),
                member("gone", MemberState::Unreachable, 2),
                member("draining", MemberState::Draining, 2),
            ],
            Vec::new(),
        );
        assert!(!view.speaks("old", 2));
        assert!(view.speaks("old", 1));
        assert!(view.speaks("new", 2));
        assert!(!view.speaks("gone", 2));
        assert!(view.speaks("draining", 2));
        assert!(!view.speaks("stranger", 1));
    }
}
