// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/* A per-CPU cache in front of a PERCPU_HASH of counters, and the flush the
 * agent runs on every CPU before it reads the hash. BPF side only.
 *
 * Why: a hash update costs tens of nanoseconds (helper calls), a per-CPU
 * array access, which the verifier inlines, a few. Hot paths that fire on
 * every syscall or socket I/O add to a way of this CPU's cache instead, and
 * the counts reach the hash only when a way is folded into it: on eviction
 * (another owner takes the way) or when the agent flushes.
 *
 * A user defines
 *   struct <cache> { __u64 busy; struct <way> ways[N]; ...anything else };
 *                                            (busy first)
 *   __noinline int <fold>(struct <way> *w);  adds w's counts to the hash
 *                                            and zeroes them; w keeps its key
 * then declares the map and its flush program with WL_PERCPU_CACHE(), and
 * brackets every access to the cache with wl_cache_enter()/wl_cache_leave().
 *
 * Invariant: every count is in one place, a way of the CPU it was counted
 * on or that CPU's slot of the hash, and moves from way to hash (fold, then
 * zero) only on that CPU, in a program run nothing else on the CPU can
 * split: inside a busy bracket, or in a flush that found busy clear. A flush
 * runs in an interrupt on its CPU (BPF_PROG_TEST_RUN with
 * BPF_F_TEST_RUN_ON_CPU), so it can land inside a bracket: it then moves
 * nothing and returns WL_FLUSH_BUSY, and the agent runs it again. Hence,
 * once the flush has returned WL_FLUSH_DONE on every online CPU, the hash
 * holds every count added before, once; and a key the agent deletes after
 * its owner exited and a later flush has no counts left in any way. A CPU
 * that is offline keeps its ways until it is back and flushed (late counts
 * of a deleted key come back under a new entry).
 *
 * Broken invariants show as a lost or doubled count in
 * tests/bpf/syscall_cache_bpf_test.cc and tests/bpf/net_cache_bpf_test.cc
 * (ExactWhileFlushedConcurrentlyAndEvicted: flush-while-counting and
 * eviction against ground truth), and as a wrong WL_FLUSH_* code in
 * PerCpuCacheBpfTest.FlushReturnsBusyInsideABracket
 * (syscall_cache_bpf_test). */
#ifndef WATTLENS_BPF_INCLUDE_PERCPU_CACHE_BPF_H_
#define WATTLENS_BPF_INCLUDE_PERCPU_CACHE_BPF_H_

#include "wattlens.bpf.h"

/* `map`: a one-entry PERCPU_ARRAY of `struct cache_type`. `flush_prog`: a
 * raw_tp program, never attached, that folds each of the `nways` ways of
 * this CPU's cache with `fold`, or returns WL_FLUSH_BUSY inside a bracket. */
#define WL_PERCPU_CACHE(map, cache_type, nways, fold, flush_prog)    \
  struct {                                                           \
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);                         \
    __uint(max_entries, 1);                                          \
    __type(key, __u32);                                              \
    __type(value, struct cache_type);                                \
  } map SEC(".maps");                                                \
  _Static_assert(__builtin_offsetof(struct cache_type, busy) == 0,   \
                 "busy comes first: tests open a bracket by it");    \
                                                                     \
  SEC("raw_tp")                                                      \
  int flush_prog(void *ctx) {                                        \
    __u32 zero = 0;                                                  \
    struct cache_type *c = bpf_map_lookup_elem(&map, &zero);         \
    if (!c) return WL_FLUSH_DONE;                                    \
    if (*(volatile __u64 *)&c->busy) return WL_FLUSH_BUSY;           \
    for (__u32 i = 0; i < (nways); ++i) fold(&c->ways[i]);           \
    return WL_FLUSH_DONE;                                            \
  }

/* Opens a bracket: from here until wl_cache_leave() a flush on this CPU
 * leaves the cache alone. `tag` must be non-zero. The volatile accesses and
 * compiler barriers keep every cache access inside the bracket. */
static __always_inline void wl_cache_enter(__u64 *busy, __u64 tag) {
  *(volatile __u64 *)busy = tag;
  asm volatile("" ::: "memory");
}

/* The open bracket's tag, read back from the cache: this turns a pointer
 * passed as the tag into a number the verifier lets the caller shift (it
 * refuses shifts of pointers, not of map contents). */
static __always_inline __u64 wl_cache_tag(__u64 *busy) {
  return *(volatile __u64 *)busy;
}

static __always_inline void wl_cache_leave(__u64 *busy) {
  asm volatile("" ::: "memory");
  *(volatile __u64 *)busy = 0;
}

/* The index of `x` in a table of 2^bits entries (Fibonacci hashing). Ways
 * are looked up at this index and its partner (index ^ 1), so two owners
 * that hash alike, e.g. the two ends of a ping-pong, keep a way each. */
static __always_inline __u32 wl_cache_hash(__u64 x, unsigned bits) {
  return (x * 0x9E3779B97F4A7C15ULL) >> (64 - bits);
}

#endif /* WATTLENS_BPF_INCLUDE_PERCPU_CACHE_BPF_H_ */
