// SPDX-License-Identifier: Apache-2.0
#include "cli/output.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cstdint>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/time_util.h"
#include "nlohmann/json.hpp"

namespace wattlens::cli {
namespace {

using google::protobuf::util::TimeUtil;
using Json = nlohmann::ordered_json;
namespace v1 = wattlens::v1;

absl::Time ToTime(const google::protobuf::Timestamp& t) {
  return absl::FromUnixNanos(TimeUtil::TimestampToNanoseconds(t));
}

// RFC 3339 in UTC with "Z", as spreadsheets and FOCUS tools expect.
std::string Rfc3339(const google::protobuf::Timestamp& t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E*SZ", ToTime(t),
                          absl::UTCTimeZone());
}

std::string StateName(v1::NodeState s) {
  switch (s) {
    case v1::NODE_STATE_CONNECTED:
      return "Connected";
    case v1::NODE_STATE_STALE:
      return "Stale";
    case v1::NODE_STATE_GONE:
      return "Gone";
    default:
      return "Unknown";
  }
}

std::string HumanBytes(double b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (b >= 1024 && u < 4) {
    b /= 1024;
    ++u;
  }
  return u == 0 ? absl::StrFormat("%.0f%s", b, units[u])
                : absl::StrFormat("%.1f%s", b, units[u]);
}

std::string Ago(const google::protobuf::Timestamp& t, absl::Time now) {
  const int64_t s = absl::ToInt64Seconds(now - ToTime(t));
  if (s < 0) return "0s";
  if (s < 120) return absl::StrCat(s, "s");
  if (s < 7200) return absl::StrCat(s / 60, "m");
  return absl::StrCat(s / 3600, "h");
}

void PrintTable(const std::vector<std::vector<std::string>>& rows, bool headers,
                std::ostream& out) {
  if (rows.empty()) return;
  std::vector<size_t> width(rows[0].size(), 0);
  for (const auto& r : rows) {
    for (size_t i = 0; i < r.size() && i < width.size(); ++i) {
      width[i] = std::max(width[i], r[i].size());
    }
  }
  for (size_t k = headers ? 0 : 1; k < rows.size(); ++k) {
    std::string line;
    for (size_t i = 0; i < rows[k].size(); ++i) {
      line += rows[k][i];
      if (i + 1 < rows[k].size()) {
        line += std::string(width[i] - rows[k][i].size() + 3, ' ');
      }
    }
    out << line << "\n";
  }
}

void PrintCsv(const std::vector<std::vector<std::string>>& rows, bool headers,
              std::ostream& out) {
  for (size_t k = headers ? 0 : 1; k < rows.size(); ++k) {
    out << CsvLine(rows[k]);
  }
}

// ---- YAML ----------------------------------------------------------------

// Plain (unquoted) only when YAML 1.1 and 1.2 readers both take it as this
// very string: no leading digit/sign/indicator, no booleans or nulls.
bool PlainSafe(absl::string_view s) {
  if (s.empty()) return false;
  const char c0 = s[0];
  if (!(std::isalpha(static_cast<unsigned char>(c0)) || c0 == '_' ||
        c0 == '/')) {
    return false;
  }
  for (char c : s) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' ||
          c == '/' || c == '-')) {
      return false;
    }
  }
  static constexpr std::array<absl::string_view, 11> kReserved = {
      "true", "false", "yes",  "no",  "on", "off",
      "y",    "n",     "null", "nan", "inf"};
  const std::string lower = absl::AsciiStrToLower(s);
  return std::find(kReserved.begin(), kReserved.end(), lower) ==
         kReserved.end();
}

