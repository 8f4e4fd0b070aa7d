// SPDX-License-Identifier: Apache-2.0
#include "agent/power/rapl_powercap.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "agent/common/status_macros.h"
#include "agent/power/counter.h"
#include "spdlog/spdlog.h"

namespace wattlens::power {
namespace {

constexpr absl::string_view kPowercap = "/sys/class/powercap";

std::optional<Zone> ZoneFromName(absl::string_view name) {
  if (absl::StartsWith(name, "package")) return Zone::kPackage;
  if (name == "core") return Zone::kCore;
  if (name == "uncore") return Zone::kUncore;
  if (name == "dram") return Zone::kDram;
  if (name == "psys") return Zone::kPsys;
  return std::nullopt;
}

// "intel-rapl:1:2" -> {1, 2}; "intel-rapl:0" -> {0}. The mmio interface
// ("intel-rapl-mmio:0") duplicates the MSR zones and is skipped.
std::optional<std::vector<int>> ParseZoneDir(absl::string_view dir) {
  for (absl::string_view prefix : {"intel-rapl:", "amd-rapl:"}) {
    if (!absl::StartsWith(dir, prefix)) continue;
    std::vector<int> parts;
    for (absl::string_view p : absl::StrSplit(dir.substr(prefix.size()), ':')) {
      int v = 0;
      if (!absl::SimpleAtoi(p, &v) || v < 0) return std::nullopt;
      parts.push_back(v);
    }
    if (parts.empty() || parts.size() > 2) return std::nullopt;
    return parts;
  }
  return std::nullopt;
}

}  // namespace

RaplPowercapSource::RaplPowercapSource(std::shared_ptr<const FileSystem> fs,
                                       const Clock& clock, RaplConfig config)
    : fs_(std::move(fs)), clock_(clock), config_(std::move(config)) {}

std::vector<RaplPowercapSource::ZoneInfo> RaplPowercapSource::zones() const {
  std::vector<ZoneInfo> out;
  for (const ZoneState& z : zones_) out.push_back(z.info);
  return out;
}

absl::Status RaplPowercapSource::Init() {
  zones_.clear();
  absl::StatusOr<std::vector<std::string>> entries = fs_->ListDir(kPowercap);
  if (!entries.ok()) {
    return SetUnavailable(absl::NotFoundError(
        absl::StrCat("no powercap class: ", entries.status().message())));
  }
  // Socket of each top-level zone, so subzones can inherit it.
  std::map<int, int> socket_of_top;
  std::vector<std::pair<std::vector<int>, std::string>> dirs;
  for (const std::string& e : *entries) {
    if (auto parts = ParseZoneDir(e)) dirs.emplace_back(*parts, e);
  }
  // Top-level zones first so subzones find their parent's socket.
  std::stable_sort(dirs.begin(), dirs.end(), [](const auto& a, const auto& b) {
    return a.first.size() < b.first.size();
  });
  int found = 0;
  absl::Status first_error;
  for (const auto& [parts, dir] : dirs) {
    const std::string base = absl::StrCat(kPowercap, "/", dir);
    absl::StatusOr<std::string> label =
        ReadTrimmed(*fs_, absl::StrCat(base, "/name"));
    if (!label.ok()) {
      if (first_error.ok()) first_error = label.status();
      continue;
    }
    std::optional<Zone> zone = ZoneFromName(*label);
    if (!zone) {
      spdlog::info("power: skipping RAPL zone {} named '{}'", dir, *label);
      continue;
    }
    ++found;
    ZoneState z;
    z.info.dir = dir;
    z.info.label = *label;
    z.info.zone = *zone;
    if (parts.size() == 1) {
      int socket = parts[0];
      if (*zone == Zone::kPsys) {
        socket = -1;
      } else if (absl::StartsWith(*label, "package-")) {
        int n = 0;
        if (absl::SimpleAtoi(label->substr(8), &n) && n >= 0) socket = n;
      }
      socket_of_top[parts[0]] = socket;
      z.info.socket = socket;
    } else {
      auto it = socket_of_top.find(parts[0]);
      z.info.socket = it != socket_of_top.end() ? it->second : parts[0];
    }
    // A missing range means "cannot tell a wrap from a reset": deltas that
    // go down are then rejected rather than guessed.
    absl::StatusOr<uint64_t> range =
        ReadUint64(*fs_, absl::StrCat(base, "/max_energy_range_uj"));
    z.info.range_uj = range.ok() ? *range : 0;
    auto max_it = config_.max_power_w_by_zone.find(*zone);
    z.info.max_power_w = max_it != config_.max_power_w_by_zone.end()
                             ? max_it->second
                             : config_.max_power_w;
    absl::StatusOr<uint64_t> energy =
        ReadUint64(*fs_, absl::StrCat(base, "/energy_uj"));
    if (!energy.ok()) {
      rejected_.Add(absl::IsInvalidArgument(energy.status())
                        ? RejectReason::kUnparsable
                        : RejectReason::kUnreadable);
      if (first_error.ok()) first_error = energy.status();
      continue;
    }
    z.last_uj = *energy;
    z.last_ns = clock_.MonotonicNs();
    zones_.push_back(std::move(z));
  }
  if (zones_.empty()) {
    if (found == 0) {
      return SetUnavailable(
          absl::NotFoundError(absl::StrCat("no RAPL zones under ", kPowercap)));
    }
    return SetUnavailable(first_error.ok()
                              ? absl::UnavailableError("no readable RAPL zone")
                              : first_error);
  }
  std::sort(zones_.begin(), zones_.end(),
            [](const ZoneState& a, const ZoneState& b) {
              return std::tie(a.info.zone, a.info.socket, a.info.dir) <
                     std::tie(b.info.zone, b.info.socket, b.info.dir);
            });
  if (first_error.ok()) {
    SetHealthy();
  } else {
    SetDegraded(
        absl::StrCat("some RAPL zones unreadable: ", first_error.message()));
  }
  return absl::OkStatus();
}

absl::StatusOr<PowerSample> RaplPowercapSource::Sample() {
  if (health() == SourceHealth::kUnavailable ||
      health() == SourceHealth::kUnknown) {
    return absl::FailedPreconditionError("RAPL source is not initialised");
  }
  const uint64_t rejects_before = rejected_.Total();
  std::string last_reject;
  PowerSample sample;
  const int64_t now = clock_.MonotonicNs();
  sample.timestamp_ns = now;
  for (ZoneState& z : zones_) {
    const std::string path =
        absl::StrCat(kPowercap, "/", z.info.dir, "/energy_uj");
    absl::StatusOr<uint64_t> cur = ReadUint64(*fs_, path);
    if (!cur.ok()) {
      // Keep the previous reading: the next good one covers both intervals.
      rejected_.Add(absl::IsInvalidArgument(cur.status())
                        ? RejectReason::kUnparsable
                        : RejectReason::kUnreadable);
      last_reject = std::string(cur.status().message());
      continue;
    }
    const int64_t interval = now - z.last_ns;
    absl::StatusOr<CounterDelta> delta =
        ResolveCounterDelta(z.last_uj, *cur, z.info.range_uj,
                            CounterBounds{interval, config_.min_power_w,
                                          z.info.max_power_w, z.last_power_w});
    if (!delta.ok()) {
      last_reject = absl::StrCat(z.info.dir, ": ", delta.status().message());
      if (absl::IsOutOfRange(delta.status())) {
        // A value the counter cannot hold is garbage: keep the last one.
        rejected_.Add(RejectReason::kOutOfRange);
        continue;
      }
      // The counter cannot be trusted across this interval; restart from
      // the new value.
      rejected_.Add(absl::IsFailedPrecondition(delta.status())
                        ? RejectReason::kBackwards
                        : RejectReason::kImplausible);
      z.last_uj = *cur;
      z.last_ns = now;
      z.last_power_w.reset();
      continue;
    }
    z.last_uj = *cur;
    z.last_ns = now;
    if (interval > 0) {
      z.last_power_w = static_cast<double>(delta->energy_uj) * 1000.0 /
                       static_cast<double>(interval);
    }
    ZoneReading r;
    r.zone = z.info.zone;
    r.domain = z.info.socket;
    r.label = z.info.label;
    r.source = std::string(name());
    r.energy_uj = static_cast<int64_t>(delta->energy_uj);
    r.interval_ns = interval;
    r.wraps = delta->wraps;
    r.ambiguous_wrap = delta->ambiguous;
    sample.readings.push_back(std::move(r));
  }
  UpdateHealthAfterSample(rejects_before, last_reject);
  return sample;
}

}  // namespace wattlens::power
