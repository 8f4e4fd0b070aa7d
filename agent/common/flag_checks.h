// SPDX-License-Identifier: Apache-2.0
// Start-up checks shared by wattlens-agent and wattlens-collector: flag
// values are validated before anything is built from them (a value that
// would overflow, wrap or be silently reinterpreted is refused with a message
// naming the flag), and the open-file limit is raised to its hard limit.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace wattlens {

// "host:port" with host an IPv4 literal, a bracketed IPv6 literal, a DNS
// name or empty (all addresses), and port a decimal in [0, 65535].
// `allow_empty`: the empty string (feature off) is accepted.
absl::Status CheckHostPort(absl::string_view flag, absl::string_view value,
                           bool allow_empty);

// trace, debug, info, warn, error, critical or off (spdlog's names); anything
// else would silently turn logging off.
absl::Status CheckLogLevel(absl::string_view flag, absl::string_view value);

// lo <= value <= hi.
absl::Status CheckRange(absl::string_view flag, uint64_t value, uint64_t lo,
                        uint64_t hi);

// Raises RLIMIT_NOFILE's soft limit to its hard limit. A daemon that runs
// out of descriptors stops accepting (gRPC does not retry accept after
// EMFILE), and container runtimes start processes at a soft limit of 1024.
// Returns the new soft limit in `*soft` when not null.
absl::Status RaiseFileLimit(uint64_t* soft = nullptr);

}  // namespace wattlens
