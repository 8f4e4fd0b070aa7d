// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/* On-CPU time per process and cgroup, and the process lifecycle.
 *
 * CPU time is the scheduler's own accounting: the growth of each thread's
 * se.sum_exec_runtime, the same numbers cgroup cpu.stat sums (both are
 * advanced together in update_curr()), so interrupt time and tracepoint
 * latency do not leak into a workload's CPU time. The last value charged
 * lives in task local storage (freed with the task). Kernel threads are
 * keyed under WL_CGROUP_KERNEL, their own workload. Two ways to read it;
 * the agent loads one (--cpu_time_source):
 *
 * sampled (default): nothing runs on a context switch. At each drain the
 * agent walks every thread with a task iterator (wl_sched_sample) and
 * charges what each ran since it was last charged; a thread's exit
 * (sched_process_exit) charges what it ran so far, announces EXITING for
 * the last thread of a process, and takes a reference on the task (a kptr
 * in `dying`) so that its task_struct outlives its final switch. At the end
 * of the next walk (wl_reap_one, in the agent's own context) each held thread
 * that has switched out dead is charged its remainder, exit_mm() and the
 * final slice, and its reference dropped; the reap of a process's last
 * held thread, with none left alive, emits its EXIT.
 * No charge depends on a program running in whatever context frees the
 * task. Only if `dying` is full does the remainder wait for
 * sched_process_free (wl_sched_free), counted as sched_dying_full. Exact
 * against cpu.stat at every drain (both as of each thread's last
 * update_curr(), at the latest the last tick); a thread that moves cgroups
 * between two drains is charged wholly to the cgroup it is in at the
 * drain, within one interval. Per-CPU values go to the CPU the thread last
 * ran on. Samplers race (the iterator on one CPU, an exit on another), so
 * the slot is claimed by compare-and-swap and the counters are added
 * atomically.
 *
 * sched_switch: wl_sched_switch charges the task switching out (it is still
 * `current`) with its growth since it last switched out; one per-CPU hash
 * update per switch, only the CPU switching a task out writes its slot, so
 * no atomics; a dying task's final switch charges its last slice and, for
 * the last thread of a process, emits EXIT. Before each read the agent
 * harvests the running tasks' slices so far (wl_sched_harvest, on every
 * CPU). Exact per CPU and per cgroup move, at the price of a program on
 * every context switch.
 *
 * Lifecycle events are the only per-event records; they go through one ring
 * buffer without wake-ups (the agent polls it), and reserve failures are
 * counted. An EXEC names the executable the process now runs (exe.bpf.c names
 * those of the processes already running when the agent starts): the
 * agent's host project identity needs no ptrace access to /proc/<pid>/exe. */
#include "wattlens.bpf.h"
#include "exe_path.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define WL_TASK_DEAD 0x80 /* include/linux/sched.h, stable since 4.14 */

/* Wake the poller early only once the ring is a quarter full. */
const volatile __u64 wakeup_bytes = 1 << 20;
/* bpf_ktime_get_ns() at load: threads started before it are charged from
 * their first switch seen, not for their whole past. */
const volatile __u64 load_ns = 0;
/* EXEC records carry the executable's path (needs bpf_loop, 5.17). */
const volatile bool exe_paths = false;

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_HASH);
  __uint(max_entries, 16384); /* --bpf-sched-map-entries */
  __type(key, struct wl_sched_key);
  __type(value, __u64);
} oncpu SEC(".maps");

/* Per thread: what of its runtime is charged, and whether it was held in
 * `dying` (then its reap, not its free, completes its process). */
struct wl_task_state {
  __u64 charged; /* se.sum_exec_runtime charged so far */
  __u64 held;
};

struct {
  __uint(type, BPF_MAP_TYPE_TASK_STORAGE);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, int);
  __type(value, struct wl_task_state);
} task_runtime SEC(".maps");

/* sampled: threads that have begun to exit, each held by a reference until
 * a drain sees it switched out dead (wl_reap_one). Keyed by the task's
 * address, unique while the reference is held. What a thread's process is
 * known by is taken at its exit, while its group leader cannot yet have
 * been freed (a leader is released after its last thread). */
struct wl_dying {
  struct task_struct __kptr *task;
  struct wl_sched_key key; /* its process and cgroup */
  struct wl_event exit;    /* its process's EXIT, as known at its exit */
};

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 8192); /* --bpf-sched-dying-entries */
  __type(key, __u64);
  __type(value, struct wl_dying);
} dying SEC(".maps");

