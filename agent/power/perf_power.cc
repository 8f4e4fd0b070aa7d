// SPDX-License-Identifier: Apache-2.0
#include "agent/power/perf_power.h"

#include <linux/perf_event.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "agent/common/status_macros.h"
#include "agent/power/counter.h"

namespace wattlens::power {
namespace {

constexpr absl::string_view kPmuDir = "/sys/bus/event_source/devices/power";

struct KnownEvent {
  absl::string_view name;
  Zone zone;
  bool per_package;  // psys is one platform-wide domain
};
constexpr KnownEvent kKnownEvents[] = {
    {"energy-pkg", Zone::kPackage, true}, {"energy-cores", Zone::kCore, true},
    {"energy-gpu", Zone::kUncore, true},  {"energy-ram", Zone::kDram, true},
    {"energy-psys", Zone::kPsys, false},
};

// "event=0x02" (the power PMU's format is config:0-7).
std::optional<uint64_t> ParseEventConfig(absl::string_view text) {
  text = absl::StripAsciiWhitespace(text);
  for (absl::string_view term : absl::StrSplit(text, ',')) {
    std::pair<absl::string_view, absl::string_view> kv =
        absl::StrSplit(term, absl::MaxSplits('=', 1));
    if (kv.first != "event") continue;
    uint64_t value = 0;
    absl::string_view v = kv.second;
    if (absl::ConsumePrefix(&v, "0x") || absl::ConsumePrefix(&v, "0X")) {
      if (!absl::SimpleHexAtoi(v, &value)) return std::nullopt;
    } else if (!absl::SimpleAtoi(v, &value)) {
      return std::nullopt;
    }
    return value;
  }
  return std::nullopt;
}

bool IsPerPackage(absl::string_view name) {
  for (const KnownEvent& k : kKnownEvents) {
    if (k.name == name) return k.per_package;
  }
  return true;
}

}  // namespace

absl::StatusOr<std::vector<int>> ParseCpuList(absl::string_view text) {
  std::vector<int> cpus;
  text = absl::StripAsciiWhitespace(text);
  if (text.empty()) return absl::InvalidArgumentError("empty CPU list");
  for (absl::string_view part : absl::StrSplit(text, ',')) {
    std::pair<absl::string_view, absl::string_view> range =
        absl::StrSplit(part, absl::MaxSplits('-', 1));
    int lo = 0;
    int hi = 0;
    if (!absl::SimpleAtoi(range.first, &lo) || lo < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("bad CPU list \"", text, "\""));
    }
    hi = lo;
    if (!range.second.empty() &&
        (!absl::SimpleAtoi(range.second, &hi) || hi < lo || hi - lo > 65536)) {
      return absl::InvalidArgumentError(
          absl::StrCat("bad CPU list \"", text, "\""));
    }
    for (int c = lo; c <= hi; ++c) cpus.push_back(c);
  }
  return cpus;
}

absl::StatusOr<PerfPowerPmu> DiscoverPerfPowerPmu(const FileSystem& fs) {
  PerfPowerPmu pmu;
  absl::StatusOr<uint64_t> type =
      ReadUint64(fs, absl::StrCat(kPmuDir, "/type"));
  if (!type.ok()) {
    if (absl::IsNotFound(type.status())) {
      return absl::NotFoundError("no perf power PMU");
    }
    return type.status();
  }
  if (*type > UINT32_MAX) return absl::InvalidArgumentError("bad PMU type");
  pmu.type = static_cast<uint32_t>(*type);
  absl::StatusOr<std::string> mask =
      fs.ReadFile(absl::StrCat(kPmuDir, "/cpumask"));
  if (mask.ok()) {
    ASSIGN_OR_RETURN(pmu.cpus, ParseCpuList(*mask));
  } else {
    pmu.cpus = {0};
  }
  for (const KnownEvent& k : kKnownEvents) {
    const std::string base = absl::StrCat(kPmuDir, "/events/", k.name);
    absl::StatusOr<std::string> spec = fs.ReadFile(base);
    if (!spec.ok()) continue;
    std::optional<uint64_t> config = ParseEventConfig(*spec);
    absl::StatusOr<std::string> scale =
        fs.ReadFile(absl::StrCat(base, ".scale"));
    absl::StatusOr<std::string> unit =
        ReadTrimmed(fs, absl::StrCat(base, ".unit"));
    std::optional<double> scale_value =
        scale.ok() ? ParseDouble(*scale) : std::nullopt;
    if (!config || !scale_value || !(*scale_value > 0) || !unit.ok() ||
        *unit != "Joules") {
      continue;  // an event we cannot convert to energy is no use
    }
    pmu.events.push_back({std::string(k.name), k.zone, *config, *scale_value});
  }
  if (pmu.events.empty()) {
    return absl::NotFoundError("perf power PMU has no usable energy events");
  }
  return pmu;
}

