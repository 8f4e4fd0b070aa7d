#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs everything Wattlens needs to build, run and test, from Debian 12
# packages only. Idempotent: skips apt when everything is present.
set -euo pipefail
packages=(
  # toolchain
  build-essential cmake ninja-build pkg-config clang llvm clang-format ccache
  # BPF objects: clang >= 15 emits the BTF type tags kptrs need
  clang-16
  # BPF
  libbpf-dev bpftool libelf-dev zlib1g-dev
  # libraries
  libabsl-dev libspdlog-dev libfmt-dev libgtest-dev libgmock-dev
  libbenchmark-dev prometheus-cpp-dev libprotobuf-dev protobuf-compiler
  libgrpc++-dev protobuf-compiler-grpc nlohmann-json3-dev libssl-dev
  libsqlite3-dev libyaml-dev libcurl4-openssl-dev libcivetweb-dev
  # --cost_config: TOML parser
  libtomlplusplus-dev
  # remote write: snappy block compression
  libsnappy-dev
  # CLI: command-line parser (header-only); time zones for --tz
  libcli11-dev tzdata
  # tests and benchmarks
  prometheus curl util-linux iproute2 procps bpftrace python3 openssl
  nginx-light
  # remote-write end-to-end test: a second receiver next to prometheus
  victoria-metrics
  # the CLI's zsh completion is loaded by a test
  zsh
  # kernel test stage (tests/kernels/run-in-vm.sh): Debian's kernels in qemu
  qemu-system-x86
  # pricing data: ISO 3166 / ISO 4217 codes (data/currencies.csv, alpha-2)
  iso-codes
  # images and the containerised agent (tests/container): podman with runc
  # (crun refuses hybrid cgroup layouts; named, or apt picks crun), CNI bridge
  # and port publishing, debootstrap for base images without a registry, YAML
  # for reading the rendered manifests, capsh to decode capability sets
  podman buildah runc containernetworking-plugins iptables debootstrap
  python3-yaml libcap2-bin
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

# Grid intensity data: npm @tgwf/co2, pinned by version and tarball sha256,
# unpacked into the tools directory (default .tools/ in the repository, as
# collector/pricing/CMakeLists.txt expects) for the build-time extraction
# into data/carbon/grid_intensity.csv. Without it the committed copy is used.
install_co2() {
  local version=0.19.0
  local sha256=921bf6ba23bb009d746fab91f40864bf5dbaf109ae7b1dc7ef1c830ed7e77e26
  local tools=${WATTLENS_TOOLS_DIR:-$(cd "$(dirname "$0")/.." && pwd)/.tools}
  local dir=$tools/tgwf-co2-$version
  [ -f "$dir/package/package.json" ] && return 0
  command -v npm > /dev/null || return 0
  local tmp
  tmp=$(mktemp -d)
  if ! (cd "$tmp" && npm pack --silent "@tgwf/co2@$version" > /dev/null 2>&1); then
    echo "install-deps: npm pack @tgwf/co2@$version failed; using the" \
      "committed grid intensity data" >&2
    rm -rf "$tmp"
    return 0
  fi
  local got
  got=$(sha256sum "$tmp/tgwf-co2-$version.tgz" | cut -d' ' -f1)
  if [ "$got" != "$sha256" ]; then
    echo "install-deps: @tgwf/co2@$version sha256 $got, expected $sha256" >&2
    rm -rf "$tmp"
    return 1
  fi
  mkdir -p "$dir"
  tar -xzf "$tmp/tgwf-co2-$version.tgz" -C "$dir"
  rm -rf "$tmp"
  echo "install-deps: @tgwf/co2@$version in $dir"
}

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  install_co2
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
install_co2
