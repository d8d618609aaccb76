#!/usr/bin/env bash
# make bench (part): DynamoDB round trips and capacity units per operation, measured
# in-process against an in-memory DynamoDB Local at two table sizes.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

aws_defaults
trap stop_started EXIT
ddb_for_tests
cargo build -q -p directory-tests --bin dynamodb-costs
log "DynamoDB calls and consumed capacity per request (auth included)"
"$TARGET_DIR/debug/dynamodb-costs"
