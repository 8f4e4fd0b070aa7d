// SPDX-License-Identifier: Apache-2.0
#include "agent/power/power_model.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "agent/common/status_macros.h"
#include "agent/power/counter.h"

namespace wattlens::power {
namespace {

bool ValidCurve(const std::vector<CurvePoint>& curve) {
  if (curve.empty()) return false;
  for (size_t i = 0; i < curve.size(); ++i) {
    if (!std::isfinite(curve[i].utilisation) ||
        !std::isfinite(curve[i].value) || curve[i].value < 0) {
      return false;
    }
    if (i > 0 && curve[i].utilisation <= curve[i - 1].utilisation) {
      return false;
    }
  }
  return true;
}

bool ValidWatts(double w) { return std::isfinite(w) && w >= 0; }

}  // namespace

absl::string_view ModelMethodName(ModelMethod method) {
  return method == ModelMethod::kCcf ? "ccf" : "tdp-curve";
}

double InterpolateCurve(const std::vector<CurvePoint>& curve, double u) {
  if (curve.empty()) return 0;
  if (u <= curve.front().utilisation) return curve.front().value;
  if (u >= curve.back().utilisation) return curve.back().value;
  for (size_t i = 1; i < curve.size(); ++i) {
    if (u <= curve[i].utilisation) {
      const CurvePoint& a = curve[i - 1];
      const CurvePoint& b = curve[i];
      const double t = (u - a.utilisation) / (b.utilisation - a.utilisation);
      return a.value + t * (b.value - a.value);
    }
  }
  return curve.back().value;
}

std::vector<std::pair<std::string, std::string>> ModelCoefficients::Describe()
    const {
  return {
      {"method", std::string(ModelMethodName(method))},
      {"cpu_model", cpu_model},
      {"microarchitecture", microarchitecture},
      {"coefficient_source", coefficient_source},
      {"vcpus", absl::StrCat(vcpus)},
      {"memory_gb", absl::StrCat(memory_gb)},
      {"idle_watts_per_vcpu", absl::StrCat(idle_watts_per_vcpu)},
      {"max_watts_per_vcpu", absl::StrCat(max_watts_per_vcpu)},
      {"memory_idle_watts_per_gb", absl::StrCat(memory_idle_watts_per_gb)},
      {"memory_max_watts_per_gb", absl::StrCat(memory_max_watts_per_gb)},
      {"platform_watts_per_vcpu", absl::StrCat(platform_watts_per_vcpu)},
  };
}

absl::StatusOr<ModelCoefficients> ResolveModel(const CpuInfo& cpu,
                                               double memory_gb,
                                               const ModelConfig& config) {
  ModelCoefficients c;
  c.method = config.method;
  c.cpu_model = cpu.model_name;
  c.microarchitecture =
      config.microarchitecture.value_or(DetectMicroarchitecture(cpu));
  c.vcpus = config.vcpus.value_or(cpu.logical_cpus);
  c.memory_gb = config.memory_gb.value_or(memory_gb);
  if (c.vcpus <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("model needs at least one vCPU, got ", c.vcpus));
  }
  if (!ValidWatts(c.memory_gb)) {
    return absl::InvalidArgumentError("memory_gb must be >= 0");
  }
  if (!(config.max_utilisation >= 1.0 && config.max_utilisation <= 2.0)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "max_utilisation must be in [1, 2], got ", config.max_utilisation));
  }
  if (config.method == ModelMethod::kCcf) {
    const MicroarchWatts row = LookupCcfWatts(c.microarchitecture);
    c.idle_watts_per_vcpu = config.min_watts_per_vcpu.value_or(row.min_watts);
    c.max_watts_per_vcpu = config.max_watts_per_vcpu.value_or(row.max_watts);
    c.memory_idle_watts_per_gb = config.memory_watts_per_gb;
    c.memory_max_watts_per_gb = config.memory_watts_per_gb;
    c.platform_watts_per_vcpu = 0;
    const bool overridden =
        config.min_watts_per_vcpu || config.max_watts_per_vcpu;
    c.coefficient_source =
        overridden ? "config"
                   : absl::StrCat("Cloud Carbon Footprint, ", row.name);
  } else {
    if (!ValidCurve(config.cpu_curve) ||
        !ValidCurve(config.memory_curve_watts_per_gb)) {
      return absl::InvalidArgumentError(
          "load curves need finite, non-negative values at strictly "
          "increasing utilisations");
    }
    const double t = config.tdp_watts_per_thread;
    c.idle_watts_per_vcpu = t * InterpolateCurve(config.cpu_curve, 0);
    c.max_watts_per_vcpu = t * InterpolateCurve(config.cpu_curve, 1);
    c.memory_idle_watts_per_gb =
        InterpolateCurve(config.memory_curve_watts_per_gb, 0);
    c.memory_max_watts_per_gb =
        InterpolateCurve(config.memory_curve_watts_per_gb, 1);
    c.platform_watts_per_vcpu = config.platform_watts_per_vcpu;
    c.coefficient_source =
        absl::StrCat("TDP ", t, " W/thread on the Teads load curve");
  }
  for (double w :
       {c.idle_watts_per_vcpu, c.max_watts_per_vcpu, c.memory_idle_watts_per_gb,
        c.memory_max_watts_per_gb, c.platform_watts_per_vcpu}) {
    if (!ValidWatts(w)) {
      return absl::InvalidArgumentError(
          "model coefficients must be finite and non-negative");
    }
  }
  if (c.max_watts_per_vcpu < c.idle_watts_per_vcpu) {
    return absl::InvalidArgumentError(
        absl::StrCat("max watts per vCPU (", c.max_watts_per_vcpu,
                     ") below idle (", c.idle_watts_per_vcpu, ")"));
  }
  return c;
}

