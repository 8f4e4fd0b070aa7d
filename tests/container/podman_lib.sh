# SPDX-License-Identifier: Apache-2.0
# Sourced by the container scripts: podman as it works on hybrid-cgroup hosts
# (runc, because crun refuses the hybrid layout; the cgroupfs manager) and
# explicit ulimits: podman's defaults can exceed the shell's hard limits, and
# runc then refuses to start the container. nofile is the shell's hard limit;
# nproc is that capped at kernel.pid_max (no more processes can exist, and
# runc is refused a higher value here).
podman_cmd=(podman --cgroup-manager=cgroupfs --runtime=runc)
nproc=$(ulimit -Hu)
pid_max=$(cat /proc/sys/kernel/pid_max)
if [ "$nproc" = unlimited ] || [ "$nproc" -gt "$pid_max" ]; then nproc=$pid_max; fi
nofile=$(ulimit -Hn)
[ "$nofile" = unlimited ] && nofile=1048576
ulimits=(--ulimit "nofile=$nofile:$nofile" --ulimit "nproc=$nproc:$nproc")
pm() { "${podman_cmd[@]}" "$@"; }
# Exit code ctest reports as "Skipped" (SKIP_RETURN_CODE in CMakeLists.txt).
skip() {
  if [ "${WATTLENS_REQUIRE_BPF:-0}" = 1 ]; then echo "FAIL: $* (required)"; exit 1; fi
  echo "SKIP: $*"; exit 77
}
need_podman() {
  [ "$(id -u)" = 0 ] || skip "needs root (rootful podman)"
  command -v podman > /dev/null && command -v runc > /dev/null ||
    skip "needs podman and runc (scripts/install-deps.sh)"
}
