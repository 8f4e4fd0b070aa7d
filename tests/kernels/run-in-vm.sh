#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Runs one command inside a Debian 12 kernel booted in qemu, and returns the
# command's exit status. The guest sees this machine's root filesystem
# read-only over virtio-9p (with a tmpfs overlay for writes), so a build
# tree runs there unchanged, at the same path, with the same environment.
#
# Usage: run-in-vm.sh [--console FILE] [--timeout SECONDS] FLAVOUR -- CMD...
#   FLAVOUR  6.1      newest linux-image-6.1.0-N-amd64 in the apt lists
#            6.1-rt   newest linux-image-6.1.0-N-rt-amd64 (PREEMPT_RT)
#            X.Y, X.Y-rt  the same for another line Debian 12 offers (6.12:
#                     linux-image-6.12.N+deb12-amd64)
#            linux-image-...  that exact package
#   --console FILE   the guest's serial console (kernel log); by default a
#                    temporary file, kept and named when the run fails
#   --timeout S      hard limit for the whole guest (default 2400 s)
#
# Environment:
#   WATTLENS_KERNEL_CACHE  where extracted packages are kept, one directory
#                          per kernel package and version, reused across
#                          runs (default /var/cache/wattlens/kernels)
#   WATTLENS_VM_CPUS, WATTLENS_VM_MEMORY  guest size (default 2, 4G)
#
# Exit status: the command's; 125 when the guest never reported one (no
# package, a kernel that does not boot, the timeout), with the reason on
# stderr and the tail of the console.
#
# The CPU is qemu's software one (TCG). Hardware virtualisation is not used
# on purpose: a paravirtual /dev/kvm (kvm-pvm) cannot boot stock kernels, and
# TCG boots everywhere. Timing in the guest is 5-10x slower than native; the
# kernel command line carries wattlens.emulated=1 so that tests can tell.
set -uo pipefail

die() { echo "run-in-vm: $*" >&2; exit 125; }

console="" timeout_s=2400
while [ $# -gt 0 ]; do
  case $1 in
    --console) console=$2; shift 2 ;;
    --timeout) timeout_s=$2; shift 2 ;;
    --) shift; break ;;
    -*) die "unknown option $1" ;;
    *) if [ -z "${flavour:-}" ]; then flavour=$1; shift; else break; fi ;;
  esac
done
[ -n "${flavour:-}" ] || die "usage: run-in-vm.sh FLAVOUR -- CMD..."
[ "${1:-}" = -- ] && shift
[ $# -gt 0 ] || die "no command given"
[ "$(id -u)" = 0 ] || die "needs root (apt-get download into the cache, 9p export of /)"
command -v qemu-system-x86_64 > /dev/null ||
  die "qemu-system-x86_64 not found (Debian package qemu-system-x86)"

cache=${WATTLENS_KERNEL_CACHE:-/var/cache/wattlens/kernels}
cpus=${WATTLENS_VM_CPUS:-2}
memory=${WATTLENS_VM_MEMORY:-4G}

# Debian names a line's packages linux-image-6.1.0-N-amd64 (ABI number) or
# linux-image-6.12.N+deb12-amd64 (upstream release); both sort with -V.
case $flavour in
  [0-9]*.[0-9]*)
    line=${flavour%-rt}
    [ "$line" = "$flavour" ] && suffix=amd64 || suffix=rt-amd64
    pattern="^linux-image-${line//./\\.}(\\.0-[0-9]+|\\.[0-9]+\\+deb[0-9]+)-$suffix\$"
    ;;
  linux-image-*) pattern="^${flavour//./\\.}\$" ;;
  *) die "unknown flavour '$flavour' (6.1, 6.1-rt, 6.12 or a linux-image package)" ;;
esac

# --- The kernel package: newest in the apt lists, extracted once. ---------
newest() {
  apt-cache search --names-only "$pattern" 2>/dev/null | awk '{print $1}' |
    sort -V | tail -1
}
pkg=$(newest)
if [ -z "$pkg" ]; then  # empty lists on a fresh machine
  apt-get update -qq > /dev/null 2>&1
  pkg=$(newest)
