// SPDX-License-Identifier: Apache-2.0
// Kubernetes resource quantities ("250m", "1.5", "512Mi", "1G", "2e3") as
// integers: CPU in millicores, memory in bytes. Rounds up, as the API server
// does when it canonicalises a quantity to an integer scale.
#pragma once

#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace wattlens::identity {

// ceil(q * 10^scale10). InvalidArgument for malformed or negative input,
// OutOfRange when the result does not fit in int64.
absl::StatusOr<int64_t> ParseQuantityScaled(absl::string_view q, int scale10);

inline absl::StatusOr<int64_t> ParseCpuMillis(absl::string_view q) {
  return ParseQuantityScaled(q, 3);
}
inline absl::StatusOr<int64_t> ParseBytes(absl::string_view q) {
  return ParseQuantityScaled(q, 0);
}

}  // namespace wattlens::identity
