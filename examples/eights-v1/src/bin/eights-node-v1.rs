//! A Warren node running version 1 of crazy eights.

// A binary links every dependency of the package; the lint is for the library.
#![allow(unused_crate_dependencies)]

use std::process::ExitCode;

use warren::game::GameRegistry;
use warren_eights_v1::Eights;

fn main() -> ExitCode {
    let mut games = GameRegistry::builtin();
    games.add::<Eights>();
    warren::main_with(games)
}
