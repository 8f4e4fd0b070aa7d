// SPDX-License-Identifier: Apache-2.0
// Offline checks of the rendered deploy/ manifests. Called by run.sh; each subcommand prints what it
// checked and exits non-zero on the first class of failure it finds (after listing every instance).
//   node check.mjs validate RENDERED.yaml...        schema + security/RBAC assertions
//   node check.mjs selftest RENDERED.yaml           the assertions reject mutated insecure copies
//   node check.mjs rules RENDERED.yaml OUT.yaml     PrometheusRule spec.groups -> plain rules file
//   node check.mjs dashboard-rules JSON OUT.yaml    every panel/variable expr wrapped as a recording rule
//   node check.mjs runbooks RULES.yaml RUNBOOKS.md  every alert's runbook_url names an existing section
//   node check.mjs coverage RULES.yaml JSON PENDING RENDERED.yaml SCRAPE...   metrics and labels vs recorded scrapes
import fs from "node:fs";
import { parseAllDocuments, stringify } from "yaml";
import { parser } from "@prometheus-io/lezer-promql";

const failures = [];
const fail = (msg) => failures.push(msg);
const finish = (what) => {
  if (failures.length) {
    for (const f of failures) console.error(`FAIL ${f}`);
    console.error(`${what}: ${failures.length} failure(s)`);
    process.exit(1);
  }
};
const loadDocs = (file) =>
  parseAllDocuments(fs.readFileSync(file, "utf8")).map((d) => {
    if (d.errors.length) throw new Error(`${file}: ${d.errors[0].message}`);
    return d.toJS();
  }).filter(Boolean);

// ---------------------------------------------------------------- schema validation
async function modelFor(obj) {
  const [group, version] = obj.apiVersion.includes("/") ? obj.apiVersion.split("/") : ["", obj.apiVersion];
  const candidates = [];
  if (group === "monitoring.coreos.com")
    candidates.push(`@kubernetes-models/prometheus-operator/${group}/${version}/${obj.kind}`);
  else if (group.endsWith("cert-manager.io"))
    candidates.push(`@kubernetes-models/cert-manager/${group}/${version}/${obj.kind}`);
  else candidates.push(`kubernetes-models/${group ? group + "/" : ""}${version}/${obj.kind}`);
  for (const c of candidates) {
    try {
      const mod = await import(c);
      return mod[obj.kind];
    } catch (e) {
      if (e.code !== "ERR_MODULE_NOT_FOUND" && e.code !== "ERR_PACKAGE_PATH_NOT_EXPORTED") throw e;
    }
  }
  return null;
}

const id = (o) => `${o.kind}/${o.metadata?.namespace ? o.metadata.namespace + "/" : ""}${o.metadata?.name}`;
const podSpecOf = (o) => (["DaemonSet", "Deployment", "StatefulSet", "Job"].includes(o.kind) ? o.spec.template.spec : null);

const AGENT_CAPS = new Set(["BPF", "PERFMON"]);
// Opt-in components may add these, each justified in docs/deploy.md.
const AGENT_OPTIONAL_CAPS = new Set(["DAC_READ_SEARCH"]);

function assertAgent(o, file) {
  const s = o.spec.template.spec;
  const where = `${file}: ${id(o)}`;
  if (s.hostPID !== true) fail(`${where}: hostPID must be true`);
  if (s.hostNetwork) fail(`${where}: hostNetwork must stay off`);
  if (s.hostIPC) fail(`${where}: hostIPC must stay off`);
  if (s.priorityClassName !== "system-node-critical") fail(`${where}: priorityClassName must be system-node-critical`);
  if (!(s.tolerations || []).some((t) => t.operator === "Exists" && !t.key && !t.effect))
    fail(`${where}: needs a toleration {operator: Exists} to run on every node`);
  if (s.securityContext?.seccompProfile?.type !== "RuntimeDefault") fail(`${where}: pod seccompProfile must be RuntimeDefault`);
  for (const c of s.containers) {
    const sc = c.securityContext || {};
    const cw = `${where} container ${c.name}`;
    if (sc.privileged !== false) fail(`${cw}: privileged must be explicitly false`);
    if (sc.allowPrivilegeEscalation !== false) fail(`${cw}: allowPrivilegeEscalation must be false`);
    if (sc.readOnlyRootFilesystem !== true) fail(`${cw}: readOnlyRootFilesystem must be true`);
    const drop = sc.capabilities?.drop || [];
    if (!drop.includes("ALL")) fail(`${cw}: capabilities.drop must be [ALL]`);
    const add = sc.capabilities?.add || [];
    for (const need of AGENT_CAPS) if (!add.includes(need)) fail(`${cw}: capability ${need} missing`);
    for (const a of add)
      if (!AGENT_CAPS.has(a) && !AGENT_OPTIONAL_CAPS.has(a)) fail(`${cw}: capability ${a} is not justified (allowed: BPF, PERFMON; opt-in: DAC_READ_SEARCH)`);
    const env = Object.fromEntries((c.env || []).map((e) => [e.name, e]));
    if (env.NODE_NAME?.valueFrom?.fieldRef?.fieldPath !== "spec.nodeName") fail(`${cw}: NODE_NAME must come from the downward API spec.nodeName`);
    assertProbes(c, cw);
    assertResources(c, cw);
    // Restarts lose nothing only where the pinned BPF state and the restart state outlive the pod.
    const hostMount = (path, at) => (c.volumeMounts || []).some((m) => m.mountPath === at &&
      s.volumes.find((v) => v.name === m.name)?.hostPath?.path === path);
    if (!hostMount("/sys/fs/bpf", "/host/sys/fs/bpf")) fail(`${cw}: bpffs (host /sys/fs/bpf) must be mounted at /host/sys/fs/bpf`);
    if (!hostMount("/run/wattlens", "/run/wattlens")) fail(`${cw}: /run/wattlens must be the host's (hostPath), not the pod's`);
  }
}

