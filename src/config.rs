//! Configuration: the embedded `config/default.toml`, an optional file over it, then environment
//! overrides `WARREN_<SECTION>__<KEY>`, then validation. Every key exists in the default file, so an
//! unknown key (in the file or the environment) and a value of the wrong type are caught with the
//! key's name before serde sees them.

use std::net::SocketAddr;
use std::path::Path;

use serde::Deserialize;
use toml::{Table, Value};
use warren_actors::settings::{
    Limits, MatchSettings, RoomSettings, SEAT_SEARCH_MARGIN_MS, Settings,
};

/// The embedded default configuration.
pub(crate) const DEFAULT_TOML: &str = include_str!("../config/default.toml");

/// A configuration problem, phrased as the one line the node prints before it stops.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct ConfigError(String);

/// The value manifests/base puts in every secret: a node refuses to run with it.
const PLACEHOLDER: &str = "REPLACE-ME";

/// The shortest secret (`auth.jwt_secret`, `cluster.cookie`, `auth.admin_token`) a node with
/// seeds accepts, in bytes.
pub(crate) const MIN_SECRET_BYTES: usize = 16;

/// The whole configuration.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Config {
    /// `[node]`.
    pub(crate) node: NodeSection,
    /// `[http]`.
    pub(crate) http: HttpSection,
    /// `[cluster]`.
    pub(crate) cluster: ClusterSection,
    /// `[auth]`.
    pub(crate) auth: AuthSection,
    /// `[rooms]`.
    pub(crate) rooms: RoomsSection,
    /// `[drain]`.
    pub(crate) drain: DrainSection,
    /// `[limits]`.
    pub(crate) limits: LimitsSection,
    /// `[matchmaking]`.
    pub(crate) matchmaking: MatchSection,
    /// `[log]`.
    pub(crate) log: LogSection,
}

/// `[node]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NodeSection {
    /// Node id; empty means the host name.
    pub(crate) id: String,
}

/// `[http]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct HttpSection {
    /// Listener address.
    pub(crate) listen: String,
    /// Worker threads; 0 means one per core.
    pub(crate) workers: usize,
    /// Idle kept-alive HTTP connections close after this long.
    pub(crate) keep_alive_ms: u64,
    /// Proxies whose forwarding headers are believed.
    pub(crate) trusted_proxies: Vec<String>,
    /// Serve the playground at `/play`.
    pub(crate) playground: bool,
    /// Connections open at once that are not WebSocket sessions.
    pub(crate) max_connections: usize,
}

/// `[cluster]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ClusterSection {
    /// Node-to-node listener.
    pub(crate) listen: String,
    /// Advertised address.
    pub(crate) advertise: String,
    /// Peers to join.
    pub(crate) seeds: Vec<String>,
    /// Shared secret.
    pub(crate) cookie: String,
    /// Failure detection timeout.
    pub(crate) failure_timeout_ms: u64,
    /// How long an unreachable member still counts towards the cluster's size.
    pub(crate) forget_after_ms: u64,
    /// One message per destination node per room event or tick.
    pub(crate) batch_delivery: bool,
    /// TLS certificate chain (PEM).
    pub(crate) tls_cert: String,
    /// TLS private key (PEM).
    pub(crate) tls_key: String,
    /// CA of the cluster (PEM).
    pub(crate) tls_ca: String,
    /// Name in every node's certificate.
    pub(crate) tls_server_name: String,
}

/// `[auth]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AuthSection {
    /// JWT secret.
    pub(crate) jwt_secret: String,
    /// Guest tokens on.
    pub(crate) allow_guest: bool,
    /// Guest token lifetime.
    pub(crate) guest_ttl_secs: u64,
    /// Guest tokens per client address per minute.
    pub(crate) guest_tokens_per_minute: u32,
    /// Admin bearer token.
    pub(crate) admin_token: String,
    /// Expiry leeway.
    pub(crate) leeway_secs: u64,
}