std::string YamlScalar(const Json& j) {
  if (j.is_string()) {
    const std::string& s = j.get_ref<const std::string&>();
    // JSON's double-quoted strings are YAML double-quoted scalars.
    return PlainSafe(s) ? s : j.dump();
  }
  std::string text = j.dump();  // round-trip precision
  // YAML 1.1 readers (PyYAML) take 1e-05 for a string: a float needs a dot.
  if (j.is_number_float() && text.find_first_of("eE") != std::string::npos &&
      text.find('.') == std::string::npos) {
    text.insert(text.find_first_of("eE"), ".0");
  }
  return text;  // numbers, booleans, null
}

bool IsLeaf(const Json& j) { return !j.is_structured() || j.empty(); }

std::string YamlLeaf(const Json& j) {
  if (j.is_object()) return "{}";
  if (j.is_array()) return "[]";
  return YamlScalar(j);
}

void EmitYaml(const Json& j, int indent, std::string* out) {
  const std::string pad(indent, ' ');
  if (j.is_object()) {
    for (const auto& [key, value] : j.items()) {
      absl::StrAppend(out, pad, YamlScalar(Json(key)), ":");
      if (IsLeaf(value)) {
        absl::StrAppend(out, " ", YamlLeaf(value), "\n");
      } else if (value.is_array()) {
        absl::StrAppend(out, "\n");
        EmitYaml(value, indent, out);  // "- " at the key's indent
      } else {
        absl::StrAppend(out, "\n");
        EmitYaml(value, indent + 2, out);
      }
    }
  } else if (j.is_array()) {
    for (const auto& item : j) {
      if (IsLeaf(item)) {
        absl::StrAppend(out, pad, "- ", YamlLeaf(item), "\n");
        continue;
      }
      // The item's first line goes after "- ", the rest under it.
      std::string nested;
      EmitYaml(item, indent + 2, &nested);
      nested.replace(0, indent + 2, pad + "- ");
      absl::StrAppend(out, nested);
    }
  } else {
    absl::StrAppend(out, pad, YamlScalar(j), "\n");
  }
}

// ---- usage view ----------------------------------------------------------

std::vector<std::string> KeyColumns(v1::GroupBy g) {
  switch (g) {
    case v1::GROUP_BY_NODE:
      return {"NODE"};
    case v1::GROUP_BY_NAMESPACE:
      return {"NAMESPACE"};
    case v1::GROUP_BY_POD:
      return {"NAMESPACE", "POD"};
    case v1::GROUP_BY_CONTAINER:
      return {"NAMESPACE", "POD", "CONTAINER"};
    case v1::GROUP_BY_PROJECT:
      return {"PROJECT"};
    case v1::GROUP_BY_CGROUP:
      return {"NODE", "CGROUP"};
    default:
      return {"NAMESPACE", "WORKLOAD"};
  }
}

// Marks a node whose reports end before the query's window does.
constexpr char kPartialMark[] = "*";

std::string OrDash(const std::string& s) { return s.empty() ? "-" : s; }

std::string WorkloadName(const v1::UsageKey& k) {
  return k.workload_kind().empty()
             ? k.workload()
             : absl::StrCat(k.workload_kind(), "/", k.workload());
}

std::string KeyCell(const v1::UsageKey& k, const std::string& column) {
  if (column == "NODE") return k.node_name();
  if (column == "NAMESPACE") return OrDash(k.namespace_());
  if (column == "POD") return k.pod();
  if (column == "CONTAINER") return k.container();
  if (column == "PROJECT") return OrDash(k.project());
  if (column == "CGROUP") return k.cgroup_path();
  return WorkloadName(k);
}

std::string Fixed(double v, int digits) {
  return absl::StrFormat("%.*f", digits, v);
}

