// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/* Network bytes, packets and TCP connection life per process, cgroup and
 * traffic class.
 *
 * Bytes come from one of two sources; the agent loads one, by probe:
 * - sock_length: sock:sock_send_length / sock:sock_recv_length (Linux 6.3+),
 *   which fire in the calling process after a socket send or receive with
 *   the byte count: exact application bytes, nothing on other syscalls.
 * - syscalls (kernels without those tracepoints): raw_syscalls:sys_exit,
 *   for the socket I/O syscalls only (read, write, readv, writev, send*,
 *   recv*, sendmmsg/recvmmsg, sendfile, splice) and accept/accept4. The fd
 *   argument is still in the saved registers at exit; it is resolved through
 *   the task's file table (probe reads, since the verifier cannot follow the
 *   fd array), and only a socket inode counts. The byte count is the
 *   syscall's return value (per message for the mmsg calls), so both sources
 *   count payload bytes. Paths that bypass syscalls (io_uring, kernel
 *   sockets) are not counted by this source. Owner records live in a hash
 *   keyed by the socket's address instead of socket storage (the pointer
 *   from the file table cannot be handed to socket-storage helpers); an
 *   accepted socket is owned by the process accept() returns it to.
 * Each
 * TCP/UDP socket carries an owner record in socket-local storage: the process
 * that last used it and its traffic class, classified once (LPM trie) when
 * the socket has a peer, so there is no trie lookup per packet. Connection
 * events that happen in softirq context (an accepted connection completing,
 * a close, a retransmit) are charged to that owner; an accepted connection is
 * counted when its owner first uses it, or at close if nobody did.
 *
 * Bytes and packets are counted in a per-CPU cache (`io_cache`,
 * percpu_cache.bpf.h, which states why it is exact). A way holds one
 * (process, cgroup, class) key's send/receive counts and is folded into
 * `net_counts` when another key takes it or the agent flushes. Connection
 * events and retransmits (rare, partly in softirq context) update
 * `net_counts` directly; they never touch the fields the cache adds to. */
#include "percpu_cache.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define WL_AF_INET 2
#define WL_AF_INET6 10
#define WL_IPPROTO_TCP 6
#define WL_IPPROTO_UDP 17
#define WL_MSG_PEEK 2
/* include/net/tcp_states.h */
#define WL_TCP_ESTABLISHED 1
#define WL_TCP_SYN_SENT 2
#define WL_TCP_SYN_RECV 3
#define WL_TCP_CLOSE 7

#define OWNER_KNOWN 1
#define OWNER_CLASSIFIED 2
#define OWNER_OPENED 4
#define OWNER_ACCEPT_PENDING 8

struct sock_owner {
  __u32 tgid;
  __u8 net_class;
  __u8 flags;
  __u16 pad;
  __u64 start_ns;
  __u64 cgroup_id;
  __u64 moves; /* cgroup_moves when the owner's cgroup was read */
};

/* Bumped (atomically) at every cgroup migration: owner records read their
 * process's cgroup again on next use. */
__u64 cgroup_moves = 0;
/* Bumped (atomically) whenever a TCP connection is accepted or closed. */
__u64 sock_events = 0;

struct {
  __uint(type, BPF_MAP_TYPE_LPM_TRIE);
  __uint(max_entries, 1024);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, struct wl_lpm_v4_key);
  __type(value, __u32);
} class_v4 SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_LPM_TRIE);
  __uint(max_entries, 1024);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, struct wl_lpm_v6_key);
  __type(value, __u32);
} class_v6 SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_SK_STORAGE);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, int);
  __type(value, struct sock_owner);
} sock_owners SEC(".maps");

/* Set by the agent between open and load. */
const volatile bool owner_by_addr = false; /* the syscalls byte source */

/* Owner records keyed by the socket's address, for the syscalls byte source.
 * TCP only: an entry is removed when its socket reaches TCP_CLOSE, which
 * every TCP socket does before it is freed; LRU so that a missed removal
 * cannot fill the map. UDP sockets get no record (their bytes are keyed by
 * the calling process directly). */
struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, 65536);
  __type(key, __u64);
  __type(value, struct sock_owner);
} sock_owners_by_addr SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_HASH);
  __uint(max_entries, 16384); /* --bpf_net_map_entries */
  __type(key, struct wl_net_key);
  __type(value, struct wl_net_val);
} net_counts SEC(".maps");

