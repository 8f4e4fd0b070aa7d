#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# What a traced workload pays: per-syscall and per-context-switch cost with
# nothing attached, with empty BPF programs (the floors), with the agent and
# with a bpftrace one-liner, measured side by side in one run.
# Method and caveats: bench/README.md. Results: docs/benchmarks.md.
#
# usage: sudo bench/overhead.sh [--quick] [--variants=v1,v2,...] [--out=DIR]
#   --quick      smoke test: 2 rounds, short workloads (< 1 minute)
#   --variants   subset/order of: none floor_rawtp floor_samehooks agent
#                bpftrace floor_switchhooks agent_switch agent_61
#   --out        directory for raw data (default: a new mktemp -d)
#   --bpf-stats  also enable kernel.bpf_stats_enabled and report each
#                program's run count and ns per run (a diagnostic pass: the
#                stats add their own clock reads to every program run)
# Environment overrides (defaults in brackets):
#   ROUNDS [7]  SYS_ITERS [3000000]  CTX_ROUNDS [100000]  NPROCS [1000]
#   WORKLOAD_CPU [1]  TRACER_CPU [0]  READY_TIMEOUT [60 s]
#   BENCH_BIN [<repo>/build-bench/bin]  AGENT_BIN [<repo>/build/bin/wattlens-agent]
#   AGENT_PORT [19810]  AGENT_EXTRA_ARGS []
#   AGENT_MIN_LINKS [5] (BPF links the agent must hold to count as attached)
#   BPFTRACE [bpftrace]  BPFTOOL [/usr/sbin/bpftool]
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH_BIN=${BENCH_BIN:-$ROOT/build-bench/bin}
AGENT_BIN=${AGENT_BIN:-$ROOT/build/bin/wattlens-agent}
AGENT_PORT=${AGENT_PORT:-19810}
AGENT_EXTRA_ARGS=${AGENT_EXTRA_ARGS:-}
# The agent's programs by default: sys_exit, sched_process_exit,
# cgroup_attach_task, sched_process_free, sched_process_fork,
# sched_process_exec, the task iterator (same as the samehooks floor);
# agent_switch (--cpu_time_source=sched_switch) adds sched_switch
# (floor_switchhooks). agent_61 is the design a kernel without the task
# kfuncs and socket length tracepoints (Debian 12's 6.1) loads, measured
# here: sched_switch plus the network syscalls source, a second program on
# sys_exit (docs/kernels.md).
AGENT_MIN_LINKS=${AGENT_MIN_LINKS:-5}
BPFTRACE=${BPFTRACE:-bpftrace}
BPFTOOL=${BPFTOOL:-/usr/sbin/bpftool}
BPFTRACE_PROG='tracepoint:raw_syscalls:sys_enter { @[pid] = count(); }'
WORKLOAD_CPU=${WORKLOAD_CPU:-1}
TRACER_CPU=${TRACER_CPU:-0}
READY_TIMEOUT=${READY_TIMEOUT:-60}
ALL_VARIANTS=(none floor_rawtp floor_samehooks agent bpftrace floor_switchhooks
  agent_switch agent_61)

quick=0
bpf_stats=0
out=""
variants_arg=""
for arg in "$@"; do
  case "$arg" in
    --quick) quick=1 ;;
    --variants=*) variants_arg=${arg#--variants=} ;;
    --out=*) out=${arg#--out=} ;;
    --bpf-stats) bpf_stats=1 ;;
    -h|--help) awk 'NR > 1 && /^#/ {sub(/^# ?/, ""); print; next} NR > 1 {exit}' "$0"; exit 0 ;;
    *) echo "overhead.sh: unknown argument $arg (try --help)" >&2; exit 2 ;;
  esac
done
if ((quick)); then
  ROUNDS=${ROUNDS:-2}; SYS_ITERS=${SYS_ITERS:-300000}
  CTX_ROUNDS=${CTX_ROUNDS:-20000}
else
  ROUNDS=${ROUNDS:-7}; SYS_ITERS=${SYS_ITERS:-3000000}
  CTX_ROUNDS=${CTX_ROUNDS:-100000}
fi
NPROCS=${NPROCS:-1000}
if [[ -n $variants_arg ]]; then
  IFS=, read -r -a VARIANTS <<<"$variants_arg"
else
  VARIANTS=("${ALL_VARIANTS[@]}")
fi

