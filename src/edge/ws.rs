//! The WebSocket edge. It answers `GET /v1/ws` itself (token, draining, capacity; a JSON error or
//! `101`), then runs one task per connection over tokio-tungstenite: the task owns the socket, reads
//! frames (size-limited, text only, rate-limited, decoded once), hands realtime inputs straight to
//! their room when it may (`warren_actors::inputs`) and everything else to the session, writes what
//! the session and rooms queued for it (several frames to one write), pings, and closes with the
//! right code on every exit path.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use futures_util::{SinkExt as _, StreamExt as _};
use ractor::{ActorRef, call_t};
use serde::Deserialize;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::error::ProtocolError;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode as WsCloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Bytes, Error as WsError, Message, Utf8Bytes};
use tracing::{debug, warn};
use warren_actors::inputs::{FastInput, QueuedInput};
use warren_actors::node::Conn;
use warren_actors::session::SessionMsg;
use warren_actors::session_host::SessionHostMsg;
use warren_actors::settings::Limits;
use warren_protocol::{
    ClientRequest, CloseCode, DecodeError, ErrorCode, Outbound, PlayerId, Request,
    decode_client_frame,
};

use super::Edge;
use super::auth::{AuthError, Identity};
use super::front::{Prefixed, REQUEST_TIMEOUT};
use super::http::refuse;

#[derive(Deserialize)]
struct WsQuery {
    token: Option<String>,
    resume: Option<String>,
}

/// The most a WebSocket upgrade request's head may take.
const MAX_HEAD: usize = 16 * 1024;

/// Headers read from an upgrade request; more is answered 431.
const MAX_HEADERS: usize = 64;

/// The socket's read chunk grows from here as frames need (tungstenite's own default is 128 KiB,
/// which an idle session would hold for nothing).
const READ_BUFFER: usize = 256;

/// Frames written before one flush: what the session and rooms queued together goes out in one
/// write.
const WRITE_BATCH: usize = 64;

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

/// `GET /v1/ws`: reads the rest of the request head (the request line is in `head` already),
/// answers it, and on `101` runs the connection until it ends.
pub(crate) async fn serve(io: Prefixed, head: Vec<u8>, edge: Arc<Edge>) {
    // The handshake's state is boxed so that the connection's task, which lives as long as the
    // connection, is only as large as the socket loop needs.
    let open = Box::pin(handshake(io, head, edge));
    let Some(open) = open.await else {
        return;
    };
    metrics::gauge!("warren_connections").increment(1.0);
    // No span per connection: entering it on every poll of the socket task cost more than the
    // frame's own work. The task's log lines name the player and the connection instead.
    run(open).await;
}

/// A connection past its `101`.
struct Open {
    slot: Slot,
    ws: WebSocketStream<Prefixed>,
    ident: Identity,
    resume: Option<String>,
    limits: Limits,
    conn_id: u64,
}

/// Answers the upgrade request: a JSON error, or `101` and the connection.
async fn handshake(mut io: Prefixed, mut head: Vec<u8>, edge: Arc<Edge>) -> Option<Open> {
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

/// Checks an upgrade request: a WebSocket handshake, a valid player token, and a node that takes
/// the connection.
fn accept(head: &[u8], edge: &Edge, peer: Option<std::net::IpAddr>) -> Result<Accepted, Refusal> {
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
    };
    let client = peer.map(|p| {
        edge.trusted
            .client(p, values("forwarded"), values("x-forwarded-for"))
    });
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
    let query = req
        .path
        .and_then(|p| p.split_once('?'))
        .map_or("", |(_, q)| q);
    let WsQuery { token, resume } = serde_urlencoded::from_str(query)
        .map_err(|e| Refusal::new(400, "bad_request", format!("bad query string: {e}")))?;
    let ident = match edge
        .auth
        .identify(header("authorization"), token.as_deref())
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
        key: key.to_owned(),
        rest: head[len..].to_vec(),
    })
}

