//! The soak's cluster: every node in a network namespace of its own, joined to two bridges (one
//! carries the cluster port, one the players' HTTP and WebSocket traffic), so that cutting a
//! node's cluster link partitions it from the others while players still reach it, as a network
//! partition between machines does. Nodes are real `warren` processes; their logs (JSON lines)
//! are kept per start for the checker.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use serde_json::Value;

use super::now_us;
use crate::net::http;

/// The cluster's shared secrets (each at least 16 bytes, as a node with seeds requires).
const COOKIE: &str = "warren-chaos-cluster-cookie";
const JWT_SECRET: &str = "warren-chaos-jwt-secret-0123456789";
/// Bearer of the admin endpoints (players reach the nodes off loopback).
pub const ADMIN: &str = "warren-chaos-admin-token";
const CLUSTER_PORT: u16 = 7351;
/// The nodes' `rooms.reconnect_grace_ms`: a seat whose player's session was lost with its node,
/// and who does not come back, is released after it (10 s rather than 30, so rounds settle sooner).
pub const GRACE_MS: u64 = 10_000;
const HTTP_PORT: u16 = 7350;

/// The bridges and the namespaces, removed on drop.
pub struct Net {
    id: u32,
    third: u8,
    bridges: [String; 2],
    spaces: Vec<u8>,
}

