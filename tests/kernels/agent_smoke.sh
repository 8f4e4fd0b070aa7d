#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Agent smoke test (label bpf): the wattlens-agent binary, as a DaemonSet
# runs it, turns ready on this kernel: /readyz answers 200 and /metrics has
# wattlens_agent_source_up 1 for syscalls, sched and network (the sources
# readiness waits for). No collector; the node API on a socket in a temp dir.
# Run natively and inside each kernel of the kernel test stage.
# Usage: agent_smoke.sh BUILD_OR_BIN_DIR
set -uo pipefail
agent=$1/bin/wattlens-agent
[ -x "$agent" ] || agent=$1/wattlens-agent
[ -x "$agent" ] || { echo "FAIL: no wattlens-agent in $1"; exit 1; }
tmp=$(mktemp -d)
pid=""
cleanup() {
  [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
fail=0
check() {  # prints PASS or FAIL and returns the status
  if [ "$2" -eq 0 ]; then echo "PASS $1"; return 0; fi
  echo "FAIL $1"; fail=1; return 1
}

if [ "$(id -u)" != 0 ] || [ ! -r /sys/kernel/btf/vmlinux ]; then
  [ "${WATTLENS_REQUIRE_BPF:-0}" = 1 ] && { echo "FAIL: BPF required"; exit 1; }
  echo "SKIP: needs root and kernel BTF"; exit 0
fi

# Loading and verifying the programs takes about a second natively. Under
# instruction emulation (qemu TCG, as in the kernel test stage) everything
# runs 5-10x slower, so the deadline grows by 10x there; it only bounds a
# hang and asserts nothing about speed.
deadline_s=30
if grep -qw 'wattlens.emulated=1' /proc/cmdline ||
   grep -q '^model name.*QEMU TCG' /proc/cpuinfo; then
  deadline_s=300
fi

: > "$tmp/err"
"$agent" --metrics_address=127.0.0.1:0 --interval=1s \
  --node_api_address="unix://$tmp/node.sock" --power=false \
  > "$tmp/out" 2> "$tmp/err" &
pid=$!
end=$((SECONDS + deadline_s))
port=""
while [ $SECONDS -lt $end ]; do  # the port, once the agent announces it
  port=$(sed -n 's/.*\/metrics on port \([0-9]*\).*/\1/p' "$tmp/err")
  [ -n "$port" ] && break
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done
[ -n "$port" ]; check "agent started and announced its port ${port:-(none)}" $? ||
  { tail -20 "$tmp/err"; exit 1; }

# A source's health is settled when the agent loads it; once /metrics shows
# one of the required sources down, waiting longer cannot make it ready.
down() {
  curl -sf "http://127.0.0.1:$port/metrics" |
    awk '/^wattlens_agent_source_up\{source="(syscalls|sched|network)"\}/ &&
         $2 + 0 == 0 {d = 1} END {exit !d}'
}
code=""
while [ $SECONDS -lt $end ]; do  # until ready, or the deadline
  code=$(curl -s -o "$tmp/readyz" -w '%{http_code}' \
           "http://127.0.0.1:$port/readyz")
  [ "$code" = 200 ] && break
  kill -0 "$pid" 2>/dev/null || break
  down && break
  sleep 0.2
done
[ "$code" = 200 ]
check "/readyz answers ${code:-nothing} within ${deadline_s} s" $? ||
  { cat "$tmp/readyz"; echo; }

curl -sf "http://127.0.0.1:$port/metrics" > "$tmp/metrics"
grep -E '^wattlens_agent_(source_up|cpu_time_source_info|source_variant)' \
  "$tmp/metrics"
for source in syscalls sched network; do
  awk -v n="wattlens_agent_source_up{source=\"$source\"}" \
    '$1 == n && $2 + 0 == 1 {up = 1} END {exit !up}' "$tmp/metrics"
  check "source_up $source is 1" $?
done

kill -TERM "$pid"
wait "$pid"
rc=$?
pid=""
[ $rc -eq 0 ]; check "SIGTERM exits 0 (got $rc)" $?
[ $fail -ne 0 ] && { echo "agent log:"; tail -30 "$tmp/err"; }
exit $fail
