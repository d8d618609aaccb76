#!/usr/bin/env bash
# make test (stage iac): lint the SAM template and check it against the code:
# routes = the cargo-lambda router, per-function IAM = each function's declaration
# (store::permissions), table and timeouts = the code's CreateTable request and
# request budget; the last three come from `usersctl iam --json` (pytest tests/infra).
# Needs cfn-lint in .venv (requirements-infra.txt).
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

log "cfn-lint infra/template.yaml"
cfn-lint infra/template.yaml
# The workspace is built by then under make test; otherwise this builds usersctl.
declaration="$(mktemp "${TMPDIR:-/tmp}/iac-declaration.XXXXXX")"
trap 'rm -f "$declaration"' EXIT
log "usersctl iam --json > $declaration"
cargo run -q -p usersctl -- iam --json >"$declaration"
log "pytest tests/infra"
IAC_DECLARATION="$declaration" PYTHONDONTWRITEBYTECODE=1 \
    python -m pytest -p no:cacheprovider -q tests/infra "$@"