/* sampled: per process (tgid, start; cgroup 0), how many of its threads
 * are held. The reap that takes it to zero with no thread of the process
 * left alive emits the EXIT, so the process ends after all its time. */
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 8192); /* as `dying` */
  __type(key, struct wl_sched_key);
  __type(value, __u64);
} held_threads SEC(".maps");

/* libbpf resolves every kfunc extern of an object at load, even one only
 * used by programs that are not loaded. Where vmlinux BTF lacks it (before
 * 6.2), libbpf searches the modules' BTF, and listing those needs
 * CAP_SYS_ADMIN, which the DaemonSet does not grant: even a weak extern then
 * fails the load. So sched_switch is loaded from a build of this file
 * without them (WL_SCHED_NO_KFUNCS), where the sampled programs, never
 * loaded from it, keep their names with the kfuncs stubbed. */
#ifdef WL_SCHED_NO_KFUNCS
static __always_inline struct task_struct *bpf_task_acquire(
    struct task_struct *p) {
  return NULL;
}
static __always_inline void bpf_task_release(struct task_struct *p) {}
#else
extern struct task_struct *bpf_task_acquire(struct task_struct *p) __ksym;
extern void bpf_task_release(struct task_struct *p) __ksym;
#endif

struct {
  __uint(type, BPF_MAP_TYPE_RINGBUF);
  __uint(max_entries, 4 << 20); /* --bpf-ringbuf-bytes */
} events SEC(".maps");

WL_DECLARE_DROPS();

/* The `oncpu` key a task's time is charged under. */
static __always_inline struct wl_sched_key wl_key_of(struct task_struct *t) {
  struct wl_sched_key key = {
      .tgid = t->tgid,
      .start_ns = wl_process_start_ns(t),
      .cgroup_id = wl_task_workload_cgroup(t),
  };
  return key;
}

/* Adds `delta` to prev's slot on this CPU; false (counted) if the map is
 * full. */
static __always_inline bool wl_charge(struct task_struct *prev, __u64 delta) {
  struct wl_sched_key key = wl_key_of(prev);
  __u64 *val = bpf_map_lookup_elem(&oncpu, &key);
  if (val) {
    *val += delta;
    return true;
  }
  long err = bpf_map_update_elem(&oncpu, &key, &delta, BPF_NOEXIST);
  if (err == -EEXIST) {
    val = bpf_map_lookup_elem(&oncpu, &key);
    if (val) {
      *val += delta;
      return true;
    }
  }
  if (err) {
    wl_count_drop(WL_DROP_SCHED_MAP_FULL);
    return false;
  }
  return true;
}

/* Fills a lifecycle record from `task` (its process's fields). */
static __always_inline void wl_fill_event(struct wl_event *e, __u32 type,
                                          struct task_struct *task,
                                          __u64 cgroup_id) {
  e->type = type;
  e->tgid = BPF_CORE_READ(task, tgid);
  e->ppid = BPF_CORE_READ(task, real_parent, tgid);
  e->exit_code = type == WL_EVENT_EXIT ? BPF_CORE_READ(task, exit_code) : 0;
  e->start_ns = wl_process_start_ns(task);
  e->cgroup_id = cgroup_id;
  e->timestamp_ns = bpf_ktime_get_ns();
  BPF_CORE_READ_STR_INTO(&e->comm, task, group_leader, comm);
}

/* Submits a reserved record, waking the reader only past wakeup_bytes. */
static __always_inline void wl_submit(void *e) {
  __u64 flags = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= wakeup_bytes
                    ? BPF_RB_FORCE_WAKEUP
                    : BPF_RB_NO_WAKEUP;
  bpf_ringbuf_submit(e, flags);
}

static __always_inline void wl_emit(__u32 type, struct task_struct *task,
                                    __u64 cgroup_id) {
  struct wl_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
  if (!e) {
    wl_count_drop(WL_DROP_RINGBUF_RESERVE);
    return;
  }
  wl_fill_event(e, type, task, cgroup_id);
  wl_submit(e);
}

/* The task's charged-runtime slot (created with `flags` =
 * BPF_LOCAL_STORAGE_GET_F_CREATE), or NULL. */
static __always_inline __u64 *wl_charged_slot(struct task_struct *t,
                                              __u64 flags) {
  struct wl_task_state *st = bpf_task_storage_get(&task_runtime, t, 0, flags);
  return st ? &st->charged : NULL;
}

/* --- sched_switch -------------------------------------------------------- */

