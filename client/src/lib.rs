//! warren-client: a typed Rust client of Warren's WebSocket protocol (PROTOCOL.md), for game
//! clients written in Rust (Bevy, macroquad, a headless bot) and for tools.
//!
//! [`connect`] opens a connection and gives two halves:
//! - a [`Client`], cheap to clone, that sends requests: each request with a `rid` is a future
//!   resolving to its `ok` fields or its error ([`Client::request`]); inputs without a `rid` are
//!   sent one way ([`Client::send`]);
//! - a [`Pushes`] stream of everything else the server sends (`room_state`, `room_event`, `state`,
//!   `chat`, `match_found`, `recovery_done`, errors without a `rid`), ending with the close.
//!
//! Resume after a dropped connection with the token of the last `welcome`
//! ([`Client::resume_token`]): `connect(url, token, Some(resume))`.
//!
//! Underneath is a [`Connection`]: one WebSocket, frame by frame, in the order the server sent
//! them. Tools that need every frame in order, or that send frames of their own (a load tester,
//! tests of the server's handling of bad input), use it directly; [`Connection::split`] turns it
//! into a `Client` and its `Pushes`.
//!
//! ```no_run
//! # async fn play() -> Result<(), warren_client::ClientError> {
//! use warren_client::{Push, Request, connect};
//! let (client, mut pushes) = connect("ws://127.0.0.1:7350", "<jwt>", None).await?;
//! let room = client.create_room("dice", Default::default()).await?;
//! client.request(Request::Ready).await?;
//! while let Some(push) = pushes.next().await {
//!     match push {
//!         Push::Message(m) => println!("{m:?}"),
//!         Push::Closed { code, .. } => println!("closed with {code:?}"),
//!     }
//! }
//! # let _ = room;
//! # Ok(())
//! # }
//! ```

#![cfg_attr(test, allow(clippy::unwrap_used))]

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{Map, Value};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub use tokio_tungstenite::tungstenite::Message as WsMessage;
pub use warren_protocol::{
    ClientRequest, CloseCode, ErrorCode, GameName, PlayerId, Request, RoomId, ServerMessage,
    TicketId, Welcome,
};

/// Pushes buffered before the client reads them; past it the connection stops reading, and the
/// server, whose own queue then fills, closes it with 4003 (too slow).
pub const PUSH_BUFFER: usize = 4096;

/// What can go wrong.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The WebSocket could not be opened (refused upgrades carry the server's status).
    #[error("cannot connect: {0}")]
    Connect(String),
    /// The server answered with something other than a `welcome` first.
    #[error("no welcome: {0}")]
    NoWelcome(String),
    /// The server closed the connection instead of welcoming it (a bad token is 4001-4004 or
    /// 1008; a draining node 4001; PROTOCOL.md "Close codes"), or the connection ended (no code).
    #[error("closed before the welcome: {code:?} {reason}")]
    Rejected {
        /// Close code, if the server sent a close frame.
        code: Option<u16>,
        /// Its reason text.
        reason: String,
    },
    /// The server refused the request.
    #[error("{code:?}: {message}")]
    Refused {
        /// The error code.
        code: ErrorCode,
        /// The server's explanation.
        message: String,
    },
    /// The connection ended before the answer came.
    #[error("the connection is closed")]
    Closed,
}

/// What the server pushes, and how the connection ended.
#[derive(Clone, Debug, PartialEq)]
pub enum Push {
    /// A message that answers no request.
    Message(ServerMessage),
    /// The connection ended: the server's close code (PROTOCOL.md "Close codes") if it sent one.
    Closed {
        /// Close code.
        code: Option<u16>,
        /// Its reason text.
        reason: String,
    },
}

/// The stream of pushes of one connection.
pub struct Pushes {
    rx: mpsc::Receiver<Push>,
}

impl Pushes {
    /// The next push; `None` after [`Push::Closed`].
    pub async fn next(&mut self) -> Option<Push> {
        self.rx.recv().await
    }
}

