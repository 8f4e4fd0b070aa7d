// SPDX-License-Identifier: Apache-2.0
// Readiness of the agent's upload to the collector: ready while the
// collector keeps acknowledging reports. Fails after `window` without a new
// acknowledgement (first measured from registration), with the uploader's
// last stream error (e.g. PERMISSION_DENIED when the collector rejects this
// node's identity).
#pragma once

#include "absl/time/time.h"
#include "agent/common/clock.h"
#include "agent/common/health_http.h"
#include "agent/export/uploader.h"

namespace wattlens {

// `uploader` and `clock` must outlive `checks`' use.
void AddUploaderHealthCheck(HealthChecks& checks, const Uploader& uploader,
                            const Clock& clock, absl::Duration window);

}  // namespace wattlens
