// SPDX-License-Identifier: Apache-2.0
// Believing a meter only while it behaves. Every CPU energy source that
// initialised is sampled every interval and its reading is checked against
// what the agent itself measured (CPU time) and against what the hardware
// can draw; a source that misbehaves is rejected with a reason and the next
// one in preference order (in the end the model, which measures nothing and
// so is never rejected by these checks) supplies the energy, for the same
// interval. The rules and bounds are in docs/power.md ("Believing a meter").
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "agent/power/power_source.h"

namespace wattlens::power {

// Why a source is not, or no longer, believed: the `reason` label of
// wattlens_agent_power_source_rejected.
enum class SourceRejectReason {
  kAbsent,       // Init: no such hardware or interface on this node
  kUnavailable,  // Init: present but unusable (permission, no readable zone)
  kStuck,        // a counter that must advance did not
  kBackwards,    // went down without a plausible wrap, intervals in a row
  kImplausible,  // implied power outside the plausible range, in a row
  kFailed,       // Sample() itself failed
};
absl::string_view SourceRejectReasonName(SourceRejectReason reason);

struct RejectedSource {
  std::string source;
  SourceRejectReason reason = SourceRejectReason::kAbsent;
  std::string detail;
};

struct MeterCheckConfig {
  int cpus = 1;  // online logical CPUs of the node
  // A zone's plausible ceiling is max(per_domain × domains, per_cpu × cpus),
  // plus per_domain once more for zones covering the whole platform. 12 W
  // per logical CPU is above any x86 part's TDP per hardware thread, 500 W
  // per socket above the largest server TDPs (docs/power.md cites both).
  double ceiling_watts_per_cpu = 12;
  double ceiling_watts_per_domain = 500;
  // An interval is busy when the agent measured at least this fraction of
  // one CPU's time on-CPU in it (50 ms in a 500 ms interval).
  double busy_fraction_of_one_cpu = 0.1;
  // Shorter intervals are not judged: RAPL updates about every 1 ms, so a
  // counter may legitimately stand still over a few.
  int64_t min_judged_interval_ns = 50'000'000;
  // Backwards or implausible readings in this many consecutive intervals
  // reject the source. One is dropped as a glitch (the source restarts from
  // the new value and the next source covers that interval).
  int bad_intervals_to_reject = 2;
};

// What the agent measured over the interval being sampled (injected: the
// guard never reads the wall clock or /proc itself).
struct IntervalLoad {
  int64_t interval_ns = 0;
  uint64_t cpu_busy_ns = 0;  // on-CPU time of every task in the interval
};

// psys, and a metered platform sensor, count the whole platform; package,
// core, uncore and dram (and the model's static platform term) are parts.
bool IsWholePlatformZone(Zone zone, bool from_model);

// The verdict on one reading of one source (exposed for tests).
struct ReadingVerdict {
  bool ok = true;
  // Some reading covered an interval long enough to judge.
  bool judged = false;
  SourceRejectReason reason = SourceRejectReason::kStuck;
  std::string detail;
};
ReadingVerdict CheckReading(const PowerSample& sample, bool from_model,
                            const IntervalLoad& load,
                            const MeterCheckConfig& config);

class MeterGuard {
 public:
  // `candidates`: the CPU sources that initialised, in preference order.
  // `init_rejects`: those that did not, with why.
  MeterGuard(std::vector<std::unique_ptr<PowerSource>> candidates,
             std::vector<RejectedSource> init_rejects, MeterCheckConfig config);

  // Samples every believed source, judges each reading, rejects sources
  // that misbehave, and returns the reading of the first believed source
  // whose reading passed. A meter is used only once it has passed a judged
  // interval: until then (intervals too short to judge) the next source
  // covers. FailedPrecondition when no source is left.
  absl::StatusOr<PowerSample> Sample(const IntervalLoad& load);

  // The source whose reading the last Sample() returned (before the first
  // Sample(): the first believed one); null when none is left.
  const PowerSource* current() const;
  // current() is a meter, not a model.
  bool measured() const;
  // Every source not believed, in the order they were rejected.
  const std::vector<RejectedSource>& rejected() const { return rejected_; }

 private:
  struct Candidate {
    std::unique_ptr<PowerSource> source;
    bool model = false;
    bool believed = true;
    bool verified = false;  // passed a judged interval
    int bad_in_a_row = 0;
  };
  void Reject(Candidate& c, SourceRejectReason reason, std::string detail);

  std::vector<Candidate> candidates_;
  std::vector<RejectedSource> rejected_;
  MeterCheckConfig config_;
  int current_ = -1;
};

}  // namespace wattlens::power