log() { echo "overhead: $*" >&2; }
die() { log "error: $*"; exit 1; }

# ---------------------------------------------------------------------------
# The agent's command line, one argument per line. Flag names follow
# `wattlens-agent --help`; change them here only.
agent_cmd() {
  printf '%s\n' "$AGENT_BIN" "--metrics_address=127.0.0.1:${AGENT_PORT}"
  local extra
  for extra in $AGENT_EXTRA_ARGS; do printf '%s\n' "$extra"; done
}
# ---------------------------------------------------------------------------

# The command that starts a variant's tracer (empty for "none").
variant_cmd() {
  case "$1" in
    none) ;;
    floor_rawtp) printf '%s\n' "$BENCH_BIN/floor_loader" --mode=rawtp ;;
    floor_samehooks) printf '%s\n' "$BENCH_BIN/floor_loader" --mode=samehooks ;;
    floor_switchhooks)
      printf '%s\n' "$BENCH_BIN/floor_loader" --mode=switchhooks ;;
    agent) agent_cmd ;;
    agent_switch) agent_cmd; printf '%s\n' --cpu_time_source=sched_switch ;;
    agent_61)
      agent_cmd
      printf '%s\n' --cpu_time_source=sched_switch --network_bytes_source=syscalls
      ;;
    bpftrace) printf '%s\n' "$BPFTRACE" -e "$BPFTRACE_PROG" ;;
    *) die "unknown variant $1" ;;
  esac
}

# Attached BPF programs system-wide: links plus perf-event attachments. Logged
# with every run so a program someone else attaches mid-run is visible.
bpf_attach_count() {
  local links perf
  links=$("$BPFTOOL" link list 2>/dev/null | grep -c '^[0-9]*:' || true)
  perf=$("$BPFTOOL" perf list 2>/dev/null | grep -c '^pid' || true)
  echo $((links + perf))
}

# Readiness is a condition, never a fixed sleep: 0 when attached.
variant_ready() {
  local variant=$1 pid=$2 logdir=$3
  case "$variant" in
    floor_*) grep -q '^ready' "$logdir/stdout" ;;
    bpftrace)
      # bpftrace 0.17 prints this line once every probe is attached (its
      # runtime tests use it); bpftool confirms the attachment.
      # (Output is captured before grep -q: with pipefail, a writer killed
      # by SIGPIPE would fail the pipeline after a match.)
      local perf
      grep -q '__BPFTRACE_NOTIFY_PROBES_ATTACHED' "$logdir/stdout" \
        "$logdir/stderr" || return 1
      perf=$("$BPFTOOL" perf list 2>/dev/null) || return 1
      grep -q "^pid $pid .*sys_enter" <<<"$perf"
      ;;
    agent|agent_switch|agent_61)
      curl -sf --max-time 1 "http://127.0.0.1:${AGENT_PORT}/metrics" \
        -o "$logdir/metrics.txt" &&
        (($(owned_links "$pid") >= AGENT_MIN_LINKS))
      ;;
  esac
}

# BPF links held open by a process (its fdinfo shows link_type), so other
# BPF users on the host cannot make a tracer look attached.
owned_links() {
  grep -l '^link_type:' /proc/"$1"/fdinfo/* 2>/dev/null | wc -l
}

# Ids of the BPF programs a process holds (program and link fds).
owned_prog_ids() {
  grep -h '^prog_id:' /proc/"$1"/fdinfo/* 2>/dev/null | awk '{print $2}' |
    sort -un | tr '\n' ' '
}

# With --bpf-stats: appends "round,variant,id,type,name,run_cnt,run_time_ns"
# of the variant's programs to progstats.csv.
record_prog_stats() {
  local round=$1 variant=$2 id
  for id in $variant_progs; do
    "$BPFTOOL" prog show id "$id" 2>/dev/null | awk -v r="$round" -v v="$variant" -v id="$id" '
      NR == 1 {
        type = $2
        for (i = 3; i < NF; i++) {
          if ($i == "name") name = $(i + 1)
          if ($i == "run_time_ns") t = $(i + 1)
          if ($i == "run_cnt") c = $(i + 1)
        }
        printf "%s,%s,%s,%s,%s,%s,%s\n", r, v, id, type, name, c + 0, t + 0
      }' >>"$OUT/progstats.csv"
  done
}

# "<on-CPU ns of all threads (schedstat)> <utime+stime ticks>" of a process.
proc_cpu() {
  local pid=$1 ns ticks
  ns=$(cat /proc/"$pid"/task/*/schedstat 2>/dev/null |
    awk '{s += $1} END {printf "%.0f", s}')
  ticks=$(sed 's/^.*) //' /proc/"$pid"/stat | awk '{printf "%.0f", $12 + $13}')
  echo "${ns:-0} ${ticks:-0}"
}

