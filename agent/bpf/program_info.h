// SPDX-License-Identifier: Apache-2.0
// Facts the agent reports about its own BPF objects: drops counted in the
// kernel, map fill, per-program run statistics.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "agent/bpf/abi.h"

struct bpf_object;
struct bpf_map;

namespace wattlens {

// Indexed by enum wl_drop_reason (DropReason's kernel values).
using DropCounts = std::array<uint64_t, WL_DROP_MAX>;

struct ProgramStats {
  std::string name;
  uint64_t run_count = 0;
  uint64_t run_time_ns = 0;
  uint32_t verified_insns = 0;  // instructions the verifier processed
};

struct MapFill {
  std::string name;
  uint64_t entries = 0;
  uint64_t max_entries = 0;
};

// Sums the per-CPU `drops` array of one object.
absl::StatusOr<DropCounts> ReadDropCounts(const bpf_map* drops, int ncpus);

// Run count and time of every loaded program of `obj` (zero unless
// kernel.bpf_stats_enabled is on or someone holds a BPF_ENABLE_STATS fd).
std::vector<ProgramStats> ReadProgramStats(bpf_object* obj);

}  // namespace wattlens
