#!/usr/bin/env bash
# What `cargo publish` would upload for each library crate, checked without uploading and
# without building: the packages are made (`cargo package --no-verify`), then read.
#
# Usage: scripts/check-package.sh [--allow-dirty]
#
# - The published crates are the workspace members not marked `publish = false` (read from
#   `cargo metadata`), so a new library crate is checked and a new example is not.
# - Their manifests carry what crates.io shows: description, license, repository,
#   documentation, readme, rust-version, keywords and categories (at most 5 of each, in the
#   form crates.io accepts).
# - `cargo package --workspace --exclude <the others>` packages them together: an
#   intra-workspace dependency (event-core on event-derive, ...) is not on crates.io yet, and
#   cargo resolves it from a local registry of the packages it has just made
#   (target/package/tmp-registry). One crate alone (`-p event-core`) would fail on it.
#   Each package gets its own Cargo.lock, resolved from the crates.io index as cached by any
#   earlier build of the workspace: no network then (`--offline`). On a machine that never
#   built the workspace the index is fetched (retried online, a few seconds).
# - `--no-verify`: the package is not compiled again; the workspace build (clippy, tests,
#   docs) already compiles these sources.
# - Each package must contain LICENSE-MIT and LICENSE-APACHE (symlinks to the root's: the
#   package must hold the texts, byte for byte) and README.md, and no file over 128 KiB
#   (a test fixture or generated data slipping in).
#
# Packages what git holds: a crate with uncommitted changes is refused, as `cargo publish`
# would. CI runs on a clean clone; locally, commit first or pass --allow-dirty.
set -euo pipefail
cd "$(dirname "$0")/.."

ALLOW_DIRTY=()
case "${1:-}" in
    "") ;;
    --allow-dirty) ALLOW_DIRTY=(--allow-dirty) ;;
    *) echo "usage: $0 [--allow-dirty]" >&2; exit 2 ;;
esac

START=$(date +%s%N)
fail() { echo "check-package: $*" >&2; exit 1; }

# The members, publishable or not, and where packages land; the manifest checks.
MEMBERS=$(cargo metadata --no-deps --format-version 1 --locked --offline | python3 -c '
import json, re, sys
meta = json.load(sys.stdin)
members = set(meta["workspace_members"])
keyword = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_+-]{0,19}$")
category = re.compile(r"^[a-z-]+(::[a-z-]+)?$")
problems, published, unpublished = [], [], []
for p in meta["packages"]:
    if p["id"] not in members:
        continue
    name = p["name"]
    if p["publish"] == []:
        unpublished.append(name)
        continue
    published.append(name + "-" + p["version"])
    for field in ("description", "license", "repository", "documentation", "readme", "rust_version"):
        if not p.get(field):
            problems.append(f"{name}: no {field}")
    for field, form in (("keywords", keyword), ("categories", category)):
        values = p.get(field) or []
        if not 1 <= len(values) <= 5:
            problems.append(f"{name}: {len(values)} {field} (1 to 5)")
        problems += [f"{name}: {field[:-1]} {v!r} is not in the form crates.io accepts"
                     for v in values if not form.match(v)]
if problems:
    sys.exit("check-package: " + "\ncheck-package: ".join(problems))
print(meta["target_directory"])
print(" ".join(published))
print(" ".join(unpublished))
')
{
    read -r TARGET_DIR
    read -r -a PUBLISHED   # name-version
    read -r -a UNPUBLISHED # names
} <<<"$MEMBERS"
[ "${#PUBLISHED[@]}" -gt 0 ] || fail "no publishable member"

EXCLUDE=()
for name in "${UNPUBLISHED[@]}"; do EXCLUDE+=(--exclude "$name"); done
PACKAGE=(cargo package --workspace "${EXCLUDE[@]}" --no-verify --locked "${ALLOW_DIRTY[@]}")

# Offline first: the index cache of an earlier build is enough. Online only when cargo says
# offline mode was what failed (a genuine error fails the same online, and is shown).
LOG=$(mktemp)
trap 'rm -f "$LOG"' EXIT
if ! "${PACKAGE[@]}" --offline >"$LOG" 2>&1; then
    if grep -q -- "offline mode" "$LOG"; then
        echo "check-package: the crates.io index is not cached; fetching it"
        "${PACKAGE[@]}" >"$LOG" 2>&1 || { cat "$LOG" >&2; fail "cargo package failed"; }
    else
        cat "$LOG" >&2
        fail "cargo package failed"
    fi
fi
grep -i "warning" "$LOG" >&2 && fail "cargo package warned (above)"

for crate in "${PUBLISHED[@]}"; do
    name=${crate%-[0-9]*}
    LIST=$(cargo package --list -p "$name" --locked --offline "${ALLOW_DIRTY[@]}")
    for required in LICENSE-MIT LICENSE-APACHE README.md; do
        grep -qx "$required" <<<"$LIST" || fail "$name: $required is not in the package"
    done
    CRATE="$TARGET_DIR/package/$crate.crate"
    [ -f "$CRATE" ] || fail "$name: $CRATE was not made"
    for license in LICENSE-MIT LICENSE-APACHE; do
        tar -xzOf "$CRATE" "$crate/$license" | cmp -s - "$license" \
            || fail "$name: the package's $license is not the text of ./$license"
    done
    # tar -tv: permissions, owner, size, date, time, path.
    BIG=$(tar -tvzf "$CRATE" | awk '$3 > 131072 { print $6 " (" $3 " bytes)" }')
    [ -z "$BIG" ] || fail "$name: files over 128 KiB in the package: $BIG"
    printf '%-14s %3d files, %4d KiB compressed\n' "$name" \
        "$(grep -c . <<<"$LIST")" "$(( $(stat -c %s "$CRATE") / 1024 ))"
done

ELAPSED_MS=$(( ($(date +%s%N) - START) / 1000000 ))
printf 'check-package: %s packaged and checked in %d.%d s\n' "${PUBLISHED[*]}" \
    $((ELAPSED_MS / 1000)) $((ELAPSED_MS % 1000 / 100))
