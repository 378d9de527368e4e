//! `warren`: a node with the built-in games (`dice`, `arena`). A studio's node is the same few
//! lines with its own games registered (see the `warren` library).

// A binary links every dependency of the package; the lint is for the library.
#![allow(unused_crate_dependencies)]

use std::process::ExitCode;

fn main() -> ExitCode {
    warren::main_with(warren::game::GameRegistry::builtin())
}
