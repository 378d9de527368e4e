//! `ClusterPeers`: this node's side of every request to another node, and the [`Peers`]
//! implementation the actors use to reach other nodes: room operations that follow a room as it
//! moves or is adopted, one-way realtime inputs, frames for remote players, room listings,
//! matchmaking claims and notes, adoption of moving rooms, and the seat search.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::oneshot;
use warren_actors::inputs::QueuedInput;
use warren_actors::node::Location;
use warren_actors::remote::{
    AdoptError, BoxFuture, CreateError, Hop, OpResult, Peers, PoolWire, RoomOp, SeatPlan,
    SessionNote, TickState,
};
use warren_actors::ring::Candidate;
use warren_protocol::{
    ErrorCode, GameName, NodeId, Outbound, PlayerId, RoomId, RoomSummary, TicketId, error_frame,
};

use crate::inbox::{inbox_of, send};
use crate::membership::{ClusterView, MemberState};
use crate::wire::{
    Body, Envelope, PROTO_ADOPT_INCARNATION, PROTO_FANOUT, PROTO_GRACE_OVER, PROTO_INPUT,
    PROTO_ROOM_CLOSED, PROTO_SEAT_WAITING,
};

/// How long a request to another node may take before the caller gets `internal`.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// How long `list_rooms` waits for each other node.
const LIST_TIMEOUT: Duration = Duration::from_millis(500);
/// How often a request to another node checks that the node is still reachable.
const REACHABLE_CHECK: Duration = Duration::from_millis(100);

pub(crate) enum Reply {
    Op(OpResult),
    Moved(Location),
    Adopted(Result<(), AdoptError>),
    Seat(Option<RoomId>),
    Rooms(Vec<RoomSummary>),
    Claimed(bool),
    Created(Result<RoomId, CreateError>),
    HostedAt(Option<Location>),
}

/// Requests this node is waiting on, and how to reach other nodes. Implements [`Peers`].
#[derive(Clone)]
pub struct ClusterPeers {
    inner: Arc<Inner>,
}

struct Inner {
    node: String,
    batch: bool,
    view: Arc<ClusterView>,
    next: AtomicU64,
    pending: Mutex<HashMap<u64, oneshot::Sender<Reply>>>,
}

impl ClusterPeers {
    /// Whether `node` is reachable here and runs the process `incarnation`: a request from an
    /// earlier process of it, delivered late, is not acted on.
    pub(crate) fn sent_by_current(&self, node: &str, incarnation: u64) -> bool {
        self.inner.view.is_current(node, incarnation)
    }

