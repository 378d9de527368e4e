//! Reaching a room hosted on this node: waiting while it restarts or is frozen for a move, and
//! running a [`RoomOp`] on it.

use std::time::{Duration, Instant};

use ractor::ActorRef;
use warren_protocol::{ErrorCode, RoomId};

use super::RoomMsg;
use crate::game::GameError;
use crate::node::NodeCtx;
use crate::remote::{OpResult, RoomError, RoomOp};

/// How long a request waits for a room that is being restarted to be back in the directory.
const RESTART_WAIT: Duration = Duration::from_millis(500);
const RESTART_POLL: Duration = Duration::from_millis(20);
/// How long a request waits for a room frozen for a move; then it finds the room gone (and the
/// caller follows its tombstone to the new node).
const MOVE_WAIT: Duration = Duration::from_secs(5);
const MOVE_POLL: Duration = Duration::from_millis(5);

/// The room's actor; waits while the room is frozen for a move.
async fn actor_of(ctx: &NodeCtx, room: &RoomId) -> Option<ActorRef<RoomMsg>> {
    let deadline = Instant::now() + MOVE_WAIT;
    loop {
        if let Some(a) = ctx.directory.actor(room) {
            return Some(a);
        }
        if !ctx.directory.is_moving(room) || Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(MOVE_POLL).await;
    }
}

/// Why a call to a room failed.
#[derive(Debug, PartialEq, Eq)]
pub enum RoomCallErr {
    /// No such room here (or it stayed gone through a restart).
    Gone,
    /// The room failed while handling the request; it may or may not have taken effect.
    Failed,
}

/// Sends to a room by id. A send that finds the actor already stopped (a restart in progress: the
/// directory still names the old actor) was never delivered, so it is re-sent to the actor the
/// directory names next, for up to half a second.
pub async fn send_room(ctx: &NodeCtx, room: &RoomId, mut msg: RoomMsg) -> bool {
    let deadline = Instant::now() + RESTART_WAIT;
    loop {
        let Some(actor) = actor_of(ctx, room).await else {
            return false;
        };
        match actor.cast(msg) {
            Ok(()) => return true,
            Err(ractor::MessagingErr::SendErr(back)) if Instant::now() < deadline => {
                msg = back;
                tokio::time::sleep(RESTART_POLL).await;
            }
            Err(_) => return false,
        }
    }
}

/// Calls a room by id, with the same retry as [`send_room`] for a stopped actor.
pub async fn call_room<R: Send + 'static>(
    ctx: &NodeCtx,
    room: &RoomId,
    make: impl Fn(ractor::RpcReplyPort<R>) -> RoomMsg,
) -> Result<R, RoomCallErr> {
    let deadline = Instant::now() + RESTART_WAIT;
    loop {
        let actor = actor_of(ctx, room).await.ok_or(RoomCallErr::Gone)?;
        match actor.call(&make, None).await {
            Ok(ractor::rpc::CallResult::Success(r)) => return Ok(r),
            Ok(_) => return Err(RoomCallErr::Failed),
            Err(ractor::MessagingErr::SendErr(_)) if Instant::now() < deadline => {
                tokio::time::sleep(RESTART_POLL).await;
            }
            Err(ractor::MessagingErr::SendErr(_)) => return Err(RoomCallErr::Gone),
            Err(_) => return Err(RoomCallErr::Failed),
        }
    }
}

/// Runs a [`RoomOp`] on a room hosted on this node: for the node's own sessions and for requests
/// arriving from other nodes alike.
pub async fn apply(ctx: &NodeCtx, room: &RoomId, op: RoomOp) -> OpResult {
    let fail = |e: RoomCallErr| match e {
        RoomCallErr::Gone => RoomError::new(ErrorCode::NotFound, "no such room"),
        RoomCallErr::Failed => RoomError::new(
            ErrorCode::Internal,
            "the room failed while handling the request",
        ),
    };
    let game = |e: GameError| RoomError::new(e.code, e.message);
    let cast = |ok: bool| {
        if ok {
            Ok(())
        } else {
            Err(fail(RoomCallErr::Gone))
        }
    };
    match op {
        RoomOp::Join { player, name, home } => call_room(ctx, room, |reply| RoomMsg::Join {
            player: player.clone(),
            name: name.clone(),
            home: home.clone(),
            reply,
        })
        .await
        .map_err(fail)?
        .map_err(game),
        RoomOp::Leave(player) => call_room(ctx, room, |reply| RoomMsg::Leave {
            player: player.clone(),
            reply: Some(reply),
        })
        .await
        .map_err(fail)?
        .map_err(|c| RoomError::new(c, "not in this room")),
        RoomOp::Ready(player) => call_room(ctx, room, |reply| RoomMsg::Ready {
            player: player.clone(),
            reply,
        })
        .await
        .map_err(fail)?
        .map_err(game),
        RoomOp::Input { player, seq, data } => call_room(ctx, room, |reply| RoomMsg::Input {
            player: player.clone(),
            seq,
            data: data.clone(),
            reply: Some(reply),
        })
        .await
        .map_err(fail)?
        .map_err(game),
        RoomOp::Chat { player, text } => {
            cast(send_room(ctx, room, RoomMsg::Chat { player, text }).await)
        }
        RoomOp::Disconnected { player, home } => {
            cast(send_room(ctx, room, RoomMsg::Disconnected { player, home }).await)
        }
        RoomOp::Reconnected { player, home } => {
            cast(send_room(ctx, room, RoomMsg::Reconnected { player, home }).await)
        }
        RoomOp::Resync(p) => cast(send_room(ctx, room, RoomMsg::Resync(p)).await),
        RoomOp::GraceOver { player, home } => {
            cast(send_room(ctx, room, RoomMsg::GraceOver { player, home }).await)
        }
    }
}
