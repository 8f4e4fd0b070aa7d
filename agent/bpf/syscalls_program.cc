// SPDX-License-Identifier: Apache-2.0
#include "agent/bpf/syscalls_program.h"

#include <sys/syscall.h>

#include "absl/strings/str_cat.h"
#include "agent/bpf/libbpf_log.h"
#include "agent/common/status_macros.h"
#include "syscalls.skel.h"

namespace wattlens {

absl::StatusOr<std::unique_ptr<SyscallsProgram>> SyscallsProgram::Create(
    const SyscallsProgramConfig& config, int ncpus) {
  syscalls_bpf* skel = syscalls_bpf__open();
  if (!skel) return absl::ErrnoToStatus(errno, "opening syscalls BPF object");
  std::unique_ptr<SyscallsProgram> owner(
      new SyscallsProgram(skel, ncpus, config.map_entries));
  // Configure between open and load.
  skel->rodata->exit_nr = SYS_exit;
  skel->rodata->exit_group_nr = SYS_exit_group;
  skel->rodata->have_task_pt_regs = config.task_pt_regs;
  int err =
      bpf_map__set_max_entries(skel->maps.syscall_counts, config.map_entries);
  if (err) return LibbpfError(err, "sizing syscall_counts");
  // wl_sys_flush is run on demand (FlushCaches), never attached.
  bpf_program__set_autoattach(skel->progs.wl_sys_flush, false);
  size_t elf_size = 0;
  const void* elf = syscalls_bpf__elf_bytes(&elf_size);
  owner->pins_ = ObjectPins::Prepare(
      config.pin, "syscalls", skel->obj, elf, elf_size,
      absl::StrCat(SYS_exit, " ", SYS_exit_group, " ", config.task_pt_regs));
  LibbpfLogCapture log;
  if ((err = syscalls_bpf__load(skel))) {
    return log.Error(err, "loading the syscalls BPF object");
  }
  RETURN_IF_ERROR(owner->pins_->Attach(skel->obj));
  return owner;
}

SyscallsProgram::~SyscallsProgram() {
  pins_.reset();  // links first: they hold the programs
  syscalls_bpf__destroy(skel_);
}

absl::Status SyscallsProgram::ReadCounts(
    const std::function<void(const wl_syscall_key&, const wl_syscall_val&)>& fn,
    MapReadStats* stats) {
  RETURN_IF_ERROR(FlushCaches());
  return ReadPerCpuMap<wl_syscall_key, wl_syscall_val>(
      bpf_map__fd(skel_->maps.syscall_counts), ncpus_, map_entries_, fn, stats);
}

absl::Status SyscallsProgram::FlushCaches(int* offline_cpus) {
  return FlushPerCpuCaches(bpf_program__fd(skel_->progs.wl_sys_flush), ncpus_,
                           offline_cpus);
}

absl::Status SyscallsProgram::DeleteKeys(
    const std::vector<wl_syscall_key>& keys) {
  return DeleteMapKeys(bpf_map__fd(skel_->maps.syscall_counts), keys.data(),
                       sizeof(wl_syscall_key), keys.size());
}

absl::StatusOr<DropCounts> SyscallsProgram::ReadDrops() {
  return ReadDropCounts(skel_->maps.drops, ncpus_);
}

std::vector<ProgramStats> SyscallsProgram::ReadProgramStats() {
  return wattlens::ReadProgramStats(skel_->obj);
}

}  // namespace wattlens
