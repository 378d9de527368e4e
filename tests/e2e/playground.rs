//! `/play`: the playground's files, built into the binary, served when `http.playground` is on
//! (the embedded default) and answered 404 when it is off (the production manifests). The page
//! itself is tested in a real browser (`clients/typescript/test/browser/`).

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::Node;

/// `(status line, headers in lower case, body)` of a GET.
async fn get(node: &Node, path: &str) -> (String, String, String) {
    let mut s = TcpStream::connect(("127.0.0.1", node.port)).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
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
