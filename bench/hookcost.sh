#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The cost of the pieces of a syscall-counting program (bench/hookcost.bpf.c):
# sysload's CPU ns per getppid with nothing attached and with each program,
# interleaved, ROUNDS short runs each. Prints min and median per variant and
# their Δ over the nothing-attached min/median. Min is the robust figure on
# a shared host (interference only adds). Workload on CPU 1.
# usage: sudo bench/hookcost.sh  [ROUNDS=11] [ITERS=100000]
#        [BENCH_BIN=<repo>/build-bench/bin]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${BENCH_BIN:-$root/build-bench/bin}
rounds=${ROUNDS:-11}
iters=${ITERS:-100000}
[ "$(id -u)" = 0 ] || { echo "needs root" >&2; exit 1; }
variants=(none hc_rawtp_enter hc_rawtp_exit hc_btf_exit hc_array hc_helper hc_hash)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for r in $(seq "$rounds"); do
  for v in "${variants[@]}"; do
    pid=""
    if [ "$v" != none ]; then
      "$bin/hookcost_loader" "$v" > "$out/ld" 2>&1 &
      pid=$!
      until grep -q ready "$out/ld" 2>/dev/null; do
        kill -0 $pid 2>/dev/null || { cat "$out/ld"; exit 1; }
        sleep 0.02
      done
    fi
    taskset -c 1 "$bin/sysload" "$iters" |
      sed -E 's/.*cpu_ns_per_op=([0-9.]+).*/\1/' >> "$out/$v"
    if [ -n "$pid" ]; then kill "$pid"; wait "$pid" || true; fi
    rm -f "$out/ld"
  done
done
stat() { sort -g "$1" | awk '{a[NR]=$1} END {printf "%.1f %.1f\n", a[1], a[int((NR+1)/2)]}'; }
read -r bmin bmed < <(stat "$out/none")
echo "| program on the hook | CPU ns/getppid min | median | Δ min | Δ median |"
echo "|---|---|---|---|---|"
for v in "${variants[@]}"; do
  read -r mn md < <(stat "$out/$v")
  printf '| %s | %.1f | %.1f | %.1f | %.1f |\n' "$v" "$mn" "$md" \
    "$(echo "$mn - $bmin" | bc -l)" "$(echo "$md - $bmed" | bc -l)"
done
