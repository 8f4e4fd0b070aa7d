// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/* Network bytes, packets and TCP connection life per process, cgroup and
 * traffic class.
 *
 * Bytes come from sock:sock_send_length / sock:sock_recv_length (Linux 6.3+),
 * which fire in the calling process after a socket send or receive with the
 * byte count: exact application bytes, and nothing on other syscalls. Each
 * TCP/UDP socket carries an owner record in socket-local storage: the process
 * that last used it and its traffic class, classified once (LPM trie) when
 * the socket has a peer, so there is no trie lookup per packet. Connection
 * events that happen in softirq context (an accepted connection completing,
 * a close, a retransmit) are charged to that owner; an accepted connection is
 * counted when its owner first uses it, or at close if nobody did.
 *
 * Bytes and packets are counted in a small per-CPU cache (`io_cache`, like
 * bpf/syscalls.bpf.c's): a hash update costs ~50 ns on the reference machine
 * and a per-CPU array access, which the verifier inlines, ~2 ns. A way holds
 * one (process, cgroup, class) key's send/receive counts and moves them into
 * `net_counts` when another key takes it; the agent runs wl_net_flush on
 * every CPU before it reads `net_counts`, so the hash it reads holds every
 * byte sent or received before the read, once. Connection events and
 * retransmits (rare, partly in softirq context) update `net_counts`
 * directly; they never touch the fields the cache adds to. */
#include "wattlens.bpf.h"

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
  __u64 busy; /* non-zero: wl_sock_send/recv is using the cache */
  struct wl_net_way ways[WL_NET_WAYS];
  struct wl_sock_slot slots[WL_NET_SLOTS];
};

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct wl_net_cache);
} io_cache SEC(".maps");

#define WL_FLUSH_DONE 0
#define WL_FLUSH_BUSY 1

static __always_inline __u32 wl_lookup_v4(__be32 addr) {
  struct wl_lpm_v4_key key = {.prefixlen = 32};
  __builtin_memcpy(key.addr, &addr, 4);
  __u32 *c = bpf_map_lookup_elem(&class_v4, &key);
  return c ? *c : WL_NET_INTERNET;
}

/* The class of the socket's peer, or WL_NET_UNKNOWN when it has none. */
static __always_inline __u32 wl_classify(struct sock *sk) {
  __u16 family = sk->__sk_common.skc_family;
  if (family == WL_AF_INET) {
    __be32 daddr = sk->__sk_common.skc_daddr;
    return daddr ? wl_lookup_v4(daddr) : WL_NET_UNKNOWN;
  }
  if (family != WL_AF_INET6) return WL_NET_UNKNOWN;
  struct wl_lpm_v6_key key = {.prefixlen = 128};
  BPF_CORE_READ_INTO(&key.addr, sk, __sk_common.skc_v6_daddr.in6_u.u6_addr8);
  __u64 hi, lo;
  __builtin_memcpy(&hi, key.addr, 8);
  __builtin_memcpy(&lo, key.addr + 8, 8);
  if (!hi && !lo) return WL_NET_UNKNOWN;
  /* ::ffff:a.b.c.d is an IPv4 peer on a dual-stack socket. */
  __u32 w2;
  __builtin_memcpy(&w2, key.addr + 8, 4);
  if (!hi && w2 == bpf_htonl(0x0000ffff)) {
    __be32 v4;
    __builtin_memcpy(&v4, key.addr + 12, 4);
    return wl_lookup_v4(v4);
  }
  __u32 *c = bpf_map_lookup_elem(&class_v6, &key);
  return c ? *c : WL_NET_INTERNET;
}