type Waiter = oneshot::Sender<Result<Map<String, Value>, ClientError>>;

/// The requests waiting for their answers; `None` once the connection ended (a request made after
/// that fails at once: checked under the same lock the connection's end takes, so no request can
/// slip in between the end and the failing of the waiting ones and wait for ever).
type Pending = Arc<Mutex<Option<HashMap<u64, Waiter>>>>;

/// Sends requests on one connection. Clones share it.
#[derive(Clone)]
pub struct Client {
    out: mpsc::UnboundedSender<Message>,
    pending: Pending,
    next_rid: Arc<AtomicU64>,
    welcome: Arc<Welcome>,
}

/// Opens a connection to the node at `url` (`ws://host:port` or `wss://…`; the path `/v1/ws` is
/// added unless given) as the player of `token`, resuming a session with `resume` when given.
/// `wss://` trusts the public roots (webpki-roots); see [`connect_with`] for others.
pub async fn connect(
    url: &str,
    token: &str,
    resume: Option<&str>,
) -> Result<(Client, Pushes), ClientError> {
    connect_with(url, token, resume, None).await
}

/// [`connect`], with the TLS configuration of `wss://` given (a private CA, a pinned
/// certificate).
pub async fn connect_with(
    url: &str,
    token: &str,
    resume: Option<&str>,
    tls: Option<Arc<rustls::ClientConfig>>,
) -> Result<(Client, Pushes), ClientError> {
    Ok(Connection::open(url, token, resume, tls).await?.split())
}

/// A guest token for a player named `name`, from the node at `http://host:port`
/// (`POST /v1/auth/guest`): what a game without accounts of its own connects with. Plain HTTP only
/// (a node behind TLS mints guests through its HTTPS front; use an HTTP client there).
pub async fn guest(base: &str, name: &str) -> Result<String, ClientError> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let fail = |what: String| ClientError::Connect(format!("guest token from {base}: {what}"));
    let host = base
        .strip_prefix("http://")
        .ok_or_else(|| fail("only http:// URLs".into()))?
        .trim_end_matches('/');
    let body = serde_json::json!({ "name": name }).to_string();
    let request = format!(
        "POST /v1/auth/guest HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut stream = TcpStream::connect(host)
        .await
        .map_err(|e| fail(e.to_string()))?;
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| fail(e.to_string()))?;
    let mut response = Vec::new();
    stream
        .take(64 * 1024)
        .read_to_end(&mut response)
        .await
        .map_err(|e| fail(e.to_string()))?;
    let response = String::from_utf8_lossy(&response);
    let (head, body) = response
        .split_once("\r\n\r\n")
        .ok_or_else(|| fail("no HTTP response".into()))?;
    if !head.starts_with("HTTP/1.1 200") {
        return Err(fail(head.lines().next().unwrap_or_default().to_owned()));
    }
    let v: Value = serde_json::from_str(body).map_err(|e| fail(e.to_string()))?;
    v.get("token")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| fail(format!("no token in {body}")))
}

/// One frame the server sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    /// A text frame: one JSON message ([`ServerMessage::decode`] reads it).
    Text(String),
    /// The server's close frame: its code, if any, and reason.
    Closed {
        /// Close code.
        code: Option<u16>,
        /// Its reason text.
        reason: String,
    },
    /// The connection ended without a close frame (the server went away).
    Ended,
}

/// One connection, frame by frame, after its `welcome`. Pings are answered as frames are read.
pub struct Connection<S = MaybeTlsStream<TcpStream>> {
    ws: WebSocketStream<S>,
    welcome: Welcome,
    welcome_text: String,
}

