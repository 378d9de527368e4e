//! Version 1 of the crazy eights example: `examples/eights/src/game.rs` built with
//! `--cfg eights_v1` (the state layout before version 2 renamed `discard` and added `moves`). It
//! exists for the upgrade test and `scripts/upgrade-game.sh`: a cluster of these nodes is upgraded,
//! node by node, to `eights-node` while games are played.

#[path = "../../eights/src/game.rs"]
mod game;

pub use game::*;
