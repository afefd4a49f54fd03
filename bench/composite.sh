#!/usr/bin/env bash
# Composite benchmark: one 720p30 composite on each capture path, and audio-only composites,
# of `reel publish` participants on loopback inside a network namespace of its own.
exec "$(dirname "$0")/media.sh" composite
