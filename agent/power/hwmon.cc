// SPDX-License-Identifier: Apache-2.0
#include "agent/power/hwmon.h"

#include <cctype>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "agent/power/counter.h"

namespace wattlens::power {
namespace {

constexpr absl::string_view kHwmon = "/sys/class/hwmon";
// Drivers report these when the firmware has no value.
constexpr uint64_t kSentinel32 = 0xFFFFFFFFull;
constexpr uint64_t kSentinel64 = 0xFFFFFFFFFFFFFFFFull;

// "energy12_input" -> 12 with kind "energy" and suffix "input".
bool MatchSensor(absl::string_view file, absl::string_view kind,
                 absl::string_view suffix, int* index) {
  if (!absl::ConsumePrefix(&file, kind)) return false;
  if (!absl::ConsumeSuffix(&file, suffix)) return false;
  if (!absl::ConsumeSuffix(&file, "_")) return false;
  return !file.empty() && absl::SimpleAtoi(file, index) && *index >= 0;
}

int TrailingNumber(absl::string_view s) {
  size_t i = s.size();
  while (i > 0 && absl::ascii_isdigit(static_cast<unsigned char>(s[i - 1]))) {
    --i;
  }
  int n = -1;
  if (i < s.size() && absl::SimpleAtoi(s.substr(i), &n)) return n;
  return -1;
}

// Labels vary by driver: amd_energy has "Esocket0"/"Ecore012", others
// "CPU power", "Package", "SoC". Anything unrecognised is whole-platform.
void Classify(absl::string_view label, Zone* zone, int* domain) {
  const std::string l = absl::AsciiStrToLower(label);
  if (absl::StrContains(l, "socket") || absl::StrContains(l, "package") ||
      absl::StrContains(l, "pkg") || absl::StrContains(l, "cpu")) {
    *zone = Zone::kPackage;
    *domain = std::max(0, TrailingNumber(l));
  } else if (absl::StrContains(l, "core")) {
    *zone = Zone::kCore;
    *domain = TrailingNumber(l);
  } else if (absl::StrContains(l, "dram") || absl::StrContains(l, "mem")) {
    *zone = Zone::kDram;
    *domain = TrailingNumber(l);
  } else {
    *zone = Zone::kPlatform;
    *domain = -1;
  }
}

}  // namespace

HwmonSource::HwmonSource(std::shared_ptr<const FileSystem> fs,
                         const Clock& clock, HwmonConfig config)
    : fs_(std::move(fs)), clock_(clock), config_(config) {}

std::vector<HwmonSource::SensorInfo> HwmonSource::sensors() const {
  std::vector<SensorInfo> out;
  for (const Sensor& s : sensors_) out.push_back(s.info);
  return out;
}

std::optional<uint64_t> HwmonSource::ReadValue(const Sensor& s,
                                               std::string* why) {
  absl::StatusOr<uint64_t> v = ReadUint64(*fs_, s.info.path);
  if (!v.ok()) {
    rejected_.Add(absl::IsInvalidArgument(v.status())
                      ? RejectReason::kUnparsable
                      : RejectReason::kUnreadable);
    *why = std::string(v.status().message());
    return std::nullopt;
  }
  if (*v == kSentinel32 || *v == kSentinel64) {
    rejected_.Add(RejectReason::kSentinel);
    *why = absl::StrCat(s.info.path, ": sentinel value ", *v);
    return std::nullopt;
  }
  if (!s.info.is_energy &&
      static_cast<double>(*v) > config_.max_power_w * 1e6) {
    rejected_.Add(RejectReason::kImplausible);
    *why = absl::StrCat(s.info.path, ": ", *v, " uW exceeds ",
                        config_.max_power_w, " W");
    return std::nullopt;
  }
  return *v;
}

absl::Status HwmonSource::Init() {
  sensors_.clear();
  absl::StatusOr<std::vector<std::string>> devices = fs_->ListDir(kHwmon);
  if (!devices.ok()) {
    return SetUnavailable(absl::NotFoundError(
        absl::StrCat("no hwmon class: ", devices.status().message())));
  }
  for (const std::string& dev : *devices) {
    if (!absl::StartsWith(dev, "hwmon")) continue;
    const std::string base = absl::StrCat(kHwmon, "/", dev);
    absl::StatusOr<std::vector<std::string>> files = fs_->ListDir(base);
    if (!files.ok()) continue;
    absl::StatusOr<std::string> chip = ReadTrimmed(*fs_, base + "/name");
    const std::string chip_name = chip.ok() ? *chip : dev;
    std::vector<Sensor> energy;
    std::vector<std::pair<int, Sensor>> power_average;
    std::vector<std::pair<int, Sensor>> power_input;
    for (const std::string& f : *files) {
      int index = 0;
      const bool is_energy = MatchSensor(f, "energy", "input", &index);
      const bool is_avg =
          !is_energy && MatchSensor(f, "power", "average", &index);
      const bool is_input =
          !is_energy && !is_avg && MatchSensor(f, "power", "input", &index);
      if (!is_energy && !is_avg && !is_input) continue;
      const std::string prefix =
          absl::StrCat(is_energy ? "energy" : "power", index);
      absl::StatusOr<std::string> label =
          ReadTrimmed(*fs_, absl::StrCat(base, "/", prefix, "_label"));
      Sensor s;
      s.info.path = absl::StrCat(base, "/", f);
      s.info.label = absl::StrCat(chip_name, "/", label.ok() ? *label : prefix);
      s.info.is_energy = is_energy;
      Classify(label.ok() ? *label : chip_name, &s.info.zone, &s.info.domain);
      if (is_energy) {
        energy.push_back(std::move(s));
      } else if (is_avg) {
        power_average.emplace_back(index, std::move(s));
      } else {
        power_input.emplace_back(index, std::move(s));
      }
    }
    // Prefer energy counters: a chip that has them needs no integration.
    // Otherwise power<N>_average, and power<N>_input where no average exists.
    if (!energy.empty()) {
      for (Sensor& s : energy) sensors_.push_back(std::move(s));
      continue;
    }
    for (auto& [index, s] : power_average) sensors_.push_back(std::move(s));
    for (auto& [index, s] : power_input) {
      bool has_average = false;
      for (const auto& avg : power_average) has_average |= avg.first == index;
      if (!has_average) sensors_.push_back(std::move(s));
    }
  }
  if (sensors_.empty()) {
    return SetUnavailable(absl::NotFoundError(
        absl::StrCat("no hwmon energy or power sensors under ", kHwmon)));
  }
  const int64_t now = clock_.MonotonicNs();
  std::string why;
  int readable = 0;
  for (Sensor& s : sensors_) {
    s.last_value = ReadValue(s, &why);
    s.last_ns = now;
    if (s.last_value) ++readable;
  }
  if (readable == 0) {
    return SetUnavailable(absl::UnavailableError(
        absl::StrCat("no readable hwmon sensor: ", why)));
  }
  if (why.empty()) {
    SetHealthy();
  } else {
    SetDegraded(why);
  }
  return absl::OkStatus();
}

absl::StatusOr<PowerSample> HwmonSource::Sample() {
  if (sensors_.empty()) {
    return absl::FailedPreconditionError("hwmon source not initialised");
  }
  const uint64_t rejects_before = rejected_.Total();
  std::string last_reject;
  PowerSample sample;
  const int64_t now = clock_.MonotonicNs();
  sample.timestamp_ns = now;
  for (Sensor& s : sensors_) {
    std::optional<uint64_t> cur = ReadValue(s, &last_reject);
    const int64_t interval = now - s.last_ns;
    int64_t energy_uj = 0;
    if (s.info.is_energy) {
      if (!cur) continue;  // keep the last good counter value and time
      const std::optional<uint64_t> prev = s.last_value;
      s.last_value = cur;
      s.last_ns = now;
      if (!prev) continue;  // first good reading: nothing to difference yet
      absl::StatusOr<CounterDelta> d = ResolveCounterDelta(
          *prev, *cur, /*range_uj=*/0,
          CounterBounds{interval, 0, config_.max_power_w, std::nullopt});
      if (!d.ok()) {
        rejected_.Add(absl::IsFailedPrecondition(d.status())
                          ? RejectReason::kBackwards
                          : RejectReason::kImplausible);
        last_reject = absl::StrCat(s.info.path, ": ", d.status().message());
        continue;
      }
      energy_uj = static_cast<int64_t>(d->energy_uj);
    } else {
      // Trapezoid between the two readings; with only one good reading,
      // hold it across the interval. A gap leaves the interval unmetered.
      const std::optional<uint64_t> prev = s.last_value;
      s.last_value = cur;
      s.last_ns = now;
      if (!cur && !prev) continue;
      const double uw =
          cur && prev
              ? (static_cast<double>(*cur) + static_cast<double>(*prev)) / 2
              : static_cast<double>(cur ? *cur : *prev);
      energy_uj = PowerToMicrojoules(uw / 1e6, interval);
    }
    ZoneReading r;
    r.zone = s.info.zone;
    r.domain = s.info.domain;
    r.label = s.info.label;
    r.source = std::string(name());
    r.energy_uj = energy_uj;
    r.interval_ns = interval;
    sample.readings.push_back(std::move(r));
  }
  UpdateHealthAfterSample(rejects_before, last_reject);
  return sample;
}

}  // namespace wattlens::power
