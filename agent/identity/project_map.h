// SPDX-License-Identifier: Apache-2.0
// Open-source project identity: container image or host executable ->
// project name ("postgres", "ingress-nginx", "kubernetes").
//
// Rules come from the shipped mapping file (agent/identity/data/projects.map,
// compiled in) and from user files layered on top; the format is documented
// at the top of the shipped file and in docs/identity.md:
//   <kind> <pattern> <project>      kind: image | package | exe
// A later layer (user file) beats every earlier one; inside a layer the most
// specific pattern (most literal characters) wins, ties go to the later line.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "agent/identity/image_reference.h"

namespace wattlens::identity {

// Bounds on user-supplied mapping files.
inline constexpr size_t kMaxProjectMapBytes = 1 << 20;
inline constexpr size_t kMaxPatternBytes = 512;
inline constexpr size_t kMaxProjectNameBytes = 63;

// '*' matches any run of characters, '/' included; everything else is
// literal. O(pattern x text) worst case; both are bounded.
bool GlobMatch(absl::string_view pattern, absl::string_view text);

class ProjectMap {
 public:
  enum class RuleKind { kImage, kPackage, kExe };

  // An empty map: every image falls back to its short name.
  ProjectMap() = default;
  // The shipped rules, compiled into the binary.
  static const ProjectMap& Shipped();
  static absl::string_view ShippedText();

  // Adds a layer that overrides all earlier ones. On error (with file name
  // and line) the map is unchanged.
  absl::Status AddLayer(absl::string_view text, absl::string_view source_name);
  absl::Status AddFile(const std::string& path);

  // The project of an image: a rule, else the repository's last component.
  std::string ProjectForImage(const ImageReference& image) const;
  // Parses `ref` first; an unparsable reference gives "unknown".
  std::string ProjectForImageRef(absl::string_view ref) const;
  std::optional<std::string> ProjectForPackage(absl::string_view name) const;
  std::optional<std::string> ProjectForExecutable(absl::string_view path) const;

  size_t rule_count() const { return rules_.size(); }
  size_t layer_count() const { return layers_; }

 private:
  struct Rule {
    RuleKind kind;
    std::string pattern;
    std::string project;
    int layer;
    int specificity;  // literal (non-'*') characters in the pattern
    int line;
  };
  std::optional<std::string> Match(RuleKind kind, absl::string_view text) const;

  std::vector<Rule> rules_;
  int layers_ = 0;
};

// A project name: [a-z0-9][a-z0-9._-]*, at most kMaxProjectNameBytes.
bool IsValidProjectName(absl::string_view name);

}  // namespace wattlens::identity