/// A reserved connection slot, released when the socket task ends.
struct Slot(Arc<Edge>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.connections.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Drops further apart than this end an episode of being over the limit.
const CALM_AFTER: Duration = Duration::from_secs(1);

/// Token bucket with a record of how long the client has been over it. An episode of being over
/// the limit lasts while drops keep coming less than [`CALM_AFTER`] apart; a client that floods
/// persistently still gets an occasional message through as tokens refill, and that must not
/// reset the episode.
struct RateLimit {
    rate: f64,
    burst: f64,
    tokens: f64,
    at: Instant,
    over_since: Option<Instant>,
    last_drop: Option<Instant>,
    close_after: Duration,
}

enum Admit {
    Yes,
    Drop,
    Close,
}

impl RateLimit {
    fn new(l: &Limits) -> Self {
        let burst = f64::from(l.message_burst.max(1));
        Self {
            rate: f64::from(l.messages_per_sec),
            burst,
            tokens: burst,
            at: Instant::now(),
            over_since: None,
            last_drop: None,
            close_after: Duration::from_millis(l.rate_limit_close_ms),
        }
    }

    fn admit(&mut self, now: Instant) -> Admit {
        self.tokens =
            (self.tokens + now.duration_since(self.at).as_secs_f64() * self.rate).min(self.burst);
        self.at = now;
        if self
            .last_drop
            .is_some_and(|d| now.duration_since(d) > CALM_AFTER)
        {
            self.over_since = None;
            self.last_drop = None;
        }
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return Admit::Yes;
        }
        self.last_drop = Some(now);
        let since = *self.over_since.get_or_insert(now);
        if now.duration_since(since) >= self.close_after {
            Admit::Close
        } else {
            Admit::Drop
        }
    }
}

/// One connection's count of frames, added to a node-wide counter in batches (at the latest on the
/// next heartbeat, and when the connection ends): the node-wide counter is an atomic that every
/// socket thread would otherwise write on every frame.
struct Tally {
    counter: metrics::Counter,
    n: u64,
}

impl Tally {
    const BATCH: u64 = 32;

    fn new(counter: metrics::Counter) -> Self {
        Self { counter, n: 0 }
    }

    fn add_n(&mut self, n: u64) {
        self.n += n;
        if self.n >= Self::BATCH {
            self.flush();
        }
    }

    fn flush(&mut self) {
        if self.n > 0 {
            self.counter.increment(self.n);
            self.n = 0;
        }
    }
}

impl Drop for Tally {
    fn drop(&mut self) {
        self.flush();
    }
}

enum Exit {
    /// Close with this code.
    Close(u16),
    /// The client closed or vanished: nothing more to send.
    Gone,
}

