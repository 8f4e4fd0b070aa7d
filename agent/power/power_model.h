// SPDX-License-Identifier: Apache-2.0
// Node power for nodes without a meter (cloud VMs): per vCPU,
//   P = idle + (max − idle) × f(u)
// with u the fraction of CPU time busy over the interval, plus memory.
//
// Two published methods:
//  - kCcf: Cloud Carbon Footprint's min/max watts per vCPU by CPU
//    microarchitecture, f(u) = u, memory at a constant 0.392 W/GB.
//  - kTdpCurve: per-thread TDP × a load curve through published points
//    (Teads' curve: 12%, 32%, 75%, 102% of TDP at 0, 10, 50, 100% load),
//    memory on its own load curve and a constant per-vCPU platform term.
// Every coefficient can be overridden, and the resolved ones are exposed so
// that every number can be traced to its source.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "agent/common/clock.h"
#include "agent/power/cpu_model.h"
#include "agent/power/fs.h"
#include "agent/power/power_source.h"

namespace wattlens::power {

enum class ModelMethod { kCcf, kTdpCurve };
absl::string_view ModelMethodName(ModelMethod method);  // "ccf", "tdp-curve"

struct CurvePoint {
  double utilisation;
  double value;
};

// Piecewise-linear interpolation; clamps outside the first/last points.
double InterpolateCurve(const std::vector<CurvePoint>& curve, double u);

struct ModelConfig {
  ModelMethod method = ModelMethod::kCcf;
  // Node shape; detected from /proc when unset.
  std::optional<int> vcpus;
  std::optional<double> memory_gb;
  std::optional<std::string> microarchitecture;

  // kCcf. Unset: the CCF row for the microarchitecture.
  std::optional<double> min_watts_per_vcpu;
  std::optional<double> max_watts_per_vcpu;
  // CCF's memory coefficient, 0.392 W/GB (average of Crucial's and Micron's
  // figures, Methodology.md). CCF applies it to all memory on GCP; set 0 to
  // count CPU only.
  double memory_watts_per_gb = 0.392;

  // kTdpCurve.
  double tdp_watts_per_thread = 5.0;  // x86 default without a TDP table
  std::vector<CurvePoint> cpu_curve = {
      {0.0, 0.12}, {0.10, 0.32}, {0.50, 0.75}, {1.0, 1.02}};
  std::vector<CurvePoint> memory_curve_watts_per_gb = {
      {0.0, 0.20}, {0.10, 0.30}, {0.50, 0.40}, {1.0, 0.60}};
  double platform_watts_per_vcpu = 1.0;

  // Highest utilisation taken as given, in [1, 2]. Above 1 the CCF line and
  // the curves' last segments are extended. Utilisation from measured CPU
  // time can exceed 1 in one interval by the accounting lag (running slices
  // are read as of each CPU's last tick) and falls short by as much in
  // another; clamping it would lose that energy. 1 for /proc/stat.
  double max_utilisation = 1.0;
};

// What the model resolved to, for export next to every number it makes.
struct ModelCoefficients {
  ModelMethod method = ModelMethod::kCcf;
  std::string cpu_model;
  std::string microarchitecture;  // "" if unknown
  std::string coefficient_source;
  int vcpus = 0;
  double memory_gb = 0;
  // Per vCPU at u = 0 and u = 1 (kTdpCurve: T × curve(0), T × curve(1)).
  double idle_watts_per_vcpu = 0;
  double max_watts_per_vcpu = 0;
  double memory_idle_watts_per_gb = 0;
  double memory_max_watts_per_gb = 0;
  double platform_watts_per_vcpu = 0;

  // Name/value pairs ("method", "ccf"), ("idle_watts_per_vcpu", "0.74"), ...
  std::vector<std::pair<std::string, std::string>> Describe() const;
};

struct ModelPower {
  double cpu_watts = 0;
  double cpu_idle_watts = 0;
  double memory_watts = 0;
  double memory_idle_watts = 0;
  double platform_watts = 0;  // all static
  double total() const { return cpu_watts + memory_watts + platform_watts; }
  double idle() const {
    return cpu_idle_watts + memory_idle_watts + platform_watts;
  }
};

// Resolves the configuration against the CPU and memory found under `fs`.
absl::StatusOr<ModelCoefficients> ResolveModel(const FileSystem& fs,
                                               const ModelConfig& config);
absl::StatusOr<ModelCoefficients> ResolveModel(const CpuInfo& cpu,
                                               double memory_gb,
                                               const ModelConfig& config);

ModelPower EvaluateModel(const ModelCoefficients& c, const ModelConfig& config,
                         double utilisation);

// Fraction of CPU time busy over successive intervals.
class UtilisationSource {
 public:
  virtual ~UtilisationSource() = default;
  virtual absl::Status Init() { return absl::OkStatus(); }
  // Busy fraction in [0, 1] since the previous call (or Init()).
  virtual absl::StatusOr<double> Next() = 0;
  // The length of the interval the last Next() covered, when the source
  // knows it (e.g. measured CPU time read at known instants): the model
  // then integrates over exactly that interval, not over the time between
  // its own clock reads, so that its energy matches that CPU time.
  virtual std::optional<int64_t> interval_ns() const { return std::nullopt; }
};

// From the aggregate "cpu" line of /proc/stat: busy = user + nice + system
// + irq + softirq + steal, over busy + idle + iowait (guest time is already
// inside user and nice).
class ProcStatUtilisation final : public UtilisationSource {
 public:
  explicit ProcStatUtilisation(std::shared_ptr<const FileSystem> fs);
  absl::Status Init() override;
  absl::StatusOr<double> Next() override;

 private:
  struct Ticks {
    uint64_t busy = 0;
    uint64_t total = 0;
  };
  absl::StatusOr<Ticks> Read() const;
  std::shared_ptr<const FileSystem> fs_;
  std::optional<Ticks> last_;
};

class ModelSource final : public PowerSource {
 public:
  ModelSource(std::shared_ptr<const FileSystem> fs, const Clock& clock,
              std::shared_ptr<UtilisationSource> utilisation,
              ModelConfig config = {});
  absl::string_view name() const override;  // "model:ccf", "model:tdp-curve"
  absl::Status Init() override;
  // Readings for package (CPU), dram (memory) and platform, each with its
  // idle_uj set to the model's static term.
  absl::StatusOr<PowerSample> Sample() override;
  bool is_model() const override { return true; }

  const ModelCoefficients& coefficients() const { return coefficients_; }
  double last_utilisation() const { return last_utilisation_; }

 private:
  std::shared_ptr<const FileSystem> fs_;
  const Clock& clock_;
  std::shared_ptr<UtilisationSource> utilisation_;
  ModelConfig config_;
  std::string name_;
  ModelCoefficients coefficients_;
  int64_t last_ns_ = 0;
  double last_utilisation_ = 0;
};

}  // namespace wattlens::power
