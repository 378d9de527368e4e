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
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::error::ProtocolError;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode as WsCloseCode;
use tokio_tungstenite::tungstenite::{Bytes, Error as WsError, Message, Utf8Bytes};
use tracing::{debug, warn};
use warren_actors::inputs::{FastInput, QueuedInput};
use warren_actors::node::Conn;
use warren_actors::session::SessionMsg;
use warren_actors::session_host::{SessionHost, SessionHostMsg};
use warren_actors::settings::Limits;
use warren_protocol::{
    ClientRequest, CloseCode, DecodeError, Outbound, PlayerId, Request, decode_client_frame,
};

use super::Edge;
use super::auth::Identity;
use super::front::Prefixed;

mod handshake;
pub(crate) use handshake::read_upgrade_head;
mod rate;

use handshake::handshake;
use rate::{Admit, RateLimit, rate_limited};

/// The socket's read chunk grows from here as frames need (tungstenite's own default is 128 KiB,
/// which an idle session would hold for nothing).
const READ_BUFFER: usize = 256;

/// Frames written before one flush: what the session and rooms queued together goes out in one
/// write.
const WRITE_BATCH: usize = 64;

/// The longest a write may wait for the client's socket, and the longest frames may wait for
/// writes without the queue ever emptying (or the heartbeat interval, if shorter).
const WRITE_STALL: Duration = Duration::from_secs(10);

/// The kernel's send buffer of a WebSocket connection, in bytes (Linux doubles it). Left to
/// autotuning it grows to megabytes, which a client reading slower than its frames come takes
/// minutes to fill: the node would hold that much for it and notice nothing.
pub(crate) const SEND_BUFFER: usize = 64 * 1024;

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

/// A reserved connection slot, released when the socket task ends.
struct Slot(Arc<Edge>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.connections.fetch_sub(1, Ordering::AcqRel);
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
        let closing = Box::pin(close(ws, CloseCode::Internal.code(), None));
        closing.await;
        finish(&slot);
        return;
    };
    debug!(player = %ident.player, conn = conn_id, "connection open");

    let hb = Duration::from_millis(limits.heartbeat_ms);
    // A write the client's socket has not taken for this long: the client is too slow (4003).
    // The node's send buffer is kept small ([`SEND_BUFFER`]), so a client that reads slower than
    // its frames come is found out within seconds rather than once the kernel's buffers fill.
    let stall = hb.min(WRITE_STALL);
    let mut behind_since: Option<Instant> = None;
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
                    () = tokio::time::sleep(stall) => break Exit::Close(CloseCode::TooSlow.code()),
                };
                match sent {
                    Ok(n) => sent_total.add_n(n),
                    Err(_) => break Exit::Gone,
                }
                // A client that keeps up empties the queue with every write; one whose frames
                // have waited for writes without a break for `stall` is too slow.
                if outbound.is_empty() {
                    behind_since = None;
                } else if behind_since.get_or_insert_with(Instant::now).elapsed() >= stall {
                    break Exit::Close(CloseCode::TooSlow.code());
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
                    // The pong tungstenite queued (one at most: a newer ping's replaces it) goes out
                    // with this flush. Pings count against the rate limit like any message; past
                    // it, the pong waits for the next write.
                    Ok(Message::Ping(_)) => {
                        match rate.admit(last_seen) {
                            Admit::Yes => {}
                            Admit::Drop => continue,
                            Admit::Close => break Exit::Close(CloseCode::RateLimited.code()),
                        }
                        let flushed = tokio::select! {
                            r = ws.flush() => r,
                            code = closer.wait() => break Exit::Close(code),
                            () = tokio::time::sleep(stall) => break Exit::Close(CloseCode::TooSlow.code()),
                        };
                        if flushed.is_err() {
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
                let pinged = tokio::select! {
                    r = ws.send(Message::Ping(Bytes::new())) => r,
                    code = closer.wait() => break Exit::Close(code),
                    () = tokio::time::sleep(stall) => break Exit::Close(CloseCode::TooSlow.code()),
                };
                if pinged.is_err() {
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
            // What was queued before the close goes first (a resumed player's `welcome` before a
            // draining node's 4001), unless the client is the reason: too slow, or silent.
            let flush =
                code != CloseCode::TooSlow.code() && code != CloseCode::HeartbeatTimeout.code();
            let closing = Box::pin(close(ws, code, flush.then_some(&mut outbound)));
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
    let host = SessionHost::of(&edge.ctx);
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

/// Sends the frames still queued (when given), then the close frame, and waits for the client's
/// answer, all bounded in time, so that the close frame is read before the socket goes away.
async fn close(
    mut ws: WebSocketStream<Prefixed>,
    code: u16,
    queued: Option<&mut warren_actors::outq::Receiver<Outbound>>,
) {
    let frame = CloseFrame {
        code: WsCloseCode::from(code),
        reason: reason_text(code).into(),
    };
    let _ = tokio::time::timeout(CLOSE_FLUSH, async {
        if let Some(q) = queued {
            while let Some(f) = q.try_recv() {
                if ws.feed(text(f)).await.is_err() {
                    return;
                }
            }
        }
        if ws.close(Some(frame)).await.is_ok() {
            while let Some(Ok(_)) = ws.next().await {}
        }
    })
    .await;
}

fn reason_text(code: u16) -> &'static str {
    CloseCode::from_code(code).map_or("closing", CloseCode::reason)
}
