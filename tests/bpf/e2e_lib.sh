# SPDX-License-Identifier: Apache-2.0
# Shared by the end-to-end scripts (sourced): a temp dir, background
# processes and a test cgroup cleaned up on exit, PASS/FAIL lines, the
# root/BTF precondition (a failure where BPF is required), free ports.
set -uo pipefail
tmp=$(mktemp -d)
pids=()
cg=""
fail=0
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  [ -n "$cg" ] && rmdir "$cg" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
# check <what> <status>: prints PASS or FAIL and returns the status, so that
# `check ... || exit` stops where nothing after it can pass.
check() {
  if [ "$2" -eq 0 ]; then echo "PASS $1"; return 0; fi
  echo "FAIL $1"; fail=1; return 1
}
if [ "$(id -u)" != 0 ] || [ ! -r /sys/kernel/btf/vmlinux ]; then
  [ "${WATTLENS_REQUIRE_BPF:-0}" = 1 ] && { echo "FAIL: BPF required"; exit 1; }
  echo "SKIP: needs root and kernel BTF"; exit 0
fi
# The distribution's interpreter without site hooks ($py, and python3 in
# these scripts): the tests need only the standard library, and a version
# manager's shim or site-packages cost seconds per start under an emulated
# CPU, where a test starts dozens of them at once.
py=/usr/bin/python3
[ -x "$py" ] || py=$(command -v python3)
python3() { "$py" -S "$@"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# burn_in_cgroup <cgroup dir>: a process moves itself into the cgroup and
# spins there for 2 s of CPU time (counted from the interpreter's start, so
# that all of it lands in the cgroup; a busy machine only makes it take
# longer).
burn_in_cgroup() {
  sh -c "echo \$\$ > $1/cgroup.procs; exec $py -S -c 'import time
t0 = time.process_time()
while time.process_time() - t0 < 2.0: pass'"
}
# model_power_root <dir>: a --power_sysfs_root with no meter, so the agent
# uses the model whatever meters this host has: /proc/cpuinfo with this
# host's online CPUs as Cascade Lake at 2.5 GHz, and /proc/meminfo.
model_power_root() {
  mkdir -p "$1/proc"
  for i in $(seq 0 $(( $(nproc) - 1 ))); do
    printf 'processor\t: %s\nvendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel\t\t: 85\nmodel name\t: Intel(R) Xeon(R) Platinum 8259CL CPU @ 2.50GHz\nstepping\t: 7\ncpu MHz\t\t: 2500.000\n\n' "$i"
  done > "$1/proc/cpuinfo"
  echo "MemTotal:        8000000 kB" > "$1/proc/meminfo"
}
# dead_perf_forced: WATTLENS_TEST_DEAD_PERF_POWER=1 puts a dead perf power
# meter in front of the agent's sources (docs/power.md).
dead_perf_forced() { [ "${WATTLENS_TEST_DEAD_PERF_POWER:-0}" = 1 ]; }
