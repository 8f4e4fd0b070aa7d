#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The agent image run as the rendered DaemonSet runs it, and the collector image as its
# Deployment runs it, under podman (labels bpf, container; needs the images of
# tests/container/build_images.sh, the ctest fixture `wattlens_images`):
#   - security context, host mounts, PID namespace, limits, env and the ConfigMap's flags come
#     from `kubectl kustomize deploy/overlays/minimal` (tests/container/podman_args.py);
#   - a real nginx container (its own image, nginx from Debian packages) is the workload: the
#     agent must report it as a `container` with podman's id, project `nginx` (from the
#     container's own dpkg database), CPU within 1 % of its cgroup's cpu.stat, and the system
#     calls and network bytes the test caused, exactly;
#   - the agent's /readyz answers 200, which includes "the collector acknowledged a report": the
#     containerised agent streams to the containerised collector over mTLS
#     (deploy/scripts/gen-certs.sh), and the collector's query API returns the nginx workload.
# Differences from a cluster, forced by having no API server: the collector runs with
# --node_identity=certificate (the ConfigMap says token, which needs a TokenReview), so the
# agent presents a client certificate whose CN is the node name; the agent's projected token is
# a placeholder; the collector's Service name resolves through --add-host.
# usage: agent_container_test.sh <bin dir> <source dir>
set -uo pipefail
bin=$(cd "$1" && pwd) src=$(cd "$2" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
source "$here/podman_lib.sh"
need_podman
[ -r /sys/kernel/btf/vmlinux ] || skip "needs kernel BTF"
unified=$(awk '$3 == "cgroup2" {print $2; exit}' /proc/self/mounts)
[ -n "$unified" ] || skip "needs a cgroup v2 hierarchy"
for i in wattlens/wattlens-agent:0.1.0 wattlens/wattlens-collector:0.1.0 \
         wattlens-test-nginx:latest; do
  pm image exists "$i" || { echo "FAIL image $i missing (run build_images.sh)"; exit 1; }
done

tmp=$(mktemp -d)
tag=wl-ct-$$
node=wl-container-node
fail=0
helper_pid=""
cleanup() {
  if [ "$fail" != 0 ]; then
    for c in agent collector nginx; do
      echo "--- $c log (tail)"; pm logs --tail 15 "$tag-$c" 2>&1
    done
  fi
  [ -n "$helper_pid" ] && kill "$helper_pid" 2>/dev/null
  pm rm -f -i -t 2 "$tag-agent" "$tag-collector" "$tag-nginx" > /dev/null 2>&1
  [ -n "${WL_KEEP_TMP:-}" ] && echo "kept $tmp" || rm -rf "$tmp"
}
trap cleanup EXIT
check() { if [ "$2" -eq 0 ]; then echo "PASS $1"; else echo "FAIL $1"; fail=1; fi; }
die() { echo "FAIL $*"; fail=1; exit 1; }
# until <seconds> <command...>: polls the command every 0.2 s until it succeeds.
until_ok() {
  local end=$(( $(date +%s) + $1 )); shift
  while ! "$@"; do
    [ "$(date +%s)" -ge "$end" ] && return 1
    sleep 0.2
  done
}
port_of() { pm port "$1" "$2" | head -1 | sed 's/.*://'; }
answers_200() { [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$1")" = 200 ]; }

# ---------------------------------------------------------------- the manifest
kubectl kustomize "$src/deploy/overlays/minimal" > "$tmp/rendered.yaml" ||
  die "kubectl kustomize deploy/overlays/minimal"
# podman_args.py output -> flags, image, args arrays (prefix 'flag|image|arg<TAB>').
derive() {  # derive <prefix> <podman_args.py args...>
  local prefix=$1 k v
  shift
  eval "${prefix}_flags=() ${prefix}_args=() ${prefix}_image="
  python3 "$here/podman_args.py" "$@" < "$tmp/rendered.yaml" > "$tmp/$prefix.args" ||
    die "podman_args.py $*"
  while IFS=$'\t' read -r k v; do
    case $k in
      flag) eval "${prefix}_flags+=(\"\$v\")" ;;
      image) eval "${prefix}_image=\$v" ;;
      arg) eval "${prefix}_args+=(\"\$v\")" ;;
    esac
  done < "$tmp/$prefix.args"
}

