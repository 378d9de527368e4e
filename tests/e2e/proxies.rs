//! Warren behind the proxies studios put in front of it, the real ones from Debian: nginx as
//! ingress-nginx configures itself (an upstream keepalive pool, `Connection: ''` for plain
//! requests, so the WebSocket upgrade comes on an upstream connection that already carried
//! requests), nginx's plain WebSocket example, and HAProxy with `http-reuse always`. Through each:
//! 200 players, each from an address of its own, take guest tokens and connect; every player
//! sits in a dice room and one room plays a round; then one node of the three is drained and each
//! of its players reconnects through the proxy and resumes its seat.
//!
//! Also, without a proxy: the upgrade as a later request of a kept-alive connection, in absolute
//! form, and after pipelined requests; and the client address behind a trusted proxy.

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::MaybeTlsStream;
use tokio_tungstenite::tungstenite::protocol::Role;

use crate::cluster::{COOKIE, start_env, wait_for};
use crate::common::{Client, Node, WAIT, free_port, start_dice_round, token};

/// A plain HTTP/1.1 connection that stays open between requests, from a source address of the
/// test's choosing (each player of these tests has its own, as players behind a proxy do).
pub(crate) struct Raw {
    s: TcpStream,
    buf: Vec<u8>,
}

impl Raw {
    pub(crate) async fn connect(src: IpAddr, port: u16) -> Raw {
        let sock = TcpSocket::new_v4().unwrap();
        sock.bind((src, 0).into()).unwrap();
        let s = sock.connect(([127, 0, 0, 1], port).into()).await.unwrap();
        Raw { s, buf: Vec::new() }
    }

    pub(crate) async fn send(&mut self, bytes: &[u8]) {
        self.s.write_all(bytes).await.unwrap();
    }

    /// The next response: status, head, body (by `content-length`).
    pub(crate) async fn response(&mut self) -> (u16, String, String) {
        let deadline = Instant::now() + WAIT;
        let head_end = loop {
            if let Some(at) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
            self.fill(deadline).await;
        };
        let head = String::from_utf8_lossy(&self.buf[..head_end]).into_owned();
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let len = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse::<usize>().ok())?
            })
            .unwrap_or(0);
        while self.buf.len() < head_end + len {
            self.fill(deadline).await;
        }
        let body = String::from_utf8_lossy(&self.buf[head_end..head_end + len]).into_owned();
        self.buf.drain(..head_end + len);
        (status, head, body)
    }

    async fn fill(&mut self, deadline: Instant) {
        let left = deadline.saturating_duration_since(Instant::now());
        let n = tokio::time::timeout(left, self.s.read_buf(&mut self.buf))
            .await
            .expect("timed out waiting for a response")
            .unwrap();
        assert!(n > 0, "connection closed; read so far: {:?}", self.buf);
    }

    /// After a `101`: the WebSocket on this connection, as a harness client.
    pub(crate) async fn websocket(self) -> Client {
        let ws = tokio_tungstenite::WebSocketStream::from_partially_read(
            MaybeTlsStream::Plain(self.s),
            self.buf,
            Role::Client,
            None,
        )
        .await;
        Client::open(ws).await
    }
}

const KEY: &str = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n";

fn upgrade(target: &str) -> String {
    format!(
        "GET {target} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n{KEY}\r\n"
    )
}

