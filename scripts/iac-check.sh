#!/usr/bin/env bash
# make test (stage iac): lint the SAM template and check it against the code:
# routes = the cargo-lambda router, per-function IAM = what each handler calls,
# table = keys.rs (pytest tests/infra). Needs cfn-lint in .venv (requirements-infra.txt).
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

log "cfn-lint infra/template.yaml"
cfn-lint infra/template.yaml
log "pytest tests/infra"
PYTHONDONTWRITEBYTECODE=1 python -m pytest -p no:cacheprovider -q tests/infra "$@"