fn ip(args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .context("run `ip` (iproute2)")?;
    if !out.status.success() {
        bail!(
            "ip {}: {} (the chaos soak needs root and network namespaces)",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

impl Net {
    /// Creates the two bridges (cluster: 10.210.T.0/24, players: 10.211.T.0/24, T from the
    /// process id and the networks it made before, so that two runs, or two tests of one run, do
    /// not meet); this host is .254 on the players' bridge.
    pub fn new() -> anyhow::Result<Net> {
        // Unique per network of this process too (tests make several side by side).
        static MADE: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let made = MADE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let id = (std::process::id() + made * 7) % 10_000;
        let third = (id % 250) as u8 + 1;
        let net = Net {
            id,
            third,
            bridges: [format!("wkc{id}"), format!("wkh{id}")],
            spaces: Vec::new(),
        };
        for br in &net.bridges {
            let _ = Command::new("ip").args(["link", "del", br]).output();
            ip(&["link", "add", br, "type", "bridge"])?;
            ip(&["link", "set", br, "up"])?;
        }
        ip(&[
            "addr",
            "add",
            &format!("10.211.{third}.254/24"),
            "dev",
            &net.bridges[1],
        ])?;
        Ok(net)
    }

    fn space(&self, slot: u8) -> String {
        format!("warren-chaos-{}-{slot}", self.id)
    }

    /// The namespace of node slot `slot` (1–250), made on first use.
    fn ensure(&mut self, slot: u8) -> anyhow::Result<String> {
        let ns = self.space(slot);
        if self.spaces.contains(&slot) {
            return Ok(ns);
        }
        let _ = Command::new("ip").args(["netns", "del", &ns]).output();
        ip(&["netns", "add", &ns])?;
        self.spaces.push(slot);
        for (kind, net, br) in [("c", 210, &self.bridges[0]), ("h", 211, &self.bridges[1])] {
            let (out, inside) = (
                format!("wk{}{kind}{slot}o", self.id),
                format!("wk{}{kind}{slot}i", self.id),
            );
            let _ = Command::new("ip").args(["link", "del", &out]).output();
            ip(&["link", "add", &out, "type", "veth", "peer", "name", &inside])?;
            ip(&["link", "set", &inside, "netns", &ns])?;
            ip(&["link", "set", &out, "master", br])?;
            ip(&["link", "set", &out, "up"])?;
            let addr = format!("10.{net}.{}.{slot}/24", self.third);
            ip(&[
                "netns", "exec", &ns, "ip", "addr", "add", &addr, "dev", &inside,
            ])?;
            ip(&["netns", "exec", &ns, "ip", "link", "set", &inside, "up"])?;
        }
        ip(&["netns", "exec", &ns, "ip", "link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// Cuts (or restores) node `slot`'s cluster link.
    pub fn cut(&self, slot: u8, cut: bool) -> anyhow::Result<()> {
        let link = format!("wk{}c{slot}i", self.id);
        let state = if cut { "down" } else { "up" };
        ip(&[
            "netns",
            "exec",
            &self.space(slot),
            "ip",
            "link",
            "set",
            &link,
            state,
        ])
    }

    /// Cuts (or restores) the cluster link between nodes `a` and `b` only: each drops what it
    /// sends to the other (a blackhole route), while both still reach every other node, as when
    /// one path between two machines fails.
    pub fn cut_between(&self, a: u8, b: u8, cut: bool) -> anyhow::Result<()> {
        let verb = if cut { "add" } else { "del" };
        for (from, to) in [(a, b), (b, a)] {
            let dest = format!("10.210.{}.{to}/32", self.third);
            ip(&[
                "netns",
                "exec",
                &self.space(from),
                "ip",
                "route",
                verb,
                "blackhole",
                &dest,
            ])?;
        }
        Ok(())
    }

    fn cluster_addr(&self, slot: u8) -> SocketAddr {
        SocketAddr::from(([10, 210, self.third, slot], CLUSTER_PORT))
    }

    fn http_addr(&self, slot: u8) -> SocketAddr {
        SocketAddr::from(([10, 211, self.third, slot], HTTP_PORT))
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for slot in &self.spaces {
            let _ = Command::new("ip")
                .args(["netns", "del", &self.space(*slot)])
                .output();
        }
        for br in &self.bridges {
            let _ = Command::new("ip").args(["link", "del", br]).output();
        }
    }
}

/// One process's life: where it logged, and when it ended.
#[derive(Clone, Debug)]
pub struct Life {
    /// Node id.
    pub node: String,
    /// Its log (JSON lines).
    pub log: PathBuf,
    /// Process id.
    pub pid: u32,
    /// When it started and ended (µs since the Unix epoch); `None`: still running.
    pub started_us: i64,
    pub ended_us: Option<i64>,
}

/// A node slot: its id, addresses and current process.
pub struct Member {
    /// Node id (`n1`, …).
    pub id: String,
    pub slot: u8,
    /// The players' address.
    pub http: SocketAddr,
    child: Option<Child>,
    starts: u32,
}

impl Member {
    /// The running process's id.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }
}

/// The nodes of the soak.
pub struct Cluster {
    pub net: Net,
    binary: PathBuf,
    out: PathBuf,
    seeds: String,
    failure_timeout_ms: u64,
    pub members: Vec<Member>,
    /// Every process started, in order.
    pub lives: Vec<Life>,
    /// More environment for every node (`WARREN_…` settings), set after the soak's own.
    pub env: Vec<(String, String)>,
}

impl Cluster {
    /// A cluster of `n` node slots (`n1`…); none started yet. The first `n` cluster addresses are
    /// every node's seeds.
    pub fn new(
        binary: &Path,
        out: &Path,
        n: u8,
        failure_timeout_ms: u64,
    ) -> anyhow::Result<Cluster> {
        let net = Net::new()?;
        let seeds = (1..=n)
            .map(|s| net.cluster_addr(s).to_string())
            .collect::<Vec<_>>()
            .join(",");
        Ok(Cluster {
            net,
            binary: binary.to_owned(),
            out: out.to_owned(),
            seeds,
            failure_timeout_ms,
            members: Vec::new(),
            lives: Vec::new(),
            env: Vec::new(),
        })
    }

    /// Index of member `id`.
    pub fn find(&self, id: &str) -> Option<usize> {
        self.members.iter().position(|m| m.id == id)
    }

    /// Adds slot `n{k}` (the next one) and starts it.
    pub fn add(&mut self) -> anyhow::Result<usize> {
        let slot = u8::try_from(self.members.len() + 1).context("too many nodes")?;
        self.net.ensure(slot)?;
        self.members.push(Member {
            id: format!("n{slot}"),
            slot,
            http: self.net.http_addr(slot),
            child: None,
            starts: 0,
        });
        let i = self.members.len() - 1;
        self.start(i)?;
        Ok(i)
    }

    /// Starts member `i`'s process (a new one after a kill or a drain, under the same id).
    pub fn start(&mut self, i: usize) -> anyhow::Result<()> {
        let slot = self.members[i].slot;
        let ns = self.net.ensure(slot)?;
        let m = &mut self.members[i];
        m.starts += 1;
        let log = self.out.join(format!("{}.{}.log", m.id, m.starts));
        let file = std::fs::File::create(&log).with_context(|| format!("{}", log.display()))?;
        let ft = self.failure_timeout_ms.to_string();
        let child = Command::new("ip")
            .args(["netns", "exec", &ns])
            .arg(&self.binary)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("WARREN_NODE__ID", &m.id)
            .env("WARREN_HTTP__LISTEN", m.http.to_string())
            .env("WARREN_HTTP__WORKERS", "1")
            .env("WARREN_HTTP__PLAYGROUND", "false")
            .env(
                "WARREN_CLUSTER__LISTEN",
                self.net.cluster_addr(slot).to_string(),
            )
            .env("WARREN_CLUSTER__SEEDS", &self.seeds)
            .env("WARREN_CLUSTER__COOKIE", COOKIE)
            .env("WARREN_CLUSTER__FAILURE_TIMEOUT_MS", ft)
            .env("WARREN_ROOMS__RECONNECT_GRACE_MS", GRACE_MS.to_string())
            .env("WARREN_AUTH__JWT_SECRET", JWT_SECRET)
            .env("WARREN_AUTH__ADMIN_TOKEN", ADMIN)
            .env("WARREN_AUTH__GUEST_TOKENS_PER_MINUTE", "0")
            .env("WARREN_LOG__FORMAT", "json")
            .env(
                "WARREN_LOG__LEVEL",
                format!(
                    "info,warren_room_life=debug{}",
                    std::env::var("CHAOS_LOG").map_or(String::new(), |l| format!(",{l}"))
                ),
            )
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .with_context(|| format!("start {}", self.binary.display()))?;
        self.lives.push(Life {
            node: m.id.clone(),
            log,
            pid: child.id(),
            started_us: now_us(),
            ended_us: None,
        });
        m.child = Some(child);
        Ok(())
    }

    fn ended(&mut self, pid: u32) {
        let at = now_us();
        if let Some(l) = self.lives.iter_mut().rev().find(|l| l.pid == pid) {
            l.ended_us.get_or_insert(at);
        }
    }

    /// SIGKILL to member `i`, reaped before this returns.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.members[i].child.take() {
            let _ = c.kill();
            let _ = c.wait();
            self.ended(c.id());
        }
    }

    /// Whether member `i`'s process has exited (after a drain); reaps it.
    pub fn exited(&mut self, i: usize) -> bool {
        let Some(c) = self.members[i].child.as_mut() else {
            return true;
        };
        if matches!(c.try_wait(), Ok(Some(_))) {
            let pid = c.id();
            self.members[i].child = None;
            self.ended(pid);
            return true;
        }
        false
    }

    /// Members with a process.
    pub fn running(&self) -> Vec<usize> {
        (0..self.members.len())
            .filter(|&i| self.members[i].child.is_some())
            .collect()
    }

    /// Waits until every running member answers `/readyz` 200 and lists every other running
    /// member as ready.
    pub async fn converge(&mut self, within: Duration) -> anyhow::Result<Duration> {
        let t0 = Instant::now();
        loop {
            let running = self.running();
            let ids: Vec<String> = running
                .iter()
                .map(|&i| self.members[i].id.clone())
                .collect();
            let mut all = true;
            for &i in &running {
                if !sees_ready(self.members[i].http, &ids).await {
                    all = false;
                    break;
                }
            }
            if all {
                return Ok(t0.elapsed());
            }
            for &i in &running {
                if self.exited(i) {
                    bail!(
                        "node {} exited while the cluster formed (see its log)",
                        self.members[i].id
                    );
                }
            }
            if t0.elapsed() > within {
                bail!("the cluster did not converge within {within:?} (nodes {ids:?})");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Kills every process.
    pub fn stop_all(&mut self) {
        for i in 0..self.members.len() {
            self.kill(i);
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop_all();
    }
}

/// Whether the node at `addr` is ready and sees each of `ids` ready.
async fn sees_ready(addr: SocketAddr, ids: &[String]) -> bool {
    match http(addr, "GET", "/readyz", "", None).await {
        Ok((200, _)) => {}
        _ => return false,
    }
    let Ok((200, body)) = http(addr, "GET", "/v1/cluster", "", Some(ADMIN)).await else {
        return false;
    };
    let Ok(v) = serde_json::from_str::<Value>(&body) else {
        return false;
    };
    let nodes = v["nodes"].as_array().cloned().unwrap_or_default();
    ids.iter().all(|id| {
        nodes
            .iter()
            .any(|n| n["id"] == id.as_str() && n["state"] == "ready")
    })
}

/// The sum of every series of metric `name` at `addr`; `None` when the node does not answer.
pub async fn metric_sum(addr: SocketAddr, name: &str) -> Option<f64> {
    let (status, body) = http(addr, "GET", "/metrics", "", None).await.ok()?;
    if status != 200 {
        return None;
    }
    Some(sum_series(&body, name))
}

/// The sum of every series of metric `name` in a Prometheus text exposition.
pub fn sum_series(body: &str, name: &str) -> f64 {
    body.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|r| r.starts_with(['{', ' ']))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}
