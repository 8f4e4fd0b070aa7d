// SPDX-License-Identifier: Apache-2.0
#include "common/version/version.h"

#include "absl/strings/str_cat.h"
#include "git_commit.h"

namespace wattlens::version {

absl::string_view Version() { return WATTLENS_PROJECT_VERSION; }
absl::string_view GitCommit() { return WATTLENS_GIT_COMMIT; }
absl::string_view BuildType() { return WATTLENS_BUILD_TYPE; }

std::string VersionLine(absl::string_view program) {
  return absl::StrCat(program, " ", Version(), " (commit ", GitCommit(), ", ",
                      BuildType(), ")");
}

}  // namespace wattlens::version
