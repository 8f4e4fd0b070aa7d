#!/usr/bin/env bash
# Installs, builds and runs every test, each configuration built once:
#   build/       all targets; unit + lint tests, then BPF tests (serially), then
#                the container images and the containerised agent (podman)
#   build-asan/  unit tests under AddressSanitizer + UndefinedBehaviorSanitizer
#   build-tsan/  the lock-free code's tests under ThreadSanitizer
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

step() { echo; echo "=== $*"; }
# run_ctest <build dir> <ctest args...>: runs, tallies, remembers failure.
run_ctest() {
  local dir=$1; shift
  ctest --test-dir "$dir" --output-on-failure --no-tests=error "$@" |
    tee "$log"
  local rc=${PIPESTATUS[0]}
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
  cmake -S . -B "$dir" -G Ninja "${args[@]}" > /dev/null || return 1
  if [ ${#targets[@]} -gt 0 ]; then
    cmake --build "$dir" -j "$jobs" --target "${targets[@]}"
  else
    cmake --build "$dir" -j "$jobs"
  fi
}

step "build (RelWithDebInfo, -Wall -Wextra -Werror)"
if build build -DCMAKE_BUILD_TYPE=RelWithDebInfo; then
  step "unit and lint tests"
  run_ctest build -j "$jobs" -LE "bpf|tsan|container"
  step "BPF tests (load into this kernel; WATTLENS_REQUIRE_BPF=$WATTLENS_REQUIRE_BPF)"
  run_ctest build -L bpf -LE container
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

rm -f "$log"
echo
echo "wattlens: $passed passed, $failed failed, $skipped skipped"
exit $status
