#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Collector CPU and memory under wattlens-loadgen at several cluster sizes, for the Deployment's
# requests and limits (docs/benchmarks.md, "Collector footprint"). For each N: a fresh collector
# with its SQLite store in a temp dir, N simulated agents (100 workloads each, 10 s interval), 20 s
# warm-up, 60 s measured; the loadgen prints CPU (from /proc/<pid>/stat) and RSS. Meanwhile this
# script samples the collector's RSS and its history size (wattlens_collector_buckets) every 10 s:
# the slope is the memory each stored bucket costs, which sets the memory needed for a full
# retention window. Prints the load average before each run: the machine is shared.
#   bench/collector_footprint.sh [BUILD_DIR] [N...]     (default: build 100 1000 5000)
set -euo pipefail
build=${1:-build}
shift || true
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(100 1000 5000)
bin=$build/bin
tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$tmp"' EXIT
port=$((30000 + RANDOM % 20000))

metric() { curl -s "http://127.0.0.1:$((port + 1))/metrics" | awk -v m="$1" '$1 == m {print $2}'; }

for n in "${sizes[@]}"; do
  echo "== N=$n agents x 100 workloads; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
  rm -f "$tmp"/col.db*
  "$bin/wattlens-collector" --insecure --db="$tmp/col.db" --listen_address=127.0.0.1:$port \
    --metrics_address=127.0.0.1:$((port + 1)) --log_level=warn &
  col=$!
  for _ in $(seq 50); do curl -sf "http://127.0.0.1:$((port + 1))/readyz" >/dev/null && break; sleep 0.1; done
  "$bin/wattlens-loadgen" --server=127.0.0.1:$port --agents="$n" --warmup=20s --duration=60s \
    --collector_pid=$col >"$tmp/loadgen.txt" 2>"$tmp/loadgen.err" &
  gen=$!
  : >"$tmp/samples"
  sleep 20
  while kill -0 $gen 2>/dev/null; do
    echo "$(awk '/VmRSS/ {print $2}' /proc/$col/status) $(metric wattlens_collector_buckets) $(metric wattlens_collector_series)" >>"$tmp/samples"
    sleep 10
  done
  wait $gen
  cat "$tmp/loadgen.txt"
  echo "peak RSS (VmHWM): $(awk '/VmHWM/ {print $2/1024 " MiB"}' /proc/$col/status)"
  # Least-squares slope of RSS (kB) over buckets.
  awk 'NF == 3 && $2 > 0 {n++; x += $2; y += $1; xx += $2 * $2; xy += $2 * $1; b = $2; s = $3}
       END {if (n > 1 && n * xx - x * x > 0) printf "history: %d series, %d buckets at the end; RSS grows %.0f bytes per bucket (%d samples)\n", s, b, 1024 * (n * xy - x * y) / (n * xx - x * x), n}' "$tmp/samples"
  if [ "$n" = "${sizes[0]}" ] && [ -n "${SCRAPE_OUT:-}" ]; then
    curl -s "http://127.0.0.1:$((port + 1))/metrics" >"$SCRAPE_OUT"
    echo "scrape recorded to $SCRAPE_OUT"
  fi
  kill -TERM $col
  wait $col || true
done