WL_DECLARE_DROPS();

#define WL_NET_WAYS 16 /* power of two */

struct wl_net_way {
  struct wl_net_key key;
  __u64 tx_bytes;
  __u64 rx_bytes;
  __u64 tx_packets;
  __u64 rx_packets;
};

/* What a socket's owner record said the last time a process used it on this
 * CPU: the key its bytes go to. Valid while the same process uses the same
 * socket with the same peer, no cgroup migration happened (cgroup_moves),
 * and no TCP socket was accepted or closed anywhere (sock_events, which
 * covers a socket freed and its memory reused by an accepted one, whose
 * first use must see OWNER_ACCEPT_PENDING). Saves the socket-storage lookup
 * (a helper call) on every send and receive. */
#define WL_NET_SLOTS 16 /* power of two */
_Static_assert(WL_NET_SLOTS == 16, "wl_io_key takes the top 4 bits");

struct wl_sock_slot {
  __u64 sk; /* 0: empty */
  __u64 moves;
  __u64 events;
  __u32 daddr;
  __u32 daddr6[4];
  __u32 pad;
  struct wl_net_key key;
};

struct wl_net_cache {
  __u64 busy; /* non-zero: inside a bracket (percpu_cache.bpf.h) */
  struct wl_net_way ways[WL_NET_WAYS];
  struct wl_sock_slot slots[WL_NET_SLOTS];
};

static __always_inline __u32 wl_lookup_v4(__be32 addr) {
  struct wl_lpm_v4_key key = {.prefixlen = 32};
  __builtin_memcpy(key.addr, &addr, 4);
  __u32 *c = bpf_map_lookup_elem(&class_v4, &key);
  return c ? *c : WL_NET_INTERNET;
}

/* What the byte path needs of a socket, read once per use. */
struct wl_sk_facts {
  __u64 skv; /* its address, as a number */
  __u16 family;
  __u16 proto;
  __u32 daddr;
  __u32 daddr6[4];
};

/* By direct BTF loads: for a socket pointer the verifier knows (tracepoint
 * arguments). */
static __always_inline void wl_sk_read(struct sock *sk, __u64 skv,
                                       struct wl_sk_facts *f) {
  f->skv = skv;
  f->family = sk->__sk_common.skc_family;
  f->proto = sk->sk_protocol;
  f->daddr = sk->__sk_common.skc_daddr;
  f->daddr6[0] = sk->__sk_common.skc_v6_daddr.in6_u.u6_addr32[0];
  f->daddr6[1] = sk->__sk_common.skc_v6_daddr.in6_u.u6_addr32[1];
  f->daddr6[2] = sk->__sk_common.skc_v6_daddr.in6_u.u6_addr32[2];
  f->daddr6[3] = sk->__sk_common.skc_v6_daddr.in6_u.u6_addr32[3];
}

/* By probe reads: for a socket found through the fd table. */
static __always_inline void wl_sk_read_probe(struct sock *sk,
                                             struct wl_sk_facts *f) {
  f->skv = (__u64)sk;
  f->family = BPF_CORE_READ(sk, __sk_common.skc_family);
  f->proto = BPF_CORE_READ(sk, sk_protocol);
  f->daddr = BPF_CORE_READ(sk, __sk_common.skc_daddr);
  BPF_CORE_READ_INTO(&f->daddr6, sk, __sk_common.skc_v6_daddr.in6_u.u6_addr32);
}

/* The class of the socket's peer, or WL_NET_UNKNOWN when it has none. */
static __always_inline __u32 wl_classify(const struct wl_sk_facts *f) {
  if (f->family == WL_AF_INET)
    return f->daddr ? wl_lookup_v4(f->daddr) : WL_NET_UNKNOWN;
  if (f->family != WL_AF_INET6) return WL_NET_UNKNOWN;
  if (!(f->daddr6[0] | f->daddr6[1] | f->daddr6[2] | f->daddr6[3]))
    return WL_NET_UNKNOWN;
  /* ::ffff:a.b.c.d is an IPv4 peer on a dual-stack socket. */
  if (!(f->daddr6[0] | f->daddr6[1]) && f->daddr6[2] == bpf_htonl(0x0000ffff))
    return wl_lookup_v4(f->daddr6[3]);
  struct wl_lpm_v6_key key = {.prefixlen = 128};
  __builtin_memcpy(key.addr, f->daddr6, 16);
  __u32 *c = bpf_map_lookup_elem(&class_v6, &key);
  return c ? *c : WL_NET_INTERNET;
}

