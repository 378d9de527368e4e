//! Builds the example's game source as its version 1.
fn main() {
    println!("cargo::rustc-cfg=eights_v1");
    println!("cargo::rerun-if-changed=build.rs");
}