/// `[rooms]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RoomsSection {
    /// Seat kept after a disconnect.
    pub(crate) reconnect_grace_ms: u64,
    /// Snapshot interval.
    pub(crate) snapshot_interval_ms: u64,
    /// Restart budget.
    pub(crate) max_restarts: u32,
    /// Restart budget window.
    pub(crate) restart_window_ms: u64,
    /// Rooms moved per second onto nodes that have fewer than their share (0: never).
    pub(crate) rebalance_per_sec: u32,
    /// Grid realtime rooms' timers start on (0: none).
    pub(crate) tick_grid_ms: u64,
}

/// `[drain]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DrainSection {
    /// Readiness-503 notice before sessions are closed.
    pub(crate) notice_ms: u64,
    /// Longest drain.
    pub(crate) timeout_ms: u64,
}

/// `[limits]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LimitsSection {
    /// Largest frame.
    pub(crate) max_frame_bytes: usize,
    /// Sustained rate.
    pub(crate) messages_per_sec: u32,
    /// Burst.
    pub(crate) message_burst: u32,
    /// Time over the limit before 4004.
    pub(crate) rate_limit_close_ms: u64,
    /// Outbound queue.
    pub(crate) max_outbound_queue: usize,
    /// Connection cap.
    pub(crate) max_connections: usize,
    /// Ping interval.
    pub(crate) heartbeat_ms: u64,
}

/// `[matchmaking]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MatchSection {
    /// Initial window.
    pub(crate) initial_window: u32,
    /// Widening per second.
    pub(crate) widen_per_sec: u32,
    /// Widest window.
    pub(crate) max_window: u32,
    /// Sweep interval.
    pub(crate) sweep_interval_ms: u64,
    /// Empty time before a pool retires.
    pub(crate) pool_idle_ms: u64,
}

/// `[log]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LogSection {
    /// EnvFilter directives.
    pub(crate) level: String,
    /// `text` or `json`.
    pub(crate) format: String,
}

