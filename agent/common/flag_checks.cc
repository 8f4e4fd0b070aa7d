// SPDX-License-Identifier: Apache-2.0
#include "agent/common/flag_checks.h"

#include <errno.h>
#include <string.h>
#include <sys/resource.h>

#include <array>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace wattlens {
namespace {

absl::Status Bad(absl::string_view flag, absl::string_view value,
                 absl::string_view why) {
  return absl::InvalidArgumentError(
      absl::StrCat("--", flag, "=", value, ": ", why));
}

bool IsHostChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-' ||
         c == '.' || c == '_';
}

}  // namespace

absl::Status CheckHostPort(absl::string_view flag, absl::string_view value,
                           bool allow_empty) {
  if (value.empty()) {
    if (allow_empty) return absl::OkStatus();
    return Bad(flag, value, "an address host:port is required");
  }
  absl::string_view host, port;
  if (value.front() == '[') {
    const size_t close = value.find(']');
    if (close == absl::string_view::npos || close + 1 >= value.size() ||
        value[close + 1] != ':') {
      return Bad(flag, value, "expected [IPv6]:port");
    }
    host = value.substr(1, close - 1);
    port = value.substr(close + 2);
    for (char c : host) {
      if (!absl::ascii_isxdigit(static_cast<unsigned char>(c)) && c != ':' &&
          c != '.') {
        return Bad(flag, value, "not an IPv6 address between the brackets");
      }
    }
    if (host.empty()) return Bad(flag, value, "empty IPv6 address");
  } else {
    const size_t colon = value.rfind(':');
    if (colon == absl::string_view::npos) {
      return Bad(flag, value, "expected host:port");
    }
    host = value.substr(0, colon);
    port = value.substr(colon + 1);
    if (host.find(':') != absl::string_view::npos) {
      return Bad(flag, value, "an IPv6 address needs brackets: [addr]:port");
    }
    for (char c : host) {
      if (!IsHostChar(c)) return Bad(flag, value, "invalid character in host");
    }
  }
  uint32_t p = 0;
  if (port.empty() || port.size() > 5 ||
      port.find_first_not_of("0123456789") != absl::string_view::npos ||
      !absl::SimpleAtoi(port, &p) || p > 65535) {
    return Bad(flag, value, "port must be a number from 0 to 65535");
  }
  return absl::OkStatus();
}

absl::Status CheckLogLevel(absl::string_view flag, absl::string_view value) {
  static constexpr std::array<absl::string_view, 7> kLevels = {
      "trace", "debug", "info", "warn", "error", "critical", "off"};
  for (absl::string_view l : kLevels) {
    if (value == l) return absl::OkStatus();
  }
  return Bad(flag, value,
             "must be trace, debug, info, warn, error, critical or off");
}

absl::Status CheckRange(absl::string_view flag, uint64_t value, uint64_t lo,
                        uint64_t hi) {
  if (value >= lo && value <= hi) return absl::OkStatus();
  return Bad(flag, absl::StrCat(value),
             absl::StrCat("must be between ", lo, " and ", hi));
}

absl::Status RaiseFileLimit(uint64_t* soft) {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
    return absl::InternalError(
        absl::StrCat("getrlimit(RLIMIT_NOFILE): ", strerror(errno)));
  }
  if (rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
      return absl::InternalError(
          absl::StrCat("setrlimit(RLIMIT_NOFILE): ", strerror(errno)));
    }
  }
  if (soft != nullptr) *soft = static_cast<uint64_t>(rl.rlim_cur);
  return absl::OkStatus();
}

}  // namespace wattlens
