//! The realtime input path: inputs without a `rid` for a realtime room hosted on this node skip
//! the session and room actors.
//!
//! A realtime room applies inputs on its tick, so nothing needs to wake it per input. Its
//! [`InputBox`] takes them straight from the socket task; the room applies what is queued, in
//! arrival order, before it handles any other message, and at the latest on its next tick. The
//! session tells its socket task which box to use through a [`FastInput`] cell, and only while the
//! session has handled every other frame of the connection: any other frame (a `leave_room`, an
//! input with a `rid`, …) goes through the session and turns the fast path off until the session
//! has handled it, so a player's frames keep their order.
//!
//! A box that is closed (the room moved, stopped or restarted) refuses inputs; the socket task
//! then sends them the ordinary way, through the session, which finds the room where it is now.

use std::sync::{Arc, Mutex};

use serde_json::{Map, Value};
use tracing::debug;
use warren_protocol::{PlayerId, RoomId};

use crate::node::{NodeCtx, lock};
use crate::room::RoomMsg;

/// Most inputs a box holds; more (a room that stopped ticking) go the ordinary way.
const CAPACITY: usize = 1024;

/// One queued input.
pub struct QueuedInput {
    /// Who sent it.
    pub player: PlayerId,
    /// Its `seq`.
    pub seq: Option<u64>,
    /// Its `data`.
    pub data: Map<String, Value>,
}

#[derive(Default)]
struct Queue {
    pending: Vec<QueuedInput>,
    closed: bool,
}

/// The inputs queued for one realtime room.
#[derive(Default)]
pub struct InputBox {
    queue: Mutex<Queue>,
}

impl InputBox {
    /// Queues an input; gives it back when the box is closed or full.
    pub fn push(&self, input: QueuedInput) -> Result<(), QueuedInput> {
        let mut q = lock(&self.queue);
        if q.closed || q.pending.len() >= CAPACITY {
            return Err(input);
        }
        q.pending.push(input);
        Ok(())
    }

    /// Moves what is queued into `into` (which the caller keeps, to reuse its allocation).
    pub fn take(&self, into: &mut Vec<QueuedInput>) {
        let mut q = lock(&self.queue);
        if into.is_empty() {
            std::mem::swap(&mut q.pending, into);
        } else {
            into.append(&mut q.pending);
        }
    }

    /// Closes the box and moves what is still queued into `into`: later pushes are refused.
    pub fn close(&self, into: &mut Vec<QueuedInput>) {
        let mut q = lock(&self.queue);
        q.closed = true;
        into.append(&mut q.pending);
    }

    /// Whether the box refuses inputs.
    pub fn is_closed(&self) -> bool {
        lock(&self.queue).closed
    }
}

/// A realtime input another node sent one way (its `data` as JSON text): into the room's box, or
/// else the room's mailbox, both in arrival order, so the player's later operations, which arrive
/// after it, reach the room behind it. Gives the input back when the room is not running here
/// (frozen for a move, restarting, moved on): the caller runs it as an operation then.
pub fn take_from_peer(
    ctx: &NodeCtx,
    room: &RoomId,
    player: PlayerId,
    seq: Option<u64>,
    data: String,
) -> Result<(), (PlayerId, Option<u64>, String)> {
    let map = match serde_json::from_str::<Map<String, Value>>(&data) {
        Ok(m) => m,
        Err(e) => {
            // The sending node wrote it from a decoded object; nothing to answer.
            debug!(room = %room, error = %e, "input from another node without a JSON object dropped");
            return Ok(());
        }
    };
    let mut input = QueuedInput {
        player,
        seq,
        data: map,
    };
    if let Some(b) = ctx.directory.inputs(room) {
        match b.push(input) {
            Ok(()) => return Ok(()),
            Err(back) => input = back,
        }
    }
    if let Some(actor) = ctx.directory.actor(room) {
        let msg = RoomMsg::Input {
            player: input.player,
            seq: input.seq,
            data: input.data,
            reply: None,
        };
        match actor.cast(msg) {
            Ok(()) => return Ok(()),
            Err(ractor::MessagingErr::SendErr(RoomMsg::Input {
                player, seq, data, ..
            })) => {
                input = QueuedInput { player, seq, data };
            }
            // Not a message the room takes back: cannot happen for a room's own type.
            Err(_) => return Ok(()),
        }
    }
    Err((
        input.player,
        input.seq,
        Value::Object(input.data).to_string(),
    ))
}

/// A connection's fast-path cell, shared by its socket task and its session.
#[derive(Default)]
pub struct FastInput {
    /// The box to use, valid while the socket task's count of frames sent to the session equals
    /// the count the session had handled when it set the box.
    slot: Mutex<(u64, Option<Arc<InputBox>>)>,
}

impl FastInput {
    /// The box to push to, if the session has handled all `sent` frames sent to it so far.
    pub fn current(&self, sent: u64) -> Option<Arc<InputBox>> {
        let slot = lock(&self.slot);
        match &*slot {
            (n, Some(b)) if *n == sent => Some(b.clone()),
            _ => None,
        }
    }

    /// Set by the session after it handled frame number `handled`.
    pub fn set(&self, handled: u64, to: Option<Arc<InputBox>>) {
        *lock(&self.slot) = (handled, to);
    }

    /// Turns the fast path off (the connection was replaced).
    pub fn clear(&self) {
        lock(&self.slot).1 = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(seq: u64) -> QueuedInput {
        QueuedInput {
            player: PlayerId::new("p"),
            seq: Some(seq),
            data: Map::new(),
        }
    }

    #[test]
    fn a_closed_box_gives_inputs_back_and_keeps_none() {
        let b = InputBox::default();
        assert!(b.push(input(1)).is_ok());
        let mut left = Vec::new();
        b.close(&mut left);
        assert_eq!(left.len(), 1);
        let Err(back) = b.push(input(2)) else {
            panic!("a closed box took an input");
        };
        assert_eq!(back.seq, Some(2));
        let mut none = Vec::new();
        b.take(&mut none);
        assert!(none.is_empty());
    }

    #[test]
    fn a_full_box_refuses_and_take_keeps_order() {
        let b = InputBox::default();
        for s in 0..CAPACITY as u64 {
            assert!(b.push(input(s)).is_ok());
        }
        assert!(b.push(input(9999)).is_err());
        let mut got = Vec::new();
        b.take(&mut got);
        let seqs: Vec<u64> = got.iter().filter_map(|i| i.seq).collect();
        assert_eq!(seqs, (0..CAPACITY as u64).collect::<Vec<_>>());
        assert!(b.push(input(1)).is_ok());
    }

    #[test]
    fn the_fast_path_holds_only_while_the_session_is_caught_up() {
        let f = FastInput::default();
        assert!(f.current(0).is_none());
        f.set(3, Some(Arc::new(InputBox::default())));
        assert!(f.current(3).is_some());
        assert!(
            f.current(4).is_none(),
            "a frame the session has not handled yet"
        );
        f.clear();
        assert!(f.current(3).is_none());
    }
}