/* task_struct.state was renamed __state in 5.14. */
struct task_struct___pre514 {
  volatile long state;
} __attribute__((preserve_access_index));

/* The switching-out task's state, read from the task: the tracepoint's own
 * prev_state argument only exists from 5.18 on. A dying task's state is
 * TASK_DEAD before it enters __schedule() and nothing changes it after, so
 * the task's field is as good as the argument for the one state read here. */
static __always_inline unsigned int wl_task_state(struct task_struct *t) {
  if (bpf_core_field_exists(t->__state)) return t->__state;
  return ((struct task_struct___pre514 *)t)->state;
}

SEC("tp_btf/sched_switch")
int BPF_PROG(wl_sched_switch, bool preempt, struct task_struct *prev,
             struct task_struct *next) {
  if (!prev || prev->pid == 0) return 0; /* the idle task */
  __u64 runtime = prev->se.sum_exec_runtime;
  __u64 *seen = wl_charged_slot(prev, 0);
  __u64 delta;
  if (seen) {
    delta = runtime - *seen;
  } else {
    delta = prev->start_time >= load_ns ? runtime : 0;
    seen = wl_charged_slot(prev, BPF_LOCAL_STORAGE_GET_F_CREATE);
    if (!seen) {
      wl_count_drop(WL_DROP_TASK_STORAGE);
      return 0;
    }
  }
  *seen = runtime;
  if (delta) wl_charge(prev, delta);
  if (wl_task_state(prev) == WL_TASK_DEAD && prev->signal->live.counter == 0)
    wl_emit(WL_EVENT_EXIT, prev, wl_task_workload_cgroup(prev));
  return 0;
}

/* Charges the task running on this CPU with its slice so far, so that a
 * task that runs for seconds without switching out (alone on its CPU) is
 * not charged late in one chunk. Not attached: the agent runs it on every
 * CPU before each read of oncpu (BPF_PROG_TEST_RUN with
 * BPF_F_TEST_RUN_ON_CPU, an IPI). Interrupts are off while sched_switch
 * runs, so the two never interleave on a CPU, and the running task's
 * storage and this CPU's slot have one writer at a time: no atomics, and
 * nothing added to sched_switch. sum_exec_runtime is as of the task's last
 * update_curr() (at the latest the last tick), so up to a tick of the
 * slice is left for the next harvest or the switch-out. */
SEC("raw_tp")
int wl_sched_harvest(void *ctx) {
  struct task_struct *task = bpf_get_current_task_btf();
  if (task->pid == 0) return 0; /* idle */
  __u64 runtime = task->se.sum_exec_runtime;
  __u64 *seen = wl_charged_slot(task, 0);
  __u64 delta;
  if (seen) {
    delta = runtime - *seen;
  } else { /* as at a first switch-out */
    delta = task->start_time >= load_ns ? runtime : 0;
    seen = wl_charged_slot(task, BPF_LOCAL_STORAGE_GET_F_CREATE);
    if (!seen) return 0; /* left to the switch-out */
  }
  /* On a full map the slice stays with the task for its switch-out. */
  if (!delta || wl_charge(task, delta)) *seen = runtime;
  return 0;
}

/* --- sampled ----------------------------------------------------------- */

/* Adds `delta` to `key` on the CPU `task` last ran on, atomically (an exit
 * on another CPU may add to the same slot). False (counted) if the map is
 * full. */
static __always_inline bool wl_charge_atomic(struct task_struct *task,
                                             const struct wl_sched_key *key,
                                             __u64 delta) {
  __u32 cpu = task->thread_info.cpu;
  __u64 *val = bpf_map_lookup_percpu_elem(&oncpu, key, cpu);
  if (!val) {
    __u64 zero = 0;
    long err = bpf_map_update_elem(&oncpu, key, &zero, BPF_NOEXIST);
    if (err && err != -EEXIST) {
      wl_count_drop(WL_DROP_SCHED_MAP_FULL);
      return false;
    }
    val = bpf_map_lookup_percpu_elem(&oncpu, key, cpu);
    if (!val) val = bpf_map_lookup_elem(&oncpu, key); /* this CPU's */
    if (!val) {
      wl_count_drop(WL_DROP_SCHED_MAP_FULL);
      return false;
    }
  }
  __sync_fetch_and_add(val, delta);
  return true;
}

/* Charges `task` with its runtime since it was last charged, under `key`
 * (NULL: its current one, built only if there is something to charge);
 * returns its state (NULL, counted, without memory for it). */
