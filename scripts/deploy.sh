#!/usr/bin/env bash
# make deploy: `sam build` (SAM's rust-cargolambda build method: cargo lambda build
# --release --arm64 per function, in the workspace) then `sam deploy --guided`.
# The SAM CLI is installed on first use into infra/.venv-sam (pinned in
# infra/requirements-deploy.txt), not into .venv: make test never needs it.
# Env: GUIDED=0 deploys with the answers saved in infra/samconfig.toml by an earlier
# guided run; extra arguments go to `sam deploy` (e.g. --parameter-overrides ScimProfile=rfc).
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

SAM_VENV="$ROOT/infra/.venv-sam"
REQUIREMENTS="$ROOT/infra/requirements-deploy.txt"
if [ ! -x "$SAM_VENV/bin/sam" ] || [ "$REQUIREMENTS" -nt "$SAM_VENV/.installed" ]; then
    log "installing the SAM CLI into $SAM_VENV"
    [ -x "$SAM_VENV/bin/python" ] || python3 -m venv "$SAM_VENV"
    "$SAM_VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$REQUIREMENTS"
    touch "$SAM_VENV/.installed"
fi
SAM="$SAM_VENV/bin/sam"

TARGET=aarch64-unknown-linux-gnu
rustup target list --installed | grep -qx "$TARGET" || rustup target add "$TARGET"
command -v cargo-lambda >/dev/null || die "cargo-lambda is not in .venv (run: make deps)"

export SAM_CLI_TELEMETRY=0
# rust-cargolambda is a SAM beta feature: opt in without a prompt.
export SAM_CLI_BETA_RUST_CARGO_LAMBDA=1

cd "$ROOT/infra"
log "sam build (cargo lambda build --release --arm64, one function at a time)"
"$SAM" build --beta-features --template-file template.yaml

if [ "${GUIDED:-1}" = 0 ]; then
    [ -f samconfig.toml ] || die "GUIDED=0 needs infra/samconfig.toml from an earlier guided deploy"
    "$SAM" deploy --no-confirm-changeset "$@"
else
    "$SAM" deploy --guided --capabilities CAPABILITY_IAM "$@"
fi
