// SPDX-License-Identifier: Apache-2.0
#include "agent/power/nvml.h"

#include <dlfcn.h>

#include <map>

#include "absl/strings/str_cat.h"
#include "agent/power/counter.h"

namespace wattlens::power {
namespace {

template <typename Fn>
bool Resolve(void* handle, const char* symbol, Fn* out) {
  void* sym = dlsym(handle, symbol);
  *out = reinterpret_cast<Fn>(sym);
  return sym != nullptr;
}

}  // namespace

absl::StatusOr<std::unique_ptr<NvmlLibrary>> NvmlLibrary::Load(
    const std::string& path) {
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* err = dlerror();
    return absl::UnavailableError(
        absl::StrCat("cannot load ", path, ": ", err ? err : "unknown error"));
  }
  std::unique_ptr<NvmlLibrary> lib(new NvmlLibrary());
  lib->handle_ = handle;
  NvmlApi& a = lib->api_;
  const char* missing = nullptr;
  if (!Resolve(handle, "nvmlInit_v2", &a.init)) missing = "nvmlInit_v2";
  if (!Resolve(handle, "nvmlShutdown", &a.shutdown)) missing = "nvmlShutdown";
  if (!Resolve(handle, "nvmlDeviceGetCount_v2", &a.device_get_count)) {
    missing = "nvmlDeviceGetCount_v2";
  }
  if (!Resolve(handle, "nvmlDeviceGetHandleByIndex_v2",
               &a.device_get_handle_by_index)) {
    missing = "nvmlDeviceGetHandleByIndex_v2";
  }
  if (!Resolve(handle, "nvmlDeviceGetPowerUsage", &a.device_get_power_usage)) {
    missing = "nvmlDeviceGetPowerUsage";
  }
  if (missing != nullptr) {
    return absl::UnavailableError(
        absl::StrCat(path, " lacks the NVML symbol ", missing));
  }
  Resolve(handle, "nvmlDeviceGetTotalEnergyConsumption",
          &a.device_get_total_energy_consumption);
  Resolve(handle, "nvmlDeviceGetProcessUtilization",
          &a.device_get_process_utilization);
  Resolve(handle, "nvmlErrorString", &a.error_string);
  return lib;
}

NvmlLibrary::~NvmlLibrary() {
  if (handle_ != nullptr) dlclose(handle_);
}

NvmlGpuSource::NvmlGpuSource(const Clock& clock, NvmlConfig config)
    : clock_(clock), config_(std::move(config)) {}

NvmlGpuSource::~NvmlGpuSource() {
  if (initialised_ && api_ != nullptr && api_->shutdown != nullptr) {
    api_->shutdown();
  }
}

std::string NvmlGpuSource::ErrorText(NvmlReturn ret) const {
  if (api_ != nullptr && api_->error_string != nullptr) {
    const char* s = api_->error_string(ret);
    if (s != nullptr) return absl::StrCat(s, " (", ret, ")");
  }
  return absl::StrCat("NVML error ", ret);
}

absl::Status NvmlGpuSource::Init() {
  devices_.clear();
  if (test_api_ != nullptr) {
    api_ = test_api_;
  } else if (library_ == nullptr) {
    absl::StatusOr<std::unique_ptr<NvmlLibrary>> lib =
        NvmlLibrary::Load(config_.library_path);
    if (!lib.ok()) return SetUnavailable(lib.status());
    library_ = std::move(*lib);
    api_ = &library_->api();
  }
  if (api_->init == nullptr || api_->device_get_count == nullptr ||
      api_->device_get_handle_by_index == nullptr ||
      api_->device_get_power_usage == nullptr) {
    return SetUnavailable(absl::UnavailableError("incomplete NVML API"));
  }
  if (!initialised_) {
    NvmlReturn ret = api_->init();
    if (ret != kNvmlSuccess) {
      return SetUnavailable(
          absl::UnavailableError(absl::StrCat("nvmlInit: ", ErrorText(ret))));
    }
    initialised_ = true;
  }
  unsigned int count = 0;
  NvmlReturn ret = api_->device_get_count(&count);
  if (ret != kNvmlSuccess) {
    return SetUnavailable(absl::UnavailableError(
        absl::StrCat("nvmlDeviceGetCount: ", ErrorText(ret))));
  }
  if (count == 0) {
    return SetUnavailable(absl::NotFoundError("NVML reports no GPU"));
  }
  const int64_t now = clock_.MonotonicNs();
  std::string problem;
  for (unsigned int i = 0; i < count; ++i) {
    Device d;
    ret = api_->device_get_handle_by_index(i, &d.handle);
    if (ret != kNvmlSuccess) {
      problem = absl::StrCat("GPU ", i, ": ", ErrorText(ret));
      rejected_.Add(RejectReason::kUnreadable);
      d.handle = nullptr;
    } else if (api_->device_get_total_energy_consumption != nullptr &&
               api_->device_get_total_energy_consumption(
                   d.handle, &d.last_mj) == kNvmlSuccess) {
      d.has_energy_counter = true;
    } else {
      unsigned int mw = 0;
      if (api_->device_get_power_usage(d.handle, &mw) == kNvmlSuccess) {
        d.last_mw = mw;
      }
    }
    d.last_ns = now;
    d.last_seen_us =
        static_cast<unsigned long long>(clock_.RealtimeNs() / 1000);
    devices_.push_back(d);
  }
  if (problem.empty()) {
    SetHealthy();
  } else {
    SetDegraded(problem);
  }
  return absl::OkStatus();
}

