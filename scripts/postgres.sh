#!/usr/bin/env bash
# Sourced by the test and benchmark scripts: starts Debian's PostgreSQL cluster, makes a
# superuser for the tests, drops databases earlier runs left, and exports REEL_TEST_POSTGRES_URL.
cluster=$(pg_lsclusters --no-header | awk 'NR==1 {print $1" "$2}')
if [[ -z "$cluster" ]]; then
  echo "no PostgreSQL cluster found" >&2
  exit 1
fi
pg_ctlcluster $cluster start 2>/dev/null || true
port=$(pg_lsclusters --no-header | awk 'NR==1 {print $3}')
for _ in $(seq 50); do pg_isready -q -h 127.0.0.1 -p "$port" && break; sleep 0.2; done
as_postgres() { if [[ $(id -u) -eq 0 ]]; then su postgres -c "$1"; else sudo -u postgres sh -c "$1"; fi; }
as_postgres "psql -q -p $port -tc \"SELECT 1 FROM pg_roles WHERE rolname = 'reel_test'\" | grep -q 1 || \
             psql -q -p $port -c \"CREATE ROLE reel_test LOGIN SUPERUSER PASSWORD 'reel_test'\""
as_postgres "psql -q -p $port -tAc \"SELECT datname FROM pg_database WHERE datname LIKE 'reel_test_%'\"" |
  while read -r db; do as_postgres "psql -q -p $port -c 'DROP DATABASE IF EXISTS \"$db\"'"; done
export REEL_TEST_POSTGRES_URL="postgres://reel_test:reel_test@127.0.0.1:$port/postgres"