absl::StatusOr<ModelCoefficients> ResolveModel(const FileSystem& fs,
                                               const ModelConfig& config) {
  ASSIGN_OR_RETURN(CpuInfo cpu, ReadCpuInfo(fs));
  double memory_gb = 0;
  if (!config.memory_gb) {
    ASSIGN_OR_RETURN(memory_gb, ReadMemoryGb(fs));
  }
  return ResolveModel(cpu, memory_gb, config);
}

namespace {

// The curve at u, its last segment extended beyond its last point.
double ExtendedCurve(const std::vector<CurvePoint>& curve, double u) {
  if (curve.size() < 2 || u <= curve.back().utilisation) {
    return InterpolateCurve(curve, u);
  }
  const CurvePoint& a = curve[curve.size() - 2];
  const CurvePoint& b = curve.back();
  return b.value + (u - b.utilisation) * (b.value - a.value) /
                       (b.utilisation - a.utilisation);
}

}  // namespace

ModelPower EvaluateModel(const ModelCoefficients& c, const ModelConfig& config,
                         double u) {
  const double u_max = std::clamp(config.max_utilisation, 1.0, 2.0);
  u = std::isfinite(u) ? std::clamp(u, 0.0, u_max) : 0.0;
  ModelPower p;
  p.cpu_idle_watts = c.vcpus * c.idle_watts_per_vcpu;
  p.memory_idle_watts = c.memory_gb * c.memory_idle_watts_per_gb;
  p.platform_watts = c.vcpus * c.platform_watts_per_vcpu;
  if (c.method == ModelMethod::kCcf) {
    p.cpu_watts =
        c.vcpus * (c.idle_watts_per_vcpu +
                   (c.max_watts_per_vcpu - c.idle_watts_per_vcpu) * u);
    p.memory_watts = p.memory_idle_watts;
  } else {
    p.cpu_watts = c.vcpus * config.tdp_watts_per_thread *
                  ExtendedCurve(config.cpu_curve, u);
    p.memory_watts =
        c.memory_gb * ExtendedCurve(config.memory_curve_watts_per_gb, u);
  }
  // A non-monotone override curve could dip below its own idle point; the
  // static term never exceeds the total.
  p.cpu_idle_watts = std::min(p.cpu_idle_watts, p.cpu_watts);
  p.memory_idle_watts = std::min(p.memory_idle_watts, p.memory_watts);
  return p;
}

ProcStatUtilisation::ProcStatUtilisation(std::shared_ptr<const FileSystem> fs)
    : fs_(std::move(fs)) {}

absl::StatusOr<ProcStatUtilisation::Ticks> ProcStatUtilisation::Read() const {
  ASSIGN_OR_RETURN(std::string text, fs_->ReadFile("/proc/stat"));
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (!absl::ConsumePrefix(&line, "cpu ")) continue;
    std::vector<uint64_t> v;
    for (absl::string_view f :
         absl::StrSplit(line, ' ', absl::SkipWhitespace())) {
      uint64_t x = 0;
      if (!absl::SimpleAtoi(f, &x)) {
        return absl::InvalidArgumentError(
            absl::StrCat("/proc/stat: bad cpu field \"", f, "\""));
      }
      v.push_back(x);
    }
    if (v.size() < 4) {
      return absl::InvalidArgumentError("/proc/stat: short cpu line");
    }
    v.resize(std::max<size_t>(v.size(), 8), 0);
    // user nice system idle iowait irq softirq steal [guest guest_nice]
    Ticks t;
    t.busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
    t.total = t.busy + v[3] + v[4];
    return t;
  }
  return absl::InvalidArgumentError("/proc/stat has no aggregate cpu line");
}