impl Config {
    /// Loads the default, the file (if any) over it, and the environment over both.
    pub(crate) fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let file = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    ConfigError(format!("cannot read config file {}: {e}", path.display()))
                })?;
                Some((text, path.display().to_string()))
            }
            None => None,
        };
        Self::load_text(file.as_ref().map(|(t, o)| (t.as_str(), o.as_str())), env)
    }

    /// [`Config::load`], with the file's text (and a name for it in errors) in place of its path.
    pub(crate) fn load_text(
        file: Option<(&str, &str)>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut table = parse(DEFAULT_TOML, "embedded default")?;
        let schema = table.clone();
        if let Some((text, origin)) = file {
            let over = parse(text, origin)?;
            merge_file(&mut table, &schema, over)?;
        }
        for (k, v) in env {
            if let Some(rest) = k.strip_prefix("WARREN_") {
                apply_env(&mut table, &schema, &k, rest, &v)?;
            }
        }
        let cfg: Config = serde_path_to_error::deserialize(Value::Table(table)).map_err(|e| {
            let why = e.inner().message().trim().to_owned();
            ConfigError(format!("invalid config value for `{}`: {why}", e.path()))
        })?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// The configured secrets, by key.
    fn secrets(&self) -> [(&'static str, &str); 3] {
        [
            ("auth.jwt_secret", &self.auth.jwt_secret),
            ("cluster.cookie", &self.cluster.cookie),
            ("auth.admin_token", &self.auth.admin_token),
        ]
    }

    /// Secrets that are set but shorter than [`MIN_SECRET_BYTES`] (a node with seeds refuses to
    /// start with one; a node running alone warns).
    pub(crate) fn weak_secrets(&self) -> Vec<&'static str> {
        self.secrets()
            .into_iter()
            .filter(|(_, v)| !v.is_empty() && v.len() < MIN_SECRET_BYTES)
            .map(|(k, _)| k)
            .collect()
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key: &str, why: &str| {
            Err(ConfigError(format!(
                "invalid config value for `{key}`: {why}"
            )))
        };
        if self.http.listen.parse::<SocketAddr>().is_err() {
            return bad("http.listen", "must be an address like 127.0.0.1:7350");
        }
        if let Err(e) = crate::edge::client::TrustedProxies::parse(&self.http.trusted_proxies) {
            return bad("http.trusted_proxies", &e);
        }
        if self.http.max_connections == 0 {
            return bad("http.max_connections", "must be more than 0");
        }
        if self.http.keep_alive_ms == 0 {
            return bad("http.keep_alive_ms", "must be more than 0");
        }
        if self.cluster.listen.parse::<SocketAddr>().is_err() {
            return bad("cluster.listen", "must be an address like 127.0.0.1:7351");
        }
        if let Some(s) = self.cluster.seeds.iter().find(|s| {
            s.rsplit_once(':')
                .is_none_or(|(h, p)| h.is_empty() || p.parse::<u16>().is_err())
        }) {
            return bad("cluster.seeds", &format!("`{s}` is not host:port"));
        }
        if !self.cluster.seeds.is_empty()
            && (self.cluster.cookie.is_empty() || self.auth.jwt_secret.is_empty())
        {
            return bad(
                if self.cluster.cookie.is_empty() {
                    "cluster.cookie"
                } else {
                    "auth.jwt_secret"
                },
                "a node with seeds needs a shared secret; set it on every node",
            );
        }
        for (key, value) in self.secrets() {
            if value == PLACEHOLDER {
                return bad(
                    key,
                    "still the manifests' placeholder REPLACE-ME; set a secret (Secret warren-secrets)",
                );
            }
        }
        // A cluster's secrets guard every node of it: short ones are refused (a node running
        // alone only warns, see `weak_secrets`).
        if !self.cluster.seeds.is_empty()
            && let Some(key) = self.weak_secrets().first()
        {
            return bad(
                key,
                &format!(
                    "shorter than {MIN_SECRET_BYTES} bytes; use a random secret of 32 bytes or more \
                     (`openssl rand -hex 32`)"
                ),
            );
        }
        let c = &self.cluster;
        let tls = [
            ("cluster.tls_cert", &c.tls_cert),
            ("cluster.tls_key", &c.tls_key),
            ("cluster.tls_ca", &c.tls_ca),
            ("cluster.tls_server_name", &c.tls_server_name),
        ];
        if tls.iter().any(|(_, v)| !v.is_empty())
            && let Some((key, _)) = tls.iter().find(|(_, v)| v.is_empty())
        {
            {
                return bad(
                    key,
                    "TLS needs cluster.tls_cert, tls_key, tls_ca and tls_server_name together",
                );
            }
        }
        if self.node.id.len() > 64
            || self
                .node
                .id
                .chars()
                .any(|c| c.is_whitespace() || c.is_control())
        {
            return bad("node.id", "at most 64 characters, no whitespace");
        }
        if self.limits.max_frame_bytes < 1024 {
            return bad("limits.max_frame_bytes", "must be at least 1024");
        }
        if self.limits.messages_per_sec == 0 {
            return bad("limits.messages_per_sec", "must be at least 1");
        }
        if self.limits.max_outbound_queue == 0 {
            return bad("limits.max_outbound_queue", "must be at least 1");
        }
        if self.limits.heartbeat_ms < 100 {
            return bad("limits.heartbeat_ms", "must be at least 100");
        }
        if self.cluster.forget_after_ms != 0
            && self.cluster.forget_after_ms <= self.cluster.failure_timeout_ms
        {
            return bad(
                "cluster.forget_after_ms",
                "must be 0 or more than cluster.failure_timeout_ms",
            );
        }
        if self.rooms.snapshot_interval_ms < 10 {
            return bad("rooms.snapshot_interval_ms", "must be at least 10");
        }
        if self.rooms.tick_grid_ms > 1000 {
            return bad(
                "rooms.tick_grid_ms",
                "must be at most 1000 (0 turns the grid off)",
            );
        }
        if self.matchmaking.max_window < self.matchmaking.initial_window {
            return bad(
                "matchmaking.max_window",
                "must be at least matchmaking.initial_window",
            );
        }
        if self.matchmaking.sweep_interval_ms < 10 {
            return bad("matchmaking.sweep_interval_ms", "must be at least 10");
        }
        if !(100..=3_600_000).contains(&self.matchmaking.pool_idle_ms) {
            return bad(
                "matchmaking.pool_idle_ms",
                "must be from 100 to 3600000 (an hour)",
            );
        }
        if !matches!(self.log.format.as_str(), "text" | "json") {
            return bad("log.format", "must be \"text\" or \"json\"");
        }
        if tracing_subscriber::EnvFilter::try_new(&self.log.level).is_err() {
            return bad(
                "log.level",
                "is not a valid filter (e.g. \"info\" or \"warn,warren=debug\")",
            );
        }
        Ok(())
    }

    /// The settings actors read.
    pub(crate) fn settings(&self) -> Settings {
        let l = &self.limits;
        let m = &self.matchmaking;
        let r = &self.rooms;
        Settings {
            limits: Limits {
                max_frame_bytes: l.max_frame_bytes,
                messages_per_sec: l.messages_per_sec,
                message_burst: l.message_burst,
                rate_limit_close_ms: l.rate_limit_close_ms,
                max_outbound_queue: l.max_outbound_queue,
                max_connections: crate::fdlimit::sessions(l.max_connections),
                heartbeat_ms: l.heartbeat_ms,
            },
            rooms: RoomSettings {
                reconnect_grace_ms: r.reconnect_grace_ms,
                snapshot_interval_ms: r.snapshot_interval_ms,
                max_restarts: r.max_restarts,
                restart_window_ms: r.restart_window_ms,
                rebalance_per_sec: r.rebalance_per_sec,
                tick_grid_ms: r.tick_grid_ms,
                seat_search_ms: self.cluster.failure_timeout_ms + SEAT_SEARCH_MARGIN_MS,
            },
            matchmaking: MatchSettings {
                initial_window: m.initial_window,
                widen_per_sec: m.widen_per_sec,
                max_window: m.max_window,
                sweep_interval_ms: m.sweep_interval_ms,
                pool_idle_ms: m.pool_idle_ms,
            },
        }
    }
}

