// SPDX-License-Identifier: Apache-2.0
// Build identity shared by wattlens, wattlens-agent and wattlens-collector:
// one place decides what --version prints, so the three binaries of one build
// always agree.
#pragma once

#include <string>

#include "absl/strings/string_view.h"

namespace wattlens::version {

// The CMake project version, e.g. "0.1.0".
absl::string_view Version();
// The git commit the binary was built from (12 hex digits, "-dirty" when
// tracked files differed from it), or "unknown" outside a git checkout.
absl::string_view GitCommit();
// CMAKE_BUILD_TYPE (Debug, Release, RelWithDebInfo, ...), "none" if unset.
absl::string_view BuildType();

// "<program> 0.1.0 (commit 0123456789ab, RelWithDebInfo)".
std::string VersionLine(absl::string_view program);

}  // namespace wattlens::version
