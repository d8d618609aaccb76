#!/usr/bin/env bash
# make test: Rust tests (unit + integration) against an in-memory DynamoDB Local, then the
# end-to-end suite (scripts/e2e.sh), then `make dev` itself (scripts/dev-test.sh). Every stage
# runs; the exit code fails if any failed.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

aws_defaults
trap stop_started EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

ddb_for_tests

failed=()
stage() {
    local name="$1" start=$SECONDS; shift
    log "stage $name: $*"
    if "$@"; then
        log "stage $name passed ($((SECONDS - start)) s)"
    else
        log "stage $name FAILED ($((SECONDS - start)) s)"
        failed+=("$name")
    fi
}

stage rust cargo test --workspace
stage e2e "$ROOT/scripts/e2e.sh"
stage dev "$ROOT/scripts/dev-test.sh"
stage iac "$ROOT/scripts/iac-check.sh"

if [ "${#failed[@]}" -gt 0 ]; then
    log "failed stages: ${failed[*]}"
    exit 1
fi
log "all stages passed"