# ---------------------------------------------------------------- certificates
bash "$src/deploy/scripts/gen-certs.sh" -o "$tmp/certs" > /dev/null || die "gen-certs.sh"
mkdir -p "$tmp/secret-collector" "$tmp/secret-agent" "$tmp/token" "$tmp/store"
cp "$tmp/certs/wattlens-collector.crt" "$tmp/secret-collector/tls.crt"
cp "$tmp/certs/wattlens-collector.key" "$tmp/secret-collector/tls.key"
cp "$tmp/certs/ca.crt" "$tmp/secret-collector/ca.crt"
# --node_identity=certificate: the agent's certificate names its node (CN and DNS SAN), signed by
# the CA gen-certs.sh made.
(
  cd "$tmp/certs" &&
  openssl ecparam -name prime256v1 -genkey -noout -out node.key &&
  openssl req -new -key node.key -subj "/CN=$node" -out node.csr &&
  printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\nsubjectAltName=DNS:%s,URI:spiffe://wattlens/agent\n' \
    "$node" > node.ext &&
  openssl x509 -req -in node.csr -CA ca.crt -CAkey ca.key -CAcreateserial -sha256 -days 1 \
    -extfile node.ext -out node.crt 2> /dev/null
) || die "node certificate"
cp "$tmp/certs/node.crt" "$tmp/secret-agent/tls.crt"
cp "$tmp/certs/node.key" "$tmp/secret-agent/tls.key"
cp "$tmp/certs/ca.crt" "$tmp/secret-agent/ca.crt"
echo "placeholder-token-no-api-server" > "$tmp/token/token"

# ---------------------------------------------------------------- collector
derive col --kind Deployment --name wattlens-collector --config-dir "$tmp/col-config" \
  --secret "wattlens-collector-tls=$tmp/secret-collector" \
  --claim "wattlens-collector-store=$tmp/store" --field metadata.namespace=wattlens
pm run -d --name "$tag-collector" "${ulimits[@]}" "${col_flags[@]}" "$col_image" \
  "${col_args[@]}" --node_identity=certificate --resolution=1s > /dev/null ||
  die "collector container did not start"
col_metrics=$(port_of "$tag-collector" 9812)
col_grpc=$(port_of "$tag-collector" 9811)
until_ok 60 answers_200 "http://127.0.0.1:$col_metrics/readyz"
ok=$?  # the message's command substitution would reset $?
check "collector container /readyz 200 (uid $(pm exec "$tag-collector" id -u), read-only root)" $ok
col_ip=$(pm inspect -f '{{.NetworkSettings.IPAddress}}' "$tag-collector")

# ---------------------------------------------------------------- agent
agent_derive() {
  derive agent --kind DaemonSet --name wattlens-agent --config-dir "$tmp/agent-config" \
    --secret "wattlens-agent-tls=$tmp/secret-agent" --token "$tmp/token" \
    --field "spec.nodeName=$node" --field metadata.name=wattlens-agent-test \
    --field metadata.namespace=wattlens "$@"
}
# seccomp RuntimeDefault is the runtime's own profile. Where that profile allows bpf(2) only with
# CAP_SYS_ADMIN (Debian 12's podman), the agent cannot load: shown first, then the agent runs
# with that profile amended as docs/deploy.md#seccomp says (what newer runtimes ship).
agent_derive
timeout 60 "${podman_cmd[@]}" run --rm "${ulimits[@]}" "${agent_flags[@]}" "$agent_image" \
  "${agent_args[@]}" > "$tmp/default-seccomp.log" 2>&1
rc=$?
if grep -q '"CAP_BPF"' /usr/share/containers/seccomp.json; then
  echo "podman's default seccomp profile knows CAP_BPF (agent exit $rc without an amendment)"