absl::StatusOr<int> SyscallPerfBackend::Open(uint32_t type, uint64_t config,
                                             int cpu) {
  perf_event_attr attr;
  std::memset(&attr, 0, sizeof(attr));
  attr.size = sizeof(attr);
  attr.type = type;
  attr.config = config;
  long fd = syscall(SYS_perf_event_open, &attr, /*pid=*/-1, cpu,
                    /*group_fd=*/-1, PERF_FLAG_FD_CLOEXEC);
  if (fd < 0) {
    return ErrnoToStatus(
        errno, absl::StrCat("perf_event_open power type ", type, " config ",
                            config, " cpu ", cpu));
  }
  return static_cast<int>(fd);
}

absl::StatusOr<uint64_t> SyscallPerfBackend::Read(int handle) {
  uint64_t value = 0;
  ssize_t n = read(handle, &value, sizeof(value));
  if (n != static_cast<ssize_t>(sizeof(value))) {
    return ErrnoToStatus(n < 0 ? errno : EIO, "read perf power counter");
  }
  return value;
}

void SyscallPerfBackend::Close(int handle) { close(handle); }

PerfPowerSource::PerfPowerSource(std::shared_ptr<const FileSystem> fs,
                                 const Clock& clock,
                                 std::shared_ptr<PerfCounterBackend> backend,
                                 PerfPowerConfig config)
    : fs_(std::move(fs)),
      clock_(clock),
      backend_(std::move(backend)),
      config_(config) {}

PerfPowerSource::~PerfPowerSource() { CloseAll(); }

void PerfPowerSource::CloseAll() {
  for (Counter& c : counters_) {
    if (c.handle >= 0) backend_->Close(c.handle);
  }
  counters_.clear();
}

absl::Status PerfPowerSource::Init() {
  CloseAll();
  absl::StatusOr<PerfPowerPmu> pmu = DiscoverPerfPowerPmu(*fs_);
  if (!pmu.ok()) return SetUnavailable(pmu.status());
  absl::Status first_error;
  for (const PerfPowerEvent& event : pmu->events) {
    const size_t domains = IsPerPackage(event.name) ? pmu->cpus.size() : 1;
    for (size_t d = 0; d < domains; ++d) {
      const int cpu = pmu->cpus[d];
      absl::StatusOr<int> handle = backend_->Open(pmu->type, event.config, cpu);
      absl::StatusOr<uint64_t> count =
          handle.ok() ? backend_->Read(*handle) : handle.status();
      if (!count.ok()) {
        if (handle.ok()) backend_->Close(*handle);
        rejected_.Add(RejectReason::kUnreadable);
        if (first_error.ok()) first_error = count.status();
        continue;
      }
      Counter c;
      c.event = event;
      c.domain = IsPerPackage(event.name) ? static_cast<int>(d) : -1;
      c.handle = *handle;
      c.last_count = *count;
      c.last_ns = clock_.MonotonicNs();
      counters_.push_back(std::move(c));
    }
  }
  if (counters_.empty()) {
    return SetUnavailable(first_error.ok()
                              ? absl::UnavailableError("no perf power counter")
                              : first_error);
  }
  if (first_error.ok()) {
    SetHealthy();
  } else {
    SetDegraded(std::string(first_error.message()));
  }
  return absl::OkStatus();
}

absl::StatusOr<PowerSample> PerfPowerSource::Sample() {
  if (counters_.empty()) {
    return absl::FailedPreconditionError("perf power source not initialised");
  }
  const uint64_t rejects_before = rejected_.Total();
  std::string last_reject;
  PowerSample sample;
  const int64_t now = clock_.MonotonicNs();
  sample.timestamp_ns = now;
  for (Counter& c : counters_) {
    absl::StatusOr<uint64_t> count = backend_->Read(c.handle);
    if (!count.ok()) {
      rejected_.Add(RejectReason::kUnreadable);
      last_reject = std::string(count.status().message());
      continue;
    }
    const int64_t interval = now - c.last_ns;
    const uint64_t prev = c.last_count;
    c.last_count = *count;
    c.last_ns = now;
    if (*count < prev) {
      rejected_.Add(RejectReason::kBackwards);
      last_reject = absl::StrCat(c.event.name, " went backwards");
      c.carry_uj = 0;
      continue;
    }
    const long double uj =
        static_cast<long double>(*count - prev) * c.event.scale_joules * 1e6L +
        c.carry_uj;
    const long double whole = std::floor(uj);
    const long double max_uj =
        static_cast<long double>(config_.max_power_w) * interval / 1000.0L;
    if (whole > max_uj) {
      rejected_.Add(RejectReason::kImplausible);
      last_reject = absl::StrCat(c.event.name, ": ", static_cast<double>(whole),
                                 " uJ in ", interval, " ns exceeds ",
                                 config_.max_power_w, " W");
      c.carry_uj = 0;
      continue;
    }
    c.carry_uj = uj - whole;
    ZoneReading r;
    r.zone = c.event.zone;
    r.domain = c.domain;
    r.label = c.event.name;
    r.source = std::string(name());
    r.energy_uj = static_cast<int64_t>(whole);
    r.interval_ns = interval;
    sample.readings.push_back(std::move(r));
  }
  UpdateHealthAfterSample(rejects_before, last_reject);
  return sample;
}

}  // namespace wattlens::power
