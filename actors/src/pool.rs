//! `Pool`: the matchmaking pool of one `(game, mode)`, hosted on the node that owns the pool's key
//! on the cluster's hash ring (see [`crate::ring`]). Forms matches from its [`MatchQueue`], then
//! settles each match off its own loop:
//!
//! 1. **Claim** every ticket with its player's session, wherever the session lives. A session
//!    claims only its current, unclaimed ticket, so a ticket that exists twice (a handoff racing
//!    a re-enqueue, a pool restarted) is seated at most once, and an unqueued one never.
//! 2. **Place** the room on the ready node where most of the players are, else the least loaded
//!    (never a draining node), and create it there with the players seated.
//! 3. **Confirm** with `match_found` to every session (the room then sends `room_state`).
//!
//! A refused claim drops that ticket; the others are released and queued again.
//!
//! When the ring says another node owns the pool (a node joined, or this one is draining), the
//! next sweep hands every waiting ticket over in one message.
//!
//! An empty pool stops sweeping, and after `matchmaking.pool_idle_ms` empty it asks its host to retire it: a
//! client picks `mode`, so every distinct mode ever queued would otherwise keep a pool, its timer
//! and its metric series for the node's lifetime. Tickets that reach a pool after it asked to
//! retire are handed back to the host, which queues them in a new pool.
//!
//! Supervised by `PoolHost`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use ractor::concurrency::JoinHandle;
use ractor::{Actor, ActorProcessingErr, ActorRef};
use tracing::{debug, info, warn};
use warren_protocol::{NodeId, PlayerId, RoomId, TicketId};

use crate::matchmaking::{MatchQueue, Windows};
use crate::node::{NodeCtx, now_ms};
use crate::pool_host::{owner_of, send_pool};
use crate::remote::{PoolKey, PoolWire, SeatPlan, SessionNote, TicketWire};
use crate::ring::{Candidate, place};
use crate::room_host::create_matched;
use crate::session::SessionMsg;
use crate::session_host::find_session;

/// How long a session has to answer a claim.
const CLAIM_TIMEOUT: Duration = Duration::from_secs(2);

/// A queued player.
#[derive(Clone)]
pub struct Ticket {
    /// The player.
    pub player: PlayerId,
    /// Display name, for the seat.
    pub name: String,
    /// Rating.
    pub mmr: i64,
    /// Node of the player's session.
    pub home: NodeId,
}

impl Ticket {
    /// A ticket as it arrived, and its id and queue time.
    fn from_wire(t: TicketWire) -> (TicketId, Self, u64) {
        let ticket = Ticket {
            player: t.player,
            name: t.name,
            mmr: t.mmr,
            home: t.home,
        };
        (t.id, ticket, t.since_ms)
    }

    fn wire(self, id: TicketId, since_ms: u64) -> TicketWire {
        TicketWire {
            id,
            player: self.player,
            name: self.name,
            mmr: self.mmr,
            home: self.home,
            since_ms,
        }
    }
}

/// Messages of a pool.
pub enum PoolMsg {
    /// Queue tickets (new, handed over, or back from a match that fell through).
    Enqueue(Vec<TicketWire>),
    /// Remove a ticket; forwarded to the owner when this pool no longer holds it.
    Remove {
        /// The ticket.
        ticket: TicketId,
        /// Forwards so far.
        hops: u8,
        /// Its player's node sent the player away: keep the ticket's place for the player's
        /// next ticket ([`PoolWire::Park`]).
        park: bool,
    },
    /// Look again at waiting tickets, whose windows have widened, and at who owns the pool.
    Sweep,
    /// The pool has been empty since the empty spell numbered so.
    Idle(u64),
    /// The host retired the pool: hand back any ticket that arrived since, and stop.
    Stop,
}

// Local-only: never crosses nodes (the cluster layer carries its own envelopes).
impl ractor::Message for PoolMsg {}

/// How a pool starts.
pub struct PoolArgs {
    /// Node context.
    pub ctx: Arc<NodeCtx>,
    /// Its game and mode.
    pub key: PoolKey,
    /// Players per match.
    pub seats: u32,
}

/// The pool actor.
pub struct Pool;

