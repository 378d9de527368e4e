//! The listener's front: every accepted connection comes here first. It reads the request line and
//! sends `GET /v1/ws` to the WebSocket edge (`super::ws`), which owns its socket from the handshake
//! on; every other request goes to actix-web's HTTP/1 service on the same connection, with the bytes
//! already read replayed in front of the socket.
//!
//! A WebSocket upgrade can also come later on a kept-alive connection: proxies (ingress-nginx with
//! its upstream keepalive pool, HAProxy's `http-reuse`) send it on an upstream connection that
//! already carried plain requests. actix-http hands any request with `Upgrade: websocket` to
//! [`upgrade`] with the connection and the bytes it read past the head; the WebSocket edge takes
//! the connection from there exactly as if the upgrade had been its first request.
//!
//! The WebSocket path does not go through actix-http's dispatcher, which allocates an 8 KiB read and
//! an 8 KiB write buffer per connection for as long as the connection lives (BENCHMARKS.md, "Idle
//! sessions"); a WebSocket connection here holds only its own small buffers.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_codec::Framed;
use actix_http::{HttpService, KeepAlive, Method, Protocol, Request, Version, h1};
use actix_service::{
    IntoServiceFactory as _, Service, ServiceFactory, fn_factory, fn_service, map_config,
};
use actix_web::dev::AppConfig;
use actix_web::{App, HttpMessage as _, web};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tracing::debug;

use super::Edge;

/// The most a request line may take before the connection is answered 414.
const MAX_REQUEST_LINE: usize = 8 * 1024;

/// How long a client may take to send its request line (and, for `/v1/ws`, its head).
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// The per-worker service of the node's listener: routes each connection (module doc).
pub(crate) fn service(
    edge: Arc<Edge>,
) -> impl ServiceFactory<TcpStream, Config = (), Response = (), Error = (), InitError = ()> {
    let data = web::Data::from(edge.clone());
    let keep_alive = Duration::from_millis(edge.keep_alive_ms);
    let upgrading = edge.clone();
    let http = HttpService::build()
        .keep_alive(KeepAlive::Timeout(keep_alive))
        .client_request_timeout(REQUEST_TIMEOUT)
        .client_disconnect_timeout(Duration::from_secs(1))
        .upgrade(fn_service(
            move |(req, framed): (Request, Framed<Prefixed, h1::Codec>)| {
                // Boxed: the dispatcher holds this future for the WebSocket's whole life.
                let conn = Box::pin(upgrade(req, framed, upgrading.clone()));
                async move {
                    conn.await;
                    Ok::<(), std::convert::Infallible>(())
                }
            },
        ))
        .finish(map_config(
            App::new()
                .wrap(actix_web::middleware::from_fn(super::http::bounded))
                // No endpoint takes more than a small JSON object.
                .app_data(web::PayloadConfig::new(16 * 1024))
                .app_data(data)
                .configure(super::http::routes)
                .into_factory(),
            |_| AppConfig::default(),
        ));
    fn_factory(move || {
        let http = http.new_service(());
        let edge = edge.clone();
        async move {
            let http = Rc::new(http.await.map_err(|e| {
                tracing::error!(error = ?e, "cannot start the HTTP service");
            })?);
            Ok(fn_service(move |io: TcpStream| {
                // Boxed: actix-server's per-connection task holds this future twice over (as
                // its argument and as the future it awaits), so it must be small.
                let conn = Box::pin(route(io, edge.clone(), http.clone()));
                async move {
                    conn.await;
                    Ok::<(), ()>(())
                }
            }))
        }
    })
}

/// Connections whose first request is a probe or a scrape ([`Line::Probe`]) held at once.
const PROBE_SLOTS: usize = 64;

/// A connection serving plain HTTP, counted against `http.max_connections` (`Edge::http_max`),
/// or against [`PROBE_SLOTS`] when it came for a probe, from its first request line until it
/// closes or becomes a WebSocket session.
pub(crate) struct HttpSlot {
    edge: Arc<Edge>,
    probe: bool,
}

