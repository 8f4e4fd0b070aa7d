// SPDX-License-Identifier: Apache-2.0
// Owner of bpf/syscalls.bpf.c: open -> configure -> load -> attach in
// Create(), detach and free in the destructor.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "agent/bpf/abi.h"
#include "agent/bpf/map_reader.h"
#include "agent/bpf/pinning.h"
#include "agent/bpf/program_info.h"

struct syscalls_bpf;

namespace wattlens {

struct SyscallsProgramConfig {
  uint32_t map_entries = 16384;
  // bpf_task_pt_regs() is available (KernelFeatures::task_pt_regs); false
  // finds an exiting task's registers on its kernel stack instead.
  bool task_pt_regs = true;
  PinConfig pin;
};

class SyscallsProgram {
 public:
  static absl::StatusOr<std::unique_ptr<SyscallsProgram>> Create(
      const SyscallsProgramConfig& config, int ncpus);
  ~SyscallsProgram();
  SyscallsProgram(const SyscallsProgram&) = delete;
  SyscallsProgram& operator=(const SyscallsProgram&) = delete;

  // Cumulative counts per (process, syscall) since the key was created:
  // flushes every CPU's cache into the hash (FlushCaches), then reads it.
  absl::Status ReadCounts(const std::function<void(const wl_syscall_key&,
                                                   const wl_syscall_val&)>& fn,
                          MapReadStats* stats);
  absl::Status DeleteKeys(const std::vector<wl_syscall_key>& keys);
  // Moves the counts each online CPU holds in its cache into the hash, by
  // running wl_sys_flush on that CPU. Afterwards the hash holds every
  // syscall that exited before the call. Offline CPUs are skipped (what they
  // cached is flushed once they are back); `offline_cpus` counts them.
  absl::Status FlushCaches(int* offline_cpus = nullptr);
  absl::StatusOr<DropCounts> ReadDrops();
  std::vector<ProgramStats> ReadProgramStats();
  uint32_t map_capacity() const { return map_entries_; }
  const ObjectPins& pins() const { return *pins_; }

 private:
  SyscallsProgram(syscalls_bpf* skel, int ncpus, uint32_t map_entries)
      : skel_(skel), ncpus_(ncpus), map_entries_(map_entries) {}
  syscalls_bpf* skel_;
  int ncpus_;
  uint32_t map_entries_;
  std::unique_ptr<ObjectPins> pins_;
};

}  // namespace wattlens
