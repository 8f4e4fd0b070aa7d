#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# No dark node (label bpf): the real agent streams to the real collector while
# the node churns cgroups the agent cannot name: a cgroup whose name has a
# control byte, a 254-byte .service unit, then more short-lived cgroups
# (0.1-0.5 s, removed at once) than the agent's table holds (--max_cgroups). The node stays CONNECTED (a 3 s stale TTL, polled
# throughout), the collector refuses no report, and a burner in a cgroup of
# its own keeps the kernel's cpu.stat CPU time within 2 %.
# Usage: e2e_no_dark_node_test.sh <bin dir>
bin=$1
source "$(dirname "$0")/e2e_lib.sh"
grpc=$(free_port); metrics=$(free_port)
cli() { "$bin/wattlens" --insecure --server=127.0.0.1:$grpc "$@"; }
mount=$(awk '$3 == "cgroup2" {print $2; exit}' /proc/self/mounts)
made=()
cleanup_cgroups() {
  for d in "${made[@]}"; do rmdir "$d" 2>/dev/null; done
}
trap 'cleanup_cgroups; cleanup' EXIT

# Under instruction emulation (the kernel stage's qemu guests, marked on the
# kernel command line) everything runs 5-10x slower: the stale TTL and the
# wait for the first report stretch by 10, nothing else changes.
# The agent's table holds every cgroup that exists now (any may be active),
# the test's three (burner, control byte, long unit) and four more for
# cgroups that come and go meanwhile (the order in which cgroups first seen
# in one interval take their rows is arbitrary); the churn, started once the
# three have their rows, brings more than that many, so the table overflows
# whatever this host runs.
table=$(( $(find "$mount" -name cgroup.procs | wc -l) + 3 + 4 ))
nshort=$(( table + 22 ))
echo "agent table: $table cgroups; $nshort short-lived ones"
slow=1
grep -qw 'wattlens.emulated=1' /proc/cmdline 2>/dev/null && slow=10
"$bin/wattlens-collector" --insecure --listen_address=127.0.0.1:$grpc \
  --metrics_address=127.0.0.1:$metrics --db="$tmp/store.db" --resolution=1s \
  --stale_ttl=$((3 * slow))s > "$tmp/collector.log" 2>&1 &
pids+=($!)
"$bin/wattlens-agent" --collector=127.0.0.1:$grpc --insecure \
  --upload_interval=1s --upload_jitter=0s --metrics_address= \
  --node_api_address= --node_name=dark-node --max_cgroups=$table \
  > "$tmp/agent.log" 2>&1 &
pids+=($!)
state() {
  cli status -o json 2>/dev/null | python3 -c "import json,sys
try:
    d = json.load(sys.stdin)
except ValueError:
    d = {}
print(next((n['state'] for n in d.get('nodes', []) if n['node_name']=='dark-node'), 'NONE'))"
}
for _ in $(seq $((100 * slow))); do  # until the node has reported
  [ "$(state)" = NODE_STATE_CONNECTED ] && break
  sleep 0.2
