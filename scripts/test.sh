#!/usr/bin/env bash
# Sets up a Debian 12 machine and runs reel's whole test suite: unit tests, and integration
# tests against real servers (PostgreSQL, an S3 server, the official Python SDK).
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

# PostgreSQL from Debian's packages, with a superuser for the tests (each test makes its own database).
cluster=$(pg_lsclusters --no-header | awk 'NR==1 {print $1" "$2}')
if [[ -z "$cluster" ]]; then
  echo "no PostgreSQL cluster found" >&2; exit 1
fi
pg_ctlcluster $cluster start 2>/dev/null || true
port=$(pg_lsclusters --no-header | awk 'NR==1 {print $3}')
for _ in $(seq 50); do pg_isready -q -h 127.0.0.1 -p "$port" && break; sleep 0.2; done
as_postgres() { if [[ $(id -u) -eq 0 ]]; then su postgres -c "$1"; else sudo -u postgres sh -c "$1"; fi; }
as_postgres "psql -q -p $port -tc \"SELECT 1 FROM pg_roles WHERE rolname = 'reel_test'\" | grep -q 1 || \
             psql -q -p $port -c \"CREATE ROLE reel_test LOGIN SUPERUSER PASSWORD 'reel_test'\""
export REEL_TEST_POSTGRES_URL="postgres://reel_test:reel_test@127.0.0.1:$port/postgres"
# Databases left by earlier runs.
as_postgres "psql -q -p $port -tAc \"SELECT datname FROM pg_database WHERE datname LIKE 'reel_test_%'\"" |
  while read -r db; do as_postgres "psql -q -p $port -c 'DROP DATABASE IF EXISTS \"$db\"'"; done

# The official Stream SDK, for compatibility tests.
venv="$cache/venv"
[[ -x "$venv/bin/python" ]] || python3 -m venv "$venv"
"$venv/bin/pip" install -q --disable-pip-version-check -r "$root/tests/python/requirements.txt"
export REEL_TEST_PYTHON="$venv/bin/python"

if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --locked --no-fail-fast
  cargo test --locked --doc
else
  cargo test --locked --no-fail-fast
fi
