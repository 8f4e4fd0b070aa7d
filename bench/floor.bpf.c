// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/* Empty programs: the cost of being attached at all, the floor the agent's
 * overhead is compared against (bench/overhead.sh, docs/benchmarks.md).
 *
 * floor_loader picks a set with bpf_program__set_autoload before load:
 *   rawtp      the literal floor: raw_tp/sys_enter alone.
 *   samehooks  the hooks of bpf/syscalls.bpf.c and bpf/sched.bpf.c as the
 *              agent attaches them by default (CPU time sampled, no
 *              sched_switch program), each with an empty body (overhead.sh).
 *   switchhooks  samehooks plus sched_switch, the hooks of
 *              --cpu_time_source=sched_switch.
 *   allhooks   samehooks plus the network and power hooks: every hook the
 *              agent attaches (network_overhead.sh). Keep these lists in
 *              step with the bpf/ objects' SEC() names.
 *
 * The bodies must stay empty: no maps, no helpers, nothing the verifier or
 * the JIT could make cost more than entry and return. */
/* vmlinux.h must come first: libbpf's headers use its types. */
/* clang-format off */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
/* clang-format on */

char LICENSE[] SEC("license") = "Dual BSD/GPL";

SEC("raw_tp/sys_enter")
int floor_rawtp_sys_enter(void *ctx) { return 0; }

SEC("tp_btf/sys_exit")
int floor_sys_exit(void *ctx) { return 0; }

SEC("tp_btf/sched_process_exit")
int floor_sched_process_exit(void *ctx) { return 0; }

SEC("tp_btf/cgroup_attach_task")
int floor_cgroup_attach_task(void *ctx) { return 0; }

SEC("tp_btf/sched_process_free")
int floor_sched_process_free(void *ctx) { return 0; }

/* switchhooks only. */
SEC("tp_btf/sched_switch")
int floor_sw_sched_switch(void *ctx) { return 0; }

SEC("tp_btf/sched_process_fork")
int floor_sched_process_fork(void *ctx) { return 0; }

SEC("tp_btf/sched_process_exec")
int floor_sched_process_exec(void *ctx) { return 0; }

/* allhooks only: bpf/network.bpf.c and bpf/power.bpf.c. */
SEC("tp_btf/sock_send_length")
int floor_net_sock_send_length(void *ctx) { return 0; }

SEC("tp_btf/sock_recv_length")
int floor_net_sock_recv_length(void *ctx) { return 0; }

SEC("tp_btf/inet_sock_set_state")
int floor_net_inet_sock_set_state(void *ctx) { return 0; }

SEC("tp_btf/tcp_retransmit_skb")
int floor_net_tcp_retransmit_skb(void *ctx) { return 0; }

SEC("tp_btf/cpu_frequency")
int floor_net_cpu_frequency(void *ctx) { return 0; }

SEC("tp_btf/cpu_idle")
int floor_net_cpu_idle(void *ctx) { return 0; }