done
[ "$(state)" = NODE_STATE_CONNECTED ]
check "agent reported to the collector" $? || { tail "$tmp"/*.log; exit 1; }

# The burner's cgroup first, so that it has a row before the table fills.
cg="$mount/wattlens-dark-$$"
mkdir "$cg"
burn_in_cgroup "$cg" &
burner=$!

# A name with a control byte (\001) and a 254-byte unit, each running a
# little CPU.
odd_ctl="$mount/$(printf 'wattlens-dark-ctl\001%s' $$)"
unit=$(python3 -c "n='wattlens-dark-$$-'; print(n + 'u' * (254 - len(n) - 8) + '.service')")
odd_unit="$mount/$unit"
[ ${#unit} -eq 254 ]; check "unit name is 254 bytes" $?
for d in "$odd_ctl" "$odd_unit"; do
  mkdir "$d" && made+=("$d")
  sh -c "echo \$\$ > '$d/cgroup.procs'; exec $py -S -c 'import time
while time.process_time() < 0.3: pass'" &
done

# The three have their rows before the churn can fill the table.
rows_present() {
  cli top -o json --group-by=cgroup --window=5m 2>/dev/null |
    python3 -c "import json,sys
try:
    rows = [r['key']['cgroup_path'] for r in json.load(sys.stdin)['rows']]
except (ValueError, KeyError):
    rows = []
want = ['/wattlens-dark-$$', '/wattlens-dark-ctl\\\\x01$$', '/$unit']
sys.exit(0 if all(w in rows for w in want) else 1)"
}
deadline=$((SECONDS + 30 * slow))
until rows_present || [ $SECONDS -ge $deadline ]; do sleep 0.2; done
rows_present
check "burner, control-byte and long-unit cgroups have rows" $? ||
  { echo "table $table"; cli top -o wide --group-by=cgroup --window=5m
    tail "$tmp"/*.log; exit 1; }

# $nshort short-lived cgroups (0.1-0.5 s), removed as soon as they are
# empty: more than the table holds, most gone before they resolve.
short() {
  local d="$mount/wattlens-dark-$$-short-$1"
  mkdir "$d" || return
  sh -c "echo \$\$ > '$d/cgroup.procs'; exec $py -S -c 'import time
t=time.monotonic()+$2
while time.monotonic() < t: pass'"
  rmdir "$d"
}
stale_seen=0
for i in $(seq $nshort); do
  short "$i" "0.$((1 + RANDOM % 5))" &
  if [ $((i % 6)) -eq 0 ]; then
    [ "$(state)" = NODE_STATE_CONNECTED ] || stale_seen=1
  fi
done
wait "$burner"
for d in "${made[@]}"; do  # the odd ones ran to completion
  while [ -n "$(cat "$d/cgroup.procs" 2>/dev/null)" ]; do sleep 0.1; done
done
kernel_us=$(awk '$1 == "usage_usec" {print $2}' "$cg/cpu.stat")

# Keep watching the node for a few stale TTLs after the churn.
for _ in $(seq 20); do
  [ "$(state)" = NODE_STATE_CONNECTED ] || stale_seen=1
  sleep 0.5
done
[ $stale_seen -eq 0 ]; check "node stayed CONNECTED throughout" $?

curl -sf "http://127.0.0.1:$metrics/metrics" > "$tmp/collector.prom"
malformed=$(awk -F' ' '/^wattlens_collector_rejected_reports_total\{reason="malformed"\}/ {print $2}' "$tmp/collector.prom")
refused=$(awk '/^wattlens_collector_refused_workloads_total/ {s += $2} END {print s + 0}' "$tmp/collector.prom")
echo "collector: reports refused as malformed ${malformed:-?}, workloads refused $refused"
grep '^wattlens_collector_refused_workloads_total' "$tmp/collector.prom" | grep -v ' 0$' 
[ "${malformed:-1}" = 0 ] && [ "$refused" = 0 ]
check "the collector refused no report and no workload" $?

path="/wattlens-dark-$$"
cli top -o json --group-by=cgroup --window=5m > "$tmp/top.json"
python3 - "$tmp/top.json" "$path" "$kernel_us" "$$" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
path, kernel_us, pid = sys.argv[2], int(sys.argv[3]), sys.argv[4]
rows = {r['key']['cgroup_path']: r['usage'] for r in d['rows']}
got = rows.get(path, {}).get('cpu_seconds', 0) * 1e6
print(f"burner: {got:.0f} us, cpu.stat {kernel_us} us "
      f"({100 * (got - kernel_us) / kernel_us:+.3f} %)")
ok = abs(got - kernel_us) <= 0.02 * kernel_us
ctl = [p for p in rows if p.startswith('/wattlens-dark-ctl\\x01')]
print("control-byte cgroup as", ctl)
ok &= len(ctl) == 1
unit = [p for p in rows if p.startswith(f'/wattlens-dark-{pid}-u')]
print("254-byte unit cgroup present:", len(unit) == 1)
ok &= len(unit) == 1
placeholders = [p for p in rows if p.startswith('/deleted/') or p == '/overflow']
print("placeholder rows:", placeholders[:5], len(placeholders))
ok &= '/overflow' in rows
if not ok:
    print("rows:", sorted(rows))
sys.exit(0 if ok else 1)
PY
check "burner exact within 2 %; odd names and placeholders are rows" $?
grep -i "rejected\|refused" "$tmp/collector.log" | head -3
exit $fail