fn guest_request(name: &str) -> String {
    let body = json!({ "name": name }).to_string();
    format!(
        "POST /v1/auth/guest HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

fn loopback(n: u32) -> IpAddr {
    IpAddr::from(std::net::Ipv4Addr::from(0x7f00_0000u32 + n))
}

/// A WebSocket upgrade as any request of a kept-alive connection: after plain requests, in
/// absolute form, after pipelined requests (answered in order); `Upgrade: websocket` on another
/// path is refused with 404.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upgrade_is_served_as_any_request_of_a_kept_alive_connection() {
    let node = Node::start(&[]).await;
    let src = loopback(1);

    // Health check, guest token, then the WebSocket: three requests, one connection.
    let mut c = Raw::connect(src, node.port).await;
    c.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert_eq!(c.response().await.0, 200);
    c.send(guest_request("kept").as_bytes()).await;
    let (s, _, body) = c.response().await;
    assert_eq!(s, 200, "{body}");
    let tok = serde_json::from_str::<Value>(&body).unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    c.send(upgrade(&format!("/v1/ws?token={tok}")).as_bytes())
        .await;
    let (s, head, _) = c.response().await;
    assert_eq!(s, 101, "{head}");
    let mut ws = c.websocket().await;
    assert_eq!(ws.welcome["name"], "kept");
    ws.ok(json!({"type":"ping"})).await;

    // Absolute form, as the first request and as a later one.
    let tok = token("absolute", &[]);
    let target = format!("http://127.0.0.1:{}/v1/ws?token={tok}", node.port);
    let mut c = Raw::connect(src, node.port).await;
    c.send(upgrade(&target).as_bytes()).await;
    assert_eq!(c.response().await.0, 101);
    c.websocket().await.ok(json!({"type":"ping"})).await;
    let mut c = Raw::connect(src, node.port).await;
    c.send(b"GET http://127.0.0.1/readyz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    assert_eq!(c.response().await.0, 200);
    c.send(upgrade(&target).as_bytes()).await;
    assert_eq!(c.response().await.0, 101);
    c.websocket().await.ok(json!({"type":"ping"})).await;

    // Pipelined: two requests and the upgrade in one write, answered in order.
    let tok = token("piped", &[]);
    let mut c = Raw::connect(src, node.port).await;
    let piped = format!(
        "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /nope HTTP/1.1\r\nHost: x\r\n\r\n{}",
        upgrade(&format!("/v1/ws?token={tok}"))
    );
    c.send(piped.as_bytes()).await;
    assert_eq!(c.response().await.0, 200);
    assert_eq!(c.response().await.0, 404);
    assert_eq!(c.response().await.0, 101);
    let mut ws = c.websocket().await;
    assert_eq!(ws.welcome["player"], "piped");
    ws.ok(json!({"type":"ping"})).await;

    // A refused upgrade on a kept-alive connection still gets its JSON error.
    let mut c = Raw::connect(src, node.port).await;
    c.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert_eq!(c.response().await.0, 200);
    c.send(upgrade("/v1/ws?token=garbage").as_bytes()).await;
    let (s, _, body) = c.response().await;
    assert_eq!(s, 401, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["error"],
        "unauthorized"
    );

    // `Upgrade: websocket` on another path.
    let mut c = Raw::connect(src, node.port).await;
    c.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert_eq!(c.response().await.0, 200);
    c.send(upgrade("/healthz").as_bytes()).await;
    let (s, _, body) = c.response().await;
    assert_eq!(s, 404, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["error"],
        "not_found"
    );

    // A plain GET of the WebSocket path on a kept-alive connection: 400, and the connection
    // goes on.
    let mut c = Raw::connect(src, node.port).await;
    c.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /v1/ws HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    assert_eq!(c.response().await.0, 200);
    assert_eq!(c.response().await.0, 400);
    c.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert_eq!(c.response().await.0, 200);
}

/// Guest tokens are limited per client address. From a trusted proxy the client address is the
/// one it forwards; from any other peer, forwarding headers change nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_address_limits_follow_the_client_behind_a_trusted_proxy_only() {
    let node = Node::start(&[
        ("WARREN_HTTP__TRUSTED_PROXIES", "127.0.0.10/32"),
        ("WARREN_AUTH__GUEST_TOKENS_PER_MINUTE", "3"),
    ])
    .await;
    let mint = |src: IpAddr, xff: Option<String>| {
        let port = node.port;
        async move {
            let mut c = Raw::connect(src, port).await;
            let extra = xff
                .map(|x| format!("X-Forwarded-For: {x}\r\n"))
                .unwrap_or_default();
            let req =
                guest_request("lim").replacen("Host: x\r\n", &format!("Host: x\r\n{extra}"), 1);
            c.send(req.as_bytes()).await;
            c.response().await.0
        }
    };
    // An untrusted peer: its own address counts, whatever it claims to forward for.
    let spoofer = loopback(20);
    for i in 0..3 {
        assert_eq!(mint(spoofer, Some(format!("198.51.100.{i}"))).await, 200);
    }
    assert_eq!(mint(spoofer, Some("198.51.100.99".into())).await, 429);
    // Without a forwarding header a loopback peer is the node's own host (tools, benchmarks),
    // which is not limited.
    assert_eq!(mint(spoofer, None).await, 200);

    // The trusted proxy forwards for two players: each has a budget of its own.
    let proxy = loopback(10);
    for _ in 0..3 {
        assert_eq!(mint(proxy, Some("203.0.113.1".into())).await, 200);
    }
    assert_eq!(mint(proxy, Some("203.0.113.1".into())).await, 429);
    // A client's own claim, then the proxy's addition: the proxy's word counts.
    assert_eq!(
        mint(proxy, Some("203.0.113.1, 203.0.113.2".into())).await,
        200
    );
    assert_eq!(mint(proxy, Some("203.0.113.2".into())).await, 200);

    // Admin endpoints without a token: not for requests a proxy forwarded, even from loopback.
    let mut c = Raw::connect(proxy, node.port).await;
    c.send(b"GET /v1/cluster HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 203.0.113.1\r\n\r\n")
        .await;
    assert_eq!(c.response().await.0, 403);
}

/// The proxy configurations the tests run, as a studio writes them (README, "Behind a proxy or an
/// ingress").
#[derive(Clone, Copy, Debug)]
pub(crate) enum Kind {
    /// nginx as ingress-nginx configures itself: upstream keepalive pool, `Connection ''` for
    /// plain requests.
    IngressNginx,
    /// nginx's WebSocket proxying example: `Connection: close` for plain requests.
    NginxExample,
    /// HAProxy with `http-reuse always`.
    Haproxy,
}

pub(crate) struct Proxy {
    child: Child,
    pub(crate) port: u16,
    dir: PathBuf,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Proxy {
    /// Starts the proxy on a free port in front of `upstreams` (HTTP ports on loopback); `tls`:
    /// nginx terminates TLS with this certificate and key.
    pub(crate) async fn start(
        kind: Kind,
        upstreams: &[u16],
        tls: Option<(&std::path::Path, &std::path::Path)>,
    ) -> Proxy {
        // nginx and HAProxy take their port from their configuration, written before they start.
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("warren-proxy-{port}"));
        std::fs::create_dir_all(&dir).unwrap();
        let (conf, mut cmd) = match kind {
            Kind::IngressNginx | Kind::NginxExample => {
                let conf = dir.join("nginx.conf");
                let mut c = Command::new("/usr/sbin/nginx");
                c.arg("-p").arg(&dir).arg("-c").arg(&conf);
                (conf, c)
            }
            Kind::Haproxy => {
                let conf = dir.join("haproxy.cfg");
                let mut c = Command::new("/usr/sbin/haproxy");
                c.arg("-db").arg("-f").arg(&conf);
                (conf, c)
            }
        };
        let text = crate::proxies::config(kind, port, upstreams, &dir, tls);
        std::fs::write(&conf, text).unwrap();
        let log = std::fs::File::create(dir.join("stderr.log")).unwrap();
        let child = cmd
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start the proxy (nginx-light, haproxy: see .ci/run)");
        let proxy = Proxy { child, port, dir };
        let deadline = Instant::now() + WAIT;
        while TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            assert!(
                Instant::now() < deadline,
                "{kind:?} did not start: {}",
                std::fs::read_to_string(proxy.dir.join("stderr.log")).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        proxy
    }
}

/// The configuration of `kind` on `port` in front of `upstreams` (the README shows the same).
pub(crate) fn config(
    kind: Kind,
    port: u16,
    upstreams: &[u16],
    dir: &std::path::Path,
    tls: Option<(&std::path::Path, &std::path::Path)>,
) -> String {
    let d = dir.display();
    match kind {
        Kind::IngressNginx | Kind::NginxExample => {
            let servers: String = upstreams
                .iter()
                .map(|p| format!("    server 127.0.0.1:{p} max_fails=0;\n"))
                .collect();
            // ingress-nginx: `Connection ''` on plain requests so upstream connections are kept
            // and reused; the example: `Connection: close`, one upstream connection per request.
            let (empty, pool) = match kind {
                Kind::IngressNginx => (
                    "''",
                    "    keepalive 320;\n    keepalive_time 1h;\n    keepalive_timeout 60s;\n    keepalive_requests 10000;\n",
                ),
                _ => ("close", ""),
            };
            let listen = match tls {
                Some((cert, key)) => format!(
                    "listen 127.0.0.1:{port} ssl;\n    ssl_certificate {};\n    ssl_certificate_key {};",
                    cert.display(),
                    key.display()
                ),
                None => format!("listen 127.0.0.1:{port};"),
            };
            format!(
                r#"daemon off;
master_process off;
worker_processes 1;
error_log {d}/error.log warn;
pid {d}/nginx.pid;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {d}/body;
  proxy_temp_path {d}/proxy;
  fastcgi_temp_path {d}/fastcgi;
  uwsgi_temp_path {d}/uwsgi;
  scgi_temp_path {d}/scgi;
  map $http_upgrade $connection_upgrade {{
    default upgrade;
    '' {empty};
  }}
  upstream warren {{
{servers}{pool}  }}
  server {{
    {listen}
    client_max_body_size 64k;
    location / {{
      proxy_pass http://warren;
      proxy_http_version 1.1;
      proxy_set_header Host $host;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_set_header X-Real-IP $remote_addr;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_connect_timeout 5s;
      proxy_send_timeout 60s;
      proxy_read_timeout 60s;
      proxy_buffering off;
      proxy_next_upstream error timeout http_502 http_503;
    }}
  }}
}}
"#
            )
        }
        Kind::Haproxy => {
            let servers: String = upstreams
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    format!("  server n{i} 127.0.0.1:{p} check inter 500ms fall 1 rise 2\n")
                })
                .collect();
            format!(
                r#"global
  maxconn 4096
defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  timeout tunnel 1h
  timeout http-keep-alive 60s
  option forwardfor
  option redispatch
  retries 3
  http-reuse always
frontend players
  bind 127.0.0.1:{port}
  default_backend warren
backend warren
  balance roundrobin
  option httpchk GET /readyz
{servers}"#
            )
        }
    }
}