void RenderUsageTable(const v1::GetUsageRequest& req,
                      const v1::GetUsageResponse& resp, const RenderOptions& o,
                      std::ostream& out) {
  const bool wide = o.format == OutputFormat::kWide;
  const std::string& show = o.show;
  const bool usage_cols = wide || show == "usage" || show == "all";
  const bool cost_cols = wide || show == "cost" || show == "all";
  const bool carbon_cols = wide || show == "carbon" || show == "all";
  const bool project_cols = !wide && show == "projects";
  const std::string cur = resp.currency().empty() ? "$" : resp.currency();
  const std::vector<std::string> key_cols = KeyColumns(req.group_by());
  // Nodes whose reports end before the window does: their cells are marked.
  absl::flat_hash_set<std::string> behind;
  for (const auto& p : resp.partial_nodes()) behind.insert(p.node_name());
  std::vector<std::string> header = key_cols;
  if (usage_cols) {
    for (const char* h : {"CPU(cores)", "CPU(s)", "SYSCALLS/s", "NET(B/s)",
                          "ENERGY(J)", "POWER(W)"}) {
      header.push_back(h);
    }
  }
  if (cost_cols) {
    for (const char* h : {"COST", "CPU", "RAM", "GPU", "NETWORK", "ENERGY"}) {
      header.push_back(absl::StrCat(h, "(", cur, ")"));
    }
  }
  if (carbon_cols) {
    for (const char* h : {"ENERGY(kWh)", "FACILITY(kWh)", "CO2e(g)",
                          "OPERATIONAL(g)", "EMBODIED(g)", "SCI(g/unit)"}) {
      header.push_back(h);
    }
  }
  if (project_cols) {
    header.push_back(absl::StrCat("COST(", cur, ")"));
    for (const char* h : {"SHARE", "CPU(cores)", "ENERGY(kWh)", "CO2e(g)",
                          "OPERATIONAL(g)", "EMBODIED(g)"}) {
      header.push_back(h);
    }
  }
  if (wide) {
    for (const char* h : {"SHARE", "SERIES"}) header.push_back(h);
  }
  std::vector<std::vector<std::string>> rows = {header};
  for (const auto& r : resp.rows()) {
    std::vector<std::string> row;
    for (const auto& c : key_cols) {
      row.push_back(KeyCell(r.key(), c));
      if (c == "NODE" && behind.contains(r.key().node_name())) {
        row.back() += kPartialMark;
      }
    }
    const auto& u = r.usage();
    if (usage_cols) {
      row.push_back(Fixed(u.cpu_cores(), 3));
      row.push_back(Fixed(u.cpu_seconds(), 3));
      row.push_back(Fixed(u.syscalls_per_second(), 1));
      row.push_back(HumanBytes(u.network_bytes_per_second()));
      row.push_back(Fixed(u.energy_joules(), 1));
      row.push_back(Fixed(u.watts(), 2));
    }
    if (cost_cols) {
      const auto& c = u.cost();
      for (double v :
           {c.total(), c.cpu(), c.ram(), c.gpu(), c.network(), c.energy()}) {
        row.push_back(Fixed(v, 6));
      }
    }
    if (carbon_cols) {
      const auto& c = u.carbon();
      row.push_back(Fixed(u.energy_kwh(), 6));
      row.push_back(Fixed(u.facility_energy_kwh(), 6));
      row.push_back(Fixed(c.total_grams(), 3));
      row.push_back(Fixed(c.operational_grams(), 3));
      row.push_back(Fixed(c.embodied_grams(), 3));
      row.push_back(
          c.sci_unit().empty()
              ? "-"
              : absl::StrFormat("%.4g/%s", c.sci_grams(), c.sci_unit()));
    }
    if (project_cols) {
      row.push_back(Fixed(u.cost().total(), 6));
      row.push_back(absl::StrFormat("%.1f%%", 100 * u.cost_share()));
      row.push_back(Fixed(u.cpu_cores(), 3));
      row.push_back(Fixed(u.energy_kwh(), 6));
      row.push_back(Fixed(u.carbon().total_grams(), 3));
      row.push_back(Fixed(u.carbon().operational_grams(), 3));
      row.push_back(Fixed(u.carbon().embodied_grams(), 3));
    }
    if (wide) {
      row.push_back(absl::StrFormat("%.1f%%", 100 * u.cost_share()));
      row.push_back(absl::StrCat(r.series()));
    }
    rows.push_back(std::move(row));
  }
  PrintTable(rows, o.headers, out);
  // The marker's legend, under the table it marks (left out with the
  // headers, for scripts that read rows only).
  if (o.headers && resp.partial_nodes_size() > 0) {
    std::vector<std::string> names;
    for (const auto& p : resp.partial_nodes()) names.push_back(p.node_name());
    out << "PARTIAL" << kPartialMark
        << ": not reported up to the window's end: "
        << absl::StrJoin(names, ", ") << "\n";
  }
}

