//! One task per WebSocket connection: it owns the socket, reads frames (size-limited, text only,
//! rate-limited, decoded once), hands realtime inputs straight to their room when it may
//! (`warren_actors::inputs`) and everything else to the session, writes what the session and rooms
//! queued for it, pings, and closes with the right code on every exit path.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use actix_ws::{AggregatedMessage, CloseReason, ProtocolError};
use ractor::{ActorRef, call_t};
use serde::Deserialize;
use tracing::{debug, warn};
use warren_actors::inputs::{FastInput, QueuedInput};
use warren_actors::node::Conn;
use warren_actors::session::SessionMsg;
use warren_actors::session_host::SessionHostMsg;
use warren_actors::settings::Limits;
use warren_protocol::{
    ClientRequest, CloseCode, DecodeError, ErrorCode, PlayerId, Request, decode_client_frame,
};

use super::Edge;
use super::auth::{AuthError, Identity};
use super::http::error;

#[derive(Deserialize)]
pub(crate) struct WsQuery {
    token: Option<String>,
    resume: Option<String>,
}

/// `GET /v1/ws`.
pub(crate) async fn upgrade(
    req: HttpRequest,
    body: web::Payload,
    query: web::Query<WsQuery>,
    edge: web::Data<Edge>,
) -> Result<HttpResponse, actix_web::Error> {
    let WsQuery { token, resume } = query.into_inner();
    let ident = match edge.auth.identify(&req, token.as_deref()) {
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
            return Ok(error(StatusCode::UNAUTHORIZED, "unauthorized", &msg));
        }
    };
    let limits = edge.ctx.settings.load().limits.clone();
    if edge.ctx.is_isolated() {
        metrics::counter!("warren_connections_rejected_total", "reason" => "isolated").increment(1);
        return Ok(error(
            StatusCode::SERVICE_UNAVAILABLE,
            "isolated",
            "this node is cut off from the majority of its cluster; connect to another",
        ));
    }
    if edge.ctx.is_draining() && resume.is_none() {
        metrics::counter!("warren_connections_rejected_total", "reason" => "draining").increment(1);
        return Ok(error(
            StatusCode::SERVICE_UNAVAILABLE,
            "draining",
            "this node is draining; connect to another",
        ));
    }
    // Reserve the slot before upgrading so concurrent upgrades cannot overshoot the cap.
    if edge.connections.fetch_add(1, Ordering::AcqRel) >= limits.max_connections {
        edge.connections.fetch_sub(1, Ordering::AcqRel);
        metrics::counter!("warren_connections_rejected_total", "reason" => "capacity").increment(1);
        return Ok(error(
            StatusCode::SERVICE_UNAVAILABLE,
            "at_capacity",
            "this node is at its connection limit",
        ));
    }
    let slot = Slot(edge.clone().into_inner());
    let (response, session, stream) = match actix_ws::handle(&req, body) {
        Ok(parts) => parts,
        Err(e) => {
            drop(slot);
            return Err(e);
        }
    };
    let stream = stream
        .max_frame_size(limits.max_frame_bytes)
        .aggregate_continuations()
        .max_continuation_size(limits.max_frame_bytes);
    metrics::gauge!("warren_connections").increment(1.0);
    let conn_id = edge.conn_ids.fetch_add(1, Ordering::Relaxed);
    // No span per connection: entering it on every poll of the socket task cost more than the
    // frame's own work. The task's log lines name the player and the connection instead.
    actix_web::rt::spawn(run(slot, session, stream, ident, resume, limits, conn_id));
    Ok(response)
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

    fn add(&mut self) {
        self.n += 1;
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

async fn run(
    slot: Slot,
    mut ws: actix_ws::Session,
    mut stream: actix_ws::AggregatedMessageStream,
    ident: Identity,
    resume: Option<String>,
    limits: Limits,
    conn_id: u64,
) {
    let edge = slot.0.clone();
    let (conn, mut outbound, closer) = Conn::new(conn_id, limits.max_outbound_queue);
    let fast = conn.fast.clone();
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
    let session: ActorRef<SessionMsg> = match connect {
        Ok(Some(s)) => s,
        other => {
            warn!(player = %ident.player, ok = other.is_ok(), "no session for connection");
            close(ws, CloseCode::Internal.code()).await;
            finish(&slot);
            return;
        }
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
                    r = ws.text(frame) => r.is_ok(),
                    code = closer.wait() => break Exit::Close(code),
                };
                if !sent {
                    break Exit::Gone;
                }
                sent_total.add();
            }
            item = stream.recv() => {
                let Some(item) = item else { break Exit::Gone };
                last_seen = Instant::now();
                match item {
                    Ok(AggregatedMessage::Text(text)) => {
                        received_total.add();
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
                    Ok(AggregatedMessage::Binary(_)) => break Exit::Close(CloseCode::Binary.code()),
                    Ok(AggregatedMessage::Ping(b)) => {
                        if ws.pong(&b).await.is_err() {
                            break Exit::Gone;
                        }
                    }
                    Ok(AggregatedMessage::Pong(_)) => {}
                    Ok(AggregatedMessage::Close(_)) => break Exit::Close(CloseCode::Normal.code()),
                    Err(ProtocolError::Overflow) => break Exit::Close(CloseCode::TooLarge.code()),
                    Err(ProtocolError::Io(e)) if e.to_string().contains("maximum continuation size") => {
                        break Exit::Close(CloseCode::TooLarge.code());
                    }
                    Err(e) => {
                        debug!(conn = conn_id, error = %e, "websocket protocol error");
                        break Exit::Close(1002);
                    }
                }
            }
            _ = heartbeat.tick() => {
                received_total.flush();
                sent_total.flush();
                if last_seen.elapsed() >= hb * 2 {
                    break Exit::Close(CloseCode::HeartbeatTimeout.code());
                }
                if ws.ping(b"").await.is_err() {
                    break Exit::Gone;
                }
            }
        }
    };
    let _ = session.cast(SessionMsg::ConnClosed(conn_id));
    if let Exit::Close(code) = exit {
        if code != CloseCode::Normal.code() {
            metrics::counter!("warren_closes_total", "code" => code.to_string()).increment(1);
        }
        debug!(player = %ident.player, conn = conn_id, code, "closing connection");
        close(ws, code).await;
    }
    finish(&slot);
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

/// Sends the close frame, bounded in time.
async fn close(ws: actix_ws::Session, code: u16) {
    let reason = CloseReason {
        code: code.into(),
        description: Some(reason_text(code).into()),
    };
    let _ = tokio::time::timeout(CLOSE_FLUSH, ws.close(Some(reason))).await;
}

fn reason_text(code: u16) -> &'static str {
    [
        CloseCode::Normal,
        CloseCode::Binary,
        CloseCode::TooLarge,
        CloseCode::Internal,
        CloseCode::HeartbeatTimeout,
        CloseCode::Draining,
        CloseCode::Replaced,
        CloseCode::TooSlow,
        CloseCode::RateLimited,
    ]
    .into_iter()
    .find(|c| c.code() == code)
    .map_or("protocol error", CloseCode::reason)
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
