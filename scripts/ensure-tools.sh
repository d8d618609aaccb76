#!/usr/bin/env bash
# Install the system tools the local stack needs when they are missing (Debian/Ubuntu, root or sudo):
# Java 17 for DynamoDB Local, Node/npm for the pinned emulator package, python3-venv, curl.
set -euo pipefail

need=()
command -v java >/dev/null || need+=(openjdk-17-jre-headless)
command -v npm >/dev/null || need+=(nodejs npm)
command -v curl >/dev/null || need+=(curl)
command -v setsid >/dev/null || need+=(util-linux)
command -v python3 >/dev/null || need+=(python3)
if command -v python3 >/dev/null && ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
    need+=(python3-venv)
fi
[ "${#need[@]}" -eq 0 ] && exit 0

echo "==> installing: ${need[*]}" >&2
command -v apt-get >/dev/null || { echo "error: please install ${need[*]}" >&2; exit 1; }
sudo=()
[ "$(id -u)" -eq 0 ] || sudo=(sudo)
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${need[@]}"
