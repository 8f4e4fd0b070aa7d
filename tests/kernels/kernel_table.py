#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Per-kernel table of the BPF tests: passed/failed/skipped per test binary.

Usage: kernel_table.py BUILD_DIR KERNEL=CTEST_LOG...
  e.g. kernel_table.py build host=host.log 6.1=6.1.log 6.1-rt=6.1-rt.log

Each log is the output of one `ctest` run. ctest names the discovered gtest
cases, not their binaries; the binaries come from `ctest --show-only=json-v1`
in BUILD_DIR. A kernel whose log has no result for a binary shows "-"; a
log with no results at all (a guest that never ran ctest) shows "no run".
"""
import json
import os
import re
import subprocess
import sys

# "  3/40 Test  #7: Suite.Name ......   Passed    0.10 sec"
# "  4/40 Test  #8: P/Suite.Other/1  # GetParam() = 2 ...***Exception: SegFault  0.20 sec"
RESULT = re.compile(r"^\s*\d+/\d+ Test\s+#\d+: (\S+).*?[.\s](\*{3})?"
                    r"([A-Z][A-Za-z :()]*?)\s+[\d.]+ sec\s*$")


def binaries(build_dir):
    out = subprocess.run(
        ["ctest", "--test-dir", build_dir, "--show-only=json-v1"],
        check=True, capture_output=True, text=True).stdout
    owner = {}
    for test in json.loads(out).get("tests", []):
        command = test.get("command") or [test["name"]]
        name = os.path.basename(command[0])
        # Shell tests run an interpreter script: the script names the test.
        if name.endswith(".sh") or name in ("bash", "sh", "python3"):
            name = test["name"]
        # Parameterised cases are named "P/Suite.Case/x  # GetParam() = x";
        # ctest's result lines start with the first word.
        owner[test["name"].split()[0]] = name
    return owner


def outcome(marker, text):
    if not marker and text.startswith("Passed"):
        return "passed"
    if text.startswith("Skipped") or text.startswith("Not Run (Disabled)"):
        return "skipped"
    return "failed"


def main(argv):
    if len(argv) < 3:
        sys.stderr.write(__doc__)
        return 2
    owner = binaries(argv[1])
    kernels, counts, ran = [], {}, {}
    for arg in argv[2:]:
        kernel, _, path = arg.partition("=")
        kernels.append(kernel)
        ran[kernel] = False
        try:
            lines = open(path, errors="replace").read().splitlines()
        except OSError:
            lines = []
        for line in lines:
            m = RESULT.match(line)
            if not m:
                continue
            ran[kernel] = True
            binary = owner.get(m.group(1), m.group(1))
            cell = counts.setdefault(binary, {}).setdefault(
                kernel, {"passed": 0, "failed": 0, "skipped": 0})
            cell[outcome(m.group(2), m.group(3))] += 1
    header = ["test binary"] + [f"{k} p/f/s" for k in kernels]
    rows = []
    totals = {k: {"passed": 0, "failed": 0, "skipped": 0} for k in kernels}
    for binary in sorted(counts):
        row = [binary]
        for k in kernels:
            c = counts[binary].get(k)
            if c is None:
                row.append("-" if ran[k] else "no run")
                continue
            for key in c:
                totals[k][key] += c[key]
            row.append(f"{c['passed']}/{c['failed']}/{c['skipped']}")
        rows.append(row)
    rows.append(["total"] + [
        f"{t['passed']}/{t['failed']}/{t['skipped']}" if ran[k] else "no run"
        for k, t in totals.items()])
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
    for r in [header] + rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
