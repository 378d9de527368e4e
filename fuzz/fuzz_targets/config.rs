//! A configuration file's text, read over the embedded default and validated as a node does at
//! start: a configuration or an error that names what is wrong, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Err(e) = warren::fuzzing::config(text) {
            assert!(!e.is_empty());
        }
    }
});