static __always_inline bool wl_tcp_or_udp(const struct wl_sk_facts *f) {
  if (f->family != WL_AF_INET && f->family != WL_AF_INET6) return false;
  return f->proto == WL_IPPROTO_TCP || f->proto == WL_IPPROTO_UDP;
}

static __always_inline void wl_add(struct wl_net_key *key, __u32 field,
                                   __u64 n) {
  struct wl_net_val *v = bpf_map_lookup_elem(&net_counts, key);
  if (!v) {
    struct wl_net_val zero = {};
    long err = bpf_map_update_elem(&net_counts, key, &zero, BPF_NOEXIST);
    if (err && err != -EEXIST) {
      wl_count_drop(WL_DROP_NET_MAP_FULL);
      return;
    }
    v = bpf_map_lookup_elem(&net_counts, key);
    if (!v) return;
  }
  /* Per-CPU value: only this CPU writes it. */
  switch (field) {
    case 0: v->tx_bytes += n; v->tx_packets += 1; break;
    case 1: v->rx_bytes += n; v->rx_packets += 1; break;
    case 2: v->connects += 1; break;
    case 3: v->accepts += 1; break;
    case 4: v->closes += 1; break;
    case 5: v->retransmits += 1; break;
  }
}

enum { F_TX, F_RX, F_CONNECT, F_ACCEPT, F_CLOSE, F_RETRANS };

/* A socket's owner record (created if `create`), from socket storage or,
 * for the syscalls byte source, from the by-address hash. NULL if absent, or
 * (counted) if there is no room. */
static __always_inline struct sock_owner *wl_owner(struct sock *sk, __u64 skv,
                                                   bool create) {
  if (!owner_by_addr) {
    struct sock_owner *o = bpf_sk_storage_get(
        &sock_owners, sk, 0, create ? BPF_SK_STORAGE_GET_F_CREATE : 0);
    if (!o && create) wl_count_drop(WL_DROP_SOCK_STORAGE);
    return o;
  }
  struct sock_owner *o = bpf_map_lookup_elem(&sock_owners_by_addr, &skv);
  if (o || !create) return o;
  struct sock_owner zero = {};
  bpf_map_update_elem(&sock_owners_by_addr, &skv, &zero, BPF_NOEXIST);
  o = bpf_map_lookup_elem(&sock_owners_by_addr, &skv);
  if (!o) wl_count_drop(WL_DROP_SOCK_STORAGE);
  return o;
}

/* The owner record, (re)claimed by the current process, and its cgroup read
 * again after any cgroup migration (a process that moved charges its new
 * cgroup from then on). */
static __always_inline struct sock_owner *wl_claim(struct sock *sk,
                                                   const struct wl_sk_facts *f,
                                                   struct task_struct *task,
                                                   __u64 moves) {
  struct sock_owner *o = wl_owner(sk, f->skv, true);
  if (!o) return 0;
  __u32 tgid = task->tgid;
  if (!(o->flags & OWNER_KNOWN) || o->tgid != tgid || o->moves != moves) {
    o->tgid = tgid;
    o->start_ns = wl_process_start_ns(task);
    o->cgroup_id = wl_task_cgroup_id(task);
    o->moves = moves;
    o->flags |= OWNER_KNOWN;
  }
  if (!(o->flags & OWNER_CLASSIFIED)) {
    __u32 c = wl_classify(f);
    o->net_class = c;
    if (c != WL_NET_UNKNOWN) o->flags |= OWNER_CLASSIFIED;
  }
  return o;
}

static __always_inline void wl_key_of(struct sock_owner *o,
                                      struct wl_net_key *key) {
  key->tgid = o->tgid;
  key->net_class = o->net_class;
  key->start_ns = o->start_ns;
  key->cgroup_id = o->cgroup_id;
}

/* For events of a socket no process has used yet: its cgroup (sockets keep
 * the cgroup of the process that created them; accepted ones inherit the
 * listener's). */
