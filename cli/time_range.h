// SPDX-License-Identifier: Apache-2.0
// The time flags of the query commands (--window, --since, --until, --month,
// --tz) turned into the query's time range. Pure functions of the flags, the
// current time and the time zone database, so tests pin all three.
#pragma once

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace wattlens::cli {

// A positive duration as a sequence of <number><unit>, units ms, s, m, h,
// d (24 h) and w (7 d): "90s", "1h30m", "7d", "2w", "1.5h".
absl::StatusOr<absl::Duration> ParseHumanDuration(absl::string_view text);

// The flags as typed; empty means not given.
struct TimeFlags {
  std::string window;
  std::string since;
  std::string until;
  std::string month;
  std::string tz;  // IANA name (Europe/Paris) or UTC; empty: UTC
};

// What the query asks for; absent fields keep the collector's defaults
// (until = now, window = 5 minutes).
struct TimeRange {
  std::optional<absl::Duration> window;
  std::optional<absl::Time> since;
  std::optional<absl::Time> until;
};

// Dates and times without an offset are read in --tz (UTC by default);
// --month=YYYY-MM is [first day 00:00, first day of the next month 00:00) in
// that zone; --since/--until also take RFC 3339 times with an offset and
// durations meaning that long before `now`. Errors name the flag and the
// forms it accepts.
absl::StatusOr<TimeRange> ResolveTimeRange(const TimeFlags& flags,
                                           absl::Time now);

// The zone for --tz: the system tz database (absl::LoadTimeZone), "UTC" for
// empty.
absl::StatusOr<absl::TimeZone> LoadZone(absl::string_view name);

}  // namespace wattlens::cli
