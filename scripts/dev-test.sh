#!/usr/bin/env bash
# The `make dev` checks: tests/dev/test_devfront.py (the front's routing and events, no stack)
# and tests/dev/test_make_dev.py, which starts the stack in the background with
# its own data directory and ports, asks it a body that is not UTF-8, follows a change to a
# subscribed receiver, reads the terminal and the data directory for a fake AWS secret key,
# stops it with TERM and looks for anything left. Needs the workspace built (scripts/e2e.sh
# builds it); functions start on first use (DEV_WARM_UP=0), so it takes seconds, not minutes.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
PYTHONDONTWRITEBYTECODE=1 python -m pytest -p no:cacheprovider tests/dev "$@"
