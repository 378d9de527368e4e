//! What operators deploy and watch with: the Kubernetes manifests (rendered and validated
//! offline), the Prometheus alert rules (checked and unit-tested by promtool), and a real
//! Prometheus on loopback scraping a three-node cluster while players play, which also runs every
//! query of the Grafana dashboard.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::cluster_matchmaking::trio;
use crate::common::{free_port, http_at, token};

fn repo(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
}

fn run(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd)
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd} ({e}); bash .ci/run installs it"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{cmd} {args:?} failed:\n{text}");
    text
}

#[test]
fn manifests_render_validate_and_keep_their_invariants() {
    // kubectl kustomize + kubernetes-validate --strict on base, dev and prod, plus the shape
    // checks of the script (parallel pods, headless peers, grace period over the drain...).
    let out = run("python3", &["scripts/check_manifests.py"]);
    assert!(out.contains("0 problem(s)"), "{out}");
}

#[test]
fn alert_rules_and_scrape_config_pass_promtool() {
    run(
        "promtool",
        &["check", "rules", "deploy/prometheus/rules.yml"],
    );
    let out = run(
        "promtool",
        &["test", "rules", "deploy/prometheus/rules_test.yml"],
    );
    assert!(out.contains("SUCCESS"), "{out}");
    run(
        "promtool",
        &["check", "config", "deploy/prometheus/prometheus.yml"],
    );
}

