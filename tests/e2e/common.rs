//! Test harness: a real `warren` process on ports the test picks, a minimal HTTP client, and a
//! WebSocket client (tokio-tungstenite) with helpers that wait with a deadline instead of sleeping.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use warren_client::{ClientError, Connection, Frame};

pub const SECRET: &str = "e2e-test-secret-0123456789";
pub const WAIT: Duration = Duration::from_secs(20);
/// The node with the built-in games and the test-only `crash` game.
pub const TEST_NODE: &str = env!("CARGO_BIN_EXE_warren-test-node");

/// A loopback port nothing listens on, for a node, a cluster listener or Prometheus.
///
/// The port comes from outside the kernel's ephemeral range, walked by a counter: a port that
/// the kernel picked for `bind(0)` and that was then released can be handed out again as the
/// source port of any outgoing connection (the tests open thousands) before the node binds it,
/// and the node then fails with "Address already in use". Ports below the ephemeral range are
/// only ever taken by explicit binds, and the counter keeps the tests of this process apart.
pub fn free_port() -> u16 {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU32, Ordering};
    static RANGE: OnceLock<Option<(u32, u32)>> = OnceLock::new();
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let range = *RANGE.get_or_init(|| {
        let text = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?;
        let mut bounds = text.split_whitespace().map(|b| b.parse::<u32>().ok());
        let (low, high) = (bounds.next()??, bounds.next()??);
        // 4,000 ports or more below the ephemeral range, else above it.
        if low >= 5_024 {
            Some((1_024.max(low.saturating_sub(12_000)), low))
        } else if high <= 61_535 {
            Some((high + 1, 65_536))
        } else {
            None
        }
    });
    if let Some((low, high)) = range {
        let span = high - low;
        // Another test process on the machine starts elsewhere in the range.
        let start = std::process::id().wrapping_mul(7_919) % span;
        for _ in 0..span {
            let step = NEXT.fetch_add(1, Ordering::Relaxed);
            let port = (low + (start + step) % span) as u16;
            if TcpListener::bind(("127.0.0.1", port)).is_ok() {
                return port;
            }
        }
    }
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until `check` holds, checking every 50 ms; fails the test after `within`.
pub async fn eventually<F, Fut>(what: &str, within: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    while !check().await {
        assert!(Instant::now() < deadline, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until one of `nodes` keeps a replica of `room` (`GET /v1/admin/replicas`) at least at
/// `version` and `tick`: the room's backup holds that state, and a kill of its host loses none of it.
pub async fn replicated(nodes: &[&Node], room: &str, version: u64, tick: u64) {
    eventually(
        &format!("a replica of {room} at version {version}, tick {tick}"),
        WAIT,
        || async {
            for n in nodes {
                let Ok((200, body)) = n.http("GET", "/v1/admin/replicas", None, None).await else {
                    continue;
                };
                let v: Value = serde_json::from_str(&body).unwrap_or_default();
                let held = v["replicas"].as_array().into_iter().flatten().any(|r| {
                    r["room"] == room
                        && r["version"].as_u64() >= Some(version)
                        && r["tick"].as_u64() >= Some(tick)
                });
                if held {
                    return true;
                }
            }
            false
        },
    )
    .await;
}

/// The sum of every series of a metric (`name` and its labels) a node exposes.
pub async fn metric_sum(node: &Node, name: &str) -> f64 {
    let (_, body) = node.http("GET", "/metrics", None, None).await.unwrap();
    warren_loadtest::chaos::cluster::sum_series(&body, name)
}

/// A number unique to this test process, for names of files and directories.
pub fn unique() -> u32 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    std::process::id()
        .wrapping_mul(1_000)
        .wrapping_add(NEXT.fetch_add(1, Ordering::Relaxed))
}

pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A running node, killed when dropped.
pub struct Node {
    pub child: Child,
    /// Address of the HTTP listener (loopback unless the node runs in a network namespace).
    pub host: String,
    pub port: u16,
    /// Where its cluster listener is bound (peers seed with it).
    pub cluster: String,
    pub log: PathBuf,
    /// Sent as the bearer of requests that carry none (for admin endpoints off loopback).
    pub admin: Option<&'static str>,
}

impl Node {
    pub async fn start(env: &[(&str, &str)]) -> Node {
        Self::start_with(env, None).await
    }

    pub async fn start_with(env: &[(&str, &str)], config: Option<&std::path::Path>) -> Node {
        Self::start_in(None, "127.0.0.1", env, config).await
    }

    /// Starts a node inside network namespace `netns` (when given), its HTTP listener on `host`.
    pub async fn start_in(
        netns: Option<&str>,
        host: &str,
        env: &[(&str, &str)],
        config: Option<&std::path::Path>,
    ) -> Node {
        match netns {
            Some(ns) => {
                Self::start_wrapped(&["ip", "netns", "exec", ns], TEST_NODE, host, env, config)
                    .await
            }
            None => Self::start_wrapped(&[], TEST_NODE, host, env, config).await,
        }
    }

    /// Starts a node with open-files limits `soft` and `hard` (through util-linux's `prlimit`).
    pub async fn start_with_open_files(env: &[(&str, &str)], soft: u32, hard: u32) -> Node {
        let nofile = format!("--nofile={soft}:{hard}");
        Self::start_wrapped(
            &["prlimit", &nofile, "--"],
            TEST_NODE,
            "127.0.0.1",
            env,
            None,
        )
        .await
    }

    /// Starts node binary `bin` (another build of Warren, say the previous release).
    pub async fn start_bin(bin: &str, env: &[(&str, &str)]) -> Node {
        Self::start_wrapped(&[], bin, "127.0.0.1", env, None).await
    }

    /// Starts a node as the last argument of command `wrapper` (which must exec it, so that the
    /// child's pid is the node's), or directly when `wrapper` is empty.
    async fn start_wrapped(
        wrapper: &[&str],
        bin: &str,
        host: &str,
        env: &[(&str, &str)],
        config: Option<&std::path::Path>,
    ) -> Node {
        use std::sync::atomic::{AtomicU32, Ordering};
        static STARTED: AtomicU32 = AtomicU32::new(0);
        let n = STARTED.fetch_add(1, Ordering::Relaxed);
        let log = std::env::temp_dir().join(format!("warren-e2e-{}-{n}.log", std::process::id()));
        let mut cmd = match wrapper.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(bin);
                c
            }
            None => Command::new(bin),
        };
        if let Some(c) = config {
            cmd.arg("--config").arg(c);
        }
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            // Port 0: the node binds where the kernel says and reports it in its ready line.
            .env("WARREN_HTTP__LISTEN", format!("{host}:0"))
            .env("WARREN_CLUSTER__LISTEN", "127.0.0.1:0")
            .env("WARREN_AUTH__JWT_SECRET", SECRET)
            .env("WARREN_NODE__ID", "n1")
            .env("WARREN_LOG__LEVEL", "warn,warren=info,warren_actors=info")
            .env("WARREN_HTTP__WORKERS", "2");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start warren");
        let deadline = Instant::now() + WAIT;
        let (http, cluster) = loop {
            let logs = std::fs::read_to_string(&log).unwrap_or_default();
            if let Some(line) = logs.lines().find(|l| l.contains("warren node ready")) {
                // A text line (`http=ADDR cluster=ADDR`) or, with `log.format = "json"`, a
                // JSON object with those fields.
                let json: Value = serde_json::from_str(line).unwrap_or(Value::Null);
                let field = |name: &str| {
                    json[name].as_str().map(str::to_owned).or_else(|| {
                        line.split_whitespace()
                            .find_map(|w| w.strip_prefix(&format!("{name}=")))
                            .map(str::to_owned)
                    })
                };
                break (
                    field("http").expect("ready line names http"),
                    field("cluster").expect("ready line names cluster"),
                );
            }
            let exited = child.try_wait().unwrap();
            assert!(
                exited.is_none() && Instant::now() < deadline,
                "node did not start ({exited:?}): {logs}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        let port = http
            .rsplit_once(':')
            .and_then(|(_, p)| p.parse().ok())
            .expect("http port");
        let node = Node {
            child,
            host: host.to_owned(),
            port,
            cluster,
            log,
            admin: None,
        };
        loop {
            if let Ok((200, _)) = node.http("GET", "/readyz", None, None).await {
                return node;
            }
            assert!(
                Instant::now() < deadline,
                "node did not become ready: {}",
                node.logs()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid().to_string())
            .status()
            .unwrap();
        assert!(ok.success());
    }

    /// Waits for the process to exit and returns its code.
    pub async fn wait_exit(&mut self, within: Duration) -> Option<i32> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            if Instant::now() > deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn rss_kib(&self) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        status
            .lines()
            .find(|l| l.starts_with("VmRSS:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    }

    /// A plain HTTP/1.1 request; returns status and body.
    pub async fn http(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
        bearer: Option<&str>,
    ) -> std::io::Result<(u16, String)> {
        let bearer = bearer.or(self.admin);
        http_to(&self.host, self.port, method, path, body, bearer).await
    }
}

/// A plain HTTP/1.1 request to a loopback port; returns status and body.
pub async fn http_at(
    port: u16,
    method: &str,
    path: &str,
    body: Option<&str>,
    bearer: Option<&str>,
) -> std::io::Result<(u16, String)> {
    http_to("127.0.0.1", port, method, path, body, bearer).await
}

/// A plain HTTP/1.1 request; returns status and body.
pub async fn http_to(
    host: &str,
    port: u16,
    method: &str,
    path: &str,
    body: Option<&str>,
    bearer: Option<&str>,
) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect((host, port)).await?;
    let body = body.unwrap_or("");
    let auth = bearer
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await?;
    let mut buf = Vec::new();
    tokio::time::timeout(WAIT, s.read_to_end(&mut buf))
        .await
        .map_err(std::io::Error::other)??;
    let text = String::from_utf8_lossy(&buf).to_string();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = match text.split_once("\r\n\r\n") {
        Some((head, b))
            if head
                .to_ascii_lowercase()
                .contains("transfer-encoding: chunked") =>
        {
            dechunk(b)
        }
        Some((_, b)) => b.to_owned(),
        None => String::new(),
    };
    Ok((status, body))
}

impl Node {
    pub fn ws_url(&self, query: &str) -> String {
        format!("ws://{}:{}/v1/ws?{query}", self.host, self.port)
    }

    /// Connects a player with a freshly minted token.
    pub async fn connect(&self, player: &str) -> Client {
        let token = token(player, &[]);
        self.connect_with(&format!("token={token}")).await
    }

    pub async fn connect_with(&self, query: &str) -> Client {
        let (ws, _) = tokio_tungstenite::connect_async(self.ws_url(query))
            .await
            .expect("websocket connect");
        Client::open(ws).await
    }

    /// The status of an upgrade attempt that is expected to be refused.
    pub async fn refused(&self, query: &str) -> u16 {
        match tokio_tungstenite::connect_async(self.ws_url(query)).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => resp.status().as_u16(),
            Err(e) => panic!("unexpected error: {e}"),
            Ok(_) => panic!("upgrade was accepted"),
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn dechunk(mut b: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = b.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        b = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// A JWT signed with the test secret; `extra` adds or overrides claims.
pub fn token(player: &str, extra: &[(&str, Value)]) -> String {
    let mut claims = json!({"sub": player, "exp": now_secs() + 3600, "name": player});
    for (k, v) in extra {
        claims[*k] = v.clone();
    }
    token_claims(&claims, SECRET)
}

pub fn token_claims(claims: &Value, secret: &str) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()).unwrap(),
    )
    .unwrap()
}

/// A player's connection (plain by default; `wss://` through a TLS stream): warren-client's
/// [`Connection`], frame by frame, with the helpers the tests assert through. Messages are read as
/// JSON values so that a test sees each exactly as the server sent it.
pub struct Client<S = MaybeTlsStream<TcpStream>> {
    pub conn: Connection<S>,
    pub rid: u64,
    pub welcome: Value,
    /// Messages read while looking for another one, handed out by `next` in order.
    pub pending: std::collections::VecDeque<Value>,
    /// The game of each room this client heard of, to check its states and events.
    games: std::collections::HashMap<String, String>,
}

/// The protocol's JSON Schema (`protocol/schema/v1.json`), which every frame a test reads is
/// checked against: the frame's envelope, and for the built-in games their states and events.
struct Schema {
    server: jsonschema::Validator,
    seat_event: jsonschema::Validator,
    dice_state: jsonschema::Validator,
    dice_event: jsonschema::Validator,
    arena_state: jsonschema::Validator,
}

static SCHEMA: std::sync::LazyLock<Schema> = std::sync::LazyLock::new(|| {
    let def = |name: &str| {
        let mut root: Value = serde_json::from_str(warren_protocol::SCHEMA_V1).expect("schema");
        root["$ref"] = Value::from(format!("#/$defs/{name}"));
        jsonschema::validator_for(&root).expect("schema compiles")
    };
    Schema {
        server: def("ServerMessage"),
        seat_event: def("SeatEvent"),
        dice_state: def("DiceState"),
        dice_event: def("DiceEvent"),
        arena_state: def("ArenaState"),
    }
});

/// Reads a server frame and checks it against the protocol's schema; fails the test otherwise.
fn checked(text: &str, games: &mut std::collections::HashMap<String, String>) -> Value {
    let v: Value = serde_json::from_str(text).expect("server sent JSON");
    let s = &*SCHEMA;
    let fail = |what: &str, e: jsonschema::ValidationError<'_>| -> ! {
        panic!("the server sent {what} that is not in the protocol's schema ({e}): {text}")
    };
    if let Err(e) = s.server.validate(&v) {
        fail("a frame", e);
    }
    let room = v["room"].as_str().unwrap_or_default().to_owned();
    match v["type"].as_str() {
        Some("room_state") | Some("match_found") => {
            games.insert(
                room.clone(),
                v["game"].as_str().unwrap_or_default().to_owned(),
            );
        }
        _ => {}
    }
    let game = games.get(&room).map(String::as_str);
    let state = match (v["type"].as_str(), game) {
        (Some("room_state") | Some("state"), Some("dice")) => Some(&s.dice_state),
        (Some("room_state") | Some("state"), Some("arena")) => Some(&s.arena_state),
        _ => None,
    };
    if let Some(validator) = state
        && let Err(e) = validator.validate(&v["state"])
    {
        fail("a game state", e);
    }
    if v["type"] == "room_event" {
        let kind = v["event"]["kind"].as_str().unwrap_or_default();
        let validator = if kind.starts_with("player_") {
            Some(&s.seat_event)
        } else if game == Some("dice") {
            Some(&s.dice_event)
        } else {
            None
        };
        if let Some(validator) = validator
            && let Err(e) = validator.validate(&v["event"])
        {
            fail("an event", e);
        }
    }
    v
}

impl<S> Client<S>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    /// A client on an open WebSocket once its `welcome` arrived, or the close code the server
    /// sent instead (0 when the connection ended without one).
    pub async fn try_open(ws: WebSocketStream<S>) -> Result<Client<S>, u16> {
        let opened = tokio::time::timeout(WAIT, Connection::over(ws))
            .await
            .expect("timed out waiting for welcome");
        match opened {
            Ok(conn) => {
                let mut games = Default::default();
                let welcome = checked(conn.welcome_text(), &mut games);
                Ok(Client {
                    conn,
                    rid: 0,
                    welcome,
                    pending: Default::default(),
                    games,
                })
            }
            Err(ClientError::Rejected { code, .. }) => Err(code.unwrap_or(0)),
            Err(e) => panic!("no welcome: {e}"),
        }
    }

    /// A client on an open WebSocket, once its `welcome` arrived.
    pub async fn open(ws: WebSocketStream<S>) -> Client<S> {
        match Self::try_open(ws).await {
            Ok(c) => c,
            Err(code) => panic!("closed with {code} instead of a welcome"),
        }
    }

    pub async fn send(&mut self, v: Value) {
        self.conn.send_text(v.to_string()).await.expect("send");
    }

    pub async fn send_raw(&mut self, m: Message) {
        self.conn.send_frame(m).await.expect("send");
    }

    /// The next server message (pings are answered by the client library and skipped).
    pub async fn next(&mut self) -> Value {
        if let Some(v) = self.pending.pop_front() {
            return v;
        }
        self.read().await
    }

    async fn read(&mut self) -> Value {
        let frame = tokio::time::timeout(WAIT, self.conn.next())
            .await
            .expect("timed out waiting for a message");
        match frame {
            Frame::Text(t) => checked(&t, &mut self.games),
            other => panic!("connection ended: {other:?}"),
        }
    }

    /// Reads and drops what has arrived (and what arrives within a millisecond).
    pub async fn drain_now(&mut self) {
        self.pending.clear();
        while let Ok(Frame::Text(t)) =
            tokio::time::timeout(Duration::from_millis(1), self.conn.next()).await
        {
            checked(&t, &mut self.games);
        }
    }

    /// Fails if a message matching `pred` is buffered or arrives within `dur`; keeps the rest.
    pub async fn never_within(&mut self, dur: Duration, what: &str, pred: impl Fn(&Value) -> bool) {
        if let Some(v) = self.pending.iter().find(|v| pred(v)) {
            panic!("unexpected {what}: {v}");
        }
        let deadline = Instant::now() + dur;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.conn.next()).await {
                Err(_) => return,
                Ok(Frame::Text(t)) => {
                    let v = checked(&t, &mut self.games);
                    assert!(!pred(&v), "unexpected {what}: {v}");
                    self.pending.push_back(v);
                }
                Ok(other) => panic!("connection ended: {other:?}"),
            }
        }
    }

    /// Skips messages until one matches.
    /// The first message (buffered or new) that matches; the others stay buffered, in order.
    pub async fn until_what(&mut self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        if let Some(i) = self.pending.iter().position(&pred) {
            return self.pending.remove(i).unwrap();
        }
        let deadline = Instant::now() + WAIT;
        loop {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            let v = self.read().await;
            if pred(&v) {
                return v;
            }
            self.pending.push_back(v);
        }
    }

    /// `until_what` without a description.
    pub async fn until(&mut self, pred: impl Fn(&Value) -> bool) -> Value {
        self.until_what("a matching message", pred).await
    }

    /// Forgets buffered messages.
    pub fn clear(&mut self) {
        self.pending.clear();
    }

    pub async fn until_type(&mut self, t: &str) -> Value {
        self.until_what(t, |v| v["type"] == t).await
    }

    pub async fn until_event(&mut self, kind: &str) -> Value {
        self.until_what(kind, |v| {
            v["type"] == "room_event" && v["event"]["kind"] == kind
        })
        .await
    }

    /// Sends a request with a fresh `rid` and returns its `ok` or `error`, skipping other messages.
    pub async fn request(&mut self, mut v: Value) -> Value {
        self.rid += 1;
        let rid = self.rid;
        v["rid"] = json!(rid);
        self.send(v).await;
        self.until_what("reply", |m| {
            (m["type"] == "ok" || m["type"] == "error") && m["rid"] == rid
        })
        .await
    }

    /// Like `request`, asserting `ok`.
    pub async fn ok(&mut self, v: Value) -> Value {
        let r = self.request(v.clone()).await;
        assert_eq!(r["type"], "ok", "request {v} answered {r}");
        r
    }

    /// `create_room` of `game` with `params`, asserting `ok`; returns the room's id.
    pub async fn create_room(&mut self, game: &str, params: Value) -> String {
        let r = self
            .ok(json!({"type":"create_room","game":game,"params":params}))
            .await;
        r["room"]
            .as_str()
            .expect("create_room ok has a room")
            .to_owned()
    }

    /// Like `request`, asserting an error code.
    pub async fn err(&mut self, v: Value, code: &str) {
        let r = self.request(v.clone()).await;
        assert_eq!(r["type"], "error", "request {v} answered {r}");
        assert_eq!(r["code"], code, "request {v} answered {r}");
        assert!(r["message"].as_str().is_some_and(|m| !m.is_empty()));
    }

    /// Reads until the server closes; returns the close code (1005 for a close frame without one).
    pub async fn close_code(&mut self) -> u16 {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.conn.next())
                .await
                .expect("timed out waiting for close")
            {
                Frame::Closed { code, .. } => return code.unwrap_or(1005),
                Frame::Text(_) => continue,
                Frame::Ended => panic!("connection ended without a close frame"),
            }
        }
    }

    pub fn resume_token(&self) -> String {
        self.welcome["resume"].as_str().unwrap().to_owned()
    }
}

