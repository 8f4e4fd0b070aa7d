#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""What can be checked of deploy/docker/*.Dockerfile without a container engine.

For each image (agent, collector), against a build of the repository on this Debian 12 machine:
  1. every COPY source of the build context exists in the repository (also /src/... copied out of
     the build stage, whose WORKDIR /src holds the whole context);
  2. the source build stage's `cmake --build --target T` names a real target whose binary is bin/T,
     the prebuilt stage (BINARIES=prebuilt, the tree's own output) puts bin/T at the same
     /build/bin/T, and the runtime stage copies it from the stage `build` that picks one of them;
  3. build stage: every system header the build compiled against and every system library the
     binary links comes from a package that scripts/install-deps.sh installs (dependency closure);
  4. runtime stage: every shared library `ldd` resolves for the built binary, and every library the
     source dlopen()s by a fixed name, comes from a package the runtime stage installs (closure) or
     from the debian:12-slim base (approximated, see below).

Not verified here (tests/container/build_images.sh builds the images with podman and runs `ldd`
inside them): that apt in the image resolves the same versions, and the base image's exact package
set. debian:12-slim is approximated by this machine's Essential/required packages plus apt, with
their dependency closure.

usage: check_images.py --root REPO --build BUILD_DIR
"""
import argparse
import glob
import os
import re
import shlex
import subprocess
import sys

failures = []


def fail(msg):
    failures.append(msg)
    print(f"FAIL {msg}")


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw).stdout


# ------------------------------------------------------------------ dpkg database
class Dpkg:
    def __init__(self):
        self.depends = {}  # package -> list of alternatives lists
        self.provides = {}  # virtual -> [package]
        self.base = set()
        fmt = "${Package}\t${Status}\t${Essential}\t${Priority}\t${Depends}\t${Pre-Depends}\t${Provides}\n"
        for line in run(["dpkg-query", "-W", "-f", fmt]).splitlines():
            pkg, status, essential, prio, dep, predep, prov = (line.split("\t") + [""] * 7)[:7]
            if "installed" not in status.split():
                continue
            self.depends[pkg] = [self._alts(a) for a in (dep + "," + predep).split(",") if a.strip()]
            for p in prov.split(","):
                name = p.strip().split(" ")[0]
                if name:
                    self.provides.setdefault(name, []).append(pkg)
            if essential == "yes" or prio == "required":
                self.base.add(pkg)
        self.base.add("apt")
        self.base = self.closure(self.base)

    @staticmethod
    def _alts(spec):
        return [a.strip().split(" ")[0].split(":")[0] for a in spec.split("|") if a.strip()]

    def _resolve(self, name):
        if name in self.depends:
            return name
        for p in self.provides.get(name, []):
            if p in self.depends:
                return p
        return None

    def closure(self, pkgs):
        seen, todo = set(), list(pkgs)
        while todo:
            p = self._resolve(todo.pop())
            if p is None or p in seen:
                continue
            seen.add(p)
            for alts in self.depends.get(p, []):
                got = [self._resolve(a) for a in alts]
                got = [g for g in got if g]
                if got:
                    todo.append(got[0])
        return seen

    def _load_files(self):
        # One pass over dpkg's file lists (dpkg-query -S per path took minutes for ~950 headers).
        self._files = {}
        for lst in glob.glob("/var/lib/dpkg/info/*.list"):
            pkg = os.path.basename(lst)[:-5].split(":")[0]
            with open(lst, errors="replace") as f:
                for line in f:
                    self._files.setdefault(line.rstrip("\n"), pkg)

    def owner(self, path):
        """Package owning `path` (symlinks in /lib and /usr/lib resolved as dpkg sees them)."""
        if not hasattr(self, "_files"):
            self._load_files()
        candidates = [path, os.path.realpath(path), os.path.normpath(path)]
        for c in list(candidates):
            if c.startswith("/lib"):
                candidates.append("/usr" + c)
            if c.startswith("/usr/lib"):
                candidates.append(c[4:])
        for c in candidates:
            if c in self._files:
                return self._files[c]
        return None


# ------------------------------------------------------------------ Dockerfile parsing
def parse_dockerfile(path):
    """-> list of stages: {from, name, copies: [(from_stage, srcs, dst)], runs: [str]}"""
    text = open(path).read().replace("\\\n", " ")
    stages = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        word = word.upper()
        if word == "FROM":
            parts = rest.split()
            stages.append({"from": parts[0], "name": parts[2] if len(parts) > 2 and parts[1].upper() == "AS" else None,
                           "copies": [], "runs": []})
        elif word == "COPY":
            args = shlex.split(rest)
            src_stage = None
            while args and args[0].startswith("--"):
                opt = args.pop(0)
                if opt.startswith("--from="):
                    src_stage = opt.split("=", 1)[1]
            stages[-1]["copies"].append((src_stage, args[:-1], args[-1]))
        elif word == "RUN":
            stages[-1]["runs"].append(rest)
    return stages


def apt_packages(run_cmd):
    m = re.search(r"apt-get install ([^&;]*)", run_cmd)
    if not m:
        return []
    return [w for w in m.group(1).split() if not w.startswith("-")]


def install_deps_packages(root):
    """The packages scripts/install-deps.sh installs (the conditional ones included)."""
    text = open(os.path.join(root, "scripts/install-deps.sh")).read()
    m = re.search(r"packages=\((.*?)\n\)", text, re.S)
    pkgs = []
    for line in m.group(1).splitlines():
        pkgs += line.split("#")[0].split()
    for extra in re.findall(r"packages\+=\(([^)]*)\)", text):
        pkgs += extra.split()
    return pkgs


# ------------------------------------------------------------------ checks
def system_headers(build):
    """Every header under /usr the build's objects were compiled against (ninja's depfile log)."""
    out = run(["ninja", "-C", build, "-t", "deps"])
    return sorted({l.strip() for l in out.splitlines() if l.startswith("    /usr/")})


def link_libraries(build, target):
    cmd = run(["ninja", "-C", build, "-t", "commands", f"bin/{target}"]).splitlines()[-1]
    libs = set()
    for tok in shlex.split(cmd):
        if tok.startswith("/usr/") and re.search(r"\.(so(\.\d+)*|a)$", tok):
            libs.add(tok)
        elif tok.startswith("-l"):
            for ext in ("so", "a"):
                p = run(["gcc", f"-print-file-name=lib{tok[2:]}.{ext}"]).strip()
                if p.startswith("/"):
                    libs.add(os.path.normpath(p))
                    break
    return sorted(libs)


def ldd(binary):
    libs = []
    for line in run(["ldd", binary]).splitlines():
        m = re.match(r"\s*(\S+) => (\S+)", line)
        if m:
            if m.group(2) == "not":
                fail(f"{binary}: {m.group(1)} not found by ldd")
            else:
                libs.append(m.group(2))
        elif "ld-linux" in line:
            libs.append(line.split()[0])
    return libs


def dlopened(root):
    """Fixed library names passed to dlopen() in the sources."""
    names = set()
    for f in glob.glob(os.path.join(root, "**/*.cc"), recursive=True):
        if "/tests/" in f or "/build" in f:
            continue
        for m in re.finditer(r'dlopen\("([^"]+)"', open(f, errors="replace").read()):
            names.add(m.group(1))
    return sorted(names)


def find_lib(name):
    out = run(["ldconfig", "-p"])
    for line in out.splitlines():
        if line.strip().startswith(name + " "):
            return line.split("=>")[-1].strip()
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", required=True)
    ap.add_argument("--build", required=True)
    a = ap.parse_args()
    dpkg = Dpkg()
    print(f"debian:12-slim approximated by {len(dpkg.base)} packages (Essential/required + apt, closure)")

    build_pkgs = install_deps_packages(a.root)
    build_closure = dpkg.closure(build_pkgs + ["build-essential"])
    headers = system_headers(a.build)
    missing = {}
    for h in headers:
        p = dpkg.owner(h)
        if p is None:
            fail(f"build: header {h} belongs to no package")
        elif p not in build_closure:
            missing.setdefault(p, h)
    for p, h in sorted(missing.items()):
        fail(f"build stage: {h} comes from {p}, which scripts/install-deps.sh does not install")
    print(f"build stage: {len(headers)} system headers from "
          f"{len({dpkg.owner(h) for h in headers})} packages, all installed by scripts/install-deps.sh"
          if not missing else "build stage: packages missing from scripts/install-deps.sh")

    reflection = dlopened(a.root)
    for image in ("agent", "collector"):
        df = os.path.join(a.root, f"deploy/docker/{image}.Dockerfile")
        target = f"wattlens-{image}"
        stages = parse_dockerfile(df)
        if len(stages) < 2:
            fail(f"{df}: not multi-stage")
            continue
        builders = [st for st in stages if any("cmake --build" in r for r in st["runs"])]
        build_stage, runtime = (builders or stages)[0], stages[-1]
        prebuilt = next((st for st in stages if st["name"] == "build-prebuilt"), None)
        picker = next((st for st in stages if st["name"] == "build"), None)
        from_build = {build_stage["name"], "build"}
        if prebuilt is None or picker is None or picker["from"] != "build-${BINARIES}":
            fail(f"{image}: needs stages build-prebuilt and `FROM build-${{BINARIES}} AS build`")
        # 1. COPY sources from the context, and files the runtime stage copies out of the build
        # stage's copy of the context (its WORKDIR /src holds `COPY . .`). The prebuilt stage's
        # context is the staged build output, not the repository.
        for st in stages:
            if st is prebuilt:
                continue
            for src_stage, srcs, dst in st["copies"]:
                for s in srcs:
                    if src_stage is None:
                        rel = s
                    elif src_stage in from_build and s.startswith("/src/"):
                        rel = s[len("/src/"):]
                    else:
                        continue
                    if not glob.glob(os.path.join(a.root, rel)):
                        fail(f"{image}: COPY {s} does not exist in the repository")
        if prebuilt is not None:
            staged = {(tuple(srcs), dst) for _, srcs, dst in prebuilt["copies"]}
            if ((f"bin/{target}",), f"/build/bin/{target}") not in staged:
                fail(f"{image}: build-prebuilt does not copy bin/{target} to /build/bin/{target}")
            for src_stage, srcs, dst in runtime["copies"]:
                for s in srcs:
                    if src_stage in from_build and s.startswith("/src/") and \
                            not any(d == s for _, d in staged):
                        fail(f"{image}: runtime copies {s}, which build-prebuilt does not provide")
        # 2. target and binary path
        runs = " ".join(build_stage["runs"])
        m = re.search(r"--target (\S+)", runs)
        if not m or m.group(1) != target:
            fail(f"{image}: build stage does not build --target {target}")
        binary = os.path.join(a.build, "bin", target)
        if not os.path.exists(binary):
            fail(f"{image}: {binary} not built")
            continue
        copied = [srcs for src_stage, srcs, dst in runtime["copies"] if src_stage in from_build]
        if [f"/build/bin/{target}"] not in copied:
            fail(f"{image}: runtime stage does not copy /build/bin/{target} from the build stage")
        # 3. link-time libraries in the build stage
        for lib in link_libraries(a.build, target):
            p = dpkg.owner(lib)
            if p and p not in build_closure:
                fail(f"{image} build stage: links {lib} from {p}, not installed by scripts/install-deps.sh")
        # 4. runtime libraries
        listed = sorted({p for r in runtime["runs"] for p in apt_packages(r)})
        for p in listed:
            if dpkg._resolve(p) is None:
                fail(f"{image}: runtime package {p} is not a Debian 12 package installed here (misspelt or wrong soname)")
        closure = dpkg.closure(listed)
        libs = ldd(binary)
        if image == "collector":
            libs += [l for l in (find_lib(n) for n in reflection if "grpc" in n) if l]
        needed, ok_base, ok_listed = {}, set(), set()
        for lib in libs:
            p = dpkg.owner(lib)
            if p is None:
                fail(f"{image}: {lib} belongs to no package")
                continue
            needed[p] = lib
            if p in closure:
                ok_listed.add(p)
            elif p in dpkg.base:
                ok_base.add(p)
            else:
                fail(f"{image} runtime: needs {os.path.basename(lib)} from {p}, which the runtime stage does not install")
        # A listed package is unneeded when every package a library comes from is still
        # installed without it (by the other listed packages or the base).
        unused = []
        for p in listed:
            if p in needed or p == "ca-certificates":
                continue
            others = dpkg.closure([q for q in listed if q != p]) | dpkg.base
            if set(needed) <= others:
                unused.append(p)
        for p in unused:
            fail(f"{image} runtime: installs {p}, which no library of the binary comes from")
        print(f"{image}: {len(libs)} shared libraries from {len(needed)} packages: "
              f"{len(ok_listed)} via the runtime stage's {len(listed)} packages, {len(ok_base)} from the base "
              f"({', '.join(sorted(ok_base))})" + (f"; listed but unused: {', '.join(unused)}" if unused else ""))
    if failures:
        print(f"check_images: {len(failures)} failure(s)")
        sys.exit(1)
    print("check_images: PASS (what stays unverified: see the header of this script)")


if __name__ == "__main__":
    main()