else
  [ "$rc" != 0 ] && [ "$rc" != 124 ] && grep -q "Operation not permitted" "$tmp/default-seccomp.log"
  ok=$?
  [ $ok = 0 ] || { echo "--- agent under the unamended profile (exit $rc)"; tail -5 "$tmp/default-seccomp.log"; }
  check "with podman's unamended default seccomp profile the agent exits: $(grep -oE '(the bpf\(\) system call is refused|no BPF source could be loaded).*' "$tmp/default-seccomp.log" | head -1)" $ok
fi
agent_derive --seccomp-out "$tmp/seccomp.json"
grep -q -- "--pid=host" "$tmp/agent.args"; check "DaemonSet: hostPID -> --pid=host" $?
# The ConfigMap's upload interval is 10 s; 1 s keeps the test short.
extra=(--upload_interval=1s --upload_jitter=0s)
# The ConfigMap's --cgroup_root is the host's /sys/fs/cgroup, the cgroup2 mount on unified hosts.
# On a hybrid host that is the v1 tmpfs and cgroup2 is mounted at unified/ below it; the agent
# would index the v1 hierarchies too (every kernfs root has inode 1, so the v2 root read as
# "/cpu") and prefix every path with /unified.
if [ "$(stat -f -c %T /sys/fs/cgroup)" != cgroup2fs ]; then
  extra+=("--cgroup_root=/host${unified}")
  echo "hybrid cgroup host: --cgroup_root=/host${unified} added (the ConfigMap's" \
    "/host/sys/fs/cgroup is not a cgroup2 mount here)"
fi
pm run -d --name "$tag-agent" "${ulimits[@]}" "${agent_flags[@]}" \
  --add-host "wattlens-collector.wattlens.svc:$col_ip" "$agent_image" "${agent_args[@]}" \
  "${extra[@]}" > /dev/null || die "agent container did not start"
agent_metrics=$(port_of "$tag-agent" 9810)
until_ok 90 answers_200 "http://127.0.0.1:$agent_metrics/healthz"
check "agent container /healthz 200" $?
agent_pid=$(pm inspect -f '{{.State.Pid}}' "$tag-agent")
# What the container grants (a process started in it), and what the agent keeps: it drops its
# permitted and effective sets once the programs are loaded (--drop_capabilities).
pm exec "$tag-agent" grep -E '^Cap(Prm|Eff|Bnd)' /proc/self/status > "$tmp/caps"
caps=$(awk '{printf "%s%s%s", (NR>1?" ":""), $1, $2}' "$tmp/caps")
eff=$(awk '$1 == "CapEff:" {print $2}' "$tmp/caps")
echo "inside the agent container (/proc/self/status): $caps = $(capsh --decode="$eff" 2> /dev/null | sed 's/.*=//')"
# CAP_PERFMON is bit 38, CAP_BPF bit 39: exactly those two, in every set.
[ "$(awk '{print $2}' "$tmp/caps" | sort -u)" = 000000c000000000 ]
check "the agent container holds exactly CAP_BPF and CAP_PERFMON" $?
agent_caps=$(grep -E '^Cap(Prm|Eff|Bnd)' "/proc/$agent_pid/status" |
  awk '{printf "%s%s%s", (NR>1?" ":""), $1, $2}')
echo "the agent process (pid $agent_pid) after loading: $agent_caps"
pm exec "$tag-agent" sh -c 'touch /probe' > /dev/null 2>&1
[ $? -ne 0 ]; check "agent root file system is read-only" $?
grep -E '^(NoNewPrivs|Seccomp):' "/proc/$agent_pid/status" | tr '\n\t' '  '; echo

# ---------------------------------------------------------------- the workload
# nginx with every capability dropped (see nginx.Dockerfile); the helper is bind-mounted
# read-only, so that the image holds nothing but Debian's nginx.
pm run -d --name "$tag-nginx" "${ulimits[@]}" --cap-drop=ALL --publish 127.0.0.1::8080 \
  --volume "$bin/wl_syscall_helper:/usr/local/bin/wl-syscalls:ro" \
  wattlens-test-nginx:latest > /dev/null || die "nginx container did not start"
