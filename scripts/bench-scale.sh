#!/usr/bin/env bash
# make bench (part): DynamoDB calls, capacity units and latency per request at directory
# size N, against an in-memory DynamoDB Local (or DYNAMODB_ENDPOINT): loads N users with
# store.users().import (BatchWriteItem), then tests/bench/scale.rs measures list pages at
# every depth, lookups, a full index import and a cursor walk, and marks each row
# PASS/OVER against the budgets the README states (it reports; OVER does not fail it).
# Then two SCIM tenants of TENANT_N users each (default 5000) beside them: tenant A's pages,
# lookups and cursor page at its own base with its own token.
# Env: N (default 10000), RUNS (3; median latency), WALK_SECONDS (300; a full walk
# stops there and is judged on what it spent so far), TENANT_N (5000).
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

aws_defaults
trap stop_started EXIT
ddb_for_tests
cargo build -q -p directory-tests --bin scale
log "cost per request at ${N:-10000} users (debug build; latency is DynamoDB Local's plus ours)"
N="${N:-10000}" RUNS="${RUNS:-3}" "$TARGET_DIR/debug/scale"
