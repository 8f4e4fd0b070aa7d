// SPDX-License-Identifier: Apache-2.0
// Container image references as Kubernetes reports them
// (spec.containers[].image, status.containerStatuses[].image/imageID):
// [registry[:port]/]path[:tag][@algorithm:digest], normalised the way Docker
// and containerd do it (docker.io, library/ for single-component names).
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace wattlens::identity {

struct ImageReference {
  std::string registry;    // "docker.io", "quay.io", "localhost:5000"
  std::string repository;  // "library/postgres", "prometheus/node-exporter"
  std::string tag;         // "16"; empty when absent (no "latest" implied)
  std::string digest;      // "sha256:<64 hex>"; empty when absent

  // registry/repository: what project-map image patterns match.
  std::string Name() const;
  // The last path component of the repository ("node-exporter").
  absl::string_view ShortName() const;
};

// Parses and normalises a reference. Tolerates the "docker-pullable://" and
// "docker://" prefixes Docker puts in imageID. Returns InvalidArgument, with
// the reason, for anything else that is not a reference: empty, whitespace
// or control bytes, upper case in the path, an image ID ("sha256:<hex>"),
// a bad tag or digest, over-long input.
absl::StatusOr<ImageReference> ParseImageReference(absl::string_view ref);

}  // namespace wattlens::identity
