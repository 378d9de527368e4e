//! `/play`: the playground's files, built into the binary, served when `http.playground` is on
//! (the embedded default) and answered 404 when it is off (the production manifests). The page
//! itself is tested in a real browser (`clients/typescript/test/browser/`).

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::Node;

/// `(status line, headers in lower case, body)` of a GET.
async fn get(node: &Node, path: &str) -> (String, String, String) {
    request(
        node,
        &format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
    )
    .await
}

async fn request(node: &Node, req: &str) -> (String, String, String) {
    let mut s = TcpStream::connect(("127.0.0.1", node.port)).await.unwrap();
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    let (head, body) = out.split_once("\r\n\r\n").unwrap();
    let (status, headers) = head.split_once("\r\n").unwrap_or((head, ""));
    (status.to_owned(), headers.to_lowercase(), body.to_owned())
}

#[tokio::test]
async fn the_playground_is_served_by_default_and_not_when_off() {
    let node = Node::start(&[]).await;
    let (status, headers, _) = get(&node, "/play").await;
    assert!(status.contains("308"), "{status}");
    assert!(headers.contains("location: /play/"), "{headers}");

    let (status, headers, body) = get(&node, "/play/").await;
    assert!(status.contains("200"), "{status}");
    assert!(headers.contains("content-type: text/html"), "{headers}");
    assert!(
        headers.contains("content-security-policy: default-src 'self'"),
        "{headers}"
    );
    assert!(body.contains(r#"<script type="module" src="./play.js">"#));
    for (file, kind, needle) in [
        ("play.js", "text/javascript", r#"from "./warren.js""#),
        ("warren.js", "text/javascript", "export class Client"),
        ("protocol.js", "text/javascript", "ERROR_CODES"),
        ("play.css", "text/css", "#arena-canvas"),
    ] {
        let (status, headers, body) = get(&node, &format!("/play/{file}")).await;
        assert!(status.contains("200"), "{file}: {status}");
        assert!(
            headers.contains(&format!("content-type: {kind}")),
            "{file}: {headers}"
        );
        assert!(body.contains(needle), "{file}");
    }
    for path in [
        "/play/../Cargo.toml",
        "/play/index.js",
        "/play/%2e%2e%2fCargo.toml",
    ] {
        let (status, _, _) = get(&node, path).await;
        assert!(status.contains("404"), "{path}: {status}");
    }

    let off = Node::start(&[("WARREN_HTTP__PLAYGROUND", "false")]).await;
    for path in ["/play", "/play/", "/play/play.js"] {
        let (status, _, body) = get(&off, path).await;
        assert!(status.contains("404"), "{path}: {status}");
        assert!(body.contains("http.playground"), "{body}");
    }
}

/// A page on another origin (the playground of another node, or a studio's game page) can mint a
/// guest token: the preflight and the answer allow every origin. The admin endpoints allow none.
#[tokio::test]
async fn guest_tokens_may_be_minted_from_any_origin_and_admin_views_from_none() {
    let node = Node::start(&[]).await;
    let (status, headers, _) = request(
        &node,
        "OPTIONS /v1/auth/guest HTTP/1.1\r\nHost: x\r\nOrigin: https://game.example\r\nAccess-Control-Request-Method: POST\r\nAccess-Control-Request-Headers: content-type\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(status.contains("204"), "{status}");
    for h in [
        "access-control-allow-origin: *",
        "access-control-allow-methods: post",
        "access-control-allow-headers: content-type",
    ] {
        assert!(headers.contains(h), "{h} in {headers}");
    }
    let body = r#"{"name":"ann"}"#;
    let (status, headers, answer) = request(
        &node,
        &format!(
            "POST /v1/auth/guest HTTP/1.1\r\nHost: x\r\nOrigin: https://game.example\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    )
    .await;
    assert!(status.contains("200"), "{status} {answer}");
    assert!(
        headers.contains("access-control-allow-origin: *"),
        "{headers}"
    );
    let (status, headers, _) = request(
        &node,
        "GET /v1/cluster HTTP/1.1\r\nHost: x\r\nOrigin: https://game.example\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(status.contains("200"), "{status}");
    assert!(
        !headers.contains("access-control-allow-origin"),
        "{headers}"
    );
}
