// SPDX-License-Identifier: Apache-2.0
// Line-numbered readers for the small text formats pricing loads: plain CSV
// (no quoting; '#' comment lines) and strict numbers. Every error is an
// InvalidArgument naming "<file>:<line>".
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace wattlens::pricing {

struct CsvRow {
  int line = 0;
  std::vector<std::string> fields;
};

// Splits `text` into rows of exactly header.size() trimmed fields. Blank
// lines and lines starting with '#' are skipped; the first other line must
// equal the header. Quotes, NUL and control characters are rejected.
absl::StatusOr<std::vector<CsvRow>> ParseCsv(
    absl::string_view text, absl::string_view name,
    const std::vector<std::string>& header);

// "<name>:<line>: <message>" as InvalidArgument.
absl::Status LineError(absl::string_view name, int line,
                       absl::string_view message);

// A finite decimal number ("12", "-0.5", "1e-3"); no inf, nan, hex, spaces.
bool ParseFiniteNumber(absl::string_view text, double* out);

// Reads a whole file (NotFound / errno status with the path).
absl::StatusOr<std::string> ReadTextFile(const std::string& path);

}  // namespace wattlens::pricing
