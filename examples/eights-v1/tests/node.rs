//! Version 1 of the example, as the upgrade test runs it: its node starts, and its game writes and
//! reads state version 1 only. (This test also makes `cargo test --workspace` build the
//! `eights-node-v1` binary that `examples/eights/tests/upgrade.rs` starts.)

#![allow(clippy::unwrap_used)]

use warren::game::{Game, GameSpec};
use warren_eights_v1::Eights;

// Dependencies of the library.
use {rand as _, serde as _};

#[test]
fn version_1_writes_and_reads_only_its_own_layout() {
    assert_eq!(Eights::STATE_VERSION, 1);
    let spec = GameSpec::of::<Eights>();
    assert!(spec.reads(1));
    assert!(!spec.reads(2));
}

#[test]
fn the_version_1_node_runs() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_eights-node-v1"))
        .arg("--print-default-config")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("[cluster]"));
}
