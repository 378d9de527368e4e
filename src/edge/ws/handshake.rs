//! The WebSocket handshake of `GET /v1/ws`: the request head (bounded in size, count and time),
//! the player's token, the node's state (draining, isolated, at capacity), then `101`, or a JSON
//! error that ends the connection.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use serde::Deserialize;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tracing::debug;

use super::{Open, READ_BUFFER, Slot};
use crate::edge::Edge;
use crate::edge::auth::{AuthError, Identity};
use crate::edge::front::{Prefixed, REQUEST_TIMEOUT};
use crate::edge::http::refuse;

#[derive(Deserialize)]
struct WsQuery {
    token: Option<String>,
    resume: Option<String>,
}

/// The most a WebSocket upgrade request's head may take.
const MAX_HEAD: usize = 16 * 1024;

/// Headers read from an upgrade request; more is answered 431.
const MAX_HEADERS: usize = 64;

/// What a refused upgrade is answered with.
struct Refusal {
    status: u16,
    code: &'static str,
    message: String,
}

impl Refusal {
    fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }
}

/// An accepted upgrade, before the `101` is written.
struct Accepted {
    /// The client's address ([`super::client`]).
    client: Option<std::net::IpAddr>,
    ident: Identity,
    resume: Option<String>,
    key: String,
    /// Bytes the client sent after its request head.
    rest: Vec<u8>,
}

/// Answers the upgrade request: a JSON error, or `101` and the connection.
pub(super) async fn handshake(
    mut io: Prefixed,
    mut head: Vec<u8>,
    edge: Arc<Edge>,
) -> Option<Open> {
    let peer = io.peer_ip();
    let accepted = match tokio::time::timeout(REQUEST_TIMEOUT, read_head(&mut io, &mut head)).await
    {
        Ok(Ok(true)) => accept(&head, &edge, peer),
        Ok(Ok(false)) => Err(Refusal::new(
            431,
            "request_header_fields_too_large",
            "the upgrade request's head is too large",
        )),
        Ok(Err(e)) => {
            debug!(error = %e, "connection ended before its request head");
            return None;
        }
        Err(_) => Err(Refusal::new(
            408,
            "request_timeout",
            "the upgrade request's head did not arrive in time",
        )),
    };
    drop(head);
    let accepted = match accepted {
        Ok(a) => a,
        Err(r) => {
            refuse(&mut io, r.status, r.code, &r.message).await;
            return None;
        }
    };
    let limits = edge.ctx.settings.load().limits.clone();
    // Reserve the slot before upgrading so concurrent upgrades cannot overshoot the cap.
    if edge.connections.fetch_add(1, Ordering::AcqRel) >= limits.max_connections {
        edge.connections.fetch_sub(1, Ordering::AcqRel);
        metrics::counter!("warren_connections_rejected_total", "reason" => "capacity").increment(1);
        refuse(
            &mut io,
            503,
            "at_capacity",
            "this node is at its connection limit",
        )
        .await;
        return None;
    }
    let slot = Slot(edge.clone());
    let switching = format!(
        "HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-accept: {}\r\n\r\n",
        derive_accept_key(accepted.key.as_bytes())
    );
    if io.write_all(switching.as_bytes()).await.is_err() {
        return None;
    }
    let config = WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(0)
        .max_frame_size(Some(limits.max_frame_bytes))
        .max_message_size(Some(limits.max_frame_bytes));
    let ws =
        WebSocketStream::from_partially_read(io, accepted.rest, Role::Server, Some(config)).await;
    let conn_id = edge.conn_ids.fetch_add(1, Ordering::Relaxed);
    // The client's address is logged once, here, rather than held for the connection's life.
    debug!(player = %accepted.ident.player, conn = conn_id, client = ?accepted.client, "upgrade accepted");
    Some(Open {
        slot,
        ws,
        ident: accepted.ident,
        resume: accepted.resume,
        limits,
        conn_id,
    })
}

/// Reads until `head` holds the whole request head. `false`: it would be larger than [`MAX_HEAD`].
async fn read_head(io: &mut Prefixed, head: &mut Vec<u8>) -> std::io::Result<bool> {
    let mut searched = 0;
    loop {
        if let Some(at) = head[searched..].windows(4).position(|w| w == b"\r\n\r\n") {
            return Ok(searched + at + 4 <= MAX_HEAD);
        }
        searched = head.len().saturating_sub(3);
        if head.len() >= MAX_HEAD {
            return Ok(false);
        }
        head.reserve(1024.min(MAX_HEAD - head.len()));
        if io.read_buf(head).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
    }
}

/// What an upgrade request's head says, read without the node: the WebSocket handshake checked.
pub(crate) struct UpgradeHead {
    /// Length of the head: what follows is the client's first WebSocket bytes.
    len: usize,
    authorization: Option<String>,
    forwarded: Vec<String>,
    forwarded_for: Vec<String>,
    token: Option<String>,
    resume: Option<String>,
    key: String,
}

