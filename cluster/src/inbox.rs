//! `NodeInbox`: the one remotable actor through which other nodes reach this node's rooms and
//! sessions (DESIGN.md: address by id through per-node hosts, so a peer holds O(nodes) proxies,
//! not one per room). It runs room operations for remote sessions, hands frames from remote rooms
//! to local sessions, answers room listings, and completes this node's pending requests.
//!
//! Each node's inbox is alone in the `pg` group `warren.node.<id>`, so reaching node X is a group
//! lookup.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytestring::ByteString;
use ractor::{Actor, ActorProcessingErr, ActorRef, pg};
use tokio::sync::oneshot;
use warren_actors::node::NodeCtx;
use warren_actors::pool::ask_claim;
use warren_actors::pool_host::PoolHostMsg;
use warren_actors::remote::{BoxFuture, OpResult, Peers, PoolWire, RoomOp, SeatPlan, SessionNote};
use warren_actors::ring::Candidate;
use warren_actors::room;
use warren_actors::room_host::create_matched;
use warren_actors::session::SessionMsg;
use warren_actors::session_host::find_session;
use warren_protocol::{
    ErrorCode, GameName, NodeId, Outbound, PlayerId, RoomId, RoomSummary, TicketId,
};

use crate::membership::ClusterView;
use crate::wire::{Body, Envelope, Wire};

/// How long a request to another node may take before the caller gets `internal`.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// How long `list_rooms` waits for each other node.
const LIST_TIMEOUT: Duration = Duration::from_millis(500);

/// The `pg` group of a node's inbox.
pub fn group(node: &str) -> String {
    format!("warren.node.{node}")
}

