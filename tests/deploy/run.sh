#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Offline test of deploy/: renders every overlay with kubectl kustomize, validates every object
# against the Kubernetes / Prometheus Operator / cert-manager schemas with security and RBAC
# assertions (and proves the assertions bite on mutated copies), unit-tests the alert rules with
# promtool, parses every dashboard expression with promtool, checks every metric a panel or alert
# uses against recorded scrapes of the real agent (pending-metrics.txt lists the ones not exported
# yet), checks the agent's flag file against agent/main.cc, and exercises gen-certs.sh with a real
# mTLS handshake. Needs: kubectl (Debian kubernetes-client), promtool (Debian prometheus), node+npm,
# openssl. No network besides `npm ci`, no cluster, no privileges.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
deploy=$root/deploy
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
step() { printf '\n== %s\n' "$*"; }

missing=()
command -v kubectl >/dev/null || missing+=(kubernetes-client)
command -v promtool >/dev/null || missing+=(prometheus)
command -v openssl >/dev/null || missing+=(openssl)
command -v npm >/dev/null || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "run.sh: missing tools; install Debian packages: ${missing[*]}" >&2; exit 1
  fi
fi
if [ ! -d "$here/node_modules" ] || [ "$here/package-lock.json" -nt "$here/node_modules/.package-lock.json" ]; then
  (cd "$here" && npm ci --no-audit --no-fund --loglevel=error)
fi
check() { node "$here/check.mjs" "$@"; }