std::string PartialReasonText(v1::PartialReason r) {
  switch (r) {
    case v1::PARTIAL_REASON_CATCHING_UP:
      return "catching up";
    case v1::PARTIAL_REASON_NOT_REPORTING:
      return "not reporting";
    default:
      return "behind";
  }
}

// FOCUS names the cost and charge-period columns; the resource columns name
// the group; everything FOCUS has no column for is an x_ extension column,
// as the specification asks of custom columns.
std::vector<std::vector<std::string>> UsageCsv(
    const v1::GetUsageRequest& req, const v1::GetUsageResponse& resp) {
  std::vector<std::vector<std::string>> rows = {{
      "ChargePeriodStart",
      "ChargePeriodEnd",
      "ChargeCategory",
      "BillingCurrency",
      "BilledCost",
      "EffectiveCost",
      "ResourceId",
      "ResourceName",
      "ResourceType",
      "x_NodeName",
      "x_Namespace",
      "x_WorkloadKind",
      "x_Workload",
      "x_Pod",
      "x_Container",
      "x_Project",
      "x_CgroupPath",
      "x_CostCpu",
      "x_CostRam",
      "x_CostGpu",
      "x_CostNetwork",
      "x_CostEnergy",
      "x_CostShare",
      "x_CpuSeconds",
      "x_CpuCores",
      "x_CpuAllocatedCoreHours",
      "x_MemoryAllocatedGibHours",
      "x_Syscalls",
      "x_SyscallErrors",
      "x_NetworkTransmitBytes",
      "x_NetworkReceiveBytes",
      "x_TcpAccepted",
      "x_EnergyJoules",
      "x_EnergyKwh",
      "x_FacilityEnergyKwh",
      "x_Co2eGrams",
      "x_OperationalCo2eGrams",
      "x_EmbodiedCo2eGrams",
      "x_SciGrams",
      "x_SciUnit",
      "x_Series",
  }};
  const std::string start = Rfc3339(resp.since());
  const std::string end = Rfc3339(resp.until());
  for (const auto& r : resp.rows()) {
    const auto& k = r.key();
    const auto& u = r.usage();
    std::string id, name, type;
    switch (req.group_by()) {
      case v1::GROUP_BY_NODE:
        id = name = k.node_name();
        type = "Node";
        break;
      case v1::GROUP_BY_NAMESPACE:
        id = name = k.namespace_();
        type = "Namespace";
        break;
      case v1::GROUP_BY_POD:
        id = absl::StrCat(k.namespace_(), "/", k.pod());
        name = k.pod();
        type = "Pod";
        break;
      case v1::GROUP_BY_CONTAINER:
        id = absl::StrCat(k.namespace_(), "/", k.pod(), "/", k.container());
        name = k.container();
        type = "Container";
        break;
      case v1::GROUP_BY_PROJECT:
        id = name = k.project();
        type = "Project";
        break;
      case v1::GROUP_BY_CGROUP:
        id = absl::StrCat(k.node_name(), ":", k.cgroup_path());
        name = k.cgroup_path();
        type = "Cgroup";
        break;
      default:
        id = absl::StrCat(k.namespace_(), "/", WorkloadName(k));
        name = k.workload();
        type = "Workload";
    }
    const auto& c = u.cost();
    const auto& g = u.carbon();
    rows.push_back({
        start,
        end,
        "Usage",
        resp.currency(),
        ExactNumber(c.total()),
        ExactNumber(c.total()),
        id,
        name,
        type,
        k.node_name(),
        k.namespace_(),
        k.workload_kind(),
        k.workload(),
        k.pod(),
        k.container(),
        k.project(),
        k.cgroup_path(),
        ExactNumber(c.cpu()),
        ExactNumber(c.ram()),
        ExactNumber(c.gpu()),
        ExactNumber(c.network()),
        ExactNumber(c.energy()),
        ExactNumber(u.cost_share()),
        ExactNumber(u.cpu_seconds()),
        ExactNumber(u.cpu_cores()),
        ExactNumber(u.cpu_allocated_core_hours()),
        ExactNumber(u.memory_allocated_gib_hours()),
        absl::StrCat(u.syscalls()),
        absl::StrCat(u.syscall_errors()),
        absl::StrCat(u.network_transmit_bytes()),
        absl::StrCat(u.network_receive_bytes()),
        absl::StrCat(u.tcp_accepted()),
        ExactNumber(u.energy_joules()),
        ExactNumber(u.energy_kwh()),
        ExactNumber(u.facility_energy_kwh()),
        ExactNumber(g.total_grams()),
        ExactNumber(g.operational_grams()),
        ExactNumber(g.embodied_grams()),
        ExactNumber(g.sci_grams()),
        g.sci_unit(),
        absl::StrCat(r.series()),
    });
  }
  return rows;
}

}  // namespace

