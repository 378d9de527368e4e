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

use warren_protocol::{JsonObject, PlayerId};

use crate::util::lock;

/// Most inputs a box holds; more (a room that stopped ticking) go the ordinary way.
const CAPACITY: usize = 1024;

/// One queued input.
pub struct QueuedInput {
    /// Who sent it.
    pub player: PlayerId,
    /// Its `seq`.
    pub seq: Option<u64>,
    /// Its `data`, as the client sent it.
    pub data: JsonObject,
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
            data: JsonObject::parse("{}").unwrap(),
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
