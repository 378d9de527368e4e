//! Where the cluster listener landed when `cluster.listen` names port 0 (the kernel's pick).
//! ractor_cluster binds the listener itself and does not say which port it got, so the node looks
//! at its own listening sockets: the one on the configured address that was not there before the
//! node server started is it.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::BorrowedFd;
use std::time::Duration;

/// How long the node server has to bind its listener.
const BIND_WAIT: Duration = Duration::from_secs(5);
const BIND_POLL: Duration = Duration::from_millis(5);

/// The TCP sockets of this process that listen on `ip` (or on every address).
pub(crate) fn listening(ip: IpAddr) -> HashSet<SocketAddr> {
    let mut found = HashSet::new();
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return found;
    };
    for entry in dir.flatten() {
        let Some(fd) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        // SAFETY: the descriptor is only queried (getsockname, getsockopt), never closed or
        // kept; if another thread closed it meanwhile, the calls fail or describe whatever took
        // its number, which the checks below sort out.
        let fd = unsafe { BorrowedFd::borrow_raw(fd) };
        if !rustix::net::sockopt::socket_acceptconn(fd).unwrap_or(false) {
            continue;
        }
        let Some(addr) = rustix::net::getsockname(fd)
            .ok()
            .and_then(|a| SocketAddr::try_from(a).ok())
        else {
            continue;
        };
        if addr.ip() == ip || addr.ip().is_unspecified() {
            found.insert(addr);
        }
    }
    found
}

/// Waits for a listener on `ip` that is not among `before`, and gives its address.
pub(crate) async fn new_listener(ip: IpAddr, before: &HashSet<SocketAddr>) -> Option<SocketAddr> {
    let deadline = tokio::time::Instant::now() + BIND_WAIT;
    loop {
        if let Some(a) = listening(ip).into_iter().find(|a| !before.contains(a)) {
            return Some(a);
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(BIND_POLL).await;
    }
}