static __always_inline void wl_fallback_key(struct sock *sk,
                                            struct wl_net_key *key) {
  struct wl_sk_facts f;
  wl_sk_read(sk, 0, &f);
  key->tgid = 0;
  key->start_ns = 0;
  key->net_class = wl_classify(&f);
  key->cgroup_id = BPF_CORE_READ(sk, sk_cgrp_data.cgroup, kn, id);
}

/* Global functions: verified once each, not per call site (see
 * bpf/syscalls.bpf.c). */
__noinline int wl_net_add_io(struct wl_net_way *w) {
  if (!w) return 0;
  if (!(w->tx_packets | w->rx_packets)) return 0;
  struct wl_net_key key = w->key;
  struct wl_net_val *v = bpf_map_lookup_elem(&net_counts, &key);
  if (!v) {
    struct wl_net_val zero = {};
    long err = bpf_map_update_elem(&net_counts, &key, &zero, BPF_NOEXIST);
    if (err && err != -EEXIST) {
      wl_count_drop(WL_DROP_NET_MAP_FULL);
      v = 0;
    } else {
      v = bpf_map_lookup_elem(&net_counts, &key);
    }
  }
  if (v) {
    /* Per-CPU value: only this CPU writes it. */
    v->tx_bytes += w->tx_bytes;
    v->rx_bytes += w->rx_bytes;
    v->tx_packets += w->tx_packets;
    v->rx_packets += w->rx_packets;
  }
  w->tx_bytes = 0;
  w->rx_bytes = 0;
  w->tx_packets = 0;
  w->rx_packets = 0;
  return 0;
}

WL_PERCPU_CACHE(io_cache, wl_net_cache, WL_NET_WAYS, wl_net_add_io,
                wl_net_flush);

static __always_inline __u32 wl_net_way_of(struct wl_net_key *key) {
  __u64 h = ((__u64)key->tgid << 3) ^ key->net_class ^ key->cgroup_id;
  return wl_cache_hash(h, 4);
}
_Static_assert(WL_NET_WAYS == 16, "wl_net_way_of takes the top 4 bits");

static __always_inline bool wl_net_same(struct wl_net_way *w,
                                        struct wl_net_key *key) {
  return w->key.tgid == key->tgid && w->key.net_class == key->net_class &&
         w->key.start_ns == key->start_ns && w->key.cgroup_id == key->cgroup_id;
}

/* The way for `key`: its hashed way or that way's partner. */
static __always_inline struct wl_net_way *wl_net_way_for(
    struct wl_net_cache *c, struct wl_net_key *key) {
  __u32 h = wl_net_way_of(key);
  struct wl_net_way *w = &c->ways[h];
  if (wl_net_same(w, key)) return w;
  struct wl_net_way *p = &c->ways[h ^ 1];
  if (wl_net_same(p, key)) return p;
  /* Take the hashed way if it holds no counts, else its partner. */
  if (w->tx_packets | w->rx_packets) w = p;
  wl_net_add_io(w);
  w->key = *key;
  return w;
}

static __always_inline bool wl_slot_valid(struct wl_sock_slot *sl,
                                          const struct wl_sk_facts *f,
                                          __u32 tgid, __u64 start_ns,
                                          __u64 moves, __u64 events) {
  return sl->sk == f->skv && sl->key.tgid == tgid &&
         sl->key.start_ns == start_ns && sl->moves == moves &&
         sl->events == events && sl->daddr == f->daddr &&
         sl->daddr6[0] == f->daddr6[0] && sl->daddr6[1] == f->daddr6[1] &&
         sl->daddr6[2] == f->daddr6[2] && sl->daddr6[3] == f->daddr6[3];
}

/* The key the current process's I/O on a socket is counted under; false if
 * it has none (counted). */
