#!/usr/bin/env bash
# Installs everything Wattlens needs to build, run and test, from Debian 12
# packages only. Idempotent: skips apt when everything is present.
set -euo pipefail
packages=(
  # toolchain
  build-essential cmake ninja-build pkg-config clang llvm clang-format
  # BPF
  libbpf-dev bpftool libelf-dev zlib1g-dev
  # libraries
  libabsl-dev libspdlog-dev libfmt-dev libgtest-dev libgmock-dev
  libbenchmark-dev prometheus-cpp-dev libprotobuf-dev protobuf-compiler
  libgrpc++-dev protobuf-compiler-grpc nlohmann-json3-dev libssl-dev
  # tests and benchmarks
  prometheus curl util-linux iproute2 procps bpftrace python3 openssl
  nginx-light
)
# Manifest checks (tests/deploy) need kubectl and node + npm. Some images
# ship them from other packages (kubectl, NodeSource's nodejs with npm
# bundled) that Debian's would conflict with: add Debian's only if absent.
command -v kubectl > /dev/null || packages+=(kubernetes-client)
command -v npm > /dev/null || packages+=(nodejs npm)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
    missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "install-deps: missing ${missing[*]}; run as root" >&2
  exit 1
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" > /dev/null
