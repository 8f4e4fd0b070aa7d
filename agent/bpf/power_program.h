// SPDX-License-Identifier: Apache-2.0
// Owner of bpf/power.bpf.c: per-CPU frequency (power:cpu_frequency) and
// idle residency (power:cpu_idle), sampled once per interval.
//
// Where the tracepoints never fire (VMs: no cpufreq driver, idle handled by
// the hypervisor) the frequency comes from cpufreq sysfs (scaling_cur_freq,
// else cpuinfo_max_freq), else /proc/cpuinfo "cpu MHz", else the nominal
// frequency in the model name ("@ 2.50GHz"), and degraded_reason() says
// which and why. The fallback also stands in per CPU until that CPU's first
// frequency event (cpufreq reports changes only).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "agent/bpf/program_info.h"
#include "agent/common/clock.h"
#include "agent/power/fs.h"
#include "wattlens_power_abi.h"

static_assert(sizeof(wl_cpu_power) == 80);

struct power_bpf;

namespace wattlens {

enum class FrequencySource {
  kNone,        // nothing known: CPU time is weighted as is
  kTracepoint,  // power:cpu_frequency
  kCpufreqCur,  // cpufreq sysfs scaling_cur_freq
  kCpufreqMax,  // cpufreq sysfs cpuinfo_max_freq
  kCpuinfoMhz,  // /proc/cpuinfo "cpu MHz"
  kNominal,     // /proc/cpuinfo model name "@ x.xxGHz"
};
// "none", "tracepoint", "cpufreq-sysfs", "cpufreq-max", "cpuinfo-mhz",
// "nominal".
absl::string_view FrequencySourceName(FrequencySource source);

struct CpuFrequency {
  uint64_t khz = 0;
  FrequencySource source = FrequencySource::kNone;
};

// The fallback frequency of CPUs 0..ncpus-1 from files under `fs` (an
// injected root): cpufreq sysfs, then /proc/cpuinfo. `cpuinfo` caches the
// parsed /proc/cpuinfo between calls when non-null and non-empty.
std::vector<CpuFrequency> ReadFallbackFrequencies(
    const power::FileSystem& fs, int ncpus,
    std::vector<CpuFrequency>* cpuinfo = nullptr);

// Per CPU "cpu MHz" (kCpuinfoMhz) or, without it, the model name's nominal
// frequency (kNominal); indexed by "processor".
std::vector<CpuFrequency> ParseCpuinfoFrequencies(absl::string_view text,
                                                  int ncpus);

struct PowerProgramConfig {
  std::string fs_root = "/";  // cpufreq sysfs and /proc/cpuinfo live here
  std::string proc_root;      // if set, /proc/cpuinfo is read here instead
  bool load_bpf = true;       // false: fallback frequencies only
  // /proc/cpuinfo is re-read every N samples (reading it can be slow on
  // large machines); cpufreq sysfs every sample.
  uint32_t cpuinfo_refresh_every = 10;
};

struct CpuInterval {
  uint64_t khz = 0;  // average over the interval's busy time where known
  FrequencySource source = FrequencySource::kNone;
  uint64_t idle_ns = 0;  // residency in this interval (power:cpu_idle)
  uint64_t idle_entries = 0;
};

struct PowerInterval {
  int64_t interval_ns = 0;
  std::vector<CpuInterval> cpus;
  // Mean over CPUs, weighted by busy time where idle residency is known.
  uint64_t mean_khz = 0;
  // The source of most CPUs' frequency.
  FrequencySource source = FrequencySource::kNone;
  // Every CPU within 1 % of the same frequency: weighting CPU time by the
  // node's mean frequency is then exact.
  bool uniform = true;
  bool idle_tracked = false;  // power:cpu_idle has fired
  // Cumulative, summed over CPUs.
  uint64_t idle_ns_total = 0;
  uint64_t idle_entries_total = 0;
  uint64_t freq_changes_total = 0;
  // CPUs whose power:cpu_frequency has not fired, and where their frequency
  // came from instead (the first such CPU's): what degraded_reason() says.
  int fallback_cpus = 0;
  FrequencySource fallback_source = FrequencySource::kNone;
};

class PowerProgram {
 public:
  // Loads and attaches power.bpf.c (unless config.load_bpf is false). A
  // kernel without one of the tracepoints loads the other (feature probe)
  // and says so in degraded_reason().
  static absl::StatusOr<std::unique_ptr<PowerProgram>> Create(
      const PowerProgramConfig& config, int ncpus,
      const Clock& clock = RealClock::Get());
  ~PowerProgram();
  PowerProgram(const PowerProgram&) = delete;
  PowerProgram& operator=(const PowerProgram&) = delete;

  // Frequency and idle residency since the previous Sample() (or Create()).
  PowerInterval Sample();

  bool bpf_loaded() const { return skel_ != nullptr; }
  // Empty when the tracepoints report everything; otherwise what is missing
  // and what stands in for it. Updated by Sample().
  const std::string& degraded_reason() const { return degraded_; }
  std::vector<ProgramStats> ReadProgramStats();

 private:
  PowerProgram(const PowerProgramConfig& config, int ncpus, const Clock& clock);
  struct Last {
    uint64_t khz_us = 0;  // including the open stretch at the last sample
    uint64_t busy_ns = 0;
    uint64_t busy_khz_us = 0;
    uint64_t idle_ns = 0;  // including the open idle stretch
    uint64_t idle_entries = 0;
    uint64_t khz = 0;
  };

  PowerProgramConfig config_;
  int ncpus_;
  const Clock& clock_;
  std::shared_ptr<power::RootedFileSystem> fs_;
  power_bpf* skel_ = nullptr;
  std::string missing_tracepoints_;
  std::vector<Last> last_;
  int64_t last_ns_ = 0;
  uint64_t samples_ = 0;
  std::vector<CpuFrequency> cpuinfo_;
  std::string degraded_;
};

}  // namespace wattlens