function assertCollector(o, file) {
  const s = o.spec.template.spec;
  const where = `${file}: ${id(o)}`;
  const psc = s.securityContext || {};
  if (psc.runAsNonRoot !== true) fail(`${where}: pod runAsNonRoot must be true`);
  if (!(psc.runAsUser > 0)) fail(`${where}: pod runAsUser must be a non-zero uid`);
  if (psc.seccompProfile?.type !== "RuntimeDefault") fail(`${where}: pod seccompProfile must be RuntimeDefault`);
  if (s.hostPID || s.hostNetwork || s.hostIPC) fail(`${where}: no host namespaces`);
  for (const c of s.containers) {
    const sc = c.securityContext || {};
    const cw = `${where} container ${c.name}`;
    if (sc.allowPrivilegeEscalation !== false) fail(`${cw}: allowPrivilegeEscalation must be false`);
    if (sc.readOnlyRootFilesystem !== true) fail(`${cw}: readOnlyRootFilesystem must be true`);
    if (sc.privileged) fail(`${cw}: privileged`);
    if (JSON.stringify(sc.capabilities?.drop) !== '["ALL"]') fail(`${cw}: capabilities.drop must be [ALL]`);
    if ((sc.capabilities?.add || []).length) fail(`${cw}: adds capabilities ${sc.capabilities.add}`);
    assertProbes(c, cw);
    assertResources(c, cw);
    const store = (c.volumeMounts || []).find((m) => m.mountPath === "/var/lib/wattlens");
    const vol = store && s.volumes.find((v) => v.name === store.name);
    if (!vol?.persistentVolumeClaim) fail(`${cw}: the store /var/lib/wattlens must be a PersistentVolumeClaim`);
  }
}

// Probes hit the health endpoints on the plaintext metrics port (agent/common/health_http.h):
// /healthz for startup and liveness, /readyz for readiness. Not /metrics (heavy, and 200 even when
// a source is down) and not a TCP check (open port != healthy).
const PROBE_PATHS = { startupProbe: "/healthz", livenessProbe: "/healthz", readinessProbe: "/readyz" };
function assertProbes(c, cw) {
  for (const [p, path] of Object.entries(PROBE_PATHS)) {
    const g = c[p]?.httpGet;
    if (!c[p]) fail(`${cw}: ${p} missing`);
    else if (g?.path !== path || g?.port !== "metrics") fail(`${cw}: ${p} must be httpGet ${path} on port metrics`);
  }
}

function assertResources(c, cw) {
  for (const k of ["requests", "limits"])
    for (const r of ["cpu", "memory"]) if (!c.resources?.[k]?.[r]) fail(`${cw}: resources.${k}.${r} missing`);
}

// The only host paths a pod may write: the agent's own directory of pinned BPF state in bpffs, which
// keeps counting across agent restarts, and the state it leaves for the next agent
// (docs/deploy.md#restarts-and-upgrades). Both the agent's alone; nothing else on the host.
const WRITABLE_HOST_PATHS = new Set(["/sys/fs/bpf", "/run/wattlens"]);

