// SPDX-License-Identifier: Apache-2.0
#include "agent/power/probe.h"

#include <map>

#include "absl/strings/str_cat.h"
#include "spdlog/spdlog.h"

namespace wattlens::power {
namespace {

// A fixed set of files, for a PMU description that is not on disk.
class FixedFileSystem final : public FileSystem {
 public:
  explicit FixedFileSystem(std::map<std::string, std::string> files)
      : files_(std::move(files)) {}
  absl::StatusOr<std::string> ReadFile(absl::string_view path) const override {
    auto it = files_.find(std::string(path));
    if (it == files_.end()) {
      return absl::NotFoundError(absl::StrCat(path, " not found"));
    }
    return it->second;
  }
  absl::StatusOr<std::vector<std::string>> ListDir(
      absl::string_view path) const override {
    return absl::NotFoundError(absl::StrCat(path, " not found"));
  }

 private:
  std::map<std::string, std::string> files_;
};

// Every counter opens and reads 0, forever.
class ZeroPerfBackend final : public PerfCounterBackend {
 public:
  absl::StatusOr<int> Open(uint32_t, uint64_t, int) override { return 1; }
  absl::StatusOr<uint64_t> Read(int) override { return 0; }
  void Close(int) override {}
};

}  // namespace

std::unique_ptr<PowerSource> DeadPerfPowerSourceForTest(const Clock& clock) {
  const std::string dir = "/sys/bus/event_source/devices/power";
  auto fs =
      std::make_shared<FixedFileSystem>(std::map<std::string, std::string>{
          {dir + "/type", "24\n"},
          {dir + "/cpumask", "0\n"},
          {dir + "/events/energy-psys", "event=0x05\n"},
          {dir + "/events/energy-psys.scale", "2.3283064365386962890625e-10\n"},
          {dir + "/events/energy-psys.unit", "Joules\n"},
      });
  return std::make_unique<PerfPowerSource>(fs, clock,
                                           std::make_shared<ZeroPerfBackend>());
}

MeterGuard GuardProbedSources(ProbeResult& probe, MeterCheckConfig config) {
  std::vector<std::unique_ptr<PowerSource>> candidates;
  if (probe.cpu) candidates.push_back(std::move(probe.cpu));
  for (auto& f : probe.fallbacks) candidates.push_back(std::move(f));
  probe.fallbacks.clear();
  std::vector<RejectedSource> rejects;
  for (const ProbeAttempt& a : probe.attempts) {
    if (a.status.ok() || a.source == "nvml") continue;
    rejects.push_back({a.source,
                       absl::IsNotFound(a.status)
                           ? SourceRejectReason::kAbsent
                           : SourceRejectReason::kUnavailable,
                       std::string(a.status.message())});
  }
  return MeterGuard(std::move(candidates), std::move(rejects), config);
}

absl::string_view SourceKindName(SourceKind kind) {
  switch (kind) {
    case SourceKind::kRaplPowercap:
      return "rapl-powercap";
    case SourceKind::kPerfPower:
      return "perf-power";
    case SourceKind::kHwmon:
      return "hwmon";
    case SourceKind::kModel:
      return "model";
  }
  return "unknown";
}

ProbeResult ProbePowerSources(const ProbeDeps& deps,
                              const ProbeConfig& config) {
  ProbeResult result;
  const Clock& clock = deps.clock ? *deps.clock : RealClock::Get();
  std::shared_ptr<const FileSystem> fs =
      deps.fs ? deps.fs : std::make_shared<RootedFileSystem>("/");
  auto keep = [&](std::unique_ptr<PowerSource> source) {
    spdlog::info("power: CPU energy {} {} ({})",
                 result.cpu ? "fallback" : "from", std::string(source->name()),
                 std::string(HealthName(source->health())));
    if (result.cpu) {
      result.fallbacks.push_back(std::move(source));
    } else {
      result.cpu = std::move(source);
    }
  };
  if (deps.dead_perf_power_for_test) {
    std::unique_ptr<PowerSource> dead = DeadPerfPowerSourceForTest(clock);
    absl::Status s = dead->Init();
    result.attempts.push_back({"perf-power", s});
    if (s.ok()) keep(std::move(dead));
  }
  for (SourceKind kind : config.order) {
    if (result.cpu && !config.keep_fallbacks) break;
    if (kind == SourceKind::kPerfPower && deps.dead_perf_power_for_test) {
      continue;
    }
    std::unique_ptr<PowerSource> source;
    switch (kind) {
      case SourceKind::kRaplPowercap:
        source = std::make_unique<RaplPowercapSource>(fs, clock, config.rapl);
        break;
      case SourceKind::kPerfPower:
        source = std::make_unique<PerfPowerSource>(
            fs, clock,
            deps.perf ? deps.perf : std::make_shared<SyscallPerfBackend>(),
            config.perf);
        break;
      case SourceKind::kHwmon:
        source = std::make_unique<HwmonSource>(fs, clock, config.hwmon);
        break;
      case SourceKind::kModel:
        source = std::make_unique<ModelSource>(
            fs, clock,
            deps.utilisation ? deps.utilisation
                             : std::make_shared<ProcStatUtilisation>(fs),
            config.model);
        break;
    }
    absl::Status s = source->Init();
    result.attempts.push_back({std::string(SourceKindName(kind)), s});
    if (s.ok()) {
      keep(std::move(source));
      continue;
    }
    spdlog::info("power: {} unavailable: {}", std::string(SourceKindName(kind)),
                 std::string(s.message()));
  }
  if (config.probe_gpu) {
    auto gpu = std::make_unique<NvmlGpuSource>(clock, config.nvml);
    if (deps.nvml_api_for_test) gpu->UseApiForTest(deps.nvml_api_for_test);
    absl::Status s = gpu->Init();
    result.attempts.push_back({"nvml", s});
    if (s.ok()) {
      result.gpu = std::move(gpu);
    } else {
      spdlog::info("power: no NVIDIA GPU energy: {}", std::string(s.message()));
    }
  }
  return result;
}

}  // namespace wattlens::power
