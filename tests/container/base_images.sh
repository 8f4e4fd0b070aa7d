#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Makes the base images the Dockerfiles name (debian:12, debian:12-slim) in
# podman's local storage when they are not there yet. A registry is tried
# first only when WATTLENS_PULL_BASE=1; otherwise (and when the pull fails)
# they are made with `debootstrap --variant=minbase bookworm` from the mirror
# apt is configured with, so images can be built where no registry is
# reachable. The root file system tarball is cached outside the clone,
# keyed by ISO week, so a warm run costs nothing and a cold one about 3 min.
#
# usage: base_images.sh [CACHE_DIR]   (default /var/cache/wattlens/images)
set -euo pipefail
cache=${1:-${WATTLENS_IMAGE_CACHE:-/var/cache/wattlens/images}}
# Bump the version when the recipe below changes.
key=bookworm-minbase-v2-$(date -u +%G-W%V)
label=org.wattlens.base=$key

have() {  # have <name>: image exists and was made from this week's rootfs
  local got
  got=$(podman image inspect --format '{{index .Labels "org.wattlens.base"}}' \
    "localhost/$1" 2>/dev/null) || return 1
  [ "$got" = "$key" ]
}
if have debian:12 && have debian:12-slim; then
  echo "base_images: debian:12 and debian:12-slim present ($key)"
  exit 0
fi

if [ "${WATTLENS_PULL_BASE:-0}" = 1 ] &&
   timeout 120 podman pull -q docker.io/library/debian:12 > /dev/null &&
   timeout 120 podman pull -q docker.io/library/debian:12-slim > /dev/null; then
  echo "base_images: pulled from docker.io"
  exit 0
fi

# The mirror apt uses (deb822 sources or the one-line format).
mirror=$(sed -n 's/^URIs: *\(\S*\).*/\1/p' /etc/apt/sources.list.d/*.sources \
  2>/dev/null | grep -v security | head -1 || true)
if [ -z "$mirror" ] && [ -f /etc/apt/sources.list ]; then
  mirror=$(awk '$1 == "deb" && $3 ~ /^bookworm$/ {print $2; exit}' \
    /etc/apt/sources.list)
fi
mirror=${mirror:-http://deb.debian.org/debian}

mkdir -p "$cache"
full=$cache/$key.tar
slim=$cache/$key-slim.tar
if [ ! -s "$full" ] || [ ! -s "$slim" ]; then
  start=$(date +%s)
  root=$(mktemp -d "$cache/rootfs.XXXXXX")
  trap 'rm -rf "$root"' EXIT
  echo "base_images: debootstrap --variant=minbase bookworm from $mirror"
  debootstrap --variant=minbase bookworm "$root" "$mirror" > "$cache/$key.log" 2>&1 ||
    { tail -20 "$cache/$key.log" >&2; exit 1; }
  # As the official images do: the mirror as the image's apt source, no
  # package lists or caches kept.
  printf 'deb %s bookworm main\ndeb %s bookworm-updates main\n' \
    "$mirror" "$mirror" > "$root/etc/apt/sources.list"
  # apt configured as in the official images: no binary caches or .debs
  # left in a layer (85 MB per `apt-get install` otherwise), no
  # translations.
  cat > "$root/etc/apt/apt.conf.d/docker-clean" <<'CFG'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
CFG
  echo 'Acquire::Languages "none";' > "$root/etc/apt/apt.conf.d/docker-no-languages"
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin \
    "$root"/var/cache/apt/archives/*.deb "$root"/var/log/*.log
  tar --numeric-owner -C "$root" -cf "$full.tmp" . && mv "$full.tmp" "$full"
  # slim: what debian:12-slim drops (documentation, man pages, locales),
  # and dpkg told to keep dropping them for packages installed later.
  cat > "$root/etc/dpkg/dpkg.cfg.d/docker-slim" <<'CFG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
CFG
  find "$root/usr/share/doc" -mindepth 1 ! -name copyright ! -type d -delete
  find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete
  rm -rf "$root"/usr/share/man/* "$root"/usr/share/info/* \
    "$root"/usr/share/locale/* "$root"/usr/share/lintian/*
  tar --numeric-owner -C "$root" -cf "$slim.tmp" . && mv "$slim.tmp" "$slim"
  echo "base_images: rootfs made in $(( $(date +%s) - start )) s"
  # Older weeks' tarballs are not needed any more.
  find "$cache" -maxdepth 1 -name 'bookworm-minbase-*' ! -name "$key*" -delete
fi
for pair in "debian:12 $full" "debian:12-slim $slim"; do
  set -- $pair
  podman rmi -f "localhost/$1" > /dev/null 2>&1 || true
  podman import -q --change "LABEL $label" --change 'CMD ["bash"]' \
    "$2" "localhost/$1" > /dev/null
  echo "base_images: imported localhost/$1 ($key)"
done
