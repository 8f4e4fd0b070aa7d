#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Pools the paired rounds of several bench/overhead.sh runs of one build.

On a noisy host a single 7-round run can swing the per-switch ratio from
1.0x to 1.5x; the median over every paired round of several runs is the
steadier figure. Prints, per workload, the median Δ (on-CPU ns, per syscall
and per context switch) of each variant and its ratio to floor_rawtp and
to bpftrace.

usage: bench/pool-overhead.py RUN_DIR [RUN_DIR ...]
"""
import csv
import statistics
import sys


def main(dirs):
    deltas = {}
    for d in dirs:
        with open(f"{d}/runs.csv", newline="") as f:
            for row in csv.DictReader(f):
                key = (row["workload"], row["variant"])
                deltas.setdefault(key, []).append(float(row["delta_cpu_ns"]))
    for workload, per, div in (("sysload", "syscall", 1), ("ctxload", "switch", 2)):
        med = {v: statistics.median(x) / div
               for (w, v), x in deltas.items() if w == workload}
        if "floor_rawtp" not in med:
            continue
        floor = med["floor_rawtp"]
        print(f"{workload} (Δ CPU ns per {per}, median of pooled rounds):")
        for v, m in med.items():
            n = len(deltas[(workload, v)])
            line = f"  {v:18} {m:8.1f}  n={n:3}  {m / floor:5.2f}x floor"
            if "bpftrace" in med and v != "bpftrace":
                line += f"  {m / med['bpftrace']:5.2f}x bpftrace"
            print(line)


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
