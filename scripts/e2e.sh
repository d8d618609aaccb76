#!/usr/bin/env bash
# End-to-end: build the workspace, serve every function with cargo lambda watch against a
# fresh table, seed an admin with usersctl, warm up each route, run pytest tests/e2e.
# Uses DYNAMODB_ENDPOINT when set, else starts an in-memory DynamoDB Local.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

aws_defaults
WATCH_LOG="$LOGS/watch.log"
on_exit() {
    local status=$?
    if [ "$status" -ne 0 ] && [ -n "${WATCH_PID:-}" ]; then
        log "e2e failed; last lines of $WATCH_LOG:"
        tail -n 60 "$WATCH_LOG" >&2 || true
    fi
    stop_started
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
mkdir -p "$LOGS"

ddb_for_tests

log "building the workspace (watch reuses these artifacts)"
cargo build --workspace

TABLE_NAME="e2e_$(date +%Y%m%d%H%M%S)_$$"
export TABLE_NAME
export SCIM_PROFILE="${SCIM_PROFILE:-odm}"
export RUST_LOG="${RUST_LOG:-info}"
usersctl table create

export E2E_ADMIN_USERNAME="e2e-admin"
E2E_ADMIN_PASSWORD="$(random_secret)"
export E2E_ADMIN_PASSWORD
printf '%s' "$E2E_ADMIN_PASSWORD" |
    usersctl user create --username "$E2E_ADMIN_USERNAME" --admin --password-stdin \
        --email e2e-admin@example.com --first-name E2E --last-name Admin >/dev/null
E2E_ADMIN_TOKEN="$(usersctl token create --username "$E2E_ADMIN_USERNAME" | tail -n 1)"
export E2E_ADMIN_TOKEN
[ -n "$E2E_ADMIN_TOKEN" ] || die "usersctl token create printed no token"

ENVFILE="$LOGS/watch.env"
write_watch_env "$ENVFILE"

port="$(free_port)"
export E2E_BASE_URL="http://127.0.0.1:$port"
export E2E_USERSCTL="$USERSCTL"
watch_start "$port" "$ENVFILE" "$WATCH_LOG" --ignore-changes
warm_up "$E2E_BASE_URL"

log "pytest tests/e2e against $E2E_BASE_URL (table $TABLE_NAME)"
PYTHONDONTWRITEBYTECODE=1 python -m pytest -p no:cacheprovider tests/e2e "$@"
