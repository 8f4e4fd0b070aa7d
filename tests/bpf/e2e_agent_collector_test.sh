#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# End to end on this machine (label bpf): the real agent (BPF) streams to the
# real collector; a workload that burns 2 s of CPU in its own cgroup shows up
# in `wattlens top -o json` with the kernel's cpu.stat CPU seconds (issue
# bar: within 2 %), with model energy and its provenance, and `wattlens
# status` lists the node. The agent's power root has no meter (the model,
# whatever this host has); with WATTLENS_TEST_DEAD_PERF_POWER=1 a dead perf
# meter is put in front and must show up rejected.
# Usage: e2e_agent_collector_test.sh <bin dir>
bin=$1
source "$(dirname "$0")/e2e_lib.sh"
grpc=$(free_port); metrics=$(free_port)
cli() { "$bin/wattlens" --insecure --server=127.0.0.1:$grpc "$@"; }

"$bin/wattlens-collector" --insecure --listen_address=127.0.0.1:$grpc \
  --metrics_address=127.0.0.1:$metrics --db="$tmp/store.db" --resolution=1s \
  > "$tmp/collector.log" 2>&1 &
pids+=($!)
model_power_root "$tmp/power"
"$bin/wattlens-agent" --collector=127.0.0.1:$grpc --insecure \
  --upload_interval=1s --upload_jitter=0s --metrics_address= \
  --node_api_address= --node_name=e2e-node --power_sysfs_root="$tmp/power" \
  > "$tmp/agent.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do  # until the node has reported
  cli status -o json 2>/dev/null | grep -q '"e2e-node"' && break
  sleep 0.2
