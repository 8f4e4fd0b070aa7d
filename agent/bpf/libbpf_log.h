// SPDX-License-Identifier: Apache-2.0
// libbpf's messages: logged, and while a load is under way kept, so that a
// verifier refusal is reported with the tail of the verifier's own log
// instead of a bare "Permission denied".
#pragma once

#include <bpf/libbpf.h>

#include <cstdarg>
#include <deque>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace wattlens {

// Installs the agent's libbpf print callback (idempotent).
void InstallLibbpfLogger();

// While alive, keeps the last `max_lines` warning lines libbpf prints
// (libbpf prints a refused program's verifier log at warning level). Loads
// happen on one thread at start-up; captures do not nest.
class LibbpfLogCapture {
 public:
  explicit LibbpfLogCapture(size_t max_lines = 40);
  ~LibbpfLogCapture();
  LibbpfLogCapture(const LibbpfLogCapture&) = delete;
  LibbpfLogCapture& operator=(const LibbpfLogCapture&) = delete;

  // `ret` (a libbpf -errno) as a status that says what was being done and
  // ends with the captured tail.
  absl::Status Error(int ret, absl::string_view context) const;
  std::string Tail() const;

  // For the print callback.
  void Add(absl::string_view line);

 private:
  size_t max_lines_;
  std::deque<std::string> lines_;
  LibbpfLogCapture* previous_;
};

// The callback itself (exposed for tests).
int LibbpfPrint(enum libbpf_print_level level, const char* fmt, va_list args);

}  // namespace wattlens
