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
check() { if [ "$2" -eq 0 ]; then echo "PASS $1"; else echo "FAIL $1"; fail=1; fi; }
if [ "$(id -u)" != 0 ] || [ ! -r /sys/kernel/btf/vmlinux ]; then
  [ "${WATTLENS_REQUIRE_BPF:-0}" = 1 ] && { echo "FAIL: BPF required"; exit 1; }
  echo "SKIP: needs root and kernel BTF"; exit 0
fi
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# burn_in_cgroup <cgroup dir>: a process moves itself into the cgroup and
# spins until it has used 2 s of CPU of its own (a busy machine only makes
# it take longer).
burn_in_cgroup() {
  sh -c "echo \$\$ > $1/cgroup.procs; exec python3 -c 'import time
while time.process_time() < 2.0: pass'"
}
