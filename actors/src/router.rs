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

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use warren_protocol::{ErrorCode, JsonObject, NodeId, PlayerId, RoomId, error_frame};

use crate::inputs::QueuedInput;
use crate::node::NodeCtx;
use crate::remote::{Hop, OpResult, RoomError, RoomOp};
use crate::room::{self, RoomMsg};
use crate::util::lock;

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
    op_from(ctx, room, at.node, op).await
}

/// [`op`], sent first to `node`.
async fn op_from(ctx: &NodeCtx, room: &RoomId, mut node: NodeId, op: RoomOp) -> OpResult {
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
            Some(peers) => peers.send_input(&at.node, room, &ctx.node, input).err()?,
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
    // A realtime room's full box: the input goes to the room's mailbox, and later ones follow it
    // there until the room has applied it (`InputBox::push_or_overflow`).
    let mut overflow = None;
    if let Some(b) = ctx.directory.inputs(room) {
        match b.push_or_overflow(input) {
            Ok(()) => return Ok(()),
            Err((back, counted)) => {
                input = back;
                overflow = counted.then_some(b);
            }
        }
    }
    let not_sent = |input| {
        if let Some(b) = &overflow {
            b.overflow_applied();
        }
        Err(input)
    };
    let Some(actor) = ctx.directory.actor(room) else {
        return not_sent(input);
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
        })) => not_sent(QueuedInput { player, seq, data }),
        // Not a message the room gives back: cannot happen for the room's own type.
        Err(_) => Ok(()),
    }
}

/// A one-way input another node sent for a room here: taken in arrival order, or, when the room
/// is not running here (frozen for a move, restarting, moved on), queued behind the room's other
/// waiting inputs and run as an operation, one after the other, by the room's forwarder; an error
/// goes to the player, on `home`.
pub fn input_from_peer(
    ctx: &std::sync::Arc<NodeCtx>,
    room: RoomId,
    home: NodeId,
    input: QueuedInput,
) {
    let mut waiting = lock(&ctx.forwarders.rooms);
    // Once inputs wait for a room, later ones go behind them even if the room runs again.
    let input = match waiting.get(&room) {
        Some(_) => input,
        None => match take_input(ctx, &room, input) {
            Ok(()) => return,
            Err(input) => input,
        },
    };
    enqueue(ctx, &mut waiting, room, Waiting::OneWay { home, input });
}