nginx_id=$(pm inspect -f '{{.Id}}' "$tag-nginx")
nginx_pid=$(pm inspect -f '{{.State.Pid}}' "$tag-nginx")
nginx_port=$(port_of "$tag-nginx" 8080)
cgroup=$(sed -n 's/^0:://p' "/proc/$nginx_pid/cgroup")
echo "nginx container ${nginx_id:0:12}, pid $nginx_pid, cgroup v2 $cgroup"
[ "$cgroup" = "/libpod_parent/libpod-$nginx_id" ]
check "nginx container in its own cgroup /libpod_parent/libpod-<id>" $?
cgdir=$unified$cgroup
until_ok 20 answers_200 "http://127.0.0.1:$nginx_port/payload" ||
  die "nginx does not answer"

scrape() { curl -s --max-time 5 "http://127.0.0.1:$agent_metrics/metrics" > "$tmp/scrape"; }
# value <metric>: the nginx cgroup's value, summed over the remaining labels (network class).
value() {
  awk -v m="$1" -v cg="cgroup=\"$cgroup\"" '
    index($0, m "{") == 1 && index($0, cg) { s += $NF; n++ }
    END { if (n) printf "%.9f\n", s; else print "none" }' "$tmp/scrape"
}
has_nginx() {
  scrape && grep -F "wattlens_workload_cpu_seconds_total{cgroup=\"$cgroup\"" "$tmp/scrape" |
    grep -q 'project="nginx"'
}
until_ok 30 has_nginx
check "agent /metrics: cgroup=\"$cgroup\" with project=\"nginx\"" $?
grep -F "wattlens_workload_cpu_seconds_total{cgroup=\"$cgroup\"" "$tmp/scrape" | sed 's/^/  /'
# The container's id and runtime, as kube-state-metrics names them.
info=$(grep -F "wattlens_container_info{cgroup=\"$cgroup\"" "$tmp/scrape")
echo "  $info"
grep -qF "container_id=\"podman://$nginx_id\",runtime=\"podman\"" <<< "$info"
check "agent /metrics: the nginx container is a podman container with its id" $?

# delta <before> <after>: an integer difference; a series not there yet counts 0, one that
# vanished is an error.
delta() {
  local a=$1 b=$2
  [ "$a" = none ] && a=0
  [ "$b" = none ] && { echo "missing"; return; }
  python3 -c "print(int(round($b - $a)))"
}
# stable <metric>: waits until the value is unchanged over 3 s (the agent's interval is 1 s
# and nginx is idle), then prints it.
stable() {
  local a b end=$(( $(date +%s) + 30 ))
  scrape; a=$(value "$1")
  while :; do
    sleep 1.5; scrape; b=$(value "$1")
    if [ "$a" = "$b" ]; then
      sleep 1.5; scrape; b=$(value "$1")
      [ "$a" = "$b" ] && { echo "$b"; return 0; }
    fi
    a=$b
    [ "$(date +%s)" -ge "$end" ] && { echo "$b"; return 1; }
  done
}

# ---------------------------------------------------------------- syscalls
# The helper runs inside the container (podman exec). runc does not place exec'd processes in
# the container's cgroup v2 on a hybrid host, so the test moves it there (as runc does on a
# unified host) while it is blocked on its first read.
coproc HELPER { "${podman_cmd[@]}" exec -i "$tag-nginx" /usr/local/bin/wl-syscalls; }
read -r -t 20 line <&"${HELPER[0]}"; [ "$line" = ready ] || die "helper did not start"
helper_host_pid=$(pgrep -f -n '^/usr/local/bin/wl-syscalls$')
echo "$helper_host_pid" > "$cgdir/cgroup.procs" || die "move helper into $cgroup"
n=20000
s0=$(stable wattlens_workload_syscalls_total) || die "syscalls not stable before (nginx busy?)"
echo "s $n" >&"${HELPER[1]}"
read -r -t 30 word caused <&"${HELPER[0]}"; [ "$word" = done ] || die "helper: $word"
s1=$(stable wattlens_workload_syscalls_total)
got=$(delta "$s0" "$s1")
echo "syscalls: agent counted $got, the helper made $caused ($n getppid + its read and write)"
[ "$got" = "$caused" ]; check "syscalls exact ($got = $caused)" $?

