#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# End to end with a real Prometheus server (Debian `prometheus`, label bpf):
# it scrapes the real agent and collector on loopback; after a workload burns
# 2 s of CPU in its own cgroup, `promtool query instant` returns that cgroup's
# CPU seconds (against the kernel's cpu.stat) and energy from the agent, and
# its cost from the collector; the agent's power source (the model: its power
# root has no meter) and, with WATTLENS_TEST_DEAD_PERF_POWER=1, the dead perf
# meter put in front of it, rejected.
# Usage: prometheus_e2e_test.sh <bin dir>
bin=$1
source "$(dirname "$0")/e2e_lib.sh"
if ! command -v prometheus > /dev/null || ! command -v promtool > /dev/null; then
  echo "FAIL: prometheus/promtool missing (scripts/install-deps.sh installs them)"; exit 1
fi
grpc=$(free_port); cmetrics=$(free_port); ametrics=$(free_port); prom=$(free_port)

"$bin/wattlens-collector" --insecure --listen_address=127.0.0.1:$grpc \
  --metrics_address=127.0.0.1:$cmetrics --db= --resolution=1s \
  > "$tmp/collector.log" 2>&1 &
pids+=($!)
model_power_root "$tmp/power"
"$bin/wattlens-agent" --collector=127.0.0.1:$grpc --insecure \
  --upload_interval=1s --upload_jitter=0s --metrics_address=127.0.0.1:$ametrics \
  --node_api_address= --node_name=prom-node --power_sysfs_root="$tmp/power" \
  > "$tmp/agent.log" 2>&1 &
pids+=($!)
cat > "$tmp/prometheus.yml" <<YML
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: wattlens-agent
    static_configs: [{targets: ['127.0.0.1:$ametrics']}]
  - job_name: wattlens-collector
    static_configs: [{targets: ['127.0.0.1:$cmetrics']}]
YML
promtool check config "$tmp/prometheus.yml" > /dev/null
check "promtool check config" $?
prometheus --config.file="$tmp/prometheus.yml" --storage.tsdb.path="$tmp/tsdb" \
  --web.listen-address=127.0.0.1:$prom > "$tmp/prometheus.log" 2>&1 &
pids+=($!)
url="http://127.0.0.1:$prom"
q() { promtool query instant -o json "$url" "$1" 2>/dev/null; }
value() {  # first sample's value, or empty
  python3 -c "import json,sys
d=json.load(sys.stdin)
print(d[0]['value'][1] if d else '')" 2>/dev/null
}
for _ in $(seq 150); do  # until Prometheus sees both targets up
  [ "$(q 'sum(up{job=~"wattlens-.*"})' | value)" = "2" ] && break
  sleep 0.2
done
[ "$(q 'sum(up{job=~"wattlens-.*"})' | value)" = "2" ]
check "Prometheus scrapes the agent and the collector (up == 1 for both)" $? ||
  { tail -5 "$tmp"/*.log; exit 1; }

mount=$(awk '$3 == "cgroup2" {print $2; exit}' /proc/self/mounts)
name="wattlens-prom-$$"
cg="$mount/$name"
mkdir "$cg"
# The burner: 2 s of its own CPU in the test cgroup.
burn_in_cgroup "$cg"
kernel_us=$(awk '$1 == "usage_usec" {print $2}' "$cg/cpu.stat")
sel="{job=\"wattlens-agent\",cgroup=\"/$name\"}"
cpu=""
for _ in $(seq 150); do  # until a scrape after the agent's drain has it all
  cpu=$(q "sum(wattlens_workload_cpu_seconds_total$sel)" | value)
  [ -n "$cpu" ] && python3 -c "import sys; sys.exit(0 if $cpu * 1e6 >= $kernel_us * 0.98 else 1)" && break
  sleep 0.2
done
python3 -c "
import sys
a, k = float('${cpu:-0}') * 1e6, $kernel_us
print(f'promtool query instant: {a:.0f} us, cpu.stat {k} us ({100*(a-k)/k:+.3f} %)')
sys.exit(0 if abs(a - k) <= 0.02 * k else 1)"
check "Prometheus has the burner's CPU seconds within 2 % of cpu.stat" $?
joules=$(q "sum(wattlens_workload_energy_joules_total$sel)" | value)
python3 -c "import sys; sys.exit(0 if float('${joules:-0}') > 0 else 1)"
check "Prometheus has the burner's energy (${joules:-none} J)" $?
in_use=$(q 'wattlens_agent_power_source_in_use{job="wattlens-agent",source="model:ccf",provenance="modelled"}' | value)
[ "$in_use" = "1" ]
check "Prometheus: the power source in use is model:ccf, modelled" $?
stuck=$(q 'wattlens_agent_power_source_rejected{job="wattlens-agent",source="perf-power",reason="stuck"}' | value)
if dead_perf_forced; then
  [ "$stuck" = "1" ]
  check "Prometheus: the forced dead perf meter is rejected as stuck" $?
else
  [ -z "$stuck" ]
  check "Prometheus: no perf meter rejected as stuck (none forced)" $?
fi
# The collector's view of the cluster: cost and carbon counters, scraped.
cost=""
for _ in $(seq 100); do
  cost=$(q 'sum(wattlens_workload_cost_total{job="wattlens-collector",resource="cpu"})' | value)
  [ -n "$cost" ] && python3 -c "import sys; sys.exit(0 if float('$cost') > 0 else 1)" && break
  sleep 0.2
done
python3 -c "import sys; sys.exit(0 if float('${cost:-0}') > 0 else 1)"
check "Prometheus has the collector's workload CPU cost (${cost:-none} USD)" $?
exit $fail
