#!/usr/bin/env bash
# Validates a generated AsyncAPI document with the official AsyncAPI parser (JavaScript).
#
# Usage: scripts/check-asyncapi.sh [ASYNCAPI_JSON]
#        (default: examples/orders/catalog/asyncapi.json)
#
# Needs node and npm; installs @asyncapi/parser into a cache directory under target/ on first
# use (about ten seconds). Exits 0 when the parser returns a document with no error
# diagnostics, 1 otherwise; warnings and infos are printed but do not fail.
set -euo pipefail
cd "$(dirname "$0")/.."

DOC="${1:-examples/orders/catalog/asyncapi.json}"
PARSER_VERSION="3.6.3"
CACHE="${ASYNCAPI_PARSER_DIR:-target/asyncapi-parser}"

command -v node >/dev/null || { echo "error: node is not installed" >&2; exit 2; }
command -v npm >/dev/null || { echo "error: npm is not installed" >&2; exit 2; }
[ -f "$DOC" ] || { echo "error: no such file: $DOC" >&2; exit 2; }

if [ ! -f "$CACHE/node_modules/@asyncapi/parser/package.json" ]; then
    mkdir -p "$CACHE"
    (cd "$CACHE" && npm install --silent --no-audit --no-fund --no-save \
        "@asyncapi/parser@$PARSER_VERSION" >/dev/null)
fi

cat >"$CACHE/check.mjs" <<'JS'
import { Parser } from '@asyncapi/parser';
import { readFileSync } from 'node:fs';

const path = process.argv[2];
const { document, diagnostics } = await new Parser().parse(readFileSync(path, 'utf8'));
const names = ['error', 'warning', 'info', 'hint'];
for (const d of diagnostics) {
  console.log(`${names[d.severity] ?? d.severity}: ${d.code}: ${d.message} at /${d.path.join('/')}`);
}
const errors = diagnostics.filter((d) => d.severity === 0).length;
if (!document || errors > 0) {
  console.log(`${path}: INVALID (${errors} error(s))`);
  process.exit(1);
}
console.log(`${path}: valid AsyncAPI ${document.version()}, ${document.channels().length} channels, ` +
  `${document.operations().length} operations, ${document.messages().length} messages`);
JS

node "$CACHE/check.mjs" "$(realpath "$DOC")"
