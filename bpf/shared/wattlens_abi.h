// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/* The kernel/user ABI of Wattlens: every map key, map value and ring-buffer
 * record shared between the bpf/ objects and the agent. Plain C, fixed-width
 * types, explicit padding, no implicit holes: the agent mirrors each size with
 * a static_assert (agent/bpf/abi.h), so a change here that is not mirrored
 * fails the build instead of corrupting reads. */
#ifndef WATTLENS_BPF_SHARED_ABI_H_
#define WATTLENS_BPF_SHARED_ABI_H_

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define WL_COMM_LEN 16

/* Things the kernel side counts in each object's per-CPU `drops` array,
 * indexed by reason. All but WL_DROP_CAS_RETRY_DEFERRED lose something; the
 * agent maps each onto its DropReason (agent/state/drops.h), which says
 * whether it is exported as a lost event. */
enum wl_drop_reason {
  WL_DROP_SYSCALL_MAP_FULL = 0, /* (tgid, syscall) counter map full */
  WL_DROP_SCHED_MAP_FULL = 1,   /* on-CPU (tgid, cgroup) map full */
  WL_DROP_RINGBUF_RESERVE = 2,  /* lifecycle ring buffer full */
  WL_DROP_TASK_STORAGE = 3,     /* no memory for a task's runtime slot */
  WL_DROP_NET_MAP_FULL = 4,     /* (process, cgroup, class) network map full */
  WL_DROP_SOCK_STORAGE = 5,     /* no memory for a socket's owner record */
  WL_DROP_SCHED_DYING_FULL = 6, /* exiting thread not held (map full): its
                                   remainder waits for its free */
  WL_DROP_CAS_RETRY_DEFERRED = 7, /* a runtime slice not claimed after the
                                     compare-and-swap retries: nothing is
                                     lost, the next sample charges it */
  WL_DROP_MAX = 8, /* exactly the number of reasons: every slot is read */
};

/* A process is (tgid, start time): PID reuse cannot merge two processes.
 * start_ns is the thread-group leader's start_boottime (ns since boot,
 * suspend included), which /proc/<pid>/stat reports in clock ticks. */

/* syscalls.bpf.c: PERCPU_HASH `syscall_counts`. Keyed by cgroup too, like
 * on-CPU time and network: a process moved between cgroups charges each the
 * calls it made there. */
struct wl_syscall_key {
  __u32 tgid;
  __u32 nr; /* syscall number of the native ABI */
  __u64 start_ns;
  __u64 cgroup_id;
};

struct wl_syscall_val {
  __u64 calls;
  __u64 failed; /* returned -4095..-1 */
};

/* sched.bpf.c: PERCPU_HASH `oncpu`. Keyed by cgroup too, so a process that
 * moves between cgroups charges each its own time exactly. */
struct wl_sched_key {
  __u32 tgid;
  __u32 pad;
  __u64 start_ns;
  __u64 cgroup_id; /* cgroup v2 id (kernfs inode) */
};

/* The cgroup id that kernel threads (PF_KTHREAD) are keyed under in `oncpu`
 * and in lifecycle events. They all sit in the root cgroup, but they are a
 * workload of their own, `kernel`, not the root cgroup's. No real cgroup has
 * this id: a cgroup v2 id is a kernfs id, inode | generation << 32, and the
 * generation only grows when 32-bit inode numbers wrap. */
#define WL_CGROUP_KERNEL 0xfffffffffffffffeULL

enum wl_event_type {
  WL_EVENT_EXEC = 1,
  WL_EVENT_FORK = 2,    /* a new process, not a new thread */
  WL_EVENT_EXIT = 3,    /* the process ended and its CPU time is in `oncpu`
                           (sampled: a drain found its group leader switched
                           out dead, or it was freed; sched_switch: its last
                           thread switched out dead) */
  WL_EVENT_EXITING = 4, /* sampled only: the last thread of the process
                           began to exit; EXIT follows at the next drain */
};

