// Copyright (c) Sean Lawlor
//
// This source code is licensed under both the MIT license found in the
// LICENSE-MIT file in the root directory of this source tree.

//! Shared concurrency primitives utilized within the library for different frameworks (tokio, async-std, etc)

/// A timeout error
#[derive(Debug)]
pub struct Timeout;
impl std::error::Error for Timeout {}
impl std::fmt::Display for Timeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Timeout")
    }
}

/// A notification
pub type Notify = tokio::sync::Notify;

/// A one-use sender
pub type OneshotSender<T> = tokio::sync::oneshot::Sender<T>;
/// A one-use receiver
pub type OneshotReceiver<T> = tokio::sync::oneshot::Receiver<T>;

/// A bounded MP;SC sender
pub type MpscSender<T> = tokio::sync::mpsc::Sender<T>;
/// A bounded MP;SC receiver
pub type MpscReceiver<T> = tokio::sync::mpsc::Receiver<T>;

// Warren patch: the unbounded channels carry boxed values (see `boxed_unbounded`).
pub use self::boxed_unbounded::{MpscUnboundedReceiver, MpscUnboundedSender};

/// A bounded broadcast sender
pub type BroadcastSender<T> = tokio::sync::broadcast::Sender<T>;
/// A bounded broadcast receiver
pub type BroadcastReceiver<T> = tokio::sync::broadcast::Receiver<T>;

/// MPSC bounded channel
pub fn mpsc_bounded<T>(buffer: usize) -> (MpscSender<T>, MpscReceiver<T>) {
    tokio::sync::mpsc::channel(buffer)
}

/// MPSC unbounded channel
pub fn mpsc_unbounded<T>() -> (MpscUnboundedSender<T>, MpscUnboundedReceiver<T>) {
    boxed_unbounded::channel()
}

// Warren patch. tokio's unbounded channel allocates its first block of 32 slots when it is
// created, each slot the size of the value. An actor has two such channels, its supervision and
// message ports, whose values are 100 to 200 bytes: about 7 KiB an actor before it receives
// anything. Boxing the values makes a slot 8 bytes, for one allocation per message sent.
mod boxed_unbounded {
    use tokio::sync::mpsc;
    use tokio::sync::mpsc::error::{SendError, TryRecvError};

    /// The sending half of an unbounded MPSC channel.
    pub struct MpscUnboundedSender<T>(mpsc::UnboundedSender<Box<T>>);

    /// The receiving half of an unbounded MPSC channel.
    pub struct MpscUnboundedReceiver<T>(mpsc::UnboundedReceiver<Box<T>>);

    pub(super) fn channel<T>() -> (MpscUnboundedSender<T>, MpscUnboundedReceiver<T>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (MpscUnboundedSender(tx), MpscUnboundedReceiver(rx))
    }

    impl<T> Clone for MpscUnboundedSender<T> {
        fn clone(&self) -> Self {
            Self(self.0.clone())
        }
    }

    impl<T> std::fmt::Debug for MpscUnboundedSender<T> {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            self.0.fmt(f)
        }
    }

    impl<T> std::fmt::Debug for MpscUnboundedReceiver<T> {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            self.0.fmt(f)
        }
    }

    impl<T> MpscUnboundedSender<T> {
        /// Sends a value; gives it back if the receiver is gone.
        pub fn send(&self, value: T) -> Result<(), SendError<T>> {
            self.0
                .send(Box::new(value))
                .map_err(|SendError(value)| SendError(*value))
        }

        /// Whether the receiver is gone or closed.
        pub fn is_closed(&self) -> bool {
            self.0.is_closed()
        }

        /// Completes when the receiver is gone or closed.
        pub async fn closed(&self) {
            self.0.closed().await
        }

        /// Whether both senders feed the same channel.
        pub fn same_channel(&self, other: &Self) -> bool {
            self.0.same_channel(&other.0)
        }
    }

    impl<T> MpscUnboundedReceiver<T> {
        /// The next value; `None` once every sender is gone (or the channel is closed) and the
        /// queue is empty. Cancel safe.
        pub async fn recv(&mut self) -> Option<T> {
            self.0.recv().await.map(|value| *value)
        }

        /// The next value if one is queued.
        pub fn try_recv(&mut self) -> Result<T, TryRecvError> {
            self.0.try_recv().map(|value| *value)
        }

        /// Refuses further sends; queued values can still be received.
        pub fn close(&mut self) {
            self.0.close()
        }

        /// Whether nothing is queued.
        pub fn is_empty(&self) -> bool {
            self.0.is_empty()
        }

        /// How many values are queued.
        pub fn len(&self) -> usize {
            self.0.len()
        }
    }
}

/// Oneshot channel
pub fn oneshot<T>() -> (OneshotSender<T>, OneshotReceiver<T>) {
    tokio::sync::oneshot::channel()
}

/// Broadcast channel
pub fn broadcast<T: Clone>(buffer: usize) -> (BroadcastSender<T>, BroadcastReceiver<T>) {
    tokio::sync::broadcast::channel(buffer)
}

#[cfg(all(
    not(all(target_arch = "wasm32", target_os = "unknown")),
    not(feature = "async-std")
))]
pub mod tokio_primitives;
#[cfg(all(
    not(all(target_arch = "wasm32", target_os = "unknown")),
    not(feature = "async-std")
))]
pub use self::tokio_primitives::*;

#[cfg(all(
    not(all(target_arch = "wasm32", target_os = "unknown")),
    feature = "async-std"
))]
pub mod async_std_primitives;
#[cfg(all(
    not(all(target_arch = "wasm32", target_os = "unknown")),
    feature = "async-std"
))]
pub use self::async_std_primitives::*;

#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
pub mod wasm_browser_primitives;
#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
pub use self::wasm_browser_primitives::*;

#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
mod target_specific {
    pub(crate) use web_time::SystemTime;
}
#[cfg(not(all(target_arch = "wasm32", target_os = "unknown")))]
mod target_specific {
    pub(crate) use std::time::SystemTime;
}

pub(crate) use target_specific::SystemTime;