proc_kb() { # pid field -> kB
  awk -v f="$2:" '$1 == f {print $2}' /proc/"$1"/status
}

now_ns() { date +%s%N; }

tracer_pid=""
manyproc_pid=""
stats_saved=""
cleanup() {
  if [[ -n $stats_saved ]]; then
    echo "$stats_saved" >/proc/sys/kernel/bpf_stats_enabled 2>/dev/null || true
  fi
  if [[ -n $tracer_pid ]]; then kill -KILL "$tracer_pid" 2>/dev/null || true; fi
  if [[ -n $manyproc_pid ]]; then
    kill -TERM "$manyproc_pid" 2>/dev/null || true
    wait "$manyproc_pid" 2>/dev/null || true
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Starts a variant's tracer on TRACER_CPU and waits until it is attached.
# Sets tracer_pid, ready_ms and variant_progs (ids of the BPF programs it
# loaded).
start_tracer() {
  local variant=$1 logdir=$2 cmd start deadline
  mapfile -t cmd < <(variant_cmd "$variant")
  mkdir -p "$logdir"
  : >"$logdir/stdout"
  : >"$logdir/stderr"
  printf '%q ' "${cmd[@]}" >"$logdir/cmdline"
  start=$(now_ns)
  deadline=$((start + READY_TIMEOUT * 1000000000))
  # exec: $! is the tracer itself, not a wrapper shell.
  (exec env __BPFTRACE_NOTIFY_PROBES_ATTACHED=1 \
    taskset -c "$TRACER_CPU" "${cmd[@]}" >"$logdir/stdout" 2>"$logdir/stderr") &
  tracer_pid=$!
  until variant_ready "$variant" "$tracer_pid" "$logdir"; do
    if ! kill -0 "$tracer_pid" 2>/dev/null; then
      tail -5 "$logdir/stderr" >&2 || true
      die "$variant exited before it was ready (logs: $logdir)"
    fi
    (($(now_ns) < deadline)) || die "$variant not ready after ${READY_TIMEOUT}s (logs: $logdir)"
    sleep 0.05 # polling interval, not a settle time
  done
  ready_ms=$((($(now_ns) - start) / 1000000))
  variant_progs=$(owned_prog_ids "$tracer_pid")
  local id
  for id in $variant_progs; do
    "$BPFTOOL" prog show id "$id" 2>/dev/null | awk 'NR == 1 {
      for (i = 3; i < NF; i++) if ($i == "name") n = $(i + 1)
      printf "%s %s %s\n", $1, $2, n }'
  done >"$logdir/progs"
}

# Stops the tracer (bounded wait, then SIGKILL). Sets rss_kb and hwm_kb.
stop_tracer() {
  local variant=$1 sig=TERM i
  rss_kb=$(proc_kb "$tracer_pid" VmRSS)
  hwm_kb=$(proc_kb "$tracer_pid" VmHWM)
  [[ $variant == bpftrace ]] && sig=INT
  kill -"$sig" "$tracer_pid" 2>/dev/null || true
  for ((i = 0; i < 200; i++)); do
    kill -0 "$tracer_pid" 2>/dev/null || break
    sleep 0.05
  done
  if kill -0 "$tracer_pid" 2>/dev/null; then
    log "$variant did not exit on SIG$sig within 10 s; killing it"
    kill -KILL "$tracer_pid" 2>/dev/null || true
  fi
  wait "$tracer_pid" 2>/dev/null || true
  tracer_pid=""
}

