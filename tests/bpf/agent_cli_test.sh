#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The wattlens-agent binary as users run it (label bpf):
#  1. /metrics from a live agent passes `promtool check metrics` silently;
#  2. SIGTERM detaches cleanly: exit 0 and none of its programs remain;
#  3. without privileges, or without BTF, it exits non-zero with one line.
# Usage: agent_cli_test.sh <wattlens-agent>
set -uo pipefail
agent=$1
fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
check() {  # check <name> <condition-exit-status>
  if [ "$2" -eq 0 ]; then echo "PASS $1"; else echo "FAIL $1"; fail=1; fi
}

if [ "$(id -u)" != 0 ] || [ ! -r /sys/kernel/btf/vmlinux ]; then
  if [ "${WATTLENS_REQUIRE_BPF:-0}" = 1 ]; then
    echo "FAIL: BPF required but not root or no BTF"; exit 1
  fi
  echo "SKIP: needs root and kernel BTF"; exit 0
fi

# 1. Live scrape. Port 0 picks a free port; the agent logs which.
: > "$tmp/err"  # exists before the background job opens it
"$agent" --metrics_address=127.0.0.1:0 --interval=200ms \
  > "$tmp/out" 2> "$tmp/err" &
pid=$!
port=""
for _ in $(seq 100); do  # wait for the condition: the port is announced
  port=$(sed -n 's/.*\/metrics on port \([0-9]*\).*/\1/p' "$tmp/err")
  [ -n "$port" ] && break
  kill -0 $pid 2>/dev/null || break
  sleep 0.1
done
[ -n "$port" ]; check "agent started and announced its port" $?
for _ in $(seq 100); do  # until the first snapshot is served
  curl -sf "http://127.0.0.1:$port/metrics" > "$tmp/metrics" &&
    grep -q '^wattlens_workload_cpu_seconds_total' "$tmp/metrics" && break
  sleep 0.1
done
grep -q '^wattlens_workload_cpu_seconds_total{cgroup="/",namespace=""' "$tmp/metrics"
check "metrics served" $?
lint=$(promtool check metrics < "$tmp/metrics" 2>&1)
[ -z "$lint" ]; check "promtool check metrics prints nothing" $?
[ -n "$lint" ] && echo "$lint"
grep -q '^wattlens_node_syscalls_total{syscall="read"}' "$tmp/metrics"
check "node syscalls named from the generated table" $?
grep -q '^wattlens_build_info{' "$tmp/metrics"; check "build info" $?

# Serving threads run without BPF privileges: every thread's CapEff lacks
# CAP_SYS_ADMIN (21), CAP_PERFMON (38) and CAP_BPF (39).
bad=0
for status in /proc/$pid/task/*/status; do
  eff=$(awk '/^CapEff/ {print $2}' "$status")
  (( (0x$eff >> 21 & 1) || (0x$eff >> 38 & 1) || (0x$eff >> 39 & 1) )) &&
    bad=$((bad + 1))
done
threads=$(ls /proc/$pid/task | wc -l)
[ "$bad" -eq 0 ] && [ "$threads" -gt 1 ]
check "capabilities dropped after load: $threads threads, $bad with BPF caps" $?

# 2. SIGTERM: clean exit, and the programs this agent loaded are gone. Its
# program ids come from its own fds (other agents may be running).
ids=$(grep -h '^prog_id:' /proc/$pid/fdinfo/* 2>/dev/null | awk '{print $2}' |
      sort -u)
[ -n "$ids" ]
ok=$?  # the message's command substitution would reset $?
check "agent holds its BPF programs: $(echo $ids)" $ok
kill -TERM $pid
wait $pid; rc=$?
[ $rc -eq 0 ]; check "SIGTERM exits 0 (got $rc)" $?
# The kernel frees programs after an RCU grace period: await it.
alive() { for id in $ids; do bpftool prog show id "$id" > /dev/null 2>&1 &&
            echo "$id"; done; }
for _ in $(seq 50); do
  left=$(alive)
  [ -z "$left" ] && break
  sleep 0.1
done
[ -z "$left" ]; check "its programs are unloaded (left: ${left:-none})" $?

# 3. One-line failures.
setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all \
  --bounding-set=-all "$agent" --metrics_address= > "$tmp/o" 2> "$tmp/e"
rc=$?
[ $rc -ne 0 ] && [ "$(wc -l < "$tmp/e")" -eq 1 ] && grep -q CAP_BPF "$tmp/e"
ok=$?  # the message's command substitution would reset $?
check "unprivileged: exit $rc, one line: $(cat "$tmp/e")" $ok
"$agent" --btf_path=/nonexistent/vmlinux --metrics_address= \
  > "$tmp/o" 2> "$tmp/e"
rc=$?
[ $rc -ne 0 ] && [ "$(wc -l < "$tmp/e")" -eq 1 ] && grep -q BTF "$tmp/e"
ok=$?  # the message's command substitution would reset $?
check "no BTF: exit $rc, one line: $(cat "$tmp/e")" $ok

exit $fail
