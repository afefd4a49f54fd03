#!/usr/bin/env bash
# Makes clips for `reel publish` with ffmpeg: vp8.ivf and h264.h264 (a moving test pattern,
# 30 fps, a key frame every 2 s) and opus.ogg (a tone, 20 ms packets). Existing files are kept.
# Usage: scripts/make-clips.sh DIR [SIZE=1280x720] [SECONDS=10] [VIDEO_BITRATE=1100k]
set -euo pipefail
dir=${1:?usage: $0 DIR [SIZE] [SECONDS] [VIDEO_BITRATE]}
size=${2:-1280x720}
seconds=${3:-10}
rate=${4:-1100k}
mkdir -p "$dir"
ff=(ffmpeg -hide_banner -loglevel error -nostdin -y)
pattern=(-f lavfi -i "testsrc2=size=$size:rate=30" -t "$seconds")
[[ -s $dir/vp8.ivf ]] || "${ff[@]}" "${pattern[@]}" -c:v libvpx -deadline realtime -cpu-used 8 \
  -b:v "$rate" -minrate "$rate" -maxrate "$rate" -g 60 "$dir/vp8.ivf"
[[ -s $dir/h264.h264 ]] || "${ff[@]}" "${pattern[@]}" -c:v libx264 -profile:v baseline \
  -preset veryfast -tune zerolatency -b:v "$rate" -g 60 -f h264 "$dir/h264.h264"
[[ -s $dir/opus.ogg ]] || "${ff[@]}" -f lavfi -i "sine=f=440:r=48000" -t "$seconds" \
  -c:a libopus -b:a 64k -frame_duration 20 "$dir/opus.ogg"