static __always_inline bool wl_io_key(struct wl_net_cache *c, struct sock *sk,
                                      const struct wl_sk_facts *f,
                                      struct wl_net_key *key) {
  __u64 moves = cgroup_moves;
  __u64 events = sock_events;
  struct task_struct *task = bpf_get_current_task_btf();
  __u32 tgid = task->tgid;
  __u64 start_ns = wl_process_start_ns(task);
  struct wl_sock_slot *sl =
      &c->slots[wl_cache_hash(f->skv >> 6, 4)];
  if (wl_slot_valid(sl, f, tgid, start_ns, moves, events)) {
    *key = sl->key;
    return true;
  }
  if (owner_by_addr && f->proto == WL_IPPROTO_UDP) {
    /* No record for UDP (nothing would remove it): the caller owns it. */
    key->tgid = tgid;
    key->start_ns = start_ns;
    key->cgroup_id = wl_task_cgroup_id(task);
    key->net_class = wl_classify(f);
  } else {
    struct sock_owner *o = wl_claim(sk, f, task, moves);
    if (!o) return false;
    wl_key_of(o, key);
    if (o->flags & OWNER_ACCEPT_PENDING) {
      o->flags &= ~OWNER_ACCEPT_PENDING;
      wl_add(key, F_ACCEPT, 0);
    }
  }
  sl->sk = f->skv;
  sl->moves = moves;
  sl->events = events;
  sl->daddr = f->daddr;
  sl->daddr6[0] = f->daddr6[0];
  sl->daddr6[1] = f->daddr6[1];
  sl->daddr6[2] = f->daddr6[2];
  sl->daddr6[3] = f->daddr6[3];
  sl->key = *key;
  return true;
}

/* Counts `bytes` in `msgs` messages sent or received by the current process
 * on a socket. */
static __always_inline void wl_io(struct sock *sk, struct wl_sk_facts *f,
                                  __u64 bytes, __u32 msgs, __u32 field) {
  if (!wl_tcp_or_udp(f)) return;
  __u32 zero = 0;
  struct wl_net_cache *c = bpf_map_lookup_elem(&io_cache, &zero);
  if (!c) return;
  wl_cache_enter(&c->busy, f->skv);
  f->skv = wl_cache_tag(&c->busy);
  struct wl_net_key key = {};
  if (wl_io_key(c, sk, f, &key)) {
    struct wl_net_way *w = wl_net_way_for(c, &key);
    if (field == F_TX) {
      w->tx_bytes += bytes;
      w->tx_packets += msgs;
    } else {
      w->rx_bytes += bytes;
      w->rx_packets += msgs;
    }
  }
  wl_cache_leave(&c->busy);
}

SEC("tp_btf/sock_send_length")
int BPF_PROG(wl_sock_send, struct sock *sk, int ret, int flags) {
  if (ret <= 0) return 0;
  struct wl_sk_facts f;
  wl_sk_read(sk, (__u64)sk, &f);
  wl_io(sk, &f, ret, 1, F_TX);
  return 0;
}

SEC("tp_btf/sock_recv_length")
int BPF_PROG(wl_sock_recv, struct sock *sk, int ret, int flags) {
  if (ret <= 0) return 0;
  if (flags & WL_MSG_PEEK) return 0; /* peeked bytes are read again later */
  struct wl_sk_facts f;
  wl_sk_read(sk, (__u64)sk, &f);
  wl_io(sk, &f, ret, 1, F_RX);
  return 0;
}

/* --- the syscalls byte source ------------------------------------------- */

#define WL_S_IFMT 00170000
#define WL_S_IFSOCK 0140000
#define WL_UIO_MAXIOV 1024 /* the most messages one mmsg call moves */

#if defined(__TARGET_ARCH_x86)
enum {
  WL_NR_READ = 0,
  WL_NR_WRITE = 1,
  WL_NR_READV = 19,
  WL_NR_WRITEV = 20,
  WL_NR_SENDFILE = 40,
  WL_NR_ACCEPT = 43,
  WL_NR_SENDTO = 44,
  WL_NR_RECVFROM = 45,
  WL_NR_SENDMSG = 46,
  WL_NR_RECVMSG = 47,
  WL_NR_SPLICE = 275,
  WL_NR_ACCEPT4 = 288,
  WL_NR_RECVMMSG = 299,
  WL_NR_SENDMMSG = 307,
};
#define WL_SYSCALL_NR(regs) ((regs)->orig_ax)
#define WL_ARG0(regs) ((regs)->di)
#define WL_ARG1(regs) ((regs)->si)
#define WL_ARG2(regs) ((regs)->dx)
#define WL_ARG3(regs) ((regs)->r10)
#else
#error "wattlens: add this architecture's syscall numbers and argument registers"
#endif

/* The socket behind the current task's descriptor `fd`, or NULL when the
 * descriptor is not a socket. Probe reads: the verifier cannot index the fd
 * array, so everything past it is an untyped kernel address. */
