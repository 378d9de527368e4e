//! A Warren node with the built-in games and crazy eights: the same command line, configuration,
//! signals and drain as the `warren` binary.

// A binary links every dependency of the package; the lint is for the library.
#![allow(unused_crate_dependencies)]

use std::process::ExitCode;

use warren::game::GameRegistry;
use warren_eights::Eights;

fn main() -> ExitCode {
    let mut games = GameRegistry::builtin();
    games.add::<Eights>();
    warren::main_with(games)
}
