// SPDX-License-Identifier: Apache-2.0
#include "agent/common/status_macros.h"

// Header-only today; this unit keeps agent_common a real library that later
// shared helpers land in.
namespace wattlens {}  // namespace wattlens
