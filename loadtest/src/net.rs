//! Reaching the nodes: HTTP requests, guest tokens, WebSocket connections from chosen source
//! addresses, and the server process's CPU and memory from /proc.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// An open client connection.
pub type Ws = warren_client::Connection<TcpStream>;

/// One node to connect to: `http://host:port`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// Host and port.
    pub addr: SocketAddr,
}

impl Target {
    /// Parses `http://127.0.0.1:7350` (or `ws://…`, or a bare `host:port`; IP addresses only).
    pub fn parse(s: &str) -> anyhow::Result<Self> {
        let rest = s
            .trim()
            .trim_start_matches("http://")
            .trim_start_matches("ws://")
            .trim_end_matches('/');
        let addr = rest
            .parse()
            .with_context(|| format!("target `{s}`: expected http://IP:PORT"))?;
        Ok(Self { addr })
    }
}

/// Source addresses to spread connections over (one address runs out of ephemeral ports near
/// 28,000 connections to one target).
#[derive(Clone, Debug, Default)]
pub struct Sources(pub Vec<IpAddr>);

impl Sources {
    /// Parses `127.0.0.1-127.0.0.8` or a comma-separated list; empty: the system's choice.
    pub fn parse(s: &str) -> anyhow::Result<Self> {
        if s.is_empty() {
            return Ok(Self::default());
        }
        if let Some((a, b)) = s.split_once('-') {
            let (a, b): (std::net::Ipv4Addr, std::net::Ipv4Addr) = (
                a.trim().parse().context("--source-ips start")?,
                b.trim().parse().context("--source-ips end")?,
            );
            let (a, b) = (u32::from(a), u32::from(b));
            if b < a || b - a > 1024 {
                bail!("--source-ips: a range of 1 to 1025 IPv4 addresses, low to high");
            }
            return Ok(Self(
                (a..=b)
                    .map(|x| IpAddr::V4(std::net::Ipv4Addr::from(x)))
                    .collect(),
            ));
        }
        s.split(',')
            .map(|a| {
                a.trim()
                    .parse()
                    .map_err(|e| anyhow!("--source-ips `{a}`: {e}"))
            })
            .collect::<anyhow::Result<_>>()
            .map(Self)
    }

    fn pick(&self, i: usize) -> Option<IpAddr> {
        (!self.0.is_empty()).then(|| self.0[i % self.0.len()])
    }
}

async fn tcp(to: SocketAddr, from: Option<IpAddr>) -> std::io::Result<TcpStream> {
    let sock = if to.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    if let Some(ip) = from {
        sock.bind(SocketAddr::new(ip, 0))?;
    }
    sock.set_nodelay(true)?;
    sock.connect(to).await
}

/// A plain HTTP/1.1 request; status and body.
pub async fn http(
    to: SocketAddr,
    method: &str,
    path: &str,
    body: &str,
    bearer: Option<&str>,
) -> anyhow::Result<(u16, String)> {
    let mut s = tcp(to, None).await?;
    let auth = bearer
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {to}\r\nConnection: close\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await?;
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut buf)).await??;
    let text = String::from_utf8_lossy(&buf);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_owned();
    Ok((status, body))
}

/// A guest token for `name` from `POST /v1/auth/guest`.
pub async fn guest(to: SocketAddr, name: &str) -> anyhow::Result<String> {
    let body = serde_json::json!({ "name": name }).to_string();
    let (status, text) = http(to, "POST", "/v1/auth/guest", &body, None).await?;
    if status != 200 {
        bail!("guest token: HTTP {status}: {text}");
    }
    let v: Value = serde_json::from_str(&text).context("guest token: not JSON")?;
    v["token"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("guest token: no `token` in {text}"))
}

/// Why a connection attempt failed.
#[derive(Debug)]
pub enum ConnectError {
    /// The upgrade was refused with this HTTP status.
    Refused(u16),
    /// Anything else (TCP, handshake, timeout, no `welcome`).
    Failed(String),
}

/// Opens a WebSocket to `target` (from source address number `n` of `sources`) with `query`,
/// and reads its `welcome`.
pub async fn connect(
    target: &Target,
    sources: &Sources,
    n: usize,
    query: &str,
) -> Result<(Ws, Value), ConnectError> {
    use tokio_tungstenite::tungstenite::Error;
    use warren_client::{ClientError, Connection};
    let fail = |e: &dyn std::fmt::Display| ConnectError::Failed(e.to_string());
    let stream = tokio::time::timeout(Duration::from_secs(10), tcp(target.addr, sources.pick(n)))
        .await
        .map_err(|e| fail(&e))?
        .map_err(|e| fail(&e))?;
    let url = format!("ws://{}/v1/ws?{query}", target.addr);
    let (ws, _) = match tokio::time::timeout(
        Duration::from_secs(10),
        tokio_tungstenite::client_async(url, stream),
    )
    .await
    {
        Ok(Ok(x)) => x,
        Ok(Err(Error::Http(resp))) => return Err(ConnectError::Refused(resp.status().as_u16())),
        Ok(Err(e)) => return Err(fail(&e)),
        Err(e) => return Err(fail(&e)),
    };
    match tokio::time::timeout(Duration::from_secs(10), Connection::over(ws)).await {
        Ok(Ok(conn)) => {
            let welcome: Value = serde_json::from_str(conn.welcome_text()).map_err(|e| fail(&e))?;
            Ok((conn, welcome))
        }
        Ok(Err(ClientError::Rejected { code, reason })) => Err(ConnectError::Failed(format!(
            "closed before welcome: {} {reason}",
            code.map_or_else(|| "no code".to_owned(), |c| c.to_string())
        ))),
        Ok(Err(e)) => Err(fail(&e)),
        Err(e) => Err(fail(&e)),
    }
}

/// CPU seconds (user + system) and resident KiB of a process, from /proc.
pub fn proc_usage(pid: u32) -> Option<(f64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    // USER_HZ is 100 on Linux.
    Some((ticks / 100.0, rss))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_and_sources_parse() {
        assert_eq!(
            Target::parse("http://127.0.0.1:7350/").unwrap().addr,
            "127.0.0.1:7350".parse().unwrap()
        );
        assert!(Target::parse("http://localhost:7350").is_err());
        let s = Sources::parse("127.0.0.1-127.0.0.4").unwrap();
        assert_eq!(s.0.len(), 4);
        assert_eq!(s.pick(5), Some("127.0.0.2".parse().unwrap()));
        assert!(Sources::parse("127.0.0.9-127.0.0.1").is_err());
        assert_eq!(Sources::parse("").unwrap().pick(0), None);
        assert_eq!(Sources::parse("127.0.0.1, 127.0.0.2").unwrap().0.len(), 2);
        let me = proc_usage(std::process::id()).unwrap();
        assert!(me.1 > 0);
    }
}
