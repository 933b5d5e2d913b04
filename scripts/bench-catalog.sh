#!/usr/bin/env bash
# Run time of the event catalog: `generate` and `check` on a crate of N events.
#
# Generates a standalone crate with N events (scripts/bench_catalog_gen.py: mixed fields,
# nested structs, enums, Options, Vecs, maps; three consumer unions) and its catalog binary,
# builds it in release, then times `generate --out DIR` (into an existing, current catalog,
# so it renders and compares everything and writes nothing) and `check --out DIR`, each
# RUNS times after one warm-up run, and prints every run and the medians.
#
# Usage: scripts/bench-catalog.sh [--events N] [--runs N]
#
# Target: under 1 s each for 1,000 events. Exits 0 whatever the times; non-zero only if
# generation, the build or a catalog command fails.
set -euo pipefail

usage() {
    sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
}

events=1000
runs=5
while [[ $# -gt 0 ]]; do
    case "$1" in
        --events) events="${2:?--events needs a number}"; shift 2 ;;
        --events=*) events="${1#*=}"; shift ;;
        --runs) runs="${2:?--runs needs a number}"; shift 2 ;;
        --runs=*) runs="${1#*=}"; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "bench-catalog: unknown argument: $1" >&2; usage >&2; exit 2 ;;
    esac
done
for value in "$events" "$runs"; do
    if ! [[ "$value" =~ ^[1-9][0-9]*$ ]]; then
        echo "bench-catalog: --events and --runs take a positive integer, got '$value'" >&2
        exit 2
    fi
done

root="$(cd "$(dirname "$0")/.." && pwd)"
work="$root/target/bench-catalog"
crate="$work/crate"
out="$work/catalog"
mkdir -p "$work"
rm -rf "$crate/src"

echo "== generating a crate with $events events"
python3 "$root/scripts/bench_catalog_gen.py" "$crate" "$root" --events "$events" \
    --lockfile "$root/Cargo.lock"

echo "== building it (release)"
(cd "$crate" && CARGO_TARGET_DIR="$work/target" cargo build --release --quiet)
bin="$work/target/release/bench-catalog"

rm -rf "$out"
"$bin" generate --out "$out" >/dev/null # warm-up; writes the catalog
echo "== catalog: $(find "$out" -type f | wc -l) files, $(du -sh "$out" | cut -f1)"

# Prints the elapsed milliseconds of one run of the command.
time_ms() {
    local start end
    start=$(date +%s%N)
    "$@" >/dev/null
    end=$(date +%s%N)
    echo $(((end - start) / 1000000))
}

median() {
    sort -n | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

for command in generate check; do
    times=()
    for _ in $(seq "$runs"); do
        times+=("$(time_ms "$bin" "$command" --out "$out")")
    done
    printf '%-8s runs (ms): %s\n' "$command" "${times[*]}"
    printf '%-8s median: %s ms\n' "$command" "$(printf '%s\n' "${times[@]}" | median)"
done
