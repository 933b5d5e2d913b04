#!/usr/bin/env bash
# The whole test suite, on a fresh machine: formatting, lints, every test and doctest.
#
# Usage: scripts/test.sh
#
# Needs only the Rust toolchain pinned in rust-toolchain.toml. Tests that need servers start
# their own on loopback; this script installs what they need when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

step "rustfmt"
cargo fmt --all -- --check

step "clippy (-D warnings)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "tests (unit, integration, trybuild UI cases, doctests)"
cargo test --workspace --all-targets --locked
cargo test --workspace --doc --locked

step "examples run"
cargo run --locked -q -p orders >/dev/null
cargo run --locked -q -p chatbot >/dev/null