/// A Prometheus server on loopback, killed when dropped.
struct Prometheus {
    child: Child,
    port: u16,
    _dir: TempDir,
}

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Prometheus {
    fn start(targets: &[String]) -> Prometheus {
        // Prometheus takes its port from the command line, chosen before it starts.
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("warren-e2e-prometheus-{port}"));
        std::fs::create_dir_all(&dir).unwrap();
        let rules = repo("deploy/prometheus/rules.yml");
        let config = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - {}\nscrape_configs:\n  - job_name: warren\n    static_configs:\n      - targets: [{}]\n",
            rules.display(),
            targets.join(", ")
        );
        let file = dir.join("prometheus.yml");
        std::fs::write(&file, config).unwrap();
        let log = std::fs::File::create(dir.join("prometheus.log")).unwrap();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", file.display()))
            .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("prometheus is needed for this test: apt-get install prometheus (bash .ci/run does)");
        Prometheus {
            child,
            port,
            _dir: TempDir(dir),
        }
    }

    async fn api(&self, path: &str) -> Value {
        let (status, body) = http_at(self.port, "GET", path, None, None)
            .await
            .unwrap_or_else(|e| (0, e.to_string()));
        if status != 200 {
            return json!({"status": "unavailable", "error": body});
        }
        serde_json::from_str(&body).unwrap_or_else(|_| json!({"status": "bad", "error": body}))
    }

    /// An instant query: `{instance -> value}` of a vector result, or the API's error.
    async fn query(&self, q: &str) -> Result<HashMap<String, f64>, String> {
        let v = self
            .api(&format!("/api/v1/query?query={}", encode(q)))
            .await;
        if v["status"] != "success" {
            return Err(format!("{q}: {v}"));
        }
        Ok(v["data"]["result"]
            .as_array()
            .unwrap_or(&Vec::new())
            .iter()
            .map(|r| {
                let inst = r["metric"]["instance"].as_str().unwrap_or("").to_owned();
                let val = r["value"][1]
                    .as_str()
                    .unwrap_or("nan")
                    .parse()
                    .unwrap_or(f64::NAN);
                (inst, val)
            })
            .collect())
    }

    /// Waits until `q` answers `want` (instance -> value), or fails with the last answer.
    async fn until(&self, q: &str, want: &HashMap<String, f64>) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let got = self.query(q).await;
            if got.as_ref() == Ok(want) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "Prometheus answers {q} with {got:?}, expected {want:?}"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_a_three_node_cluster_while_players_play() {
    let nodes = trio().await;
    let inst: Vec<String> = nodes
        .iter()
        .map(|n| format!("127.0.0.1:{}", n.port))
        .collect();
    let prom = Prometheus::start(&inst);

    // Players: a dice room on n1 joined from n2, an arena room on n3, and a match of a player
    // on n1 with one on n2.
    let mut alice = nodes[0].connect("alice").await;
    let dice = alice.ok(json!({"type":"create_room","game":"dice"})).await["room"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut bob = nodes[1].connect("bob").await;
    bob.ok(json!({"type":"join_room","room":dice})).await;
    let mut carol = nodes[2].connect("carol").await;
    let arena = carol.ok(json!({"type":"create_room","game":"arena"})).await["room"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut queued = Vec::new();
    for (i, n) in [&nodes[0], &nodes[1]].into_iter().enumerate() {
        let tok = token(&format!("m{i}"), &[]);
        let mut c = n.connect_with(&format!("token={tok}")).await;
        c.ok(json!({"type":"queue","game":"dice","mode":"prom"}))
            .await;
        queued.push(c);
    }
    let mut matched = String::new();
    for c in queued.iter_mut() {
        matched = c.until_type("match_found").await["room"]
            .as_str()
            .unwrap()
            .to_owned();
    }
    // Arena inputs keep the tick histogram and message counters moving.
    for seq in 1..=20u64 {
        carol
            .send(json!({"type":"input","seq":seq,"data":{"dx":1,"dy":0}}))
            .await;
    }

    let all = |v: f64| -> HashMap<String, f64> { inst.iter().map(|i| (i.clone(), v)).collect() };
    let per = |v: [f64; 3]| -> HashMap<String, f64> { inst.iter().cloned().zip(v).collect() };
    prom.until("up{job=\"warren\"}", &all(1.0)).await;
    prom.until("warren_cluster_nodes{state=\"ready\"}", &all(3.0))
        .await;
    prom.until("warren_cluster_nodes{state=\"unreachable\"}", &all(0.0))
        .await;
    prom.until("warren_connections", &per([2.0, 2.0, 1.0]))
        .await;
    // Three rooms on three nodes: rebalancing leaves one on each, wherever they were created.
    assert!(!matched.is_empty() && dice != arena);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mut hosted = Vec::new();
        for n in &nodes {
            hosted.push(crate::cluster::view(n).await[0].2);
        }
        if hosted == [1, 1, 1] {
            break;
        }
        assert!(Instant::now() < deadline, "rooms per node: {hosted:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    prom.until("sum by (instance) (warren_rooms)", &all(1.0))
        .await;

    // The shipped alert rules are loaded and evaluate cleanly; none fires on a healthy cluster.
    let rules = prom.api("/api/v1/rules").await;
    let loaded: Vec<&Value> = rules["data"]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap())
        .collect();
    assert_eq!(loaded.len(), 7, "{rules}");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let rules = prom.api("/api/v1/rules").await;
        let healthy = rules["data"]["groups"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|g| g["rules"].as_array().unwrap())
            .all(|r| r["health"] == "ok" && r["state"] == "inactive");
        if healthy {
            break;
        }
        assert!(Instant::now() < deadline, "{rules}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    // Every query of the Grafana dashboard is valid PromQL over metrics Warren exports.
    let dash: Value =
        serde_json::from_str(&std::fs::read_to_string(repo("deploy/grafana/warren.json")).unwrap())
            .unwrap();
    // Metrics are described in telemetry.rs; the pools' tickets are rendered by the node context.
    let telemetry = std::fs::read_to_string(repo("src/telemetry.rs")).unwrap()
        + &std::fs::read_to_string(repo("actors/src/node.rs")).unwrap();
    let mut exprs = Vec::new();
    for p in dash["panels"].as_array().unwrap() {
        for t in p["targets"].as_array().into_iter().flatten() {
            exprs.push(t["expr"].as_str().unwrap().to_owned());
        }
    }
    assert!(exprs.len() >= 20, "{} queries", exprs.len());
    for e in &exprs {
        for name in e
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .filter(|w| w.starts_with("warren_"))
        {
            let base = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| name.strip_suffix(s))
                .unwrap_or(name);
            assert!(
                telemetry.contains(&format!("\"{base}\"")),
                "the dashboard queries {name}, which Warren does not export"
            );
        }
        let q = e.replace("$__rate_interval", "1m").replace("$job", ".*");
        prom.query(&q).await.unwrap();
    }
    // Queries of what the players did return data once two scrapes show them.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ticks = prom
            .query("sum(rate(warren_room_tick_seconds_count[1m]))")
            .await
            .unwrap();
        if ticks.values().any(|v| *v > 0.0) {
            break;
        }
        assert!(Instant::now() < deadline, "no tick rate: {ticks:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    drop(bob);
}
