//! HTTP endpoints (PROTOCOL.md "HTTP endpoints").

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::json;
use warren_actors::node::{now_ms, random_token};
use warren_protocol::PlayerId;

use super::Edge;
use super::auth::AdminDenied;
use warren_cluster::membership::MemberState;

/// Routes of the node.
pub(crate) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(healthz))
        .route("/readyz", web::get().to(readyz))
        .route("/metrics", web::get().to(metrics))
        .route("/v1/auth/guest", web::post().to(guest))
        .route(
            "/v1/auth/guest",
            web::method(actix_web::http::Method::OPTIONS).to(guest_preflight),
        )
        .route("/v1/ws", web::get().to(ws_without_upgrade))
        .route("/v1/cluster", web::get().to(cluster))
        .route("/v1/admin/replicas", web::get().to(replicas))
        .route("/v1/admin/drain", web::post().to(drain))
        .route("/play", web::get().to(super::play::redirect))
        .route("/play/", web::get().to(super::play::index))
        .route("/play/{file}", web::get().to(super::play::file));
}

/// How long a request may take from its head to its answer, its body included: a client that
/// announces a body and does not send it gets 408 and the connection closes.
pub(crate) const HANDLER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Wraps every HTTP request: bounds its time ([`HANDLER_TIMEOUT`]) and gives the refusals
/// actix-web makes by itself (an unknown path, a wrong method, a body over its limit) the JSON
/// error body every other refusal has.
pub(crate) async fn bounded(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody + 'static>,
) -> Result<actix_web::dev::ServiceResponse, actix_web::Error> {
    use actix_web::http::{StatusCode, header};
    let res = match tokio::time::timeout(HANDLER_TIMEOUT, next.call(req)).await {
        Ok(res) => res?.map_into_boxed_body(),
        Err(_) => return Err(RequestTimeout.into()),
    };
    let status = res.status();
    let json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !(status.is_client_error() || status.is_server_error()) || json {
        return Ok(res);
    }
    let code = match status {
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::REQUEST_TIMEOUT => "request_timeout",
        s if s.is_server_error() => "internal",
        _ => "bad_request",
    };
    let message = status
        .canonical_reason()
        .unwrap_or("refused")
        .to_ascii_lowercase();
    let (request, old) = res.into_parts();
    let mut r = error(status, code, &message);
    for (name, value) in old.headers() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            r.headers_mut().append(name.clone(), value.clone());
        }
    }
    Ok(actix_web::dev::ServiceResponse::new(request, r))
}

/// A request whose body did not arrive within [`HANDLER_TIMEOUT`]: 408, and the connection
/// closes (what is left of the body would be read as the next request).
#[derive(Debug)]
struct RequestTimeout;

impl std::fmt::Display for RequestTimeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the request's body did not arrive in time")
    }
}

impl actix_web::ResponseError for RequestTimeout {
    fn status_code(&self) -> actix_web::http::StatusCode {
        actix_web::http::StatusCode::REQUEST_TIMEOUT
    }

    fn error_response(&self) -> HttpResponse {
        tracing::debug!("request not complete in time: 408");
        let mut r = error(self.status_code(), "request_timeout", &self.to_string());
        r.head_mut()
            .set_connection_type(actix_web::http::ConnectionType::Close);
        r
    }
}

/// A JSON error body: `{"error": code, "message": ...}`.
fn error_body(code: &str, message: &str) -> serde_json::Value {
    json!({ "error": code, "message": message })
}

/// A JSON error response ([`error_body`]).
pub(crate) fn error(
    status: actix_web::http::StatusCode,
    code: &str,
    message: &str,
) -> HttpResponse {
    HttpResponse::build(status).json(error_body(code, message))
}

/// The same JSON error as a whole HTTP/1.1 response that closes the connection, for the paths that
/// answer before actix-web has the connection (`super::front`, `super::ws`).
fn raw_error(status: u16, code: &str, message: &str) -> Vec<u8> {
    let body = error_body(code, message).to_string();
    let reason = actix_web::http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Error");
    format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Answers a connection that actix-web does not have with a JSON error and ends it. What the client
/// still sends is read and dropped for a moment first, so that closing a socket with unread bytes
/// does not reset the connection before the client has read the answer.
pub(crate) async fn refuse<Io>(io: &mut Io, status: u16, code: &str, message: &str)
where
    Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    if io
        .write_all(&raw_error(status, code, message))
        .await
        .is_err()
    {
        return;
    }
    let _ = io.shutdown().await;
    let mut sink = [0u8; 1024];
    let _ = tokio::time::timeout(std::time::Duration::from_secs(1), async {
        let mut left: usize = 64 * 1024;
        while left > 0 {
            match io.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(n) => left = left.saturating_sub(n),
            }
        }
    })
    .await;
}