/// A pool's changing state.
pub struct PoolState {
    ctx: Arc<NodeCtx>,
    key: PoolKey,
    seats: u32,
    label: String,
    queue: MatchQueue<TicketId, Ticket>,
    /// The queue length last added to `NodeCtx::tickets`.
    counted: u64,
    /// Sweeps while the pool holds tickets; none while it is empty.
    sweeper: Option<JoinHandle<()>>,
    every: Duration,
    idle_after: Duration,
    /// Numbers the pool's empty spells, so a stale [`PoolMsg::Idle`] is recognised.
    idle: u64,
    /// Places of tickets whose players their node sent away.
    places: Places,
}

/// Most places one pool keeps (a drained node's queued players, at most this many per pool).
const MAX_PLACES: usize = 65_536;

/// The places (when they queued) of tickets whose players their node sent away (a drain, a node
/// cut off), by player, each for the reconnect grace: the player's next ticket in the pool takes
/// its place up, so a drain does not send it to the back of the queue.
#[derive(Default)]
struct Places {
    /// Player → (queued since, kept until), both in ms since the Unix epoch.
    by_player: HashMap<PlayerId, (u64, u64)>,
    /// How long a place is kept.
    keep_ms: u64,
}

impl Places {
    /// Keeps `player`'s place; when [`MAX_PLACES`] are kept and none has lapsed, a new player's
    /// place is not kept (its next ticket goes to the back of the queue).
    fn keep(&mut self, player: PlayerId, since: u64, now: u64) {
        if self.by_player.len() >= MAX_PLACES && !self.by_player.contains_key(&player) {
            self.lapse(now);
            if self.by_player.len() >= MAX_PLACES {
                return;
            }
        }
        self.by_player.insert(player, (since, now + self.keep_ms));
    }

    fn take(&mut self, player: &PlayerId, now: u64) -> Option<u64> {
        let (since, until) = self.by_player.remove(player)?;
        (until > now).then_some(since)
    }

    fn any(&mut self, now: u64) -> bool {
        self.lapse(now);
        !self.by_player.is_empty()
    }

    fn lapse(&mut self, now: u64) {
        self.by_player.retain(|_, (_, until)| *until > now);
    }
}

impl Actor for Pool {
    type Msg = PoolMsg;
    type State = PoolState;
    type Arguments = PoolArgs;

    async fn pre_start(
        &self,
        me: ActorRef<PoolMsg>,
        a: PoolArgs,
    ) -> Result<PoolState, ActorProcessingErr> {
        let settings = a.ctx.settings.load();
        let every = Duration::from_millis(settings.matchmaking.sweep_interval_ms.max(10));
        let idle_after = Duration::from_millis(settings.matchmaking.pool_idle_ms.max(100));
        let keep_ms = settings.rooms.reconnect_grace_ms;
        let st = PoolState {
            label: a.key.label(),
            ctx: a.ctx,
            key: a.key,
            seats: a.seats,
            queue: MatchQueue::new(a.seats as usize),
            counted: 0,
            sweeper: None,
            every,
            idle_after,
            idle: 0,
            places: Places {
                keep_ms,
                ..Places::default()
            },
        };
        // A pool starts empty: its first ticket is on the way; if it never comes, retire.
        st.arm_idle(&me);
        Ok(st)
    }

    async fn post_stop(
        &self,
        _me: ActorRef<PoolMsg>,
        st: &mut PoolState,
    ) -> Result<(), ActorProcessingErr> {
        if let Some(s) = st.sweeper.take() {
            s.abort();
        }
        st.ctx.pool_tickets(&st.label, None);
        st.ctx.count_tickets(st.counted, 0);
        Ok(())
    }

