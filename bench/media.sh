#!/usr/bin/env bash
# Media plane benchmark: `reel publish` participants against an in-process reel, on loopback
# inside a network namespace of its own. `bench/media.sh system` runs the whole-system benchmark,
# `bench/media.sh broadcast` the broadcast recording benchmark, `bench/media.sh soak` the soak.
set -euo pipefail
bench="${1:-media}"
cd "$(dirname "$0")/.."
./scripts/setup-debian.sh --test "$([[ $bench == composite || $bench == soak ]] && echo --composite || true)"
export PATH="$HOME/.cargo/bin:$PATH"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/reel-target}"
cargo bench --locked --bench "$bench" --no-run
# reel asks for a 32 MiB receive buffer on its media socket; the kernel grants twice rmem_max.
if (($(sysctl -n net.core.rmem_max) < 16777216)); then
  if [[ $(id -u) -eq 0 ]]; then
    sysctl -w net.core.rmem_max=16777216
  else
    echo "net.core.rmem_max is below 16 MiB: reel's media socket will drop bursts" >&2
  fi
fi
scripts/isolated cargo bench --locked --offline --bench "$bench"
