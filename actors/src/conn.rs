//! One WebSocket connection's sending half, as sessions and rooms hold it: a bounded queue to
//! its socket task, and the signal that asks the task to close.

use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};
use std::task::Poll;

use futures_util::task::AtomicWaker;
use warren_protocol::{CloseCode, Outbound};

use crate::inputs::FastInput;
use crate::outq;

/// Tells a connection's socket task to close with a code. The first code wins. One task waits
/// on it (its socket task), so a single waker slot is enough, and cheaper to re-arm on every
/// turn of the socket loop than a list of waiters.
#[derive(Default)]
pub struct CloseSignal {
    code: AtomicU16,
    waker: AtomicWaker,
}

impl CloseSignal {
    /// Requests the close.
    pub fn close(&self, code: CloseCode) {
        if self
            .code
            .compare_exchange(0, code.code(), Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            self.waker.wake();
        }
    }

    /// The requested code, if any.
    pub fn requested(&self) -> Option<u16> {
        match self.code.load(Ordering::Acquire) {
            0 => None,
            c => Some(c),
        }
    }

    /// Waits for a close request and returns its code (one waiter at a time).
    pub async fn wait(&self) -> u16 {
        std::future::poll_fn(|cx| {
            if let Some(c) = self.requested() {
                return Poll::Ready(c);
            }
            self.waker.register(cx.waker());
            // A close between the check and the registration woke no one: look again.
            self.requested().map_or(Poll::Pending, Poll::Ready)
        })
        .await
    }
}

/// The sending half of one WebSocket connection: a bounded queue to its socket task.
#[derive(Clone)]
pub struct Conn {
    /// Unique per connection.
    pub id: u64,
    tx: outq::Sender<Outbound>,
    close: Arc<CloseSignal>,
    /// The realtime input path of this connection ([`crate::inputs`]).
    pub fast: Arc<FastInput>,
}

impl Conn {
    /// A connection handle and the receiving end its socket task drains.
    pub fn new(id: u64, queue: usize) -> (Self, outq::Receiver<Outbound>, Arc<CloseSignal>) {
        let (tx, rx) = outq::queue(queue);
        let close = Arc::new(CloseSignal::default());
        (
            Self {
                id,
                tx,
                close: close.clone(),
                fast: Arc::default(),
            },
            rx,
            close,
        )
    }

    /// Queues a frame. A full queue means the client is not reading: the connection is closed
    /// with 4003 rather than let it hold server memory.
    pub fn send(&self, msg: Outbound) -> bool {
        match self.tx.try_send(msg) {
            Ok(()) => true,
            Err(outq::Refused::Full) => {
                self.close.close(CloseCode::TooSlow);
                false
            }
            Err(outq::Refused::Closed) => false,
        }
    }

    /// Asks the socket task to close.
    pub fn close(&self, code: CloseCode) {
        self.close.close(code);
    }
}
