#!/usr/bin/env bash
# The main job on this node with embedded defaults: installs, builds, and
# runs the agent with a live view of the busiest workloads (Ctrl-C stops it
# and detaches every program). Prometheus metrics: http://127.0.0.1:9810/metrics
# Extra arguments go to wattlens-agent (see --help).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo > /dev/null
cmake --build build --target wattlens-agent
exec build/bin/wattlens-agent --live "$@"