impl HttpSlot {
    /// A slot, or `None` when every one is taken.
    fn take(edge: &Arc<Edge>, probe: bool) -> Option<Self> {
        use std::sync::atomic::Ordering;
        let (open, max) = if probe {
            (&edge.probes_open, PROBE_SLOTS)
        } else {
            (&edge.http_open, edge.http_max)
        };
        if open.fetch_add(1, Ordering::AcqRel) >= max {
            open.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(Self {
            edge: edge.clone(),
            probe,
        })
    }
}

impl Drop for HttpSlot {
    fn drop(&mut self) {
        let open = if self.probe {
            &self.edge.probes_open
        } else {
            &self.edge.http_open
        };
        open.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

/// Reads the request line, then hands the connection to the WebSocket edge or to actix-web.
async fn route<S>(mut io: TcpStream, edge: Arc<Edge>, http: Rc<S>)
where
    S: Service<(Prefixed, Protocol, Option<SocketAddr>), Response = ()>,
    S::Error: std::fmt::Debug,
{
    // Frames are small and latency matters more than segment count.
    let _ = io.set_nodelay(true);
    let peer = io.peer_addr().ok();
    let mut head = Vec::with_capacity(512);
    // Boxed, as the handshake is: the connection's task stays the size of its socket loop.
    let line = Box::pin(first_line(&mut io, &mut head));
    let Some(kind) = line.await else {
        return;
    };
    if kind == Line::WebSocket {
        let _ = rustix::net::sockopt::set_socket_send_buffer_size(&io, super::ws::SEND_BUFFER);
        // Counted against limits.max_connections by its handshake.
        super::ws::serve(Prefixed::new(Vec::new(), io, None), head, edge).await;
    } else {
        // Plain HTTP has a bound of its own, so that HTTP clients cannot take the descriptors
        // sessions need (nor the other way round).
        let Some(slot) = HttpSlot::take(&edge, kind == Line::Probe) else {
            metrics::counter!("warren_connections_rejected_total", "reason" => "http_capacity")
                .increment(1);
            super::http::refuse(&mut io, 503, "at_capacity", "too many HTTP connections").await;
            return;
        };
        let io = Prefixed::new(head, io, Some(slot));
        let call = Box::pin(http.call((io, Protocol::Http1, peer)));
        if let Err(e) = call.await {
            debug!(error = ?e, "http connection error");
        }
    }
}

/// What a connection's first request line asks for.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Line {
    /// `GET /v1/ws`: the WebSocket edge.
    WebSocket,
    /// `GET` of `/healthz`, `/readyz` or `/metrics`: probes and scrapes, which have HTTP slots
    /// of their own, so that a flood of other requests cannot fail a node's liveness probe.
    Probe,
    /// Any other request.
    Other,
}

/// Reads the request line within [`REQUEST_TIMEOUT`], answering 408 when it does not come.
async fn first_line(io: &mut TcpStream, head: &mut Vec<u8>) -> Option<Line> {
    match tokio::time::timeout(REQUEST_TIMEOUT, read_request_line(io, head)).await {
        Ok(Ok(line)) => line,
        Ok(Err(e)) => {
            debug!(error = %e, "connection ended before its request line");
            None
        }
        Err(_) => {
            super::http::refuse(io, 408, "request_timeout", "no request received in time").await;
            None
        }
    }
}

/// Reads into `head` until it holds a whole request line, and tells whether it asks for the
/// WebSocket edge. `None`: the client closed first, or sent a line too long to be a request line
/// (answered 414).
async fn read_request_line(io: &mut TcpStream, head: &mut Vec<u8>) -> io::Result<Option<Line>> {
    let mut searched = 0;
    loop {
        if let Some(end) = head[searched..].iter().position(|&b| b == b'\n') {
            return Ok(Some(classify(&head[..searched + end])));
        }
        searched = head.len();
        if head.len() >= MAX_REQUEST_LINE {
            super::http::refuse(io, 414, "uri_too_long", "the request line is too long").await;
            return Ok(None);
        }
        if head.capacity() == head.len() {
            head.reserve(head.len().min(MAX_REQUEST_LINE - head.len()));
        }
        if io.read_buf(head).await? == 0 {
            return Ok(None);
        }
    }
}

/// What a request line asks for, by method and path (with or without a query, in origin form or
/// absolute form: `GET http://host/v1/ws HTTP/1.1`, as a proxy may send it).
fn classify(line: &[u8]) -> Line {
    let mut parts = line.split(|&b| b == b' ');
    let (Some(b"GET"), Some(target)) = (parts.next(), parts.next()) else {
        return Line::Other;
    };
    let path = origin(target)
        .split(|&b| b == b'?')
        .next()
        .unwrap_or_default();
    match path {
        b"/v1/ws" => Line::WebSocket,
        b"/healthz" | b"/readyz" | b"/metrics" => Line::Probe,
        _ => Line::Other,
    }
}

/// `GET /v1/ws`: the request line asks for the WebSocket edge.
pub(crate) fn is_websocket(line: &[u8]) -> bool {
    classify(line) == Line::WebSocket
}

/// A request target's path and query: the target itself in origin form, what follows the
/// authority in absolute form (`http://host:port/path?query`; empty when there is no path).
fn origin(target: &[u8]) -> &[u8] {
    let lower = |n: usize| target.get(..n).map(<[u8]>::to_ascii_lowercase);
    let scheme = if lower(7).as_deref() == Some(b"http://") {
        7
    } else if lower(8).as_deref() == Some(b"https://") {
        8
    } else {
        return target;
    };
    let rest = &target[scheme..];
    rest.iter()
        .position(|&b| b == b'/' || b == b'?')
        .map_or(&[][..], |at| &rest[at..])
}

/// A request that asked for a WebSocket on a connection actix-web was serving (a later request
/// of a kept-alive connection): the WebSocket edge answers it, from the request's head as it
/// arrived and the bytes read past it. Any other path is refused.
async fn upgrade(req: Request, framed: Framed<Prefixed, h1::Codec>, edge: Arc<Edge>) {
    let parts = framed.into_parts();
    let mut io = parts.io;
    // A session from here on (or refused): its handshake counts it.
    io.slot = None;
    let _ = rustix::net::sockopt::set_socket_send_buffer_size(&io.io, super::ws::SEND_BUFFER);
    // Answers to requests pipelined ahead of the upgrade, not written yet: they go first.
    if !parts.write_buf.is_empty() {
        use tokio::io::AsyncWriteExt as _;
        if io.write_all(&parts.write_buf).await.is_err() {
            return;
        }
    }
    if req.method() != Method::GET || req.path() != "/v1/ws" {
        super::http::refuse(
            &mut io,
            404,
            "not_found",
            "WebSocket upgrades are served at GET /v1/ws",
        )
        .await;
        return;
    }
    let mut head = request_head(&req);
    head.extend_from_slice(&parts.read_buf);
    super::ws::serve(io, head, edge).await;
}

/// A parsed request's head as bytes, as the WebSocket edge reads an upgrade request.
fn request_head(req: &Request) -> Vec<u8> {
    let version = match req.version() {
        Version::HTTP_10 => "HTTP/1.0",
        _ => "HTTP/1.1",
    };
    let mut head = format!("{} {} {version}\r\n", req.method(), req.uri()).into_bytes();
    for (name, value) in req.headers() {
        head.extend_from_slice(name.as_str().as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    head.extend_from_slice(b"\r\n");
    head
}

/// A socket with bytes already read from it put back in front, and, while it serves HTTP, its
/// [`HttpSlot`].
pub(crate) struct Prefixed {
    prefix: Vec<u8>,
    at: usize,
    io: TcpStream,
    slot: Option<HttpSlot>,
}

impl Prefixed {
    fn new(prefix: Vec<u8>, io: TcpStream, slot: Option<HttpSlot>) -> Self {
        Self {
            prefix,
            at: 0,
            io,
            slot,
        }
    }

    /// The connection's peer address.
    pub(crate) fn peer_ip(&self) -> Option<std::net::IpAddr> {
        self.io.peer_addr().ok().map(|a| a.ip())
    }
}

impl AsyncRead for Prefixed {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.at < this.prefix.len() {
            let n = buf.remaining().min(this.prefix.len() - this.at);
            buf.put_slice(&this.prefix[this.at..this.at + n]);
            this.at += n;
            if this.at == this.prefix.len() {
                this.prefix = Vec::new();
                this.at = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for Prefixed {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_get_of_the_websocket_path_is_the_websocket_edge() {
        assert!(is_websocket(b"GET /v1/ws HTTP/1.1\r"));
        assert!(is_websocket(b"GET /v1/ws?token=a&resume=b HTTP/1.1\r"));
        assert!(!is_websocket(b"POST /v1/ws HTTP/1.1\r"));
        assert!(!is_websocket(b"GET /v1/wsx HTTP/1.1\r"));
        assert!(!is_websocket(b"GET /v1/ws/ HTTP/1.1\r"));
        assert!(!is_websocket(b"GET /healthz HTTP/1.1\r"));
        assert!(!is_websocket(b"garbage"));
    }

    #[test]
    fn absolute_form_targets_are_read_for_their_path() {
        assert!(is_websocket(b"GET http://example.com/v1/ws HTTP/1.1\r"));
        assert!(is_websocket(
            b"GET HTTPS://example.com:8443/v1/ws?token=a HTTP/1.1\r"
        ));
        assert!(!is_websocket(b"GET http://example.com HTTP/1.1\r"));
        assert!(!is_websocket(b"GET http://example.com?/v1/ws HTTP/1.1\r"));
        assert!(!is_websocket(b"GET http://v1/ws HTTP/1.1\r"));
        assert_eq!(origin(b"http://h/a?b"), b"/a?b");
        assert_eq!(origin(b"/v1/ws"), b"/v1/ws");
    }
}