/// A player connected through the proxy from address `src`: a guest token, then the WebSocket,
/// with the resume token when given.
pub(crate) async fn player(port: u16, src: IpAddr, name: &str) -> (Client, String) {
    let mut c = Raw::connect(src, port).await;
    c.send(guest_request(name).as_bytes()).await;
    let (s, _, body) = c.response().await;
    assert_eq!(s, 200, "guest token for {name} through the proxy: {body}");
    let tok = serde_json::from_str::<Value>(&body).unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    (websocket(port, src, &format!("token={tok}")).await, tok)
}

async fn websocket(port: u16, src: IpAddr, query: &str) -> Client {
    match try_websocket(port, src, query).await {
        Ok(c) => c,
        Err(code) => panic!("closed with {code} before welcome"),
    }
}

async fn try_websocket(port: u16, src: IpAddr, query: &str) -> Result<Client, u16> {
    let sock = TcpSocket::new_v4().unwrap();
    sock.bind((src, 0).into()).unwrap();
    let s = sock.connect(([127, 0, 0, 1], port).into()).await.unwrap();
    let url = format!("ws://127.0.0.1:{port}/v1/ws?{query}");
    let (ws, _) = tokio_tungstenite::client_async(url, MaybeTlsStream::Plain(s))
        .await
        .expect("websocket through the proxy");
    Client::try_open(ws).await
}

