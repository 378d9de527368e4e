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
use tracing::{debug, info};
use warren_actors::inputs::QueuedInput;
use warren_actors::local::{Answer, LocalNode};
use warren_actors::remote::AdoptError;
use warren_protocol::{NodeId, Outbound, PlayerId, RoomId};

use crate::wire::{Body, Envelope, Wire};

pub use crate::peers::ClusterPeers;
use crate::peers::Reply;

/// The `pg` group of a node's inbox.
pub fn group(node: &str) -> String {
    format!("warren.node.{node}")
}

/// Sends one envelope to a node's inbox, counted by kind.
pub(crate) fn send(inbox: &ActorRef<Wire>, body: Body) -> bool {
    let kind = body.kind();
    let wire = Envelope::encode(body);
    count_sent(kind, &wire);
    inbox.cast(wire).is_ok()
}

/// Counts a message sent to another node, and its bytes, by kind.
pub(crate) fn count_sent(kind: &'static str, wire: &Wire) {
    metrics::counter!("warren_cluster_messages_sent_total", "kind" => kind).increment(1);
    metrics::counter!("warren_cluster_bytes_sent_total", "kind" => kind)
        .increment(wire.0.len() as u64);
}

/// Answers a request from node `from` (dropped if that node is gone).
fn reply_to(from: &str, body: Body) {
    if let Some(inbox) = inbox_of(from) {
        send(&inbox, body);
    }
}

/// Adopts a room another node moves here, off the inbox's loop, and answers `from`.
/// A draining node refuses: it would have to move the room again, and a room that arrives after
/// its drain moved its own is left behind (in a scale-in of 8 of 32 nodes, one ran on two nodes).
fn adopt(local: &LocalNode, corr: u64, from: String, room: RoomId, epoch: u64, snapshot: Vec<u8>) {
    if local.is_draining() {
        debug!(room = %room, from = %from, "a room moved here while this node drains; refused");
        reply_to(
            &from,
            Body::Adopted {
                corr,
                result: Err(AdoptError::draining()),
            },
        );
        return;
    }
    let local = local.clone();
    tokio::spawn(async move {
        let result = local.adopt(room, epoch, snapshot).await;
        reply_to(&from, Body::Adopted { corr, result });
    });
}

pub(crate) fn inbox_of(node: &str) -> Option<ActorRef<Wire>> {
    pg::get_members(&group(node))
        .into_iter()
        .find(|c| !c.get_id().is_local())
        .map(ActorRef::from)
}

/// How the inbox starts.
pub struct InboxArgs {
    /// This node.
    pub local: LocalNode,
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
        pg::join(group(args.local.id().as_str()), vec![me.get_cell()]);
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
        let local = &st.local;
        match env.body {
            Body::RoomOp {
                corr,
                from,
                room,
                op,
            } => {
                // Off the inbox's own loop: a slow room must not hold up every other request.
                let local = local.clone();
                tokio::spawn(async move {
                    let body = match local.room_op(&room, op).await {
                        // Not here (any more): a tombstone redirects the sender to the room's node.
                        Answer::Moved(to) => Body::Moved { corr, to },
                        Answer::Done(result) => Body::OpReply { corr, result },
                    };
                    reply_to(&from, body);
                });
            }
            Body::Moved { corr, to } => st.peers.complete(corr, Reply::Moved(to)),
            Body::Located { room, to } => local.located(room, to),
            Body::Replicate { host, mut rooms } => {
                // Only what this node could restore is worth keeping (a node of an older build of
                // a game cannot revive the rooms a newer build wrote).
                rooms.retain(|r| local.restorable(&r.room, &r.snapshot));
                st.replicas.keep(host, None, rooms);
            }
            Body::ReplicateFrom {
                host,
                incarnation,
                mut rooms,
            } => {
                rooms.retain(|r| local.restorable(&r.room, &r.snapshot));
                st.replicas.keep(host, Some(incarnation), rooms);
            }
            Body::Unreplicate { host, rooms } => st.replicas.release(&host, rooms),
            Body::Adopt {
                corr,
                from,
                room,
                epoch,
                snapshot,
            } => adopt(local, corr, from, room, epoch, snapshot),
            Body::AdoptFrom {
                corr,
                from,
                incarnation,
                room,
                epoch,
                snapshot,
            } => {
                if !st.peers.sent_by_current(&from, incarnation) {
                    // Frozen by a process of `from` that this node does not see as its current
                    // one, or just heard again after a silence: perhaps sent before that node
                    // was cut off (it dropped its rooms and drew a new incarnation) or
                    // restarted, and delivered late. The majority may run the room from its
                    // replica by now; running this copy too made two.
                    info!(room = %room, from = %from, epoch, "a move from a node just heard again, or from a process of it that is not the current one; refused");
                    let result = Err(AdoptError::new(
                        "the moving node was just heard again, or its process is not the one this node sees",
                    ));
                    reply_to(&from, Body::Adopted { corr, result });
                    return Ok(());
                }
                adopt(local, corr, from, room, epoch, snapshot);
            }
            Body::Adopted { corr, result } => st.peers.complete(corr, Reply::Adopted(result)),
            Body::FindSeat { corr, from, player } => {
                let room = local.seat_of(&player);
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
            } => local.input(room, NodeId::new(home), QueuedInput { player, seq, data }),
            Body::Deliver { frames } => {
                let frames: Vec<(PlayerId, Outbound)> = frames
                    .into_iter()
                    .map(|(p, f)| (p, ByteString::from(f)))
                    .collect();
                local.deliver(&frames);
            }
            Body::DeliverSame { frame, players } => {
                local.deliver_same(&ByteString::from(frame), &players);
            }
            Body::State(state) => local.deliver_state(&state),
            Body::ListRooms { corr, from, game } => {
                let rooms = local.open_rooms(game.as_ref());
                reply_to(&from, Body::Rooms { corr, rooms });
            }
            Body::Rooms { corr, rooms } => st.peers.complete(corr, Reply::Rooms(rooms)),
            Body::Pool(msg) => local.pool(msg),
            // Notes and claims for one session are put in its mailbox in the order they arrived
            // (a release must not be overtaken by the next claim); only the wait for a claim's
            // answer runs off the inbox's loop.
            Body::Note { player, note } => local.note(&player, note).await,
            Body::Claim {
                corr,
                from,
                player,
                ticket,
                claim,
            } => {
                let answer = local.claim(&player, ticket, claim).await;
                tokio::spawn(async move {
                    let ok = answer.await;
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
                let local = local.clone();
                tokio::spawn(async move {
                    let result = local.create_matched(game, players).await;
                    reply_to(&from, Body::Created { corr, result });
                });
            }
            Body::Created { corr, result } => st.peers.complete(corr, Reply::Created(result)),
            Body::WhereIs { corr, from, room } => {
                let at = local.where_is(&room);
                reply_to(&from, Body::HostedAt { corr, at });
            }
            Body::HostedAt { corr, at } => st.peers.complete(corr, Reply::HostedAt(at)),
            Body::Tick
            | Body::Heartbeat(_)
            | Body::Leaving { .. }
            | Body::Swim(_)
            | Body::SwimStatus(_)
            | Body::SwimTimer(_)
            | Body::SwimAsk { .. }
            | Body::SwimVia { .. } => {}
        }
        Ok(())
    }
}