/// Reads and checks an upgrade request's head (the request line included): an HTTP/1.1
/// WebSocket handshake with a valid key and a readable query.
fn parse_upgrade(head: &[u8]) -> Result<UpgradeHead, Refusal> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let len = match req.parse(head) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => {
            return Err(Refusal::new(400, "bad_request", "incomplete request head"));
        }
        Err(httparse::Error::TooManyHeaders) => {
            return Err(Refusal::new(
                431,
                "request_header_fields_too_large",
                format!("more than {MAX_HEADERS} headers"),
            ));
        }
        Err(e) => {
            return Err(Refusal::new(
                400,
                "bad_request",
                format!("bad request: {e}"),
            ));
        }
    };
    let header = |name: &str| {
        req.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .and_then(|h| std::str::from_utf8(h.value).ok())
    };
    let values = |name: &'static str| {
        req.headers
            .iter()
            .filter(move |h| h.name.eq_ignore_ascii_case(name))
            .filter_map(|h| std::str::from_utf8(h.value).ok())
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    let has_token = |name: &str, token: &str| {
        header(name).is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    };
    if !has_token("upgrade", "websocket") || !has_token("connection", "upgrade") {
        return Err(Refusal::new(
            400,
            "bad_request",
            "expected a WebSocket upgrade (Connection: Upgrade, Upgrade: websocket)",
        ));
    }
    if req.version != Some(1) {
        return Err(Refusal::new(
            400,
            "bad_request",
            "a WebSocket upgrade needs HTTP/1.1",
        ));
    }
    if header("sec-websocket-version").map(str::trim) != Some("13") {
        return Err(Refusal::new(
            400,
            "bad_request",
            "unsupported Sec-WebSocket-Version: this server speaks 13",
        ));
    }
    let Some(key) = header("sec-websocket-key")
        .map(str::trim)
        .filter(|k| !k.is_empty())
    else {
        return Err(Refusal::new(
            400,
            "bad_request",
            "missing Sec-WebSocket-Key",
        ));
    };
    if !is_websocket_key(key) {
        return Err(Refusal::new(
            400,
            "bad_request",
            "Sec-WebSocket-Key must be the base64 of 16 bytes (RFC 6455)",
        ));
    }
    let query = req
        .path
        .and_then(|p| p.split_once('?'))
        .map_or("", |(_, q)| q);
    let WsQuery { token, resume } = serde_urlencoded::from_str(query)
        .map_err(|e| Refusal::new(400, "bad_request", format!("bad query string: {e}")))?;
    Ok(UpgradeHead {
        len,
        authorization: header("authorization").map(str::to_owned),
        forwarded: values("forwarded"),
        forwarded_for: values("x-forwarded-for"),
        token,
        resume,
        key: key.to_owned(),
    })
}

/// Reads an upgrade request's head as the node does, without a node: the fuzz target of the
/// WebSocket edge. `Ok` carries the head's length.
pub(crate) fn read_upgrade_head(head: &[u8]) -> Result<usize, (u16, &'static str)> {
    parse_upgrade(head)
        .map(|h| h.len)
        .map_err(|r| (r.status, r.code))
}

/// Checks an upgrade request: a WebSocket handshake, a valid player token, and a node that takes
/// the connection.
fn accept(head: &[u8], edge: &Edge, peer: Option<std::net::IpAddr>) -> Result<Accepted, Refusal> {
    let UpgradeHead {
        len,
        authorization,
        forwarded,
        forwarded_for,
        token,
        resume,
        key,
    } = parse_upgrade(head)?;
    let client = peer.map(|p| {
        edge.trusted.client(
            p,
            forwarded.iter().map(String::as_str),
            forwarded_for.iter().map(String::as_str),
        )
    });
    let ident = match edge
        .auth
        .identify(authorization.as_deref(), token.as_deref())
    {
        Ok(i) => i,
        Err(e) => {
            metrics::counter!("warren_connections_rejected_total", "reason" => "unauthorized")
                .increment(1);
            let msg = match e {
                AuthError::Missing => {
                    "missing token: send Authorization: Bearer <jwt> or ?token=<jwt>".to_owned()
                }
                AuthError::Invalid(m) => m,
            };
            return Err(Refusal::new(401, "unauthorized", msg));
        }
    };
    if edge.ctx.is_isolated() {
        metrics::counter!("warren_connections_rejected_total", "reason" => "isolated").increment(1);
        return Err(Refusal::new(
            503,
            "isolated",
            "this node is cut off from the majority of its cluster; connect to another",
        ));
    }
    if edge.ctx.is_draining() && resume.is_none() {
        metrics::counter!("warren_connections_rejected_total", "reason" => "draining").increment(1);
        return Err(Refusal::new(
            503,
            "draining",
            "this node is draining; connect to another",
        ));
    }
    Ok(Accepted {
        client,
        ident,
        resume,
        key,
        rest: head[len..].to_vec(),
    })
}

/// Whether `key` is the base64 of 16 bytes, as RFC 6455 requires of `Sec-WebSocket-Key`: 22
/// characters of the base64 alphabet, the last of which carries no bits past the 16th byte, then
/// `==`.
fn is_websocket_key(key: &str) -> bool {
    let b = key.as_bytes();
    let alphabet = |c: &u8| c.is_ascii_alphanumeric() || *c == b'+' || *c == b'/';
    b.len() == 24
        && b[22..] == *b"=="
        && b[..22].iter().all(alphabet)
        && matches!(b[21], b'A' | b'Q' | b'g' | b'w')
}

#[cfg(test)]
mod key_tests {
    #[test]
    fn a_key_is_the_base64_of_sixteen_bytes() {
        assert!(super::is_websocket_key("dGhlIHNhbXBsZSBub25jZQ=="));
        for bad in [
            "",
            "abc",
            "dGhlIHNhbXBsZSBub25jZQ",
            "dGhlIHNhbXBsZSBub25jZR==",
            "dGhlIHNhbXBsZSBub25j*Q==",
            "dGhlIHNhbXBsZSBub25jZQ===",
        ] {
            assert!(!super::is_websocket_key(bad), "{bad}");
        }
    }
}