function assertPodCommon(o, file) {
  const s = podSpecOf(o);
  const where = `${file}: ${id(o)}`;
  for (const c of [...(s.initContainers || []), ...s.containers]) {
    if (c.securityContext?.privileged) fail(`${where} container ${c.name}: privileged: true is never allowed`);
    if (!/:[\w.-]+$|@sha256:/.test(c.image) || /:latest$/.test(c.image)) fail(`${where} container ${c.name}: image ${c.image} must be pinned`);
    const vols = Object.fromEntries((s.volumes || []).map((v) => [v.name, v]));
    for (const m of c.volumeMounts || []) {
      const v = vols[m.name];
      if (!v) fail(`${where}: mount ${m.name} has no volume`);
      else if (v.hostPath && m.readOnly !== true && !WRITABLE_HOST_PATHS.has(v.hostPath.path)) fail(`${where} container ${c.name}: host path ${v.hostPath.path} mounted writable at ${m.mountPath}`);
      else if ((v.secret || v.configMap) && m.readOnly !== true) fail(`${where}: ${m.name} should be mounted readOnly`);
      if (v?.hostPath && m.mountPropagation && m.mountPropagation !== "None" && m.mountPropagation !== "HostToContainer")
        fail(`${where}: ${m.name} uses Bidirectional mount propagation`);
    }
  }
  for (const v of s.volumes || [])
    if (v.hostPath && !/^\/sys\//.test(v.hostPath.path) && !WRITABLE_HOST_PATHS.has(v.hostPath.path))
      fail(`${where}: host path ${v.hostPath.path} is outside the /sys allow-list`);
}

const FORBIDDEN_RESOURCES = ["secrets", "nodes/proxy", "pods/exec", "pods/attach", "pods/portforward", "*"];
const READ_VERBS = new Set(["get", "list", "watch"]);
// The one write: the collector asks the API server which node an agent token is bound to.
const isTokenReview = (r) => JSON.stringify(r.apiGroups) === '["authentication.k8s.io"]' && JSON.stringify(r.resources) === '["tokenreviews"]';
function assertRbac(o, file) {
  const where = `${file}: ${id(o)}`;
  for (const r of o.rules || []) {
    for (const res of r.resources || [])
      if (FORBIDDEN_RESOURCES.includes(res)) fail(`${where}: grants ${res}`);
    for (const v of r.verbs || [])
      if (!READ_VERBS.has(v) && !(v === "create" && isTokenReview(r) && JSON.stringify(r.verbs) === '["create"]'))
        fail(`${where}: verb ${v} is not read-only (only tokenreviews create is allowed)`);
    if ((r.apiGroups || []).includes("*")) fail(`${where}: apiGroups *`);
    if (r.nonResourceURLs) fail(`${where}: nonResourceURLs`);
  }
  const want = { "wattlens-agent": ["pods:get,list,watch", "nodes:get"], "wattlens-collector": ["nodes:get,list,watch", "tokenreviews:create"] }[o.metadata.name];
  if (want) {
    const got = (o.rules || []).flatMap((r) => (r.resources || []).map((res) => `${res}:${[...r.verbs].sort()}`));
    if (JSON.stringify(got) !== JSON.stringify(want))
      fail(`${where}: expected exactly ${want.join(" + ")}, got ${got}`);
  }
}

// Node identity (docs/deploy.md#node-identity): the agent streams with a projected token for the
// collector's audience only (never its API-server token), the collector reviews it, and both sides
// agree on the audience, the file and the service account.
const flagsOf = (docs, cm, key) => {
  const text = find(docs, "ConfigMap", cm)?.data?.[key] || "";
  return Object.fromEntries(text.split("\n").map((l) => l.trim()).filter((l) => l.startsWith("--"))
    .map((l) => { const i = l.indexOf("="); return i < 0 ? [l.slice(2), "true"] : [l.slice(2, i), l.slice(i + 1)]; }));
};
function assertNodeIdentity(docs, file) {
  const ds = find(docs, "DaemonSet", "wattlens-agent");
  if (!ds) return;
  const agent = flagsOf(docs, "wattlens-agent-config", "agent.flags");
  const coll = flagsOf(docs, "wattlens-collector-config", "collector.flags");
  const where = `${file}: node identity`;
  if (!agent.collector) { fail(`${where}: the agent does not upload (--collector unset)`); return; }
  if (coll.node_identity !== "token") fail(`${where}: the collector must take the node from the token (--node_identity=token): the agent certificate is shared by every node`);
  const s = ds.spec.template.spec;
  const c = s.containers[0];
  const tokenFile = agent.collector_token_file || "";
  const mount = (c.volumeMounts || []).find((m) => tokenFile.startsWith(m.mountPath + "/"));
  const vol = mount && s.volumes.find((v) => v.name === mount.name);
  const sat = vol?.projected?.sources?.find((x) => x.serviceAccountToken)?.serviceAccountToken;
  if (!sat) { fail(`${where}: --collector_token_file=${tokenFile} is not a projected serviceAccountToken volume`); return; }
  if (tokenFile !== `${mount.mountPath}/${sat.path}`) fail(`${where}: --collector_token_file=${tokenFile} is not the projected path ${mount.mountPath}/${sat.path}`);
  if (!sat.audience || sat.audience !== (coll.token_audience || "wattlens-collector"))
    fail(`${where}: the projected token's audience (${sat.audience || "the API server's"}) must be the collector's --token_audience; the agent must never send its API token`);
  if (!(sat.expirationSeconds <= 3600)) fail(`${where}: projected token lifetime ${sat.expirationSeconds} s > 1 h`);
  if (mount.readOnly !== true) fail(`${where}: token mount must be readOnly`);
  const ns = ds.metadata.namespace || "wattlens";
  const sa = `system:serviceaccount:${ns}:${s.serviceAccountName}`;
  if (!(coll.agent_service_accounts || "").split(",").includes(sa))
    fail(`${where}: --agent_service_accounts=${coll.agent_service_accounts} lacks the agent's ${sa}`);
}

// Power sensors are measured by default (docs/deploy.md#power-sensors): every sysfs path the power
// sources read (agent/power, agent/bpf/power_program.cc) must resolve under --power_sysfs_root
// through a read-only hostPath mount of the same host path mirrored under that root. Symlinked
// class entries point into /sys/devices, so that must be mirrored too.
const POWER_SYSFS_PATHS = ["/sys/class/powercap", "/sys/class/hwmon", "/sys/bus/event_source/devices/power",
  "/sys/devices/system/cpu", "/sys/devices/virtual/powercap"];
function assertPowerMounts(docs, file) {
  const ds = find(docs, "DaemonSet", "wattlens-agent");
  if (!ds) return;
  const where = `${file}: power sensors`;
  const root = flagsOf(docs, "wattlens-agent-config", "agent.flags").power_sysfs_root;
  if (!root || root === "/") { fail(`${where}: --power_sysfs_root is not set to the mirrored host root (got ${root || "unset"})`); return; }
  const s = ds.spec.template.spec;
  const mounts = (s.containers[0].volumeMounts || []).map((m) => ({ m, v: (s.volumes || []).find((v) => v.name === m.name) }))
    .filter(({ v }) => v?.hostPath);
  for (const p of POWER_SYSFS_PATHS) {
    const hit = mounts.find(({ m, v }) => (p === v.hostPath.path || p.startsWith(v.hostPath.path + "/")) && m.mountPath === root.replace(/\/$/, "") + v.hostPath.path);
    if (!hit) fail(`${where}: ${p} is not mounted at ${root}${p} (a hostPath mirrored under --power_sysfs_root)`);
    else if (hit.m.readOnly !== true) fail(`${where}: ${hit.v.hostPath.path} is mounted writable`);
  }
}

async function checkDocs(docs, file, { requireCore = true } = {}) {
  const kinds = new Set(docs.map((d) => d.kind));
  for (const o of docs) {
    const Model = await modelFor(o);
    if (!Model) { fail(`${file}: no schema for ${o.apiVersion} ${o.kind}`); continue; }
    try { new Model(o).validate(); } catch (e) { fail(`${file}: ${id(o)} does not validate: ${e.message}`); }
    if (o.kind === "DaemonSet" && o.metadata.name === "wattlens-agent") assertAgent(o, file);
    if (o.kind === "Deployment" && o.metadata.name === "wattlens-collector") assertCollector(o, file);
    if (podSpecOf(o)) assertPodCommon(o, file);
    if (o.kind === "ClusterRole" || o.kind === "Role") assertRbac(o, file);
    if (o.kind === "ConfigMap" && o.metadata.name === "wattlens-dashboards" && o.metadata.labels?.grafana_dashboard !== "1")
      fail(`${file}: dashboard ConfigMap needs label grafana_dashboard: "1"`);
  }
  assertNodeIdentity(docs, file);
  assertPowerMounts(docs, file);
  // Every rendering must contain the core of the issue.
  if (requireCore)
    for (const k of ["DaemonSet", "Deployment", "Service", "PodDisruptionBudget", "ClusterRole", "ConfigMap", "PersistentVolumeClaim"])
      if (!kinds.has(k)) fail(`${file}: no ${k}`);
}

async function validate(files) {
  let count = 0;
  for (const file of files) {
    const docs = loadDocs(file);
    count += docs.length;
    await checkDocs(docs, file, { requireCore: !file.endsWith("secrets.yaml") });
    console.log(`validated ${docs.length} objects in ${file}`);
  }
  finish("validate");
  console.log(`validate: ${count} objects valid against the Kubernetes, Prometheus Operator and cert-manager schemas; security, mount and RBAC assertions hold`);
}

// Proves the assertions bite: each insecure or invalid variant of a good rendering must be rejected.
const find = (docs, kind, name) => docs.find((d) => d.kind === kind && d.metadata.name === name);
const agentC = (docs) => find(docs, "DaemonSet", "wattlens-agent").spec.template.spec.containers[0];
const collectorT = (docs) => find(docs, "Deployment", "wattlens-collector").spec.template.spec;
const MUTATIONS = {
  "privileged agent": (d) => { agentC(d).securityContext.privileged = true; },
  "agent adds SYS_ADMIN": (d) => { agentC(d).securityContext.capabilities.add.push("SYS_ADMIN"); },
  "agent adds SYS_PTRACE": (d) => { agentC(d).securityContext.capabilities.add.push("SYS_PTRACE"); },
  "agent without PERFMON": (d) => { agentC(d).securityContext.capabilities.add = ["BPF"]; },
  "agent keeps default capabilities": (d) => { delete agentC(d).securityContext.capabilities.drop; },
  "writable host mount": (d) => { agentC(d).volumeMounts.find((m) => m.name === "host-cgroup").readOnly = false; },
  "host path outside /sys": (d) => { find(d, "DaemonSet", "wattlens-agent").spec.template.spec.volumes.find((v) => v.hostPath).hostPath.path = "/etc"; },
  "no hostPID": (d) => { find(d, "DaemonSet", "wattlens-agent").spec.template.spec.hostPID = false; },
  "hostNetwork agent": (d) => { find(d, "DaemonSet", "wattlens-agent").spec.template.spec.hostNetwork = true; },
  "agent misses tainted nodes": (d) => { find(d, "DaemonSet", "wattlens-agent").spec.template.spec.tolerations = []; },
  "agent not node-critical": (d) => { delete find(d, "DaemonSet", "wattlens-agent").spec.template.spec.priorityClassName; },
  "node name not from the downward API": (d) => { agentC(d).env.find((e) => e.name === "NODE_NAME").valueFrom.fieldRef.fieldPath = "metadata.name"; },
  "agent without limits": (d) => { delete agentC(d).resources.limits; },
  "agent without liveness probe": (d) => { delete agentC(d).livenessProbe; },
  "agent readiness on /metrics": (d) => { agentC(d).readinessProbe.httpGet.path = "/metrics"; },
  "collector readiness by TCP": (d) => { collectorT(d).containers[0].readinessProbe = { tcpSocket: { port: "grpc" } }; },
  "writable agent root fs": (d) => { agentC(d).securityContext.readOnlyRootFilesystem = false; },
  "collector as root": (d) => { collectorT(d).securityContext.runAsUser = 0; collectorT(d).securityContext.runAsNonRoot = false; },
  "collector keeps capabilities": (d) => { collectorT(d).containers[0].securityContext.capabilities = { drop: ["NET_RAW"] }; },
  "collector unconfined seccomp": (d) => { collectorT(d).securityContext.seccompProfile.type = "Unconfined"; },
  "collector store on emptyDir": (d) => { collectorT(d).volumes.find((v) => v.name === "store").persistentVolumeClaim = undefined; collectorT(d).volumes.find((v) => v.name === "store").emptyDir = {}; },
  "RBAC on secrets": (d) => { find(d, "ClusterRole", "wattlens-agent").rules[0].resources.push("secrets"); },
  "RBAC nodes/proxy": (d) => { find(d, "ClusterRole", "wattlens-collector").rules[0].resources.push("nodes/proxy"); },
  "RBAC write verb": (d) => { find(d, "ClusterRole", "wattlens-agent").rules[0].verbs.push("patch"); },
  "RBAC create beyond tokenreviews": (d) => { find(d, "ClusterRole", "wattlens-collector").rules[1].resources.push("subjectaccessreviews"); },
  "collector trusts the shared certificate for the node": (d) => { const cm = find(d, "ConfigMap", "wattlens-collector-config"); cm.data["collector.flags"] = cm.data["collector.flags"].replace("--node_identity=token", "--node_identity=certificate"); },
  "agent token for the API server audience": (d) => { const v = find(d, "DaemonSet", "wattlens-agent").spec.template.spec.volumes.find((x) => x.name === "collector-token"); delete v.projected.sources[0].serviceAccountToken.audience; },
  "agent token never expires": (d) => { const v = find(d, "DaemonSet", "wattlens-agent").spec.template.spec.volumes.find((x) => x.name === "collector-token"); v.projected.sources[0].serviceAccountToken.expirationSeconds = 31536000; },
  "agent does not upload": (d) => { const cm = find(d, "ConfigMap", "wattlens-agent-config"); cm.data["agent.flags"] = cm.data["agent.flags"].replace("--collector=", "# --collector="); },
  "power sensors not mounted": (d) => { const s = find(d, "DaemonSet", "wattlens-agent").spec.template.spec; s.containers[0].volumeMounts = s.containers[0].volumeMounts.filter((m) => m.name !== "host-sys-class"); },
  "power sysfs writable": (d) => { agentC(d).volumeMounts.find((m) => m.name === "host-sys-devices").readOnly = false; },
  "power read from the pod's masked sysfs": (d) => { const cm = find(d, "ConfigMap", "wattlens-agent-config"); cm.data["agent.flags"] = cm.data["agent.flags"].replace("--power_sysfs_root=/host", "--power_sysfs_root=/"); },
  "restart state on emptyDir": (d) => { const v = find(d, "DaemonSet", "wattlens-agent").spec.template.spec.volumes.find((x) => x.name === "run"); delete v.hostPath; v.emptyDir = { medium: "Memory" }; },
  "bpffs not mounted": (d) => { const s = find(d, "DaemonSet", "wattlens-agent").spec.template.spec; s.containers[0].volumeMounts = s.containers[0].volumeMounts.filter((m) => m.name !== "bpffs"); },
  "writable host path beyond bpffs and the restart state": (d) => { find(d, "DaemonSet", "wattlens-agent").spec.template.spec.volumes.find((v) => v.name === "bpffs").hostPath.path = "/sys/fs"; },
  "unpinned image": (d) => { agentC(d).image = "wattlens/wattlens-agent:latest"; },
  "no PodDisruptionBudget": (d) => { d.splice(d.findIndex((o) => o.kind === "PodDisruptionBudget"), 1); },
  "schema: port as a name": (d) => { agentC(d).ports[0].containerPort = "metrics"; },
  "schema: bad Certificate usage": (d) => { find(d, "Certificate", "wattlens-agent").spec.usages = ["client-auth"]; },
  "schema: bad ServiceMonitor": (d) => { find(d, "ServiceMonitor", "wattlens-agent").spec.endpoints = "metrics"; },
};
async function selftest(file) {
  let n = 0;
  for (const [name, mutate] of Object.entries(MUTATIONS)) {
    const docs = loadDocs(file);
    mutate(docs);
    failures.length = 0;
    await checkDocs(docs, "mutated");
    if (failures.length === 0) { console.error(`FAIL selftest: "${name}" was accepted`); process.exit(1); }
    console.log(`rejected ${name}: ${failures[0].replace(/^mutated: /, "").slice(0, 110)}`);
    n++;
  }
  failures.length = 0;
  console.log(`selftest: all ${n} insecure or invalid variants rejected`);
}

// ---------------------------------------------------------------- rules and dashboards
function rules(rendered, out) {
  const pr = loadDocs(rendered).filter((d) => d.kind === "PrometheusRule");
  if (pr.length === 0) { fail(`${rendered}: no PrometheusRule`); finish("rules"); }
  fs.writeFileSync(out, stringify({ groups: pr.flatMap((p) => p.spec.groups) }));
  console.log(`rules: ${pr.length} PrometheusRule -> ${out}`);
}

// Grafana variables inside PromQL made concrete so that promtool can parse the expression.
const concrete = (e) =>
  e.replace(/\$__rate_interval|\$__interval|\$__range/g, "5m").replace(/\$\{?(\w+)\}?/g, "x");

function dashboardExprs(jsonFile) {
  const dash = JSON.parse(fs.readFileSync(jsonFile, "utf8"));
  const exprs = [];
  const walk = (panels) => {
    for (const p of panels || []) {
      for (const t of p.targets || []) if (t.expr) exprs.push({ where: `panel "${p.title}" ${t.refId}`, expr: t.expr });
      walk(p.panels);
    }
  };
  walk(dash.panels);
  for (const v of dash.templating?.list || []) {
    if (v.type !== "query") continue;
    const q = typeof v.query === "string" ? v.query : v.query.query;
    const m = /^label_values\((.*),\s*(\w+)\)$/.exec(q);
    exprs.push({ where: `variable ${v.name}`, expr: m ? m[1] : q, label: m ? m[2] : undefined });
  }
  return exprs;
}

function dashboardRules(jsonFile, out) {
  const exprs = dashboardExprs(jsonFile);
  const group = {
    name: "dashboard-exprs",
    rules: exprs.map((e, i) => ({ record: `dashboard:expr_${i}`, expr: concrete(e.expr), labels: { where: e.where } })),
  };
  fs.writeFileSync(out, stringify({ groups: [group] }));
  console.log(`dashboard-rules: ${exprs.length} expressions -> ${out}`);
}

// ---------------------------------------------------------------- metric coverage
// Series Prometheus makes itself for every target; not exported by anything we run.
const PROMETHEUS_SYNTHETIC = new Set(["up", "scrape_duration_seconds", "scrape_samples_scraped", "scrape_samples_post_metric_relabeling", "scrape_series_added"]);
// Labels every scrape by the Prometheus Operator adds to every series of a target. namespace, pod
// and container are left out on purpose: the operator adds them too (the agent's or collector's own
// pod), but a panel that matches `namespace` means the workload's namespace, which only the
// exporter's label carries; matching the target's would silently filter on "wattlens".
const SCRAPE_LABELS = ["job", "instance", "endpoint", "service", "__name__"];

// Which job a recorded scrape stands for: testdata/<component>_scrape.prom is job wattlens-<component>.
const jobOfScrape = (file) => `wattlens-${file.split("/").pop().replace(/_scrape\.prom$/, "")}`;

// Labels each job's series get from the scrape itself: SCRAPE_LABELS plus the relabelings' target
// labels of the ServiceMonitor whose jobLabel names that job (read from the rendered manifests, so
// a relabeling removed there is a label the dashboard can no longer use).
function targetLabelsByJob(renderedFiles) {
  const out = new Map();
  for (const f of renderedFiles)
    for (const sm of loadDocs(f).filter((d) => d.kind === "ServiceMonitor")) {
      const job = sm.spec.selector?.matchLabels?.[sm.spec.jobLabel] || sm.metadata.name;
      const labels = new Set(SCRAPE_LABELS);
      for (const e of sm.spec.endpoints || [])
        for (const r of e.relabelings || []) if (r.targetLabel && (r.action || "replace") === "replace") labels.add(r.targetLabel);
      out.set(job, labels);
    }
  return out;
}

// The job a selector pins with job="..." (null: every job exporting the name).
const jobMatcher = (text) => /\bjob\s*=\s*"([^"]*)"/.exec(text)?.[1] ?? null;

