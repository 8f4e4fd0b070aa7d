#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The main job on this node with embedded defaults: installs, builds, starts
# the collector on loopback (gRPC 127.0.0.1:9811, metrics :9812, store under
# /var/lib/wattlens) and the agent streaming to it, with a live view of the
# busiest workloads. Ctrl-C stops both and detaches every program.
#   agent metrics:   http://127.0.0.1:9810/metrics
#   cluster view:    build/bin/wattlens top --insecure   (another terminal)
# Plaintext is only for this single-node loopback setup (--insecure);
# deployments use mTLS (docs/collector.md). Extra arguments go to the agent.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo > /dev/null
cmake --build build --target wattlens-agent wattlens-collector wattlens
mkdir -p /var/lib/wattlens
build/bin/wattlens-collector --insecure --listen_address=127.0.0.1:9811 \
  --metrics_address=127.0.0.1:9812 --db=/var/lib/wattlens/collector.db \
  2> /var/lib/wattlens/collector.log &
collector=$!
trap 'kill -TERM $collector 2>/dev/null; wait $collector 2>/dev/null' EXIT
build/bin/wattlens-agent --live --collector=127.0.0.1:9811 --insecure \
  --metrics_address=127.0.0.1:9810 "$@"
