#!/usr/bin/env bash
# make bench (part): init time of two functions, release build for this host, run
# against a local Lambda Runtime API (scripts/bench-init.py): process start -> first
# poll for an invocation, and -> the first response. Env: BENCH_RUNS (default 15).
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

FUNCTIONS=(users-self scim-users-list)
log "cargo build --release ${FUNCTIONS[*]/#/-p } (host; the first build takes minutes)"
cargo build -q --release "${FUNCTIONS[@]/#/-p}"
log "init time per function (local Runtime API)"
python3 "$ROOT/scripts/bench-init.py" "${BENCH_RUNS:-15}" \
    "$TARGET_DIR/release/users-self=GET /api/users/self" \
    "$TARGET_DIR/release/scim-users-list=GET /api/v1/scim/Users"
