//! `ClusterPeers`: this node's side of every request to another node, and the [`Peers`]
//! implementation the actors use to reach other nodes: room operations that follow a room as it
//! moves or is adopted, one-way realtime inputs, frames for remote players, room listings,
//! matchmaking claims and notes, adoption of moving rooms, and the seat search.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::oneshot;
use warren_actors::node::{Location, NodeCtx};
use warren_actors::remote::{
    BoxFuture, OpResult, Peers, PoolWire, RoomError, RoomOp, SeatPlan, SessionNote,
};
use warren_actors::ring::Candidate;
use warren_actors::room;
use warren_protocol::{
    ErrorCode, GameName, NodeId, Outbound, PlayerId, RoomId, RoomSummary, TicketId, error_frame,
};

use crate::inbox::{inbox_of, send};
use crate::membership::{ClusterView, MemberState};
use crate::wire::{Body, Envelope, PROTO_INPUT, PROTO_ROOM_CLOSED, PROTO_SEAT_WAITING};

/// How long a request to another node may take before the caller gets `internal`.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Redirects a room operation follows after a room moved.
const MAX_REDIRECTS: usize = 4;
/// How long `list_rooms` waits for each other node.
const LIST_TIMEOUT: Duration = Duration::from_millis(500);
/// How long a request for a room whose node is gone waits for the room to come back on its
/// backup (failure detection plus adoption take a few seconds).
const ADOPTION_WAIT: Duration = Duration::from_secs(10);
const ADOPTION_POLL: Duration = Duration::from_millis(20);
/// How often a request to another node checks that the node is still reachable.
const REACHABLE_CHECK: Duration = Duration::from_millis(100);

pub(crate) enum Reply {
    Op(OpResult),
    Moved(Location),
    Adopted(Result<(), String>),
    Seat(Option<RoomId>),
    Rooms(Vec<RoomSummary>),
    Claimed(bool),
    Created(Result<RoomId, String>),
    HostedAt(Option<Location>),
}

/// Requests this node is waiting on, and how to reach other nodes. Implements [`Peers`].
#[derive(Clone)]
pub struct ClusterPeers {
    inner: Arc<Inner>,
}

struct Inner {
    node: String,
    ctx: Arc<NodeCtx>,
    batch: bool,
    view: Arc<ClusterView>,
    next: AtomicU64,
    pending: Mutex<HashMap<u64, oneshot::Sender<Reply>>>,
}

