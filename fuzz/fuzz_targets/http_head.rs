//! The head of an HTTP request, read as the node's front reads it (the request line's kind, and
//! the WebSocket upgrade's checks): a refusal has a status and code, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The WebSocket path, so that most inputs reach the upgrade's checks.
    let mut head = b"GET /v1/ws?".to_vec();
    head.extend_from_slice(data);
    for h in [&head[..], data] {
        match warren::fuzzing::http_head(h) {
            Ok(len) => assert!(len <= h.len()),
            Err((status, code)) => assert!((400..600).contains(&status) && !code.is_empty()),
        }
    }
});
