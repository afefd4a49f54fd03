#!/usr/bin/env bash
# Whole-system benchmark: `reel publish` participants recorded three ways by an in-process reel,
# on loopback inside a network namespace of its own.
exec "$(dirname "$0")/media.sh" system
