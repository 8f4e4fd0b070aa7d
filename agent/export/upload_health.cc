// SPDX-License-Identifier: Apache-2.0
#include "agent/export/upload_health.h"

#include <memory>

#include "absl/strings/str_cat.h"

namespace wattlens {

void AddUploaderHealthCheck(HealthChecks& checks, const Uploader& uploader,
                            const Clock& clock, absl::Duration window) {
  auto acks = std::make_shared<ProgressCheck>(
      clock, absl::ToInt64Nanoseconds(window), "collector acknowledgements");
  checks.Add(HealthProbe::kReadiness, "collector", [&uploader, acks] {
    const UploaderStats s = uploader.stats();
    absl::Status st = acks->Observe(s.acked);
    if (st.ok() || s.last_error.empty()) return st;
    return absl::UnavailableError(
        absl::StrCat(st.message(), "; last error: ", s.last_error));
  });
}

}  // namespace wattlens
