#!/usr/bin/env bash
# Sets up a Debian 12 machine and runs reel's whole test suite: unit tests, and integration
# tests against real servers and clients (PostgreSQL, an S3 server, the official Python SDK,
# aiortc WebRTC publishers). The WebRTC tests run in a network namespace of their own, where
# only loopback exists, so no media packet leaves the machine.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
./scripts/setup-debian.sh --test
export PATH="$HOME/.cargo/bin:$PATH"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/reel-target}"
cache="$HOME/.cache/reel-test"
mkdir -p "$cache"

# An S3 server that checks signatures, over a directory.
if ! command -v s3s-fs >/dev/null 2>&1; then
  cargo install s3s-fs --version 0.14.1 --features binary --locked
fi
export REEL_TEST_S3S_FS="$(command -v s3s-fs)"

# PostgreSQL from Debian's packages (each test makes its own database).
source scripts/postgres.sh

# The official Stream SDK (compatibility tests) and aiortc (a WebRTC publisher).
venv="$cache/venv"
[[ -x "$venv/bin/python" ]] || python3 -m venv "$venv"
"$venv/bin/pip" install -q --disable-pip-version-check -r "$root/tests/python/requirements.txt"
export REEL_TEST_PYTHON="$venv/bin/python"

status=0
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --locked --workspace --no-fail-fast -E 'not binary(media)' || status=$?
  cargo nextest run --locked --no-run --test media
  scripts/isolated cargo nextest run --locked --offline --no-fail-fast --test media || status=$?
  cargo test --locked --workspace --doc || status=$?
else
  cargo test --locked --workspace --no-fail-fast --lib --bins --test control_plane || status=$?
  cargo test --locked --no-run --test media
  scripts/isolated cargo test --locked --offline --test media || status=$?
  cargo test --locked --workspace --doc || status=$?
fi
# The readers of untrusted bytes, fuzzed for a bounded time.
scripts/fuzz.sh "${REEL_FUZZ_SECONDS:-30}" || status=$?
exit "$status"
