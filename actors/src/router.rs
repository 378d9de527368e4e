//! The room router: the one way from this node to a room, by id, wherever the room is.
//!
//! Every room-bound request goes through here, from this node's sessions and from other nodes
//! alike, so each kind has one route:
//! - **local**: the room is hosted here; the request reaches its actor (waiting while it restarts
//!   or is frozen for a move, [`crate::room::apply`]);
//! - **moving**: it left while the request waited: its tombstone names the new node, followed;
//! - **remote**: hosted on another node; the cluster layer carries the request there once
//!   ([`Peers::send_op`](crate::remote::Peers::send_op)) and brings back the answer or a redirect;
//! - **redirect**: a node that no longer hosts the room answers with where it went, and a node
//!   that knows nothing of it makes the router ask every node once ([`Peers::where_is`](crate::remote::Peers::where_is)); a node
//!   that is gone makes it wait for the room to come back on its backup.
//!
//! Inputs without a `rid` have a one-way variant of the same route ([`input`]): into the room's
//! input box or mailbox here, or one message to the room's node, which takes it the same way
//! ([`take_input`]). Their `data` stays the text the client sent ([`JsonObject`]) until the room
//! decodes it.

use std::time::Duration;

use warren_protocol::{ErrorCode, JsonObject, NodeId, PlayerId, RoomId, error_frame};

use crate::inputs::QueuedInput;
use crate::node::NodeCtx;
use crate::remote::{Hop, OpResult, RoomError, RoomOp};
use crate::room::{self, RoomMsg};

/// Redirects an operation follows before it gives up (a room moving again and again).
const MAX_REDIRECTS: usize = 4;
/// How long a request for a room whose node is gone waits for the room to come back on its
/// backup (failure detection plus adoption take a few seconds).
const ADOPTION_WAIT: Duration = Duration::from_secs(10);
const ADOPTION_POLL: Duration = Duration::from_millis(20);

fn not_found(message: &str) -> RoomError {
    RoomError::new(ErrorCode::NotFound, message)
}

/// Runs an operation on a room wherever it is hosted, following it while it moves, and returns
/// the room's answer.
pub async fn op(ctx: &NodeCtx, room: &RoomId, op: RoomOp) -> OpResult {
    let Some(at) = ctx.directory.locate(&ctx.node, room) else {
        return Err(not_found("no such room"));
    };
    let mut node = at.node;
    let mut asked = false;
    for _ in 0..MAX_REDIRECTS {
        let r = if node == ctx.node {
            let r = room::apply(ctx, room, op.clone()).await;
            match (&r, ctx.directory.moved_to(room)) {
                // It left while the request waited: follow its tombstone.
                (Err(e), Some(to)) if e.is_not_found() && to.node != ctx.node => {
                    node = to.node;
                    continue;
                }
                _ => r,
            }
        } else {
            let Some(peers) = ctx.peers() else {
                return Err(not_found("no such room"));
            };
            match peers.send_op(&node, room, op.clone()).await {
                Hop::Done(r) => r,
                Hop::Moved(to) => {
                    ctx.directory.learn(room, to.clone());
                    node = to.node;
                    continue;
                }
                Hop::Unreachable => match relocated(ctx, room, &node).await {
                    Some(to) => {
                        node = to;
                        continue;
                    }
                    None => {
                        return Err(not_found(
                            "the room's node is gone and the room did not come back",
                        ));
                    }
                },
                Hop::TimedOut => {
                    return Err(RoomError::new(
                        ErrorCode::Internal,
                        "the room's node did not answer in time",
                    ));
                }
            }
        };
        let gone = matches!(&r, Err(e) if e.is_not_found());
        // A node that does not know the room (it was cut off or restarted while the room moved
        // on) is not the last word: every other node is asked once who hosts it.
        let Some(peers) = ctx.peers().filter(|_| gone && !asked) else {
            return r;
        };
        asked = true;
        match peers.where_is(room).await {
            Some(at) if at.node != node => {
                ctx.directory.learn(room, at.clone());
                node = at.node;
            }
            // Nobody hosts the room of a seated player: its node may have died (or restarted,
            // faster than the failure timeout) and a backup not adopted it yet. Wait for that, as
            // a seat search does, before the session is told its room is gone.
            _ if !matches!(op, RoomOp::Join { .. }) => match reappeared(ctx, room, &node).await {
                Some(at) => node = at,
                None => return r,
            },
            _ => return r,
        }
    }
    Err(not_found("the room kept moving"))
}

