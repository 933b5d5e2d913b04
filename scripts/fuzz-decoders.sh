#!/usr/bin/env bash
# The long run of the decoder fuzz tests (tests/tests/decode_fuzz.rs): random, truncated and
# mutated input for every decoder of untrusted bytes, in release mode.
#
# Usage: scripts/fuzz-decoders.sh [cases per decoder]
#
# 250 000 cases for each of the four envelope decoders (and a tenth of that for the SQLite
# store's rows) make over 1 000 000 inputs. Each test prints how many inputs it ran and how
# many were errors; a panic fails it with the shrunk input.
set -euo pipefail
cd "$(dirname "$0")/.."

export DECODE_FUZZ_CASES="${1:-250000}"
time cargo test --release -p tests --test decode_fuzz -- --nocapture
