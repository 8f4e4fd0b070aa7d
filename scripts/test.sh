#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs, builds and runs every test, each configuration built once:
#   build/       all targets; unit + lint tests, then BPF tests (serially), then
#                the container images and the containerised agent (podman)
#   build-asan/  unit tests under AddressSanitizer + UndefinedBehaviorSanitizer
#   build-tsan/  the lock-free code's tests under ThreadSanitizer
# then the kernel stage: the BPF tests again inside Debian 12's own kernels
# (6.1 and 6.1 PREEMPT_RT) booted in qemu (tests/kernels/, docs/kernels.md);
# WATTLENS_KERNEL_STAGE=0 skips it outside CI.
# BPF tests skip with a reason where the kernel cannot load programs; with
# CI=true (or WATTLENS_REQUIRE_BPF=1) a BPF test that cannot run fails.
set -uo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh || exit 1
if [ "${CI:-}" = true ]; then export WATTLENS_REQUIRE_BPF=1; fi
export WATTLENS_REQUIRE_BPF=${WATTLENS_REQUIRE_BPF:-0}
jobs=$(nproc)
passed=0 failed=0 skipped=0 status=0
log=$(mktemp)
kernel_logs=build/kernel-stage  # each kernel's ctest output and console
built=0

# step <title>: starts a stage; the time each stage took is printed at the
# end, so that a slow stage is visible against the 60-minute budget.
stage_name="" stage_start=$SECONDS stage_times=()
end_stage() {
  [ -n "$stage_name" ] &&
    stage_times+=("$(printf '%5d s  %s' $((SECONDS - stage_start)) "$stage_name")")
  stage_name=""
}
step() {
  end_stage
  stage_name=$*; stage_start=$SECONDS
  echo; echo "=== $* ($(date -u +%H:%M:%S))"
}
# run_ctest <build dir> <ctest args...>: runs, tallies, remembers failure.
# A test without its own TIMEOUT that hangs fails alone after this long
# instead of holding its stage (or a guest) until the whole run is stopped.
test_timeout=600
run_ctest() {
  local dir=$1; shift
  ctest --test-dir "$dir" --output-on-failure --no-tests=error \
    --timeout "$test_timeout" "$@" |
    tee "$log"
  tally "${PIPESTATUS[0]}"
}
# tally <exit status>: adds the ctest run whose output is in $log.
tally() {
  local rc=$1
  local line total nfail nskip
  line=$(grep -E '^[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' \
           "$log" | tail -1)
  total=$(sed -E 's/.* out of ([0-9]+).*/\1/' <<< "$line")
  nfail=$(sed -E 's/.* ([0-9]+) tests? failed.*/\1/' <<< "$line")
  nskip=$(grep -c '\*\*\*Skipped\|Not Run (Disabled)' "$log" || true)
  if [ -n "$line" ]; then
    passed=$((passed + total - nfail - nskip))
    failed=$((failed + nfail))
    skipped=$((skipped + nskip))
  fi
  if [ "$rc" -ne 0 ] || [ -z "$line" ]; then status=1; fi
  if [ "$WATTLENS_REQUIRE_BPF" = 1 ] && [ "$nskip" -gt 0 ]; then
    echo "FAIL: $nskip test(s) skipped where BPF is required"
    status=1
  fi
}
build() {  # build <dir> <cmake args...> -- <targets...>
  local dir=$1; shift
  local args=() targets=()
  while [ $# -gt 0 ] && [ "$1" != -- ]; do args+=("$1"); shift; done
  [ $# -gt 0 ] && shift
  targets=("$@")
  # ccache (installed by install-deps.sh): a file compiled before with the
  # same flags, in an earlier run or another clone, is not compiled again.
  command -v ccache > /dev/null &&
    args+=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  cmake -S . -B "$dir" -G Ninja "${args[@]}" > /dev/null || return 1
  if [ ${#targets[@]} -gt 0 ]; then
    cmake --build "$dir" -j "$jobs" --target "${targets[@]}"
  else
    cmake --build "$dir" -j "$jobs"
  fi
}

step "build (RelWithDebInfo, -Wall -Wextra -Werror)"
if build build -DCMAKE_BUILD_TYPE=RelWithDebInfo; then
  built=1
  rm -rf "$kernel_logs"; mkdir -p "$kernel_logs"
  step "unit and lint tests"
  run_ctest build -j "$jobs" -LE "bpf|tsan|container"
  step "BPF tests (load into this kernel; WATTLENS_REQUIRE_BPF=$WATTLENS_REQUIRE_BPF)"
  run_ctest build -L bpf -LE container
  cp "$log" "$kernel_logs/host.log"
  # The images built with podman from this build's binaries (base images by
  # debootstrap, cached in /var/cache/wattlens/images), then the agent image
  # run as the rendered DaemonSet runs it, streaming to the collector image.
  step "container images and the agent in a container (podman)"
  run_ctest build -L container
else
  echo "FAIL: build"; status=1; failed=$((failed + 1))
fi

step "unit and integration tests under ASan + UBSan"
if build build-asan -DCMAKE_BUILD_TYPE=Debug -DWATTLENS_SCOPE=UNIT \
     -DWATTLENS_SANITIZE=address,undefined; then
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    run_ctest build-asan -j "$jobs" -L "unit|integration"
else
  echo "FAIL: ASan build"; status=1; failed=$((failed + 1))
fi

step "lock-free queue tests under TSan"
if build build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DWATTLENS_SCOPE=UNIT \
     -DWATTLENS_SANITIZE=thread -- spsc_ring_test; then
  TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
    run_ctest build-tsan -L tsan
else
  echo "FAIL: TSan build"; status=1; failed=$((failed + 1))
fi

# --- Kernel stage. After the host stages, never beside them: each guest is
# a software-emulated CPU per core. On 6.1, every BPF-labelled test but one
# (below); on 6.1-rt, the tests that compare counts with the kernel's own (syscalls, CPU
# time against cpu.stat, TCP/UDP bytes, kernel threads) and the agent smoke
# test. A guest that does not report is one failure, with its reason.
kernel_stage=${WATTLENS_KERNEL_STAGE:-1}
if [ "${CI:-}" = true ] && [ "$kernel_stage" != 1 ]; then
  echo "kernel stage: CI runs it whatever WATTLENS_KERNEL_STAGE says"
  kernel_stage=1
fi
# ctest lists the test instances the host's binaries have: one per variant
# the host kernel loads. The BPF suites instantiate only the variants the
# running kernel can load, so in a 6.1 guest the sampled and sock_length
# instances do not exist, and gtest would run none of them and exit 0: they
# are left out by name instead of counting as passed. Which variants 6.1
# loads is asserted there by AgentVariantBpfTest and the agent smoke test.
not_on_61='/sampled|_sock_length|/sock_length'
# prometheus_e2e_test is a Prometheus server scraping the agent: what it
# adds to the other end-to-end tests is user space (scrape, PromQL), and it
# takes minutes under an emulated CPU; it runs on the host only.
host_only='prometheus_e2e_test'
rt_tests='AgentBpfTest\.(ExactSyscallCountsAndFailures|CgroupCpuMatchesKernelAccounting)|NetworkBpfTest\.(TcpLoopbackBytesExactBothWays|UdpDatagramsExact)|SyscallCacheBpfTest\.ExactWhileFlushed|KernelWorkloadBpfTest|agent_smoke_test'
# run_in_kernel <flavour> <ctest args...>
run_in_kernel() {
  local flavour=$1; shift
  local start=$SECONDS
  tests/kernels/run-in-vm.sh --console "$kernel_logs/$flavour.console.log" \
    "$flavour" -- ctest --test-dir build --output-on-failure \
    --no-tests=error --timeout "$test_timeout" "$@" 2>&1 | tee "$log"
  local rc=${PIPESTATUS[0]}
  cp "$log" "$kernel_logs/$flavour.log"
  if ! grep -qE '^[0-9]+% tests passed' "$log"; then
    echo "FAIL: kernel $flavour: the guest ran no tests (exit $rc; reason" \
      "above; console in $kernel_logs/$flavour.console.log)"
    failed=$((failed + 1)); status=1
    return
  fi
  tally "$rc"
  echo "kernel $flavour: $((SECONDS - start)) s"
}
if [ "$kernel_stage" = 1 ] && [ "$built" = 1 ]; then
  step "kernel stage: BPF tests on Debian 12's 6.1 (qemu, software CPU)"
  run_in_kernel 6.1 -L bpf -LE container -E "$not_on_61|$host_only"
  step "kernel stage: exactness tests and agent smoke test on 6.1-rt"
  run_in_kernel 6.1-rt -L bpf -LE container -E "$not_on_61" -R "$rt_tests"
  step "BPF tests per kernel (passed/failed/skipped per test binary)"
  python3 tests/kernels/kernel_table.py build host="$kernel_logs/host.log" \
    6.1="$kernel_logs/6.1.log" 6.1-rt="$kernel_logs/6.1-rt.log" ||
    { echo "FAIL: per-kernel table"; status=1; }
elif [ "$kernel_stage" = 1 ]; then
  step "kernel stage not run: the build failed"
else
  step "kernel stage skipped (WATTLENS_KERNEL_STAGE=$kernel_stage)"
fi

end_stage
rm -f "$log"
echo
echo "=== time per stage (total $SECONDS s)"
printf '%s\n' "${stage_times[@]}"
echo
echo "wattlens: $passed passed, $failed failed, $skipped skipped"
exit $status
