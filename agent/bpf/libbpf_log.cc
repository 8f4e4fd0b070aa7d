// SPDX-License-Identifier: Apache-2.0
#include "agent/bpf/libbpf_log.h"

#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "spdlog/spdlog.h"

namespace wattlens {
namespace {

LibbpfLogCapture* active_capture = nullptr;

}  // namespace

int LibbpfPrint(enum libbpf_print_level level, const char* fmt, va_list args) {
  if (level == LIBBPF_DEBUG) return 0;
  char buf[4096];
  int n = vsnprintf(buf, sizeof(buf), fmt, args);
  absl::string_view msg(buf, n > 0 ? std::min<size_t>(n, sizeof(buf) - 1) : 0);
  while (!msg.empty() && msg.back() == '\n') msg.remove_suffix(1);
  if (level == LIBBPF_WARN) {
    spdlog::warn("libbpf: {}", std::string_view(msg.data(), msg.size()));
    if (active_capture) {
      for (absl::string_view line : absl::StrSplit(msg, '\n')) {
        active_capture->Add(line);
      }
    }
  } else {
    spdlog::debug("libbpf: {}", std::string_view(msg.data(), msg.size()));
  }
  return 0;
}

void InstallLibbpfLogger() { libbpf_set_print(LibbpfPrint); }

LibbpfLogCapture::LibbpfLogCapture(size_t max_lines)
    : max_lines_(max_lines), previous_(active_capture) {
  active_capture = this;
}

LibbpfLogCapture::~LibbpfLogCapture() { active_capture = previous_; }

void LibbpfLogCapture::Add(absl::string_view line) {
  if (line.empty()) return;
  lines_.emplace_back(line);
  while (lines_.size() > max_lines_) lines_.pop_front();
}

std::string LibbpfLogCapture::Tail() const {
  return absl::StrJoin(lines_, "\n");
}

absl::Status LibbpfLogCapture::Error(int ret, absl::string_view context) const {
  absl::Status s = absl::ErrnoToStatus(ret < 0 ? -ret : ret, context);
  if (lines_.empty()) return s;
  return absl::Status(s.code(), absl::StrCat(s.message(),
                                             "; libbpf and verifier log "
                                             "(tail):\n",
                                             Tail()));
}

}  // namespace wattlens