    async fn handle(
        &self,
        me: ActorRef<PoolMsg>,
        msg: PoolMsg,
        st: &mut PoolState,
    ) -> Result<(), ActorProcessingErr> {
        let windows = Windows::from(&st.ctx.settings.load().matchmaking);
        let now = now_ms();
        match msg {
            PoolMsg::Enqueue(tickets) => {
                for t in tickets {
                    let (id, ticket, since) = Ticket::from_wire(t);
                    // A player sent away by its node queues again in its old place.
                    let since = st
                        .places
                        .take(&ticket.player, now)
                        .map_or(since, |s| s.min(since));
                    if st.queue.insert(id.clone(), ticket.mmr, since, ticket)
                        && let Some(group) = st.queue.match_around(&id, now, &windows)
                    {
                        st.settle(&me, group);
                    }
                }
            }
            PoolMsg::Remove { ticket, hops, park } => {
                if let Some((t, since)) = st.queue.remove_since(&ticket) {
                    if park {
                        st.places.keep(t.player, since, now);
                    }
                } else {
                    let owner = owner_of(&st.ctx, &st.key.label());
                    if owner != st.ctx.node && hops < crate::pool_host::MAX_HOPS {
                        let (pool, hops) = (st.key.clone(), hops + 1);
                        let msg = match park {
                            true => PoolWire::Park { pool, ticket, hops },
                            false => PoolWire::Remove { pool, ticket, hops },
                        };
                        send_pool(&st.ctx, &owner, msg);
                    }
                }
            }
            PoolMsg::Sweep => {
                if !st.handoff() {
                    for group in st.queue.sweep(now, &windows) {
                        st.settle(&me, group);
                    }
                }
            }
            PoolMsg::Idle(spell) => {
                // Places kept for players sent away keep the pool until they lapse.
                if spell == st.idle && st.queue.is_empty() && !st.places.any(now) {
                    let retire = crate::pool_host::PoolHostMsg::Retire {
                        pool: st.key.clone(),
                        id: me.get_id(),
                    };
                    let _ = crate::pool_host::PoolHost::of(&st.ctx).cast(retire);
                }
            }
            PoolMsg::Stop => {
                if !st.queue.is_empty() {
                    let tickets = st
                        .queue
                        .drain()
                        .into_iter()
                        .map(|(id, t, since)| t.wire(id, since))
                        .collect();
                    let back = PoolWire::Handoff {
                        pool: st.key.clone(),
                        seats: st.seats,
                        tickets,
                    };
                    let host = crate::pool_host::PoolHost::of(&st.ctx);
                    let _ = host.cast(crate::pool_host::PoolHostMsg::Wire(back));
                }
                me.stop(None);
            }
        }
        let len = st.queue.len() as u64;
        st.ctx.pool_tickets(&st.label, Some(len));
        st.ctx.count_tickets(st.counted, len);
        st.counted = len;
        // Sweep only while there is something to sweep.
        match (len, st.sweeper.is_some()) {
            (0, true) => {
                if let Some(s) = st.sweeper.take() {
                    s.abort();
                }
                st.idle += 1;
                st.arm_idle(&me);
            }
            (1.., false) => {
                st.idle += 1;
                st.sweeper = Some(me.send_interval(st.every, || PoolMsg::Sweep));
            }
            _ => {}
        }
        Ok(())
    }
}

impl PoolState {
    /// Retires the pool if it is still in the same empty spell after `pool_idle_ms`.
    fn arm_idle(&self, me: &ActorRef<PoolMsg>) {
        let spell = self.idle;
        drop(me.send_after(self.idle_after, move || PoolMsg::Idle(spell)));
    }

    /// Hands every waiting ticket to the pool's new owner, if another node owns it now. True when
    /// the tickets left.
    fn handoff(&mut self) -> bool {
        if self.queue.is_empty() {
            return false;
        }
        let owner = owner_of(&self.ctx, &self.label);
        if owner == self.ctx.node {
            return false;
        }
        let Some(peers) = self.ctx.peers() else {
            return false;
        };
        let tickets: Vec<TicketWire> = self
            .queue
            .drain()
            .into_iter()
            .map(|(id, t, since)| t.wire(id, since))
            .collect();
        let n = tickets.len();
        let msg = PoolWire::Handoff {
            pool: self.key.clone(),
            seats: self.seats,
            tickets: tickets.clone(),
        };
        if peers.pool(&owner, msg) {
            info!(pool = %self.label, to = %owner, tickets = n, "pool handed over to its new owner");
            metrics::counter!("warren_matchmaking_handoffs_total").increment(1);
            metrics::counter!("warren_matchmaking_handoff_tickets_total").increment(n as u64);
            true
        } else {
            for t in tickets {
                let (id, ticket, since) = Ticket::from_wire(t);
                self.queue.insert(id, ticket.mmr, since, ticket);
            }
            false
        }
    }

