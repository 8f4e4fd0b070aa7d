// SPDX-License-Identifier: Apache-2.0
#include "agent/identity/image_reference.h"

#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace wattlens::identity {
namespace {

// distribution/reference limits the name to 255; with registry, tag and a
// sha512 digest a reference stays well under this.
constexpr size_t kMaxReferenceBytes = 1024;
constexpr size_t kMaxNameBytes = 255;
constexpr size_t kMaxTagBytes = 128;
constexpr absl::string_view kDockerHub = "docker.io";

bool IsLowerAlnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

// [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*
bool IsPathComponent(absl::string_view c) {
  if (c.empty() || !IsLowerAlnum(c.front()) || !IsLowerAlnum(c.back())) {
    return false;
  }
  for (size_t i = 0; i < c.size();) {
    if (IsLowerAlnum(c[i])) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < c.size() && !IsLowerAlnum(c[j])) ++j;
    absl::string_view sep = c.substr(i, j - i);
    bool dashes = sep.find_first_not_of('-') == absl::string_view::npos;
    if (!(sep == "." || sep == "_" || sep == "__" || dashes)) return false;
    i = j;
  }
  return true;
}

// host[:port], host made of DNS labels (letters, digits, '-', '.'), or a
// bracketed IPv6 address.
bool IsDomain(absl::string_view d) {
  if (d.empty()) return false;
  absl::string_view host = d;
  size_t colon = d.rfind(':');
  if (colon != absl::string_view::npos && d.find(']', colon) == d.npos) {
    absl::string_view port = d.substr(colon + 1);
    if (port.empty() || port.size() > 5) return false;
    for (char c : port) {
      if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return false;
    }
    host = d.substr(0, colon);
  }
  if (host.empty()) return false;
  if (host.front() == '[') {
    if (host.back() != ']' || host.size() < 3) return false;
    for (char c : host.substr(1, host.size() - 2)) {
      if (!absl::ascii_isxdigit(static_cast<unsigned char>(c)) && c != ':') {
        return false;
      }
    }
    return true;
  }
  for (char c : host) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-' &&
        c != '.') {
      return false;
    }
  }
  if (host.find("..") != absl::string_view::npos) return false;
  return host.front() != '.' && host.front() != '-' && host.back() != '.' &&
         host.back() != '-';
}

// [\w][\w.-]{0,127}
bool IsTag(absl::string_view t) {
  if (t.empty() || t.size() > kMaxTagBytes) return false;
  auto word = [](char c) {
    return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_';
  };
  if (!word(t.front())) return false;
  for (char c : t) {
    if (!word(c) && c != '.' && c != '-') return false;
  }
  return true;
}

absl::Status CheckDigest(absl::string_view d) {
  size_t colon = d.find(':');
  if (colon == absl::string_view::npos || colon == 0 || colon + 1 == d.size()) {
    return absl::InvalidArgumentError("digest is not algorithm:hex");
  }
  absl::string_view algo = d.substr(0, colon);
  absl::string_view hex = d.substr(colon + 1);
  for (char c : algo) {
    if (!IsLowerAlnum(c) && c != '+' && c != '.' && c != '_' && c != '-') {
      return absl::InvalidArgumentError("bad digest algorithm");
    }
  }
  for (char c : hex) {
    if (!absl::ascii_isxdigit(static_cast<unsigned char>(c)) ||
        absl::ascii_isupper(static_cast<unsigned char>(c))) {
      return absl::InvalidArgumentError("digest is not lower-case hex");
    }
  }
  if (algo == "sha256" && hex.size() != 64) {
    return absl::InvalidArgumentError("sha256 digest is not 64 hex digits");
  }
  if (algo == "sha512" && hex.size() != 128) {
    return absl::InvalidArgumentError("sha512 digest is not 128 hex digits");
  }
  if (hex.size() < 32) return absl::InvalidArgumentError("digest too short");
  return absl::OkStatus();
}

