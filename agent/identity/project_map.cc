// SPDX-License-Identifier: Apache-2.0
#include "agent/identity/project_map.h"

#include <fstream>
#include <iterator>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace wattlens::identity {
namespace {

// Generated from agent/identity/data/projects.map at configure time.
#include "agent/identity/projects_map_data.inc"

std::optional<ProjectMap::RuleKind> ParseKind(absl::string_view k) {
  if (k == "image") return ProjectMap::RuleKind::kImage;
  if (k == "package") return ProjectMap::RuleKind::kPackage;
  if (k == "exe") return ProjectMap::RuleKind::kExe;
  return std::nullopt;
}

}  // namespace

bool GlobMatch(absl::string_view pattern, absl::string_view text) {
  size_t p = 0, t = 0;
  size_t star = absl::string_view::npos, mark = 0;
  while (t < text.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      mark = t;
    } else if (p < pattern.size() && pattern[p] == text[t]) {
      ++p;
      ++t;
    } else if (star != absl::string_view::npos) {
      p = star + 1;
      t = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

bool IsValidProjectName(absl::string_view name) {
  if (name.empty() || name.size() > kMaxProjectNameBytes) return false;
  auto lower_alnum = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
  };
  if (!lower_alnum(name.front())) return false;
  for (char c : name) {
    if (!lower_alnum(c) && c != '.' && c != '_' && c != '-') return false;
  }
  return true;
}

const ProjectMap& ProjectMap::Shipped() {
  static const ProjectMap* const shipped = [] {
    auto* m = new ProjectMap();
    // The shipped file is tested; a failure here is a build defect.
    absl::Status s = m->AddLayer(kShippedProjectMap, "projects.map");
    if (!s.ok()) *m = ProjectMap();
    return m;
  }();
  return *shipped;
}

absl::string_view ProjectMap::ShippedText() { return kShippedProjectMap; }

absl::Status ProjectMap::AddLayer(absl::string_view text,
                                  absl::string_view source_name) {
  if (text.size() > kMaxProjectMapBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        source_name, ": larger than ", kMaxProjectMapBytes, " bytes"));
  }
  std::vector<Rule> added;
  int line_no = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_no;
    auto where = [&] { return absl::StrCat(source_name, ":", line_no, ": "); };
    size_t hash = line.find('#');
    if (hash != absl::string_view::npos) line = line.substr(0, hash);
    std::vector<absl::string_view> f =
        absl::StrSplit(line, absl::ByAnyChar(" \t\r"), absl::SkipEmpty());
    if (f.empty()) continue;
    if (f.size() != 3) {
      return absl::InvalidArgumentError(
          absl::StrCat(where(), "expected <kind> <pattern> <project>, got ",
                       f.size(), " fields"));
    }
    std::optional<RuleKind> kind = ParseKind(f[0]);
    if (!kind) {
      return absl::InvalidArgumentError(
          absl::StrCat(where(), "unknown kind \"", f[0].substr(0, 32),
                       "\" (image, package or exe)"));
    }
    if (f[1].size() > kMaxPatternBytes) {
      return absl::InvalidArgumentError(
          absl::StrCat(where(), "pattern longer than ", kMaxPatternBytes));
    }
    for (char c : f[1]) {
      unsigned char u = static_cast<unsigned char>(c);
      if (u < 0x21 || u >= 0x7f) {
        return absl::InvalidArgumentError(
            absl::StrCat(where(), "pattern has a non-printable byte"));
      }
    }
    if (!IsValidProjectName(f[2])) {
      return absl::InvalidArgumentError(
          absl::StrCat(where(), "bad project name \"", f[2].substr(0, 64),
                       "\": want [a-z0-9][a-z0-9._-]*, at most ",
                       kMaxProjectNameBytes, " characters"));
    }
    int literal = 0;
    for (char c : f[1]) literal += c != '*';
    added.push_back(Rule{*kind, std::string(f[1]), std::string(f[2]), layers_,
                         literal, line_no});
  }
  for (Rule& r : added) rules_.push_back(std::move(r));
  ++layers_;
  return absl::OkStatus();
}

absl::Status ProjectMap::AddFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(absl::StrCat("cannot open project map ", path));
  }
  std::string text;
  text.resize(kMaxProjectMapBytes + 1);
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<size_t>(in.gcount()));
  if (in.bad()) {
    return absl::DataLossError(absl::StrCat("error reading ", path));
  }
  return AddLayer(text, path);
}

std::optional<std::string> ProjectMap::Match(RuleKind kind,
                                             absl::string_view text) const {
  const Rule* best = nullptr;
  for (const Rule& r : rules_) {
    if (r.kind != kind || !GlobMatch(r.pattern, text)) continue;
    if (best == nullptr || r.layer > best->layer ||
        (r.layer == best->layer && r.specificity >= best->specificity)) {
      best = &r;
    }
  }
  if (best == nullptr) return std::nullopt;
  return best->project;
}

std::string ProjectMap::ProjectForImage(const ImageReference& image) const {
  if (auto p = Match(RuleKind::kImage, image.Name())) return *std::move(p);
  return std::string(image.ShortName().substr(0, kMaxProjectNameBytes));
}

std::string ProjectMap::ProjectForImageRef(absl::string_view ref) const {
  absl::StatusOr<ImageReference> image = ParseImageReference(ref);
  if (!image.ok()) return "unknown";
  return ProjectForImage(*image);
}

std::optional<std::string> ProjectMap::ProjectForPackage(
    absl::string_view name) const {
  return Match(RuleKind::kPackage, name);
}

std::optional<std::string> ProjectMap::ProjectForExecutable(
    absl::string_view path) const {
  return Match(RuleKind::kExe, path);
}

}  // namespace wattlens::identity
