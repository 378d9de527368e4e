//! `warren-eights`: crazy eights, an example of a game built on Warren with its public API only
//! (the `warren` crate's [`warren::game`]). The rules and the hidden information it keeps are in
//! [`Eights`]'s module documentation; `src/bin/eights-node.rs` is the whole node that runs it.

mod game;

pub use game::*;

// The end-to-end test's (tests/).
#[cfg(test)]
use {tokio as _, warren_client as _, warren_protocol as _};
