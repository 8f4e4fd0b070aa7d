// SPDX-License-Identifier: Apache-2.0
// RAPL through the perf `power` PMU (power/energy-pkg/ and friends), for
// nodes where powercap is missing or root-only: it needs CAP_PERFMON rather
// than file access. Events are discovered from
// /sys/bus/event_source/devices/power/{type,cpumask,events/*}; the counters
// are opened once per package on the CPUs listed in cpumask.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "agent/common/clock.h"
#include "agent/power/fs.h"
#include "agent/power/power_source.h"

namespace wattlens::power {

struct PerfPowerEvent {
  std::string name;  // "energy-pkg"
  Zone zone = Zone::kPackage;
  uint64_t config = 0;      // from "event=0x02"
  double scale_joules = 0;  // joules per count, from <event>.scale
};

struct PerfPowerPmu {
  uint32_t type = 0;
  std::vector<int> cpus;  // one CPU per package
  std::vector<PerfPowerEvent> events;
};

// Reads the PMU description under `fs`; NotFound when there is no power PMU.
absl::StatusOr<PerfPowerPmu> DiscoverPerfPowerPmu(const FileSystem& fs);

// Parses a CPU list such as "0,28" or "0-3,8".
absl::StatusOr<std::vector<int>> ParseCpuList(absl::string_view text);

// The perf_event_open(2) boundary, so tests can supply counter values.
class PerfCounterBackend {
 public:
  virtual ~PerfCounterBackend() = default;
  // Returns a handle for a system-wide counter on `cpu`.
  virtual absl::StatusOr<int> Open(uint32_t type, uint64_t config, int cpu) = 0;
  // Cumulative 64-bit count; the kernel extends the 32-bit MSR itself.
  virtual absl::StatusOr<uint64_t> Read(int handle) = 0;
  virtual void Close(int handle) = 0;
};

// perf_event_open(2) + read(2).
class SyscallPerfBackend final : public PerfCounterBackend {
 public:
  absl::StatusOr<int> Open(uint32_t type, uint64_t config, int cpu) override;
  absl::StatusOr<uint64_t> Read(int handle) override;
  void Close(int handle) override;
};

struct PerfPowerConfig {
  double max_power_w = 1000;  // per counter
};

class PerfPowerSource final : public PowerSource {
 public:
  PerfPowerSource(std::shared_ptr<const FileSystem> fs, const Clock& clock,
                  std::shared_ptr<PerfCounterBackend> backend,
                  PerfPowerConfig config = {});
  ~PerfPowerSource() override;
  absl::string_view name() const override { return "perf-power"; }
  absl::Status Init() override;
  absl::StatusOr<PowerSample> Sample() override;

 private:
  struct Counter {
    PerfPowerEvent event;
    int domain = 0;
    int handle = -1;
    uint64_t last_count = 0;
    int64_t last_ns = 0;
    long double carry_uj = 0;  // sub-microjoule remainder, so nothing drifts
  };
  void CloseAll();

  std::shared_ptr<const FileSystem> fs_;
  const Clock& clock_;
  std::shared_ptr<PerfCounterBackend> backend_;
  PerfPowerConfig config_;
  std::vector<Counter> counters_;
};

}  // namespace wattlens::power
