#!/usr/bin/env bash
# Half an hour of load on every recording type, memory and CPU plotted over time
# (`REEL_SOAK_MINUTES`, `REEL_SOAK_PARTICIPANTS`): see bench/soak.rs.
exec "$(dirname "$0")/media.sh" soak
