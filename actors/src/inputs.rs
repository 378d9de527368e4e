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
//!
//! A full box (a room far behind) also refuses them, and they go to the room's mailbox. The room
//! empties its box before it handles a message, so an input pushed into the box after one went to
//! the mailbox would be applied first: until the room has applied every input that went to its
//! mailbox, the box refuses the later ones too, and they follow the others there.

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
    /// Inputs refused for a full box, sent to the room's mailbox, and not yet applied.
    overflowed: usize,
}

/// The inputs queued for one realtime room.
#[derive(Default)]
pub struct InputBox {
    queue: Mutex<Queue>,
}

impl InputBox {
    /// Queues an input; gives it back when the box is closed or full, or while inputs it refused
    /// for being full wait in the room's mailbox.
    pub fn push(&self, input: QueuedInput) -> Result<(), QueuedInput> {
        let mut q = lock(&self.queue);
        if q.closed || q.overflowed > 0 || q.pending.len() >= CAPACITY {
            return Err(input);
        }
        q.pending.push(input);
        Ok(())
    }

    /// [`Self::push`] for a sender that puts a refused input in the room's mailbox: gives it back
    /// with `true` when it must go there (the box is full, or others went there before it and the
    /// room has not applied them yet), counted until the room says it applied it
    /// ([`Self::overflow_applied`]); with `false` when the box is closed.
    pub fn push_or_overflow(&self, input: QueuedInput) -> Result<(), (QueuedInput, bool)> {
        let mut q = lock(&self.queue);
        if q.closed {
            return Err((input, false));
        }
        if q.overflowed > 0 || q.pending.len() >= CAPACITY {
            q.overflowed += 1;
            return Err((input, true));
        }
        q.pending.push(input);
        Ok(())
    }

    /// The room applied one input that [`Self::push_or_overflow`] sent to its mailbox (or the
    /// sender could not put it there): once none waits, the box takes inputs again.
    pub fn overflow_applied(&self) {
        let mut q = lock(&self.queue);
        q.overflowed = q.overflowed.saturating_sub(1);
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

    /// Once an input went to the room's mailbox for a full box, later ones follow it there until
    /// the room has applied it, even after the room emptied the box.
    #[test]
    fn past_a_full_box_inputs_follow_the_overflow_until_the_room_applied_it() {
        let b = InputBox::default();
        for s in 0..CAPACITY as u64 {
            assert!(b.push_or_overflow(input(s)).is_ok());
        }
        assert!(matches!(b.push_or_overflow(input(5000)), Err((_, true))));
        let mut taken = Vec::new();
        b.take(&mut taken);
        assert_eq!(taken.len(), CAPACITY);
        // Room in the box again, but input 5000 waits in the mailbox: 5001 goes there too.
        assert!(b.push(input(5001)).is_err());
        assert!(matches!(b.push_or_overflow(input(5001)), Err((_, true))));
        b.overflow_applied();
        assert!(b.push(input(5002)).is_err());
        b.overflow_applied();
        assert!(b.push(input(5002)).is_ok());
        // A closed box is not an overflow: nothing to count.
        b.close(&mut taken);
        assert!(matches!(b.push_or_overflow(input(5003)), Err((_, false))));
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