std::optional<OutputFormat> ParseOutputFormat(absl::string_view name) {
  if (name == "table") return OutputFormat::kTable;
  if (name == "wide") return OutputFormat::kWide;
  if (name == "json") return OutputFormat::kJson;
  if (name == "yaml") return OutputFormat::kYaml;
  if (name == "csv") return OutputFormat::kCsv;
  return std::nullopt;
}

std::string CsvLine(const std::vector<std::string>& fields) {
  std::string line;
  for (size_t i = 0; i < fields.size(); ++i) {
    if (i > 0) line += ',';
    const std::string& f = fields[i];
    if (f.find_first_of(",\"\r\n") == std::string::npos) {
      line += f;
      continue;
    }
    line += '"';
    for (char c : f) {
      if (c == '"') line += '"';
      line += c;
    }
    line += '"';
  }
  line += "\r\n";
  return line;
}

std::string ExactNumber(double v) {
  std::array<char, 32> buf;
  auto [end, ec] = std::to_chars(buf.data(), buf.data() + buf.size(), v);
  if (ec != std::errc()) return "NaN";
  return std::string(buf.data(), end);
}

std::string ToJson(const google::protobuf::Message& m) {
  google::protobuf::util::JsonPrintOptions o;
  o.preserve_proto_field_names = true;
  o.always_print_primitive_fields = true;
  std::string out;
  // Only fails on messages that cannot be JSON (Any without a resolver):
  // none in this API.
  (void)google::protobuf::util::MessageToJsonString(m, &out, o);
  return out;
}