# ---------------------------------------------------------------- network bytes
reqs=25
tx0=$(stable wattlens_workload_network_transmit_bytes_total)
rx0=$(value wattlens_workload_network_receive_bytes_total)
sent=0 received=0
for _ in $(seq $reqs); do
  read -r q h d < <(curl -s -o /dev/null -w '%{size_request} %{size_header} %{size_download}\n' \
    "http://127.0.0.1:$nginx_port/payload")
  sent=$((sent + q)) received=$((received + h + d))
done
tx1=$(stable wattlens_workload_network_transmit_bytes_total)
rx1=$(value wattlens_workload_network_receive_bytes_total)
tx=$(delta "$tx0" "$tx1")
rx=$(delta "$rx0" "$rx1")
echo "network: $reqs requests; nginx sent $tx bytes (curl received $received: headers + body)," \
  "received $rx bytes (curl sent $sent)"
[ "$tx" = "$received" ]; check "transmit bytes exact ($tx = $received)" $?
[ "$rx" = "$sent" ]; check "receive bytes exact ($rx = $sent)" $?

# ---------------------------------------------------------------- CPU
# 2 s of the helper's CPU, compared while it is blocked again (alive: the check is about the
# agent's accounting of a running container, not of an exit).
echo "b 2000" >&"${HELPER[1]}"
read -r -t 60 word _ <&"${HELPER[0]}"; [ "$word" = done ] || die "helper burn: $word"
cpu_ok() {
  local kernel agent
  scrape
  agent=$(value wattlens_workload_cpu_seconds_total)
  kernel=$(awk '$1 == "usage_usec" {print $2}' "$cgdir/cpu.stat")
  echo "$agent $kernel" > "$tmp/cpu"
  [ "$agent" != none ] && python3 -c "import sys; a, k = $agent * 1e6, $kernel; sys.exit(0 if abs(a - k) <= 0.01 * k else 1)"
}
until_ok 20 cpu_ok
rc=$?
read -r agent_s kernel_us < "$tmp/cpu"
[ "$agent_s" = none ] && agent_s=0
python3 -c "a, k = $agent_s * 1e6, $kernel_us
print(f'cpu: agent {a/1e6:.6f} s, cpu.stat usage_usec {k/1e6:.6f} s ({100*(a-k)/k:+.3f} %)')"
check "nginx container CPU within 1 % of its cgroup's cpu.stat" $rc
exec {HELPER[1]}>&-
wait "$HELPER_PID" 2> /dev/null

# ---------------------------------------------------------------- readiness and collector
until_ok 30 answers_200 "http://127.0.0.1:$agent_metrics/readyz"
rc=$?
curl -s "http://127.0.0.1:$agent_metrics/readyz" | sed 's/^/  readyz: /'
check "agent /readyz 200 (snapshot, sources, collector acknowledged a report over mTLS)" $rc
cli() {
  "$bin/wattlens" --server="127.0.0.1:$col_grpc" --tls-ca-file="$tmp/certs/ca.crt" \
    --tls-cert-file="$tmp/certs/wattlens-reader.crt" --tls-key-file="$tmp/certs/wattlens-reader.key" \
    --tls-server-name=wattlens-collector.wattlens.svc "$@"
}
collector_has_nginx() {
  cli top -o json --group-by=cgroup --window=5m > "$tmp/top.json" 2> "$tmp/top.err" &&
    python3 - "$tmp/top.json" "$cgroup" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
rows = [r for r in d["rows"] if r["key"].get("cgroup_path") == sys.argv[2]]
sys.exit(0 if rows and rows[0]["usage"]["cpu_seconds"] > 0 else 1)
PY
}
until_ok 30 collector_has_nginx
rc=$?
python3 - "$tmp/top.json" "$cgroup" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
for r in d["rows"]:
    if r["key"].get("cgroup_path") == sys.argv[2]:
        print(f"collector (wattlens top over mTLS): key {json.dumps(r['key'])}, "
              f"cpu {r['usage']['cpu_seconds']:.3f} s")
PY
check "the collector container received the nginx workload from the agent container" $rc

[ "$fail" = 0 ] && echo "agent_container_test: PASS"
exit $fail
