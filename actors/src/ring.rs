//! Where things without a natural home live: a consistent-hash ring with virtual nodes over the
//! cluster's ready nodes (matchmaking pools are placed on it), and the choice of a node for a new
//! matchmade room.
//!
//! The hash is FNV-1a with a 64-bit finalizer, written out here rather than taken from `std`,
//! because every node of every build must agree on a key's owner: `std`'s hasher may change
//! between Rust releases, and nodes of two releases run side by side during a rolling upgrade.

use warren_protocol::NodeId;

/// Points each node puts on the ring. With 256, the largest of three nodes owns 1.07 times the mean
/// share of the key space, and a joining or leaving node moves only its own share.
pub const VIRTUAL_NODES: u32 = 256;

/// A consistent-hash ring over a set of nodes.
#[derive(Clone, Debug, Default)]
pub struct Ring {
    nodes: Vec<NodeId>,
    points: Vec<(u64, u32)>,
}

impl Ring {
    /// The ring over `nodes` (duplicates ignored).
    pub fn new(nodes: impl IntoIterator<Item = NodeId>) -> Self {
        let mut nodes: Vec<NodeId> = nodes.into_iter().collect();
        nodes.sort_unstable();
        nodes.dedup();
        let mut points = Vec::with_capacity(nodes.len() * VIRTUAL_NODES as usize);
        for (i, n) in nodes.iter().enumerate() {
            for v in 0..VIRTUAL_NODES {
                points.push((hash(format!("{n}#{v}").as_bytes()), i as u32));
            }
        }
        points.sort_unstable();
        Self { nodes, points }
    }

    /// The nodes on the ring, sorted.
    pub fn nodes(&self) -> &[NodeId] {
        &self.nodes
    }

    /// How evenly the ring splits the key space: the largest node's share over the mean share
    /// (1 is perfectly even; 0 for an empty ring). Pools are placed by key, so this is how
    /// evenly pools spread over the ready nodes.
    pub fn spread(&self) -> f64 {
        if self.nodes.is_empty() {
            return 0.0;
        }
        let mut share = vec![0u128; self.nodes.len()];
        // Each point owns the arc from its predecessor (exclusive) to itself; the first point
        // also owns the wrap-around arc.
        let mut prev = self.points.last().map_or(0, |(p, _)| *p);
        for (p, n) in &self.points {
            share[*n as usize] += u128::from(p.wrapping_sub(prev));
            prev = *p;
        }
        let max = share.iter().copied().max().unwrap_or(0) as f64;
        let mean = share.iter().sum::<u128>() as f64 / self.nodes.len() as f64;
        if mean > 0.0 { max / mean } else { 1.0 }
    }

    /// The node owning `key`: the first point clockwise from the key's hash.
    pub fn owner(&self, key: &str) -> Option<&NodeId> {
        if self.points.is_empty() {
            return None;
        }
        let h = hash(key.as_bytes());
        let i = self.points.partition_point(|(p, _)| *p < h);
        let (_, n) = self.points[i % self.points.len()];
        self.nodes.get(n as usize)
    }

    /// The owner of `key` among the nodes other than `not`: the first point clockwise from the
    /// key's hash that belongs to another node. A room's backup is `owner_except(room, host)`, so
    /// when the host leaves the ring, the backup is the key's plain owner on every survivor's ring.
    pub fn owner_except(&self, key: &str, not: &NodeId) -> Option<&NodeId> {
        self.owner_where(key, |n| n != not)
    }

    /// The owner of `key` among the nodes for which `accept` holds: the first point clockwise
    /// from the key's hash that belongs to one of them.
    pub fn owner_where(&self, key: &str, accept: impl Fn(&NodeId) -> bool) -> Option<&NodeId> {
        if self.points.is_empty() {
            return None;
        }
        let h = hash(key.as_bytes());
        let start = self.points.partition_point(|(p, _)| *p < h);
        let mut checked = vec![None; self.nodes.len()];
        (0..self.points.len())
            .map(|k| self.points[(start + k) % self.points.len()].1 as usize)
            .find(|&n| *checked[n].get_or_insert_with(|| accept(&self.nodes[n])))
            .map(|n| &self.nodes[n])
    }
}

/// FNV-1a, then the murmur3 finalizer so nearby keys spread over the whole ring.
pub fn hash(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// A node that may receive a new room, with the rooms it hosts now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    /// The node.
    pub node: NodeId,
    /// Rooms it hosts.
    pub rooms: u32,
    /// Its build version (`major.minor.patch`).
    pub version: String,
    /// The games it runs with the state versions each restores; `None` when it did not say
    /// (see [`crate::game::node_reads`]).
    pub games: Option<std::sync::Arc<crate::game::GameVersions>>,
    /// Just heard again after a silence: it refuses rooms moved to it for a failure timeout
    /// (rooms are created there as anywhere else).
    pub settling: bool,
}