    fn settle(&self, me: &ActorRef<PoolMsg>, group: Vec<(TicketId, Ticket, u64)>) {
        let (ctx, key, me) = (self.ctx.clone(), self.key.clone(), me.clone());
        tokio::spawn(async move {
            let (back, later) = settle(&ctx, &key, group).await;
            if back.is_empty() {
                return;
            }
            if later {
                // No room could be made for them: matched again at once, they would be refused
                // again (thousands of times a second while a node drained, in the chaos soak).
                drop(me.send_after(RETRY_CREATE, move || PoolMsg::Enqueue(back)));
            } else {
                let _ = me.cast(PoolMsg::Enqueue(back));
            }
        });
    }
}

/// How long the tickets of a match whose room could not be made wait before they queue again.
const RETRY_CREATE: Duration = Duration::from_millis(250);

/// Claims, places, creates and confirms one match; returns the tickets to queue again, and
/// whether to queue them only after [`RETRY_CREATE`] (no room could be made for them).
async fn settle(
    ctx: &Arc<NodeCtx>,
    key: &PoolKey,
    group: Vec<(TicketId, Ticket, u64)>,
) -> (Vec<TicketWire>, bool) {
    let claim = ctx.new_id("m");
    let mut claimed = Vec::with_capacity(group.len());
    let mut refused = 0;
    for (id, t, since) in group {
        if claim_one(ctx, &t, &id, &claim).await {
            claimed.push((id, t, since));
        } else {
            refused += 1;
        }
    }
    let label = key.label();
    if refused > 0 {
        debug!(pool = %label, refused, "stale tickets dropped from a match; the rest queue again");
        return (release(ctx, claimed, &claim).await, false);
    }
    let homes: Vec<NodeId> = claimed.iter().map(|(_, t, _)| t.home.clone()).collect();
    // Only a node that runs the game may host its room.
    let runs: Vec<Candidate> = candidates(ctx)
        .into_iter()
        .filter(|c| c.runs(key.game.as_str()))
        .collect();
    let node = match place(&homes, &runs) {
        Some(node) => node,
        None if ctx.is_serving() => ctx.node.clone(),
        // Draining or cut off, with no ready node that runs the game in sight: this node would
        // refuse the room too. The pool hands its tickets over as its drain goes on.
        None => {
            debug!(pool = %label, "no node to make a matched room on; the tickets wait");
            return (release(ctx, claimed, &claim).await, true);
        }
    };
    let players: Vec<SeatPlan> = claimed
        .iter()
        .map(|(_, t, _)| (t.player.clone(), t.name.clone(), t.home.clone()))
        .collect();
    let room = match create(ctx, &node, key, players).await {
        Ok(room) => room,
        Err(why) => {
            warn!(pool = %label, node = %node, error = %why, "match formed but its room could not be created; tickets queued again");
            return (release(ctx, claimed, &claim).await, true);
        }
    };
    debug!(pool = %label, room = %room, "match formed");
    let game = key.game.to_string();
    metrics::counter!("warren_matches_total", "game" => game.clone()).increment(1);
    let ids: Vec<PlayerId> = claimed.iter().map(|(_, t, _)| t.player.clone()).collect();
    let now = now_ms();
    for (id, t, since) in claimed {
        metrics::histogram!("warren_match_wait_seconds", "game" => game.clone())
            .record(now.saturating_sub(since) as f64 / 1000.0);
        let note = SessionNote::MatchFound {
            ticket: id,
            claim: claim.clone(),
            room: room.clone(),
            game: key.game.clone(),
            players: ids.clone(),
        };
        notify(ctx, &t.home, t.player, note).await;
    }
    (Vec::new(), false)
}

fn candidates(ctx: &NodeCtx) -> Vec<Candidate> {
    match ctx.peers() {
        Some(p) => p.candidates(),
        None if ctx.is_draining() => Vec::new(),
        None => vec![Candidate {
            node: ctx.node.clone(),
            rooms: ctx.directory.len() as u32,
            version: ctx.version.clone(),
            games: Some(Arc::new(ctx.games.readable_versions())),
            settling: false,
        }],
    }
}

async fn create(
    ctx: &Arc<NodeCtx>,
    node: &NodeId,
    key: &PoolKey,
    players: Vec<SeatPlan>,
) -> Result<RoomId, crate::remote::CreateError> {
    if *node != ctx.node
        && let Some(peers) = ctx.peers()
    {
        return peers.create_room(node, key.game.clone(), players).await;
    }
    create_matched(ctx, key.game.clone(), players).await
}

