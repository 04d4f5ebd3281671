#!/usr/bin/env bash
# The black-box contract test: schemathesis (PyPI, pinned in local/schemathesis-requirements.txt,
# installed into a cached virtualenv, local/cache.sh) against the OpenAPI document served by a running
# `exness-local` (debug build), isolated by its own ENGINE_PREFIX, REDIS_PREFIX, fresh database
# and free ports, with a signed-in user's token for the protected routes.
#
# Checks: not_a_server_error (no 5xx), status_code_conformance, content_type_conformance,
# response_headers_conformance and response_schema_conformance (no answer outside the
# document), positive_data_acceptance (no documented input refused: see local/schemathesis.toml).
# Bounded: ST_MAX_EXAMPLES per operation (default 40) and ST_MAX_TIME seconds (default 90; the
# fuzzing phase repeats until the budget is spent). Prints the statuses seen per operation.
# Idempotent; cleans up its database, streams and Redis keys. Usage: local/test-schemathesis.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
export NATS_URL="${NATS_URL:-nats://127.0.0.1:4222}"
export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379}"
MAX_EXAMPLES="${ST_MAX_EXAMPLES:-40}"
MAX_TIME="${ST_MAX_TIME:-90}"

# 1. The virtualenv (in the shared cache: local/cache.sh), rebuilt only when the pinned
#    requirements change.
source "$ROOT/local/cache.sh"
VENV=$(cached_venv schemathesis "$ROOT/local/schemathesis-requirements.txt")

# 2. The runner, isolated.
cargo build --quiet -p local --bin exness-local
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/debug/exness-local"
ID="st$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PORT=$(free_port)
BASE="http://127.0.0.1:$PORT"
ADMIN_URL="$DATABASE_URL"
DB_URL="${DATABASE_URL%/*}/$ID"
WORK=$(mktemp -d)
RUNNER_PID=""

cleanup() {
  if [ -n "$RUNNER_PID" ]; then
    kill "$RUNNER_PID" 2>/dev/null || true
    wait "$RUNNER_PID" 2>/dev/null || true
  fi
  psql -q "$ADMIN_URL" -c "DROP DATABASE IF EXISTS $ID WITH (FORCE)" >/dev/null 2>&1 || true
  "$VENV/bin/python" "$ROOT/local/nats-delete-streams.py" "$NATS_URL" "$ID" || true
  redis-cli -u "$REDIS_URL" --scan --pattern "$ID:*" 2>/dev/null \
    | xargs -r redis-cli -u "$REDIS_URL" DEL >/dev/null 2>&1 || true
  if [ -n "${ST_KEEP:-}" ]; then cp -r "$WORK" "$ST_KEEP"; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

psql -q "$ADMIN_URL" -c "CREATE DATABASE $ID" >/dev/null
DATABASE_URL="$DB_URL" ENGINE_PREFIX="$ID" REDIS_PREFIX="$ID:" HTTP_ADDR="127.0.0.1:$PORT" \
  RATE_AUTH_ADDRESS=100000/60 RATE_AUTH_EMAIL=100000/60 RATE_AUTH_EMAIL_LONG=100000/60 \
  RATE_ACCOUNT_COMMANDS=100000/1 \
  WS_ADDR="127.0.0.1:0" PRICE_SOURCE=simulated JWT_SECRET="schemathesis-secret-$ID-0123456789abcdef" \
  RUST_LOG="${RUST_LOG:-warn}" "$BIN" > "$WORK/runner.log" 2>&1 &
RUNNER_PID=$!
for _ in $(seq 1 120); do
  curl -sf "$BASE/readyz" >/dev/null && break
  kill -0 "$RUNNER_PID" 2>/dev/null || { cat "$WORK/runner.log"; exit 1; }
  sleep 0.5
done
curl -sf "$BASE/readyz" >/dev/null || { echo "runner not ready"; cat "$WORK/runner.log"; exit 1; }

# (The rate limits are out of reach above: the fuzzer sends hundreds of requests per operation
# as one user from one address; the limits have their own tests.)
# 3. A user with a token, and prices flowing (so opens can succeed).
CREDS="{\"email\":\"$ID@example.com\",\"password\":\"correct horse battery\"}"
curl -sf -X POST "$BASE/api/v1/auth/signup" -H 'content-type: application/json' -d "$CREDS" >/dev/null
TOKEN=$(curl -sf -X POST "$BASE/api/v1/auth/signin" -H 'content-type: application/json' -d "$CREDS" \
  | "$VENV/bin/python" -c 'import json,sys; print(json.load(sys.stdin)["token"])')
for _ in $(seq 1 60); do
  curl -sf "$BASE/api/v1/assets" | grep -q '"bid":"' && break
  sleep 0.5
done

# 4. The contract test.
status=0
"$VENV/bin/st" --config-file "$ROOT/local/schemathesis.toml" run "$BASE/api/v1/openapi.json" \
  --url "$BASE" \
  -H "Authorization: Bearer $TOKEN" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance,positive_data_acceptance \
  --phases examples,coverage,fuzzing \
  --max-examples "$MAX_EXAMPLES" --max-time "$MAX_TIME" --seed "${ST_SEED:-20261125}" \
  --workers 1 --request-timeout 10 \
  --report har --report-har-path "$WORK/requests.har" \
  "$@" || status=$?
"$VENV/bin/python" - "$WORK/requests.har" <<'PY' || true
import collections, json, sys, urllib.parse
entries = json.load(open(sys.argv[1]))["log"]["entries"]
seen = collections.defaultdict(collections.Counter)
for e in entries:
    path = urllib.parse.urlparse(e["request"]["url"]).path
    seen[f'{e["request"]["method"]} {path}'][e["response"]["status"]] += 1
print(f"requests sent: {len(entries)}; statuses per operation:")
for op in sorted(seen):
    print(f"  {op}: " + ", ".join(f"{s}x{n}" for s, n in sorted(seen[op].items())))
PY
if [ "$status" -ne 0 ]; then
  echo "--- runner log (last 50 lines) ---"
  tail -50 "$WORK/runner.log"
fi
exit "$status"
