//! Admission: whether the nodes this node dials let it in. A node whose `cluster.cookie` (or TLS
//! configuration) differs from its cluster's is refused by every peer it dials; seeing no peer, it
//! would otherwise count itself a one-node majority, report ready and host players in a world of
//! its own. [`Admission`] records refusals of the sessions this node opened, and the guard treats a
//! node that has been refused, with no peer to show for it, as cut off from its cluster (no rooms,
//! `/readyz` 503, sessions closed with 4001) until some peer lets it in.
//!
//! Only sessions this node dialed count: their addresses come from `cluster.seeds` or from the
//! gossip of authenticated peers, so a stranger connecting to the cluster port cannot make a node
//! unready.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use ractor::ActorId;
use ractor_cluster::NodeEventSubscription;
use ractor_cluster::node::NodeServerSessionInformation;
use tracing::{debug, error, warn};

/// How long refusals must have gone on, with no peer admitting this node, before the node counts
/// as cut off from its cluster.
pub(crate) const REFUSED_FOR: Duration = Duration::from_secs(3);

/// Refusals by one address that make it a refuser: a wrong cookie is refused at every redial,
/// while a peer that happens to close a connection once (shutting down, or the loser of a
/// simultaneous connect) does not refuse again.
const REFUSALS: u32 = 3;

/// A refuser stops counting when it has not refused for this long (discovery redials a peer at
/// least every 15 s): it went away.
const STALE_AFTER: Duration = Duration::from_secs(20);

/// The same refuser is logged at most once in this long.
const LOG_EVERY: Duration = Duration::from_secs(60);

/// Addresses remembered, refusing or found to be this node (bounds against a long seed list).
const MAX_ADDRS: usize = 1024;

/// Refusals of this node's outgoing sessions, shared by the session subscription, discovery and
/// the guard.
pub(crate) struct Admission {
    node: String,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Sessions this node dialed that are open, and whether each authenticated.
    dialed: HashMap<ActorId, bool>,
    /// Addresses whose connections ended unauthenticated since this node was last admitted.
    refusers: HashMap<String, Refuser>,
    /// Addresses that turned out to reach this node itself.
    to_self: HashSet<String>,
    /// Some peer admitted this process once: its cookie and TLS are its cluster's, so refusals
    /// now are more likely a network interruption (a partition ends dials before they
    /// authenticate) than a configuration error.
    admitted_once: bool,
}

struct Refuser {
    first: Instant,
    last: Instant,
    count: u32,
    logged: Option<Instant>,
    how: Refusal,
    detail: String,
}

/// How a peer refused this node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// It named itself, then closed the session unauthenticated: its cookie is not this node's.
    Cookie,
    /// It closed the session before naming itself (TLS on its side only, or not a Warren node).
    Unnamed,
    /// The TLS handshake failed.
    Tls,
}

