//! The cluster port's front: Warren accepts node-to-node connections itself and hands each to
//! ractor_cluster's `NodeServer` as an external stream, so that a connection that has not
//! authenticated is held to three bounds ractor_cluster does not set:
//!
//! - **time:** [`PREAUTH_TIMEOUT`] from accept to authentication (the TLS handshake included),
//!   then the connection closes;
//! - **number:** at most [`MAX_PREAUTH`] connections are unauthenticated at once; past it, a new
//!   connection is closed at accept;
//! - **size:** until it authenticates, a frame may announce at most [`PREAUTH_MAX_FRAME`] bytes
//!   (the handshake's frames are a few hundred); after, `NodeServer`'s own limit applies.
//!
//! `NodeServer` still runs its own listener, which it always binds: on an ephemeral loopback port
//! that nothing dials (peers dial the address this front listens on).

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use ractor::ActorRef;
use ractor_cluster::{BoxRead, BoxWrite, ClusterBidiStream, NodeServerMessage};
use tokio::io::{AsyncRead, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_rustls::TlsAcceptor;
use tracing::debug;

/// How long a connection has from accept to authentication.
pub(crate) const PREAUTH_TIMEOUT: Duration = Duration::from_secs(10);

/// Unauthenticated connections at once. Peers authenticate within milliseconds, so this many
/// covers a whole cluster restarting at once; a peer refused here redials with backoff.
pub(crate) const MAX_PREAUTH: usize = 64;

/// The largest frame an unauthenticated connection may announce, in bytes. The handshake's
/// frames are a few hundred bytes; the margin covers ractor_cluster's first frames after it,
/// which may arrive before this node's `NodeServer` has told the gate (Warren's own large frames,
/// replica batches, wait for a heartbeat round trip).
pub(crate) const PREAUTH_MAX_FRAME: u64 = 256 * 1024;

/// Connections accepted here and not yet authenticated, by the label `NodeServer` reports them
/// under (the peer's address).
/// Held weakly: a connection whose stream `NodeServer` dropped without a session (so no event
/// will name it) releases its slot with its stream, and its entry goes at the next insert.
#[derive(Default)]
pub(crate) struct Gates {
    open: Mutex<HashMap<String, Weak<Gate>>>,
}

impl Gates {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Weak<Gate>>> {
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn insert(&self, peer: String, gate: &Arc<Gate>) {
        let mut open = self.lock();
        open.retain(|_, g| g.strong_count() > 0);
        open.insert(peer, Arc::downgrade(gate));
    }

    /// The session labelled `peer` authenticated: its connection is a peer's.
    pub(crate) fn authenticated(&self, peer: &str) {
        if let Some(gate) = self.lock().remove(peer).and_then(|g| g.upgrade()) {
            gate.pass();
        }
    }

    /// The session labelled `peer` ended.
    pub(crate) fn closed(&self, peer: &str) {
        self.lock().remove(peer);
    }
}

/// Tells the gates of the sessions of accepted connections that authenticated or ended.
pub(crate) struct GateEvents(pub(crate) Arc<Gates>);

impl ractor_cluster::NodeEventSubscription for GateEvents {
    fn node_session_opened(&self, _: ractor_cluster::node::NodeServerSessionInformation) {}

    fn node_session_authenticated(&self, ses: ractor_cluster::node::NodeServerSessionInformation) {
        if ses.is_server {
            self.0.authenticated(&ses.peer_addr);
        }
    }

    fn node_session_disconnected(&self, ses: ractor_cluster::node::NodeServerSessionInformation) {
        if ses.is_server {
            self.0.closed(&ses.peer_addr);
        }
    }
}

/// One connection's state before authentication.
struct Gate {
    passed: AtomicBool,
    /// Counts the connection against [`MAX_PREAUTH`] until it authenticates or closes.
    permit: Mutex<Option<OwnedSemaphorePermit>>,
}

impl Gate {
    fn pass(&self) {
        self.passed.store(true, Ordering::Release);
        self.permit
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
    }

    fn passed(&self) -> bool {
        self.passed.load(Ordering::Acquire)
    }
}

/// Accepts on `listener` until the process ends.
pub(crate) async fn run(
    listener: TcpListener,
    server: ActorRef<NodeServerMessage>,
    tls: Option<TlsAcceptor>,
    gates: Arc<Gates>,
) {
    let slots = Arc::new(Semaphore::new(MAX_PREAUTH));
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                // Out of descriptors, most likely: wait rather than spin.
                debug!(error = %e, "cluster accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            debug!(peer = %peer, "cluster connection refused: too many unauthenticated");
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let gate = Arc::new(Gate {
            passed: AtomicBool::new(false),
            permit: Mutex::new(Some(permit)),
        });
        let (server, tls, gates) = (server.clone(), tls.clone(), gates.clone());
        tokio::spawn(async move {
            let deadline = tokio::time::Instant::now() + PREAUTH_TIMEOUT;
            let (read, write): (BoxRead, BoxWrite) = match tls {
                None => {
                    let (r, w) = tcp.into_split();
                    (Box::new(r), Box::new(w))
                }
                Some(acceptor) => {
                    match tokio::time::timeout_at(deadline, acceptor.accept(tcp)).await {
                        Ok(Ok(stream)) => {
                            let (r, w) = tokio::io::split(stream);
                            (Box::new(r), Box::new(w))
                        }
                        Ok(Err(e)) => {
                            debug!(peer = %peer, error = %e, "cluster TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            debug!(peer = %peer, "cluster TLS handshake timed out");
                            return;
                        }
                    }
                }
            };
            let label = peer.to_string();
            gates.insert(label.clone(), &gate);
            let stream = Guarded {
                peer,
                read: Box::new(GuardedRead {
                    inner: read,
                    gate,
                    deadline: Box::pin(tokio::time::sleep_until(deadline)),
                    header: [0; 8],
                    have: 0,
                    left: 0,
                }),
                write,
            };
            if server
                .cast(NodeServerMessage::ConnectionOpenedExternal {
                    stream: Box::new(stream),
                    is_server: true,
                })
                .is_err()
            {
                gates.closed(&label);
            }
        });
    }
}

/// An accepted connection, as `NodeServer` takes it.
struct Guarded {
    peer: SocketAddr,
    read: BoxRead,
    write: BoxWrite,
}

impl ClusterBidiStream for Guarded {
    fn split(self: Box<Self>) -> (BoxRead, BoxWrite) {
        (self.read, self.write)
    }

    fn peer_label(&self) -> Option<String> {
        Some(self.peer.to_string())
    }
}

/// The read half, which holds an unauthenticated connection to the bounds above and is a plain
/// pass-through once it authenticated.
struct GuardedRead {
    inner: BoxRead,
    gate: Arc<Gate>,
    deadline: Pin<Box<tokio::time::Sleep>>,
    /// The frame header being read (ractor_cluster frames are a big-endian `u64` length, then
    /// that many bytes), how much of it is in, and what is left of the current frame's payload.
    header: [u8; 8],
    have: usize,
    left: u64,
}

impl GuardedRead {
    /// Follows the frames through `bytes`; an error for a frame too large before authentication.
    fn follow(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            if self.left > 0 {
                let n = (self.left.min(bytes.len() as u64)) as usize;
                self.left -= n as u64;
                bytes = &bytes[n..];
                continue;
            }
            let n = (8 - self.have).min(bytes.len());
            self.header[self.have..self.have + n].copy_from_slice(&bytes[..n]);
            self.have += n;
            bytes = &bytes[n..];
            if self.have == 8 {
                self.have = 0;
                self.left = u64::from_be_bytes(self.header);
                if self.left > PREAUTH_MAX_FRAME {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "a frame too large before authentication",
                    ));
                }
            }
        }
        Ok(())
    }
}

