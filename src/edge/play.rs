//! The playground at `/play` (`http.playground`): static files built into the binary. They are
//! the TypeScript SDK and the page built on it, compiled by `tsc` into `clients/typescript/dist/`
//! and committed, so `cargo build` needs no npm; a check in `.ci/run` fails when they are stale.

use actix_web::http::header;
use actix_web::{HttpResponse, web};

use super::Edge;
use super::http::error;

/// `(name, content type, bytes)` of every file of the page.
const FILES: &[(&str, &str, &str)] = &[
    (
        "index.html",
        "text/html; charset=utf-8",
        include_str!("../../clients/typescript/play/index.html"),
    ),
    (
        "play.css",
        "text/css; charset=utf-8",
        include_str!("../../clients/typescript/play/play.css"),
    ),
    (
        "play.js",
        "text/javascript; charset=utf-8",
        include_str!("../../clients/typescript/dist/play/play.js"),
    ),
    (
        "warren.js",
        "text/javascript; charset=utf-8",
        include_str!("../../clients/typescript/dist/src/index.js"),
    ),
    (
        "protocol.js",
        "text/javascript; charset=utf-8",
        include_str!("../../clients/typescript/dist/src/protocol.js"),
    ),
];

fn off() -> HttpResponse {
    error(
        actix_web::http::StatusCode::NOT_FOUND,
        "not_found",
        "the playground is off on this node (http.playground)",
    )
}

/// `/play` → `/play/`, so the page's relative URLs resolve under it.
pub(crate) async fn redirect(edge: web::Data<Edge>) -> HttpResponse {
    if !edge.playground {
        return off();
    }
    HttpResponse::PermanentRedirect()
        .insert_header((header::LOCATION, "/play/"))
        .finish()
}

pub(crate) async fn index(edge: web::Data<Edge>) -> HttpResponse {
    serve(&edge, "index.html")
}

pub(crate) async fn file(edge: web::Data<Edge>, name: web::Path<String>) -> HttpResponse {
    serve(&edge, &name)
}

fn serve(edge: &Edge, name: &str) -> HttpResponse {
    if !edge.playground {
        return off();
    }
    match FILES.iter().find(|(n, _, _)| *n == name) {
        Some((_, content_type, body)) => HttpResponse::Ok()
            .insert_header((header::CONTENT_TYPE, *content_type))
            .insert_header((header::CACHE_CONTROL, "no-cache"))
            .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
            // The page runs its own scripts and talks to its own origin, and to the nodes the
            // user lists in `?nodes=`.
            .insert_header((
                header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; script-src 'self'; connect-src *; img-src 'self' data:; frame-ancestors 'none'",
            ))
            .body(*body),
        None => error(
            actix_web::http::StatusCode::NOT_FOUND,
            "not_found",
            "no such file in the playground",
        ),
    }
}