# Runs one workload on WORKLOAD_CPU. Sets w_ns (wall ns_per_op), w_cpu
# (cpu_ns_per_op: the workload's own on-CPU time, which does not grow when
# another task shares the CPU) and w_sw (switches_per_op, ctxload only).
run_workload() {
  local workload=$1 line n
  case "$workload" in
    sysload) n=$SYS_ITERS ;;
    ctxload) n=$CTX_ROUNDS ;;
  esac
  line=$(taskset -c "$WORKLOAD_CPU" "$BENCH_BIN/$workload" "$n") ||
    die "$workload failed"
  echo "$line" >>"$OUT/workloads.log"
  w_ns=$(sed -n 's/.* ns_per_op=\([0-9.]*\).*/\1/p' <<<"$line")
  w_cpu=$(sed -n 's/.* cpu_ns_per_op=\([0-9.]*\).*/\1/p' <<<"$line")
  w_sw=$(sed -n 's/.* switches_per_op=\([-0-9.]*\).*/\1/p' <<<"$line")
  [[ -n $w_ns && -n $w_cpu ]] || die "cannot parse workload output: $line"
  w_sw=${w_sw:-NA}
}

# ----------------------------------------------------------------- checks --
[[ $(id -u) -eq 0 ]] || die "run as root (BPF programs are loaded)"
for b in sysload ctxload manyproc floor_loader; do
  [[ -x $BENCH_BIN/$b ]] || die "missing $BENCH_BIN/$b: cmake --build <dir> --target bench_tools"
done
command -v taskset >/dev/null || die "taskset missing (util-linux)"
ncpu=$(nproc --all)
((WORKLOAD_CPU < ncpu && TRACER_CPU < ncpu)) || die "need CPUs $WORKLOAD_CPU and $TRACER_CPU"

declare -A skipped=()
active=()
for v in "${VARIANTS[@]}"; do
  case "$v" in
    none|floor_rawtp|floor_samehooks|floor_switchhooks) active+=("$v") ;;
    agent|agent_switch|agent_61)
      if [[ -x $AGENT_BIN ]]; then
        command -v curl >/dev/null || die "curl is needed to wait for the agent"
        active+=("$v")
      else
        skipped[$v]="pending: $AGENT_BIN not built"
      fi
      ;;
    bpftrace)
      if ! command -v "$BPFTRACE" >/dev/null; then
        skipped[$v]="bpftrace not installed"
        continue
      fi
      # bpftrace resolves tracepoint: probes through tracefs.
      if [[ ! -d /sys/kernel/tracing/events ]]; then
        log "mounting tracefs on /sys/kernel/tracing for bpftrace"
        mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null || true
      fi
      if [[ -d /sys/kernel/tracing/events/raw_syscalls ]]; then
        active+=("$v")
      else
        skipped[$v]="no tracefs (raw_syscalls tracepoints not visible)"
      fi
      ;;
    *) die "unknown variant $v (known: ${ALL_VARIANTS[*]})" ;;
  esac
