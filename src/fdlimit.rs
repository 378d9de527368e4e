//! The open-files limit: every session holds a socket, so it bounds the sessions a node can take.
//!
//! At start the node raises its soft limit to the hard one (as a server that expects many
//! connections should; the soft default is often 1,024). If the limit is still too low for
//! `limits.max_connections`, the node takes fewer sessions than configured, so the connections
//! past the limit get the protocol's 503 `at_capacity` instead of hanging in the listen queue
//! while the kernel refuses the node a socket.
//!
//! Connections that are not sessions (plain HTTP, kept-alive HTTP, connections before their
//! request line) have a bound of their own, `http.max_connections`; when descriptors are short,
//! they get an eighth of the descriptors left after [`RESERVED`], and sessions the rest. No
//! kind of connection can take the descriptors the other needs, or the node's own.

use std::sync::atomic::{AtomicUsize, Ordering};

use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
use tracing::{info, warn};

/// Descriptors kept for everything but client connections: the listeners, cluster links, the
/// runtime's own, log and snapshot files, and the sockets that are answered 503.
pub(crate) const RESERVED: usize = 256;

/// Client connections the open-files limit allows; `usize::MAX` until [`raise`] ran.
static CAP: AtomicUsize = AtomicUsize::new(usize::MAX);

/// The share of [`CAP`] that connections other than sessions may take (at least one).
fn http_share(cap: usize) -> usize {
    if cap == usize::MAX {
        usize::MAX
    } else {
        (cap / 8).clamp(1, cap.max(1))
    }
}

/// Raises the soft open-files limit to the hard limit and records the sessions it allows.
/// Returns the open-files limit now in force (`usize::MAX`: unlimited).
pub(crate) fn raise(max_connections: usize) -> usize {
    let lim = getrlimit(Resource::Nofile);
    let mut soft = lim.current;
    if soft.is_some() && soft != lim.maximum {
        let wanted = Rlimit {
            current: lim.maximum,
            maximum: lim.maximum,
        };
        match setrlimit(Resource::Nofile, wanted) {
            Ok(()) => {
                info!(from = ?lim.current, to = ?lim.maximum, "raised the open-files limit");
                soft = lim.maximum;
            }
            Err(e) => warn!(error = %e, "could not raise the open-files limit"),
        }
    }
    CAP.store(cap_for(soft), Ordering::Relaxed);
    let cap = sessions(usize::MAX);
    if cap < max_connections {
        warn!(
            open_files = ?soft,
            max_connections,
            sessions = cap,
            "the open-files limit allows fewer sessions than limits.max_connections: this node \
             takes {cap} (raise `ulimit -n`, LimitNOFILE or the container's nofile limit)"
        );
    }
    count(soft)
}

/// A limit as a count (`None`, unlimited: `usize::MAX`).
fn count(limit: Option<u64>) -> usize {
    limit.map_or(usize::MAX, |n| usize::try_from(n).unwrap_or(usize::MAX))
}

/// Client connections an open-files limit allows (no limit: no cap).
fn cap_for(open_files: Option<u64>) -> usize {
    match open_files {
        None => usize::MAX,
        Some(_) => count(open_files).saturating_sub(RESERVED),
    }
}

/// `limits.max_connections` as the open-files limit allows it.
pub(crate) fn sessions(max_connections: usize) -> usize {
    match CAP.load(Ordering::Relaxed) {
        usize::MAX => max_connections,
        cap => max_connections.min(cap.saturating_sub(http_share(cap))),
    }
}

/// `http.max_connections` as the open-files limit allows it.
pub(crate) fn http_connections(max_connections: usize) -> usize {
    max_connections.min(http_share(CAP.load(Ordering::Relaxed)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_keeps_descriptors_for_everything_but_sessions() {
        assert_eq!(cap_for(None), usize::MAX);
        assert_eq!(cap_for(Some(1_024)), 1_024 - RESERVED);
        assert_eq!(cap_for(Some(100)), 0);
        assert_eq!(http_share(usize::MAX), usize::MAX);
        assert_eq!(http_share(800), 100);
        assert_eq!(http_share(0), 1);
    }
}
