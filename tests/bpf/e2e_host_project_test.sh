#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Host project identity under the DaemonSet's capability set (label bpf):
# the real agent runs with only CAP_BPF and CAP_PERFMON (deploy/base/agent/
# daemonset.yaml: drop ALL, add BPF and PERFMON; allowPrivilegeEscalation
# false) and its default --drop_capabilities, so it cannot read
# /proc/<pid>/exe of root's processes. A Debian-packaged program (stress-ng)
# runs in a host cgroup of its own, one started before the agent and one
# after; the agent's /metrics must name both cgroups' project "stress-ng"
# (from the kernel's task iterator at start and from the exec event).
# Usage: e2e_host_project_test.sh <bin dir>
bin=$1
source "$(dirname "$0")/e2e_lib.sh"
command -v stress-ng > /dev/null || { echo "FAIL: stress-ng missing (apt-get install stress-ng)"; exit 1; }
command -v setpriv > /dev/null || { echo "FAIL: setpriv missing (util-linux)"; exit 1; }
# Under instruction emulation (the kernel stage's qemu guests) everything is
# 5-10x slower: the waits stretch, nothing else changes.
slow=1
grep -qw 'wattlens.emulated=1' /proc/cmdline 2>/dev/null && slow=10

mount=$(awk '$3 == "cgroup2" {print $2; exit}' /proc/self/mounts)
before="$mount/wattlens-exe-before-$$"
after="$mount/wattlens-exe-after-$$"
made=()
workers=()
cleanup_host() {
  for p in "${workers[@]}"; do kill -TERM "$p" 2>/dev/null; done
  for d in "${made[@]}"; do
    for _ in $(seq 100); do  # stress-ng's workers leave after their parent
      xargs -r kill -KILL < "$d/cgroup.procs" 2>/dev/null
      rmdir "$d" 2>/dev/null && break
      sleep 0.1
    done
  done
}
trap 'cleanup_host; cleanup' EXIT
mkdir "$before" "$after" && made+=("$before" "$after")

# await <tries> <command...>: runs the command every 0.2 s until it succeeds.
await() {
  local n=$(( $1 * slow )); shift
  for _ in $(seq "$n"); do "$@" && return 0; sleep 0.2; done
  return 1
}
# run_in <cgroup>: stress-ng, lightly loaded, moved into the cgroup before
# its exec (so its exec is seen there).
run_in() {
  sh -c "echo \$\$ > $1/cgroup.procs; exec stress-ng --cpu 1 --cpu-load 5 --timeout 600s --quiet" &
  workers+=($!)
}
exe_is_stress_ng() { [ "$(readlink "/proc/$1/exe")" = "$(readlink -f "$(command -v stress-ng)")" ]; }

run_in "$before"
first=${workers[0]}
await 100 exe_is_stress_ng "$first"
check "stress-ng started before the agent (pid $first) runs in $before" $?

# The DaemonSet's capabilities: effective = permitted = bounding = BPF +
# PERFMON for uid 0, nothing inheritable, no privilege escalation.
ds=(setpriv --no-new-privs --inh-caps=-all --bounding-set=-all,+bpf,+perfmon)
! "${ds[@]}" readlink "/proc/$first/exe" > /dev/null 2>&1
check "with the DaemonSet's capabilities /proc/$first/exe is unreadable" $?

metrics=$(free_port)
model_power_root "$tmp/power"
"${ds[@]}" "$bin/wattlens-agent" --metrics_address=127.0.0.1:$metrics \
  --node_api_address= --node_name=exe-node --power_sysfs_root="$tmp/power" \
  > "$tmp/agent.log" 2>&1 &
agent=$!  # setpriv execs the agent: the same process
pids+=($agent)
scrape() { curl -sf "http://127.0.0.1:$metrics/metrics" > "$tmp/agent.prom"; }
await 300 scrape
check "the agent serves /metrics" $? || { tail -20 "$tmp/agent.log"; exit 1; }
caps=$(awk '$1 == "CapEff:" {print $2}' "/proc/$agent/status")
bnd=$(awk '$1 == "CapBnd:" {print $2}' "/proc/$agent/status")
[ "$bnd" = "000000c000000000" ] && [ "$caps" = "0000000000000000" ]
check "the agent runs with bounding set BPF+PERFMON (CapBnd $bnd) and, after dropping, CapEff $caps" $?

# Every counting source loads under these capabilities: a BPF object that
# needs more (libbpf listing module BTF for a kfunc needs CAP_SYS_ADMIN)
# would leave its source down here and nowhere else.
source_up() { scrape && grep -qx "wattlens_agent_source_up{source=\"$1\"} 1" "$tmp/agent.prom"; }
for src in syscalls sched network; do
  await 100 source_up "$src"
  check "source $src is up under the DaemonSet's capabilities" $?
done

run_in "$after"
second=${workers[1]}
await 100 exe_is_stress_ng "$second"
check "stress-ng started after the agent (pid $second) runs in $after" $?

project_of() {  # the project label of a cgroup's CPU series on /metrics
  scrape && awk -v cg="cgroup=\"/$(basename "$1")\"" '
    /^wattlens_workload_cpu_seconds_total\{/ && index($0, cg) {
      if (match($0, /project="[^"]*"/)) print substr($0, RSTART + 9, RLENGTH - 10); exit }' "$tmp/agent.prom"
}
both_named() {
  [ "$(project_of "$before")" = stress-ng ] && [ "$(project_of "$after")" = stress-ng ]
}
await 300 both_named
for d in "$before" "$after"; do
  p=$(project_of "$d")
  [ "$p" = stress-ng ]
  ok=$?  # before the message's own command substitution resets $?
  check "/metrics: cgroup /${d##*/} has project=\"${p}\" (want stress-ng)" $ok
done
grep -E 'executables of|/proc/<pid>/exe' "$tmp/agent.log" | sed 's/^/  agent: /'
if [ "$fail" != 0 ]; then
  grep -E "wattlens-exe-" "$tmp/agent.prom" | head -5
  tail -20 "$tmp/agent.log"
fi
exit $fail
