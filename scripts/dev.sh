#!/usr/bin/env bash
# make dev: DynamoDB Local (persistent, .data/) + table + admin seed + cargo lambda watch behind
# scripts/devfront.py (API Gateway's handling of bodies that are not UTF-8, one log line per
# request) + the table's stream into events-publish.
# The terminal gets progress, the request log lines and the ready banner; cargo lambda watch's
# own output and the functions' JSON logs go to .data/watch.log. TERM or Ctrl-C stops
# everything it started within a few seconds (STOP_SECONDS, default 5, before KILL).
# Env: PORT (9000), DYNAMODB_PORT (8000), DYNAMODB_ENDPOINT (use it, start nothing; wait up to
#      DYNAMODB_WAIT_SECONDS, default 10, for it to answer), DEV_DATA (.data: the database,
#      credentials, logs), DEV_WARM_UP (1: start every function before "ready"; 0: each on its
#      first request), TABLE_NAME (users), SCIM_PROFILE (odm), RUST_LOG,
#      ADMIN_USERNAME/ADMIN_PASSWORD/ADMIN_TOKEN.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

PORT="${PORT:-9000}"
DATA="${DEV_DATA:-$ROOT/.data}"
CREDS="$DATA/dev-credentials"
export TABLE_NAME="${TABLE_NAME:-users}"
export SCIM_PROFILE="${SCIM_PROFILE:-odm}"
export RUST_LOG="${RUST_LOG:-info}"
aws_defaults
mkdir -p "$DATA"

trap stop_started EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [ -n "${DYNAMODB_ENDPOINT:-}" ]; then
    ddb_wait_external "make dev"
else
    ddb_start "${DYNAMODB_PORT:-8000}" "$DATA" "$DATA/dynamodb.log" persist
fi

interruptible build_usersctl
usersctl table create

# Credentials: environment first, then what an earlier run generated, else new ones.
saved_user="" saved_password="" saved_token=""
if [ -f "$CREDS" ]; then
    saved_user="$(sed -n 's/^ADMIN_USERNAME=//p' "$CREDS")"
    saved_password="$(sed -n 's/^ADMIN_PASSWORD=//p' "$CREDS")"
    saved_token="$(sed -n 's/^ADMIN_TOKEN=//p' "$CREDS")"
fi
ADMIN_USERNAME="${ADMIN_USERNAME:-${saved_user:-admin}}"
if [ "$ADMIN_USERNAME" != "$saved_user" ]; then saved_password="" saved_token=""; fi
ADMIN_PASSWORD="${ADMIN_PASSWORD:-${saved_password:-$(random_secret)}}"
given_token="${ADMIN_TOKEN:-}"
ADMIN_TOKEN="${given_token:-$saved_token}"

printf '%s' "$ADMIN_PASSWORD" |
    usersctl user create --username "$ADMIN_USERNAME" --admin --if-missing --password-stdin >/dev/null
printf '%s' "$ADMIN_PASSWORD" |
    usersctl user set-password --username "$ADMIN_USERNAME" --password-stdin >/dev/null
if [ -z "$ADMIN_TOKEN" ]; then
    ADMIN_TOKEN="$(usersctl token create --username "$ADMIN_USERNAME" | tail -n 1)"
elif ! printf '%s' "$ADMIN_TOKEN" |
    usersctl token create --username "$ADMIN_USERNAME" --token-stdin >/dev/null; then
    [ -z "$given_token" ] || die "ADMIN_TOKEN was not accepted by usersctl token create --token-stdin"
    log "the saved token was not accepted (database reset?); issuing a new one"
    ADMIN_TOKEN="$(usersctl token create --username "$ADMIN_USERNAME" | tail -n 1)"
fi
umask 077
printf 'ADMIN_USERNAME=%s\nADMIN_PASSWORD=%s\nADMIN_TOKEN=%s\n' \
    "$ADMIN_USERNAME" "$ADMIN_PASSWORD" "$ADMIN_TOKEN" >"$CREDS"

ENVFILE="$DATA/watch.env"
# Links (Location, meta.location, next) name this address, whatever a client's headers say.
export PUBLIC_BASE_URL="${PUBLIC_BASE_URL:-http://localhost:$PORT}"
# Change events are signed with a key derived from this secret (kept in .data/).
events_secret "$DATA/events-signing-secret"
write_watch_env "$ENVFILE"

WATCH_LOG="$DATA/watch.log"
WATCH_PORT="$(free_port)"
log "starting scripts/devfront.py on 127.0.0.1:$PORT (request log lines below)"
spawn "$ROOT" - python scripts/devfront.py --listen-port "$PORT" --target "http://127.0.0.1:$WATCH_PORT"
wait_port "$PORT" 30 "$SPAWNED_PID" || die "scripts/devfront.py did not start (port $PORT in use?)"
log "cargo lambda watch logs to $WATCH_LOG"
watch_start "$WATCH_PORT" "$ENVFILE" "$WATCH_LOG"
# The warm-up and the stream follower go straight to the emulator: not request log lines.
if [ "${DEV_WARM_UP:-1}" != 0 ]; then
    log "starting every function (one request each; progress in $WATCH_LOG)"
    interruptible warm_up "http://127.0.0.1:$WATCH_PORT" soft 2>>"$WATCH_LOG"
fi
interruptible events_warm_up "http://127.0.0.1:$WATCH_PORT"
events_start "http://127.0.0.1:$WATCH_PORT" "$DATA/events-follow.log"
cat <<BANNER

  ready: curl -H 'Authorization: Token $ADMIN_TOKEN' http://localhost:$PORT/api/users/self
  admin: $ADMIN_USERNAME / $ADMIN_PASSWORD   (saved in $CREDS)
  DynamoDB: $DYNAMODB_ENDPOINT, table $TABLE_NAME; Ctrl-C stops everything.
  events: usersctl events subscribe --url http://127.0.0.1:<port>/<path>  (SETs, RFC 8935 push)
          verify them with http://localhost:$PORT/api/v1/scim/.well-known/jwks.json
          (the stream follower logs to $DATA/events-follow.log)
  OAuth:  usersctl org oauth-client --slug <org>, then POST http://localhost:$PORT/api/v1/oauth/token
  logs: cargo lambda watch and the functions: $WATCH_LOG

BANNER
wait "$WATCH_PID"