fn parse(text: &str, origin: &str) -> Result<Table, ConfigError> {
    text.parse::<Table>()
        .map_err(|e| ConfigError(format!("cannot parse {origin}: {}", e.message().trim())))
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::String(_) => "a string",
        Value::Integer(_) => "an integer",
        Value::Float(_) => "a number",
        Value::Boolean(_) => "true or false",
        Value::Array(_) => "a list",
        Value::Table(_) => "a section",
        Value::Datetime(_) => "a date",
    }
}

fn schema_of<'a>(schema: &'a Table, section: &str, key: &str) -> Result<&'a Value, ConfigError> {
    let sec = schema
        .get(section)
        .and_then(Value::as_table)
        .ok_or_else(|| ConfigError(format!("unknown config section `{section}`")))?;
    sec.get(key)
        .ok_or_else(|| ConfigError(format!("unknown config key `{section}.{key}`")))
}

fn merge_file(table: &mut Table, schema: &Table, over: Table) -> Result<(), ConfigError> {
    for (section, v) in over {
        let Value::Table(keys) = v else {
            return Err(ConfigError(format!(
                "config key `{section}` must be a section ([{section}])"
            )));
        };
        for (key, value) in keys {
            let expected = schema_of(schema, &section, &key)?;
            let same = std::mem::discriminant(expected) == std::mem::discriminant(&value);
            if !same {
                return Err(ConfigError(format!(
                    "config key `{section}.{key}` must be {}",
                    kind(expected)
                )));
            }
            if let Some(Value::Table(t)) = table.get_mut(&section) {
                t.insert(key, value);
            }
        }
    }
    Ok(())
}

