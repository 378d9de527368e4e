//! A connection's outbound queue: bounded, many senders, one receiver (the socket task).
//!
//! It takes memory only for what it holds. tokio's bounded channel allocates a block of 32 slots
//! when it is created, 1.6 KiB a connection that most idle connections never use; this queue is a
//! `VecDeque` behind a mutex that grows on demand and gives a burst's capacity back once it has
//! drained (BENCHMARKS.md, "Idle sessions").

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Poll, Waker};

/// Why a frame was not queued.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// The queue holds its capacity: the receiver is not keeping up.
    Full,
    /// The receiver is gone.
    Closed,
}

/// Frames a drained queue keeps room for; a larger capacity left by a burst is given back.
const KEEP: usize = 16;

struct State<T> {
    items: VecDeque<T>,
    senders: usize,
    receiver_gone: bool,
    waker: Option<Waker>,
}

struct Shared<T> {
    capacity: usize,
    state: Mutex<State<T>>,
}

impl<T> Shared<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // The state is consistent after every statement, so a panicking holder leaves it usable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A queue of at most `capacity` items (at least 1).
pub fn queue<T>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    let shared = Arc::new(Shared {
        capacity: capacity.max(1),
        state: Mutex::new(State {
            items: VecDeque::new(),
            senders: 1,
            receiver_gone: false,
            waker: None,
        }),
    });
    (
        Sender {
            shared: shared.clone(),
        },
        Receiver { shared },
    )
}

/// The sending half; cloned for every holder.
pub struct Sender<T> {
    shared: Arc<Shared<T>>,
}

impl<T> Sender<T> {
    /// Queues `item` unless the queue is full or its receiver is gone.
    pub fn try_send(&self, item: T) -> Result<(), Refused> {
        let waker = {
            let mut state = self.shared.lock();
            if state.receiver_gone {
                return Err(Refused::Closed);
            }
            if state.items.len() >= self.shared.capacity {
                return Err(Refused::Full);
            }
            state.items.push_back(item);
            state.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
        Ok(())
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.shared.lock().senders += 1;
        Self {
            shared: self.shared.clone(),
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let waker = {
            let mut state = self.shared.lock();
            state.senders -= 1;
            if state.senders > 0 {
                return;
            }
            state.waker.take()
        };
        // The last sender is gone: a waiting receiver learns that nothing more will come.
        if let Some(w) = waker {
            w.wake();
        }
    }
}

/// The receiving half.
pub struct Receiver<T> {
    shared: Arc<Shared<T>>,
}

impl<T> Receiver<T> {
    /// The next item; `None` once every sender is gone and the queue is empty. Cancel safe: an
    /// item leaves the queue only in the poll that returns it.
    pub async fn recv(&mut self) -> Option<T> {
        std::future::poll_fn(|cx| {
            let mut state = self.shared.lock();
            if let Some(item) = take(&mut state) {
                return Poll::Ready(Some(item));
            }
            if state.senders == 0 {
                return Poll::Ready(None);
            }
            match &mut state.waker {
                Some(w) => w.clone_from(cx.waker()),
                None => state.waker = Some(cx.waker().clone()),
            }
            Poll::Pending
        })
        .await
    }

    /// The next item if one is queued.
    pub fn try_recv(&mut self) -> Option<T> {
        take(&mut self.shared.lock())
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.shared.lock().items.is_empty()
    }
}

fn take<T>(state: &mut State<T>) -> Option<T> {
    let item = state.items.pop_front();
    if state.items.is_empty() && state.items.capacity() > KEEP {
        state.items.shrink_to(KEEP);
    }
    item
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        state.receiver_gone = true;
        // Frames nobody will read are dropped now, not when the last sender goes.
        state.items = VecDeque::new();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn items_come_out_in_order_up_to_the_capacity() {
        let (tx, mut rx) = queue(3);
        for i in 0..3 {
            tx.try_send(i).unwrap();
        }
        assert_eq!(tx.try_send(3), Err(Refused::Full));
        assert_eq!(rx.recv().await, Some(0));
        tx.try_send(4).unwrap();
        assert_eq!(rx.try_recv(), Some(1));
        assert_eq!(rx.recv().await, Some(2));
        assert_eq!(rx.recv().await, Some(4));
        assert_eq!(rx.try_recv(), None);
    }

    #[tokio::test]
    async fn a_waiting_receiver_wakes_for_an_item_from_another_task() {
        let (tx, mut rx) = queue(4);
        let waiting = tokio::spawn(async move { rx.recv().await });
        tokio::task::yield_now().await;
        let tx2 = tx.clone();
        tokio::spawn(async move { tx2.try_send("frame").unwrap() });
        assert_eq!(waiting.await.unwrap(), Some("frame"));
        drop(tx);
    }

    #[tokio::test]
    async fn the_receiver_ends_when_the_last_sender_goes_after_the_queue_drains() {
        let (tx, mut rx) = queue(4);
        let tx2 = tx.clone();
        tx.try_send(1).unwrap();
        drop(tx);
        let waiting = tokio::spawn(async move {
            let first = rx.recv().await;
            let end = rx.recv().await;
            (first, end)
        });
        tokio::task::yield_now().await;
        // One sender is still there: the receiver has the item and waits for more.
        assert!(!waiting.is_finished());
        drop(tx2);
        assert_eq!(waiting.await.unwrap(), (Some(1), None));
    }

    #[test]
    fn a_send_to_a_dropped_receiver_is_refused_and_drops_nothing_else() {
        let (tx, rx) = queue(2);
        let held = Arc::new(());
        tx.try_send(held.clone()).unwrap();
        drop(rx);
        // The queued item went with the receiver.
        assert_eq!(Arc::strong_count(&held), 1);
        assert_eq!(tx.try_send(held.clone()), Err(Refused::Closed));
    }

    #[test]
    fn a_drained_queue_gives_a_bursts_capacity_back() {
        let (tx, mut rx) = queue(1000);
        for i in 0..500 {
            tx.try_send(i).unwrap();
        }
        while rx.try_recv().is_some() {}
        assert!(rx.shared.lock().items.capacity() <= KEEP);
    }
}