impl Admission {
    pub(crate) fn new(node: &str) -> Arc<Self> {
        Arc::new(Self {
            node: node.to_owned(),
            state: Mutex::new(State::default()),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The peer at `peer` refused this node; `detail` is the error, if any.
    pub(crate) fn refused(&self, peer: &str, how: Refusal, detail: &str) {
        let mut s = self.state();
        if s.to_self.contains(peer) {
            return;
        }
        let now = Instant::now();
        if !s.refusers.contains_key(peer) && s.refusers.len() >= MAX_ADDRS {
            return;
        }
        let r = s.refusers.entry(peer.to_owned()).or_insert(Refuser {
            first: now,
            last: now,
            count: 0,
            logged: None,
            how,
            detail: String::new(),
        });
        if now.duration_since(r.last) > STALE_AFTER {
            (r.first, r.count) = (now, 0);
        }
        r.last = now;
        r.count = r.count.saturating_add(1);
        r.how = how;
        r.detail = detail.chars().take(200).collect();
        // Logged only once the refusals cut the node off (`cut_off`): a connection that a network
        // partition or a peer's restart interrupts before it authenticates looks the same, once.
        debug!(
            peer,
            ?how,
            detail,
            "a session this node dialed ended before it was admitted"
        );
    }

    /// Logs, at most once per [`LOG_EVERY`] per address, why a refuser keeps this node out: an
    /// error while no peer has ever admitted this process (its configuration is not its
    /// cluster's), a warning after one has.
    fn log_refuser(peer: &str, r: &mut Refuser, now: Instant, admitted_once: bool) {
        if r.logged
            .is_some_and(|at| now.duration_since(at) < LOG_EVERY)
        {
            return;
        }
        r.logged = Some(now);
        if admitted_once {
            warn!(
                peer,
                detail = r.detail.as_str(),
                how = ?r.how,
                "cluster peers that admitted this node close its connections before they \
                 authenticate (a network interruption, or the cluster's cookie or TLS changed); \
                 until a peer admits it again, this node is not ready and hosts no rooms"
            );
            return;
        }
        {
            let cause = match r.how {
                Refusal::Cookie => "it refuses this node's cluster.cookie",
                Refusal::Unnamed => {
                    "it closes every connection before authenticating (cluster TLS configured on \
                     one side only, or not a Warren node)"
                }
                Refusal::Tls => {
                    "the TLS handshake fails (cluster.tls_ca, cluster.tls_cert, \
                     cluster.tls_server_name)"
                }
            };
            error!(
                peer,
                detail = r.detail.as_str(),
                "a cluster peer does not admit this node: {cause}; until a peer admits it, this \
                 node is not ready and hosts no rooms"
            );
        }
    }

    /// A session authenticated, or a peer is live: this node is let in.
    pub(crate) fn admitted(&self) {
        let mut s = self.state();
        s.admitted_once = true;
        if !s.refusers.is_empty() {
            s.refusers.clear();
        }
    }

    /// Whether some address has kept refusing this node for at least [`REFUSED_FOR`], and no
    /// peer has admitted it since. The guard asks only while the node sees no live peer.
    pub(crate) fn cut_off(&self) -> bool {
        let now = Instant::now();
        let mut cut = false;
        let mut s = self.state();
        let admitted_once = s.admitted_once;
        for (peer, r) in &mut s.refusers {
            if r.count >= REFUSALS
                && now.duration_since(r.first) >= REFUSED_FOR
                && now.duration_since(r.last) <= STALE_AFTER
            {
                Self::log_refuser(peer, r, now, admitted_once);
                cut = true;
            }
        }
        cut
    }

    fn reached_self(&self, peer: &str) {
        let mut s = self.state();
        s.refusers.remove(peer);
        if s.to_self.len() < MAX_ADDRS {
            s.to_self.insert(peer.to_owned());
        }
    }

    /// The subscription to register with the node server.
    pub(crate) fn subscription(self: &Arc<Self>) -> Box<dyn NodeEventSubscription> {
        Box::new(Sessions(self.clone()))
    }
}

struct Sessions(Arc<Admission>);

impl NodeEventSubscription for Sessions {
    fn node_session_opened(&self, ses: NodeServerSessionInformation) {
        if !ses.is_server {
            self.0.state().dialed.insert(ses.actor.get_id(), false);
        }
    }

    fn node_session_authenticated(&self, ses: NodeServerSessionInformation) {
        if let Some(auth) = self.0.state().dialed.get_mut(&ses.actor.get_id()) {
            *auth = true;
        }
        self.0.admitted();
    }

    fn node_session_disconnected(&self, ses: NodeServerSessionInformation) {
        let Some(authenticated) = self.0.state().dialed.remove(&ses.actor.get_id()) else {
            return;
        };
        if authenticated {
            return;
        }
        // ractor_cluster names a node `id@host`; a peer names itself only once it accepted
        // the connection, so a named peer that then closes it refused this node's cookie. A
        // seed that reaches this node itself (through an address it does not know for its own)
        // names this node.
        match &ses.peer_name {
            Some(n) if n.name.split('@').next() == Some(self.0.node.as_str()) => {
                self.0.reached_self(&ses.peer_addr);
            }
            Some(n) => self.0.refused(&ses.peer_addr, Refusal::Cookie, &n.name),
            None => self.0.refused(&ses.peer_addr, Refusal::Unnamed, ""),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stand(a: &Admission, peer: &str) {
        let r = a
            .state()
            .refusers
            .get_mut(peer)
            .map(|r| r.first -= REFUSED_FOR);
        assert!(r.is_some());
    }

    #[test]
    fn an_address_that_keeps_refusing_cuts_the_node_off_until_it_is_admitted() {
        let a = Admission::new("n1");
        let peer = "127.0.0.1:1";
        a.refused(peer, Refusal::Cookie, "n2@host");
        stand(&a, peer);
        assert!(!a.cut_off(), "one refusal is not enough");
        for _ in 1..REFUSALS {
            a.refused(peer, Refusal::Cookie, "n2@host");
        }
        assert!(a.cut_off());
        a.admitted();
        assert!(!a.cut_off());
        assert!(a.state().refusers.is_empty());
    }

    #[test]
    fn a_node_admitted_once_is_still_cut_off_by_refusals_and_remembers_it_was_admitted() {
        let a = Admission::new("n1");
        let peer = "127.0.0.1:1";
        assert!(!a.state().admitted_once);
        a.admitted();
        for _ in 0..REFUSALS {
            a.refused(peer, Refusal::Unnamed, "");
        }
        stand(&a, peer);
        assert!(a.cut_off());
        assert!(
            a.state().admitted_once,
            "the warning, not the error, is logged"
        );
    }

    #[test]
    fn refusals_must_have_gone_on_for_a_while_and_lately() {
        let a = Admission::new("n1");
        let peer = "127.0.0.1:1";
        for _ in 0..REFUSALS {
            a.refused(peer, Refusal::Tls, "handshake");
        }
        assert!(!a.cut_off(), "not before REFUSED_FOR");
        stand(&a, peer);
        assert!(a.cut_off());
        a.state().refusers.get_mut(peer).unwrap().last -= STALE_AFTER * 2;
        assert!(!a.cut_off(), "a refuser that went silent stops counting");
    }

    #[test]
    fn an_address_that_reaches_the_node_itself_never_refuses() {
        let a = Admission::new("n1");
        let peer = "10.0.0.1:7351";
        a.reached_self(peer);
        for _ in 0..REFUSALS * 2 {
            a.refused(peer, Refusal::Unnamed, "");
        }
        assert!(a.state().refusers.is_empty());
        assert!(!a.cut_off());
    }
}
