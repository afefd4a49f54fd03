#!/usr/bin/env bash
# Sets up a Debian 12 machine, builds reel and runs `reel serve` on the embedded defaults
# (SQLite and recordings under ./data, API on 127.0.0.1:3000). Extra arguments go to `serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup-debian.sh
export PATH="$HOME/.cargo/bin:$PATH"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/reel-target}"
cargo build --release --locked
exec "$CARGO_TARGET_DIR/release/reel" serve "$@"