/// An input another node sent as an operation, for a room whose forwarder holds earlier inputs:
/// run behind them, following the room where it went (no redirect: the sender learns nothing
/// before they are applied). `Err(op)` when no inputs wait for the room.
pub async fn input_op_from_peer(
    ctx: &std::sync::Arc<NodeCtx>,
    room: &RoomId,
    input: RoomOp,
) -> Result<OpResult, RoomOp> {
    let rx = {
        let mut waiting = lock(&ctx.forwarders.rooms);
        if !waiting.contains_key(room) {
            return Err(input);
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        enqueue(
            ctx,
            &mut waiting,
            room.clone(),
            Waiting::Op {
                op: input,
                reply: tx,
            },
        );
        rx
    };
    Ok(rx.await.unwrap_or_else(|_| {
        Err(RoomError::new(
            ErrorCode::Internal,
            "the input was dropped while the room moved",
        ))
    }))
}

/// Inputs other nodes sent for rooms not running here, per room, in arrival order.
///
/// A room frozen for a move (or restarting) takes no input; inputs that arrive meanwhile wait, and
/// once the room runs again, here or on its new node, each is run in turn by one task per room.
/// Run each in a task of its own, they overtook one another. A sender that learns the room's new
/// node sends its next input as an operation through this node ([`input_op_from_peer`]), which
/// waits behind the others: the sender's inputs reach the room in the order it sent them.
#[derive(Default)]
pub(crate) struct Forwarders {
    rooms: std::sync::Mutex<HashMap<RoomId, VecDeque<Waiting>>>,
}

enum Waiting {
    OneWay {
        home: NodeId,
        input: QueuedInput,
    },
    Op {
        op: RoomOp,
        reply: tokio::sync::oneshot::Sender<OpResult>,
    },
}

impl Forwarders {
    /// Rooms with inputs waiting here (a drain lets them go before the node exits).
    pub(crate) fn busy(&self) -> usize {
        lock(&self.rooms).len()
    }
}

/// The most inputs that wait for one room here. They wait only while the room is frozen for a
/// move or restarting (milliseconds to the failure timeout), and each player's inputs are held to
/// its connection's rate limit; past this bound an input is dropped and its player told
/// (`rate_limited`), so a room that never comes back cannot make a node hold inputs without end.
pub(crate) const MAX_WAITING_PER_ROOM: usize = 4096;

/// The answer to an input that found [`MAX_WAITING_PER_ROOM`] inputs waiting for its room.
fn too_many_waiting() -> RoomError {
    RoomError::new(
        ErrorCode::RateLimited,
        "too many inputs wait for this room while it moves; the input was dropped",
    )
}

/// Queues `w` for `room`, starting the room's forwarder if none runs; past
/// [`MAX_WAITING_PER_ROOM`], drops it with an error to its player.
fn enqueue(
    ctx: &std::sync::Arc<NodeCtx>,
    waiting: &mut HashMap<RoomId, VecDeque<Waiting>>,
    room: RoomId,
    w: Waiting,
) {
    match waiting.get_mut(&room) {
        Some(q) if q.len() >= MAX_WAITING_PER_ROOM => match w {
            Waiting::OneWay { home, input } => tell(ctx, &home, input.player, &too_many_waiting()),
            Waiting::Op { reply, .. } => {
                let _ = reply.send(Err(too_many_waiting()));
            }
        },
        Some(q) => q.push_back(w),
        None => {
            waiting.insert(room.clone(), VecDeque::from([w]));
            tokio::spawn(forward(ctx.clone(), room));
        }
    }
}

/// Runs the waiting inputs of `room` in order until none is left.
async fn forward(ctx: std::sync::Arc<NodeCtx>, room: RoomId) {
    loop {
        let next = {
            let mut waiting = lock(&ctx.forwarders.rooms);
            let Some(q) = waiting.get_mut(&room) else {
                return;
            };
            match q.pop_front() {
                Some(w) => w,
                None => {
                    waiting.remove(&room);
                    return;
                }
            }
        };
        match next {
            Waiting::OneWay { home, input } => {
                let Err(input) = take_input(&ctx, &room, input) else {
                    continue;
                };
                // The room moved on: one way to its new node, behind what went before.
                let moved = ctx
                    .directory
                    .moved_to(&room)
                    .filter(|to| to.node != ctx.node);
                let input = match (moved, ctx.peers()) {
                    (Some(to), Some(peers)) => {
                        match peers.send_input(&to.node, &room, &home, input) {
                            Ok(()) => continue,
                            Err(input) => input,
                        }
                    }
                    _ => input,
                };
                let QueuedInput { player, seq, data } = input;
                let to = player.clone();
                if let Err(e) = op(&ctx, &room, RoomOp::Input { player, seq, data }).await {
                    tell(&ctx, &home, to, &e);
                }
            }
            Waiting::Op { op: o, reply } => {
                let _ = reply.send(op(&ctx, &room, o).await);
            }
        }
    }
}

/// Sends a one-way input of this node's session for `room`, `via` the node its previous one went
/// to when the room has moved since: the input then goes as an operation through that node,
/// behind the earlier ones, and later ones go straight to the room's new node. Returns the node
/// this input went to (the session's next `via`) and the error to tell the player, if any.
pub async fn input_via(
    ctx: &NodeCtx,
    room: &RoomId,
    via: Option<&NodeId>,
    player: PlayerId,
    seq: Option<u64>,
    data: JsonObject,
) -> (Option<NodeId>, Option<RoomError>) {
    let at = ctx.directory.locate(&ctx.node, room).map(|l| l.node);
    match (via, &at) {
        (Some(via), Some(at)) if via != at && *via != ctx.node => {
            let r = op_from(ctx, room, via.clone(), RoomOp::Input { player, seq, data }).await;
            let now = ctx.directory.locate(&ctx.node, room).map(|l| l.node);
            (now, r.err())
        }
        _ => (at, input(ctx, room, player, seq, data).await),
    }
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

#[cfg(test)]
mod tests {

    use warren_protocol::{ErrorCode, RoomId};

    use super::{MAX_WAITING_PER_ROOM, Waiting, enqueue};
    use crate::node::NodeCtx;
    use crate::remote::RoomOp;
    use crate::util::lock;

    /// Inputs from other nodes that wait for a room which is not running here are bounded per
    /// room: past the bound, each is answered at once with `rate_limited` and not kept.
    #[tokio::test]
    async fn inputs_waiting_for_a_moving_room_are_bounded() {
        let (ctx, _writers) = NodeCtx::for_tests();
        let room: RoomId = "r-moving".into();
        let mut replies = Vec::new();
        {
            // Held throughout, so the room's forwarder takes none of them meanwhile.
            let mut waiting = lock(&ctx.forwarders.rooms);
            for seq in 0..MAX_WAITING_PER_ROOM as u64 + 3 {
                let (reply, rx) = tokio::sync::oneshot::channel();
                let op = RoomOp::Input {
                    player: "p1".into(),
                    seq: Some(seq),
                    data: warren_protocol::JsonObject::parse("{}").unwrap(),
                };
                enqueue(&ctx, &mut waiting, room.clone(), Waiting::Op { op, reply });
                replies.push(rx);
            }
            assert_eq!(waiting[&room].len(), MAX_WAITING_PER_ROOM);
        }
        for rx in replies.split_off(MAX_WAITING_PER_ROOM) {
            let answer = rx.await.expect("an input past the bound is answered");
            assert_eq!(answer.unwrap_err().code, ErrorCode::RateLimited);
        }
    }
}