void NvmlGpuSource::ReadProcesses(int index, Device& d, PowerSample& sample) {
  if (api_->device_get_process_utilization == nullptr) return;
  unsigned int count = 0;
  NvmlReturn ret = api_->device_get_process_utilization(d.handle, nullptr,
                                                        &count, d.last_seen_us);
  if (ret != kNvmlErrorInsufficientSize || count == 0) return;
  std::vector<NvmlProcessUtilizationSample> samples(count);
  ret = api_->device_get_process_utilization(d.handle, samples.data(), &count,
                                             d.last_seen_us);
  if (ret != kNvmlSuccess) return;
  std::map<int32_t, uint64_t> by_pid;
  for (unsigned int i = 0; i < count && i < samples.size(); ++i) {
    const NvmlProcessUtilizationSample& s = samples[i];
    if (s.sm_util > 100) continue;  // not a percentage: ignore
    by_pid[static_cast<int32_t>(s.pid)] += s.sm_util;
    d.last_seen_us = std::max(d.last_seen_us, s.time_stamp);
  }
  for (const auto& [pid, util] : by_pid) {
    sample.gpu_processes.push_back({index, pid, util});
  }
}

absl::StatusOr<PowerSample> NvmlGpuSource::Sample() {
  if (api_ == nullptr || !initialised_) {
    return absl::FailedPreconditionError("NVML source not initialised");
  }
  const uint64_t rejects_before = rejected_.Total();
  std::string last_reject;
  PowerSample sample;
  const int64_t now = clock_.MonotonicNs();
  sample.timestamp_ns = now;
  for (size_t i = 0; i < devices_.size(); ++i) {
    Device& d = devices_[i];
    if (d.handle == nullptr) continue;
    const int64_t interval = now - d.last_ns;
    int64_t energy_uj = 0;
    if (d.has_energy_counter) {
      unsigned long long mj = 0;
      NvmlReturn ret = api_->device_get_total_energy_consumption(d.handle, &mj);
      if (ret != kNvmlSuccess) {
        rejected_.Add(RejectReason::kUnreadable);
        last_reject = absl::StrCat("GPU ", i, " energy: ", ErrorText(ret));
        continue;
      }
      const unsigned long long prev = d.last_mj;
      d.last_mj = mj;
      d.last_ns = now;
      absl::StatusOr<CounterDelta> delta = ResolveCounterDelta(
          prev * 1000, mj * 1000, /*range_uj=*/0,
          CounterBounds{interval, 0, config_.max_power_w, std::nullopt});
      if (!delta.ok()) {
        rejected_.Add(absl::IsFailedPrecondition(delta.status())
                          ? RejectReason::kBackwards
                          : RejectReason::kImplausible);
        last_reject = absl::StrCat("GPU ", i, ": ", delta.status().message());
        continue;
      }
      energy_uj = static_cast<int64_t>(delta->energy_uj);
    } else {
      unsigned int mw = 0;
      NvmlReturn ret = api_->device_get_power_usage(d.handle, &mw);
      const std::optional<unsigned int> prev = d.last_mw;
      d.last_ns = now;
      d.last_mw.reset();
      if (ret != kNvmlSuccess) {
        rejected_.Add(RejectReason::kUnreadable);
        last_reject = absl::StrCat("GPU ", i, " power: ", ErrorText(ret));
        continue;
      }
      if (mw / 1000.0 > config_.max_power_w) {
        rejected_.Add(RejectReason::kImplausible);
        last_reject = absl::StrCat("GPU ", i, ": ", mw, " mW is implausible");
        continue;
      }
      d.last_mw = mw;
      const double avg_mw = prev ? (static_cast<double>(*prev) + mw) / 2 : mw;
      energy_uj = PowerToMicrojoules(avg_mw / 1000.0, interval);
    }
    ZoneReading r;
    r.zone = Zone::kGpu;
    r.domain = static_cast<int>(i);
    r.label = absl::StrCat("gpu-", i);
    r.source = d.has_energy_counter ? "nvml-energy" : "nvml-power";
    r.energy_uj = energy_uj;
    r.interval_ns = interval;
    sample.readings.push_back(std::move(r));
    ReadProcesses(static_cast<int>(i), d, sample);
  }
  UpdateHealthAfterSample(rejects_before, last_reject);
  return sample;
}

}  // namespace wattlens::power