async fn claim_one(ctx: &Arc<NodeCtx>, t: &Ticket, id: &TicketId, claim: &str) -> bool {
    if t.home != ctx.node {
        return match ctx.peers() {
            Some(p) => {
                p.claim(&t.home, t.player.clone(), id.clone(), claim.to_owned())
                    .await
            }
            None => false,
        };
    }
    claim_local(ctx, &t.player, id.clone(), claim.to_owned()).await
}

/// Asks the session of `player`, on this node, to claim `ticket` for `claim`.
pub async fn claim_local(
    ctx: &Arc<NodeCtx>,
    player: &PlayerId,
    ticket: TicketId,
    claim: String,
) -> bool {
    match find_session(ctx, player).await {
        Some(session) => ask_claim(&session, ticket, claim).await,
        None => false,
    }
}

/// Puts a claim in the session's mailbox now, and returns the wait for its answer: callers that
/// must keep claims and notes in order (the cluster inbox) send in order and wait elsewhere.
pub fn ask_claim(
    session: &ActorRef<SessionMsg>,
    ticket: TicketId,
    claim: String,
) -> impl std::future::Future<Output = bool> + Send + use<> {
    let (tx, rx) = ractor::concurrency::oneshot();
    let sent = session
        .cast(SessionMsg::Claim {
            ticket,
            claim,
            reply: tx.into(),
        })
        .is_ok();
    async move { sent && matches!(tokio::time::timeout(CLAIM_TIMEOUT, rx).await, Ok(Ok(true))) }
}

/// Tells a player's session, here or on its node.
async fn notify(ctx: &Arc<NodeCtx>, home: &NodeId, player: PlayerId, note: SessionNote) {
    if *home == ctx.node {
        if let Some(session) = find_session(ctx, &player).await {
            let _ = session.cast(SessionMsg::Note(note));
        }
    } else if let Some(p) = ctx.peers() {
        p.note(home, player, note);
    }
}

async fn release(
    ctx: &Arc<NodeCtx>,
    claimed: Vec<(TicketId, Ticket, u64)>,
    claim: &str,
) -> Vec<TicketWire> {
    let mut back = Vec::with_capacity(claimed.len());
    for (id, t, since) in claimed {
        let note = SessionNote::Release {
            ticket: id.clone(),
            claim: claim.to_owned(),
        };
        // Awaited in order: the release must reach the session before a new claim can.
        notify(ctx, &t.home, t.player.clone(), note).await;
        back.push(t.wire(id, since));
    }
    back
}

#[cfg(test)]
mod tests {
    use super::{MAX_PLACES, Places};

    #[test]
    fn a_place_is_taken_once_and_lapses_after_the_grace() {
        let mut p = Places {
            keep_ms: 1000,
            ..Places::default()
        };
        p.keep("a".into(), 100, 5_000);
        p.keep("b".into(), 200, 5_000);
        assert_eq!(p.take(&"a".into(), 5_500), Some(100));
        assert_eq!(p.take(&"a".into(), 5_500), None, "taken once");
        assert!(p.any(5_999));
        assert!(!p.any(6_000), "lapsed at 5,000 + 1,000");
        assert_eq!(p.take(&"b".into(), 6_000), None);
    }

    #[test]
    fn a_pool_keeps_at_most_max_places_until_some_lapse() {
        let mut p = Places {
            keep_ms: 1000,
            ..Places::default()
        };
        for i in 0..MAX_PLACES {
            p.keep(format!("p{i}").as_str().into(), 1, 5_000);
        }
        p.keep("late".into(), 2, 5_100);
        assert_eq!(p.by_player.len(), MAX_PLACES);
        assert_eq!(
            p.take(&"late".into(), 5_200),
            None,
            "past the bound: not kept"
        );
        // A player already kept is kept again at the bound.
        p.keep("p0".into(), 3, 5_100);
        assert_eq!(p.take(&"p0".into(), 5_200), Some(3));
        // Once the others lapse, there is room again.
        p.keep("p0".into(), 4, 5_900);
        p.keep("later".into(), 5, 6_000);
        assert_eq!(p.by_player.len(), 2, "the lapsed places were let go");
        assert_eq!(p.take(&"later".into(), 6_100), Some(5));
    }
}
