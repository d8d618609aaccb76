#!/usr/bin/env bash
# make package: every function, release, cross-compiled for Lambda arm64
# (provided.al2023), zipped: target/lambda/<function>/bootstrap.zip. Then a table of sizes.
# cargo-lambda links with Zig from the PyPI package `ziglang` (a dependency of
# cargo-lambda in .venv); the Rust standard library for the target comes from rustup.
# Extra arguments go to `cargo lambda build` (e.g. -p users-self for one function).
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

TARGET=aarch64-unknown-linux-gnu
command -v cargo-lambda >/dev/null || die "cargo-lambda is not in .venv (run: make deps)"
if ! rustup target list --installed | grep -qx "$TARGET"; then
    log "rustup target add $TARGET"
    rustup target add "$TARGET" || die "cannot install the Rust standard library for $TARGET"
fi

if [ "$#" -gt 0 ]; then
    selection=("$@")
else
    selection=()
    for manifest in functions/*/Cargo.toml; do
        selection+=(-p "$(sed -n 's/^name = "\(.*\)"/\1/p' "$manifest" | head -n 1)")
    done
fi

log "cargo lambda build --release --arm64 --output-format zip ${selection[*]}"
start=$SECONDS
cargo lambda build --release --arm64 --output-format zip "${selection[@]}"
log "built in $((SECONDS - start)) s"

python3 - "$TARGET_DIR/lambda" <<'PY'
import pathlib, sys, zipfile
rows = []
for z in sorted(pathlib.Path(sys.argv[1]).glob("*/bootstrap.zip")):
    with zipfile.ZipFile(z) as f:
        unpacked = sum(i.file_size for i in f.infolist())
    rows.append((z.parent.name, z.stat().st_size, unpacked))
print(f"{'function':<22}{'zip':>12}{'bootstrap':>12}")
for name, packed, unpacked in rows:
    print(f"{name:<22}{packed / 2**20:>10.2f}MiB{unpacked / 2**20:>10.2f}MiB")
print(f"{len(rows)} zips in target/lambda/*/bootstrap.zip")
PY
