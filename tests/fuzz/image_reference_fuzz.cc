// SPDX-License-Identifier: Apache-2.0
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "agent/identity/image_reference.h"
#include "agent/identity/project_map.h"
#include "tests/fuzz/fuzz_targets.h"

namespace wattlens::fuzz {
namespace {

void Check(bool ok) {
  if (!ok) __builtin_trap();
}

}  // namespace

int FuzzImageReference(const uint8_t* data, size_t size) {
  absl::string_view in(reinterpret_cast<const char*>(data), size);
  const identity::ProjectMap& map = identity::ProjectMap::Shipped();
  std::string project = map.ProjectForImageRef(in);
  Check(!project.empty());
  absl::StatusOr<identity::ImageReference> ref =
      identity::ParseImageReference(in);
  if (!ref.ok()) return 0;
  Check(!ref->registry.empty() && !ref->repository.empty());
  // Normalisation is idempotent: the canonical form parses to itself.
  std::string canonical = ref->Name();
  if (!ref->tag.empty()) absl::StrAppend(&canonical, ":", ref->tag);
  if (!ref->digest.empty()) absl::StrAppend(&canonical, "@", ref->digest);
  absl::StatusOr<identity::ImageReference> again =
      identity::ParseImageReference(canonical);
  Check(again.ok());
  Check(again->registry == ref->registry &&
        again->repository == ref->repository && again->tag == ref->tag &&
        again->digest == ref->digest);
  Check(map.ProjectForImage(*again) == project);
  // The glob matcher on arbitrary pattern/text pairs.
  size_t half = in.size() / 2;
  (void)identity::GlobMatch(in.substr(0, std::min<size_t>(half, 64)),
                            in.substr(half));
  return 0;
}

}  // namespace wattlens::fuzz