/* The only record that crosses the ring buffer: rare lifecycle events. */
struct wl_event {
  __u32 type; /* enum wl_event_type */
  __u32 tgid;
  __u32 ppid;
  __u32 exit_code;
  __u64 start_ns;
  __u64 cgroup_id;
  __u64 timestamp_ns; /* bpf_ktime_get_ns() */
  char comm[WL_COMM_LEN];
};

/* The executable a process runs, as the path of the file the kernel maps
 * (what /proc/<pid>/exe names), built in the kernel by walking dentries and
 * mounts up to the root of the process's mount namespace: reading
 * /proc/<pid>/exe needs ptrace access to the process, which an agent with only
 * CAP_BPF and CAP_PERFMON lacks for root's processes. The names go leaf first,
 * each NUL-terminated, in `names[0, len)`; the agent reverses them. */
#define WL_EXE_PATH_MAX 512 /* bytes of names kept; a power of two */
#define WL_EXE_NAME_MAX 256 /* NAME_MAX + 1: room for one more name */
#define WL_EXE_DEPTH 32     /* dentries and mount crossings walked */

struct wl_exe_path {
  __u32 len;
  __u32 truncated; /* 1: deeper or longer than kept; the agent ignores it */
  char names[WL_EXE_PATH_MAX + WL_EXE_NAME_MAX];
};

/* sched.bpf.c, ring buffer: an EXEC record (type WL_EVENT_EXEC) carries the
 * new executable after the common fields. The other types are a bare
 * wl_event. */
struct wl_exec_event {
  struct wl_event event;
  struct wl_exe_path exe;
};

/* sched.bpf.c, iter/task `wl_exe_scan`: one record per process, read once
 * at start for the processes that exec'd before the agent. */
struct wl_exe_record {
  __u32 tgid;
  __u32 pad;
  __u64 start_ns;
  struct wl_exe_path exe;
};

/* network.bpf.c. Where traffic goes decides what it costs. The class of a
 * socket's peer comes from two LPM tries the agent fills (longest prefix
 * wins: a node address inside a cluster CIDR is `node`); no match is
 * `internet`. Sockets without a peer (unconnected UDP) are `unknown`. */
enum wl_net_class {
  WL_NET_NODE = 0,    /* loopback and this node's addresses */
  WL_NET_CLUSTER = 1, /* configured pod and service CIDRs */
  WL_NET_PRIVATE = 2, /* other RFC 1918 / RFC 6598 / ULA / link-local */
  WL_NET_INTERNET = 3,
  WL_NET_UNKNOWN = 4,
  WL_NET_CLASSES = 5,
};

struct wl_lpm_v4_key {
  __u32 prefixlen;
  __u8 addr[4]; /* network byte order */
};

struct wl_lpm_v6_key {
  __u32 prefixlen;
  __u8 addr[16];
};

/* PERCPU_HASH `net_counts`. tgid 0 means the socket's owner process was never
 * seen (e.g. closed before any I/O): the cgroup still gets the count. */
struct wl_net_key {
  __u32 tgid;
  __u32 net_class; /* enum wl_net_class */
  __u64 start_ns;
  __u64 cgroup_id;
};

struct wl_net_val {
  __u64 tx_bytes;
  __u64 rx_bytes;
  __u64 tx_packets; /* UDP: datagrams; TCP: send calls that moved data */
  __u64 rx_packets;
  __u64 connects; /* TCP active opens */
  __u64 accepts;  /* TCP passive opens, charged to the accepting process */
  __u64 closes;   /* opened TCP connections that reached CLOSE */
  __u64 retransmits;
};

/* What the per-CPU cache flush programs (syscalls.bpf.c wl_sys_flush,
 * network.bpf.c wl_net_flush) return to BPF_PROG_TEST_RUN. BUSY: the flush
 * interrupted a program using that CPU's cache and moved nothing; the agent
 * runs it again. */
enum wl_flush_result {
  WL_FLUSH_DONE = 0,
  WL_FLUSH_BUSY = 1,
};

#endif /* WATTLENS_BPF_SHARED_ABI_H_ */