enum Reply {
    Op(OpResult),
    Rooms(Vec<RoomSummary>),
    Claimed(bool),
    Created(Result<RoomId, String>),
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
    /// For this node and its membership view; `batch`: one `Deliver` per node and event.
    pub fn new(node: String, view: Arc<ClusterView>, batch: bool) -> Self {
        Self {
            inner: Arc::new(Inner {
                node,
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

    fn complete(&self, corr: u64, reply: Reply) {
        if let Some(tx) = self.pending().remove(&corr) {
            let _ = tx.send(reply);
        }
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
        let me = self.clone();
        let started = std::time::Instant::now();
        Box::pin(async move {
            match tokio::time::timeout(wait, rx).await {
                Ok(Ok(r)) => {
                    metrics::histogram!("warren_cluster_request_seconds", "kind" => kind)
                        .record(started.elapsed().as_secs_f64());
                    Some(r)
                }
                _ => {
                    me.pending().remove(&corr);
                    None
                }
            }
        })
    }
}

/// Sends one envelope to a node's inbox, counted by kind.
fn send(inbox: &ActorRef<Wire>, body: Body) -> bool {
    metrics::counter!("warren_cluster_messages_sent_total", "kind" => body.kind()).increment(1);
    inbox.cast(Envelope::encode(body)).is_ok()
}

fn inbox_of(node: &str) -> Option<ActorRef<Wire>> {
    pg::get_members(&group(node))
        .into_iter()
        .find(|c| !c.get_id().is_local())
        .map(ActorRef::from)
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

    fn room_op(&self, node: &NodeId, room: &RoomId, op: RoomOp) -> BoxFuture<OpResult> {
        if inbox_of(node.as_str()).is_none() {
            return Box::pin(async {
                Err((
                    ErrorCode::NotFound,
                    "the room's node is not reachable".to_owned(),
                ))
            });
        }
        let room = room.clone();
        let fut = self.request(
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
            match fut.await {
                Some(Reply::Op(r)) => r,
                _ => Err((
                    ErrorCode::Internal,
                    "the room's node did not answer in time".to_owned(),
                )),
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
            .filter(|m| m.state == "ready")
            .map(|m| Candidate {
                node: NodeId::new(m.id),
                rooms: m.rooms,
            })
            .collect()
    }

    fn reachable(&self, node: &NodeId) -> bool {
        node.as_str() == self.inner.node
            || self
                .inner
                .view
                .members()
                .iter()
                .any(|m| m.id == node.as_str() && m.state != "unreachable")
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
        if let Some(inbox) = inbox_of(node.as_str()) {
            send(&inbox, Body::Note { player, note });
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
        let others: Vec<String> = self
            .inner
            .view
            .members()
            .into_iter()
            .skip(1)
            .filter(|m| m.state != "unreachable")
            .map(|m| m.id)
            .collect();
        let asks: Vec<_> = others
            .iter()
            .map(|n| {
                let game = game.clone();
                self.request(
                    n,
                    |corr, from| Body::ListRooms { corr, from, game },
                    LIST_TIMEOUT,
                )
            })
            .collect();
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

/// How the inbox starts.
pub struct InboxArgs {
    /// The node's actors.
    pub ctx: Arc<NodeCtx>,
    /// Pending requests.
    pub peers: ClusterPeers,
}

/// The inbox actor.
pub struct NodeInbox;

impl Actor for NodeInbox {
    type Msg = Wire;
    type State = InboxArgs;
    type Arguments = InboxArgs;

    async fn pre_start(
        &self,
        me: ActorRef<Wire>,
        args: InboxArgs,
    ) -> Result<InboxArgs, ActorProcessingErr> {
        pg::join(group(args.ctx.node.as_str()), vec![me.get_cell()]);
        Ok(args)
    }

    async fn handle(
        &self,
        _me: ActorRef<Wire>,
        msg: Wire,
        st: &mut InboxArgs,
    ) -> Result<(), ActorProcessingErr> {
        let Some(env) = Envelope::open(&msg, "inbox") else {
            return Ok(());
        };
        metrics::counter!("warren_cluster_messages_received_total", "kind" => env.body.kind())
            .increment(1);
        match env.body {
            Body::RoomOp {
                corr,
                from,
                room,
                op,
            } => {
                // Off the inbox's own loop: a slow room must not hold up every other request.
                let ctx = st.ctx.clone();
                tokio::spawn(async move {
                    let result = room::apply(&ctx, &room, op).await;
                    if let Some(inbox) = inbox_of(&from) {
                        send(&inbox, Body::OpReply { corr, result });
                    }
                });
            }
            Body::OpReply { corr, result } => st.peers.complete(corr, Reply::Op(result)),
            Body::Deliver { frames } => {
                let frames: Vec<(PlayerId, Outbound)> = frames
                    .into_iter()
                    .map(|(p, f)| (p, ByteString::from(f)))
                    .collect();
                st.ctx
                    .sessions
                    .send_each(frames.iter().map(|(p, f)| (p, f.clone())));
            }
            Body::ListRooms { corr, from, game } => {
                let rooms = st
                    .ctx
                    .directory
                    .list_open(game.as_ref(), warren_actors::session::LIST_ROOMS_LIMIT);
                if let Some(inbox) = inbox_of(&from) {
                    send(&inbox, Body::Rooms { corr, rooms });
                }
            }
            Body::Rooms { corr, rooms } => st.peers.complete(corr, Reply::Rooms(rooms)),
            Body::Pool(msg) => {
                let _ = st.ctx.hosts().pools.cast(PoolHostMsg::Wire(msg));
            }
            // Notes and claims for one session are put in its mailbox in the order they arrived
            // (a release must not be overtaken by the next claim); only the wait for a claim's
            // answer runs off the inbox's loop.
            Body::Note { player, note } => {
                if let Some(session) = find_session(&st.ctx, &player).await {
                    let _ = session.cast(SessionMsg::Note(note));
                }
            }
            Body::Claim {
                corr,
                from,
                player,
                ticket,
                claim,
            } => {
                let answer = find_session(&st.ctx, &player)
                    .await
                    .map(|s| ask_claim(&s, ticket, claim));
                tokio::spawn(async move {
                    let ok = match answer {
                        Some(a) => a.await,
                        None => false,
                    };
                    if let Some(inbox) = inbox_of(&from) {
                        send(&inbox, Body::Claimed { corr, ok });
                    }
                });
            }
            Body::Claimed { corr, ok } => st.peers.complete(corr, Reply::Claimed(ok)),
            Body::CreateRoom {
                corr,
                from,
                game,
                players,
            } => {
                let ctx = st.ctx.clone();
                tokio::spawn(async move {
                    let result = create_matched(&ctx, game, players).await;
                    if let Some(inbox) = inbox_of(&from) {
                        send(&inbox, Body::Created { corr, result });
                    }
                });
            }
            Body::Created { corr, result } => st.peers.complete(corr, Reply::Created(result)),
            Body::Tick | Body::Heartbeat(_) => {}
        }
        Ok(())
    }
}