static __always_inline bool wl_tcp_or_udp(struct sock *sk) {
  __u16 family = sk->__sk_common.skc_family;
  if (family != WL_AF_INET && family != WL_AF_INET6) return false;
  __u16 proto = sk->sk_protocol;
  return proto == WL_IPPROTO_TCP || proto == WL_IPPROTO_UDP;
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

/* The owner record, (re)claimed by the current process, and its cgroup read
 * again after any cgroup migration (a process that moved charges its new
 * cgroup from then on). */
static __always_inline struct sock_owner *wl_claim(struct sock *sk,
                                                   struct task_struct *task,
                                                   __u64 moves) {
  struct sock_owner *o = bpf_sk_storage_get(&sock_owners, sk, 0,
                                            BPF_SK_STORAGE_GET_F_CREATE);
  if (!o) {
    wl_count_drop(WL_DROP_SOCK_STORAGE);
    return 0;
  }
  __u32 tgid = task->tgid;
  if (!(o->flags & OWNER_KNOWN) || o->tgid != tgid || o->moves != moves) {
    o->tgid = tgid;
    o->start_ns = wl_process_start_ns(task);
    o->cgroup_id = wl_task_cgroup_id(task);
    o->moves = moves;
    o->flags |= OWNER_KNOWN;
  }
  if (!(o->flags & OWNER_CLASSIFIED)) {
    __u32 c = wl_classify(sk);
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
  key->tgid = 0;
  key->start_ns = 0;
  key->net_class = wl_classify(sk);
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

static __always_inline __u32 wl_net_way_of(struct wl_net_key *key) {
  __u64 h = ((__u64)key->tgid << 3) ^ key->net_class ^ key->cgroup_id;
  return (h * 0x9E3779B97F4A7C15ULL) >> (64 - 4);
}
_Static_assert(WL_NET_WAYS == 16, "wl_net_way_of takes the top 4 bits");

static __always_inline bool wl_net_same(struct wl_net_way *w,
                                        struct wl_net_key *key) {
  return w->key.tgid == key->tgid && w->key.net_class == key->net_class &&
         w->key.start_ns == key->start_ns && w->key.cgroup_id == key->cgroup_id;
}

/* The way for `key`: its hashed way or that way's partner (h ^ 1), so two
 * keys that hash alike, e.g. the two ends of a ping-pong, keep a way
 * each. */
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
                                          struct sock *sk, __u64 skv,
                                          __u32 tgid, __u64 start_ns,
                                          __u64 moves, __u64 events) {
  return sl->sk == skv && sl->key.tgid == tgid &&
         sl->key.start_ns == start_ns && sl->moves == moves &&
         sl->events == events &&
         sl->daddr == sk->__sk_common.skc_daddr &&
         sl->daddr6[0] == sk->__sk_common.skc_v6_daddr.in6_u.u6_addr32[0] &&
         sl->daddr6[1] == sk->__sk_common.skc_v6_daddr.in6_u.u6_addr32[1] &&
         sl->daddr6[2] == sk->__sk_common.skc_v6_daddr.in6_u.u6_addr32[2] &&
         sl->daddr6[3] == sk->__sk_common.skc_v6_daddr.in6_u.u6_addr32[3];
}

static __always_inline void wl_io(struct sock *sk, int ret, __u32 field) {
  if (ret <= 0 || !wl_tcp_or_udp(sk)) return;
  __u32 zero = 0;
  struct wl_net_cache *c = bpf_map_lookup_elem(&io_cache, &zero);
  if (!c) return;
  __u64 moves = cgroup_moves;
  __u64 events = sock_events;
  /* busy brackets every access to the cache: wl_net_flush, in an interrupt
   * on this CPU, must not run in between. It holds the socket's address,
   * which also turns the pointer into a number the slot hash may shift. */
  *(volatile __u64 *)&c->busy = (__u64)sk;
  asm volatile("" ::: "memory");
  __u64 skv = *(volatile __u64 *)&c->busy;
  struct task_struct *task = bpf_get_current_task_btf();
  __u32 tgid = task->tgid;
  __u64 start_ns = wl_process_start_ns(task);
  struct wl_sock_slot *sl =
      &c->slots[((skv >> 6) * 0x9E3779B97F4A7C15ULL) >> (64 - 4)];
  struct wl_net_key key = {};
  bool have_key = false;
  if (wl_slot_valid(sl, sk, skv, tgid, start_ns, moves, events)) {
    key = sl->key;
    have_key = true;
  } else {
    struct sock_owner *o = wl_claim(sk, task, moves);
    if (o) {
      wl_key_of(o, &key);
      if (o->flags & OWNER_ACCEPT_PENDING) {
        o->flags &= ~OWNER_ACCEPT_PENDING;
        wl_add(&key, F_ACCEPT, 0);
      }
      sl->sk = skv;
      sl->moves = moves;
      sl->events = events;
      sl->daddr = sk->__sk_common.skc_daddr;
      sl->daddr6[0] = sk->__sk_common.skc_v6_daddr.in6_u.u6_addr32[0];
      sl->daddr6[1] = sk->__sk_common.skc_v6_daddr.in6_u.u6_addr32[1];
      sl->daddr6[2] = sk->__sk_common.skc_v6_daddr.in6_u.u6_addr32[2];
      sl->daddr6[3] = sk->__sk_common.skc_v6_daddr.in6_u.u6_addr32[3];
      sl->key = key;
      have_key = true;
    }
  }
  if (have_key) {
    struct wl_net_way *w = wl_net_way_for(c, &key);
    if (field == F_TX) {
      w->tx_bytes += ret;
      w->tx_packets += 1;
    } else {
      w->rx_bytes += ret;
      w->rx_packets += 1;
    }
  }
  asm volatile("" ::: "memory");
  *(volatile __u64 *)&c->busy = 0;
}

/* Run by the agent on each CPU before it reads net_counts (not attached). */
SEC("raw_tp")
int wl_net_flush(void *ctx) {
  __u32 zero = 0;
  struct wl_net_cache *c = bpf_map_lookup_elem(&io_cache, &zero);
  if (!c) return WL_FLUSH_DONE;
  if (*(volatile __u64 *)&c->busy) return WL_FLUSH_BUSY;
  for (__u32 i = 0; i < WL_NET_WAYS; ++i) wl_net_add_io(&c->ways[i]);
  return WL_FLUSH_DONE;
}

SEC("tp_btf/sock_send_length")
int BPF_PROG(wl_sock_send, struct sock *sk, int ret, int flags) {
  wl_io(sk, ret, F_TX);
  return 0;
}

SEC("tp_btf/sock_recv_length")
int BPF_PROG(wl_sock_recv, struct sock *sk, int ret, int flags) {
  if (flags & WL_MSG_PEEK) return 0; /* peeked bytes are read again later */
  wl_io(sk, ret, F_RX);
  return 0;
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(wl_tcp_state, struct sock *sk, int oldstate, int newstate) {
  if (sk->sk_protocol != WL_IPPROTO_TCP) return 0;
  struct wl_net_key key = {};
  if (oldstate == WL_TCP_CLOSE && newstate == WL_TCP_SYN_SENT) {
    /* connect(): runs in the connecting process, peer address set. */
    struct sock_owner *o =
        wl_claim(sk, bpf_get_current_task_btf(), cgroup_moves);
    if (!o) return 0;
    o->flags |= OWNER_OPENED;
    wl_key_of(o, &key);
    wl_add(&key, F_CONNECT, 0);
    return 0;
  }
  if (oldstate == WL_TCP_SYN_RECV && newstate == WL_TCP_ESTABLISHED) {
    __sync_fetch_and_add(&sock_events, 1);
    /* Handshake completed on a child of a listener (softirq): the accepting
     * process is not known until it uses the socket. */
    struct sock_owner *o = bpf_sk_storage_get(&sock_owners, sk, 0,
                                              BPF_SK_STORAGE_GET_F_CREATE);
    if (!o) {
      wl_count_drop(WL_DROP_SOCK_STORAGE);
      return 0;
    }
    o->flags |= OWNER_OPENED | OWNER_ACCEPT_PENDING;
    return 0;
  }
  if (newstate != WL_TCP_CLOSE) return 0;
  __sync_fetch_and_add(&sock_events, 1);
  struct sock_owner *o = bpf_sk_storage_get(&sock_owners, sk, 0, 0);
  if (!o || !(o->flags & OWNER_OPENED)) return 0; /* listener, or unseen */
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
  return 0;
}

SEC("tp_btf/tcp_retransmit_skb")
int BPF_PROG(wl_tcp_retransmit, struct sock *sk, struct sk_buff *skb) {
  struct wl_net_key key = {};
  struct sock_owner *o = bpf_sk_storage_get(&sock_owners, sk, 0, 0);
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
