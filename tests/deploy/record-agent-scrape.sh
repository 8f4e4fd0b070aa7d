#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Runs the real agent for a while with exactly the capability set the DaemonSet grants
# (bounding set BPF, PERFMON, DAC_READ_SEARCH; uid 0; no_new_privs), then
#   - records one /metrics scrape into testdata/agent_scrape.prom (the metric-coverage test reads it),
#   - prints peak RSS (VmHWM), CPU used, effective capabilities and the agent's log.
# Needs root and a built agent. Not part of the lint test (that one needs no privileges).
# Usage: tests/deploy/record-agent-scrape.sh [path/to/wattlens-agent] [seconds]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
agent=${1:-$here/../../build/bin/wattlens-agent}
secs=${2:-30}
caps=${CAPS:-+bpf,+perfmon,+dac_read_search}
log=$(mktemp)
port=$((20000 + RANDOM % 20000))

setpriv --no-new-privs --bounding-set=-all,"$caps" --inh-caps=-all \
  "$agent" --metrics_address=127.0.0.1:$port --process_metrics_top_n=5 2>"$log" &
pid=$!
trap 'kill $pid 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 50); do curl -fsS "http://127.0.0.1:$port/metrics" >/dev/null 2>&1 && break; sleep 0.2; done
sleep "$secs"
out=${OUT:-$here/testdata/agent_scrape.prom}
curl -fsS "http://127.0.0.1:$port/metrics" >"$out"
clk=$(getconf CLK_TCK)
read -r ut st < <(awk '{print $14, $15}' /proc/$pid/stat)
start=$(awk '{print $22}' /proc/$pid/stat)
up=$(awk -v s="$start" -v c="$clk" '{print $1 - s / c}' /proc/uptime)
echo "capabilities (CapEff): $(grep CapEff /proc/$pid/status | awk '{print $2}') = $(capsh --decode=$(grep CapEff /proc/$pid/status | awk '{print $2}') | cut -d= -f2)"
grep -E 'VmHWM|VmRSS' /proc/$pid/status
awk -v u="$ut" -v s="$st" -v c="$clk" -v w="$up" \
  'BEGIN { printf "cpu: %.2f s over %.1f s wall = %.2f %% of one core\n", (u+s)/c, w, 100*(u+s)/c/w }'
echo "series: $(grep -vc '^#' "$out")  families: $(grep -c '^# TYPE' "$out")  -> $out"
echo "--- agent log"; cat "$log"