static __always_inline struct sock *wl_sock_of_fd(struct task_struct *task,
                                                  __u64 fd) {
  struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
  if (!fdt || fd >= BPF_CORE_READ(fdt, max_fds)) return NULL;
  struct file **fds = BPF_CORE_READ(fdt, fd);
  struct file *file = NULL;
  bpf_probe_read_kernel(&file, sizeof(file), &fds[fd]);
  if (!file) return NULL;
  umode_t mode = BPF_CORE_READ(file, f_inode, i_mode);
  if ((mode & WL_S_IFMT) != WL_S_IFSOCK) return NULL;
  struct socket *sock = BPF_CORE_READ(file, private_data);
  return sock ? BPF_CORE_READ(sock, sk) : NULL;
}

/* The syscalls source's work is in global functions, each verified once on
 * its own: inlined into every case of the dispatch below, the mmsg loop and
 * the cache path multiply into more states than the 6.1 verifier allows.
 * Their arguments are plain numbers (a global function cannot take a task
 * pointer before 6.8's argument tags), so each gets current itself. */

/* Counts `bytes` in `msgs` messages on the caller's descriptor `fd` if it is
 * a socket. */
__noinline int wl_fd_io(__u64 fd, __u64 bytes, __u32 msgs, __u32 field) {
  struct sock *sk = wl_sock_of_fd(bpf_get_current_task_btf(), fd);
  if (!sk) return 0;
  struct wl_sk_facts f;
  wl_sk_read_probe(sk, &f);
  wl_io(sk, &f, bytes, msgs, field);
  return 0;
}

/* accept()/accept4() returned `fd`: the accepting process owns the socket
 * from now on, and the accept is counted for it. */
__noinline int wl_fd_accepted(__u64 fd) {
  struct task_struct *task = bpf_get_current_task_btf();
  struct sock *sk = wl_sock_of_fd(task, fd);
  if (!sk) return 0;
  struct wl_sk_facts f;
  wl_sk_read_probe(sk, &f);
  if (f.proto != WL_IPPROTO_TCP || !wl_tcp_or_udp(&f)) return 0;
  struct sock_owner *o = wl_claim(sk, &f, task, cgroup_moves);
  if (!o) return 0;
  struct wl_net_key key = {};
  wl_key_of(o, &key);
  o->flags |= OWNER_OPENED;
  if (o->flags & OWNER_ACCEPT_PENDING) {
    o->flags &= ~OWNER_ACCEPT_PENDING;
    wl_add(&key, F_ACCEPT, 0);
  }
  return 0;
}

/* The payload bytes of `n` messages of an mmsg call at user address `vec`
 * (struct mmsghdr's msg_len, which the kernel wrote back). */
__noinline __u64 wl_mmsg_bytes(__u64 vec, __u32 n) {
  __u64 total = 0;
  for (__u32 i = 0; i < WL_UIO_MAXIOV && i < n; i++) {
    unsigned int len = 0;
    bpf_probe_read_user(&len, sizeof(len),
                        (void *)(vec + i * sizeof(struct mmsghdr) +
                                 __builtin_offsetof(struct mmsghdr, msg_len)));
    total += len;
  }
  return total;
}

