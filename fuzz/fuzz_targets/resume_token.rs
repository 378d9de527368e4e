//! A resume token from a client's query string, checked as a node checks it: claims or nothing,
//! never a panic; and a token the node signs reads back as what it signed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use warren_actors::resume::ResumeKey;

fuzz_target!(|data: &[u8]| {
    let key = ResumeKey::derive(b"fuzz-secret-0123456789");
    let now = 1_800_000_000_000;
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = key.verify(text, now);
        let mid = (0..=text.len() / 2)
            .rev()
            .find(|&i| text.is_char_boundary(i))
            .unwrap_or(0);
        let (player, session) = text.split_at(mid);
        let token = key.sign(&player.into(), &session.into(), now);
        let c = key.verify(&token, now).expect("a token the node signed verifies");
        assert_eq!((c.player.as_str(), c.session.as_str()), (player, session));
    }
});