/// Waits until some node other than `gone` hosts `room` (its adopter announces it, or answers
/// `where_is`), for at most `rooms.seat_search_ms`.
async fn reappeared(ctx: &NodeCtx, room: &RoomId, gone: &NodeId) -> Option<NodeId> {
    let wait = Duration::from_millis(ctx.settings.load().rooms.seat_search_ms);
    let deadline = tokio::time::Instant::now() + wait;
    let mut ask = tokio::time::Instant::now();
    loop {
        match ctx.directory.locate(&ctx.node, room) {
            Some(l) if l.node != *gone => return Some(l.node),
            _ => {}
        }
        let now = tokio::time::Instant::now();
        if now >= deadline {
            return None;
        }
        if now >= ask {
            ask = now + REAPPEAR_ASK;
            if let Some(at) = ctx.peers()?.where_is(room).await
                && at.node != *gone
            {
                ctx.directory.learn(room, at.clone());
                return Some(at.node);
            }
        }
        tokio::time::sleep(ADOPTION_POLL).await;
    }
}

/// How often [`reappeared`] asks the other nodes where the room is.
const REAPPEAR_ASK: Duration = Duration::from_millis(250);

/// Waits until the directory places `room` somewhere else than `gone`, or `gone` is reachable
/// again; `None` after [`ADOPTION_WAIT`]. A dead node's rooms come back on their backups, which
/// announce where.
async fn relocated(ctx: &NodeCtx, room: &RoomId, gone: &NodeId) -> Option<NodeId> {
    let deadline = tokio::time::Instant::now() + ADOPTION_WAIT;
    loop {
        match ctx.directory.locate(&ctx.node, room) {
            Some(l) if l.node != *gone => return Some(l.node),
            _ if ctx.peers().is_some_and(|p| p.linked(gone)) => return Some(gone.clone()),
            _ => {}
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(ADOPTION_POLL).await;
    }
}

/// An `input` without `rid`, one way: its errors are the player's to see, not a reply. It reaches
/// the room ahead of the player's later requests, wherever the room is; the answer is `None`
/// when it was handed on, or the error the room (or the route) gave.
pub async fn input(
    ctx: &NodeCtx,
    room: &RoomId,
    player: PlayerId,
    seq: Option<u64>,
    data: JsonObject,
) -> Option<RoomError> {
    let at = ctx.directory.locate(&ctx.node, room)?;
    let input = QueuedInput { player, seq, data };
    let back = if at.node == ctx.node {
        take_input(ctx, room, input).err()?
    } else {
        match ctx.peers() {
            Some(peers) => peers.send_input(&at.node, room, input).err()?,
            None => input,
        }
    };
    let QueuedInput { player, seq, data } = back;
    op(ctx, room, RoomOp::Input { player, seq, data })
        .await
        .err()
}

/// A one-way input for a room hosted here, from this node's session or another node: into the
/// room's input box (realtime rooms), or else its mailbox, both in arrival order. Gives the input
/// back when the room is not running here (frozen for a move, restarting, moved on): the caller
/// runs it as an operation then, which waits for the room and follows it.
pub fn take_input(ctx: &NodeCtx, room: &RoomId, mut input: QueuedInput) -> Result<(), QueuedInput> {
    if let Some(b) = ctx.directory.inputs(room) {
        match b.push(input) {
            Ok(()) => return Ok(()),
            Err(back) => input = back,
        }
    }
    let Some(actor) = ctx.directory.actor(room) else {
        return Err(input);
    };
    let msg = RoomMsg::Input {
        player: input.player,
        seq: input.seq,
        data: input.data,
        reply: None,
    };
    match actor.cast(msg) {
        Ok(()) => Ok(()),
        Err(ractor::MessagingErr::SendErr(RoomMsg::Input {
            player, seq, data, ..
        })) => Err(QueuedInput { player, seq, data }),
        // Not a message the room gives back: cannot happen for the room's own type.
        Err(_) => Ok(()),
    }
}

/// A one-way input another node sent for a room here: taken in arrival order, or, when the room
/// is not running here, run as an operation off the caller's loop; an error goes to the player,
/// on `home`.
pub fn input_from_peer(
    ctx: &std::sync::Arc<NodeCtx>,
    room: RoomId,
    home: NodeId,
    input: QueuedInput,
) {
    let Err(input) = take_input(ctx, &room, input) else {
        return;
    };
    let ctx = ctx.clone();
    tokio::spawn(async move {
        let QueuedInput { player, seq, data } = input;
        let to = player.clone();
        if let Err(e) = op(&ctx, &room, RoomOp::Input { player, seq, data }).await {
            tell(&ctx, &home, to, &e);
        }
    });
}

/// Pushes an error to a player whose session lives on `home`.
pub fn tell(ctx: &NodeCtx, home: &NodeId, player: PlayerId, e: &RoomError) {
    let frame = error_frame(None, e.code, &e.message);
    if *home == ctx.node {
        ctx.sessions.send_each([(&player, frame)]);
    } else if let Some(peers) = ctx.peers() {
        peers.deliver(home, vec![(player, frame)]);
    }
}
