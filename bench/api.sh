#!/usr/bin/env bash
# API load benchmark: SQLite and PostgreSQL, list recordings and get-or-create a call.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup-debian.sh --test
command -v wrk >/dev/null || { SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO=sudo; $SUDO apt-get install -y -qq wrk; }
export PATH="$HOME/.cargo/bin:$PATH"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/reel-target}"
source scripts/postgres.sh
cargo bench --locked --bench api