impl ClusterPeers {
    /// For this node and its membership view; `batch`: one `Deliver` per node and event.
    pub fn new(ctx: Arc<NodeCtx>, view: Arc<ClusterView>, batch: bool) -> Self {
        Self {
            inner: Arc::new(Inner {
                node: ctx.node.to_string(),
                ctx,
                batch,
                view,
                next: AtomicU64::new(1),
                pending: Mutex::default(),
            }),
        }
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, HashMap<u64, oneshot::Sender<Reply>>> {
        self.inner
            .pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn complete(&self, corr: u64, reply: Reply) {
        if let Some(tx) = self.pending().remove(&corr) {
            let _ = tx.send(reply);
        }
    }

    /// Ids of the other members that are not unreachable.
    fn reachable_others(&self) -> Vec<String> {
        self.inner
            .view
            .members()
            .into_iter()
            .skip(1)
            .filter(|m| m.state != MemberState::Unreachable)
            .map(|m| m.id)
            .collect()
    }

    /// Waits until the directory places `room` somewhere else than `gone`, or `gone` is reachable
    /// again; `None` after [`ADOPTION_WAIT`].
    async fn relocated(&self, room: &RoomId, gone: &NodeId) -> Option<NodeId> {
        let here = &self.inner.ctx.node;
        let deadline = tokio::time::Instant::now() + ADOPTION_WAIT;
        loop {
            match self.inner.ctx.directory.locate(here, room) {
                Some(l) if l.node != *gone => return Some(l.node),
                _ if inbox_of(gone.as_str()).is_some() && self.reachable(gone) => {
                    return Some(gone.clone());
                }
                _ => {}
            }
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(ADOPTION_POLL).await;
        }
    }

    /// Sends the same request to every other reachable node at once; each answer is awaited
    /// for [`LIST_TIMEOUT`].
    fn ask_others(&self, body: impl Fn(u64, String) -> Body) -> Vec<BoxFuture<Option<Reply>>> {
        self.reachable_others()
            .iter()
            .map(|n| self.request(n, &body, LIST_TIMEOUT))
            .collect()
    }

    /// Sends a request to `node`'s inbox and waits for the matching reply.
    fn request(
        &self,
        node: &str,
        body: impl FnOnce(u64, String) -> Body,
        wait: Duration,
    ) -> BoxFuture<Option<Reply>> {
        let corr = self.inner.next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        let Some(inbox) = inbox_of(node) else {
            return Box::pin(async { None });
        };
        self.pending().insert(corr, tx);
        let body = body(corr, self.inner.node.clone());
        let kind = body.kind();
        send(&inbox, body);
        // Forgets the request when it ends unanswered: timed out, or dropped by a caller that
        // stopped waiting.
        let forget = Forget {
            peers: self.clone(),
            corr,
        };
        let started = std::time::Instant::now();
        Box::pin(async move {
            let _forget = forget;
            match tokio::time::timeout(wait, rx).await {
                Ok(Ok(r)) => {
                    metrics::histogram!("warren_cluster_request_seconds", "kind" => kind)
                        .record(started.elapsed().as_secs_f64());
                    Some(r)
                }
                _ => None,
            }
        })
    }
}

/// Removes a pending request's entry when dropped (a no-op once its reply took it).
struct Forget {
    peers: ClusterPeers,
    corr: u64,
}

impl Drop for Forget {
    fn drop(&mut self) {
        self.peers.pending().remove(&self.corr);
    }
}

impl ClusterPeers {
    /// The node hosting `room`, asked of every other node (the highest epoch wins).
    fn where_is(&self, room: &RoomId) -> BoxFuture<Option<Location>> {
        let asks = self.ask_others(|corr, from| Body::WhereIs {
            corr,
            from,
            room: room.clone(),
        });
        Box::pin(async move {
            let mut best: Option<Location> = None;
            for ask in asks {
                if let Some(Reply::HostedAt(Some(at))) = ask.await
                    && best.as_ref().is_none_or(|b| at.epoch > b.epoch)
                {
                    best = Some(at);
                }
            }
            best
        })
    }

    /// One attempt of a room operation on another node: its result, or `None` when the room is
    /// elsewhere now (`node` is updated).
    async fn remote_op(&self, room: &RoomId, node: &mut NodeId, op: &RoomOp) -> Option<OpResult> {
        let me = self;
        if inbox_of(node.as_str()).is_none() || !me.reachable(node) {
            // The node died or is cut off: its rooms come back on their backups, which
            // announce where; the request waits for that (the player sees a pause).
            match me.relocated(room, node).await {
                Some(to) => {
                    *node = to;
                    return None;
                }
                None => {
                    return Some(Err(RoomError::new(
                        ErrorCode::NotFound,
                        "the room's node is gone and the room did not come back",
                    )));
                }
            }
        }
        let (room2, op2) = (room.clone(), op.clone());
        let mut request = me.request(
            node.as_str(),
            |corr, from| Body::RoomOp {
                corr,
                from,
                room: room2,
                op: op2,
            },
            REQUEST_TIMEOUT,
        );
        // A node cut off or dead while the request waits will not answer: this node's view
        // learns it within the failure timeout, and the request then follows the room to where
        // it comes back instead of waiting out REQUEST_TIMEOUT.
        let mut check = tokio::time::interval(REACHABLE_CHECK);
        check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let reply = loop {
            tokio::select! {
                r = &mut request => break r,
                _ = check.tick() => {
                    if !me.reachable(node) {
                        return None;
                    }
                }
            }
        };
        match reply {
            Some(Reply::Op(r)) => Some(r),
            Some(Reply::Moved(to)) => {
                me.inner.ctx.directory.learn(room, to.clone());
                *node = to.node;
                None
            }
            _ => Some(Err(RoomError::new(
                ErrorCode::Internal,
                "the room's node did not answer in time",
            ))),
        }
    }
}

impl Peers for ClusterPeers {
    fn deliver(&self, node: &NodeId, frames: Vec<(PlayerId, Outbound)>) {
        if let Some(inbox) = inbox_of(node.as_str()) {
            let frames: Vec<(PlayerId, String)> = frames
                .into_iter()
                .map(|(p, f)| (p, f.to_string()))
                .collect();
            if self.inner.batch {
                send(&inbox, Body::Deliver { frames });
            } else {
                for f in frames {
                    send(&inbox, Body::Deliver { frames: vec![f] });
                }
            }
        }
    }

    fn room_input(
        &self,
        node: &NodeId,
        room: &RoomId,
        player: PlayerId,
        seq: Option<u64>,
        data: String,
    ) -> Result<(), String> {
        if node.as_str() == self.inner.node || !self.inner.view.speaks(node.as_str(), PROTO_INPUT) {
            return Err(data);
        }
        let Some(inbox) = inbox_of(node.as_str()) else {
            return Err(data);
        };
        let body = Body::Input {
            room: room.clone(),
            player,
            home: self.inner.node.clone(),
            seq,
            data,
        };
        metrics::counter!("warren_cluster_messages_sent_total", "kind" => body.kind()).increment(1);
        match inbox.cast(Envelope::encode(body)) {
            Ok(()) => Ok(()),
            // Not sent: the caller runs it as an operation, which waits for the room.
            Err(ractor::MessagingErr::SendErr(wire)) => match Envelope::decode(&wire) {
                Ok(Envelope {
                    body: Body::Input { data, .. },
                    ..
                }) => Err(data),
                _ => Err(String::new()),
            },
            Err(_) => Err(String::new()),
        }
    }

    fn room_op(&self, node: &NodeId, room: &RoomId, op: RoomOp) -> BoxFuture<OpResult> {
        let (me, room, mut node) = (self.clone(), room.clone(), node.clone());
        Box::pin(async move {
            // A room that moved answers with its new node; follow a few such redirects. A node
            // that does not know the room at all (it was cut off, or restarted, while the room
            // moved on) is not the last word: the other nodes are asked once who hosts it.
            let mut asked = false;
            for _ in 0..MAX_REDIRECTS {
                let r = if node.as_str() == me.inner.node {
                    let r = room::apply(&me.inner.ctx, &room, op.clone()).await;
                    match me.inner.ctx.directory.moved_to(&room) {
                        Some(to)
                            if matches!(
                                r,
                                Err(RoomError {
                                    code: ErrorCode::NotFound,
                                    ..
                                })
                            ) =>
                        {
                            node = to.node;
                            continue;
                        }
                        _ => r,
                    }
                } else {
                    match me.remote_op(&room, &mut node, &op).await {
                        Some(r) => r,
                        None => continue,
                    }
                };
                if !matches!(
                    r,
                    Err(RoomError {
                        code: ErrorCode::NotFound,
                        ..
                    })
                ) || asked
                {
                    return r;
                }
                asked = true;
                match me.where_is(&room).await {
                    Some(at) if at.node != node => {
                        me.inner.ctx.directory.learn(&room, at.clone());
                        node = at.node;
                    }
                    _ => return r,
                }
            }
            Err(RoomError::new(ErrorCode::NotFound, "the room kept moving"))
        })
    }

    fn announce(&self, room: RoomId, to: Location) {
        for node in self.reachable_others() {
            if let Some(inbox) = inbox_of(&node) {
                send(
                    &inbox,
                    Body::Located {
                        room: room.clone(),
                        to: to.clone(),
                    },
                );
            }
        }
    }

    fn find_seat(&self, player: PlayerId) -> BoxFuture<Option<RoomId>> {
        let asks = self.ask_others(|corr, from| Body::FindSeat {
            corr,
            from,
            player: player.clone(),
        });
        Box::pin(async move {
            for ask in asks {
                if let Some(Reply::Seat(Some(room))) = ask.await {
                    return Some(room);
                }
            }
            None
        })
    }

    fn adopt(
        &self,
        node: &NodeId,
        room: RoomId,
        epoch: u64,
        snapshot: Vec<u8>,
    ) -> BoxFuture<Result<(), String>> {
        let fut = self.request(
            node.as_str(),
            |corr, from| Body::Adopt {
                corr,
                from,
                room,
                epoch,
                snapshot,
            },
            REQUEST_TIMEOUT,
        );
        let node = node.clone();
        Box::pin(async move {
            match fut.await {
                Some(Reply::Adopted(r)) => r,
                _ => Err(format!("node {node} did not answer in time")),
            }
        })
    }

    fn pool_owner(&self, key: &str) -> Option<NodeId> {
        self.inner.view.ring().owner(key).cloned()
    }

    fn candidates(&self) -> Vec<Candidate> {
        self.inner
            .view
            .members()
            .into_iter()
            .filter(|m| m.state == MemberState::Ready)
            .map(|m| Candidate {
                node: NodeId::new(m.id),
                rooms: m.rooms,
                version: m.version,
            })
            .collect()
    }

    fn reachable(&self, node: &NodeId) -> bool {
        node.as_str() == self.inner.node || self.inner.view.is_reachable(node.as_str())
    }

    fn pool(&self, node: &NodeId, msg: PoolWire) -> bool {
        if !self.reachable(node) {
            return false;
        }
        match inbox_of(node.as_str()) {
            Some(inbox) => send(&inbox, Body::Pool(msg)),
            None => false,
        }
    }

    fn note(&self, node: &NodeId, player: PlayerId, note: SessionNote) {
        let Some(inbox) = inbox_of(node.as_str()) else {
            return;
        };
        // A node of an older build cannot read this note: it gets the player's frame alone.
        if let SessionNote::RoomClosed { why, .. } = &note
            && !self.inner.view.speaks(node.as_str(), PROTO_ROOM_CLOSED)
        {
            let frame = error_frame(None, ErrorCode::Internal, why).to_string();
            send(
                &inbox,
                Body::Deliver {
                    frames: vec![(player, frame)],
                },
            );
            return;
        }
        send(&inbox, Body::Note { player, note });
    }

    fn seat_waiting(&self, room: &RoomId, at: &Location, players: &[PlayerId]) {
        // A node of an older build cannot read the note; its sessions find the seat when they
        // ask (resume, join_room).
        for node in self.reachable_others() {
            if !self.inner.view.speaks(&node, PROTO_SEAT_WAITING) {
                continue;
            }
            let Some(inbox) = inbox_of(&node) else {
                continue;
            };
            for player in players {
                let note = SessionNote::SeatWaiting {
                    room: room.clone(),
                    at: at.clone(),
                };
                send(
                    &inbox,
                    Body::Note {
                        player: player.clone(),
                        note,
                    },
                );
            }
        }
    }

    fn claim(
        &self,
        node: &NodeId,
        player: PlayerId,
        ticket: TicketId,
        claim: String,
    ) -> BoxFuture<bool> {
        let fut = self.request(
            node.as_str(),
            |corr, from| Body::Claim {
                corr,
                from,
                player,
                ticket,
                claim,
            },
            REQUEST_TIMEOUT,
        );
        Box::pin(async move { matches!(fut.await, Some(Reply::Claimed(true))) })
    }

    fn create_room(
        &self,
        node: &NodeId,
        game: GameName,
        players: Vec<SeatPlan>,
    ) -> BoxFuture<Result<RoomId, String>> {
        let fut = self.request(
            node.as_str(),
            |corr, from| Body::CreateRoom {
                corr,
                from,
                game,
                players,
            },
            REQUEST_TIMEOUT,
        );
        let node = node.clone();
        Box::pin(async move {
            match fut.await {
                Some(Reply::Created(r)) => r,
                _ => Err(format!("node {node} did not answer in time")),
            }
        })
    }

    fn list_rooms(&self, game: Option<GameName>) -> BoxFuture<Vec<RoomSummary>> {
        let asks = self.ask_others(|corr, from| Body::ListRooms {
            corr,
            from,
            game: game.clone(),
        });
        Box::pin(async move {
            let mut rooms = Vec::new();
            for ask in asks {
                if let Some(Reply::Rooms(r)) = ask.await {
                    rooms.extend(r);
                }
            }
            rooms
        })
    }
}