struct Seated {
    src: IpAddr,
    token: String,
    client: Client,
    room: String,
}

const PLAYERS: u32 = 200;

async fn through(kind: Kind) {
    // Short drain timeouts keep the test short; the proxy is trusted for client addresses.
    let extra = [
        ("WARREN_HTTP__TRUSTED_PROXIES", "127.0.0.1/32"),
        ("WARREN_DRAIN__TIMEOUT_MS", "15000"),
    ];
    let n1 = start_env("n1", 0, "", COOKIE, &extra).await;
    let n2 = start_env("n2", 0, &n1.cluster, COOKIE, &extra).await;
    let seeds3 = format!("{},{}", n1.cluster, n2.cluster);
    let n3 = start_env("n3", 0, &seeds3, COOKIE, &extra).await;
    let all = [("n1", "ready"), ("n2", "ready"), ("n3", "ready")];
    for n in [&n1, &n2, &n3] {
        wait_for(n, &all, Duration::from_secs(15)).await;
    }
    let proxy = Proxy::start(kind, &[n1.port, n2.port, n3.port], None).await;

    // 200 players, each from an address of its own, 20 at a time.
    let mut players = Vec::new();
    for batch in (0..PLAYERS).collect::<Vec<_>>().chunks(20) {
        let joined = join_all(batch.iter().map(|&i| {
            let src = loopback(1000 + i);
            let port = proxy.port;
            async move {
                let (c, tok) = player(port, src, &format!("p{i}")).await;
                (src, tok, c)
            }
        }))
        .await;
        players.extend(joined);
    }
    let on = |node: &str| {
        players
            .iter()
            .filter(|(_, _, c)| c.welcome["node"] == node)
            .count()
    };
    let spread = [on("n1"), on("n2"), on("n3")];
    println!("{kind:?}: {PLAYERS} players connected, by node {spread:?}");
    assert!(spread.iter().all(|&n| n > 0), "{spread:?}");

    // Every player in a dice room of two.
    let mut seated: Vec<Seated> = Vec::new();
    let mut it = players.into_iter();
    while let (Some((sa, ta, mut a)), Some((sb, tb, mut b))) = (it.next(), it.next()) {
        let room = a.create_room("dice", json!({})).await;
        b.ok(json!({"type":"join_room","room":room})).await;
        a.until_type("room_state").await;
        b.until_type("room_state").await;
        seated.push(Seated {
            src: sa,
            token: ta,
            client: a,
            room: room.clone(),
        });
        seated.push(Seated {
            src: sb,
            token: tb,
            client: b,
            room,
        });
    }

    // One room plays a round to the end.
    {
        let (first, rest) = seated.split_at_mut(1);
        let (a, b) = (&mut first[0].client, &mut rest[0].client);
        let order = start_dice_round(a, b).await;
        for p in &order {
            let c = if a.welcome["player"] == p.as_str() {
                &mut *a
            } else {
                &mut *b
            };
            c.ok(json!({"type":"input","data":{"action":"roll"}})).await;
        }
        a.until_event("round_over").await;
    }

    // Drain n1: each of its players is closed with 4001, reconnects through the proxy with its
    // resume token, and is back in its room.
    let (s, _) = n1
        .http("POST", "/v1/admin/drain", None, None)
        .await
        .unwrap();
    assert_eq!(s, 202);
    let drained: Vec<Seated> = seated
        .into_iter()
        .filter(|p| p.client.welcome["node"] == "n1")
        .collect();
    let n = drained.len();
    let started = Instant::now();
    let back = join_all(drained.into_iter().map(|p| {
        let port = proxy.port;
        async move { come_back(port, p).await }
    }))
    .await;
    println!(
        "{kind:?}: {n} players of the drained node resumed their seats through the proxy within {:?} ({} reconnects in all)",
        started.elapsed(),
        back.iter().sum::<u32>()
    );
}

