#!/usr/bin/env bash
# The web page's checks (called from local/test; the services must be running): npm ci, ESLint,
# tsc, the vitest unit tests, the production build, and the browser test in headless Chromium
# against the real platform (the debug exness-local runner, isolated: fresh database, own
# prefixes, free ports, prices from a local Binance stand-in). Screenshots: web/e2e/artifacts/.
set -euo pipefail
cd "$(dirname "$0")/.."
source local/cache.sh
source local/web.sh
ensure_node
ensure_chromium

cargo build -p local --bin exness-local
bin="$(cd "${CARGO_TARGET_DIR:-target}" && pwd)/debug/exness-local"

cd web
npm ci --no-audit --no-fund --loglevel=error
npm run --silent lint
npm run --silent typecheck
npm test --silent
npm run --silent build -- --logLevel warn
EXNESS_LOCAL_BIN="$bin" npm run --silent e2e
