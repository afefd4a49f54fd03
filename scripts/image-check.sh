#!/usr/bin/env bash
# Proves the production image's runtime stage where no container registry is reachable: builds
# its file system from Debian's packages with mmdebstrap (the list the Dockerfile installs,
# deploy/runtime-packages.txt), copies the release binary in, and runs `reel serve` and one
# composite recording in it (chroot, in network, mount and process namespaces of its own):
# every library resolves, the recording is made, nothing it started outlives it.
# Usage (as root): scripts/image-check.sh [WORK_DIR=~/.cache/reel-image-check]
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/reel-target}"
work=$(realpath -m "${1:-$HOME/.cache/reel-image-check}")
root=$work/rootfs
[[ $(id -u) -eq 0 ]] || { echo "image-check: run as root (it uses chroot and mounts)" >&2; exit 2; }
command -v mmdebstrap >/dev/null || apt-get install -y -q mmdebstrap
mkdir -p "$work"

# The runtime stage's file system, made again when the package list changes.
packages=$(sed -e 's/#.*//' deploy/runtime-packages.txt | xargs | tr ' ' ,)
if [[ ! -x $root/usr/bin/apt-get || "$(cat "$work/packages" 2>/dev/null)" != "$packages" ]]; then
  rm -rf "$root"
  mmdebstrap --variant=minbase --include="$packages" bookworm "$root"
  echo "$packages" >"$work/packages"
fi
cargo build --release --locked --bin reel
install -m 0755 "$CARGO_TARGET_DIR/release/reel" "$root/usr/local/bin/reel"
missing=$(chroot "$root" ldd /usr/local/bin/reel | grep 'not found' || true)
if [[ -n $missing ]]; then
  echo "image-check: libraries missing in the image:" >&2
  echo "$missing" >&2
  exit 1
fi
echo "image-check: every library of reel resolves in the image"
scripts/make-clips.sh "$work/clips" 640x360 4 600k
mkdir -p "$root/clips"
cp "$work/clips/vp8.ivf" "$work/clips/opus.ogg" "$root/clips/"
rm -rf "$root/var/lib/reel" "$work/out.mp4"

# One call recorded in the image; reel and the publisher run from it, the checks from here.
run() {
  set -euo pipefail
  ip link set lo up
  mount -t proc proc "$root/proc"
  mount --rbind /dev "$root/dev"
  mount -t tmpfs tmpfs "$root/dev/shm"
  mount -t tmpfs tmpfs "$root/tmp"
  local secret=image-check-secret-0123456789 base=http://127.0.0.1:3000
  local kit=$base/client/v4/accounts/a/realtime/kit/b/recordings
  export REEL_API_KEY=image-check REEL_API_SECRET=$secret REEL_LISTEN=127.0.0.1:3000 \
    REEL_DATA_DIR=/var/lib/reel/data REEL_SESSION_GRACE=1s HOME=/var/lib/reel
  mkdir -p "$root/var/lib/reel"
  chroot "$root" /usr/local/bin/reel serve >"$work/serve.log" 2>&1 &
  local reel=$!
  for _ in $(seq 100); do grep -q "reel is serving" "$work/serve.log" && break; sleep 0.2; done
  grep -q "reel is serving" "$work/serve.log" || { cat "$work/serve.log"; return 1; }
  chroot "$root" /usr/local/bin/reel publish "$base/whip/default/check" --video /clips/vp8.ivf \
    --audio /clips/opus.ogg --user ana --duration 10s >"$work/publish.log" 2>&1 &
  local publisher=$!
  local id=""
  for _ in $(seq 50); do
    sleep 0.2
    id=$(curl -sf -X POST -H "Authorization: Bearer $secret" -H 'content-type: application/json' \
      -d '{"meeting_id": "check"}' "$kit" | sed -n 's/.*"id":"\([^"]*\)".*/\1/p') && [[ -n $id ]] && break
  done
  [[ -n $id ]] || { echo "image-check: the composite recording did not start" >&2; cat "$work/serve.log"; return 1; }
  echo "image-check: composite recording $id started"
  sleep 6
  curl -sf -X PUT -H "Authorization: Bearer $secret" -H 'content-type: application/json' \
    -d '{"action": "stop"}' "$kit/$id" >/dev/null
  wait "$publisher" || true
  local answer="" url=""
  for _ in $(seq 150); do
    answer=$(curl -sf -H "Authorization: Bearer $secret" "$kit/$id")
    url=$(echo "$answer" | sed -n 's/.*"download_url":"\([^"]*\)".*/\1/p')
    grep -q '"status":"UPLOADED"' <<<"$answer" && [[ -n $url ]] && break
    sleep 0.2
  done
  [[ -n $url ]] || { echo "image-check: no file: $answer" >&2; cat "$work/serve.log"; return 1; }
  curl -sf -o "$work/out.mp4" "$url"
  kill -TERM "$reel"
  wait "$reel" || true
  # Nothing reel started (Chromium, Xvfb) is left in this process namespace.
  local left
  left=$(ps -eo comm= | grep -E 'chrom|Xvfb' || true)
  [[ -z $left ]] || { echo "image-check: left running: $left" >&2; return 1; }
}
export root work
export -f run
unshare --net --mount --pid --fork --mount-proc bash -c run

probe=$(ffprobe -v error -show_entries stream=codec_name:format=duration -of csv=p=0 "$work/out.mp4" | xargs)
echo "image-check: recorded in the image: $probe"
[[ $probe == *h264* && $probe == *aac* ]] || { echo "image-check: not H.264 and AAC" >&2; exit 1; }
errors=$(ffmpeg -nostdin -v error -i "$work/out.mp4" -f null - 2>&1 | head -5)
[[ -z $errors ]] || { echo "image-check: the file does not decode cleanly: $errors" >&2; exit 1; }
echo "image-check: passed"
