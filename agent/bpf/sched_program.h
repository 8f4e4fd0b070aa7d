// SPDX-License-Identifier: Apache-2.0
// Owner of bpf/sched.bpf.c: on-CPU time and the process lifecycle ring
// buffer.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "agent/bpf/abi.h"
#include "agent/bpf/kernel_features.h"
#include "agent/bpf/map_reader.h"
#include "agent/bpf/pinning.h"
#include "agent/bpf/program_info.h"

struct sched_bpf;
struct ring_buffer;
struct bpf_link;

namespace wattlens {

struct SchedProgramConfig {
  uint32_t map_entries = 16384;
  // sampled: exiting threads held until a drain sees them switched out
  // dead. Each pins its task_struct (~6 KiB) for up to one interval.
  uint32_t dying_entries = 8192;
  uint32_t ringbuf_bytes = 4u << 20;  // power of two
  CpuTimeSource cpu_time_source = CpuTimeSource::kSampled;
  // EXEC records carry the executable's path (the walk is a bpf_loop
  // callback, 5.17); without it they carry none and the agent reads
  // /proc/<pid>/exe where it may.
  bool exe_paths = true;
  PinConfig pin;
};

// The path in `p` (names leaf first), or nullopt if it was truncated or is
// empty: a file in no mounted tree (a memfd, for one) has no path to give,
// and /proc/<pid>/exe would only name it "/memfd:... (deleted)".
std::optional<std::string> ExePathFromWire(const wl_exe_path& p);

class SchedProgram {
 public:
  using EventFn = std::function<void(const wl_event&)>;
  // A process and the executable it runs; `timestamp_ns` orders it among
  // the lifecycle events (0 for the start-up scan).
  using ExeFn = std::function<void(uint32_t tgid, uint64_t start_ns,
                                   uint64_t timestamp_ns, std::string path)>;

  // `on_event` runs on the thread that calls PollEvents, once per record.
  static absl::StatusOr<std::unique_ptr<SchedProgram>> Create(
      const SchedProgramConfig& config, int ncpus, EventFn on_event);
  ~SchedProgram();
  SchedProgram(const SchedProgram&) = delete;
  SchedProgram& operator=(const SchedProgram&) = delete;

  // Receives the executable of every EXEC record whose path is usable, on
  // the thread that calls PollEvents, before that record's `on_event`. Set
  // before the first poll.
  void set_exe_handler(ExeFn on_exe) { on_exe_ = std::move(on_exe); }
  // Names the executable of every process running now (a task iterator:
  // no ptrace access to /proc/<pid>/exe needed). Returns how many were
  // named.
  absl::StatusOr<int> ScanExecutables(const ExeFn& fn);
  // Paths that were too long or too deep to keep (not those of files in no
  // mounted tree), from EXEC records and scans: those processes keep
  // whatever /proc/<pid>/exe gives.
  uint64_t exe_unusable() const { return exe_unusable_.load(); }
  // Ring-buffer records shorter than a wl_event, skipped.
  uint64_t short_records() const { return short_records_.load(); }

  // Waits up to `timeout_ms` for records (the programs submit without
  // wake-ups until the ring is a quarter full, so this mostly times out and
  // then drains in one batch). Returns the number of records consumed.
  absl::StatusOr<int> PollEvents(int timeout_ms);
  // Consumes whatever is in the ring now, without waiting.
  absl::StatusOr<int> ConsumeEvents();

  // Reads the cumulative on-CPU time per key. First brings it up to date:
  // sampled, every thread's runtime so far (the task iterator); with
  // sched_switch, the running task's slice on every CPU (wl_sched_harvest).
  // Either way time is charged to the interval it was used in (within a
  // tick), also for a task that never switches out.
  absl::Status ReadOnCpu(
      const std::function<void(const wl_sched_key&, uint64_t)>& fn,
      MapReadStats* stats);
  // The same, with each key's value per CPU (ncpus() of them) as well as
  // summed, for per-CPU frequency weighting.
  absl::Status ReadOnCpuPerCpu(
      const std::function<void(const wl_sched_key&, uint64_t sum,
                               const uint64_t* per_cpu)>& fn,
      MapReadStats* stats);
  int ncpus() const { return ncpus_; }
  // Why harvesting is off ("" while it works): sampled, the reads then see
  // a thread's time only when it is freed (and threads already held as
  // exiting stay held, their last slices lost); with sched_switch, running
  // slices only at switch-out.
  const std::string& harvest_error() const { return harvest_error_; }
  CpuTimeSource cpu_time_source() const { return config_.cpu_time_source; }
  absl::Status DeleteKeys(const std::vector<wl_sched_key>& keys);
  absl::StatusOr<DropCounts> ReadDrops();
  std::vector<ProgramStats> ReadProgramStats();
  uint32_t map_capacity() const { return config_.map_entries; }
  const ObjectPins& pins() const { return *pins_; }

 private:
  SchedProgram(sched_bpf* skel, int ncpus, SchedProgramConfig config,
               EventFn on_event)
      : skel_(skel),
        ncpus_(ncpus),
        config_(config),
        on_event_(std::move(on_event)) {}
  static int HandleRecord(void* ctx, void* data, size_t size);
  void HarvestRunning();
  void SampleAll();

  sched_bpf* skel_;
  ring_buffer* rb_ = nullptr;
  bpf_link* iter_link_ = nullptr;  // sampled: wl_sched_sample
  int ncpus_;
  SchedProgramConfig config_;
  EventFn on_event_;
  ExeFn on_exe_;
  // Written by the event thread (HandleRecord), read by the drain thread.
  std::atomic<uint64_t> short_records_{0};
  std::atomic<uint64_t> exe_unusable_{0};
  std::string harvest_error_;
  std::unique_ptr<ObjectPins> pins_;
};

}  // namespace wattlens