done
for v in "${!skipped[@]}"; do log "skipping $v: ${skipped[$v]}"; done
((${#active[@]} > 0)) || die "no variant to run"

if [[ -z $out ]]; then out=$(mktemp -d /tmp/wattlens-overhead.XXXXXX); fi
mkdir -p "$out"
OUT=$(cd "$out" && pwd)
log "raw data in $OUT"

{
  echo "date=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "kernel=$(uname -r)"
  echo "cpu=$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)"
  echo "ncpu=$ncpu"
  echo "commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
  echo "rounds=$ROUNDS sys_iters=$SYS_ITERS ctx_round_trips=$CTX_ROUNDS nprocs=$NPROCS"
  echo "workload_cpu=$WORKLOAD_CPU tracer_cpu=$TRACER_CPU"
  echo "variants=${active[*]}"
  echo "agent_cmd=$(agent_cmd | tr '\n' ' ')"
  if [[ -x $AGENT_BIN ]]; then
    echo "agent_binary_mtime=$(date -u -r "$AGENT_BIN" +%Y-%m-%dT%H:%M:%SZ) sha256=$(sha256sum "$AGENT_BIN" | cut -c1-16)"
  fi
  echo "bpftrace=$($BPFTRACE --version 2>/dev/null || echo none)"
  echo "loadavg_start=$(cut -d' ' -f1-3 /proc/loadavg)"
  # Left on by someone else, it adds two clock reads to every program run
  # and inflates every BPF variant (a run at 1 measured a floor of 155 ns
  # per syscall instead of 72).
  echo "bpf_stats_enabled_at_start=$(cat /proc/sys/kernel/bpf_stats_enabled 2>/dev/null || echo unknown)"
} >"$OUT/env.txt"
if ((!bpf_stats)) && [[ $(cat /proc/sys/kernel/bpf_stats_enabled 2>/dev/null) == 1 ]]; then
  log "warning: kernel.bpf_stats_enabled is 1: every BPF variant's Δ includes the stats' clock reads"
fi

# 1,000 live processes for the whole run: every tracer starts and runs with
# them present.
: >"$OUT/manyproc.out"
(exec taskset -c "$TRACER_CPU" "$BENCH_BIN/manyproc" "$NPROCS" >"$OUT/manyproc.out") &
manyproc_pid=$!
deadline=$(($(now_ns) + READY_TIMEOUT * 1000000000))
until grep -q '^ready' "$OUT/manyproc.out"; do
  kill -0 "$manyproc_pid" 2>/dev/null || die "manyproc failed"
  (($(now_ns) < deadline)) || die "manyproc not ready"
  sleep 0.05
done
live=$(find /proc -maxdepth 1 -name '[0-9]*' | wc -l)
echo "live_processes=$live" >>"$OUT/env.txt"
log "$NPROCS idle processes up ($live processes on the host)"

if ((bpf_stats)); then
  stats_saved=$(cat /proc/sys/kernel/bpf_stats_enabled)
  echo 1 >/proc/sys/kernel/bpf_stats_enabled
  echo "bpf_stats_enabled=1 (diagnostic pass: Δs include the stats' clock reads)" >>"$OUT/env.txt"
  echo "round,variant,id,type,name,run_cnt,run_time_ns" >"$OUT/progstats.csv"
fi

host_attached0=$(bpf_attach_count)
echo "bpf_attached_by_others_at_start=$host_attached0" >>"$OUT/env.txt"

RUNS=$OUT/runs.csv
TRACER=$OUT/tracer.csv
echo "round,variant,workload,order,base_ns,variant_ns,delta_ns,base_cpu_ns,variant_cpu_ns,delta_cpu_ns,base_switches_per_op,variant_switches_per_op,others_bpf_changes" >"$RUNS"
echo "round,variant,ready_ms,startup_cpu_ns,sys_cpu_ns,sys_ticks,sys_wall_ns,ctx_cpu_ns,ctx_ticks,ctx_wall_ns,vmrss_kb,vmhwm_kb" >"$TRACER"

# Runs both workloads under a variant's tracer (nothing for "none"). Fills
# M[<side>.*] and appends the tracer's resource use to
# tracer.csv. Runs in the main shell, never in a $(...) subshell, so
# tracer_pid stays visible to the EXIT trap and die() stops the script.
# M[<side>.<workload>.ns|cpu|sw]: the latest results; side is B (baseline)
# or V (variant). M[<side>.others]: how far the host's count of attached BPF
# programs (ours excluded: sampled while no tracer of ours runs) strayed from
# its value at the start of the run, before plus after the side's workloads.
# Other people's programs on the syscall path change a baseline; a pair with
# a non-zero sum is left out of the medians when enough clean pairs exist.
declare -A M=()
run_into_m() { # run_into_m <side> <workload>
  run_workload "$2"
  M[$1.$2.ns]=$w_ns M[$1.$2.cpu]=$w_cpu M[$1.$2.sw]=$w_sw
}

absdiff() { local d=$(($1 - $2)); echo $((d < 0 ? -d : d)); }
note_others() { # note_others <side> <count before>
  local after
  after=$(bpf_attach_count)
  M[$1.others]=$(($(absdiff "$2" "$host_attached0") + $(absdiff "$after" "$host_attached0")))
}

measure_variant() {
  local round=$1 v=$2 side=$3 logdir startup c0n c0t c1n c1t c2n c2t t0 t1 t2
  local others_before
  others_before=$(bpf_attach_count)
  if [[ $v == none ]]; then
    run_into_m "$side" sysload
    run_into_m "$side" ctxload
    note_others "$side" "$others_before"
    return
  fi
  logdir=$OUT/logs/r${round}_$v
  start_tracer "$v" "$logdir"
  read -r c0n c0t <<<"$(proc_cpu "$tracer_pid")"; t0=$(now_ns)
  startup=$c0n # CPU used from exec to attached
  run_into_m "$side" sysload
  read -r c1n c1t <<<"$(proc_cpu "$tracer_pid")"; t1=$(now_ns)
  run_into_m "$side" ctxload
  read -r c2n c2t <<<"$(proc_cpu "$tracer_pid")"; t2=$(now_ns)
  if ((bpf_stats)); then record_prog_stats "$round" "$v"; fi
  stop_tracer "$v"
  note_others "$side" "$others_before"
  echo "$round,$v,$ready_ms,$startup,$((c1n - c0n)),$((c1t - c0t)),$((t1 - t0)),$((c2n - c1n)),$((c2t - c1t)),$((t2 - t1)),$rss_kb,$hwm_kb" >>"$TRACER"
}

nv=${#active[@]}
for ((r = 1; r <= ROUNDS; r++)); do
  for ((k = 0; k < nv; k++)); do
    v=${active[$(((r - 1 + k) % nv))]}
    # Paired runs: a baseline with nothing attached right next to the
    # variant; which one goes first alternates by round, so slow drift of
    # the host does not favour either side.
    if ((r % 2)); then
      order=variant_first
      measure_variant "$r" "$v" V
      measure_variant "$r" none B
    else
      order=base_first
      measure_variant "$r" none B
      measure_variant "$r" "$v" V
    fi
    for w in sysload ctxload; do
      awk -v r="$r" -v v="$v" -v w="$w" -v o="$order" \
        -v a="$((${M[B.others]} + ${M[V.others]}))" \
        -v bn="${M[B.$w.ns]}" -v vn="${M[V.$w.ns]}" -v bc="${M[B.$w.cpu]}" \
        -v vc="${M[V.$w.cpu]}" -v bs="${M[B.$w.sw]}" -v vs="${M[V.$w.sw]}" 'BEGIN {
          printf "%s,%s,%s,%s,%s,%s,%.2f,%s,%s,%.2f,%s,%s,%s\n", r, v, w, o,
            bn, vn, vn - bn, bc, vc, vc - bc, bs, vs, a }' >>"$RUNS"
    done
    log "round $r/$ROUNDS $v: sysload ${M[B.sysload.ns]} -> ${M[V.sysload.ns]} ns/op" \
      "(cpu ${M[B.sysload.cpu]} -> ${M[V.sysload.cpu]}), ctxload ${M[B.ctxload.ns]}" \
      "-> ${M[V.ctxload.ns]} (cpu ${M[B.ctxload.cpu]} -> ${M[V.ctxload.cpu]})"
  done
done

echo "loadavg_end=$(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT/env.txt"

# ---------------------------------------------------------------- summary --
# Pairs of a variant/workload whose baseline and variant saw the same BPF
# programs of others as the run started (others_bpf_changes == 0).
clean_pairs() {
  awk -F, -v v="$1" -v w="$2" 'NR > 1 && $2 == v && $3 == w && $13 == 0' "$RUNS" | wc -l
}
all_pairs() {
  awk -F, -v v="$1" -v w="$2" 'NR > 1 && $2 == v && $3 == w' "$RUNS" | wc -l
}
# "median min max" of column `col` of runs.csv rows matching variant/workload;
# only clean pairs when at least 3 exist (use_clean[v.w] = 1).
declare -A use_clean=()
stats() {
  awk -F, -v v="$1" -v w="$2" -v c="$3" -v clean="${use_clean[$1.$2]:-0}" \
    'NR > 1 && $2 == v && $3 == w && (!clean || $13 == 0) {print $c}' "$RUNS" |
    sort -g | awk '{a[NR] = $1} END {
      if (NR == 0) { print "NA NA NA"; exit }
      m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2
      printf "%.1f %.1f %.1f\n", m, a[1], a[NR]
    }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {
  if (a == "NA" || b == "NA" || b <= 0) print "n/a"; else printf "%.2f", a / b }'; }
half() { awk -v a="$1" 'BEGIN { if (a == "NA") print "NA"; else printf "%.1f", a / 2 }'; }

declare -A dmed=()
notes=()
summary=$OUT/summary.md
{
  echo "# Wattlens overhead run"
  echo
  echo '```'
  cat "$OUT/env.txt"
  echo '```'
  echo
  echo "Median [min..max] over $ROUNDS paired rounds. Δ = variant − paired baseline"
  echo "(nothing attached). **wall**: elapsed time per op (CLOCK_MONOTONIC), what the"
  echo "issue asks for. **CPU**: the workload's own on-CPU time per op (BPF programs on"
  echo "its path are charged to it), which does not grow when other tasks share the CPU;"
  echo "prefer it on a busy host. sysload: per getppid() syscall. ctxload: per pipe round"
  echo "trip (2 context switches + 4 syscalls); \"per switch\" is half a round trip."
  for w in sysload ctxload; do
    echo
    if [[ $w == sysload ]]; then
      echo "## Per syscall (sysload, $SYS_ITERS getppid calls per run)"
      echo
      echo "| variant | wall ns/op: baseline | with variant | **Δ ns/syscall** | CPU ns/op: baseline | with variant | **Δ ns/syscall** |"
      echo "|---|---|---|---|---|---|---|"
    else
      echo "## Per context switch (ctxload, $CTX_ROUNDS round trips per run)"
      echo
      echo "| variant | wall ns/round trip: baseline | with variant | Δ/round trip | **Δ/switch** | CPU ns/round trip: baseline | with variant | Δ/round trip | **Δ/switch** | switches/round trip |"
      echo "|---|---|---|---|---|---|---|---|---|---|"
    fi
    for v in "${ALL_VARIANTS[@]}"; do
      if [[ -n ${skipped[$v]:-} ]]; then
        if [[ $w == sysload ]]; then echo "| $v | ${skipped[$v]} | | | | | |"
        else echo "| $v | ${skipped[$v]} | | | | | | | | |"; fi
        continue
      fi
      [[ " ${active[*]} " == *" $v "* ]] || continue
      nclean=$(clean_pairs "$v" "$w"); nall=$(all_pairs "$v" "$w")
      if ((nclean >= 3)); then use_clean[$v.$w]=1; fi
      if ((nclean < nall)); then
        if ((nclean >= 3)); then
          notes+=("$v/$w: $nclean of $nall pairs used; in the others someone else's BPF programs came or went")
        else
          notes+=("$v/$w: all $nall pairs used; only $nclean of them were free of other people's BPF programs coming or going")
        fi
      fi
      read -r bm bl bh < <(stats "$v" "$w" 5)
      read -r vm vl vh < <(stats "$v" "$w" 6)
      read -r dm dl dh < <(stats "$v" "$w" 7)
      read -r cbm cbl cbh < <(stats "$v" "$w" 8)
      read -r cvm cvl cvh < <(stats "$v" "$w" 9)
      read -r cdm cdl cdh < <(stats "$v" "$w" 10)
      dmed[$v.$w.wall]=$dm
      dmed[$v.$w.cpu]=$cdm
      if [[ $w == sysload ]]; then
        echo "| $v | $bm [$bl..$bh] | $vm [$vl..$vh] | **$dm** [$dl..$dh] | $cbm [$cbl..$cbh] | $cvm [$cvl..$cvh] | **$cdm** [$cdl..$cdh] |"
      else
        read -r sm _ sh < <(stats "$v" "$w" 12)
        echo "| $v | $bm [$bl..$bh] | $vm [$vl..$vh] | $dm [$dl..$dh] | **$(half "$dm")** [$(half "$dl")..$(half "$dh")] | $cbm [$cbl..$cbh] | $cvm [$cvl..$cvh] | $cdm [$cdl..$cdh] | **$(half "$cdm")** [$(half "$cdl")..$(half "$cdh")] | $sm (max $sh) |"
      fi
    done
  done

  echo
  echo "## Ratios of median Δ (target for the agent: ≤ 1.5x the floor, < bpftrace)"
  echo
  echo "| ratio | per syscall, wall | per syscall, CPU | per switch, wall | per switch, CPU |"
  echo "|---|---|---|---|---|"
  for pair in agent/floor_rawtp agent/floor_samehooks agent/bpftrace \
    floor_samehooks/floor_rawtp bpftrace/floor_rawtp \
    agent_switch/floor_rawtp agent_switch/floor_switchhooks \
    agent_switch/bpftrace floor_switchhooks/floor_rawtp \
    agent_61/floor_rawtp agent_61/floor_switchhooks agent_61/agent; do
    a=${pair%/*}; b=${pair#*/}
    [[ -n ${dmed[$a.sysload.cpu]:-} && -n ${dmed[$b.sysload.cpu]:-} ]] || continue
    row="| $a / $b"
    for w in sysload ctxload; do
      for m in wall cpu; do
        row+=" | $(ratio "${dmed[$a.$w.$m]:-NA}" "${dmed[$b.$w.$m]:-NA}")"
      done
    done
    echo "$row |"
  done
  echo
  echo "Ratios of small Δs are only as good as the Δs: when a floor's Δ is inside"
  echo "the noise (compare with the \"none\" row, baseline vs baseline) the ratio is not meaningful."
  if ((${#notes[@]})); then
    echo
    echo "Pairs left out (others_bpf_changes in runs.csv):"
    echo
    printf -- '- %s\n' "${notes[@]}"
  fi

  echo
  echo "## Tracer resources ($NPROCS extra idle processes, $live live processes on the host)"
  echo
  echo "CPU % of one CPU while each workload ran, summed over rounds (schedstat of all"
  echo "threads; utime+stime in brackets, $(getconf CLK_TCK) Hz ticks). RSS at the end of each"
  echo "round (median), VmHWM max over rounds, time from start to attached (median)."
  echo
  echo "| variant | CPU % during sysload | CPU % during ctxload | startup CPU ms | ready ms | VmRSS MiB | VmHWM MiB |"
  echo "|---|---|---|---|---|---|---|"
  for v in "${ALL_VARIANTS[@]}"; do
    [[ $v == none ]] && continue
    if [[ -n ${skipped[$v]:-} ]]; then
      echo "| $v | ${skipped[$v]} | | | | | |"; continue
    fi
    [[ " ${active[*]} " == *" $v "* ]] || continue
    awk -F, -v v="$v" -v hz="$(getconf CLK_TCK)" '
      function med(arr, n,   i, j, t) {
        for (i = 2; i <= n; i++) for (j = i; j > 1 && arr[j - 1] > arr[j]; j--) {
          t = arr[j]; arr[j] = arr[j - 1]; arr[j - 1] = t }
        return (n % 2) ? arr[(n + 1) / 2] : (arr[n / 2] + arr[n / 2 + 1]) / 2
      }
      NR > 1 && $2 == v {
        n++; rdy[n] = $3; st[n] = $4 / 1e6; rss[n] = $11 / 1024
        if ($12 / 1024 > hwm) hwm = $12 / 1024
        sc += $5; st_ += $6; sw += $7; cc += $8; ct += $9; cw += $10
      }
      END {
        if (!n) exit
        printf "| %s | %.2f [%.1f] | %.2f [%.1f] | %.1f | %.0f | %.1f | %.1f |\n", v,
          100 * sc / sw, 100 * st_ / hz * 1e9 / sw, 100 * cc / cw, 100 * ct / hz * 1e9 / cw,
          med(st, n), med(rdy, n), med(rss, n), hwm
      }' "$TRACER"
  done

  echo
  echo "BPF programs each tracer held (last round; ids, types, names):"
  echo
  for v in "${active[@]}"; do
    [[ $v == none ]] && continue
    last=$(find "$OUT/logs" -maxdepth 1 -name "r*_$v" | sort -V | tail -1)
    [[ -n $last && -f $last/progs ]] || continue
    echo "- $v: $(awk '{printf "%s%s (%s)", sep, $3, $2; sep = ", "}' "$last/progs")"
    # A rebuilt agent binary mid-run shows up as a different program set.
    sets=$(for f in "$OUT"/logs/r*_"$v"/progs; do awk '{print $3}' "$f" | sort | tr '\n' ' '; echo; done | sort -u | wc -l)
    if ((sets > 1)); then
      echo "  **Warning:** $v held different program sets in different rounds (binary changed during the run?): see logs/r*_$v/progs."
    fi
  done

  if ((bpf_stats)); then
    echo
    echo "## BPF program run time (kernel.bpf_stats_enabled, summed over rounds)"
    echo
    echo "Includes the stats' own cost per run (two clock reads); the empty floor"
    echo "programs' ns/run measures it, so body ≈ ns/run − floor ns/run."
    echo
    echo "| variant | program | type | runs | ns/run |"
    echo "|---|---|---|---|---|"
    awk -F, 'NR > 1 { k = $2 "|" $5 "|" $4; c[k] += $6; t[k] += $7 }
      END { for (k in c) { split(k, p, "|")
        printf "| %s | %s | %s | %.0f | %s |\n", p[1], p[2], p[3], c[k],
          c[k] ? sprintf("%.1f", t[k] / c[k]) : "n/a" } }' "$OUT/progstats.csv" | sort
  fi

  echo
  echo "Raw data: $OUT (runs.csv, tracer.csv, workloads.log, logs/)."
} >"$summary"
cat "$summary"
