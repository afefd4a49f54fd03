#!/usr/bin/env bash
# Fuzzes the readers of untrusted bytes for a bounded time each: rtpdump files, archives, what
# extraction does with their packets, WHIP/WHEP offers and trickle fragments, datagrams into a
# WebRTC session, RTCP, and every request to the HTTP API (`fuzz/fuzz_targets/`).
# Usage: `scripts/fuzz.sh [seconds per target, default 30] [target...]`.
# Exits non-zero, with the crashing input under fuzz/artifacts/, if any input panics.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/reel-target}"
seconds="${1:-30}"
shift || true
targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=(rtpdump archive timeline offer datagrams rtcp api)
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --version 0.13.2 --locked
corpus="$HOME/.cache/reel-fuzz"
# No sanitizer: reel has no unsafe code of its own, so a stable toolchain builds the targets.
cargo fuzz build --sanitizer none
for target in "${targets[@]}"; do
  mkdir -p "$corpus/$target"
  seeds=()
  [[ -d "fuzz/seeds/$target" ]] && seeds=("fuzz/seeds/$target")
  echo "fuzzing $target for ${seconds}s"
  log="$corpus/$target.log"
  if ! cargo fuzz run --sanitizer none "$target" "$corpus/$target" "${seeds[@]}" -- \
    -max_total_time="$seconds" -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 >"$log" 2>&1; then
    grep -v -E '^#[0-9]+' "$log" | tail -40
    echo "fuzz target $target failed: the input is under fuzz/artifacts/$target/"
    exit 1
  fi
  grep -E '^stat::(number_of_executed_units|peak_rss_mb)|DONE' "$log"
done
