// SPDX-License-Identifier: Apache-2.0
// How each view (usage, nodes, watch events) is printed in every output
// format. Pure functions of the response and the options, so tests check
// the exact text without a server.
#pragma once

#include <cstddef>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "google/protobuf/message.h"
#include "wattlens/v1/query.pb.h"

namespace wattlens::cli {

enum class OutputFormat { kTable, kWide, kJson, kYaml, kCsv };

// "table", "wide", "json", "yaml", "csv".
std::optional<OutputFormat> ParseOutputFormat(absl::string_view name);

// One RFC 4180 record: fields with a comma, quote or line break are quoted,
// quotes doubled; ends in CRLF as the RFC asks.
std::string CsvLine(const std::vector<std::string>& fields);

// The shortest decimal text that reads back as exactly `v`.
std::string ExactNumber(double v);

// The protobuf JSON mapping with proto field names and default values, and
// the same tree as YAML (block style; strings quoted when YAML would read
// them as something else).
std::string ToJson(const google::protobuf::Message& m);
std::string ToYaml(const google::protobuf::Message& m);

struct RenderOptions {
  OutputFormat format = OutputFormat::kTable;
  bool headers = true;
  // Column set of the usage table: usage, cost, carbon, all, projects.
  std::string show = "usage";
  // "LAST-SEEN 12s" ages are relative to now; event times in tables are
  // printed in tz.
  absl::Time now = absl::UnixEpoch();
  absl::TimeZone tz = absl::UTCTimeZone();
};

// `top` and `projects`. Notes and partial-view warnings go to err (tables
// only: the machine formats carry them in the data).
void RenderUsage(const wattlens::v1::GetUsageRequest& request,
                 const wattlens::v1::GetUsageResponse& response,
                 const RenderOptions& options, std::ostream& out,
                 std::ostream& err);

// `status`.
void RenderNodes(const wattlens::v1::ListNodesResponse& response,
                 const RenderOptions& options, std::ostream& out);

// `watch`: one event at a time as they arrive; `index` is 0 for the first
// (the CSV header is printed before it).
void RenderWatchEvent(const wattlens::v1::WatchResponse& event, size_t index,
                      const RenderOptions& options, std::ostream& out);

}  // namespace wattlens::cli