absl::Status Invalid(absl::string_view ref, absl::string_view why) {
  // The reference is echoed only in part: it may be hostile and long.
  return absl::InvalidArgumentError(
      absl::StrCat("image reference \"", ref.substr(0, 80),
                   ref.size() > 80 ? "..." : "", "\": ", why));
}

}  // namespace

std::string ImageReference::Name() const {
  return absl::StrCat(registry, "/", repository);
}

absl::string_view ImageReference::ShortName() const {
  absl::string_view r = repository;
  size_t slash = r.rfind('/');
  return slash == absl::string_view::npos ? r : r.substr(slash + 1);
}

absl::StatusOr<ImageReference> ParseImageReference(absl::string_view ref) {
  if (ref.empty()) return absl::InvalidArgumentError("empty image reference");
  if (ref.size() > kMaxReferenceBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("image reference longer than ", kMaxReferenceBytes,
                     " bytes: ", ref.size()));
  }
  for (char c : ref) {
    unsigned char u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f) {
      return absl::InvalidArgumentError(
          "image reference has whitespace, control or non-ASCII bytes");
    }
  }
  absl::string_view rest = ref;
  if (!absl::ConsumePrefix(&rest, "docker-pullable://")) {
    absl::ConsumePrefix(&rest, "docker://");
  }

  ImageReference out;
  size_t at = rest.find('@');
  if (at != absl::string_view::npos) {
    absl::string_view digest = rest.substr(at + 1);
    if (absl::Status s = CheckDigest(digest); !s.ok()) {
      return Invalid(ref, s.message());
    }
    out.digest = std::string(digest);
    rest = rest.substr(0, at);
  } else if (absl::StartsWith(rest, "sha256:")) {
    return Invalid(ref, "an image ID, not a reference");
  }
  size_t last_slash = rest.rfind('/');
  size_t colon = rest.rfind(':');
  if (colon != absl::string_view::npos &&
      (last_slash == absl::string_view::npos || colon > last_slash)) {
    absl::string_view tag = rest.substr(colon + 1);
    if (!IsTag(tag)) return Invalid(ref, "bad tag");
    out.tag = std::string(tag);
    rest = rest.substr(0, colon);
  }
  if (rest.empty()) return Invalid(ref, "no repository name");
  if (rest.size() > kMaxNameBytes) return Invalid(ref, "name too long");

  std::vector<absl::string_view> parts = absl::StrSplit(rest, '/');
  absl::string_view first = parts.front();
  bool has_domain = parts.size() > 1 &&
                    (first.find_first_of(".:") != absl::string_view::npos ||
                     first == "localhost" ||
                     first.find_first_of("ABCDEFGHIJKLMNOPQRSTUVWXYZ") !=
                         absl::string_view::npos);
  if (has_domain) {
    if (!IsDomain(first)) return Invalid(ref, "bad registry host");
    // Kept as written, like Docker: lower-casing would turn "ABC/x" into
    // the Docker Hub name "abc/x".
    out.registry = std::string(first);
    parts.erase(parts.begin());
  } else {
    out.registry = std::string(kDockerHub);
  }
  if (out.registry == "index.docker.io" ||
      out.registry == "registry-1.docker.io") {
    out.registry = std::string(kDockerHub);
  }
  for (absl::string_view p : parts) {
    if (!IsPathComponent(p)) {
      return Invalid(ref, p.empty() ? "empty path component"
                                    : "path components must be lower-case "
                                      "[a-z0-9] with . _ __ - separators");
    }
  }
  if (!has_domain && parts.size() == 1 && parts[0].size() == 64 &&
      out.tag.empty() &&
      parts[0].find_first_not_of("0123456789abcdef") ==
          absl::string_view::npos) {
    return Invalid(ref, "an image ID, not a reference");
  }
  if (out.registry == kDockerHub && parts.size() == 1) {
    parts.insert(parts.begin(), "library");
  }
  out.repository = absl::StrJoin(parts, "/");
  // Checked on the normalised name too, so that the canonical form of any
  // accepted reference is itself accepted.
  if (out.registry.size() + 1 + out.repository.size() > kMaxNameBytes) {
    return Invalid(ref, "name too long");
  }
  return out;
}

}  // namespace wattlens::identity