SEC("tp_btf/sys_exit")
int BPF_PROG(wl_net_sys_exit, struct pt_regs *regs, long ret) {
  if (ret <= 0) {
    if (ret == 0 && (WL_SYSCALL_NR(regs) == WL_NR_ACCEPT ||
                     WL_SYSCALL_NR(regs) == WL_NR_ACCEPT4))
      wl_fd_accepted(0); /* fd 0 can be a new socket too */
    return 0;
  }
  switch (WL_SYSCALL_NR(regs)) {
    case WL_NR_WRITE:
    case WL_NR_WRITEV:
    case WL_NR_SENDTO:
    case WL_NR_SENDMSG:
    case WL_NR_SENDFILE: /* out_fd first */
      wl_fd_io(WL_ARG0(regs), ret, 1, F_TX);
      break;
    case WL_NR_READ:
    case WL_NR_READV:
      wl_fd_io(WL_ARG0(regs), ret, 1, F_RX);
      break;
    case WL_NR_RECVFROM:
      if (!(WL_ARG3(regs) & WL_MSG_PEEK)) wl_fd_io(WL_ARG0(regs), ret, 1, F_RX);
      break;
    case WL_NR_RECVMSG:
      if (!(WL_ARG2(regs) & WL_MSG_PEEK)) wl_fd_io(WL_ARG0(regs), ret, 1, F_RX);
      break;
    case WL_NR_SENDMMSG:
      wl_fd_io(WL_ARG0(regs), wl_mmsg_bytes(WL_ARG1(regs), ret), ret, F_TX);
      break;
    case WL_NR_RECVMMSG:
      if (!(WL_ARG3(regs) & WL_MSG_PEEK))
        wl_fd_io(WL_ARG0(regs), wl_mmsg_bytes(WL_ARG1(regs), ret), ret, F_RX);
      break;
    case WL_NR_SPLICE: /* fd_in, off_in, fd_out: either end may be a socket */
      wl_fd_io(WL_ARG0(regs), ret, 1, F_RX);
      wl_fd_io(WL_ARG2(regs), ret, 1, F_TX);
      break;
    case WL_NR_ACCEPT:
    case WL_NR_ACCEPT4:
      wl_fd_accepted(ret);
      break;
  }
  return 0;
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(wl_tcp_state, struct sock *sk, int oldstate, int newstate) {
  if (sk->sk_protocol != WL_IPPROTO_TCP) return 0;
  struct wl_net_key key = {};
  if (oldstate == WL_TCP_CLOSE && newstate == WL_TCP_SYN_SENT) {
    /* connect(): runs in the connecting process, peer address set. */
    struct wl_sk_facts f;
    wl_sk_read(sk, (__u64)sk, &f);
    struct sock_owner *o =
        wl_claim(sk, &f, bpf_get_current_task_btf(), cgroup_moves);
    if (!o) return 0;
    o->flags |= OWNER_OPENED;
    wl_key_of(o, &key);
    wl_add(&key, F_CONNECT, 0);
    return 0;
  }
  if (oldstate == WL_TCP_SYN_RECV && newstate == WL_TCP_ESTABLISHED) {
    __sync_fetch_and_add(&sock_events, 1);
    /* Handshake completed on a child of a listener (softirq): the accepting
     * process is not known until it accepts or uses the socket. */
    struct sock_owner *o = wl_owner(sk, (__u64)sk, true);
    if (!o) return 0;
    o->flags |= OWNER_OPENED | OWNER_ACCEPT_PENDING;
    return 0;
  }
  if (newstate != WL_TCP_CLOSE) return 0;
  __sync_fetch_and_add(&sock_events, 1);
  __u64 skv = (__u64)sk;
  struct sock_owner *o = wl_owner(sk, skv, false);
  if (!o) return 0; /* listener, or unseen */
  if (!(o->flags & OWNER_OPENED)) {
    if (owner_by_addr) bpf_map_delete_elem(&sock_owners_by_addr, &skv);
    return 0;
  }
  if (o->flags & OWNER_KNOWN) {
    wl_key_of(o, &key);
  } else {
    wl_fallback_key(sk, &key);
  }
  if (o->flags & OWNER_ACCEPT_PENDING) {
    o->flags &= ~OWNER_ACCEPT_PENDING;
    wl_add(&key, F_ACCEPT, 0);
  }
  o->flags &= ~OWNER_OPENED;
  wl_add(&key, F_CLOSE, 0);
  /* The socket is about to be freed; its address may be reused. */
  if (owner_by_addr) bpf_map_delete_elem(&sock_owners_by_addr, &skv);
  return 0;
}

SEC("tp_btf/tcp_retransmit_skb")
int BPF_PROG(wl_tcp_retransmit, struct sock *sk, struct sk_buff *skb) {
  struct wl_net_key key = {};
  struct sock_owner *o = wl_owner(sk, (__u64)sk, false);
  if (o && (o->flags & OWNER_KNOWN)) {
    wl_key_of(o, &key);
  } else {
    wl_fallback_key(sk, &key);
  }
  wl_add(&key, F_RETRANS, 0);
  return 0;
}

SEC("tp_btf/cgroup_attach_task")
int BPF_PROG(wl_net_cgroup_move, struct cgroup *dst, const char *path,
             struct task_struct *task, bool threadgroup) {
  __sync_fetch_and_add(&cgroup_moves, 1);
  return 0;
}