fn apply_env(
    table: &mut Table,
    schema: &Table,
    var: &str,
    rest: &str,
    raw: &str,
) -> Result<(), ConfigError> {
    let Some((section, key)) = rest.split_once("__") else {
        return Err(ConfigError(format!(
            "environment variable {var} is not WARREN_<SECTION>__<KEY>"
        )));
    };
    let (section, key) = (section.to_ascii_lowercase(), key.to_ascii_lowercase());
    let expected =
        schema_of(schema, &section, &key).map_err(|e| ConfigError(format!("{e} (from {var})")))?;
    let wrong = || {
        ConfigError(format!(
            "config key `{section}.{key}` (from {var}) must be {}",
            kind(expected)
        ))
    };
    let value = match expected {
        Value::String(_) => Value::String(raw.to_owned()),
        Value::Integer(_) => Value::Integer(raw.trim().parse().map_err(|_| wrong())?),
        Value::Boolean(_) => Value::Boolean(raw.trim().parse().map_err(|_| wrong())?),
        Value::Float(_) => Value::Float(raw.trim().parse().map_err(|_| wrong())?),
        Value::Array(_) => Value::Array(
            raw.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| Value::String(s.to_owned()))
                .collect(),
        ),
        _ => return Err(wrong()),
    };
    if let Some(Value::Table(t)) = table.get_mut(&section) {
        t.insert(key, value);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_kubernetes_config_file_is_valid_and_placeholders_are_refused() {
        let file = concat!(env!("CARGO_MANIFEST_DIR"), "/manifests/base/warren.toml");
        let c = Config::load(
            Some(Path::new(file)),
            env(&[
                ("WARREN_CLUSTER__COOKIE", "a-cluster-cookie-of-32-bytes-xx"),
                (
                    "WARREN_AUTH__JWT_SECRET",
                    "a-jwt-secret-of-32-bytes-xxxxxxx",
                ),
            ]),
        )
        .unwrap();
        assert_eq!(c.cluster.seeds, ["warren-peers:7351"]);
        assert_eq!(c.http.listen, "0.0.0.0:7350");
        let e = Config::load(
            Some(Path::new(file)),
            env(&[
                ("WARREN_CLUSTER__COOKIE", "REPLACE-ME"),
                (
                    "WARREN_AUTH__JWT_SECRET",
                    "a-jwt-secret-of-32-bytes-xxxxxxx",
                ),
            ]),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("`cluster.cookie`") && e.contains("placeholder"),
            "{e}"
        );
    }

    #[test]
    fn short_secrets_are_refused_with_seeds_and_reported_without() {
        let strong = "0123456789abcdef";
        for weak in ["auth.jwt_secret", "cluster.cookie", "auth.admin_token"] {
            let var = |k: &str| format!("WARREN_{}", k.to_uppercase().replace('.', "__"));
            let mut vars = vec![
                (var("auth.jwt_secret"), strong.to_owned()),
                (var("cluster.cookie"), strong.to_owned()),
                (var("auth.admin_token"), strong.to_owned()),
            ];
            vars.retain(|(k, _)| *k != var(weak));
            vars.push((var(weak), "x".repeat(MIN_SECRET_BYTES - 1)));
            let borrowed: Vec<(&str, &str)> =
                vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let alone = Config::load(None, env(&borrowed)).unwrap();
            assert_eq!(alone.weak_secrets(), [weak]);
            let mut seeded = borrowed.clone();
            seeded.push(("WARREN_CLUSTER__SEEDS", "a:1"));
            let e = Config::load(None, env(&seeded)).unwrap_err().to_string();
            assert!(
                e.contains(weak) && e.contains("shorter than 16 bytes"),
                "{e}"
            );
        }
        let c = Config::load(
            None,
            env(&[("WARREN_AUTH__JWT_SECRET", "0123456789abcdef")]),
        );
        assert!(c.unwrap().weak_secrets().is_empty());
    }

    #[test]
    fn the_embedded_default_loads() {
        let c = Config::load(None, env(&[])).unwrap();
        assert_eq!(c.limits.max_frame_bytes, 65536);
        assert_eq!(c.rooms.reconnect_grace_ms, 30000);
        assert!(c.auth.allow_guest);
    }

    #[test]
    fn env_overrides_apply_with_lists() {
        let c = Config::load(
            None,
            env(&[
                ("WARREN_HTTP__LISTEN", "0.0.0.0:8080"),
                ("WARREN_CLUSTER__SEEDS", "a:9000, b:9000"),
                ("WARREN_CLUSTER__COOKIE", "a-cluster-cookie-of-32-bytes-xx"),
                (
                    "WARREN_AUTH__JWT_SECRET",
                    "a-jwt-secret-of-32-bytes-xxxxxxx",
                ),
                ("WARREN_LIMITS__MESSAGES_PER_SEC", "7"),
                ("OTHER", "x"),
            ]),
        )
        .unwrap();
        assert_eq!(c.http.listen, "0.0.0.0:8080");
        assert_eq!(c.cluster.seeds, ["a:9000", "b:9000"]);
        assert_eq!(c.limits.messages_per_sec, 7);
        let c = Config::load(None, env(&[("WARREN_CLUSTER__SEEDS", "")])).unwrap();
        assert!(c.cluster.seeds.is_empty());
    }

    #[test]
    fn errors_name_the_key() {
        // (variable, value, the key the error must name)
        let refused = [
            ("WARREN_LIMITS__NOPE", "1", "limits.nope"),
            (
                "WARREN_LIMITS__MAX_FRAME_BYTES",
                "big",
                "limits.max_frame_bytes",
            ),
            (
                "WARREN_LIMITS__MAX_FRAME_BYTES",
                "10",
                "limits.max_frame_bytes",
            ),
            ("WARREN_CLUSTER__SEEDS", "a:1", "cluster.cookie"),
            ("WARREN_LOG__FORMAT", "xml", "log.format"),
            (
                "WARREN_CLUSTER__FORGET_AFTER_MS",
                "1000",
                "cluster.forget_after_ms",
            ),
            (
                "WARREN_ROOMS__REBALANCE_PER_SEC",
                "-1",
                "rooms.rebalance_per_sec",
            ),
            ("WARREN_ROOMS__TICK_GRID_MS", "5000", "rooms.tick_grid_ms"),
        ];
        for (var, value, key) in refused {
            let e = Config::load(None, env(&[(var, value)]))
                .unwrap_err()
                .to_string();
            assert!(e.contains(key), "{var}={value}: {e}");
        }
        let ok = Config::load(
            None,
            env(&[
                ("WARREN_CLUSTER__FORGET_AFTER_MS", "0"),
                ("WARREN_ROOMS__REBALANCE_PER_SEC", "0"),
                ("WARREN_ROOMS__TICK_GRID_MS", "0"),
            ]),
        );
        assert!(ok.is_ok(), "0 turns both off");
    }

    #[test]
    fn file_keys_are_checked() {
        let dir = std::env::temp_dir().join(format!("warren-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("a.toml");
        std::fs::write(&f, "[limits]\nmax_frame_bytes = \"x\"\n").unwrap();
        let e = Config::load(Some(&f), env(&[])).unwrap_err().to_string();
        assert!(e.contains("limits.max_frame_bytes"), "{e}");
        std::fs::write(&f, "[rooms]\ngrace = 1\n").unwrap();
        let e = Config::load(Some(&f), env(&[])).unwrap_err().to_string();
        assert!(e.contains("rooms.grace"), "{e}");
        std::fs::write(&f, "[rooms]\nreconnect_grace_ms = 500\n").unwrap();
        assert_eq!(
            Config::load(Some(&f), env(&[]))
                .unwrap()
                .rooms
                .reconnect_grace_ms,
            500
        );
    }
}