static __always_inline struct wl_task_state *wl_sample(
    struct task_struct *task, const struct wl_sched_key *key) {
  __u64 runtime = task->se.sum_exec_runtime;
  struct wl_task_state *st = bpf_task_storage_get(
      &task_runtime, task, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
  if (!st) {
    wl_count_drop(WL_DROP_TASK_STORAGE);
    return NULL;
  }
  __u64 *seen = &st->charged;
  __u64 old = *seen;
  /* A new slot reads 0: a thread started since load is charged from its
   * start; one older than the agent from now on (its past is not ours; the
   * agent samples once right after attaching, so only a thread that ends
   * in between loses what it ran since the load). No thread that has run
   * has a runtime of 0. */
  if (old == 0 && task->start_time < load_ns) {
    __sync_val_compare_and_swap(seen, 0, runtime);
    return st;
  }
  /* Claim [old, runtime) with a compare-and-swap; whoever loses retries with
   * the winner's value, so the interval is charged exactly once whichever
   * sampler read the larger runtime. */
  for (int i = 0; i < 4; i++) {
    if (runtime <= old) return st;
    __u64 prev = __sync_val_compare_and_swap(seen, old, runtime);
    if (prev == old) {
      struct wl_sched_key own;
      if (!key) {
        own = wl_key_of(task);
        key = &own;
      }
      /* Map full: give the interval back for the next sample, if no one
       * has moved on since (else it is lost, and counted). */
      if (!wl_charge_atomic(task, key, runtime - old))
        __sync_val_compare_and_swap(seen, runtime, old);
      return st;
    }
    old = prev;
  }
  wl_count_drop(WL_DROP_CAS_RETRY_DEFERRED); /* left for the next sample */
  return st;
}

/* One held thread, at the end of a drain's walk: if it has switched out
 * dead its runtime is final (nothing calls update_curr() on it again), so
 * its remainder is charged and the reference dropped; if it was its
 * process's last held thread and none is left alive, the process's EXIT
 * goes out. Otherwise it stays for the next drain. */
static long wl_reap_one(struct bpf_map *map, __u64 *addr, struct wl_dying *d,
                        void *ctx) {
  struct task_struct *t = bpf_kptr_xchg(&d->task, NULL);
  if (!t) {
    bpf_map_delete_elem(map, addr);
    return 0;
  }
  if (t->__state != WL_TASK_DEAD || t->on_cpu) {
    t = bpf_kptr_xchg(&d->task, t);
    if (t) bpf_task_release(t); /* cannot happen: this walk is the only one */
    return 0;
  }
  wl_sample(t, &d->key);
  const bool group_dead = t->signal->live.counter == 0;
  if (t->pid == t->tgid) d->exit.exit_code = t->exit_code;
  bpf_task_release(t);

  struct wl_sched_key proc = d->key;
  proc.cgroup_id = 0;
  __u64 *n = bpf_map_lookup_elem(&held_threads, &proc);
  const bool last = !n || __sync_fetch_and_add(n, -1) == 1;
  if (last) bpf_map_delete_elem(&held_threads, &proc);
  if (last && group_dead) {
    struct wl_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
    if (e) {
      __builtin_memcpy(e, &d->exit, sizeof(*e));
      e->timestamp_ns = bpf_ktime_get_ns();
      wl_submit(e);
    } else {
      wl_count_drop(WL_DROP_RINGBUF_RESERVE);
    }
  }
  bpf_map_delete_elem(map, addr);
  return 0;
}

/* Every thread, at each drain (the agent reads an iterator fd); the call
 * after the last thread (task NULL) reaps the held exiting ones. */
SEC("iter/task")
int wl_sched_sample(struct bpf_iter__task *ctx) {
  struct task_struct *task = ctx->task;
  if (task)
    wl_sample(task, NULL);
  else
    bpf_for_each_map_elem(&dying, wl_reap_one, NULL, 0);
  return 0;
}

/* Holds an exiting thread in `dying` until a drain finds it switched out
 * dead; false (counted) if there is no room, leaving it to its free. */
static __always_inline bool wl_hold(struct task_struct *task,
                                    const struct wl_sched_key *key) {
  __u64 addr = (__u64)task;
  struct wl_dying init = {.key = *key};
  /* The process's EXIT as known now; the exit code is final once its
   * leader has exited (re-read at the reap if this is the leader). */
  wl_fill_event(&init.exit, WL_EVENT_EXIT, task, key->cgroup_id);
  init.exit.exit_code = task->group_leader->exit_code;
  if (bpf_map_update_elem(&dying, &addr, &init, BPF_NOEXIST)) return false;
  struct wl_dying *d = bpf_map_lookup_elem(&dying, &addr);
  struct task_struct *ref = d ? bpf_task_acquire(task) : NULL;
  if (!ref) { /* cannot happen before the task is released */
    bpf_map_delete_elem(&dying, &addr);
    return false;
  }
  ref = bpf_kptr_xchg(&d->task, ref);
  if (ref) bpf_task_release(ref);
  /* Counted only once held. No reap can interleave: the task is running
   * here, and a reap takes only threads that have switched out dead. */
  struct wl_sched_key proc = *key;
  proc.cgroup_id = 0;
  __u64 one = 1;
  __u64 *n = bpf_map_lookup_elem(&held_threads, &proc);
  if (n) {
    __sync_fetch_and_add(n, 1);
  } else if (bpf_map_update_elem(&held_threads, &proc, &one, BPF_NOEXIST)) {
    n = bpf_map_lookup_elem(&held_threads, &proc); /* a racing insert */
    if (n) __sync_fetch_and_add(n, 1);
  }
  return true;
}

/* Every thread's exit, in its own context: charges what it ran so far,
 * announces EXITING for the last thread of its process, and holds the task
 * for the drain that charges its remainder (wl_reap_one). */
SEC("tp_btf/sched_process_exit")
int BPF_PROG(wl_sched_exit, struct task_struct *task) {
  struct wl_sched_key key = wl_key_of(task);
  struct wl_task_state *st = wl_sample(task, &key);
  if (task->signal->live.counter == 0)
    wl_emit(WL_EVENT_EXITING, task, key.cgroup_id);
  if (!st) return 0; /* counted; its remainder is charged at its free */
  if (wl_hold(task, &key))
    st->held = 1;
  else
    wl_count_drop(WL_DROP_SCHED_DYING_FULL); /* left to its free */
  return 0;
}

/* The fallback for threads `dying` had no room for: when the task is freed
 * its runtime is final (after its last switch-out and its release), and the
 * group leader is released last. For held threads this finds nothing left
 * to charge. The free runs in RCU callback
 * context (softirq), on top of whatever task is current; on the machine
 * this was built on, BPF programs never run there while a thread of PID 1
 * (the sandbox's init) is current (ftrace records those frees; tp_btf and
 * perf tracepoint programs both miss them, with no recursion miss counted),
 * which is why the held path exists. */
SEC("tp_btf/sched_process_free")
int BPF_PROG(wl_sched_free, struct task_struct *task) {
  if (!task || task->pid == 0) return 0;
  struct wl_task_state *st = wl_sample(task, NULL);
  /* A held leader's process ends at a reap instead. */
  if (task->pid == task->tgid && !(st && st->held))
    wl_emit(WL_EVENT_EXIT, task, wl_task_workload_cgroup(task));
  return 0;
}

/* --- both ---------------------------------------------------------------- */

SEC("tp_btf/sched_process_fork")
int BPF_PROG(wl_sched_fork, struct task_struct *parent,
             struct task_struct *child) {
  if (child->pid != child->tgid) return 0; /* a thread, not a process */
  /* The child starts in the parent's cgroup (cgroup_post_fork has run). */
  wl_emit(WL_EVENT_FORK, child, wl_task_workload_cgroup(child));
  return 0;
}

/* --- executables ---------------------------------------------------------- */

/* EXEC carries the file the process now runs (for a script, its
 * interpreter, as /proc/<pid>/exe), so that the agent needs no ptrace
 * access to name it. */
SEC("tp_btf/sched_process_exec")
int BPF_PROG(wl_sched_exec, struct task_struct *task, pid_t old_pid,
             struct linux_binprm *bprm) {
  struct wl_exec_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
  if (!e) {
    wl_count_drop(WL_DROP_RINGBUF_RESERVE);
    return 0;
  }
  wl_fill_event(&e->event, WL_EVENT_EXEC, task, wl_task_workload_cgroup(task));
  struct wl_exe_path *path =
      exe_paths ? wl_file_path(BPF_CORE_READ(bprm, file)) : NULL;
  if (path) {
    bpf_probe_read_kernel(&e->exe, sizeof(e->exe), path);
  } else {
    /* No path, not a lost one: the agent reads /proc/<pid>/exe. */
    e->exe.len = 0;
    e->exe.truncated = 0;
  }
  wl_submit(&e->event);
  return 0;
}