async fn run(open: Open) {
    let Open {
        slot,
        mut ws,
        ident,
        resume,
        limits,
        conn_id,
    } = open;
    let (conn, mut outbound, closer) = Conn::new(conn_id, limits.max_outbound_queue);
    let fast = conn.fast.clone();
    let session = Box::pin(connect(&slot.0, &ident, resume, conn));
    let Some(session) = session.await else {
        let closing = Box::pin(close(ws, CloseCode::Internal.code()));
        closing.await;
        finish(&slot);
        return;
    };
    debug!(player = %ident.player, conn = conn_id, "connection open");

    let hb = Duration::from_millis(limits.heartbeat_ms);
    let mut heartbeat = tokio::time::interval_at(tokio::time::Instant::now() + hb, hb);
    let mut last_seen = Instant::now();
    let mut rate = RateLimit::new(&limits);
    // Frames sent to the session so far: the realtime input path is open only while the session
    // has handled them all.
    let mut to_session = 0u64;
    let mut received_total = Tally::new(metrics::counter!("warren_messages_received_total"));
    let mut sent_total = Tally::new(metrics::counter!("warren_messages_sent_total"));
    let exit = loop {
        tokio::select! {
            biased;
            code = closer.wait() => break Exit::Close(code),
            Some(frame) = outbound.recv() => {
                let sent = tokio::select! {
                    r = write_batch(&mut ws, frame, &mut outbound) => r,
                    code = closer.wait() => break Exit::Close(code),
                };
                match sent {
                    Ok(n) => sent_total.add_n(n),
                    Err(_) => break Exit::Gone,
                }
            }
            item = ws.next() => {
                let Some(item) = item else { break Exit::Gone };
                last_seen = Instant::now();
                match item {
                    Ok(Message::Text(text)) => {
                        received_total.add_n(1);
                        let frame = match rate.admit(last_seen) {
                            Admit::Yes => decode_client_frame(&text),
                            Admit::Close => break Exit::Close(CloseCode::RateLimited.code()),
                            Admit::Drop => Err(rate_limited(&text)),
                        };
                        let Some(frame) = fast_input(&fast, to_session, &ident.player, frame) else {
                            continue;
                        };
                        to_session += 1;
                        let msg = SessionMsg::Frame { conn_id, n: to_session, frame };
                        if session.cast(msg).is_err() {
                            break Exit::Close(CloseCode::Internal.code());
                        }
                    }
                    Ok(Message::Binary(_)) => break Exit::Close(CloseCode::Binary.code()),
                    // The pong tungstenite queued goes out with this flush.
                    Ok(Message::Ping(_)) => {
                        if ws.flush().await.is_err() {
                            break Exit::Gone;
                        }
                    }
                    Ok(Message::Pong(_) | Message::Frame(_)) => {}
                    // tungstenite queued the echo of the client's close; send it and finish.
                    Ok(Message::Close(_)) => {
                        let _ = tokio::time::timeout(CLOSE_FLUSH, ws.flush()).await;
                        break Exit::Gone;
                    }
                    Err(WsError::Capacity(_)) => break Exit::Close(CloseCode::TooLarge.code()),
                    // PROTOCOL.md ("Additions"): bad UTF-8 is a protocol violation, 1002.
                    Err(WsError::Utf8(_)) => break Exit::Close(PROTOCOL_ERROR),
                    // The client's socket ended without a close frame: nothing to answer.
                    Err(WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake)) => {
                        break Exit::Gone;
                    }
                    Err(WsError::Protocol(e)) => {
                        debug!(conn = conn_id, error = %e, "websocket protocol error");
                        break Exit::Close(PROTOCOL_ERROR);
                    }
                    Err(e) => {
                        debug!(conn = conn_id, error = %e, "websocket read failed");
                        break Exit::Gone;
                    }
                }
            }
            _ = heartbeat.tick() => {
                received_total.flush();
                sent_total.flush();
                if last_seen.elapsed() >= hb * 2 {
                    break Exit::Close(CloseCode::HeartbeatTimeout.code());
                }
                if ws.send(Message::Ping(Bytes::new())).await.is_err() {
                    break Exit::Gone;
                }
            }
        }
    };
    let _ = session.cast(SessionMsg::ConnClosed(conn_id));
    match exit {
        Exit::Gone => {
            debug!(player = %ident.player, conn = conn_id, "connection ended by the client")
        }
        Exit::Close(code) => {
            if code != CloseCode::Normal.code() {
                metrics::counter!("warren_closes_total", "code" => code.to_string()).increment(1);
            }
            debug!(player = %ident.player, conn = conn_id, code, "closing connection");
            let closing = Box::pin(close(ws, code));
            closing.await;
        }
    }
    finish(&slot);
}

/// The player's session for this connection: a new one, or the one `resume` names.
async fn connect(
    edge: &Edge,
    ident: &Identity,
    resume: Option<String>,
    conn: Conn,
) -> Option<ActorRef<SessionMsg>> {
    let host = edge.ctx.hosts().sessions.clone();
    let connect = call_t!(
        host,
        |reply| SessionHostMsg::Connect {
            player: ident.player.clone(),
            name: ident.name.clone(),
            mmr: ident.mmr,
            resume,
            conn,
            reply,
        },
        5000
    );
    match connect {
        Ok(Some(s)) => Some(s),
        other => {
            warn!(player = %ident.player, ok = other.is_ok(), "no session for connection");
            None
        }
    }
}

/// RFC 6455 close code for a frame that breaks the WebSocket protocol.
const PROTOCOL_ERROR: u16 = CloseCode::ProtocolError as u16;

/// Writes `first` and whatever else is queued already (up to [`WRITE_BATCH`] frames), then
/// flushes once: one write for all of them. Gives the number of frames written.
async fn write_batch(
    ws: &mut WebSocketStream<Prefixed>,
    first: Outbound,
    outbound: &mut warren_actors::outq::Receiver<Outbound>,
) -> Result<u64, WsError> {
    ws.feed(text(first)).await?;
    let mut n = 1;
    while n < WRITE_BATCH as u64 {
        let Some(frame) = outbound.try_recv() else {
            break;
        };
        ws.feed(text(frame)).await?;
        n += 1;
    }
    ws.flush().await?;
    Ok(n)
}