impl AsyncRead for GuardedRead {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.gate.passed() {
            return Pin::new(&mut this.inner).poll_read(cx, buf);
        }
        if this.deadline.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "not authenticated in time",
            )));
        }
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                // Bytes read after the gate passed (a race with this read) need no checking.
                if !this.gate.passed() {
                    this.follow(&buf.filled()[before..])?;
                }
                Poll::Ready(Ok(()))
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader() -> GuardedRead {
        GuardedRead {
            inner: Box::new(tokio::io::empty()),
            gate: Arc::new(Gate {
                passed: AtomicBool::new(false),
                permit: Mutex::new(None),
            }),
            deadline: Box::pin(tokio::time::sleep(Duration::from_secs(1))),
            header: [0; 8],
            have: 0,
            left: 0,
        }
    }

    #[tokio::test]
    async fn frames_are_followed_across_reads_and_large_ones_refused() {
        let mut r = reader();
        let mut bytes = 300u64.to_be_bytes().to_vec();
        bytes.extend(vec![1u8; 300]);
        bytes.extend(PREAUTH_MAX_FRAME.to_be_bytes());
        // One byte at a time: headers split across reads are put together.
        for b in &bytes {
            r.follow(std::slice::from_ref(b)).unwrap();
        }
        assert_eq!(r.left, PREAUTH_MAX_FRAME);
        let mut r = reader();
        let mut big = 10u64.to_be_bytes().to_vec();
        big.extend([0u8; 10]);
        big.extend((PREAUTH_MAX_FRAME + 1).to_be_bytes());
        assert!(r.follow(&big[..20]).is_ok());
        assert!(r.follow(&big[20..]).is_err());
    }
}