/// `GET /v1/ws` without `Upgrade: websocket` on a kept-alive connection (an upgrade on any request
/// of a connection goes to the WebSocket edge: `super::front`).
async fn ws_without_upgrade() -> HttpResponse {
    error(
        actix_web::http::StatusCode::BAD_REQUEST,
        "bad_request",
        "expected a WebSocket upgrade (Connection: Upgrade, Upgrade: websocket)",
    )
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

async fn readyz(edge: web::Data<Edge>) -> HttpResponse {
    if edge.ctx.is_draining() {
        HttpResponse::ServiceUnavailable().json(json!({ "status": "draining" }))
    } else if edge.ctx.is_isolated() {
        HttpResponse::ServiceUnavailable().json(json!({ "status": "isolated" }))
    } else {
        HttpResponse::Ok().json(json!({ "status": "ready" }))
    }
}

async fn metrics(edge: web::Data<Edge>) -> HttpResponse {
    let mut body = edge.metrics.render();
    edge.ctx.render_pool_tickets(&mut body);
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(body)
}

#[derive(Deserialize)]
struct GuestBody {
    name: String,
}

/// `POST /v1/auth/guest` may be called from a game's page on any origin (a browser game is
/// rarely served by its game server): the answer allows every origin. It sets no cookie and reads
/// no credential, so a cross-origin caller learns nothing it could not mint itself. The admin
/// endpoints allow no other origin.
fn cross_origin(mut r: HttpResponse) -> HttpResponse {
    use actix_web::http::header::{ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue};
    r.headers_mut()
        .insert(ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    r
}

/// The CORS preflight of `POST /v1/auth/guest` (a JSON body makes browsers ask first).
async fn guest_preflight() -> HttpResponse {
    use actix_web::http::header;
    cross_origin(
        HttpResponse::NoContent()
            .insert_header((header::ACCESS_CONTROL_ALLOW_METHODS, "POST"))
            .insert_header((header::ACCESS_CONTROL_ALLOW_HEADERS, "content-type"))
            .insert_header((header::ACCESS_CONTROL_MAX_AGE, "86400"))
            .finish(),
    )
}

async fn guest(req: HttpRequest, edge: web::Data<Edge>, body: web::Bytes) -> HttpResponse {
    cross_origin(mint_guest(req, edge, body).await)
}

/// The longest guest name, in characters.
const GUEST_NAME_CHARS: usize = 32;

async fn mint_guest(req: HttpRequest, edge: web::Data<Edge>, body: web::Bytes) -> HttpResponse {
    use actix_web::http::StatusCode;
    if !edge.auth.allow_guest {
        return error(
            StatusCode::NOT_FOUND,
            "guests_disabled",
            "guest accounts are disabled on this server",
        );
    }
    // The node's own host (a loopback peer forwarding for no one: tools, tests, benchmarks) is
    // not limited; a proxy forwarding for its clients is limited per client.
    if let Some(client) = edge.client_of(&req)
        && (!client.is_loopback() || super::forwarded(&req))
        && !edge.guest_limit.admit(client, std::time::Instant::now())
    {
        metrics::counter!("warren_guest_tokens_refused_total").increment(1);
        tracing::debug!(client = %client, "guest token refused: rate limit of the client address");
        let mut r = error(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "too many guest tokens from this address; retry later",
        );
        if let Ok(v) = actix_web::http::header::HeaderValue::from_str("10") {
            r.headers_mut()
                .insert(actix_web::http::header::RETRY_AFTER, v);
        }
        return r;
    }
    let Ok(GuestBody { name }) = serde_json::from_slice::<GuestBody>(&body) else {
        return error(
            StatusCode::BAD_REQUEST,
            "bad_request",
            r#"body must be {"name":"<1–32 characters>"}"#,
        );
    };
    if let Err(why) = warren_protocol::text::check_name(&name, GUEST_NAME_CHARS) {
        return error(
            StatusCode::BAD_REQUEST,
            "bad_request",
            &format!(
                "name must be 1–{GUEST_NAME_CHARS} characters with a visible one, no control \
                 characters or bidirectional overrides: {why}"
            ),
        );
    }
    let player = PlayerId::new(format!("guest-{}", random_token(12)));
    let exp = now_ms() / 1000 + edge.auth.guest_ttl_secs;
    match edge.auth.mint(&player, &name, exp) {
        Ok(token) => HttpResponse::Ok().json(json!({
            "token": token,
            "player_id": player,
            "expires_in": edge.auth.guest_ttl_secs,
        })),
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            &format!("cannot mint token: {e}"),
        ),
    }
}

fn admin_denied(d: AdminDenied) -> HttpResponse {
    use actix_web::http::StatusCode;
    match d {
        AdminDenied::Unauthorized => error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "admin token required",
        ),
        AdminDenied::Forbidden => error(
            StatusCode::FORBIDDEN,
            "forbidden",
            "no admin token is configured: loopback clients only",
        ),
        AdminDenied::CrossSite => error(
            StatusCode::FORBIDDEN,
            "forbidden",
            "admin endpoints refuse requests from pages of other sites (Origin, Sec-Fetch-Site) \
             and, without an admin token, names other than localhost or an address (Host)",
        ),
    }
}

async fn cluster(req: HttpRequest, edge: web::Data<Edge>) -> HttpResponse {
    if let Err(d) = edge.auth.admin(&req, edge.client_of(&req)) {
        return admin_denied(d);
    }
    // Peers are as of their last heartbeat; this node's own row is read live.
    let mut nodes = edge.cluster.members();
    if let Some(me) = nodes.first_mut() {
        me.state = if edge.ctx.is_draining() {
            MemberState::Draining
        } else {
            MemberState::Ready
        };
        me.rooms = edge.ctx.directory.len() as u32;
        me.sessions = edge.ctx.sessions.len() as u32;
    }
    HttpResponse::Ok().json(json!({ "node": edge.ctx.node, "nodes": nodes }))
}

/// The snapshots this node keeps as the backup of other nodes' rooms: which room, from which
/// node, its epoch, and what the snapshot holds (game, version, tick, `saved_ms`).
async fn replicas(req: HttpRequest, edge: web::Data<Edge>) -> HttpResponse {
    if let Err(d) = edge.auth.admin(&req, edge.client_of(&req)) {
        return admin_denied(d);
    }
    HttpResponse::Ok().json(json!({ "node": edge.ctx.node, "replicas": edge.replicas.list() }))
}

async fn drain(req: HttpRequest, edge: web::Data<Edge>) -> HttpResponse {
    if let Err(d) = edge.auth.admin(&req, edge.client_of(&req)) {
        return admin_denied(d);
    }
    let _ = edge.drain.send(());
    HttpResponse::Accepted().json(json!({ "status": "draining" }))
}