/// `a` and `b` connected, `a` creating a `game` room and `b` joining it, both synced (each has its
/// `room_state`, and `a` has seen `b` join): what happens in the room from then on reaches both
/// as events. Returns the room.
pub async fn two_in_room(node: &Node, a: &str, b: &str, game: &str) -> (Client, Client, String) {
    let mut ca = node.connect(a).await;
    let mut cb = node.connect(b).await;
    let room = ca.create_room(game, serde_json::json!({})).await;
    // Each player's room_state follows its `ok`; what happens in the room before it reaches the
    // player folded into that state, not as events.
    ca.until_type("room_state").await;
    cb.ok(serde_json::json!({"type":"join_room","room":room}))
        .await;
    cb.until_type("room_state").await;
    ca.until_event("player_joined").await;
    (ca, cb, room)
}

/// Both players of a dice room send `ready`; returns the round's turn order as seen by `a`.
pub async fn start_dice_round(a: &mut Client, b: &mut Client) -> Vec<String> {
    a.ok(serde_json::json!({"type":"ready"})).await;
    b.ok(serde_json::json!({"type":"ready"})).await;
    let started = a.until_event("round_started").await;
    started["event"]["order"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().to_owned())
        .collect()
}

/// The first player in `order` ("a" or "b") rolls; returns the roll's total and the event's
/// version, as `a` sees them.
pub async fn roll_first(a: &mut Client, b: &mut Client, order: &[String]) -> (Value, u64) {
    let roll = serde_json::json!({"type":"input","data":{"action":"roll"}});
    if order[0] == "a" {
        a.ok(roll).await;
    } else {
        b.ok(roll).await;
    }
    let rolled = a.until_event("rolled").await;
    (
        rolled["event"]["total"].clone(),
        rolled["version"].as_u64().unwrap(),
    )
}