impl Connection {
    /// Opens a connection as [`connect_with`] does, and waits for its `welcome`.
    pub async fn open(
        url: &str,
        token: &str,
        resume: Option<&str>,
        tls: Option<Arc<rustls::ClientConfig>>,
    ) -> Result<Self, ClientError> {
        let base = url.trim_end_matches('/');
        let mut target = if base.ends_with("/v1/ws") {
            base.to_owned()
        } else {
            format!("{base}/v1/ws")
        };
        if let Some(r) = resume {
            target.push_str("?resume=");
            target.push_str(&encode_query(r));
        }
        let mut request = target
            .into_client_request()
            .map_err(|e| ClientError::Connect(e.to_string()))?;
        let bearer = HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|e| ClientError::Connect(e.to_string()))?;
        request.headers_mut().insert("authorization", bearer);
        let connector = tls.map(tokio_tungstenite::Connector::Rustls);
        let (ws, _) =
            tokio_tungstenite::connect_async_tls_with_config(request, None, true, connector)
                .await
                .map_err(|e| ClientError::Connect(e.to_string()))?;
        Self::over(ws).await
    }
}

impl<S> Connection<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    /// A connection on a WebSocket the caller opened (its own socket, address or proxy; the token
    /// in the query): waits for the `welcome`.
    pub async fn over(mut ws: WebSocketStream<S>) -> Result<Self, ClientError> {
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(t))) => {
                    return match ServerMessage::decode(&t) {
                        Ok(ServerMessage::Welcome(welcome)) => Ok(Self {
                            ws,
                            welcome,
                            welcome_text: t.to_string(),
                        }),
                        _ => Err(ClientError::NoWelcome(t.to_string())),
                    };
                }
                Some(Ok(Message::Close(c))) => {
                    return Err(ClientError::Rejected {
                        code: c.as_ref().map(|c| u16::from(c.code)),
                        reason: c.map_or_else(String::new, |c| c.reason.to_string()),
                    });
                }
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => {
                    return Err(ClientError::Rejected {
                        code: None,
                        reason: String::new(),
                    });
                }
            }
        }
    }

    /// The connection's `welcome`.
    pub fn welcome(&self) -> &Welcome {
        &self.welcome
    }

    /// The `welcome` as the server sent it.
    pub fn welcome_text(&self) -> &str {
        &self.welcome_text
    }

    /// Sends one text frame as given (a request made elsewhere, or one that is wrong on purpose).
    pub async fn send_text(&mut self, text: impl Into<String>) -> Result<(), ClientError> {
        self.send_frame(Message::text(text.into())).await
    }

    /// Sends a request.
    pub async fn send(&mut self, req: &ClientRequest) -> Result<(), ClientError> {
        self.send_text(req.encode()).await
    }

    /// Sends any WebSocket frame (binary, fragments, control frames: for tests of the server).
    pub async fn send_frame(&mut self, frame: Message) -> Result<(), ClientError> {
        self.ws.send(frame).await.map_err(|_| ClientError::Closed)
    }

    /// The next frame; pings and binary frames are skipped (pings are answered).
    pub async fn next(&mut self) -> Frame {
        loop {
            match self.ws.next().await {
                Some(Ok(Message::Text(t))) => return Frame::Text(t.to_string()),
                Some(Ok(Message::Close(c))) => {
                    return Frame::Closed {
                        code: c.as_ref().map(|c| u16::from(c.code)),
                        reason: c.map_or_else(String::new, |c| c.reason.to_string()),
                    };
                }
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return Frame::Ended,
            }
        }
    }

    /// Sends the close frame: 1000 (normal) with `reason`.
    pub async fn close(&mut self, reason: &str) {
        let frame = tokio_tungstenite::tungstenite::protocol::CloseFrame {
            code: CloseCode::Normal.code().into(),
            reason: reason.to_owned().into(),
        };
        let _ = self.ws.close(Some(frame)).await;
    }

    /// The WebSocket itself.
    pub fn into_inner(self) -> WebSocketStream<S> {
        self.ws
    }

    /// The typed client and its pushes, the connection handed to a task of their own.
    pub fn split(self) -> (Client, Pushes) {
        let Self {
            mut ws, welcome, ..
        } = self;
        let (out, mut outgoing) = mpsc::unbounded_channel::<Message>();
        let (push_tx, rx) = mpsc::channel(PUSH_BUFFER);
        let pending: Pending = Arc::new(Mutex::new(Some(HashMap::new())));
        let client = Client {
            out,
            pending: pending.clone(),
            next_rid: Arc::new(AtomicU64::new(1)),
            welcome: Arc::new(welcome),
        };
        // The connection's task: writes what the client queues, reads and dispatches what the
        // server sends (answering pings as it reads), and fails every waiting request when it
        // ends.
        tokio::spawn(async move {
            // Set once this side sent its close: the connection then ends with that code.
            let mut closing: Option<u16> = None;
            let closed = loop {
                tokio::select! {
                    msg = outgoing.recv(), if closing.is_none() => match msg {
                        Some(m) => {
                            if matches!(m, Message::Close(_)) {
                                closing = Some(CloseCode::Normal.code());
                            }
                            if ws.send(m).await.is_err() {
                                break (closing, String::new());
                            }
                        }
                        // Every `Client` is gone: close normally.
                        None => {
                            let _ = ws.close(None).await;
                            break (Some(CloseCode::Normal.code()), String::new());
                        }
                    },
                    frame = ws.next() => match frame {
                        Some(Ok(Message::Text(t))) => {
                            let Ok(msg) = ServerMessage::decode(&t) else { continue };
                            if let Some(push) = dispatch(&pending, msg)
                                && push_tx.send(Push::Message(push)).await.is_err()
                            {
                                // Nobody reads the pushes any more; requests still work.
                            }
                        }
                        Some(Ok(Message::Close(c))) => {
                            break c.map_or((closing, String::new()), |c| (Some(u16::from(c.code)), c.reason.to_string()));
                        }
                        Some(Ok(_)) => {}
                        Some(Err(_)) | None => break (closing, String::new()),
                    },
                }
            };
            let waiting = lock(&pending).take().unwrap_or_default();
            for (_, waiter) in waiting {
                let _ = waiter.send(Err(ClientError::Closed));
            }
            let _ = push_tx
                .send(Push::Closed {
                    code: closed.0,
                    reason: closed.1,
                })
                .await;
        });
        (client, Pushes { rx })
    }
}

