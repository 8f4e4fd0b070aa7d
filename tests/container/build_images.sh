#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Builds the images that ship, with podman, from the tree's own build output
# (ctest fixture `wattlens_images`, label `container`):
#   wattlens/wattlens-agent:0.1.0, wattlens/wattlens-collector:0.1.0
#     deploy/docker/{agent,collector}.Dockerfile with BINARIES=prebuilt: the
#     runtime stage as it ships, the binary this tree built (stripped of
#     debug info, as the source build stage does) instead of a third compile
#   wattlens-test-nginx:latest   tests/container/nginx.Dockerfile
# Base images come from tests/container/base_images.sh (debootstrap when no
# registry is reachable). Then checks in each image: the binary is the one
# staged (sha256), `ldd` inside the image resolves every library, the
# runtime user. Prints sizes and build times.
# usage: build_images.sh <bin dir> <source dir>
set -uo pipefail
bin=$1 src=$2
here=$(cd "$(dirname "$0")" && pwd)
source "$here/podman_lib.sh"
need_podman
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
check() { if [ "$2" -eq 0 ]; then echo "PASS $1"; else echo "FAIL $1"; fail=1; fi; }

t0=$(date +%s)
bash "$here/base_images.sh" || { echo "FAIL base images"; exit 1; }
echo "base images ready in $(( $(date +%s) - t0 )) s"

for b in wattlens-agent wattlens-collector; do
  [ -x "$bin/$b" ] || { echo "FAIL $bin/$b not built"; exit 1; }
done
mkdir -p "$tmp/agent/bin" "$tmp/collector/bin"
strip --strip-debug -o "$tmp/agent/bin/wattlens-agent" "$bin/wattlens-agent"
strip --strip-debug -o "$tmp/collector/bin/wattlens-collector" "$bin/wattlens-collector"
cp -r "$src/data" "$tmp/collector/data"

build() {  # build <tag> <dockerfile> <context> [args...]
  local tag=$1 file=$2 ctx=$3 start
  shift 3
  start=$(date +%s%N)
  # Host network: the build's apt reaches the mirror the host's apt uses.
  if ! pm build -q --pull=never --network=host "${ulimits[@]}" \
       -f "$file" -t "$tag" "$@" "$ctx" > "$tmp/build.log" 2>&1; then
    tail -20 "$tmp/build.log"
    echo "FAIL build $tag"
    exit 1
  fi
  printf '%s built in %d ms, %s\n' "$tag" \
    "$(( ($(date +%s%N) - start) / 1000000 ))" \
    "$(pm image inspect --format '{{.Size}}' "$tag" |
       awk '{printf "%.1f MB (%d bytes)", $1 / 1e6, $1}')"
}
build wattlens/wattlens-agent:0.1.0 "$src/deploy/docker/agent.Dockerfile" \
  "$tmp/agent" --build-arg BINARIES=prebuilt
build wattlens/wattlens-collector:0.1.0 \
  "$src/deploy/docker/collector.Dockerfile" "$tmp/collector" \
  --build-arg BINARIES=prebuilt
build wattlens-test-nginx:latest "$here/nginx.Dockerfile" "$here"
echo "base debian:12-slim: $(pm image inspect --format '{{.Size}}' \
  localhost/debian:12-slim | awk '{printf "%.1f MB", $1 / 1e6}')"

for b in agent collector; do
  image=wattlens/wattlens-$b:0.1.0
  want=$(sha256sum < "$tmp/$b/bin/wattlens-$b" | cut -d' ' -f1)
  got=$(pm run --rm "${ulimits[@]}" --entrypoint sha256sum "$image" \
    "/usr/bin/wattlens-$b" | cut -d' ' -f1)
  [ "$want" = "$got" ]
  check "$image holds this tree's wattlens-$b (sha256 ${want:0:12})" $?
  # ldd must have run and listed libraries: an image where it cannot run
  # (no ldd, a broken loader) proves nothing about the libraries.
  pm run --rm "${ulimits[@]}" --entrypoint ldd "$image" \
    "/usr/bin/wattlens-$b" > "$tmp/ldd" 2>&1 &&
    grep -q '=> /' "$tmp/ldd" && ! grep -q "not found" "$tmp/ldd"
  ok=$?  # the message's command substitution would reset $?
  check "$image: ldd resolves all $(grep -c '=>' "$tmp/ldd") libraries inside the image" $ok
  grep "not found" "$tmp/ldd"
  grep -q '=> /' "$tmp/ldd" || head -5 "$tmp/ldd"
  pm run --rm "${ulimits[@]}" --entrypoint "/usr/bin/wattlens-$b" "$image" \
    --version > /dev/null 2>&1
  check "$image: the binary runs (--version)" $?
done
user=$(pm image inspect --format '{{.Config.User}}' wattlens/wattlens-collector:0.1.0)
[ "$user" = 65532:65532 ]; check "collector image runs as $user" $?
user=$(pm image inspect --format '{{.Config.User}}' wattlens/wattlens-agent:0.1.0)
[ "$user" = 0 ]; check "agent image runs as uid $user" $?
echo "images stage: $(( $(date +%s) - t0 )) s"
exit $fail