absl::Status ProcStatUtilisation::Init() {
  ASSIGN_OR_RETURN(Ticks t, Read());
  last_ = t;
  return absl::OkStatus();
}

absl::StatusOr<double> ProcStatUtilisation::Next() {
  ASSIGN_OR_RETURN(Ticks t, Read());
  if (!last_) {
    last_ = t;
    return absl::FailedPreconditionError("first /proc/stat reading");
  }
  const Ticks prev = *last_;
  last_ = t;
  if (t.total < prev.total || t.busy < prev.busy) {
    return absl::DataLossError("/proc/stat counters went backwards");
  }
  const uint64_t total = t.total - prev.total;
  if (total == 0) return 0.0;
  return std::clamp(
      static_cast<double>(t.busy - prev.busy) / static_cast<double>(total), 0.0,
      1.0);
}

ModelSource::ModelSource(std::shared_ptr<const FileSystem> fs,
                         const Clock& clock,
                         std::shared_ptr<UtilisationSource> utilisation,
                         ModelConfig config)
    : fs_(std::move(fs)),
      clock_(clock),
      utilisation_(std::move(utilisation)),
      config_(std::move(config)),
      name_(absl::StrCat("model:", ModelMethodName(config_.method))) {}

absl::string_view ModelSource::name() const { return name_; }

absl::Status ModelSource::Init() {
  absl::StatusOr<ModelCoefficients> c = ResolveModel(*fs_, config_);
  if (!c.ok()) return SetUnavailable(c.status());
  coefficients_ = *std::move(c);
  if (utilisation_ == nullptr) {
    return SetUnavailable(
        absl::FailedPreconditionError("model needs a utilisation source"));
  }
  absl::Status s = utilisation_->Init();
  if (!s.ok()) return SetUnavailable(s);
  last_ns_ = clock_.MonotonicNs();
  SetHealthy();
  return absl::OkStatus();
}

absl::StatusOr<PowerSample> ModelSource::Sample() {
  if (health() == SourceHealth::kUnavailable ||
      health() == SourceHealth::kUnknown) {
    return absl::FailedPreconditionError("model source not initialised");
  }
  const int64_t now = clock_.MonotonicNs();
  int64_t interval = now - last_ns_;
  last_ns_ = now;
  PowerSample sample;
  sample.timestamp_ns = now;
  absl::StatusOr<double> u = utilisation_->Next();
  if (!u.ok()) {
    // Without utilisation the interval is unmetered rather than guessed.
    rejected_.Add(RejectReason::kUnreadable);
    SetDegraded(absl::StrCat("utilisation: ", u.status().message()));
    return sample;
  }
  if (std::optional<int64_t> own = utilisation_->interval_ns();
      own && *own > 0) {
    interval = *own;
  }
  last_utilisation_ =
      std::isfinite(*u)
          ? std::clamp(*u, 0.0, std::clamp(config_.max_utilisation, 1.0, 2.0))
          : 0.0;
  const ModelPower p = EvaluateModel(coefficients_, config_, last_utilisation_);
  auto add = [&](Zone zone, absl::string_view label, double watts,
                 double idle_watts) {
    ZoneReading r;
    r.zone = zone;
    r.domain = -1;
    r.label = std::string(label);
    r.source = name_;
    r.energy_uj = PowerToMicrojoules(watts, interval);
    r.idle_uj = std::min(r.energy_uj, PowerToMicrojoules(idle_watts, interval));
    r.interval_ns = interval;
    sample.readings.push_back(std::move(r));
  };
  add(Zone::kPackage, "cpu", p.cpu_watts, p.cpu_idle_watts);
  if (p.memory_watts > 0) {
    add(Zone::kDram, "memory", p.memory_watts, p.memory_idle_watts);
  }
  if (p.platform_watts > 0) {
    add(Zone::kPlatform, "platform", p.platform_watts, p.platform_watts);
  }
  SetHealthy();
  return sample;
}

}  // namespace wattlens::power
