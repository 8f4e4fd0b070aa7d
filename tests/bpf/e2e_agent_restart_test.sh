#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Agent restarts lose nothing (label bpf). The real agent runs with
# --bpf_pin and streams to the real collector. In cgroups of their own: a
# CPU burner and a socket pair that run throughout, and a process making a
# known number of syscalls (wl_syscall_burst, started inside its cgroup so
# that no syscall straddles a migration) run once while the agent is stopped
# with SIGTERM and once while it is killed with SIGKILL; each time a new
# agent starts after a few seconds and adopts the pinned BPF state. At the
# end the collector must hold, for the whole span: the burner's CPU within
# 1 % of its cgroup's cpu.stat, exactly the syscalls the two runs made (and
# for a control run the agent saw whole, exactly its own), and exactly the
# bytes the socket pair moved. Prints the outage lengths and the figures.
# An upgrade that changes one object's layout then starts that one fresh.
# Usage: e2e_agent_restart_test.sh <bin dir> <wl_syscall_burst>
bin=$1
burst=$2
source "$(dirname "$0")/e2e_lib.sh"
grpc=$(free_port); metrics=$(free_port); agent_metrics=$(free_port)
cli() { "$bin/wattlens" --insecure --server=127.0.0.1:$grpc "$@"; }
# Under instruction emulation (the kernel stage's qemu guests) everything is
# 5-10x slower: waits stretch, the checks do not change.
slow=1
grep -qw 'wattlens.emulated=1' /proc/cmdline 2>/dev/null && slow=10

# bpffs: mounted here if the machine has none; the pins go in a directory
# of this test's own, removed (with the cgroups) whatever happens.
if ! stat -f -c %T /sys/fs/bpf 2>/dev/null | grep -q bpf; then
  mount -t bpf bpf /sys/fs/bpf || { echo "FAIL: cannot mount bpffs"; exit 1; }
fi
pin_root=/sys/fs/bpf/wattlens-e2e-$$
state_dir="$tmp/state"
mount=$(awk '$3 == "cgroup2" {print $2; exit}' /proc/self/mounts)
cgs=()
agent_pid=""
workers=()
cleanup_restart() {
  [ -n "$agent_pid" ] && kill -TERM "$agent_pid" 2>/dev/null &&
    wait "$agent_pid" 2>/dev/null
  touch "$tmp/stop"
  for p in "${workers[@]}"; do wait "$p" 2>/dev/null; done
  "$bin/wattlens-agent" --bpf_unpin --bpf_pin_root="$pin_root" \
    --restart_state_dir="$state_dir" > /dev/null 2>&1
  rmdir "$pin_root" 2>/dev/null
  for c in "${cgs[@]}"; do rmdir "$c" 2>/dev/null; done
}
trap 'cleanup_restart; cleanup' EXIT

"$bin/wattlens-collector" --insecure --listen_address=127.0.0.1:$grpc \
  --metrics_address=127.0.0.1:$metrics --db="$tmp/store.db" --resolution=1s \
  > "$tmp/collector.log" 2>&1 &
pids+=($!)
model_power_root "$tmp/power"
starts=0
start_agent() {  # start_agent [extra flags]
  starts=$((starts + 1))
  "$bin/wattlens-agent" "$@" --collector=127.0.0.1:$grpc --insecure \
    --upload_interval=1s --upload_jitter=0s \
    --metrics_address=127.0.0.1:$agent_metrics --node_api_address= \
    --node_name=restart-node --power_sysfs_root="$tmp/power" \
    --bpf_pin --bpf_pin_root="$pin_root" --restart_state_dir="$state_dir" \
    >> "$tmp/agent.log" 2>&1 &
  agent_pid=$!
}
# has_metric <regex>: whether the agent's /metrics has a line matching it
# (read whole first: grep -q closing the pipe early would fail it).
has_metric() {
  local m
  m=$(metric "$1")
  grep -qE "$1" <<< "$m"
}
metric() {  # metric <regex>: the agent's /metrics lines matching it
  python3 - "$agent_metrics" "$1" <<'PY' 2>/dev/null
import re, sys, urllib.request
body = urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/metrics",
                              timeout=2).read().decode()