/// A player of the drained node: waits for 4001, then reconnects through the proxy until a node
/// other than the drained one resumes it; its room's `room_state` follows. Returns how many
/// connections it took.
async fn come_back(port: u16, mut p: Seated) -> u32 {
    assert_eq!(p.client.close_code().await, 4001);
    let mut resume = p.client.resume_token();
    let mut tries = 0;
    loop {
        tries += 1;
        assert!(tries <= 20, "no node other than n1 took {} back", p.src);
        let query = format!("token={}&resume={resume}", p.token);
        let mut c = match try_websocket(port, p.src, &query).await {
            Ok(c) => c,
            // The drained node exited as the connection reached it.
            Err(0) => continue,
            // A draining node sends its welcome before its 4001 (PROTOCOL.md, "Drain").
            Err(code) => panic!("reconnect closed with {code} before its welcome"),
        };
        assert_eq!(c.welcome["resumed"], true, "{}", c.welcome);
        if c.welcome["node"] == "n1" {
            // Routed to the draining node before the proxy saw it go: it says so with 4001.
            resume = c.resume_token();
            assert_eq!(c.close_code().await, 4001);
            continue;
        }
        let rs = c.until_type("room_state").await;
        assert_eq!(rs["room"], p.room.as_str());
        return tries;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_nginx_configured_as_ingress_nginx() {
    through(Kind::IngressNginx).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_nginxs_websocket_example() {
    through(Kind::NginxExample).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_haproxy_reusing_connections_always() {
    through(Kind::Haproxy).await;
}

/// `wss://`: nginx terminates TLS (a certificate the test makes) in front of a node; players
/// connect with `wss://` through it and play a dice round.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn players_connect_with_wss_through_nginx_terminating_tls_and_play() {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, ServerName};
    use std::sync::Arc;

    let node = Node::start(&[("WARREN_HTTP__TRUSTED_PROXIES", "127.0.0.1/32")]).await;
    let dir = std::env::temp_dir().join(format!("warren-wss-{}", crate::common::unique()));
    crate::cluster::make_certs(&dir);
    let proxy = Proxy::start(
        Kind::IngressNginx,
        &[node.port],
        Some((&dir.join("node.pem"), &dir.join("node.key"))),
    )
    .await;
    let mut roots = rustls::RootCertStore::empty();
    for ca in CertificateDer::pem_file_iter(dir.join("ca.pem")).unwrap() {
        roots.add(ca.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tls = Arc::new(tls);
    let connector = tokio_rustls::TlsConnector::from(tls.clone());
    let connect = |player: &'static str| {
        let connector = connector.clone();
        let port = proxy.port;
        async move {
            let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
            let name = ServerName::try_from("warren-cluster").unwrap();
            let stream = connector
                .connect(name, tcp)
                .await
                .expect("TLS handshake with nginx");
            let url = format!(
                "wss://warren-cluster:{port}/v1/ws?token={}",
                token(player, &[])
            );
            let (ws, _) = tokio_tungstenite::client_async(url, stream)
                .await
                .expect("wss upgrade through nginx");
            Client::open(ws).await
        }
    };
    let mut a = connect("tls-a").await;
    let mut b = connect("tls-b").await;
    assert_eq!(a.welcome["player"], "tls-a");
    let room = a.create_room("dice", json!({})).await;
    b.ok(json!({"type":"join_room","room":room})).await;
    a.until_type("room_state").await;
    b.until_type("room_state").await;
    a.ok(json!({"type":"ready"})).await;
    b.ok(json!({"type":"ready"})).await;
    let started = a.until_event("round_started").await;
    for p in started["event"]["order"].as_array().unwrap() {
        let c = if p == "tls-a" { &mut a } else { &mut b };
        c.ok(json!({"type":"input","data":{"action":"roll"}})).await;
    }
    let over = b.until_event("round_over").await;
    assert_eq!(
        over["event"]["totals"].as_object().unwrap().len(),
        2,
        "{over}"
    );

    // The typed Rust client, trusting the same CA, plays over wss:// too.
    let url = format!("wss://localhost:{}", proxy.port);
    let (rc, mut pushes) =
        warren_client::connect_with(&url, &token("tls-rust", &[]), None, Some(tls.clone()))
            .await
            .unwrap_or_else(|e| panic!("wss:// with warren-client: {e}"));
    assert_eq!(rc.welcome().player.as_str(), "tls-rust");
    let room = rc.create_room("dice", Default::default()).await.unwrap();
    crate::client::until(
        &mut pushes,
        |m| matches!(m, warren_client::ServerMessage::RoomState { room: r, .. } if *r == room),
    )
    .await;
    rc.request(warren_client::Request::Ready).await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

/// The README's proxy configurations, and those `scripts/proxy_hop.sh` measures through, are the
/// ones these tests run: every line of each, but for listen addresses, ports, certificate and
/// temporary paths, is a line of the tested configuration.
#[test]
fn the_readme_shows_the_proxy_configurations_the_tests_run() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let block = |marker: &str| -> Vec<String> {
        let at = readme
            .find(marker)
            .unwrap_or_else(|| panic!("README lacks {marker}"));
        let rest = &readme[at..];
        let start = rest.find("```").unwrap();
        let body = &rest[start..];
        let body = &body[body.find('\n').unwrap() + 1..];
        let end = body.find("```").unwrap();
        body[..end].lines().map(str::to_owned).collect()
    };
    // Addresses differ (the tests pick ports); listen lines and certificates are the site's own.
    let normal = |line: &str| -> String {
        let mut out = line.trim().replace("\\$", "$");
        while let Some(at) = out.find("127.0.0.1:") {
            let port = out[at + 10..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '$' || *c == '_')
                .count();
            out.replace_range(at..at + 10 + port, "ADDR");
        }
        out.replace(" n0 ", " nN ")
            .replace(" n1 ", " nN ")
            .replace(" n2 ", " nN ")
    };
    let site_specific = |l: &str| {
        let l = l.trim();
        l.is_empty()
            || l.starts_with("listen")
            || l.starts_with("ssl_")
            || l.starts_with("bind")
            || l.contains("$d")
    };
    let dir = std::path::Path::new("/tmp/warren-readme-check");
    // scripts/proxy_hop.sh measures through the same configurations: its heredocs are checked too.
    let script =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/proxy_hop.sh"))
            .unwrap();
    let heredoc = |file: &str| -> Vec<String> {
        let start = script
            .find(&format!("cat >\"$dir/{file}\" <<EOF"))
            .unwrap_or_else(|| panic!("proxy_hop.sh lacks its {file}"));
        let body = &script[start..];
        let body = &body[body.find('\n').unwrap() + 1..];
        body[..body.find("\nEOF").unwrap()]
            .lines()
            .map(str::to_owned)
            .collect()
    };
    let checked = [
        (
            "README <!-- proxy:nginx -->",
            block("<!-- proxy:nginx -->"),
            Kind::IngressNginx,
        ),
        (
            "README <!-- proxy:haproxy -->",
            block("<!-- proxy:haproxy -->"),
            Kind::Haproxy,
        ),
        (
            "proxy_hop.sh nginx.conf",
            heredoc("nginx.conf"),
            Kind::IngressNginx,
        ),
        (
            "proxy_hop.sh haproxy.cfg",
            heredoc("haproxy.cfg"),
            Kind::Haproxy,
        ),
    ];
    for (marker, lines, kind) in checked {
        let tested: Vec<String> = config(kind, 1, &[2], dir, None)
            .lines()
            .map(normal)
            .collect();
        for line in lines {
            if site_specific(&line) {
                continue;
            }
            assert!(
                tested.contains(&normal(&line)),
                "{marker}: `{line}` is not in the tested {kind:?} configuration"
            );
        }
    }
}
