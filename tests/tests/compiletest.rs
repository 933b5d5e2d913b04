//! The derives' compile-time rejections: one trybuild case per mistake in `tests/ui/`.
//!
//! Rewrite the `.stderr` files with `TRYBUILD=overwrite cargo test -p tests --test
//! compiletest`, then read the diff. They are pinned to the toolchain in
//! `rust-toolchain.toml`.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("ui/*.rs");
}