done
cli status -o json 2>/dev/null | grep -q '"e2e-node"'
check "agent reported to the collector" $? || { tail "$tmp"/*.log; exit 1; }

mount=$(awk '$3 == "cgroup2" {print $2; exit}' /proc/self/mounts)
cg="$mount/wattlens-e2e-$$"
mkdir "$cg"
burn_in_cgroup "$cg"
kernel_us=$(awk '$1 == "usage_usec" {print $2}' "$cg/cpu.stat")
[ "$kernel_us" -ge 2000000 ]; check "burner used ${kernel_us} us (cpu.stat)" $?

path="/wattlens-e2e-$$"
seconds=0
for _ in $(seq 100); do  # until the collector has it all
  seconds=$(cli top -o json --group-by=cgroup --window=5m 2>/dev/null |
    python3 -c "import json,sys
d=json.load(sys.stdin)
print(next((r['usage']['cpu_seconds'] for r in d['rows'] if r['key']['cgroup_path']=='$path'), 0))")
  python3 -c "import sys; sys.exit(0 if $seconds * 1e6 >= $kernel_us * 0.98 else 1)" && break
  sleep 0.2
done
python3 -c "
import sys
a, k = $seconds * 1e6, $kernel_us
print(f'top -o json: {a:.0f} us, cpu.stat {k} us ({100*(a-k)/k:+.3f} %)')
sys.exit(0 if abs(a - k) <= 0.02 * k else 1)"
check "wattlens top CPU seconds within 2 % of cpu.stat" $?
joules=$(cli top -o json --group-by=cgroup --window=5m | python3 -c "import json,sys
d=json.load(sys.stdin)
print(next((r['usage']['energy_joules'] for r in d['rows'] if r['key']['cgroup_path']=='$path'), 0))")
python3 -c "import sys; sys.exit(0 if $joules > 0 else 1)"
check "the burner has energy in the cluster view ($joules J)" $?
# Where that energy comes from, in the same row: the model, and (when
# forced) the dead perf meter rejected as stuck, naming the node.
cli top -o json --group-by=cgroup --window=5m > "$tmp/provenance.json"
dead=0; dead_perf_forced && dead=1
python3 - "$tmp/provenance.json" "$path" "$dead" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
row = next(r for r in d['rows'] if r['key']['cgroup_path'] == sys.argv[2])
p = row['usage']['energy_provenance']
print(f"provenance: {json.dumps(p)}")
ok = p['basis'] == 'ENERGY_BASIS_MODELLED' and p['sources'] == ['model:ccf']
rejected = {(r['source'], r['reason'], r.get('node_name')) for r in p.get('rejected', [])}
if sys.argv[3] == '1':
    ok &= ('perf-power', 'stuck', 'e2e-node') in rejected
else:
    ok &= not rejected  # absent meters are not listed in query rows
sys.exit(0 if ok else 1)
PY
check "top -o json: the burner's energy is modelled (model:ccf), rejected meters named" $?

# Cost and carbon (issue #7). With no request, the burner's allocation is its
# usage, so its CPU cost is its CPU hours x the OpenCost default price.
cli top -o json --group-by=cgroup --window=5m > "$tmp/top.json"
python3 - "$tmp/top.json" "$path" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
row = next(r for r in d['rows'] if r['key']['cgroup_path'] == sys.argv[2])
u = row['usage']
alloc_s = u['cpu_allocated_core_hours'] * 3600
print(f"burner: cpu {u['cpu_seconds']:.6f} s, allocated {alloc_s:.6f} core-s, "
      f"cost {u['cost']['cpu']:.9f} {d['currency']}, "
      f"carbon {u['carbon']['operational_grams']:.6f} g op + "
      f"{u['carbon']['embodied_grams']:.6f} g embodied")
ok = abs(alloc_s - u['cpu_seconds']) <= 1e-9 * max(1, u['cpu_seconds'])
ok &= abs(u['cost']['cpu'] - u['cpu_seconds'] / 3600 * 0.031611) <= 1e-12
ok &= u['carbon']['operational_grams'] > 0 and u['carbon']['embodied_grams'] > 0
ok &= d['currency'] == 'USD'
ok &= any('world average' in w for w in d.get('warnings', []))
idle = [r for r in d['rows'] if r['key']['cgroup_path'] == '__idle__']
ok &= len(idle) == 1 and idle[0]['usage']['cost']['total'] > 0
sys.exit(0 if ok else 1)
PY
check "burner cost = CPU hours x price, carbon > 0, idle row, world-average note" $?
# The kernel threads reach the collector as the workload `kernel` (#5).
python3 - "$tmp/top.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
row = next((r for r in d['rows'] if r['key']['cgroup_path'] == 'kernel'), None)
ok = row is not None
if ok:
    k, u = row['key'], row['usage']
    print(f"kernel: {k.get('workload_kind')}/{k.get('workload')} "
          f"[{k.get('project')}] cpu {u['cpu_seconds']:.6f} s, "
          f"{u.get('energy_joules', 0):.3f} J")
    ok = (k.get('workload_kind') == 'kernel' and k.get('workload') == 'kernel'
          and k.get('project') == 'linux' and u['cpu_seconds'] > 0
          and u.get('energy_joules', 0) > 0)
sys.exit(0 if ok else 1)
PY
check "the kernel workload in the cluster view (labels, CPU, energy)" $?
cli projects --window=5m > "$tmp/projects.txt" 2> "$tmp/projects.err"
grep -q "COST(USD)" "$tmp/projects.txt" && grep -q "__idle__" "$tmp/projects.txt" &&
  grep -q "world average" "$tmp/projects.err"
check "wattlens projects prints the bill and the fallback note" $?
cat "$tmp/projects.txt" | head -5
curl -sf "http://127.0.0.1:$metrics/metrics" > "$tmp/collector.prom"
grep -q '^wattlens_workload_cost_total{.*resource="cpu"' "$tmp/collector.prom" &&
  grep -q '^wattlens_grid_intensity_grams_per_kwh{node="e2e-node"' "$tmp/collector.prom" &&
  grep -q '^wattlens_workload_carbon_grams_total{.*scope="embodied"' "$tmp/collector.prom"
check "collector /metrics has workload cost, carbon and node grid intensity" $?
if command -v promtool > /dev/null; then
  promtool check metrics < "$tmp/collector.prom" > "$tmp/promtool.txt" 2>&1
  check "promtool check metrics on the collector scrape: $(wc -l < "$tmp/promtool.txt") findings" \
    "$(wc -l < "$tmp/promtool.txt")"
fi
cli top --group-by=cgroup --window=5m | head -5
exit $fail
