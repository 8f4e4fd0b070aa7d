#include "agent/power/probe.h"

#include "spdlog/spdlog.h"

namespace wattlens::power {

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
  for (SourceKind kind : config.order) {
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
      spdlog::info("power: CPU energy from {} ({})",
                   std::string(source->name()),
                   std::string(HealthName(source->health())));
      result.cpu = std::move(source);
      break;
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
