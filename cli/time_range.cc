// SPDX-License-Identifier: Apache-2.0
#include "cli/time_range.h"

#include <cctype>
#include <cmath>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace wattlens::cli {
namespace {

constexpr char kDurationForms[] =
    "a duration such as 90s, 30m, 1h30m, 7d or 2w (units ms, s, m, h, d, w)";

absl::Status Bad(absl::string_view flag, absl::string_view value,
                 absl::string_view accepts) {
  return absl::InvalidArgumentError(
      absl::StrCat("--", flag, ": \"", value, "\" is not ", accepts));
}

// A date or a time of day without an offset, in `tz`.
std::optional<absl::Time> ParseCivil(const std::string& s, absl::TimeZone tz) {
  absl::CivilDay day;
  if (absl::ParseCivilTime(s, &day) && absl::FormatCivilTime(day) == s) {
    return absl::FromCivil(day, tz);
  }
  absl::CivilSecond sec;
  absl::CivilMinute min;
  if (absl::ParseCivilTime(s, &sec) && absl::FormatCivilTime(sec) == s) {
    return absl::FromCivil(sec, tz);
  }
  if (absl::ParseCivilTime(s, &min) && absl::FormatCivilTime(min) == s) {
    return absl::FromCivil(min, tz);
  }
  return std::nullopt;
}

absl::StatusOr<absl::Time> ParseInstant(absl::string_view flag,
                                        const std::string& s, absl::TimeZone tz,
                                        absl::Time now) {
  absl::Time t;
  std::string ignored;
  // With an explicit offset the zone does not matter.
  if (absl::ParseTime(absl::RFC3339_full, s, &t, &ignored)) return t;
  if (auto civil = ParseCivil(s, tz)) return *civil;
  if (!s.empty() && std::isdigit(static_cast<unsigned char>(s.back())) == 0) {
    if (auto ago = ParseHumanDuration(s); ago.ok()) return now - *ago;
  }
  return Bad(flag, s,
             "a date (2026-11-03), a time (2026-11-03T14:00, read in --tz), "
             "an RFC 3339 time (2026-11-03T14:00:00Z) or a duration ago "
             "(2h, 7d)");
}

}  // namespace

absl::StatusOr<absl::Duration> ParseHumanDuration(absl::string_view text) {
  if (text.empty()) return absl::InvalidArgumentError("empty duration");
  absl::Duration total = absl::ZeroDuration();
  absl::string_view rest = text;
  while (!rest.empty()) {
    size_t n = 0;
    while (n < rest.size() &&
           (std::isdigit(static_cast<unsigned char>(rest[n])) != 0 ||
            rest[n] == '.')) {
      ++n;
    }
    size_t u = n;
    while (u < rest.size() &&
           std::isalpha(static_cast<unsigned char>(rest[u])) != 0) {
      ++u;
    }
    double number = 0;
    if (n == 0 || u == n || !absl::SimpleAtod(rest.substr(0, n), &number) ||
        !std::isfinite(number)) {
      return absl::InvalidArgumentError(
          absl::StrCat("\"", text, "\" is not ", kDurationForms));
    }
    const absl::string_view unit = rest.substr(n, u - n);
    absl::Duration one;
    if (unit == "ms") {
      one = absl::Milliseconds(1);
    } else if (unit == "s") {
      one = absl::Seconds(1);
    } else if (unit == "m") {
      one = absl::Minutes(1);
    } else if (unit == "h") {
      one = absl::Hours(1);
    } else if (unit == "d") {
      one = absl::Hours(24);
    } else if (unit == "w") {
      one = absl::Hours(24 * 7);
    } else {
      return absl::InvalidArgumentError(absl::StrCat(
          "\"", text, "\": unknown unit \"", unit, "\" in ", kDurationForms));
    }
    total += number * one;
    // The query carries nanoseconds in an int64 (292 years).
    if (total > absl::Hours(24 * 365 * 100)) {
      return absl::InvalidArgumentError(
          absl::StrCat("\"", text, "\" is longer than 100 years"));
    }
    rest = rest.substr(u);
  }
  if (total <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", text, "\" is not a positive duration"));
  }
  return total;
}

absl::StatusOr<absl::TimeZone> LoadZone(absl::string_view name) {
  if (name.empty() || name == "UTC") return absl::UTCTimeZone();
  absl::TimeZone tz;
  if (!absl::LoadTimeZone(name, &tz)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--tz: unknown time zone \"", name,
        "\"; expected an IANA name such as Europe/Paris or America/New_York "
        "(from the system tz database) or UTC"));
  }
  return tz;
}

absl::StatusOr<TimeRange> ResolveTimeRange(const TimeFlags& flags,
                                           absl::Time now) {
  absl::StatusOr<absl::TimeZone> tz = LoadZone(flags.tz);
  if (!tz.ok()) return tz.status();
  TimeRange range;
  if (!flags.month.empty()) {
    if (!flags.since.empty() || !flags.until.empty() || !flags.window.empty()) {
      return absl::InvalidArgumentError(
          "--month: cannot be combined with --since, --until or --window "
          "(the month is the whole range)");
    }
    absl::CivilMonth month;
    if (!absl::ParseCivilTime(flags.month, &month) ||
        absl::FormatCivilTime(month) != flags.month) {
      return Bad("month", flags.month, "a month in the form YYYY-MM (2026-11)");
    }
    range.since = absl::FromCivil(month, *tz);
    range.until = absl::FromCivil(month + 1, *tz);
    return range;
  }
  if (!flags.window.empty()) {
    if (!flags.since.empty()) {
      return absl::InvalidArgumentError(
          "--window: cannot be combined with --since (the range is then "
          "--since to --until, or to now)");
    }
    absl::StatusOr<absl::Duration> w = ParseHumanDuration(flags.window);
    if (!w.ok()) return Bad("window", flags.window, kDurationForms);
    range.window = *w;
  }
  if (!flags.since.empty()) {
    absl::StatusOr<absl::Time> t = ParseInstant("since", flags.since, *tz, now);
    if (!t.ok()) return t.status();
    range.since = *t;
  }
  if (!flags.until.empty()) {
    absl::StatusOr<absl::Time> t = ParseInstant("until", flags.until, *tz, now);
    if (!t.ok()) return t.status();
    range.until = *t;
  }
  const absl::Time end = range.until.value_or(now);
  if (range.since && *range.since >= end) {
    return absl::InvalidArgumentError(
        absl::StrCat("--since (", absl::FormatTime(*range.since, *tz),
                     ") must be before ", range.until ? "--until" : "now", " (",
                     absl::FormatTime(end, *tz), ")"));
  }
  return range;
}

}  // namespace wattlens::cli
