//! What an idle WebSocket connection costs a server that owns its transport: tokio and
//! tokio-tungstenite with a small read buffer, one task and one outbound queue per connection,
//! pings on a heartbeat, and no per-connection actor. BENCHMARKS.md compares its RSS per connection
//! with a Warren node's, to size the edge redesign that ≤ 10 KiB per idle session would need.
//!
//! ```sh
//! cargo run --release -p warren-loadtest --example idle_floor -- server 127.0.0.1:7399 &
//! cargo run --release -p warren-loadtest --example idle_floor -- clients ws://127.0.0.1:7399 15000
//! ```
//! `clients` opens the connections (spread over 127.0.0.1–4), holds them for 5 s, and prints the
//! server's RSS per connection, given the server's pid in `SERVER_PID`.

// An example links every dependency of the package; it uses few of them.
#![allow(unused_crate_dependencies)]

use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use tokio::net::{TcpListener, TcpSocket};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("server") => server(args.get(2).map_or("127.0.0.1:7399", String::as_str)).await,
        Some("clients") => {
            let url = args.get(2).map_or("ws://127.0.0.1:7399", String::as_str);
            let n = args.get(3).and_then(|n| n.parse().ok()).unwrap_or(1000);
            clients(url, n).await
        }
        _ => anyhow::bail!("usage: idle_floor server ADDR | clients URL N"),
    }
}

async fn server(addr: &str) -> anyhow::Result<()> {
    let listener = TcpListener::bind(addr).await?;
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0);
    loop {
        let (stream, _) = listener.accept().await?;
        tokio::spawn(async move {
            let Ok(ws) = tokio_tungstenite::accept_async_with_config(stream, Some(config)).await
            else {
                return;
            };
            let (mut tx, mut rx) = ws.split();
            let (queue, mut outbound) = tokio::sync::mpsc::channel::<String>(16);
            let _keep = queue;
            let mut heartbeat = tokio::time::interval(Duration::from_secs(15));
            loop {
                tokio::select! {
                    m = rx.next() => match m {
                        Some(Ok(Message::Text(_))) => {}
                        Some(Ok(_)) => {}
                        _ => break,
                    },
                    Some(frame) = outbound.recv() => {
                        if tx.send(Message::text(frame)).await.is_err() { break; }
                    }
                    _ = heartbeat.tick() => {
                        if tx.send(Message::Ping(Default::default())).await.is_err() { break; }
                    }
                }
            }
        });
    }
}

async fn clients(url: &str, n: usize) -> anyhow::Result<()> {
    let addr: std::net::SocketAddr = url.trim_start_matches("ws://").parse()?;
    let mut held = Vec::with_capacity(n);
    for i in 0..n {
        let socket = TcpSocket::new_v4()?;
        socket.bind(format!("127.0.0.{}:0", 1 + i % 4).parse()?)?;
        let stream = socket.connect(addr).await?;
        let (ws, _) = tokio_tungstenite::client_async(url, stream).await?;
        held.push(ws);
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    if let Ok(pid) = std::env::var("SERVER_PID") {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        let rss: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(f64::NAN);
        println!(
            "{n} idle connections: server RSS {rss} KiB, {:.2} KiB per connection",
            rss / n as f64
        );
    }
    Ok(())
}
