#!/usr/bin/env bash
# Whole-system benchmark: `reel publish` participants recorded three ways by an in-process reel,
# on loopback inside a network namespace of its own.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup-debian.sh --test
export PATH="$HOME/.cargo/bin:$PATH"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/reel-target}"
cargo bench --locked --bench system --no-run
scripts/isolated cargo bench --locked --offline --bench system
