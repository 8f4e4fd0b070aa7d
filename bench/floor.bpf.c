// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/* Empty programs: the cost of being attached at all, the floor the agent's
 * overhead is compared against (bench/overhead.sh, docs/benchmarks.md).
 *
 * floor_loader picks a set with bpf_program__set_autoload before load:
 *   rawtp      the literal floor: raw_tp/sys_enter alone.
 *   samehooks  the hooks the agent attaches (bpf/syscalls.bpf.c and
 *              bpf/sched.bpf.c), each with an empty body. Keep this list in
 *              step with those objects' SEC() names.
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

SEC("tp_btf/sched_switch")
int floor_sched_switch(void *ctx) { return 0; }

SEC("tp_btf/sched_process_fork")
int floor_sched_process_fork(void *ctx) { return 0; }

SEC("tp_btf/sched_process_exec")
int floor_sched_process_exec(void *ctx) { return 0; }