/// A queued frame as a text message, without copying it or checking its UTF-8 again: a room's
/// `state` is one buffer shared by every recipient, and each would otherwise scan it once more.
fn text(frame: Outbound) -> Message {
    // SAFETY: `Outbound` is a `ByteString`, whose bytes are UTF-8 by construction.
    Message::Text(unsafe { Utf8Bytes::from_bytes_unchecked(frame.into_bytes()) })
}

/// Queues an input without `rid` straight into its realtime room when the connection's fast path
/// is open ([`warren_actors::inputs`]); gives back every other frame, and an input the room's box
/// refused, for the session.
fn fast_input(
    fast: &FastInput,
    to_session: u64,
    player: &PlayerId,
    frame: Result<ClientRequest, DecodeError>,
) -> Option<Result<ClientRequest, DecodeError>> {
    let (seq, data) = match frame {
        Ok(ClientRequest {
            rid: None,
            req: Request::Input { seq, data },
        }) => (seq, data),
        other => return Some(other),
    };
    let queued = QueuedInput {
        player: player.clone(),
        seq,
        data,
    };
    let refused = match fast.current(to_session) {
        Some(b) => b.push(queued).err()?,
        None => queued,
    };
    Some(Ok(ClientRequest {
        rid: None,
        req: Request::Input {
            seq: refused.seq,
            data: refused.data,
        },
    }))
}

fn finish(_slot: &Slot) {
    metrics::gauge!("warren_connections").decrement(1.0);
}

/// How long a closing connection may take to flush its close frame. A client that stalled (the 4003
/// case) must read what is queued before it, so this is generous, yet bounded: a client that never
/// reads again does not hold the task.
const CLOSE_FLUSH: Duration = Duration::from_secs(5);

/// Sends the close frame and waits for the client's answer, bounded in time, so that the close
/// frame is read before the socket goes away.
async fn close(mut ws: WebSocketStream<Prefixed>, code: u16) {
    let frame = CloseFrame {
        code: WsCloseCode::from(code),
        reason: reason_text(code).into(),
    };
    let _ = tokio::time::timeout(CLOSE_FLUSH, async {
        if ws.close(Some(frame)).await.is_ok() {
            while let Some(Ok(_)) = ws.next().await {}
        }
    })
    .await;
}

fn reason_text(code: u16) -> &'static str {
    CloseCode::from_code(code).map_or("closing", CloseCode::reason)
}

/// The `rate_limited` error for a dropped frame, with its `rid` when one can be read.
fn rate_limited(text: &str) -> DecodeError {
    let rid = match decode_client_frame(text) {
        Ok(r) => r.rid,
        Err(e) => e.rid,
    };
    DecodeError {
        rid,
        code: ErrorCode::RateLimited,
        message: "rate limit exceeded; message dropped".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(rate: u32, burst: u32, close_ms: u64) -> Limits {
        Limits {
            max_frame_bytes: 65536,
            messages_per_sec: rate,
            message_burst: burst,
            rate_limit_close_ms: close_ms,
            max_outbound_queue: 16,
            max_connections: 1,
            heartbeat_ms: 1000,
        }
    }

    #[test]
    fn persistent_flooding_closes_even_as_tokens_trickle_in() {
        let mut r = RateLimit::new(&limits(10, 10, 5000));
        let t0 = Instant::now();
        let mut closed_at = None;
        // 100 messages a second for 10 s.
        for i in 0..1000u64 {
            let now = t0 + Duration::from_millis(i * 10);
            if let Admit::Close = r.admit(now) {
                closed_at = Some(i * 10);
                break;
            }
        }
        let at = closed_at.expect("closed");
        assert!((5000..6000).contains(&at), "closed at {at} ms");
    }

    #[test]
    fn a_burst_then_calm_never_closes() {
        let mut r = RateLimit::new(&limits(10, 10, 500));
        let t0 = Instant::now();
        for round in 0..5u64 {
            let start = t0 + Duration::from_secs(round * 3);
            for i in 0..30u64 {
                assert!(!matches!(
                    r.admit(start + Duration::from_millis(i)),
                    Admit::Close
                ));
            }
        }
    }
}