function selectors(expr) {
  const out = [];
  const tree = parser.parse(expr);
  tree.iterate({
    enter(n) {
      if (n.type.isError) out.push({ error: `parse error at ${n.from}` });
      if (n.type.name === "AggregateExpr") {
        // `by (l, ...)`: each label must exist on the series aggregated, or the grouping silently
        // collapses to one empty group. Labels made by label_replace/label_join are exempt.
        const mod = n.node.getChild("AggregateModifier");
        if (!mod || !mod.getChild("By")) return;
        const grouping = [];
        const g = mod.getChild("GroupingLabels");
        for (let c = g?.firstChild; c; c = c.nextSibling)
          if (c.type.name === "LabelName") grouping.push(expr.slice(c.from, c.to));
        const inner = [];
        let relabels = false;
        n.node.cursor().iterate((m) => {
          if (m.type.name === "VectorSelector") {
            const id = m.node.getChild("Identifier");
            if (id) inner.push({ name: expr.slice(id.from, id.to), job: jobMatcher(expr.slice(m.from, m.to)) });
          }
          if (m.type.name === "FunctionIdentifier" && /^label_(replace|join)$/.test(expr.slice(m.from, m.to))) relabels = true;
        });
        if (!relabels) out.push({ grouping, inner });
        return;
      }
      if (n.type.name !== "VectorSelector") return;
      let name = null;
      const labels = [];
      const c = n.node.cursor();
      c.iterate((m) => {
        if (m.type.name === "Identifier" && name === null) name = expr.slice(m.from, m.to);
        if (m.type.name === "LabelName") labels.push(expr.slice(m.from, m.to));
      });
      out.push({ name, labels, job: jobMatcher(expr.slice(n.from, n.to)) });
    },
  });
  return out;
}