    /// For this node and its membership view; `batch`: one message per node and event.
    pub fn new(node: &NodeId, view: Arc<ClusterView>, batch: bool) -> Self {
        Self {
            inner: Arc::new(Inner {
                node: node.to_string(),
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

    fn deliver_same(&self, node: &NodeId, frame: Outbound, players: Vec<PlayerId>) {
        if !self.inner.batch || !self.inner.view.speaks(node.as_str(), PROTO_FANOUT) {
            let frames = players.into_iter().map(|p| (p, frame.clone())).collect();
            return self.deliver(node, frames);
        }
        if let Some(inbox) = inbox_of(node.as_str()) {
            let frame = frame.to_string();
            send(&inbox, Body::DeliverSame { frame, players });
        }
    }

    fn deliver_state(&self, node: &NodeId, state: TickState) {
        if !self.inner.batch || !self.inner.view.speaks(node.as_str(), PROTO_FANOUT) {
            let frames = state.frames().map(|(p, f)| (p.clone(), f)).collect();
            return self.deliver(node, frames);
        }
        if let Some(inbox) = inbox_of(node.as_str()) {
            send(&inbox, Body::State(state));
        }
    }

    fn send_input(
        &self,
        node: &NodeId,
        room: &RoomId,
        home: &NodeId,
        input: QueuedInput,
    ) -> Result<(), QueuedInput> {
        if node.as_str() == self.inner.node || !self.inner.view.speaks(node.as_str(), PROTO_INPUT) {
            return Err(input);
        }
        let Some(inbox) = inbox_of(node.as_str()).filter(|_| self.reachable(node)) else {
            return Err(input);
        };
        let body = Body::Input {
            room: room.clone(),
            player: input.player,
            home: home.to_string(),
            seq: input.seq,
            data: input.data,
        };
        let kind = body.kind();
        let wire = Envelope::encode(body);
        crate::inbox::count_sent(kind, &wire);
        match inbox.cast(wire) {
            Ok(()) => Ok(()),
            // Not sent: the router runs it as an operation, which waits for the room.
            Err(ractor::MessagingErr::SendErr(wire)) => match Envelope::decode(&wire) {
                Ok(Envelope {
                    body:
                        Body::Input {
                            player, seq, data, ..
                        },
                    ..
                }) => Err(QueuedInput { player, seq, data }),
                _ => Ok(()),
            },
            Err(_) => Ok(()),
        }
    }

    fn send_op(&self, node: &NodeId, room: &RoomId, op: RoomOp) -> BoxFuture<Hop> {
        if !self.linked(node) {
            // The node died or is cut off: the router waits for the room to come back.
            return Box::pin(async { Hop::Unreachable });
        }
        let op = match op {
            // A node of an older protocol does not know the kind: it gets what it was sent
            // before, a Leave.
            RoomOp::GraceOver { player, .. }
                if !self.inner.view.speaks(node.as_str(), PROTO_GRACE_OVER) =>
            {
                RoomOp::Leave(player)
            }
            op => op,
        };
        let (me, node) = (self.clone(), node.clone());
        let room = room.clone();
        let mut request = self.request(
            node.as_str(),
            |corr, from| Body::RoomOp {
                corr,
                from,
                room,
                op,
            },
            REQUEST_TIMEOUT,
        );
        Box::pin(async move {
            // A node cut off or dead while the request waits will not answer: this node's view
            // learns it within the failure timeout, and the router then follows the room to
            // where it comes back instead of waiting out REQUEST_TIMEOUT.
            let mut check = tokio::time::interval(REACHABLE_CHECK);
            check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let reply = loop {
                tokio::select! {
                    r = &mut request => break r,
                    _ = check.tick() => {
                        if !me.reachable(&node) {
                            return Hop::Unreachable;
                        }
                    }
                }
            };
            match reply {
                Some(Reply::Op(r)) => Hop::Done(r),
                Some(Reply::Moved(to)) => Hop::Moved(to),
                _ => Hop::TimedOut,
            }
        })
    }

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

    fn linked(&self, node: &NodeId) -> bool {
        inbox_of(node.as_str()).is_some() && self.reachable(node)
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

    fn find_seat(&self, player: PlayerId) -> BoxFuture<Option<(RoomId, NodeId)>> {
        let asks: Vec<_> = self
            .reachable_others()
            .into_iter()
            .map(|node| {
                let body = |corr, from| Body::FindSeat {
                    corr,
                    from,
                    player: player.clone(),
                };
                let ask = self.request(&node, body, LIST_TIMEOUT);
                (node, ask)
            })
            .collect();
        // The first node that has the seat answers; a stalled one does not hold up the others.
        Box::pin(async move {
            use futures_util::StreamExt as _;
            let mut asks: futures_util::stream::FuturesUnordered<_> = asks
                .into_iter()
                .map(|(node, ask)| async move { (node, ask.await) })
                .collect();
            while let Some((node, reply)) = asks.next().await {
                if let Some(Reply::Seat(Some(room))) = reply {
                    return Some((room, NodeId::new(node)));
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
    ) -> BoxFuture<Result<(), AdoptError>> {
        // The process freezing the room: read now, before anything cuts this node off.
        let incarnation = self.inner.view.incarnation();
        let tagged = self
            .inner
            .view
            .speaks(node.as_str(), PROTO_ADOPT_INCARNATION);
        let fut = self.request(
            node.as_str(),
            |corr, from| {
                if tagged {
                    Body::AdoptFrom {
                        corr,
                        from,
                        incarnation,
                        room,
                        epoch,
                        snapshot,
                    }
                } else {
                    Body::Adopt {
                        corr,
                        from,
                        room,
                        epoch,
                        snapshot,
                    }
                }
            },
            REQUEST_TIMEOUT,
        );
        let node = node.clone();
        Box::pin(async move {
            match fut.await {
                Some(Reply::Adopted(r)) => r,
                _ => Err(AdoptError::new(format!(
                    "node {node} did not answer in time"
                ))),
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
                games: m.games,
                settling: m.settling,
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
        // A node of an older build does not know `Park`: it gets the `Remove` it was sent before.
        let msg = match msg {
            PoolWire::Park { pool, ticket, hops }
                if !self.inner.view.speaks(node.as_str(), PROTO_GRACE_OVER) =>
            {
                PoolWire::Remove { pool, ticket, hops }
            }
            msg => msg,
        };
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
    ) -> BoxFuture<Result<RoomId, CreateError>> {
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
                _ => Err(CreateError::new(format!(
                    "node {node} did not answer in time"
                ))),
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
