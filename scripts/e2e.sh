#!/usr/bin/env bash
# End-to-end: build the workspace, serve every function with cargo lambda watch against a
# fresh table, seed an admin with usersctl, warm up each route, run pytest tests/e2e.
# A second cargo lambda watch serves SCIM_PROFILE=rfc against a table of its own, for the
# RFC 7644 / Okta / Entra ID / scim2-tester suite (tests/e2e/test_scim_rfc.py).
# The main stack reaches DynamoDB through tests/e2e/faultproxy.py (E2E_FAULTS_URL), for the
# DynamoDB-failure suite (tests/e2e/test_faults.py); the rfc stack reaches it directly.
# The tests reach each cargo lambda watch through tests/e2e/emulatorfront.py, which passes
# everything through but resends a read that the emulator itself failed (its docstring says
# why); the count of such resends is printed at the end.
# Uses DYNAMODB_ENDPOINT when set, else starts an in-memory DynamoDB Local.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

aws_defaults
WATCH_LOG="$LOGS/watch.log"
RFC_WATCH_LOG="$LOGS/watch-rfc.log"
on_exit() {
    local status=$? logfile
    if [ "$status" -ne 0 ] && [ -n "${WATCH_PID:-}" ]; then
        for logfile in "$WATCH_LOG" "$RFC_WATCH_LOG" "$LOGS/faultproxy.log" "$LOGS/events-follow.log"; do
            [ -f "$logfile" ] || continue
            log "e2e failed; last lines of $logfile:"
            tail -n 60 "$logfile" >&2 || true
        done
        # Last, so that it is what a truncated CI log still shows.
        if [ -s "${E2E_FAULTS_REPORT:-}" ]; then
            log "e2e failed; problems the DynamoDB-failure workload found ($E2E_FAULTS_REPORT):"
            python3 -c 'import json, sys; r = json.load(open(sys.argv[1])); print("seed", r.get("seed"), r.get("per_call")); print("\n".join(r.get("problems") or ["(none)"]))' \
                "$E2E_FAULTS_REPORT" >&2 || true
        fi
    fi
    stop_started
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
mkdir -p "$LOGS"
rm -f "$RFC_WATCH_LOG" "$LOGS"/emulatorfront*.log "$LOGS/events-follow.log" "$LOGS/events-signing-secret"

ddb_for_tests

log "building the workspace (watch reuses these artifacts)"
cargo build --workspace

TABLE_NAME="e2e_$(date +%Y%m%d%H%M%S)_$$"
export TABLE_NAME
export SCIM_PROFILE="${SCIM_PROFILE:-odm}"
export RUST_LOG="${RUST_LOG:-info}"
export E2E_SCIM_PROFILE="$SCIM_PROFILE"
# Instances per function, so that parallel requests really run in parallel (race tests).
export E2E_WATCH_CONCURRENCY="${E2E_WATCH_CONCURRENCY:-8}"
usersctl table create
# The change events' signing secret, for both stacks (its key is at the JWKS route).
events_secret "$LOGS/events-signing-secret"

# seed_admin PASSWORD: an admin with names and an email (Okta's checks expect the first
# listed user to have them); prints an API token of it.
seed_admin() {
    printf '%s' "$1" |
        usersctl user create --username "$E2E_ADMIN_USERNAME" --admin --password-stdin \
            --email e2e-admin@example.com --first-name E2E --last-name Admin >/dev/null
    usersctl token create --username "$E2E_ADMIN_USERNAME" | tail -n 1
}

export E2E_ADMIN_USERNAME="e2e-admin"
E2E_ADMIN_PASSWORD="$(random_secret)"
export E2E_ADMIN_PASSWORD
E2E_ADMIN_TOKEN="$(seed_admin "$E2E_ADMIN_PASSWORD")"
export E2E_ADMIN_TOKEN
[ -n "$E2E_ADMIN_TOKEN" ] || die "usersctl token create printed no token"

# The fault proxy (tests/e2e/faultproxy.py) sits between the main stack's functions and
# DynamoDB: pass-through until tests/e2e/test_faults.py tells it (E2E_FAULTS_URL) to fail a
# share of the calls. usersctl, the tests and the rfc stack keep talking to DynamoDB directly.
FAULTS_LOG="$LOGS/faultproxy.log"
ENVFILE="$LOGS/watch.env"
unset E2E_FAULTS_URL E2E_FAULTS_REPORT
faults_port="$(free_port)"
port="$(free_port)"
export E2E_BASE_URL="http://127.0.0.1:$port"
# Links (Location, meta.location, next) name this address, whatever a client's headers say.
export PUBLIC_BASE_URL="$E2E_BASE_URL"
if [[ "$DYNAMODB_ENDPOINT" == http://* ]]; then
    log "starting the DynamoDB fault proxy on 127.0.0.1:$faults_port -> $DYNAMODB_ENDPOINT" \
        "(log: $FAULTS_LOG)"
    spawn "$ROOT" "$FAULTS_LOG" python tests/e2e/faultproxy.py \
        --listen-port "$faults_port" --target "$DYNAMODB_ENDPOINT"
    wait_http "http://127.0.0.1:$faults_port/__faults__" 30 "$SPAWNED_PID" || {
        tail -n 30 "$FAULTS_LOG" >&2 || true
        die "the fault proxy did not start"
    }
    export E2E_FAULTS_URL="http://127.0.0.1:$faults_port/__faults__"
    export E2E_FAULTS_REPORT="$LOGS/faults-report.json"
    (DYNAMODB_ENDPOINT="http://127.0.0.1:$faults_port" write_watch_env "$ENVFILE")
else
    log "DYNAMODB_ENDPOINT is not http://: no fault proxy, tests/e2e/test_faults.py is skipped"
    write_watch_env "$ENVFILE"
fi

export E2E_USERSCTL="$USERSCTL"

# front_start PORT LOGFILE: tests/e2e/emulatorfront.py on PORT, in front of a cargo lambda
# watch it expects on a port of its own: WATCH_PORT.
front_start() {
    local front_port="$1" logfile="$2"
    WATCH_PORT="$(free_port)"
    spawn "$ROOT" "$logfile" python tests/e2e/emulatorfront.py \
        --listen-port "$front_port" --target "http://127.0.0.1:$WATCH_PORT"
    wait_port "$front_port" 30 "$SPAWNED_PID" || die "tests/e2e/emulatorfront.py did not start"
}
front_start "$port" "$LOGS/emulatorfront.log"
watch_start "$WATCH_PORT" "$ENVFILE" "$WATCH_LOG" --ignore-changes --concurrency "$E2E_WATCH_CONCURRENCY"
warm_up "$E2E_BASE_URL"
# The main stack's change events: its table's stream into its events-publish
# (tests/e2e/test_events.py subscribes receivers of its own).
events_warm_up "http://127.0.0.1:$WATCH_PORT"
events_start "http://127.0.0.1:$WATCH_PORT" "$LOGS/events-follow.log"

# The rfc stack: same binaries (already built, so it starts fast), its own table and admin.
export E2E_RFC_TABLE_NAME="${TABLE_NAME}_rfc"
E2E_RFC_ADMIN_TOKEN="$(
    export TABLE_NAME="$E2E_RFC_TABLE_NAME"
    usersctl table create >&2
    seed_admin "$(random_secret)"
)"
export E2E_RFC_ADMIN_TOKEN
[ -n "$E2E_RFC_ADMIN_TOKEN" ] || die "usersctl token create printed no token (rfc table)"
RFC_ENVFILE="$LOGS/watch-rfc.env"
port="$(free_port)"
export E2E_RFC_BASE_URL="http://127.0.0.1:$port"
# scim2-tester validates ServiceProviderConfig with scim2-models, which refuses RFC 9967's
# securityEvents (an attribute RFC 7643 does not define): this stack leaves it out.
(TABLE_NAME="$E2E_RFC_TABLE_NAME" SCIM_PROFILE=rfc PUBLIC_BASE_URL="$E2E_RFC_BASE_URL" \
    SCIM_SECURITY_EVENTS=off write_watch_env "$RFC_ENVFILE")
front_start "$port" "$LOGS/emulatorfront-rfc.log"
watch_start "$WATCH_PORT" "$RFC_ENVFILE" "$RFC_WATCH_LOG" --ignore-changes --concurrency "$E2E_WATCH_CONCURRENCY"
# It is only asked SCIM requests: warm up only the SCIM functions (lib.sh's warm_up, with
# warm_routes narrowed to /api/v1/scim).
eval "$(declare -f warm_routes | sed '1s/^warm_routes/all_warm_routes/')"
warm_routes() { all_warm_routes | grep ' /api/v1/scim'; }
warm_up "$E2E_RFC_BASE_URL"

log "pytest tests/e2e against $E2E_BASE_URL (table $TABLE_NAME, SCIM_PROFILE=$SCIM_PROFILE)" \
    "and $E2E_RFC_BASE_URL (table $E2E_RFC_TABLE_NAME, SCIM_PROFILE=rfc)"
status=0
PYTHONDONTWRITEBYTECODE=1 python -m pytest -p no:cacheprovider tests/e2e "$@" || status=$?
log "reads resent after cargo lambda watch's own 500 (tests/e2e/emulatorfront.py):" \
    "$(cat "$LOGS"/emulatorfront*.log | grep -c '^emulator-500 retried' || true)"
exit "$status"
