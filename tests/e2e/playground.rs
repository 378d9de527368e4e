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
    // Admin endpoints refuse pages of other sites, which a browser on the node's host would
    // otherwise send as a loopback client: a cross-origin `Origin`, a cross-site
    // `Sec-Fetch-Site`, and (no admin token configured) a DNS name rebound to 127.0.0.1.
    let here = format!("127.0.0.1:{}", node.port);
    for req in [
        format!(
            "GET /v1/cluster HTTP/1.1\r\nHost: {here}\r\nOrigin: https://game.example\r\nConnection: close\r\n\r\n"
        ),
        format!(
            "POST /v1/admin/drain HTTP/1.1\r\nHost: {here}\r\nOrigin: https://evil.example\r\nSec-Fetch-Site: cross-site\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        ),
        format!(
            "POST /v1/admin/drain HTTP/1.1\r\nHost: {here}\r\nSec-Fetch-Site: same-site\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        ),
        format!(
            "POST /v1/admin/drain HTTP/1.1\r\nHost: {here}\r\nOrigin: null\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        ),
        format!(
            "POST /v1/admin/drain HTTP/1.1\r\nHost: rebound.example:{}\r\nOrigin: http://rebound.example:{}\r\nSec-Fetch-Site: same-origin\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            node.port, node.port
        ),
    ] {
        let (status, headers, body) = request(&node, &req).await;
        assert!(status.contains("403"), "{req}: {status} {body}");
        assert!(body.contains("forbidden"), "{body}");
        assert!(
            !headers.contains("access-control-allow-origin"),
            "{headers}"
        );
    }
    let (status, _, body) = request(
        &node,
        "GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(status.contains("200"), "the node was not drained: {body}");
    // The node's own pages (same origin), and tools on its host, are served.
    for req in [
        format!(
            "GET /v1/cluster HTTP/1.1\r\nHost: {here}\r\nOrigin: http://{here}\r\nSec-Fetch-Site: same-origin\r\nConnection: close\r\n\r\n"
        ),
        format!("GET /v1/cluster HTTP/1.1\r\nHost: localhost:{}\r\nConnection: close\r\n\r\n", node.port),
        "GET /v1/cluster HTTP/1.1\r\nHost: [::1]\r\nSec-Fetch-Site: none\r\nConnection: close\r\n\r\n".to_owned(),
    ] {
        let (status, _, body) = request(&node, &req).await;
        assert!(status.contains("200"), "{req}: {status} {body}");
    }
}
