// SPDX-License-Identifier: Apache-2.0
#include "agent/bpf/program_info.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <vector>

#include "agent/common/status_macros.h"

namespace wattlens {

absl::StatusOr<DropCounts> ReadDropCounts(const bpf_map* drops, int ncpus) {
  DropCounts out{};
  std::vector<uint64_t> per_cpu(ncpus);
  for (uint32_t r = 0; r < WL_DROP_MAX; ++r) {
    if (bpf_map_lookup_elem(bpf_map__fd(drops), &r, per_cpu.data()) != 0) {
      return absl::ErrnoToStatus(errno, "reading BPF drop counters");
    }
    for (uint64_t v : per_cpu) out[r] += v;
  }
  return out;
}

std::vector<ProgramStats> ReadProgramStats(bpf_object* obj) {
  std::vector<ProgramStats> out;
  bpf_program* prog;
  bpf_object__for_each_program(prog, obj) {
    int fd = bpf_program__fd(prog);
    if (fd < 0) continue;  // not loaded (autoload off)
    bpf_prog_info info = {};
    uint32_t len = sizeof(info);
    if (bpf_obj_get_info_by_fd(fd, &info, &len) != 0) continue;
    out.push_back({bpf_program__name(prog), info.run_cnt, info.run_time_ns,
                   info.verified_insns});
  }
  return out;
}

}  // namespace wattlens