function readScrape(file) {
  const names = new Map(); // metric -> Set(label names)
  for (const line of fs.readFileSync(file, "utf8").split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][\w:]*)(\{([^}]*)\})?\s/.exec(line);
    if (!m) continue;
    const labels = names.get(m[1]) || new Set();
    for (const kv of (m[3] || "").matchAll(/(\w+)="/g)) labels.add(kv[1]);
    names.set(m[1], labels);
  }
  return names;
}

// coverage RULES.yaml DASHBOARD.json PENDING RENDERED.yaml SCRAPE...
// Every metric a rule or panel uses is in a recorded scrape (or pending), and every label a selector
// matches or an aggregation groups by is carried by the series it selects: for each job the selector
// can select (the one its job="..." names, else every job whose scrape has the metric), the
// exporter's labels in that job's recorded scrape plus the labels that job's scrape adds.
function coverage(rulesFile, jsonFile, pendingFile, rendered, scrapes) {
  const used = new Map(); // metric -> [where]
  const note = (name, where) => used.set(name, [...(used.get(name) || []), where]);
  const labelUse = [];
  const groupings = [];
  const exprs = [];
  for (const g of loadDocs(rulesFile)[0].groups)
    for (const r of g.rules) exprs.push({ where: `rule ${r.alert || r.record}`, expr: r.expr });
  const dash = dashboardExprs(jsonFile).map((e) => ({ ...e, expr: concrete(e.expr) }));
  exprs.push(...dash);
  const recorded = new Set(); // names made by recording rules
  for (const g of loadDocs(rulesFile)[0].groups) for (const r of g.rules) if (r.record) recorded.add(r.record);
  for (const { where, expr, label } of exprs) {
    for (const s of selectors(expr)) {
      if (s.error) { fail(`${where}: lezer-promql ${s.error} in ${expr}`); continue; }
      if (s.grouping) { groupings.push({ ...s, where }); continue; }
      if (!s.name) { fail(`${where}: selector without a metric name in ${expr}`); continue; }
      // Made by a rule of ours, or a budget series the user records (docs/runbooks.md#budgets):
      // the name of one of our ":default" rules without the suffix.
      if (recorded.has(s.name)) continue;
      if (s.name.includes(":")) {
        if (!recorded.has(`${s.name}:default`)) fail(`${where}: ${s.name} is made by no rule here (a typo?)`);
        continue;
      }
      note(s.name, where);
      labelUse.push({ ...s, where });
    }
    // label_values(metric, label): the variable's label must be on the metric too.
    if (label) {
      const [s] = selectors(expr).filter((x) => x.name);
      if (s) labelUse.push({ ...s, labels: [...s.labels, label], where });
    }
  }
  const byJob = new Map(); // job -> metric -> Set(labels)
  for (const f of scrapes) {
    const job = jobOfScrape(f);
    const m = byJob.get(job) || new Map();
    for (const [n, l] of readScrape(f)) m.set(n, new Set([...(m.get(n) || []), ...l]));
    byJob.set(job, m);
  }
  const targets = targetLabelsByJob([rendered]);
  const scrapeLabels = (job) => targets.get(job) || new Set(SCRAPE_LABELS);
  const inScrape = (name) => [...byJob.values()].some((m) => m.has(name));
  // [job, labels] for every job whose recorded series the selector can select.
  const selected = (name, job) =>
    [...byJob].filter(([j, m]) => m.has(name) && (job === null || j === job)).map(([j, m]) => [j, new Set([...m.get(name), ...scrapeLabels(j)])]);

  const pending = new Set(
    fs.readFileSync(pendingFile, "utf8").split("\n").map((l) => l.replace(/#.*/, "").trim()).filter(Boolean));
  const stillPending = [];
  for (const [name, wheres] of [...used].sort()) {
    if (PROMETHEUS_SYNTHETIC.has(name)) continue;
    const have = inScrape(name);
    if (have && pending.has(name))
      fail(`${name} is now in a recorded scrape: remove it from ${pendingFile}`);
    else if (!have && !pending.has(name))
      fail(`${name} (used by ${wheres[0]}${wheres.length > 1 ? ` and ${wheres.length - 1} more` : ""}) is in no recorded scrape and not listed as pending`);
    else if (!have) stillPending.push(`${name} (${wheres.length} uses)`);
  }
  for (const p of pending) if (!used.has(p)) fail(`${pendingFile}: ${p} is used by no panel or rule; remove it`);
  let checked = 0;
  for (const u of labelUse) {
    if (PROMETHEUS_SYNTHETIC.has(u.name)) continue;
    const sel = selected(u.name, u.job);
    if (!sel.length) {
      if (inScrape(u.name)) fail(`${u.where}: ${u.name}{job="${u.job}"}: no recorded scrape of job ${u.job} has ${u.name}`);
      continue;
    }
    for (const [job, have] of sel)
      for (const l of u.labels) {
        checked++;
        if (!have.has(l)) fail(`${u.where}: ${u.name} as scraped from job ${job} has no label "${l}" (recorded: ${[...have].filter((x) => !SCRAPE_LABELS.includes(x)).join(", ")})`);
      }
  }
  for (const g of groupings) {
    const sel = g.inner.flatMap((i) => selected(i.name, i.job));
    if (!sel.length) continue;
    const have = new Set(sel.flatMap(([, l]) => [...l]));
    for (const l of g.grouping) {
      checked++;
      if (!have.has(l)) fail(`${g.where}: by (${l}) but ${g.inner.map((i) => i.name).join(", ")} carry no label "${l}" in the recorded scrapes`);
    }
  }
  finish("coverage");
  const covered = [...used.keys()].filter((n) => inScrape(n));
  console.log(`coverage: ${exprs.length} expressions use ${used.size} metrics: ${covered.length} found in recorded scrapes (${scrapes.map((s) => `${s.split("/").pop()} as job ${jobOfScrape(s)}`).join(", ")}), ` +
    `${[...used.keys()].filter((n) => PROMETHEUS_SYNTHETIC.has(n)).length} made by Prometheus, ${stillPending.length} PENDING (not yet exported by anything that runs); ` +
    `${checked} label uses checked against the series each selector selects (scrape-added labels: ${[...targets].map(([j, l]) => `${j}: ${[...l].filter((x) => x !== "__name__").join(",")}`).join("; ")})`);
  for (const p of stillPending) console.log(`  pending: ${p}`);
}

// ---------------------------------------------------------------- runbooks
// GitHub's heading anchors: lower case, punctuation other than - and _ dropped, spaces to -.
const slug = (h) => h.trim().toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, "").replace(/\s/g, "-");
function runbooks(rulesFile, mdFile) {
  const anchors = new Set();
  for (const l of fs.readFileSync(mdFile, "utf8").split("\n")) {
    const m = /^#{1,6}\s+(.*)$/.exec(l);
    if (m) anchors.add(slug(m[1]));
  }
  const page = mdFile.split("/").slice(-2).join("/");
  let n = 0;
  for (const g of loadDocs(rulesFile)[0].groups)
    for (const r of g.rules) {
      if (!r.alert) continue;
      n++;
      const url = r.annotations?.runbook_url || "";
      const m = /\/(docs\/runbooks\.md)#([\w-]+)$/.exec(url);
      if (!m) { fail(`alert ${r.alert}: runbook_url "${url}" does not point into ${page}`); continue; }
      if (m[2] !== r.alert.toLowerCase()) fail(`alert ${r.alert}: runbook anchor #${m[2]} is not the alert's name`);
      if (!anchors.has(m[2])) fail(`alert ${r.alert}: ${page} has no section #${m[2]}`);
    }
  finish("runbooks");
  console.log(`runbooks: all ${n} alerts link an existing section of ${page}`);
}

const [cmd, ...args] = process.argv.slice(2);
if (cmd === "validate") await validate(args);
else if (cmd === "selftest") await selftest(args[0]);
else if (cmd === "rules") rules(args[0], args[1]);
else if (cmd === "dashboard-rules") dashboardRules(args[0], args[1]);
else if (cmd === "runbooks") runbooks(args[0], args[1]);
else if (cmd === "coverage") coverage(args[0], args[1], args[2], args[3], args.slice(4));
else { console.error("usage: see the header of check.mjs"); process.exit(2); }
