//! `NodeInbox`: the one remotable actor through which other nodes reach this node's rooms and
//! sessions (DESIGN.md: address by id through per-node hosts, so a peer holds O(nodes) proxies,
//! not one per room). It runs room operations for remote sessions, hands frames from remote rooms
//! to local sessions, answers room listings, and completes this node's pending requests.
//!
//! Each node's inbox is alone in the `pg` group `warren.node.<id>`, so reaching node X is a group
//! lookup.

use std::sync::Arc;

use bytestring::ByteString;
use ractor::{Actor, ActorProcessingErr, ActorRef, pg};
use tracing::warn;
use warren_actors::inputs::take_from_peer;
use warren_actors::node::{Location, NodeCtx};
use warren_actors::pool::ask_claim;
use warren_actors::pool_host::PoolHostMsg;
use warren_actors::remote::{Peers, RoomError, RoomOp};
use warren_actors::room;
use warren_actors::room_host::{RoomHostMsg, create_matched};
use warren_actors::session::SessionMsg;
use warren_actors::session_host::find_session;
use warren_protocol::{ErrorCode, NodeId, Outbound, PlayerId, RoomId};

use crate::wire::{Body, Envelope, Wire};

pub use crate::peers::ClusterPeers;
use crate::peers::Reply;

/// The `pg` group of a node's inbox.
pub fn group(node: &str) -> String {
    format!("warren.node.{node}")
}

/// Sends one envelope to a node's inbox, counted by kind.
pub(crate) fn send(inbox: &ActorRef<Wire>, body: Body) -> bool {
    metrics::counter!("warren_cluster_messages_sent_total", "kind" => body.kind()).increment(1);
    inbox.cast(Envelope::encode(body)).is_ok()
}

/// A realtime input another node sent one way ([`take_from_peer`]). A room that is not running
/// here gets it as an operation, which waits for the room and follows it; its error, if any, goes
/// to the player's node.
fn take_input(
    ctx: &Arc<NodeCtx>,
    peers: &ClusterPeers,
    room: RoomId,
    player: PlayerId,
    home: NodeId,
    seq: Option<u64>,
    data: String,
) {
    let Err((player, seq, data)) = take_from_peer(ctx, &room, player, seq, data) else {
        return;
    };
    let (ctx, peers) = (ctx.clone(), peers.clone());
    tokio::spawn(async move {
        let op = RoomOp::Input {
            player: player.clone(),
            seq,
            data,
        };
        if let Err(RoomError { code, message }) = peers.room_op(&ctx.node, &room, op).await {
            let frame = warren_protocol::error_frame(None, code, &message);
            if home == ctx.node {
                ctx.sessions.send_each([(&player, frame)]);
            } else {
                peers.deliver(&home, vec![(player, frame)]);
            }
        }
    });
}

/// Answers a request from node `from` (dropped if that node is gone).
fn reply_to(from: &str, body: Body) {
    if let Some(inbox) = inbox_of(from) {
        send(&inbox, body);
    }
}

pub(crate) fn inbox_of(node: &str) -> Option<ActorRef<Wire>> {
    pg::get_members(&group(node))
        .into_iter()
        .find(|c| !c.get_id().is_local())
        .map(ActorRef::from)
}

/// How the inbox starts.
pub struct InboxArgs {
    /// The node's actors.
    pub ctx: Arc<NodeCtx>,
    /// Pending requests.
    pub peers: ClusterPeers,
    /// Snapshots kept for other nodes' rooms.
    pub replicas: Arc<crate::replication::Replicas>,
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
                    // Not here (any more): a tombstone redirects the sender to the room's node.
                    let body = match ctx.directory.moved_to(&room) {
                        Some(to)
                            if matches!(
                                result,
                                Err(RoomError {
                                    code: ErrorCode::NotFound,
                                    ..
                                })
                            ) =>
                        {
                            Body::Moved { corr, to }
                        }
                        _ => Body::OpReply { corr, result },
                    };
                    reply_to(&from, body);
                });
            }
            Body::Moved { corr, to } => st.peers.complete(corr, Reply::Moved(to)),
            Body::Located { room, to } => match st.ctx.directory.epoch_of(&room) {
                // Two copies of a room (adopted from replicas on two nodes at once): the higher
                // epoch wins, then the lower node id; the loser redirects to the winner.
                Some(mine)
                    if to.node != st.ctx.node
                        && (to.epoch > mine || (to.epoch == mine && to.node < st.ctx.node)) =>
                {
                    warn!(room = %room, winner = %to.node, epoch = to.epoch, "another node hosts this room too; dropping this copy");
                    let _ = st
                        .ctx
                        .hosts()
                        .rooms
                        .cast(RoomHostMsg::Drop { room, to: Some(to) });
                }
                Some(_) => {}
                None => st.ctx.directory.learn(&room, to),
            },
            Body::Replicate { host, rooms } => st.replicas.keep(host, rooms),
            Body::Unreplicate { host, rooms } => st.replicas.release(&host, rooms),
            Body::Adopt {
                corr,
                from,
                room,
                epoch,
                snapshot,
            } => {
                let host = st.ctx.hosts().rooms.clone();
                tokio::spawn(async move {
                    let result = ractor::call!(host, |reply| RoomHostMsg::Adopt {
                        room,
                        epoch,
                        snapshot,
                        after_death: false,
                        reply
                    })
                    .unwrap_or_else(|e| Err(e.to_string()));
                    reply_to(&from, Body::Adopted { corr, result });
                });
            }
            Body::Adopted { corr, result } => st.peers.complete(corr, Reply::Adopted(result)),
            Body::FindSeat { corr, from, player } => {
                let room = st.ctx.directory.seat_of(&player);
                reply_to(&from, Body::Seat { corr, room });
            }
            Body::Seat { corr, room } => st.peers.complete(corr, Reply::Seat(room)),
            Body::OpReply { corr, result } => st.peers.complete(corr, Reply::Op(result)),
            Body::Input {
                room,
                player,
                home,
                seq,
                data,
            } => take_input(
                &st.ctx,
                &st.peers,
                room,
                player,
                NodeId::new(home),
                seq,
                data,
            ),
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
                reply_to(&from, Body::Rooms { corr, rooms });
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
                    reply_to(&from, Body::Claimed { corr, ok });
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
                    reply_to(&from, Body::Created { corr, result });
                });
            }
            Body::Created { corr, result } => st.peers.complete(corr, Reply::Created(result)),
            Body::WhereIs { corr, from, room } => {
                let at = st.ctx.directory.epoch_of(&room).map(|epoch| Location {
                    node: st.ctx.node.clone(),
                    epoch,
                });
                reply_to(&from, Body::HostedAt { corr, at });
            }
            Body::HostedAt { corr, at } => st.peers.complete(corr, Reply::HostedAt(at)),
            Body::Tick | Body::Heartbeat(_) | Body::Leaving { .. } => {}
        }
        Ok(())
    }
}
