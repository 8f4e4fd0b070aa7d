#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Network overhead: TCP ping-pong of 64-byte messages over loopback (netload),
# ns per send+recv with nothing attached, with empty programs on every hook
# the agent attaches (floor_loader --mode=allhooks: the floor), and with the
# agent, with each of the agent's network byte sources (agent: the sock_length
# tracepoints, Linux 6.3+; agent_syscalls: the socket I/O syscalls at
# sys_exit, what older kernels load). Paired rounds (a baseline run right
# before each variant run, variant order rotating), medians of the deltas. Workload on CPU 1, tracer on CPU 0.
# Method and caveats: bench/README.md. Results: docs/benchmarks.md.
#
# usage: sudo bench/network_overhead.sh [ROUNDS=7] [TRIPS=50000]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
tools=${BENCH_BUILD:-$root/build-bench}/bin
agent=${AGENT:-$root/build/bin/wattlens-agent}
rounds=${ROUNDS:-7}
trips=${TRIPS:-50000}
port=19830
out=$(mktemp -d)
[ "$(id -u)" = 0 ] || { echo "needs root" >&2; exit 1; }
for f in "$tools/netload" "$tools/floor_loader" "$agent"; do
  [ -x "$f" ] || { echo "missing $f (build bench_tools and the agent)" >&2; exit 1; }
done

tracer_pid=""
start_tracer() {  # $1 = floor|agent|agent_syscalls; returns when attached
  if [ "$1" = floor ]; then
    taskset -c 0 "$tools/floor_loader" --mode=allhooks > "$out/floor.log" 2>&1 &
    tracer_pid=$!
    until grep -q '^ready' "$out/floor.log"; do
      kill -0 $tracer_pid 2>/dev/null || { cat "$out/floor.log"; exit 1; }
      sleep 0.05
    done
  else
    local extra=()
    [ "$1" = agent_syscalls ] && extra=(--network_bytes_source=syscalls)
    taskset -c 0 "$agent" --metrics_address=127.0.0.1:$port "${extra[@]}" \
      > "$out/agent.log" 2>&1 &
    tracer_pid=$!
    until curl -sf "127.0.0.1:$port/metrics" 2>/dev/null |
        grep -q '^wattlens_build_info'; do
      kill -0 $tracer_pid 2>/dev/null || { cat "$out/agent.log"; exit 1; }
      sleep 0.05
    done
  fi
}
stop_tracer() { kill -TERM "$tracer_pid"; wait "$tracer_pid" || true; }
run() {  # prints "wall cpu" ns per send+recv
  taskset -c 1 "$tools/netload" "$trips" |
    sed -E 's/ns_per_op=([0-9.]+) cpu_ns_per_op=([0-9.]+).*/\1 \2/'
}

declare -A delta
variants=(floor agent agent_syscalls)
for r in $(seq "$rounds"); do
  for i in 0 1 2; do
    v=${variants[$(((r + i) % 3))]}
    read -r bw bc < <(run)
    start_tracer "$v"
    read -r vw vc < <(run)
    stop_tracer
    delta[$v.wall]+="$(echo "$vw - $bw" | bc -l) "
    delta[$v.cpu]+="$(echo "$vc - $bc" | bc -l) "
    echo "round $r $v: wall $bw -> $vw, cpu $bc -> $vc" >&2
    echo "$bw $bc" >> "$out/baseline"
  done
done

# median [min..max] of whitespace-separated numbers; med: the median alone.
mid='{a[NR]=$1} END {m = NR % 2 ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2'
median() { tr ' ' '\n' | grep -v '^$' | sort -g |
  awk "$mid; printf \"%.1f [%.1f..%.1f]\", m, a[1], a[NR]}"; }
med() { tr ' ' '\n' | grep -v '^$' | sort -g | awk "$mid; printf \"%.3f\", m}"; }
base_wall=$(awk '{print $1}' "$out/baseline" | tr '\n' ' ' | median)
base_cpu=$(awk '{print $2}' "$out/baseline" | tr '\n' ' ' | median)
fw=$(echo "${delta[floor.wall]}" | med); aw=$(echo "${delta[agent.wall]}" | med)
fc=$(echo "${delta[floor.cpu]}" | med); ac=$(echo "${delta[agent.cpu]}" | med)
sw=$(echo "${delta[agent_syscalls.wall]}" | med)
sc=$(echo "${delta[agent_syscalls.cpu]}" | med)
echo "## Network overhead ($rounds paired rounds, $trips round trips per run, ns per send+recv)"
echo
echo "| | wall ns | workload CPU ns |"
echo "|---|---|---|"
echo "| nothing attached (all baselines) | $base_wall | $base_cpu |"
echo "| Δ empty programs on the agent's hooks (floor) | $(echo "${delta[floor.wall]}" | median) | $(echo "${delta[floor.cpu]}" | median) |"
echo "| Δ agent | $(echo "${delta[agent.wall]}" | median) | $(echo "${delta[agent.cpu]}" | median) |"
echo "| Δ agent, syscalls byte source | $(echo "${delta[agent_syscalls.wall]}" | median) | $(echo "${delta[agent_syscalls.cpu]}" | median) |"
printf '| agent ÷ floor | %.2fx | %.2fx |\n' "$(echo "$aw / $fw" | bc -l)" \
  "$(echo "$ac / $fc" | bc -l)"
printf '| agent, syscalls byte source ÷ floor | %.2fx | %.2fx |\n' \
  "$(echo "$sw / $fw" | bc -l)" "$(echo "$sc / $fc" | bc -l)"
rm -rf "$out"
