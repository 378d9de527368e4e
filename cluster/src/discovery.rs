//! Discovery: resolve `cluster.seeds` again and again (DNS names included, so a Kubernetes headless
//! Service finds every pod), dial addresses that are not live members yet, and redial lost ones with
//! exponential backoff and jitter. Each dial is a task of its own with a timeout, so an address
//! that drops packets holds up no other. Addresses gossiped in heartbeats are dialed the same
//! way, which completes the mesh (ractor_cluster's own transitive dialing is off: it would bypass
//! TLS).

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use ractor::ActorRef;
use ractor_cluster::NodeServerMessage;
use rand::Rng;
use tokio::time::Instant;
use tracing::debug;

use crate::admission::{Admission, Refusal};
use crate::membership::{ClusterView, MemberState};
use crate::tls::Tls;

const ROUND: Duration = Duration::from_millis(500);
const FIRST_RETRY: Duration = Duration::from_millis(250);
const MAX_RETRY: Duration = Duration::from_secs(10);

/// How long a seed's name may take to resolve, and a dial (TCP connect, and TLS handshake) to
/// complete: an address that drops packets (a node gone with its host) costs one dial this long,
/// and holds up no other.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(2);
const DIAL_TIMEOUT: Duration = Duration::from_secs(3);

/// Dials under way at once, at most.
const MAX_DIALS: usize = 64;

struct Backoff {
    next: Instant,
    delay: Duration,
}

/// Runs forever; the node drops it at exit.
pub(crate) async fn run(
    server: ActorRef<NodeServerMessage>,
    seeds: Vec<String>,
    own: Vec<SocketAddr>,
    view: Arc<ClusterView>,
    tls: Option<Tls>,
    admission: Arc<Admission>,
) {
    let mut backoff: HashMap<SocketAddr, Backoff> = HashMap::new();
    // Addresses being dialed; each dial runs as its own task.
    let dialing: Arc<Mutex<HashSet<SocketAddr>>> = Arc::default();
    loop {
        let live: HashSet<String> = view
            .members()
            .into_iter()
            .skip(1)
            // Reachable through others (SWIM's indirect probes) is not linked: a dropped link to a
            // live member is dialed again.
            .filter(|m| {
                m.state != MemberState::Unreachable && crate::inbox::inbox_of(&m.id).is_some()
            })
            .map(|m| m.advertise)
            .collect();
        let live_addrs: HashSet<SocketAddr> = live.iter().filter_map(|a| a.parse().ok()).collect();
        let mut targets = seeds.clone();
        targets.extend(view.candidates());
        targets.sort();
        targets.dedup();
        let mut due = Vec::new();
        for seed in &targets {
            if live.contains(seed) {
                continue;
            }
            let addrs = match seed.parse::<SocketAddr>() {
                Ok(a) => vec![a],
                Err(_) => match tokio::time::timeout(
                    RESOLVE_TIMEOUT,
                    tokio::net::lookup_host(seed.as_str()),
                )
                .await
                {
                    Ok(Ok(a)) => a.collect::<Vec<_>>(),
                    Ok(Err(e)) => {
                        debug!(seed = %seed, error = %e, "seed does not resolve yet");
                        continue;
                    }
                    Err(_) => {
                        debug!(seed = %seed, "seed did not resolve in time");
                        continue;
                    }
                },
            };
            for addr in addrs {
                if own.contains(&addr) || is_own(&own, addr) || live_addrs.contains(&addr) {
                    backoff.remove(&addr);
                    continue;
                }
                let now = Instant::now();
                let b = backoff.entry(addr).or_insert(Backoff {
                    next: now,
                    delay: FIRST_RETRY,
                });
                if now < b.next {
                    continue;
                }
                let jitter = rand::rng().random_range(0.5..1.5);
                b.next = now + b.delay.mul_f64(jitter);
                b.delay = (b.delay * 2).min(MAX_RETRY);
                due.push(addr);
            }
        }
        // Addresses no longer wanted leave the backoff table with the candidates that named them.
        let wanted: HashSet<SocketAddr> = due.iter().copied().collect();
        let now = Instant::now();
        backoff.retain(|a, b| wanted.contains(a) || b.next + MAX_RETRY * 2 > now);
        for addr in due {
            {
                let mut d = dialing.lock().unwrap_or_else(PoisonError::into_inner);
                if d.len() >= MAX_DIALS || !d.insert(addr) {
                    continue;
                }
            }
            let (server, tls, admission, dialing) = (
                server.clone(),
                tls.clone(),
                admission.clone(),
                dialing.clone(),
            );
            tokio::spawn(async move {
                dial(&server, addr, tls.as_ref(), &admission).await;
                dialing
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .remove(&addr);
            });
        }
        tokio::time::sleep(ROUND).await;
    }
}

/// One dial, bounded by [`DIAL_TIMEOUT`].
async fn dial(
    server: &ActorRef<NodeServerMessage>,
    addr: SocketAddr,
    tls: Option<&Tls>,
    admission: &Admission,
) {
    let connect = async {
        match tls {
            Some(t) => {
                ractor_cluster::client_connect_enc(
                    server,
                    addr,
                    t.connector.clone(),
                    t.server_name.clone(),
                )
                .await
            }
            None => ractor_cluster::client_connect(server, addr).await,
        }
    };
    match tokio::time::timeout(DIAL_TIMEOUT, connect).await {
        Ok(Ok(())) => debug!(peer = %addr, "dialed"),
        // The peer answered, but the TLS handshake failed (its CA does not trust this node's
        // certificate, or the other way round, or it speaks plain TCP).
        Ok(Err(ractor_cluster::ClientConnectErr::Encryption(e))) => {
            admission.refused(&addr.to_string(), Refusal::Tls, &e.to_string());
        }
        Ok(Err(e)) => debug!(peer = %addr, error = %e, "dial failed"),
        Err(_) => debug!(peer = %addr, "dial timed out"),
    }
}

/// Whether `addr` reaches this node's own listener bound to every interface (`0.0.0.0:port`): a
/// seed naming this node by one of its addresses (a pod seeded with its own Service). An address
/// is this host's when a socket can bind it.
fn is_own(own: &[SocketAddr], addr: SocketAddr) -> bool {
    own.iter().any(|o| {
        o.ip().is_unspecified()
            && o.port() == addr.port()
            && o.is_ipv4() == addr.is_ipv4()
            && (addr.ip().is_loopback() || std::net::UdpSocket::bind((addr.ip(), 0)).is_ok())
    })
}
