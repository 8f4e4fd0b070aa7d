// SPDX-License-Identifier: Apache-2.0
// C++ view of bpf/shared/wattlens_abi.h. The static_asserts pin the sizes the
// kernel side was compiled with; a change to the ABI header that breaks the
// layout fails the build here instead of corrupting map reads at run time.
#pragma once

#include <cstdint>

#include "wattlens_abi.h"

static_assert(sizeof(wl_syscall_key) == 24);
static_assert(sizeof(wl_syscall_val) == 16);
static_assert(sizeof(wl_sched_key) == 24);
static_assert(sizeof(wl_event) == 56);
static_assert(sizeof(wl_exe_path) == 776);
static_assert(sizeof(wl_exec_event) == 832);
static_assert(sizeof(wl_exe_record) == 792);
static_assert(sizeof(wl_net_key) == 24);
static_assert(sizeof(wl_net_val) == 64);
static_assert(sizeof(wl_lpm_v4_key) == 8);
static_assert(sizeof(wl_lpm_v6_key) == 20);
static_assert(WL_DROP_MAX == 8);
static_assert(WL_NET_CLASSES == 5);
