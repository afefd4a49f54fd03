#!/usr/bin/env bash
# Installs what building and running reel needs on Debian 12. Safe to run again.
set -euo pipefail

# The libav* headers and clang build the bindings of the `mux` module (reel links the system
# FFmpeg 5.1), and libopus conceals lost audio. Composite recordings draw calls in Chromium on a virtual display (Xvfb), with
# fonts for every script a participant's name may use.
packages=(build-essential pkg-config ca-certificates curl clang libclang-dev
  libavcodec-dev libavformat-dev libavutil-dev
  libavdevice-dev libswresample-dev libswscale-dev libopus-dev
  chromium xvfb fonts-noto-core fonts-noto-cjk fonts-noto-color-emoji)
if [[ "${1:-}" == "--test" ]]; then
  # The test suite also starts PostgreSQL, runs Python clients (the Stream SDK, aiortc, a
  # Chromium driver), publishes from headless Chromium, makes clips for `reel publish` with
  # ffmpeg, and isolates WebRTC tests in a network namespace (unshare from util-linux, ip from
  # iproute2).
  packages+=(postgresql python3 python3-venv iproute2 util-linux ffmpeg)
  # `bench/composite.sh` measures the other capture path in Chromium's headless shell.
  [[ "${2:-}" == "--composite" ]] && packages+=(chromium-headless-shell)
elif [[ "${1:-}" == "--bench" ]]; then
  # `cargo bench --bench rawtools` runs the reference method (GStreamer and ffmpeg) beside
  # reel and measures both with GNU time.
  packages+=(ffmpeg gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good time)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "Installing: ${missing[*]}"
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if ! command -v cargo >/dev/null 2>&1; then
  [[ -x "$HOME/.cargo/bin/cargo" ]] || curl -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
fi