/// For a player seated in an arena room and synced: an input without `rid` followed by one with a
/// `rid` take effect in that order (five times); an invalid input without `rid` is answered
/// without one; and an input sent right after `leave_room`, without waiting for its `ok`, finds
/// the player out of the room. Ends with the player out of the room.
pub async fn realtime_inputs_keep_order(a: &mut Client, player: &str) {
    let x_of = |m: &Value| m["state"]["players"][player]["x"].as_f64();
    for round in 0..5 {
        // Right without a rid, then left with one: left must win.
        a.send(json!({"type":"input","data":{"dx":1,"dy":0}})).await;
        a.ok(json!({"type":"input","data":{"dx":-1,"dy":0}})).await;
        // The first state after the ok may come from a tick before it; the next two both follow it.
        a.clear();
        a.until_type("state").await;
        let s1 = x_of(&a.until_type("state").await).unwrap();
        let s2 = x_of(&a.until_type("state").await).unwrap();
        assert!(
            s2 < s1 || s2 == 0.0,
            "round {round}: {player} moves right ({s1} → {s2}): the later input lost"
        );
    }
    a.send(json!({"type":"input","data":{"dx":"left","dy":0}}))
        .await;
    let e = a.until_type("error").await;
    assert_eq!(e["code"], "invalid_input", "{e}");
    assert!(e.get("rid").is_none(), "{e}");
    a.send(json!({"type":"leave_room","rid":900})).await;
    a.send(json!({"type":"input","data":{"dx":1,"dy":0}})).await;
    let ok = a.until(|m| m["rid"] == 900).await;
    assert_eq!(ok["type"], "ok", "{ok}");
    let e = a.until_type("error").await;
    assert_eq!(e["code"], "not_in_room", "{e}");
}
