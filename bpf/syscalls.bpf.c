// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/* Syscall counts per process (tgid + start time), cgroup and syscall number.
 *
 * One hook, raw_syscalls:sys_exit (tp_btf), counts both calls and failures:
 * the syscall number is in regs->orig_ax and the return value is an argument,
 * so there is no need for sys_enter, whose dispatch would double the cost
 * every syscall on the node pays. The only syscalls that never reach sys_exit
 * are exit and exit_group; sched_process_exit counts those from the exiting
 * task's saved registers.
 *
 * The hot path makes no helper call: counts go to a per-CPU cache
 * (percpu_cache.bpf.h, which states why it is exact) of WL_WAYS ways, one
 * per thread that ran on the CPU, and reach `syscall_counts` (the hash the
 * agent reads) when a way changes owner, when the agent flushes, or when a
 * syscall number collides in its way.
 *
 * A way is tagged with the thread's syscall pt_regs address, fixed for the
 * thread's life (it is on its kernel stack), so the hot path needs neither
 * bpf_get_current_task_btf() nor a key. A kernel stack is reused only after
 * its thread exits, and a thread keeps its process (exec keeps tgid and
 * start time) but not its cgroup: so thread exits and cgroup migrations bump
 * `owner_gen`, and a way tagged in an older generation is checked against
 * the task (tgid, start, cgroup) on its next use; for another owner its
 * counts are folded into the hash first. */
#include "percpu_cache.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Set by the agent between open and load (native syscall numbers). */
const volatile __u32 exit_nr = 60;
const volatile __u32 exit_group_nr = 231;
/* bpf_task_pt_regs() exists (probed); else the registers are found at the
 * top of the exiting task's kernel stack, as task_pt_regs() finds them. */
const volatile bool have_task_pt_regs = true;

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_HASH);
  __uint(max_entries, 16384); /* overridden from --bpf-syscall-map-entries */
  __type(key, struct wl_syscall_key);
  __type(value, struct wl_syscall_val);
} syscall_counts SEC(".maps");

WL_DECLARE_DROPS();

/* The per-CPU cache. A way holds one thread's counts, one entry per
 * syscall number modulo WL_WAY_NRS; a number that finds its entry taken by
 * another number moves that entry's counts to the hash and takes it over.
 * 16 ways of 64 entries: 25 KiB per CPU (a per-CPU value may not exceed
 * 32 KiB). */
#define WL_WAYS 16    /* power of two */
#define WL_WAY_NRS 64 /* power of two */

struct wl_nr_count {
  __u64 calls; /* 0: entry empty */
  __u64 failed;
  __u32 nr;
  __u32 pad;
};

struct wl_way {
  __u64 regs;      /* owner thread's pt_regs address; 0: never used */
  __u64 owner_gen; /* owner_gen when the owner was last checked */
  struct wl_syscall_key key; /* the owner's process and cgroup (nr unused) */
  struct wl_nr_count e[WL_WAY_NRS];
};

struct wl_syscall_cache {
  __u64 busy; /* non-zero: inside a bracket (percpu_cache.bpf.h) */
  struct wl_way ways[WL_WAYS];
};

/* Bumped (atomically) at every thread exit and cgroup migration. */
__u64 owner_gen = 0;

static __always_inline long wl_syscall_nr(struct pt_regs *regs) {
#if defined(__TARGET_ARCH_x86)
  return regs->orig_ax;
#elif defined(__TARGET_ARCH_arm64)
  return regs->syscallno;
#else
#error "wattlens: add this architecture's syscall-number register"
#endif
}

/* Global (not static) functions: the verifier checks each once, on its own,
 * instead of once per call site and loop iteration, which keeps the flush
 * loops within its budget. Pointer arguments of global functions may be
 * NULL as far as it knows, hence the checks. */
__noinline int wl_hash_add(struct wl_syscall_key *arg, __u64 calls,
                           __u64 failed) {
  if (!arg) return 0;
  /* Map helpers take keys from the stack on kernels before 6.2 (a global
   * function's pointer argument is not accepted as a key there). */
  struct wl_syscall_key k = *arg;
  struct wl_syscall_key *key = &k;
  struct wl_syscall_val *val = bpf_map_lookup_elem(&syscall_counts, key);
  if (val) {
    /* Per-CPU value: only this CPU writes it, a plain add is exact. */
    val->calls += calls;
    val->failed += failed;
    return 0;
  }
  struct wl_syscall_val init = {.calls = calls, .failed = failed};
  long err = bpf_map_update_elem(&syscall_counts, key, &init, BPF_NOEXIST);
  if (err == -EEXIST) {
    /* Another CPU created it between our lookup and update. */
    val = bpf_map_lookup_elem(&syscall_counts, key);
    if (val) {
      val->calls += calls;
      val->failed += failed;
      return 0;
    }
  }
  if (err) {
    __u32 r = WL_DROP_SYSCALL_MAP_FULL;
    __u64 *d = bpf_map_lookup_elem(&drops, &r);
    if (d) *d += calls; /* lost calls, per-CPU slot */
  }
  return 0;
}

/* Moves a way's counts into the hash; the way keeps its owner. */
__noinline int wl_flush_way(struct wl_way *w) {
  if (!w) return 0;
  struct wl_syscall_key key = w->key;
  for (__u32 i = 0; i < WL_WAY_NRS; ++i) {
    struct wl_nr_count *e = &w->e[i];
    if (!e->calls) continue;
    key.nr = e->nr;
    wl_hash_add(&key, e->calls, e->failed);
    e->calls = 0;
    e->failed = 0;
  }
  return 0;
}

WL_PERCPU_CACHE(cache, wl_syscall_cache, WL_WAYS, wl_flush_way, wl_sys_flush);

