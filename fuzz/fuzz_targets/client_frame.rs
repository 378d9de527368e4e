//! A client's text frame, decoded as the edge decodes it: every input gets a request or a
//! decode error (with a bounded message), never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match warren_protocol::decode_client_frame(text) {
        Ok(_) => {}
        Err(e) => assert!(e.message.len() <= 1024, "an error echoes too much: {}", e.message.len()),
    }
});
