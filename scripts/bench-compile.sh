#!/usr/bin/env bash
# Compile-time cost of #[derive(DomainEvent)]: a measurement, not a gate.
#
# Generates two standalone crates with the same N event structs (scripts/bench_compile_gen.py):
#   bench-with     derives Serialize, Deserialize, JsonSchema, DomainEvent + #[event(...)]
#   bench-without  derives Serialize, Deserialize, JsonSchema only
# Both depend on this repository's event-core, serde and schemars, and share one target
# directory, so dependencies are built once (warm-up). Each run then cleans only the crate
# itself (`cargo clean -p`) and times `cargo build` of it; runs alternate with, without, ...
# so that machine drift hits both alike. Prints every run, the medians and the ratio.
#
# Usage: scripts/bench-compile.sh [--release] [--events N] [--runs N]
#
# Exits 0 whatever the ratio; non-zero only if generation or a build fails.
set -euo pipefail

usage() {
    sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'
}

profile=debug
events=200
runs=3
while [[ $# -gt 0 ]]; do
    case "$1" in
        --release) profile=release; shift ;;
        --events) events="${2:?--events needs a number}"; shift 2 ;;
        --events=*) events="${1#*=}"; shift ;;
        --runs) runs="${2:?--runs needs a number}"; shift 2 ;;
        --runs=*) runs="${1#*=}"; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "bench-compile: unknown argument: $1" >&2; usage >&2; exit 2 ;;
    esac
done
for value in "$events" "$runs"; do
    if ! [[ "$value" =~ ^[1-9][0-9]*$ ]]; then
        echo "bench-compile: --events and --runs take a positive integer, got '$value'" >&2
        exit 2
    fi
done

script_dir="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd -- "$script_dir/.." && pwd)"
event_core="$repo_root/event-core"

# The workspace's pinned toolchain; cargo run from the temporary directory would not see
# rust-toolchain.toml.
toolchain="$(sed -n 's/^channel *= *"\(.*\)".*/\1/p' "$repo_root/rust-toolchain.toml")"
export RUSTUP_TOOLCHAIN="${toolchain:?no channel in rust-toolchain.toml}"

work="$(mktemp -d "${TMPDIR:-/tmp}/bench-compile.XXXXXX")"
trap 'rm -rf -- "$work"' EXIT
export CARGO_TARGET_DIR="$work/target"

python3 "$script_dir/bench_compile_gen.py" "$work" "$event_core" \
    --events "$events" --lockfile "$repo_root/Cargo.lock"

cargo_flags=(--quiet)
profile_flags=()
if [[ "$profile" == release ]]; then
    profile_flags=(--release)
fi
cargo_flags+=("${profile_flags[@]}")

now() { date +%s.%N; }

# Times `cargo build` of one crate after cleaning only that crate; prints the seconds.
timed_build() {
    local dir="$1" package="$2" start end
    cargo clean --quiet --manifest-path "$dir/Cargo.toml" -p "$package" "${profile_flags[@]}"
    start="$(now)"
    if ! cargo build --manifest-path "$dir/Cargo.toml" "${cargo_flags[@]}"; then
        echo "bench-compile: cargo build of $package failed" >&2
        return 1
    fi
    end="$(now)"
    python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.3f}')" "$start" "$end"
}

echo "bench-compile: $events events, $profile, $runs runs per crate, $(rustc --version)"
echo "bench-compile: warm-up (builds dependencies once into $CARGO_TARGET_DIR)"
for crate in with without; do
    if ! cargo build --manifest-path "$work/$crate/Cargo.toml" "${cargo_flags[@]}"; then
        echo "bench-compile: warm-up build of bench-$crate failed" >&2
        exit 1
    fi
done

with_times=()
without_times=()
for ((i = 1; i <= runs; i++)); do
    t="$(timed_build "$work/with" bench-with)"
    with_times+=("$t")
    printf 'run %d  with     %8.2f s\n' "$i" "$t"
    t="$(timed_build "$work/without" bench-without)"
    without_times+=("$t")
    printf 'run %d  without  %8.2f s\n' "$i" "$t"
done

python3 - "${with_times[*]}" "${without_times[*]}" <<'EOF'
import statistics
import sys

with_t = [float(x) for x in sys.argv[1].split()]
without_t = [float(x) for x in sys.argv[2].split()]
mw, mo = statistics.median(with_t), statistics.median(without_t)
print(f"median  with     {mw:8.2f} s   (Serialize, Deserialize, JsonSchema, DomainEvent)")
print(f"median  without  {mo:8.2f} s   (Serialize, Deserialize, JsonSchema)")
print(f"ratio   with/without  {mw / mo:.3f}   (target: ratio <= 1.15)")
EOF
