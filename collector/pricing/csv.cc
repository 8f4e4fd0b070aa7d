// SPDX-License-Identifier: Apache-2.0
#include "collector/pricing/csv.h"

#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace wattlens::pricing {

absl::Status LineError(absl::string_view name, int line,
                       absl::string_view message) {
  return absl::InvalidArgumentError(
      absl::StrCat(name, ":", line, ": ", message));
}

bool ParseFiniteNumber(absl::string_view text, double* out) {
  if (text.empty() || text.size() > 64) return false;
  // Sign, digits, one dot, exponent: the characters of a decimal literal.
  bool digit = false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c >= '0' && c <= '9') {
      digit = true;
    } else if (c == '.' || c == 'e' || c == 'E') {
    } else if ((c == '+' || c == '-') &&
               (i == 0 || text[i - 1] == 'e' || text[i - 1] == 'E')) {
    } else {
      return false;
    }
  }
  if (!digit) return false;
  double v = 0;
  if (!absl::SimpleAtod(text, &v)) return false;
  if (!std::isfinite(v)) return false;
  *out = v;
  return true;
}

absl::StatusOr<std::vector<CsvRow>> ParseCsv(
    absl::string_view text, absl::string_view name,
    const std::vector<std::string>& header) {
  std::vector<CsvRow> rows;
  bool seen_header = false;
  int line_no = 0;
  for (absl::string_view raw : absl::StrSplit(text, '\n')) {
    ++line_no;
    if (!raw.empty() && raw.back() == '\r') raw.remove_suffix(1);
    for (char c : raw) {
      if (static_cast<unsigned char>(c) < 0x20 && c != '\t') {
        return LineError(name, line_no, "control character in line");
      }
    }
    absl::string_view line = absl::StripAsciiWhitespace(raw);
    if (line.empty() || line[0] == '#') continue;
    if (line.find('"') != absl::string_view::npos) {
      return LineError(name, line_no, "quoted fields are not supported");
    }
    std::vector<std::string> fields;
    for (absl::string_view f : absl::StrSplit(line, ',')) {
      fields.emplace_back(absl::StripAsciiWhitespace(f));
    }
    if (!seen_header) {
      if (fields != header) {
        return LineError(
            name, line_no,
            absl::StrCat("expected header '", absl::StrJoin(header, ","), "'"));
      }
      seen_header = true;
      continue;
    }
    if (fields.size() != header.size()) {
      return LineError(
          name, line_no,
          absl::StrCat("malformed row: ", fields.size(), " fields, expected ",
                       header.size(), " (", absl::StrJoin(header, ","), ")"));
    }
    rows.push_back(CsvRow{line_no, std::move(fields)});
  }
  if (!seen_header) {
    return absl::InvalidArgumentError(absl::StrCat(
        name, ":", line_no, ": no header '", absl::StrJoin(header, ","), "'"));
  }
  return rows;
}

absl::StatusOr<std::string> ReadTextFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    int err = errno;
    if (err == ENOENT)
      return absl::NotFoundError(absl::StrCat(path, ": not found"));
    return absl::ErrnoToStatus(err, path);
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return absl::DataLossError(absl::StrCat(path, ": read failed"));
  return ss.str();
}

}  // namespace wattlens::pricing