print("\n".join(l for l in body.splitlines() if re.search(sys.argv[2], l)))
PY
}
node_epoch() {
  cli status -o json 2>/dev/null | python3 -c "import json,sys
d = json.load(sys.stdin)
print(next((n.get('epoch', '0') for n in d.get('nodes', [])
            if n.get('node_name') == 'restart-node'), '0'))" 2>/dev/null
}
# wait_reported <epoch before>: until the collector has a report of a newer
# epoch (this agent's), and the state it acknowledged is on disk.
wait_reported() {
  for _ in $(seq $((150 * slow))); do
    e=$(node_epoch)
    if [ -n "$e" ] && [ "$e" != 0 ] && [ "$e" != "$1" ] &&
       has_metric 'wattlens_agent_restart_state_writes_total\{result="ok"\} [1-9]'; then
      return 0
    fi
    sleep 0.2
  done
  return 1
}
# usage <cgroup path> <field>: the collector's cumulative value
usage() {
  cli top -o json --group-by=cgroup --window=15m 2>/dev/null | python3 -c "
import json, sys
d = json.load(sys.stdin)
print(next((r['usage'].get('$2', 0) for r in d['rows']
            if r['key']['cgroup_path'] == '$1'), 0))" 2>/dev/null || echo 0
}

start_agent
wait_reported 0
check "agent 1 reported and wrote its restart state" $? ||
  { tail -30 "$tmp"/*.log; exit 1; }
has_metric 'wattlens_agent_bpf_pins_info\{.*outcome="fresh"'
check "agent 1 pinned its BPF state afresh" $?

mkcg() { mkdir "$mount/$1" && cgs+=("$mount/$1"); }
id=wattlens-restart-$$
mkcg "$id-cpu"; mkcg "$id-sys"; mkcg "$id-ctl"; mkcg "$id-net"
rounds=$((100)); per=1000; sleep_us=20000

# The control: the same syscalls, while the agent runs throughout.
caused=$("$burst" "$mount/$id-ctl" $rounds $per $sleep_us)
check "control syscall run ($caused syscalls)" $?

# Throughout: a CPU burner and a TCP socket pair in their own cgroups.
sh -c "echo \$\$ > $mount/$id-cpu/cgroup.procs; exec python3 -c '
import os, time
while not os.path.exists(\"$tmp/stop\"):
    t = time.process_time()
    while time.process_time() - t < 0.01: pass'" &
burner=$!
workers+=($burner)
sh -c "echo \$\$ > $mount/$id-net/cgroup.procs; exec python3 -c '
import os, socket, threading, time
srv = socket.socket(); srv.bind((\"127.0.0.1\", 0)); srv.listen(1)
c = socket.create_connection(srv.getsockname()); s, _ = srv.accept()
got = [0]
def rx():
    while True:
        b = s.recv(65536)
        if not b: break
        got[0] += len(b)
t = threading.Thread(target=rx); t.start()
sent, chunk = 0, b\"x\" * 10000
while not os.path.exists(\"$tmp/stop\"):
    c.sendall(chunk); sent += len(chunk); time.sleep(0.02)
c.close(); t.join()
open(\"$tmp/net\", \"w\").write(f\"{sent} {got[0]}\")'" &
net=$!
workers+=($net)

outages=""
# outage <signal>: stops the agent with it while a syscall run goes on,
# keeps it down for at least 3 s and until that run has ended, restarts it
# and waits until the new agent has reported.
outage() {
  local before t0 t1
  before=$(node_epoch)
  "$burst" "$mount/$id-sys" $rounds $per $sleep_us > /dev/null &
  local run=$!
  t0=$(date +%s.%N)
  kill -"$1" "$agent_pid"
  wait "$agent_pid" 2>/dev/null
  wait "$run"
  check "syscall run during the $1 outage" $?
  while python3 -c "import sys; sys.exit(0 if $(date +%s.%N) - $t0 < 3 else 1)"; do
    sleep 0.1
  done
  start_agent
  t1=$(date +%s.%N)
  outages="$outages $1:$(python3 -c "print(f'{$t1 - $t0:.2f}')")s"
  wait_reported "$before"
  check "agent $starts reported after the $1 outage" $? ||
    { tail -30 "$tmp"/*.log; exit 1; }
  has_metric 'wattlens_agent_restart_info\{outcome="resumed"'
  check "agent $starts resumed from the pinned state" $? ||
    metric 'wattlens_agent_(restart|bpf_pins)'
  for s in sched syscalls network; do
    has_metric "wattlens_agent_bpf_pins_info\\{source=\"$s\",outcome=\"adopted\""
    check "agent $starts adopted the pinned $s state" $? ||
      metric 'wattlens_agent_bpf_pins'
  done
}
outage TERM
outage KILL

touch "$tmp/stop"
wait "$burner" "$net"
kernel_us=$(awk '$1 == "usage_usec" {print $2}' "$mount/$id-cpu/cpu.stat")
read -r net_sent net_got < "$tmp/net"

ctl=0; sys=0; cpu=0; tx=0; rx=0
for _ in $(seq $((150 * slow))); do  # until the collector has it all
  ctl=$(usage "/$id-ctl" syscalls); sys=$(usage "/$id-sys" syscalls)
  cpu=$(usage "/$id-cpu" cpu_nanoseconds)
  tx=$(usage "/$id-net" network_transmit_bytes)
  rx=$(usage "/$id-net" network_receive_bytes)
  [ "$ctl" -eq "$caused" ] && [ "$sys" -eq $((2 * caused)) ] && [ "$tx" -eq "$net_sent" ] &&
    [ "$rx" -eq "$net_got" ] &&
    python3 -c "import sys; sys.exit(0 if abs($cpu / 1e3 - $kernel_us) <= 0.01 * $kernel_us else 1)" &&
    break
  sleep 0.2
done
echo "outages:$outages"
python3 -c "
a, k = $cpu / 1e3, $kernel_us
print(f'cpu: collector {a / 1e6:.3f} s, cpu.stat {k / 1e6:.3f} s ({100 * (a - k) / k:+.3f} %)')"
python3 -c "import sys; sys.exit(0 if abs($cpu / 1e3 - $kernel_us) <= 0.01 * $kernel_us else 1)"
check "burner CPU in the collector within 1 % of cpu.stat over the whole span" $?
echo "syscalls: collector $sys across the outages, caused $((2 * caused)) (2 runs of $caused); control run: collector $ctl, caused $caused"
[ "$ctl" -eq "$caused" ]
check "syscalls of the control run exact" $?
[ "$sys" -eq $((2 * caused)) ]
check "syscalls across the outages exact" $?
echo "network: collector tx $tx rx $rx bytes, socket pair sent $net_sent received $net_got"
[ "$tx" -eq "$net_sent" ] && [ "$rx" -eq "$net_got" ] && [ "$net_sent" -gt 0 ]
check "network bytes across the outages exact" $?

# An upgrade that changes one object's layout (here its map size): that
# source starts fresh and says why, the old set is unpinned, the others are
# still adopted.
before=$(node_epoch)
kill -TERM "$agent_pid"; wait "$agent_pid" 2>/dev/null
start_agent --bpf_syscall_map_entries=8192
wait_reported "$before"
check "agent $starts with another syscalls layout reported" $?
has_metric 'wattlens_agent_bpf_pins_info\{source="syscalls",outcome="fresh",reason="layout_changed"\}'
check "a changed syscalls layout starts fresh (layout_changed)" $? ||
  metric 'wattlens_agent_bpf_pins'
has_metric 'wattlens_agent_bpf_pins_info\{source="sched",outcome="adopted"'
check "the unchanged sched layout is still adopted" $?
[ "$(ls -d "$pin_root"/syscalls-* | wc -l)" -eq 1 ]
ok=$?  # the message's command substitution would reset $?
check "one syscalls set left pinned: $(cd "$pin_root" && echo syscalls-*)" $ok
exit $fail
