#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""`podman run` arguments for one workload of a rendered manifest, as the kubelet would run it.

Reads `kubectl kustomize` output on stdin, finds the DaemonSet or Deployment named NAME and turns
its pod template into podman flags, then the image and the container's args, one per line as
`flag|image|arg<TAB>value`. What a kubelet would supply from the cluster comes from the command line:

  --secret NAME=DIR        directory holding the Secret's files (tls.crt, tls.key, ca.crt)
  --token DIR              directory for projected serviceAccountToken volumes (holds `token`)
  --claim NAME=DIR         directory standing in for a PersistentVolumeClaim
  --field spec.nodeName=V  value of a downward-API fieldRef
  --config-dir DIR         where ConfigMap keys are written (one file per key)
  --seccomp-out FILE       RuntimeDefault: podman's default profile (--seccomp-default), amended
                           with bpf(2) for CAP_BPF and perf_event_open(2) for CAP_PERFMON when it
                           allows them only with CAP_SYS_ADMIN (Debian 12's containers-common),
                           as the newer defaults of moby and containerd do

Mapped: capabilities (drop/add), readOnlyRootFilesystem (without the tmpfs podman would add on
/run, /tmp: Kubernetes adds none), allowPrivilegeEscalation=false (no-new-privileges),
runAsUser/runAsGroup, fsGroup (supplementary group, and the claim's group), seccompProfile
RuntimeDefault (podman's default profile), privileged, hostPID/hostIPC/hostNetwork, hostPath
volumes (readOnly kept; the agent's writable /sys/fs/bpf and /run/wattlens become private
tmpfs stand-ins), ConfigMap (subPath), Secret and projected-token volumes (modes kept),
emptyDir (a tmpfs for medium Memory),
env (values and fieldRefs), resources.limits (cpu, memory), containerPorts (published on
127.0.0.1, random host port). Anything else in the pod spec that changes how the container runs
is an error, so a manifest change cannot silently drift from what this test runs.

A summary of what was derived goes to stderr.

usage: podman_args.py --kind DaemonSet --name wattlens-agent [options] < rendered.yaml
"""
import argparse
import json
import os
import sys

import yaml

# Host paths the agent writes (deploy/base/agent/daemonset.yaml): pinned BPF
# state in bpffs and the state left for the next agent.
WRITABLE_STANDINS = {"/sys/fs/bpf", "/run/wattlens"}

# Pod and container fields that do not change how the container runs on one node.
POD_IGNORED = {"containers", "volumes", "securityContext", "hostPID", "hostIPC", "hostNetwork",
               "serviceAccountName", "automountServiceAccountToken", "nodeSelector",
               "priorityClassName", "tolerations", "terminationGracePeriodSeconds",
               "enableServiceLinks", "affinity"}
CONTAINER_IGNORED = {"name", "image", "imagePullPolicy", "args", "env", "ports", "resources",
                     "securityContext", "volumeMounts", "livenessProbe", "readinessProbe",
                     "startupProbe"}


def die(msg):
    sys.exit(f"podman_args: {msg}")


def cpu_limit(q):
    q = str(q)
    return str(int(q[:-1]) / 1000) if q.endswith("m") else q


def memory_limit(q):
    q = str(q)
    units = {"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "k": 1000, "M": 10**6, "G": 10**9}
    for u, m in units.items():
        if q.endswith(u):
            return str(int(float(q[: -len(u)]) * m))
    return q


# What runtimes whose default profile knows CAP_BPF and CAP_PERFMON allow (moby >= 23,
# containerd >= 1.7): the system call with the capability, not only with CAP_SYS_ADMIN.
CAP_RULES = {"bpf": "CAP_BPF", "perf_event_open": "CAP_PERFMON"}


def amend_runtime_default(path, out, added):
    """Writes `path` amended with CAP_RULES to `out` when it lacks them and the container adds
    those capabilities. Returns whether it did."""
    with open(path) as f:
        prof = json.load(f)
    want = {n: c for n, c in CAP_RULES.items() if c[len("CAP_"):] in added}
    have = {n for r in prof["syscalls"] for n in r["names"]
            if n in want and r["action"] == "SCMP_ACT_ALLOW"
            and want[n] in r.get("includes", {}).get("caps", [])}
    missing = {n: c for n, c in want.items() if n not in have}
    if not missing:
        return False
    for r in prof["syscalls"]:
        # The refusal for holders of neither capability stays with the allow rules' complement.
        if r["action"] != "SCMP_ACT_ALLOW" and "CAP_SYS_ADMIN" in r.get("excludes", {}).get("caps", []):
            r["names"] = [n for n in r["names"] if n not in missing]
    for n, c in missing.items():
        prof["syscalls"].append({"names": [n], "action": "SCMP_ACT_ALLOW", "includes": {"caps": [c]}})
    prof["syscalls"] = [r for r in prof["syscalls"] if r["names"]]
    with open(out, "w") as f:
        json.dump(prof, f)
    return True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kind", required=True)
    ap.add_argument("--name", required=True)
    ap.add_argument("--secret", action="append", default=[])
    ap.add_argument("--token")
    ap.add_argument("--claim", action="append", default=[])
    ap.add_argument("--field", action="append", default=[])
    ap.add_argument("--config-dir", required=True)
    ap.add_argument("--seccomp-default", default="/usr/share/containers/seccomp.json")
    ap.add_argument("--seccomp-out", help="write an amended RuntimeDefault profile here")
    a = ap.parse_args()
    secrets = dict(s.split("=", 1) for s in a.secret)
    claims = dict(s.split("=", 1) for s in a.claim)
    fields = dict(s.split("=", 1) for s in a.field)

    docs = [d for d in yaml.safe_load_all(sys.stdin) if d]
    work = [d for d in docs if d["kind"] == a.kind and d["metadata"]["name"] == a.name]
    if len(work) != 1:
        die(f"{a.kind}/{a.name}: found {len(work)} in the rendered manifest")
    pod = work[0]["spec"]["template"]["spec"]
    if len(pod["containers"]) != 1 or pod.get("initContainers"):
        die("expected one container and no init containers")
    c = pod["containers"][0]
    for k in pod:
        if k not in POD_IGNORED:
            die(f"pod spec field {k} is not mapped to podman")
    for k in c:
        if k not in CONTAINER_IGNORED:
            die(f"container field {k} is not mapped to podman")
    configmaps = {d["metadata"]["name"]: d.get("data", {}) for d in docs if d["kind"] == "ConfigMap"}

    args, said = [], []
    psc, csc = pod.get("securityContext", {}), c.get("securityContext", {})
    if csc.get("privileged") or psc.get("privileged"):
        die("privileged containers are not run by this test")
    caps = csc.get("capabilities", {})
    for cap in caps.get("drop", []):
        args.append(f"--cap-drop={cap}")
    for cap in caps.get("add", []):
        args.append(f"--cap-add={cap}")
    said.append(f"capabilities drop={caps.get('drop', [])} add={caps.get('add', [])}")
    if csc.get("readOnlyRootFilesystem"):
        args += ["--read-only", "--read-only-tmpfs=false"]
        said.append("read-only root file system")
    if csc.get("allowPrivilegeEscalation") is False:
        args.append("--security-opt=no-new-privileges")
        said.append("no privilege escalation")
    seccomp = (csc.get("seccompProfile") or psc.get("seccompProfile") or {}).get("type")
    if seccomp not in (None, "RuntimeDefault"):
        die(f"seccompProfile {seccomp} is not mapped")
    if seccomp and a.seccomp_out:
        if amend_runtime_default(a.seccomp_default, a.seccomp_out, caps.get("add", [])):
            args.append(f"--security-opt=seccomp={a.seccomp_out}")
            said.append(f"seccomp RuntimeDefault = {a.seccomp_default} plus bpf(2)/"
                        "perf_event_open(2) for CAP_BPF/CAP_PERFMON (it allows them only with "
                        "CAP_SYS_ADMIN; docs/deploy.md#seccomp)")
        else:
            said.append(f"seccomp RuntimeDefault ({a.seccomp_default})")
    else:
        said.append(f"seccomp {seccomp or 'unset'} (podman's default profile)")
    uid = csc.get("runAsUser", psc.get("runAsUser"))
    gid = csc.get("runAsGroup", psc.get("runAsGroup"))
    if uid is not None:
        args.append(f"--user={uid}:{gid if gid is not None else uid}")
        said.append(f"user {uid}:{gid}")
    fs_group = psc.get("fsGroup")
    if fs_group is not None:
        args.append(f"--group-add={fs_group}")
    for key, flag in (("hostPID", "--pid=host"), ("hostIPC", "--ipc=host"),
                      ("hostNetwork", "--network=host")):
        if pod.get(key):
            args.append(flag)
            said.append(key)
    limits = c.get("resources", {}).get("limits", {})
    if "cpu" in limits:
        args.append(f"--cpus={cpu_limit(limits['cpu'])}")
    if "memory" in limits:
        args.append(f"--memory={memory_limit(limits['memory'])}")
    said.append(f"limits {limits}")
    for env in c.get("env", []):
        if "value" in env:
            args.append(f"--env={env['name']}={env['value']}")
        else:
            path = env["valueFrom"]["fieldRef"]["fieldPath"]
            if path not in fields:
                die(f"env {env['name']}: no --field {path}=...")
            args.append(f"--env={env['name']}={fields[path]}")
    for p in c.get("ports", []):
        args.append(f"--publish=127.0.0.1::{p['containerPort']}/{p.get('protocol', 'TCP').lower()}")

    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    for m in c.get("volumeMounts", []):
        v = volumes[m["name"]]
        ro = ":ro" if m.get("readOnly") else ""
        dst = m["mountPath"]
        if "hostPath" in v and not ro and v["hostPath"]["path"] in WRITABLE_STANDINS:
            # The agent's own writable host paths get a private tmpfs: the test
            # leaves nothing on the host, and a tmpfs in place of bpffs runs
            # the agent unpinned (its fail-soft path).
            src = v["hostPath"]["path"]
            args.append(f"--tmpfs={dst}:rw,mode=0755")
            said.append(f"host {src} -> {dst} (private tmpfs stand-in)")
        elif "hostPath" in v:
            src = v["hostPath"]["path"]
            if not ro:
                die(f"hostPath {src} mounted read-write")
            # rbind, as the kubelet mounts host paths (submounts included)
            args.append(f"--volume={src}:{dst}:ro,rbind")
            said.append(f"host {src} -> {dst} (read-only)")
        elif "configMap" in v:
            data = configmaps[v["configMap"]["name"]]
            os.makedirs(a.config_dir, exist_ok=True)
            for k, text in data.items():
                with open(os.path.join(a.config_dir, k), "w") as f:
                    f.write(text)
            if "subPath" in m:
                src = os.path.join(a.config_dir, m["subPath"])
            else:
                src = a.config_dir
            args.append(f"--volume={src}:{dst}{ro}")
            said.append(f"configMap {v['configMap']['name']} -> {dst}")
        elif "secret" in v:
            name = v["secret"]["secretName"]
            if name not in secrets:
                die(f"secret {name}: no --secret {name}=DIR")
            mode = v["secret"].get("defaultMode", 0o644)
            for f in os.listdir(secrets[name]):
                os.chmod(os.path.join(secrets[name], f), mode)
                if fs_group is not None:
                    os.chown(os.path.join(secrets[name], f), 0, fs_group)
            args.append(f"--volume={secrets[name]}:{dst}{ro}")
            said.append(f"secret {name} -> {dst} (mode {mode:o})")
        elif "projected" in v:
            if not a.token:
                die("projected volume: no --token DIR")
            mode = v["projected"].get("defaultMode", 0o644)
            for f in os.listdir(a.token):
                os.chmod(os.path.join(a.token, f), mode)
            args.append(f"--volume={a.token}:{dst}{ro}")
            said.append(f"projected token -> {dst}")
        elif "persistentVolumeClaim" in v:
            name = v["persistentVolumeClaim"]["claimName"]
            if name not in claims:
                die(f"claim {name}: no --claim {name}=DIR")
            if fs_group is not None:
                os.chown(claims[name], 0, fs_group)
                os.chmod(claims[name], 0o2775)
            args.append(f"--volume={claims[name]}:{dst}{ro}")
            said.append(f"claim {name} -> {dst}")
        elif "emptyDir" in v:
            # A fresh, private directory per pod, like the kubelet's: a tmpfs
            # (medium Memory) or an anonymous volume, with its size limit.
            e = v["emptyDir"] or {}
            if e.get("medium") == "Memory":
                opts = "rw,mode=0755"
                if "sizeLimit" in e:
                    opts += f",size={e['sizeLimit'].replace('Mi', 'm').replace('Gi', 'g')}"
                args.append(f"--tmpfs={dst}:{opts}")
            else:
                args.append(f"--volume={dst}")
            said.append(f"emptyDir -> {dst}")
        else:
            die(f"volume {m['name']}: kind not mapped")
    print(f"{a.kind}/{a.name}: " + "; ".join(said), file=sys.stderr)
    for x in args:
        print(f"flag\t{x}")
    print(f"image\t{c['image']}")
    for x in c.get("args", []):
        print(f"arg\t{x}")


if __name__ == "__main__":
    main()