impl Candidate {
    /// Whether it runs `game` (a node that did not say is taken to).
    pub fn runs(&self, game: &str) -> bool {
        self.games
            .as_ref()
            .is_none_or(|list| list.iter().any(|(g, _)| g == game))
    }

    /// Whether it restores rooms of `game` at state `version`.
    pub fn reads(&self, game: &str, version: u32) -> bool {
        crate::game::node_reads(self.games.as_deref(), game, version)
    }
}

/// A build version as numbers, for ordering (`0.10.0` is newer than `0.9.3`); parts that are not
/// numbers count as 0.
pub fn version_key(v: &str) -> Vec<u64> {
    v.split(['.', '-', '+'])
        .map(|p| p.parse().unwrap_or(0))
        .collect()
}

/// Where a room goes: among the candidates (ready nodes) of the newest build version (a rolling
/// upgrade moves rooms forward, never back to a node about to be replaced), the one where most of
/// its players are connected; among equals, the least loaded; then the lowest id. `None` only
/// when there is no candidate.
pub fn place(homes: &[NodeId], candidates: &[Candidate]) -> Option<NodeId> {
    let newest = candidates.iter().map(|c| version_key(&c.version)).max()?;
    candidates
        .iter()
        .filter(|c| version_key(&c.version) == newest)
        .max_by(|a, b| {
            let count = |c: &Candidate| homes.iter().filter(|h| **h == c.node).count();
            count(a)
                .cmp(&count(b))
                .then(b.rooms.cmp(&a.rooms))
                .then(b.node.cmp(&a.node))
        })
        .map(|c| c.node.clone())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn ring(ids: &[&str]) -> Ring {
        Ring::new(ids.iter().map(|s| NodeId::from(*s)))
    }

    fn owners(r: &Ring, keys: &[String]) -> Vec<NodeId> {
        keys.iter().map(|k| r.owner(k).unwrap().clone()).collect()
    }

    #[test]
    fn owner_is_stable_and_independent_of_input_order() {
        let a = ring(&["n1", "n2", "n3"]);
        let b = ring(&["n3", "n1", "n2", "n1"]);
        let keys: Vec<String> = (0..500).map(|i| format!("dice:m{i}")).collect();
        assert_eq!(owners(&a, &keys), owners(&b, &keys));
        assert!(Ring::default().owner("x").is_none());
        // Pinned: a change of hash would split ownership between nodes of two builds.
        assert_eq!(hash(b"dice:default"), 17_126_041_449_664_680_875);
    }

    #[test]
    fn keys_spread_evenly_and_a_leaving_node_moves_only_its_own() {
        let keys: Vec<String> = (0..3000).map(|i| format!("arena:mode{i}")).collect();
        let three = ring(&["n1", "n2", "n3"]);
        let before = owners(&three, &keys);
        let mut count: HashMap<NodeId, usize> = HashMap::new();
        for o in &before {
            *count.entry(o.clone()).or_default() += 1;
        }
        for n in ["n1", "n2", "n3"] {
            let share = count[&NodeId::from(n)] as f64 / keys.len() as f64;
            assert!((0.2..0.46).contains(&share), "{n} owns {share}");
        }
        println!("spread over three nodes: {}", three.spread());
        assert!((1.0..1.15).contains(&three.spread()), "{}", three.spread());
        assert_eq!(ring(&["solo"]).spread(), 1.0);
        assert_eq!(Ring::default().spread(), 0.0);
        let two = ring(&["n1", "n3"]);
        let after = owners(&two, &keys);
        for (b, a) in before.iter().zip(&after) {
            if b.as_str() != "n2" {
                assert_eq!(a, b, "a key not owned by the leaver moved");
            }
        }
        let four = ring(&["n1", "n2", "n3", "n4"]);
        let grown = owners(&four, &keys);
        let moved = before.iter().zip(&grown).filter(|(b, a)| b != a).count();
        assert!(
            grown
                .iter()
                .zip(&before)
                .all(|(a, b)| a == b || a.as_str() == "n4")
        );
        let share = moved as f64 / keys.len() as f64;
        assert!((0.15..0.35).contains(&share), "a joiner took {share}");
    }

    #[test]
    fn rooms_go_where_most_players_are_then_to_the_least_loaded() {
        let c = |n: &str, rooms| Candidate {
            games: None,
            node: n.into(),
            rooms,
            version: "0.1.0".into(),
            settling: false,
        };
        let cands = [c("n1", 5), c("n2", 1), c("n3", 9)];
        let h = |v: &[&str]| v.iter().map(|s| NodeId::from(*s)).collect::<Vec<_>>();
        assert_eq!(place(&h(&["n3", "n3", "n1"]), &cands), Some("n3".into()));
        assert_eq!(place(&h(&["n1", "n3"]), &cands), Some("n1".into()));
        assert_eq!(place(&h(&["gone", "gone"]), &cands), Some("n2".into()));
        assert_eq!(place(&h(&[]), &[c("b", 2), c("a", 2)]), Some("a".into()));
        assert_eq!(place(&h(&["n1"]), &[]), None);
    }

    #[test]
    fn rooms_move_to_the_newest_version_first() {
        let c = |n: &str, rooms, version: &str| Candidate {
            games: None,
            node: n.into(),
            rooms,
            version: version.into(),
            settling: false,
        };
        let h = |v: &[&str]| v.iter().map(|s| NodeId::from(*s)).collect::<Vec<_>>();
        let mixed = [
            c("old", 0, "0.9.3"),
            c("new", 7, "0.10.0"),
            c("new2", 9, "0.10.0"),
        ];
        // Players on the old node and the old node empty: still the least loaded new one.
        assert_eq!(place(&h(&["old", "old"]), &mixed), Some("new".into()));
        assert_eq!(place(&h(&["new2"]), &mixed), Some("new2".into()));
        assert!(version_key("0.10.0") > version_key("0.9.3"));
        assert!(version_key("1.0.0-rc1") > version_key("0.99.0"));
    }

    #[test]
    fn a_backup_is_the_next_owner_and_stays_the_owner_when_its_host_leaves() {
        let three = ring(&["n1", "n2", "n3"]);
        for i in 0..300 {
            let key = format!("n1.room{i}");
            let host = three.owner(&key).unwrap().clone();
            let backup = three.owner_except(&key, &host).unwrap().clone();
            assert_ne!(backup, host);
            let rest: Vec<&str> = ["n1", "n2", "n3"]
                .into_iter()
                .filter(|n| *n != host.as_str())
                .collect();
            assert_eq!(ring(&rest).owner(&key), Some(&backup), "{key}");
            // Any host, not only the key's owner: the backup survives the host's departure.
            let other = NodeId::from("n2");
            let b2 = three.owner_except(&key, &other).unwrap().clone();
            assert_eq!(ring(&["n1", "n3"]).owner(&key), Some(&b2));
        }
        assert_eq!(ring(&["solo"]).owner_except("k", &"solo".into()), None);
    }

    #[test]
    fn a_room_goes_only_to_nodes_that_restore_its_state_version() {
        use std::sync::Arc;
        let with = |n: &str, games: Option<Vec<(&str, Vec<u32>)>>| Candidate {
            node: n.into(),
            rooms: 0,
            version: "0.1.0".into(),
            games: games.map(|g| Arc::new(g.into_iter().map(|(n, v)| (n.to_owned(), v)).collect())),
            settling: false,
        };
        let v1 = with("a", Some(vec![("eights", vec![1])]));
        let v2 = with("b", Some(vec![("eights", vec![1, 2])]));
        let old = with("c", None);
        assert!(v1.reads("eights", 1) && !v1.reads("eights", 2));
        assert!(v2.reads("eights", 1) && v2.reads("eights", 2));
        // A build that did not say restores version 1 of anything, and runs any game.
        assert!(old.reads("eights", 1) && !old.reads("eights", 2) && old.runs("chess"));
        assert!(!v1.reads("dice", 1) && !v1.runs("dice"));
        // The backup of a key, among the nodes that pass: the first of them clockwise.
        let r = ring(&["a", "b", "c", "d"]);
        for i in 0..50 {
            let key = format!("n9.r{i}");
            let owner = r.owner(&key).unwrap().clone();
            assert_eq!(r.owner_where(&key, |_| true), Some(&owner));
            let not_owner = r.owner_where(&key, |n| *n != owner).unwrap();
            assert_eq!(Some(not_owner), r.owner_except(&key, &owner));
            assert_eq!(
                r.owner_where(&key, |n| n.as_str() == "d")
                    .map(|n| n.as_str()),
                Some("d")
            );
            assert!(r.owner_where(&key, |_| false).is_none());
        }
    }
}
