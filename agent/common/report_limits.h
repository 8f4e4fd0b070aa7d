// SPDX-License-Identifier: Apache-2.0
// What a NodeReport may carry, shared by its producer (the agent) and its
// validator (the collector): an agent that sanitises to these limits never
// sends what the collector refuses. Header-only so that neither side links
// the other.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace wattlens::report_limits {

// A cgroup path (relative to the v2 root, starting with /).
inline constexpr size_t kMaxCgroupPathBytes = 4096;
// Every identity label (unit, namespace, pod, container, workload, ...).
inline constexpr size_t kMaxLabelBytes = 253;
// Workloads in one report.
inline constexpr size_t kMaxWorkloads = 10000;
// Energy buckets in one report: the agent sends at most one of each kind;
// the room above that is for kinds a newer agent may add, which an older
// collector refuses one by one rather than with the report.
inline constexpr size_t kMaxEnergyBuckets = 8;
// Node labels, health sources and drop reasons: entries of each.
inline constexpr size_t kMaxHealthEntries = 256;
// A health source's name or a drop reason, and a source's last error.
inline constexpr size_t kMaxHealthNameBytes = 64;
inline constexpr size_t kMaxHealthErrorBytes = 1024;

// Placeholders the agent sends instead of a path it cannot name: a cgroup
// removed before its path resolved (+ its id), and the one row that
// collects what a full cgroup table cannot hold. Both are well-formed paths
// under /, so the collector keeps their counts like any other workload's.
inline constexpr char kDeletedCgroupPrefix[] = "/deleted/";
inline constexpr char kOverflowCgroupPath[] = "/overflow";

inline bool IsControlByte(unsigned char c) { return c < 0x20 || c == 0x7f; }

inline bool HasControlBytes(std::string_view s) {
  for (unsigned char c : s) {
    if (IsControlByte(c)) return true;
  }
  return false;
}

// Length of the well-formed UTF-8 sequence starting at s[i], or 0.
inline size_t Utf8SequenceLength(std::string_view s, size_t i) {
  const auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = b(i);
  size_t n;
  uint32_t min;
  if (c < 0x80) return 1;
  if ((c & 0xe0) == 0xc0) {
    n = 2;
    min = 0x80;
  } else if ((c & 0xf0) == 0xe0) {
    n = 3;
    min = 0x800;
  } else if ((c & 0xf8) == 0xf0) {
    n = 4;
    min = 0x10000;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  uint32_t cp = c & (0x7f >> n);
  for (size_t k = 1; k < n; ++k) {
    if ((b(i + k) & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (b(i + k) & 0x3f);
  }
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
  return n;
}

// `s` as the collector accepts it: control bytes and bytes that are not
// well-formed UTF-8 (proto3 strings must be) written as \xNN, then cut to
// at most `max_bytes` without splitting a character or an escape.
// Printable UTF-8 that fits comes back unchanged.
inline std::string Sanitize(std::string_view s, size_t max_bytes) {
  std::string out;
  out.reserve(s.size() < max_bytes ? s.size() : max_bytes);
  for (size_t i = 0; i < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    size_t n = IsControlByte(c) ? 0 : Utf8SequenceLength(s, i);
    if (n == 0) {
      static constexpr char kHex[] = "0123456789abcdef";
      if (out.size() + 4 > max_bytes) break;
      out.append({'\\', 'x', kHex[c >> 4], kHex[c & 0xf]});
      ++i;
      continue;
    }
    if (out.size() + n > max_bytes) break;
    out.append(s.substr(i, n));
    i += n;
  }
  return out;
}

}  // namespace wattlens::report_limits