static __always_inline void wl_task_key(struct task_struct *task, __u32 nr,
                                        struct wl_syscall_key *key) {
  key->tgid = task->tgid;
  key->nr = nr;
  key->start_ns = wl_process_start_ns(task);
  key->cgroup_id = wl_task_cgroup_id(task);
}

static __always_inline __u32 wl_way_of(__u64 regs) {
  /* Kernel stacks are THREAD_SIZE (16 KiB) aligned: hash the stack index. */
  return wl_cache_hash(regs >> 14, 4);
}
_Static_assert(WL_WAYS == 16, "wl_way_of takes the top 4 bits");

static __always_inline void wl_tag(struct wl_way *w, __u64 regs, __u64 gen) {
  w->regs = regs;
  w->owner_gen = gen;
}

static __always_inline bool wl_same_owner(struct wl_way *w,
                                          struct wl_syscall_key *key) {
  return w->key.tgid == key->tgid && w->key.start_ns == key->start_ns &&
         w->key.cgroup_id == key->cgroup_id;
}

/* The way of the current thread: its hashed way or that way's partner. */
static __always_inline struct wl_way *wl_way_for(struct wl_syscall_cache *c,
                                                 __u64 regs, __u64 gen) {
  __u32 h = wl_way_of(regs);
  struct wl_way *w = &c->ways[h];
  if (w->regs == regs && w->owner_gen == gen) return w;
  struct wl_way *p = &c->ways[h ^ 1];
  if (p->regs == regs && p->owner_gen == gen) return p;
  /* Another thread's ways, or the owner may have changed: check the task,
   * and keep a way that already counts for its process and cgroup. */
  struct wl_syscall_key key;
  wl_task_key(bpf_get_current_task_btf(), 0, &key);
  if (!wl_same_owner(w, &key)) {
    if (wl_same_owner(p, &key)) {
      w = p;
    } else {
      /* Take the hashed way, or its partner if another thread has
       * checked the hashed way since the generation last changed. */
      if (w->owner_gen == gen) w = p;
      wl_flush_way(w);
      w->key = key;
    }
  }
  wl_tag(w, regs, gen);
  return w;
}

static __always_inline void wl_count_cached(struct wl_way *w, __u32 nr,
                                            __u32 failed) {
  struct wl_nr_count *e = &w->e[nr & (WL_WAY_NRS - 1)];
  if (e->nr != nr) {
    /* Another number holds the entry: the newest one takes it over. */
    if (e->calls) {
      struct wl_syscall_key key = w->key;
      key.nr = e->nr;
      wl_hash_add(&key, e->calls, e->failed);
      e->calls = 0;
      e->failed = 0;
    }
    e->nr = nr;
  }
  e->calls += 1;
  e->failed += failed;
}

SEC("tp_btf/sys_exit")
int BPF_PROG(wl_sys_exit, struct pt_regs *regs, long ret) {
  long nr = wl_syscall_nr(regs);
  if (nr < 0) return 0; /* not a syscall (e.g. skipped by seccomp/ptrace) */
  __u32 zero = 0;
  struct wl_syscall_cache *c = bpf_map_lookup_elem(&cache, &zero);
  if (!c) return 0;
  __u64 gen = owner_gen;
  wl_cache_enter(&c->busy, (__u64)regs);
  __u64 r = wl_cache_tag(&c->busy);
  wl_count_cached(wl_way_for(c, r, gen), (__u32)nr, ret < 0 && ret >= -4095);
  wl_cache_leave(&c->busy);
  return 0;
}

#if defined(__TARGET_ARCH_x86)
#define WL_THREAD_SIZE (4096 << 2) /* THREAD_SIZE_ORDER 2, no KASAN */
#endif

/* The syscall number in an exiting task's saved user registers. */
static __always_inline long wl_exit_syscall_nr(struct task_struct *task) {
  if (have_task_pt_regs) {
    struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(task);
    return regs ? wl_syscall_nr(regs) : -1;
  }
#if defined(__TARGET_ARCH_x86)
  __u64 top = (__u64)BPF_CORE_READ(task, stack) + WL_THREAD_SIZE;
  struct pt_regs *regs = (struct pt_regs *)top - 1;
  long nr = -1;
  bpf_probe_read_kernel(&nr, sizeof(nr), &regs->orig_ax);
  return nr;
#else
  return -1;
#endif
}

/* exit() and exit_group() never return, so sys_exit never sees them. Every
 * thread exit also retires its way tags: its kernel stack may be reused. */
SEC("tp_btf/sched_process_exit")
int BPF_PROG(wl_sys_exit_task, struct task_struct *task) {
  __sync_fetch_and_add(&owner_gen, 1);
  long nr = wl_exit_syscall_nr(task);
  if (nr != exit_nr && nr != exit_group_nr) return 0; /* killed, not a call */
  struct wl_syscall_key key;
  wl_task_key(task, (__u32)nr, &key);
  /* A bracket here too: a flush on this CPU must not interleave with this
   * update of the hash and drop counter it also updates. */
  __u32 zero = 0;
  struct wl_syscall_cache *c = bpf_map_lookup_elem(&cache, &zero);
  if (!c) return 0;
  wl_cache_enter(&c->busy, 1);
  wl_hash_add(&key, 1, 0);
  wl_cache_leave(&c->busy);
  return 0;
}

/* A thread moved to another cgroup: revalidate every way. */
SEC("tp_btf/cgroup_attach_task")
int BPF_PROG(wl_sys_cgroup_move, struct cgroup *dst, const char *path,
             struct task_struct *task, bool threadgroup) {
  __sync_fetch_and_add(&owner_gen, 1);
  return 0;
}