step "render every overlay (kubectl kustomize)"
overlays=()
for o in "$deploy"/overlays/*/; do
  name=$(basename "$o")
  kubectl kustomize "$o" >"$tmp/$name.yaml"
  overlays+=("$tmp/$name.yaml")
  echo "rendered overlays/$name: $(grep -c '^kind:' "$tmp/$name.yaml") objects"
done
# Opt-in components are not in any overlay: render them on top of the recommended one.
mkdir -p "$tmp/all-components"
rel=$(realpath --relative-to="$tmp/all-components" "$deploy")  # kustomize refuses absolute roots
cat >"$tmp/all-components/kustomization.yaml" <<YAML
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources: [$rel/overlays/cert-manager]
components: [$rel/components/nvidia-gpu, $rel/components/cgroup-file-handles]
YAML
kubectl kustomize "$tmp/all-components" >"$tmp/all-components.yaml"
overlays+=("$tmp/all-components.yaml")
echo "rendered cert-manager + nvidia-gpu + cgroup-file-handles: $(grep -c '^kind:' "$tmp/all-components.yaml") objects"

step "schema validation and security / mount / RBAC assertions"
check validate "${overlays[@]}"

echo "host mounts of the agent in the recommended overlay (overlays/cert-manager):"
(cd "$here" && node --input-type=module -e '
  import fs from "node:fs"; import { parseAllDocuments } from "yaml";
  const ds = parseAllDocuments(fs.readFileSync(process.argv[1], "utf8")).map((d) => d.toJS())
    .find((d) => d?.kind === "DaemonSet" && d.metadata.name === "wattlens-agent");
  const s = ds.spec.template.spec;
  for (const m of s.containers[0].volumeMounts) {
    const v = s.volumes.find((x) => x.name === m.name);
    if (v.hostPath) console.log(`  ${v.hostPath.path} -> ${m.mountPath} readOnly=${m.readOnly}`);
  }
  const cm = parseAllDocuments(fs.readFileSync(process.argv[1], "utf8")).map((d) => d.toJS())
    .find((d) => d?.kind === "ConfigMap" && d.metadata.name === "wattlens-agent-config");
  console.log("  " + cm.data["agent.flags"].split("\n").filter((l) => /^--(power_sysfs_root|btf_path|cgroup_root|proc_root|cluster_cidrs)=/.test(l.trim())).join(" "));
' "$tmp/cert-manager.yaml")

step "the assertions reject insecure variants"
check selftest "$tmp/cert-manager.yaml"

step "alert rules: promtool check rules + promtool test rules"
check rules "$tmp/cert-manager.yaml" "$tmp/wattlens-rules.yaml"
promtool check rules "$tmp/wattlens-rules.yaml"
cp "$here/rules_test.yaml" "$tmp/"
(cd "$tmp" && promtool test rules rules_test.yaml)
check runbooks "$tmp/wattlens-rules.yaml" "$root/docs/runbooks.md"

step "dashboard: every expression parses (promtool check rules on generated recording rules)"
dash=$deploy/components/dashboards/wattlens-cluster.json
check dashboard-rules "$dash" "$tmp/dashboard-rules.yaml"
promtool check rules "$tmp/dashboard-rules.yaml"

step "metric coverage: every metric used exists in a recorded scrape (or is listed pending)"
check coverage "$tmp/wattlens-rules.yaml" "$dash" "$here/pending-metrics.txt" "$tmp/cert-manager.yaml" "$here"/testdata/*_scrape.prom
# The label check bites: a cost panel filtering the collector's series by node (they carry none, so
# the panel goes empty when a node is picked), and agent panels once the ServiceMonitor no longer
# adds node, must both be refused.
sed 's/wattlens_workload_cost_total{job=\\"wattlens-collector\\", /wattlens_workload_cost_total{job=\\"wattlens-collector\\", node=~\\"$node\\", /' \
  "$dash" >"$tmp/dash-node-on-collector.json"
cmp -s "$dash" "$tmp/dash-node-on-collector.json" && { echo "FAIL: the mutation found no collector cost selector"; exit 1; }
if check coverage "$tmp/wattlens-rules.yaml" "$tmp/dash-node-on-collector.json" "$here/pending-metrics.txt" \
  "$tmp/cert-manager.yaml" "$here"/testdata/*_scrape.prom >"$tmp/mut.txt" 2>&1; then
  echo "FAIL: a node matcher on the collector's cost series was accepted"; exit 1
fi
echo "rejected node matcher on collector series: $(grep -m1 '^FAIL' "$tmp/mut.txt" | cut -c1-150)"
(cd "$here" && node --input-type=module -e '
  import fs from "node:fs"; import { parseAllDocuments, stringify } from "yaml";
  const docs = parseAllDocuments(fs.readFileSync(process.argv[1], "utf8")).map((d) => d.toJS()).filter(Boolean);
  for (const d of docs) if (d.kind === "ServiceMonitor") for (const e of d.spec.endpoints) delete e.relabelings;
  process.stdout.write(docs.map((d) => stringify(d)).join("---\n"));
' "$tmp/cert-manager.yaml") >"$tmp/no-node-relabel.yaml"
if check coverage "$tmp/wattlens-rules.yaml" "$dash" "$here/pending-metrics.txt" \
  "$tmp/no-node-relabel.yaml" "$here"/testdata/*_scrape.prom >"$tmp/mut.txt" 2>&1; then
  echo "FAIL: agent panels matching node were accepted without the ServiceMonitor's node relabeling"; exit 1
fi
echo "rejected agent node matchers without the node relabeling: $(grep -m1 '^FAIL' "$tmp/mut.txt" | cut -c1-150)"
for scrape in "$here"/testdata/*_scrape.prom; do
  promtool check metrics <"$scrape" >"$tmp/lint.txt" 2>&1 || true
  if grep -v '^exposer_' "$tmp/lint.txt" | grep -q .; then
    echo "recorded scrape $(basename "$scrape") has promtool lint findings:"
    cat "$tmp/lint.txt"; exit 1
  fi
  echo "promtool check metrics: no findings on wattlens_* families of $(basename "$scrape")"
done

step "agent and collector flag files use only flags their main.cc defines"
(cd "$here" && node --input-type=module -e '
  import fs from "node:fs"; import { parse } from "yaml";
  process.stdout.write(parse(fs.readFileSync(process.argv[1], "utf8")).data["agent.flags"]);
' "$deploy/base/agent/configmap.yaml") | sed 's/^ *//' | grep -v '^#' | grep . | sed 's/=.*//; s/^--//' | sort -u >"$tmp/used-flags"
grep -ho 'ABSL_FLAG([^,]*, *[a-z_0-9]*' "$root"/agent/*.cc | sed 's/.*, *//' | sort -u >"$tmp/known-flags"
echo flagfile >>"$tmp/known-flags"
unknown=$(comm -23 "$tmp/used-flags" <(sort -u "$tmp/known-flags"))
if [ -n "$unknown" ]; then echo "FAIL: agent.flags sets flags the agent does not define: $unknown"; exit 1; fi
echo "agent.flags: $(wc -l <"$tmp/used-flags") flags, all defined in agent/"
(cd "$here" && node --input-type=module -e '
  import fs from "node:fs"; import { parse } from "yaml";
  process.stdout.write(parse(fs.readFileSync(process.argv[1], "utf8")).data["collector.flags"]);
' "$deploy/base/collector/configmap.yaml") | sed 's/^ *//' | grep -v '^#' | grep . | sed 's/=.*//; s/^--//' | sort -u >"$tmp/used-cflags"
grep -ho 'ABSL_FLAG([^,]*, *[a-z_0-9]*' "$root"/collector/*.cc | sed 's/.*, *//' | sort -u >"$tmp/known-cflags"
echo flagfile >>"$tmp/known-cflags"
unknown=$(comm -23 "$tmp/used-cflags" <(sort -u "$tmp/known-cflags"))
if [ -n "$unknown" ]; then echo "FAIL: collector.flags sets flags the collector does not define: $unknown"; exit 1; fi
echo "collector.flags: $(wc -l <"$tmp/used-cflags") flags, all defined in collector/"

step "gen-certs.sh: chain, purposes, names, Secrets, and a real mTLS handshake"
bash "$deploy/scripts/gen-certs.sh" -o "$tmp/certs" -n wattlens >/dev/null
cd "$tmp/certs"
openssl verify -CAfile ca.crt -purpose sslserver wattlens-collector.crt
openssl verify -CAfile ca.crt -purpose sslclient wattlens-agent.crt
if openssl verify -CAfile ca.crt -purpose sslserver wattlens-agent.crt >/dev/null 2>&1; then
  echo "FAIL: the agent certificate must not be usable as a server certificate"; exit 1
fi
openssl x509 -in wattlens-collector.crt -noout -ext subjectAltName | grep -q 'DNS:wattlens-collector.wattlens.svc,' \
  || { echo "FAIL: collector certificate lacks its Service DNS name"; exit 1; }
check validate secrets.yaml
port=$((20000 + RANDOM % 20000))
openssl s_server -quiet -accept "127.0.0.1:$port" -cert wattlens-collector.crt -key wattlens-collector.key \
  -CAfile ca.crt -Verify 1 -verify_return_error -www >/dev/null 2>&1 &
srv=$!
for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
ok=$(printf 'GET / HTTP/1.0\r\n\r\n' | timeout 5 openssl s_client -connect "127.0.0.1:$port" -servername wattlens-collector.wattlens.svc \
  -verify_hostname wattlens-collector.wattlens.svc -CAfile ca.crt -verify_return_error \
  -cert wattlens-agent.crt -key wattlens-agent.key -ign_eof 2>&1 | grep -c 'HTTP/1.0 200' || true)
anon=$(printf 'GET / HTTP/1.0\r\n\r\n' | timeout 5 openssl s_client -connect "127.0.0.1:$port" -CAfile ca.crt -ign_eof 2>&1 \
  | grep -c 'HTTP/1.0 200' || true)
kill "$srv" 2>/dev/null || true
cd "$here"
[ "$ok" -ge 1 ] || { echo "FAIL: agent certificate could not complete mTLS with the collector certificate"; exit 1; }
[ "$anon" = 0 ] || { echo "FAIL: a client without a certificate was served"; exit 1; }
echo "mTLS: agent cert accepted by a server requiring client certs; a client without a cert is refused"

step "Dockerfiles: multi-stage, debian:12-slim runtime, non-root collector"
for f in "$deploy"/docker/*.Dockerfile; do
  [ "$(grep -c '^FROM ' "$f")" -ge 2 ] || { echo "FAIL: $f is not multi-stage"; exit 1; }
  grep '^FROM ' "$f" | tail -1 | grep -q 'debian:12-slim' || { echo "FAIL: $f runtime stage is not debian:12-slim"; exit 1; }
  echo "$(basename "$f"): $(grep -c '^FROM ' "$f") stages, runtime $(grep '^FROM ' "$f" | tail -1 | awk '{print $2}')"
done
grep -q '^USER 65532' "$deploy/docker/collector.Dockerfile" || { echo "FAIL: collector image must run as 65532"; exit 1; }

printf '\nPASS deploy tests\n'