std::string ToYaml(const google::protobuf::Message& m) {
  const Json j = Json::parse(ToJson(m), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return "";
  std::string out;
  if (IsLeaf(j)) return YamlLeaf(j) + "\n";
  EmitYaml(j, 0, &out);
  return out;
}

void RenderUsage(const v1::GetUsageRequest& request,
                 const v1::GetUsageResponse& response,
                 const RenderOptions& options, std::ostream& out,
                 std::ostream& err) {
  switch (options.format) {
    case OutputFormat::kJson:
      out << ToJson(response) << "\n";
      return;
    case OutputFormat::kYaml:
      out << ToYaml(response);
      return;
    case OutputFormat::kCsv:
      PrintCsv(UsageCsv(request, response), options.headers, out);
      return;
    case OutputFormat::kTable:
    case OutputFormat::kWide:
      RenderUsageTable(request, response, options, out);
      break;
  }
  for (const auto& w : response.warnings()) err << "NOTE: " << w << "\n";
  if (response.missing_nodes_size() > 0) {
    err << "WARNING: partial view; nodes not reporting now: "
        << absl::StrJoin(response.missing_nodes(), ", ") << "\n";
  }
  for (const auto& p : response.partial_nodes()) {
    const absl::Time until = absl::FromUnixNanos(
        google::protobuf::util::TimeUtil::TimestampToNanoseconds(
            p.reported_until()));
    err << "WARNING: partial view; node " << p.node_name() << " is "
        << PartialReasonText(p.reason()) << ": reported up to "
        << absl::FormatTime("%Y-%m-%dT%H:%M:%S%Ez", until, options.tz) << ", "
        << absl::FormatDuration(absl::Trunc(
               absl::Nanoseconds(
                   google::protobuf::util::TimeUtil::DurationToNanoseconds(
                       p.behind())),
               absl::Milliseconds(1)))
        << " before the window's end (upload interval "
        << absl::FormatDuration(absl::Nanoseconds(
               google::protobuf::util::TimeUtil::DurationToNanoseconds(
                   p.upload_interval())))
        << ")\n";
  }
}

void RenderNodes(const v1::ListNodesResponse& response,
                 const RenderOptions& options, std::ostream& out) {
  switch (options.format) {
    case OutputFormat::kJson:
      out << ToJson(response) << "\n";
      return;
    case OutputFormat::kYaml:
      out << ToYaml(response);
      return;
    default:
      break;
  }
  const bool csv = options.format == OutputFormat::kCsv;
  const bool wide = options.format == OutputFormat::kWide;
  std::vector<std::vector<std::string>> rows;
  if (csv) {
    rows.push_back({"NodeName", "State", "LastSeen", "LastReport", "Epoch",
                    "LastSequence", "Workloads", "Restarts", "AgentVersion",
                    "ReportsAccepted", "ReportsDuplicate", "ReportsRejected",
                    "PowerWatts", "PowerSource", "Cpus", "MemoryBytes"});
  } else {
    rows.push_back({"NODE", "STATE", "LAST-SEEN", "EPOCH", "SEQUENCE",
                    "WORKLOADS", "RESTARTS", "VERSION"});
    if (wide) {
      for (const char* h : {"POWER(W)", "POWER-SOURCE", "CPUS", "MEMORY",
                            "REPORTS(ok/dup/bad)"}) {
        rows[0].push_back(h);
      }
    }
  }
  int connected = 0;
  for (const auto& n : response.nodes()) {
    connected += n.state() == v1::NODE_STATE_CONNECTED;
    const uint64_t restarts = n.epochs_seen() > 0 ? n.epochs_seen() - 1 : 0;
    if (csv) {
      rows.push_back(
          {n.node_name(), StateName(n.state()),
           n.has_last_seen_time() ? Rfc3339(n.last_seen_time()) : "",
           n.has_last_report_time() ? Rfc3339(n.last_report_time()) : "",
           absl::StrCat(n.epoch()), absl::StrCat(n.last_sequence()),
           absl::StrCat(n.workloads()), absl::StrCat(restarts),
           n.agent_version(), absl::StrCat(n.reports_accepted()),
           absl::StrCat(n.reports_duplicate()),
           absl::StrCat(n.reports_rejected()), ExactNumber(n.power().watts()),
           v1::PowerSource_Name(n.power().source()),
           absl::StrCat(n.spec().cpus()),
           absl::StrCat(n.spec().memory_bytes())});
      continue;
    }
    std::vector<std::string> row = {n.node_name(),
                                    StateName(n.state()),
                                    Ago(n.last_seen_time(), options.now),
                                    absl::StrCat(n.epoch()),
                                    absl::StrCat(n.last_sequence()),
                                    absl::StrCat(n.workloads()),
                                    absl::StrCat(restarts),
                                    OrDash(n.agent_version())};
    if (wide) {
      std::string source = v1::PowerSource_Name(n.power().source());
      if (absl::StartsWith(source, "POWER_SOURCE_")) {
        source = absl::AsciiStrToLower(source.substr(13));
      }
      row.push_back(Fixed(n.power().watts(), 1));
      row.push_back(source);
      row.push_back(absl::StrCat(n.spec().cpus()));
      row.push_back(HumanBytes(static_cast<double>(n.spec().memory_bytes())));
      row.push_back(absl::StrCat(n.reports_accepted(), "/",
                                 n.reports_duplicate(), "/",
                                 n.reports_rejected()));
    }
    rows.push_back(std::move(row));
  }
  if (csv) {
    PrintCsv(rows, options.headers, out);
    return;
  }
  PrintTable(rows, options.headers, out);
  out << "Nodes: " << connected << "/" << response.nodes_size()
      << " connected\n";
}

void RenderWatchEvent(const v1::WatchResponse& ev, size_t index,
                      const RenderOptions& options, std::ostream& out) {
  switch (options.format) {
    case OutputFormat::kJson:
      out << ToJson(ev) << "\n";  // one object per line (JSON Lines)
      return;
    case OutputFormat::kYaml:
      out << "---\n" << ToYaml(ev);  // one document per event
      return;
    case OutputFormat::kCsv: {
      if (index == 0 && options.headers) {
        out << CsvLine({"Time", "NodeName", "Event", "State", "PreviousState",
                        "Epoch", "Sequence", "Workloads", "LostEvents",
                        "Message"});
      }
      const std::string when = Rfc3339(ev.time());
      if (ev.has_node_status()) {
        const auto& s = ev.node_status();
        out << CsvLine({when, s.node_name(), "node_status",
                        StateName(s.state()),
                        s.previous_state() == v1::NODE_STATE_UNSPECIFIED
                            ? ""
                            : StateName(s.previous_state()),
                        absl::StrCat(s.epoch()), "", "", "", s.message()});
      } else if (ev.has_report()) {
        const auto& r = ev.report();
        out << CsvLine({when, r.node_name(), "report", "", "",
                        absl::StrCat(r.epoch()), absl::StrCat(r.sequence()),
                        absl::StrCat(r.workloads()), "", ""});
      } else if (ev.has_lost_events()) {
        out << CsvLine({when, "", "lost_events", "", "", "", "", "",
                        absl::StrCat(ev.lost_events().count()), ""});
      }
      return;
    }
    case OutputFormat::kTable:
    case OutputFormat::kWide:
      break;
  }
  const bool wide = options.format == OutputFormat::kWide;
  const std::string when =
      absl::FormatTime(wide ? "%Y-%m-%dT%H:%M:%E3S%Ez" : "%H:%M:%S",
                       ToTime(ev.time()), options.tz);
  if (ev.has_node_status()) {
    const auto& s = ev.node_status();
    out << when << "  " << s.node_name() << "  " << StateName(s.state());
    if (s.previous_state() != v1::NODE_STATE_UNSPECIFIED) {
      out << " (was " << StateName(s.previous_state()) << ")";
    }
    if (wide) out << "  epoch " << s.epoch();
    out << "  " << s.message() << "\n";
  } else if (ev.has_report()) {
    out << when << "  " << ev.report().node_name() << "  report #"
        << ev.report().sequence() << " (" << ev.report().workloads()
        << " workloads)";
    if (wide) out << "  epoch " << ev.report().epoch();
    out << "\n";
  } else if (ev.has_lost_events()) {
    out << when << "  LOST " << ev.lost_events().count()
        << " events (reading too slowly)\n";
  }
}

}  // namespace wattlens::cli