/// Hands a reply to its waiting request; anything else is a push.
fn dispatch(pending: &Pending, msg: ServerMessage) -> Option<ServerMessage> {
    let (rid, answer) = match msg {
        ServerMessage::Ok { rid, fields } => (rid, Ok(fields)),
        ServerMessage::Error {
            rid: Some(rid),
            code,
            message,
        } => (rid, Err(ClientError::Refused { code, message })),
        other => return Some(other),
    };
    let waiter = lock(pending).as_mut().and_then(|p| p.remove(&rid));
    if let Some(waiter) = waiter {
        let _ = waiter.send(answer);
    }
    None
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Percent-encodes a query value (resume tokens are base64url with a dot; this keeps any value safe).
fn encode_query(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

impl Client {
    /// The connection's `welcome`.
    pub fn welcome(&self) -> &Welcome {
        &self.welcome
    }

    /// The token to resume this session with on the next connection.
    pub fn resume_token(&self) -> &str {
        &self.welcome.resume
    }

    /// Sends a request with a fresh `rid` and waits for its answer: the `ok`'s fields, or the
    /// server's refusal.
    pub async fn request(&self, req: Request) -> Result<Map<String, Value>, ClientError> {
        let rid = self.next_rid.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        match lock(&self.pending).as_mut() {
            Some(p) => p.insert(rid, tx),
            None => return Err(ClientError::Closed),
        };
        let frame = ClientRequest {
            rid: Some(rid),
            req,
        }
        .encode();
        if self.out.send(Message::text(frame)).is_err() {
            if let Some(p) = lock(&self.pending).as_mut() {
                p.remove(&rid);
            }
            return Err(ClientError::Closed);
        }
        rx.await.unwrap_or(Err(ClientError::Closed))
    }

    /// Sends a request without a `rid`: no answer (its errors come as pushes). For realtime
    /// inputs.
    pub fn send(&self, req: Request) -> Result<(), ClientError> {
        let frame = ClientRequest { rid: None, req }.encode();
        self.out
            .send(Message::text(frame))
            .map_err(|_| ClientError::Closed)
    }

    /// `create_room`: the new room's id (its `room_state` follows as a push).
    pub async fn create_room(
        &self,
        game: &str,
        params: Map<String, Value>,
    ) -> Result<RoomId, ClientError> {
        let ok = self
            .request(Request::CreateRoom {
                game: game.into(),
                params,
                private: false,
            })
            .await?;
        Ok(RoomId::new(
            ok.get("room").and_then(Value::as_str).unwrap_or_default(),
        ))
    }

    /// `join_room` (its `room_state` follows as a push).
    pub async fn join_room(&self, room: &RoomId) -> Result<(), ClientError> {
        self.request(Request::JoinRoom { room: room.clone() })
            .await
            .map(drop)
    }

    /// `input` with a `rid`: resolves once the room applied it (or refused it).
    pub async fn input(&self, data: Map<String, Value>) -> Result<(), ClientError> {
        self.request(Request::Input {
            data: warren_protocol::JsonObject::from_map(&data),
            seq: None,
        })
        .await
        .map(drop)
    }

    /// `queue`: the ticket.
    pub async fn queue(&self, game: &str, mode: &str) -> Result<TicketId, ClientError> {
        let ok = self
            .request(Request::Queue {
                game: game.into(),
                mode: mode.into(),
            })
            .await?;
        Ok(TicketId::new(
            ok.get("ticket").and_then(Value::as_str).unwrap_or_default(),
        ))
    }

    /// Closes the connection normally (1000). Waiting requests fail with [`ClientError::Closed`].
    pub fn close(&self) {
        let _ = self.out.send(Message::Close(None));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_go_to_their_requests_and_the_rest_is_pushed() {
        let pending: Pending = Arc::new(Mutex::new(Some(HashMap::new())));
        let (tx, mut rx) = oneshot::channel();
        lock(&pending).as_mut().unwrap().insert(7, tx);
        let ok = ServerMessage::decode(r#"{"type":"ok","rid":7,"room":"n1.r"}"#).unwrap();
        assert_eq!(dispatch(&pending, ok), None);
        assert_eq!(rx.try_recv().unwrap().unwrap()["room"], "n1.r");
        let push =
            ServerMessage::decode(r#"{"type":"error","code":"internal","message":"x"}"#).unwrap();
        assert!(dispatch(&pending, push).is_some());
        // A reply nobody waits for is dropped, not pushed.
        let late = ServerMessage::decode(r#"{"type":"ok","rid":99}"#).unwrap();
        assert_eq!(dispatch(&pending, late), None);
    }

    #[tokio::test]
    async fn a_request_after_the_connection_ended_fails_at_once() {
        // The state the connection's task leaves when it ends, with its writer still alive
        // (the moment between the end and the task's exit).
        let (out, _still_open) = mpsc::unbounded_channel();
        let client = Client {
            out,
            pending: Arc::new(Mutex::new(None)),
            next_rid: Arc::new(AtomicU64::new(1)),
            welcome: Arc::new(
                serde_json::from_str(
                    r#"{"session":"s","player":"p","name":"p","node":"n1","resume":"r","resumed":false,"heartbeat_ms":15000}"#,
                )
                .unwrap(),
            ),
        };
        let r = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            client.request(Request::Ready),
        )
        .await;
        assert!(matches!(r, Ok(Err(ClientError::Closed))), "{r:?}");
    }

    #[test]
    fn query_values_are_encoded() {
        assert_eq!(encode_query("a.b-c_d~"), "a.b-c_d~");
        assert_eq!(encode_query("a+b/c="), "a%2Bb%2Fc%3D");
    }
}