fi
[ -n "$pkg" ] || die "no package matches $pattern in the apt lists (apt-get update failed or the registry is unreachable)"
version=$(apt-cache policy "$pkg" | awk '/Candidate:/ {print $2}')
[ -n "$version" ] && [ "$version" != "(none)" ] ||
  die "$pkg has no installable version"
key="${pkg}_${version//:/%3a}"
dir=$cache/$key

mkdir -p "$cache" || die "cannot create $cache"
exec 9> "$cache/.lock"
flock 9  # one writer per cache; readers of a complete entry need no lock
if [ ! -f "$dir/complete" ]; then
  echo "run-in-vm: fetching $pkg $version into $dir" >&2
  rm -rf "$cache"/.fetch.*  # left by an interrupted fetch (we hold the lock)
  stage=$(mktemp -d "$cache/.fetch.XXXXXX")
  # busybox-static: the initramfs; kmod: depmod here and modprobe in the
  # guest (veth and friends load on demand); libkmod2 for completeness of
  # kmod's own runtime.
  if ! (cd "$stage" && apt-get download -q "$pkg" busybox-static kmod \
          libkmod2 > download.log 2>&1); then
    tail -5 "$stage/download.log" >&2
    rm -rf "$stage"
    die "apt-get download $pkg busybox-static kmod libkmod2 failed"
  fi
  for deb in "$stage"/*.deb; do
    dpkg -x "$deb" "$stage/root" || { rm -rf "$stage"; die "dpkg -x $deb failed"; }
  done
  kver=$(ls "$stage/root/lib/modules" | head -1)
  # Debian's packages leave modules.dep to their postinst.
  (exec -a depmod "$stage/root/bin/kmod" -b "$stage/root" "$kver") ||
    { rm -rf "$stage"; die "depmod for $kver failed"; }
  rm -f "$stage"/*.deb
  echo "$kver" > "$stage/kver"
  # modprobe as the guest kernel calls it (kernel.modprobe): kmod picks its
  # personality from argv[0], and -d points it at the extracted tree.
  mkdir -p "$stage/bin"
  ln -s ../root/bin/kmod "$stage/bin/modprobe"
  printf '#!/bin/sh\nexec %s/bin/modprobe -d %s/root "$@"\n' "$dir" "$dir" \
    > "$stage/bin/wl-modprobe"
  chmod 755 "$stage/bin/wl-modprobe"
  touch "$stage/complete"
  rm -rf "$dir"
  mv "$stage" "$dir" || die "cannot move $stage to $dir"
  # An entry is ~400 MiB: keep only the newest package of this flavour.
  for old in "$cache"/linux-image-*; do
    name=$(basename "$old")
    [[ ${name%%_*} =~ $pattern ]] && [ "$old" != "$dir" ] && rm -rf "$old"
  done
fi
flock -u 9
kver=$(cat "$dir/kver")
vmlinuz=$dir/root/boot/vmlinuz-$kver
[ -f "$vmlinuz" ] || die "$vmlinuz missing from $dir"

# --- The initramfs: busybox, the few modules the boot needs, /init. -------
run=$(mktemp -d "${TMPDIR:-/tmp}/wattlens-vm.XXXXXX")
keep_run=0
cleanup() {
  # A guest outliving this script would hold both cores until its timeout.
  [ -s "$run/qemu.pid" ] && kill "$(cat "$run/qemu.pid")" 2>/dev/null
  [ "$keep_run" = 1 ] || rm -rf "$run"
}
trap cleanup EXIT
trap 'exit 143' TERM INT HUP
[ -n "$console" ] || { console=$run/console.log; }
mkdir -p "$run/initramfs/bin" "$run/initramfs/modules" "$run/out"
cp "$dir/root/bin/busybox" "$run/initramfs/bin/busybox"
# modules.dep lists a module's dependencies; load them depth first.
moddir=$dir/root/lib/modules/$kver
declare -A loaded=()
order=()
load() {
  local name=$1 line path dep
  # Module names treat - and _ alike (virtio-rng.ko is virtio_rng).
  local re="(^|/)${name//[-_]/[-_]}\.ko(\.[a-z]+)?"
  line=$(grep -E "$re:" "$moddir/modules.dep" | head -1)
  if [ -z "$line" ]; then
    grep -qE "$re\$" "$moddir/modules.builtin" && return  # built in
    die "module $name not in $kver's modules.dep"
  fi
  path=${line%%:*}
  [ -n "${loaded[$path]:-}" ] && return
  local deps=(${line#*:})
  local i
  for ((i = ${#deps[@]} - 1; i >= 0; i--)); do
    load "$(basename "${deps[$i]}" | sed -E 's/\.ko(\.[a-z]+)?$//')"
  done
  loaded[$path]=1
  order+=("$path")
}
for m in virtio_pci virtio_rng 9pnet_virtio 9p overlay; do load "$m"; done
for path in "${order[@]}"; do  # busybox insmod takes them uncompressed
  ko=$(basename "$path" | sed -E 's/\.ko\.[a-z]+$/.ko/')
  case $path in
    *.ko) cp "$moddir/$path" "$run/initramfs/modules/$ko" ;;
    *.xz) xz -dc "$moddir/$path" > "$run/initramfs/modules/$ko" ;;
    *.zst) zstd -qdc "$moddir/$path" > "$run/initramfs/modules/$ko" ;;
    *.gz) gzip -dc "$moddir/$path" > "$run/initramfs/modules/$ko" ;;
    *) die "cannot unpack module $path" ;;
  esac || die "cannot unpack module $path"
  echo "$ko" >> "$run/initramfs/modules/order"
done

# The command, its directory and environment, as a POSIX sh script that the
# guest runs in the shared root. Every exported variable goes along except
# those that describe this shell rather than the run.
q() { printf "'%s'" "${1//\'/\'\\\'\'}"; }
{
  while IFS= read -r -d '' kv; do
    name=${kv%%=*}
    [[ $name =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || continue
    case $name in PWD | OLDPWD | SHLVL | _) continue ;; esac
    echo "export $name=$(q "${kv#*=}")"
  done < <(env -0)
  echo "cd $(q "$PWD") || exit 126"
  printf 'exec'
  for a in "$@"; do printf ' %s' "$(q "$a")"; done
  echo
} > "$run/initramfs/cmd.sh"

cat > "$run/initramfs/init" << EOF
#!/bin/busybox sh
# PID 1 of the test guest (generated by tests/kernels/run-in-vm.sh).
/bin/busybox --install -s /bin
export PATH=/bin
mkdir -p /proc /sys /dev /out /lower /rw /newroot
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
say() { echo "wattlens-vm: \$*"; }
fail() {
  say "FAIL: \$*"
  [ -d /out/. ] && echo "\$*" > /out/error
  poweroff -f
}
for m in \$(cat /modules/order); do
  insmod /modules/\$m || fail "insmod \$m"
done
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000,cache=none \
  wlout /out || fail "mount of the result share"
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000,cache=loose,ro \
  hostroot /lower || fail "mount of the host root"
mount -t tmpfs -o mode=755 tmpfs /rw
mkdir /rw/upper /rw/work
mount -t overlay overlay \
  -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work /newroot ||
  fail "overlay mount"
r=/newroot
mount -t proc proc \$r/proc
mount -t sysfs sysfs \$r/sys
mount -t devtmpfs devtmpfs \$r/dev
mkdir -p \$r/dev/pts \$r/dev/shm
mount -t devpts devpts \$r/dev/pts
mount -t tmpfs tmpfs \$r/dev/shm
mount -t tmpfs -o mode=755 tmpfs \$r/run
mount -t cgroup2 cgroup2 \$r/sys/fs/cgroup || fail "cgroup2 mount"
for c in cpu io memory pids; do
  echo +\$c > \$r/sys/fs/cgroup/cgroup.subtree_control ||
    say "controller \$c not available"
done
mount -t bpf bpf \$r/sys/fs/bpf
mount -t debugfs debugfs \$r/sys/kernel/debug
mount -t tracefs tracefs \$r/sys/kernel/tracing
ip link set lo up || fail "lo up"
hostname wattlens-vm
# The kernel runs kernel.modprobe from the initramfs root, the test from the
# overlay: the same path works in both and ends in the extracted kmod.
mkdir -p /run/wattlens-vm \$r/run/wattlens-vm
printf '#!/bin/sh\nexec chroot /newroot %s "\$@"\n' $dir/bin/wl-modprobe \
  > /run/wattlens-vm/modprobe
printf '#!/bin/sh\nexec %s "\$@"\n' $dir/bin/wl-modprobe \
  > \$r/run/wattlens-vm/modprobe
chmod 755 /run/wattlens-vm/modprobe \$r/run/wattlens-vm/modprobe
echo /run/wattlens-vm/modprobe > /proc/sys/kernel/modprobe
cp /cmd.sh \$r/run/wattlens-vm/cmd.sh
{
  echo "kernel=\$(uname -r)"
  echo "version=\$(cat /proc/version)"
  [ -r /sys/kernel/btf/vmlinux ] && echo btf=yes || echo btf=no
  echo "cpu=\$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2-)"
  echo "boot_seconds=\$(cut -d' ' -f1 /proc/uptime)"
} > /out/info
chroot \$r /usr/bin/env -i /bin/sh /run/wattlens-vm/cmd.sh > /out/output 2>&1
echo \$? > /out/rc
echo "run_seconds=\$(cut -d' ' -f1 /proc/uptime)" >> /out/info
sync
poweroff -f
EOF
chmod 755 "$run/initramfs/init"
(cd "$run/initramfs" &&
   find . | "$dir/root/bin/busybox" cpio -o -H newc 2>/dev/null) \
  > "$run/initramfs.cpio" || die "cannot build the initramfs"

# --- Boot. -----------------------------------------------------------------
: > "$run/out/output"
# no_timer_check: under a loaded host the software CPU can be slow enough
# that the kernel's IO-APIC timer check fails and it panics at boot.
cmdline="console=ttyS0 rdinit=/init panic=-1 no_timer_check wattlens.emulated=1"
start=$(date +%s)
(
  timeout -k 10 "$timeout_s" qemu-system-x86_64 \
    -accel tcg,thread=multi -cpu max -machine q35 -smp "$cpus" -m "$memory" \
    -nodefaults -display none -no-reboot -serial "file:$console" \
    -kernel "$vmlinuz" -initrd "$run/initramfs.cpio" -append "$cmdline" \
    -virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap \
    -virtfs "local,path=$run/out,mount_tag=wlout,security_model=none,multidevs=remap" \
    -device virtio-rng-pci > "$run/qemu.log" 2>&1 &
  echo $! > "$run/qemu.pid"
  wait $!
  { echo $? > "$run/qemu.rc"; } 2>/dev/null  # gone if we were killed
) &
sub=$!
while [ ! -s "$run/qemu.pid" ]; do sleep 0.05; done
# The guest's output, as it is written (tail exits once qemu has). In the
# background, so that a signal to this script interrupts `wait` at once.
tail -n +1 -s 0.5 -f --pid="$(cat "$run/qemu.pid")" "$run/out/output" &
wait $!
wait $sub
qemu_rc=$(cat "$run/qemu.rc" 2>/dev/null || echo "?")
elapsed=$(($(date +%s) - start))

info() { sed -n "s/^$1=//p" "$run/out/info" 2>/dev/null | head -1; }
if [ -f "$run/out/rc" ]; then
  rc=$(cat "$run/out/rc")
  echo "run-in-vm: $pkg ($(info kernel)), BTF $(info btf), boot $(info boot_seconds) s, whole run ${elapsed} s, exit $rc" >&2
  if [ "$(info btf)" != yes ]; then
    echo "run-in-vm: $pkg has no /sys/kernel/btf/vmlinux" >&2
    [ "$rc" = 0 ] && rc=125
  fi
else
  if [ "$qemu_rc" = 124 ] || [ "$qemu_rc" = 137 ]; then
    reason="the guest did not finish within $timeout_s s"
  elif [ -s "$run/out/error" ]; then
    reason="the guest's init failed: $(cat "$run/out/error")"
  else
    reason="the guest stopped without reporting an exit status (qemu exit $qemu_rc)"
  fi
  echo "run-in-vm: $pkg: $reason" >&2
  tail -5 "$run/qemu.log" >&2
  echo "run-in-vm: last console lines ($console):" >&2
  tail -30 "$console" >&2
  rc=125
fi
if [ "$rc" != 0 ] && [ "$console" = "$run/console.log" ]; then
  keep_run=1
  echo "run-in-vm: console log kept in $console" >&2
fi
exit "$rc"
