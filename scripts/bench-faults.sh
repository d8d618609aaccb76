#!/usr/bin/env bash
# make bench (part): the odm stack under injected DynamoDB throttling. An in-memory DynamoDB
# Local (or DYNAMODB_ENDPOINT), the fault proxy (tests/e2e/faultproxy.py) in front of it, and
# one cargo lambda watch per SDK retry mode (DYNAMODB_RETRY_MODE=standard / adaptive), both
# through the proxy; scripts/bench-faults.py runs a bounded mixed workload per mode and fault
# rate and prints p50/p99 latency and the shares of 2xx / 503 (and the 500s: must be none).
# Env: BENCH_FAULT_RATES (default 0,0.1,0.3), BENCH_FAULT_REQUESTS (150), BENCH_FAULT_THREADS (4).
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

aws_defaults
BENCH_LOGS="$LOGS/bench-faults"
on_exit() {
    local status=$?
    if [ "$status" -ne 0 ] && [ -n "${WATCH_PID:-}" ]; then
        for logfile in "$BENCH_LOGS"/watch-*.log "$BENCH_LOGS/faultproxy.log"; do
            [ -f "$logfile" ] || continue
            log "bench-faults failed; last lines of $logfile:"
            tail -n 30 "$logfile" >&2 || true
        done
    fi
    stop_started
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
mkdir -p "$BENCH_LOGS"

if [ -n "${DYNAMODB_ENDPOINT:-}" ]; then
    log "using DynamoDB at $DYNAMODB_ENDPOINT"
else
    ddb_start "$(free_port)" "$BENCH_LOGS/dynamodb" "$BENCH_LOGS/dynamodb.log"
fi
[[ "$DYNAMODB_ENDPOINT" == http://* ]] || die "the fault proxy needs an http:// DYNAMODB_ENDPOINT"

log "building the workspace (watch reuses these artifacts)"
cargo build -q --workspace

TABLE_NAME="bench_faults_$(date +%Y%m%d%H%M%S)_$$"
export TABLE_NAME SCIM_PROFILE=odm RUST_LOG="${RUST_LOG:-warn}"
usersctl table create
usersctl user create --username bench-admin --admin --email bench-admin@example.com \
    --first-name Bench --last-name Admin >/dev/null
TOKEN="$(usersctl token create --username bench-admin | tail -n 1)"
[ -n "$TOKEN" ] || die "usersctl token create printed no token"

proxy_port="$(free_port)"
log "starting the DynamoDB fault proxy on 127.0.0.1:$proxy_port -> $DYNAMODB_ENDPOINT"
spawn "$ROOT" "$BENCH_LOGS/faultproxy.log" python tests/e2e/faultproxy.py \
    --listen-port "$proxy_port" --target "$DYNAMODB_ENDPOINT"
FAULTS_URL="http://127.0.0.1:$proxy_port/__faults__"
wait_http "$FAULTS_URL" 30 "$SPAWNED_PID" || die "the fault proxy did not start"

threads="${BENCH_FAULT_THREADS:-4}"
stacks=()
for mode in standard adaptive; do
    envfile="$BENCH_LOGS/watch-$mode.env"
    (DYNAMODB_ENDPOINT="http://127.0.0.1:$proxy_port" write_watch_env "$envfile")
    echo "DYNAMODB_RETRY_MODE=$mode" >>"$envfile"
    port="$(free_port)"
    watch_start "$port" "$envfile" "$BENCH_LOGS/watch-$mode.log" --ignore-changes --concurrency "$threads"
    warm_up "http://127.0.0.1:$port"
    stacks+=(--stack "$mode=http://127.0.0.1:$port")
done

log "mixed workload per retry mode and injected throttling rate"
python "$ROOT/scripts/bench-faults.py" --faults "$FAULTS_URL" --token "$TOKEN" "${stacks[@]}" \
    --rates "${BENCH_FAULT_RATES:-0,0.1,0.3}" --requests "${BENCH_FAULT_REQUESTS:-150}" \
    --threads "$threads" --json "$BENCH_LOGS/bench-faults.json"
