//! Bytes from another node, read as a node's actors read them: an envelope and its body, or a
//! heartbeat's tail, or an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use warren_cluster::wire::{Envelope, Wire};

fuzz_target!(|data: &[u8]| {
    let w = Wire(data.to_vec());
    if let Ok(env) = Envelope::decode(&w) {
        // What decodes re-encodes, and reads back the same.
        let again = Envelope::encode(env.body.clone());
        assert_eq!(Envelope::decode(&again).map(|e| e.body).ok(), Some(env.body));
    }
    let _ = Envelope::heartbeat_tail(&w);
});
