#include "cli/cli.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/time_util.h"
#include "grpcpp/create_channel.h"
#include "proto/transport/tls.h"
#include "wattlens/v1/query.grpc.pb.h"

namespace wattlens::cli {
namespace {

using google::protobuf::util::TimeUtil;

constexpr char kUsage[] = R"(Usage: wattlens [global flags] <command> [flags]

Commands:
  top       per-workload CPU, syscalls, network and energy over a window
  projects  the open-source project bill: cost, energy and carbon per
            project (postgres, nginx, ...) across the cluster
  status    nodes known to the collector and their state
  watch     node status events (-f: follow until interrupted)

Global flags:
  --server=HOST:PORT     collector address (default 127.0.0.1:9811)
  --insecure             plaintext, no certificates (collector --insecure)
  --tls-ca-file=PATH     CA that signed the collector's certificate
  --tls-cert-file=PATH   client certificate (mTLS)
  --tls-key-file=PATH    client key
  --tls-server-name=NAME name expected in the collector's certificate
  --timeout=DURATION     per request (default 12s)
  -o, --output=table|json

top flags (projects takes the same; it groups by project, sorts by cost):
  --group-by=node|namespace|workload|pod|container|project|cgroup (workload)
  --sort-by=cpu|energy|network|syscalls|cost|carbon|name (cpu)   --reverse
  --show=usage|cost|carbon|all (usage): column sets; cost = money by
         resource, carbon = kWh and g CO2e (operational, embodied, SCI
         per accepted connection, else per hour)
  --share-idle   share each node's idle cost among its workloads
  -n, --namespace=NS ("-" = host workloads)   -A, --all-namespaces
  --node=NAME   --project=NAME   --limit=N   --no-headers
  --window=1m|5m|1h|24h|DURATION (5m)
  --since=RFC3339|DURATION-ago   --until=RFC3339|DURATION-ago

watch flags:
  -f, --follow   --include-reports
)";

struct Args {
  std::map<std::string, std::string> flags;  // name -> value ("" for bools)
  std::vector<std::string> positional;
};

// Accepts --name=value, --name value, -x value, -xvalue, and bools.
bool Parse(const std::vector<std::string>& in, Args* a, std::string* error) {
  static const std::map<std::string, std::string> kShort = {
      {"-o", "output"},
      {"-n", "namespace"},
      {"-A", "all-namespaces"},
      {"-f", "follow"},
      {"-h", "help"}};
  static const std::vector<std::string> kBool = {
      "insecure", "all-namespaces", "follow",         "help",
      "reverse",  "no-headers",     "include-reports", "share-idle"};
  for (size_t i = 0; i < in.size(); ++i) {
    const std::string& s = in[i];
    std::string name, value;
    bool has_value = false;
    if (s.rfind("--", 0) == 0) {
      const size_t eq = s.find('=');
      name = s.substr(2, eq == std::string::npos ? std::string::npos : eq - 2);
      if (eq != std::string::npos) {
        value = s.substr(eq + 1);
        has_value = true;
      }
    } else if (s.size() >= 2 && s[0] == '-' && s != "-") {
      auto it = kShort.find(s.substr(0, 2));
      if (it == kShort.end()) {
        *error = absl::StrCat("unknown flag ", s);
        return false;
      }
      name = it->second;
      if (s.size() > 2) {
        value = s.substr(2);
        has_value = true;
      }
    } else {
      a->positional.push_back(s);
      continue;
    }
    const bool is_bool =
        std::find(kBool.begin(), kBool.end(), name) != kBool.end();
    if (!has_value && !is_bool) {
      if (i + 1 >= in.size()) {
        *error = absl::StrCat("flag --", name, " needs a value");
        return false;
      }
      value = in[++i];
    }
    a->flags[name] = value;
  }
  return true;
}

std::string Flag(const Args& a, const std::string& name,
                 const std::string& def = "") {
  auto it = a.flags.find(name);
  return it == a.flags.end() ? def : it->second;
}
bool Has(const Args& a, const std::string& name) {
  return a.flags.count(name) > 0;
}

// RFC 3339, or a duration meaning that long before now.
std::optional<google::protobuf::Timestamp> ParseWhen(const std::string& s) {
  absl::Time t;
  std::string err;
  if (absl::ParseTime(absl::RFC3339_full, s, &t, &err)) {
    return TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(t));
  }
  absl::Duration d;
  if (absl::ParseDuration(s, &d) && d >= absl::ZeroDuration()) {
    return TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(absl::Now() - d));
  }
  return std::nullopt;
}

std::string Json(const google::protobuf::Message& m) {
  google::protobuf::util::JsonPrintOptions o;
  o.preserve_proto_field_names = true;
  o.always_print_primitive_fields = true;
  std::string out;
  (void)google::protobuf::util::MessageToJsonString(m, &out, o);
  return out;
}

std::string StateName(wattlens::v1::NodeState s) {
  switch (s) {
    case wattlens::v1::NODE_STATE_CONNECTED:
      return "Connected";
    case wattlens::v1::NODE_STATE_STALE:
      return "Stale";
    case wattlens::v1::NODE_STATE_GONE:
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

std::string Ago(const google::protobuf::Timestamp& t) {
  const int64_t s =
      (absl::ToUnixNanos(absl::Now()) - TimeUtil::TimestampToNanoseconds(t)) /
      1'000'000'000;
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
    for (size_t i = 0; i < r.size(); ++i) {
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

int RpcError(const grpc::Status& st, const std::string& server,
             std::ostream& err) {
  err << "wattlens: " << server << ": " << st.error_message() << " (code "
      << static_cast<int>(st.error_code()) << ")\n";
  return 1;
}

int Top(const Args& a, wattlens::v1::QueryService::Stub& stub,
        absl::Duration timeout, bool json, std::ostream& out,
        std::ostream& err, bool projects) {
  const char* cmd = projects ? "wattlens projects" : "wattlens top";
  static const std::map<std::string, wattlens::v1::GroupBy> kGroups = {
      {"node", wattlens::v1::GROUP_BY_NODE},
      {"namespace", wattlens::v1::GROUP_BY_NAMESPACE},
      {"workload", wattlens::v1::GROUP_BY_WORKLOAD},
      {"pod", wattlens::v1::GROUP_BY_POD},
      {"container", wattlens::v1::GROUP_BY_CONTAINER},
      {"project", wattlens::v1::GROUP_BY_PROJECT},
      {"cgroup", wattlens::v1::GROUP_BY_CGROUP}};
  static const std::map<std::string, wattlens::v1::SortBy> kSorts = {
      {"cpu", wattlens::v1::SORT_BY_CPU},
      {"energy", wattlens::v1::SORT_BY_ENERGY},
      {"network", wattlens::v1::SORT_BY_NETWORK},
      {"syscalls", wattlens::v1::SORT_BY_SYSCALLS},
      {"cost", wattlens::v1::SORT_BY_COST},
      {"carbon", wattlens::v1::SORT_BY_CARBON},
      {"name", wattlens::v1::SORT_BY_NAME}};
  wattlens::v1::GetUsageRequest req;
  const std::string group =
      Flag(a, "group-by", projects ? "project" : "workload");
  const std::string sort = Flag(a, "sort-by", projects ? "cost" : "cpu");
  const std::string show = Flag(a, "show", projects ? "projects" : "usage");
  if (!kGroups.count(group) || !kSorts.count(sort)) {
    err << cmd << ": bad --group-by or --sort-by\n";
    return 2;
  }
  if (show != "usage" && show != "cost" && show != "carbon" &&
      show != "all" && show != "projects") {
    err << cmd << ": bad --show (usage, cost, carbon or all)\n";
    return 2;
  }
  req.set_share_idle(Has(a, "share-idle"));
  req.set_group_by(kGroups.at(group));
  req.set_sort_by(kSorts.at(sort));
  req.set_reverse(Has(a, "reverse"));
  if (!Has(a, "all-namespaces")) req.set_namespace_(Flag(a, "namespace"));
  req.set_node_name(Flag(a, "node"));
  req.set_project(Flag(a, "project"));
  if (Has(a, "limit")) {
    uint32_t limit = 0;
    if (!absl::SimpleAtoi(Flag(a, "limit"), &limit)) {
      err << cmd << ": bad --limit\n";
      return 2;
    }
    req.set_limit(limit);
  }
  absl::Duration window = absl::Minutes(5);
  if (Has(a, "window") && (!absl::ParseDuration(Flag(a, "window"), &window) ||
                           window <= absl::ZeroDuration())) {
    err << cmd << ": bad --window (e.g. 1m, 5m, 1h, 24h)\n";
    return 2;
  }
  *req.mutable_window() =
      TimeUtil::NanosecondsToDuration(absl::ToInt64Nanoseconds(window));
  for (const char* f : {"since", "until"}) {
    if (!Has(a, f)) continue;
    auto t = ParseWhen(Flag(a, f));
    if (!t) {
      err << cmd << ": bad --" << f << " (RFC 3339 or a duration ago)\n";
      return 2;
    }
    *(std::string(f) == "since" ? req.mutable_since() : req.mutable_until()) =
        *t;
  }
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  wattlens::v1::GetUsageResponse resp;
  grpc::Status st = stub.GetUsage(&ctx, req, &resp);
  if (!st.ok()) return RpcError(st, Flag(a, "server", "127.0.0.1:9811"), err);
  if (json) {
    out << Json(resp) << "\n";
    return 0;
  }
  std::vector<std::string> key_cols;
  switch (req.group_by()) {
    case wattlens::v1::GROUP_BY_NODE:
      key_cols = {"NODE"};
      break;
    case wattlens::v1::GROUP_BY_NAMESPACE:
      key_cols = {"NAMESPACE"};
      break;
    case wattlens::v1::GROUP_BY_POD:
      key_cols = {"NAMESPACE", "POD"};
      break;
    case wattlens::v1::GROUP_BY_CONTAINER:
      key_cols = {"NAMESPACE", "POD", "CONTAINER"};
      break;
    case wattlens::v1::GROUP_BY_PROJECT:
      key_cols = {"PROJECT"};
      break;
    case wattlens::v1::GROUP_BY_CGROUP:
      key_cols = {"NODE", "CGROUP"};
      break;
    default:
      key_cols = {"NAMESPACE", "WORKLOAD"};
  }
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> header = key_cols;
  const bool usage_cols = show == "usage" || show == "all";
  const bool cost_cols = show == "cost" || show == "all";
  const bool carbon_cols = show == "carbon" || show == "all";
  const bool project_cols = show == "projects";
  const std::string cur = resp.currency().empty() ? "$" : resp.currency();
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
    for (std::string h :
         {absl::StrCat("COST(", cur, ")"), std::string("SHARE"),
          std::string("CPU(cores)"), std::string("ENERGY(kWh)"),
          std::string("CO2e(g)"), std::string("OPERATIONAL(g)"),
          std::string("EMBODIED(g)")}) {
      header.push_back(h);
    }
  }
  rows.push_back(header);
  auto or_dash = [](const std::string& s) { return s.empty() ? "-" : s; };
  for (const auto& r : resp.rows()) {
    const auto& k = r.key();
    std::vector<std::string> row;
    for (const auto& c : key_cols) {
      if (c == "NODE") row.push_back(k.node_name());
      if (c == "NAMESPACE") row.push_back(or_dash(k.namespace_()));
      if (c == "POD") row.push_back(k.pod());
      if (c == "CONTAINER") row.push_back(k.container());
      if (c == "PROJECT") row.push_back(or_dash(k.project()));
      if (c == "CGROUP") row.push_back(k.cgroup_path());
      if (c == "WORKLOAD") {
        row.push_back(k.workload_kind().empty()
                          ? k.workload()
                          : absl::StrCat(k.workload_kind(), "/", k.workload()));
      }
    }
    const auto& u = r.usage();
    auto money = [](double v) { return absl::StrFormat("%.6f", v); };
    auto grams = [](double v) { return absl::StrFormat("%.3f", v); };
    if (usage_cols) {
      row.push_back(absl::StrFormat("%.3f", u.cpu_cores()));
      row.push_back(absl::StrFormat("%.3f", u.cpu_seconds()));
      row.push_back(absl::StrFormat("%.1f", u.syscalls_per_second()));
      row.push_back(HumanBytes(u.network_bytes_per_second()));
      row.push_back(absl::StrFormat("%.1f", u.energy_joules()));
      row.push_back(absl::StrFormat("%.2f", u.watts()));
    }
    if (cost_cols) {
      const auto& c = u.cost();
      for (double v : {c.total(), c.cpu(), c.ram(), c.gpu(), c.network(),
                       c.energy()}) {
        row.push_back(money(v));
      }
    }
    if (carbon_cols) {
      const auto& c = u.carbon();
      row.push_back(absl::StrFormat("%.6f", u.energy_kwh()));
      row.push_back(absl::StrFormat("%.6f", u.facility_energy_kwh()));
      row.push_back(grams(c.total_grams()));
      row.push_back(grams(c.operational_grams()));
      row.push_back(grams(c.embodied_grams()));
      row.push_back(c.sci_unit().empty()
                        ? "-"
                        : absl::StrFormat("%.4g/%s", c.sci_grams(),
                                          c.sci_unit()));
    }
    if (project_cols) {
      row.push_back(money(u.cost().total()));
      row.push_back(absl::StrFormat("%.1f%%", 100 * u.cost_share()));
      row.push_back(absl::StrFormat("%.3f", u.cpu_cores()));
      row.push_back(absl::StrFormat("%.6f", u.energy_kwh()));
      row.push_back(grams(u.carbon().total_grams()));
      row.push_back(grams(u.carbon().operational_grams()));
      row.push_back(grams(u.carbon().embodied_grams()));
    }
    rows.push_back(std::move(row));
  }
  PrintTable(rows, !Has(a, "no-headers"), out);
  for (const auto& w : resp.warnings()) err << "NOTE: " << w << "\n";
  if (resp.partial()) {
    err << "WARNING: partial view; nodes not reporting now: "
        << absl::StrJoin(resp.missing_nodes(), ", ") << "\n";
  }
  return 0;
}

int Status(const Args& a, wattlens::v1::QueryService::Stub& stub,
           absl::Duration timeout, bool json, std::ostream& out,
           std::ostream& err) {
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  wattlens::v1::ListNodesResponse resp;
  grpc::Status st = stub.ListNodes(&ctx, {}, &resp);
  if (!st.ok()) return RpcError(st, Flag(a, "server", "127.0.0.1:9811"), err);
  if (json) {
    out << Json(resp) << "\n";
    return 0;
  }
  std::vector<std::vector<std::string>> rows = {
      {"NODE", "STATE", "LAST-SEEN", "EPOCH", "SEQUENCE", "WORKLOADS",
       "RESTARTS", "VERSION"}};
  int connected = 0;
  for (const auto& n : resp.nodes()) {
    connected += n.state() == wattlens::v1::NODE_STATE_CONNECTED;
    rows.push_back({n.node_name(), StateName(n.state()),
                    Ago(n.last_seen_time()), absl::StrCat(n.epoch()),
                    absl::StrCat(n.last_sequence()),
                    absl::StrCat(n.workloads()),
                    absl::StrCat(n.epochs_seen() > 0 ? n.epochs_seen() - 1 : 0),
                    n.agent_version().empty() ? "-" : n.agent_version()});
  }
  PrintTable(rows, !Has(a, "no-headers"), out);
  out << "Nodes: " << connected << "/" << resp.nodes_size() << " connected\n";
  return 0;
}

int Watch(const Args& a, wattlens::v1::QueryService::Stub& stub, bool json,
          std::ostream& out, std::ostream& err,
          const std::atomic<bool>* cancel) {
  grpc::ClientContext ctx;
  wattlens::v1::WatchRequest req;
  req.set_include_reports(Has(a, "include-reports"));
  const bool follow = Has(a, "follow");
  // Without -f only the current state is printed: as many events as nodes.
  int remaining = -1;
  if (!follow) {
    grpc::ClientContext lctx;
    wattlens::v1::ListNodesResponse nodes;
    grpc::Status st = stub.ListNodes(&lctx, {}, &nodes);
    if (!st.ok()) return RpcError(st, Flag(a, "server"), err);
    remaining = nodes.nodes_size();
    if (remaining == 0) return 0;
  }
  std::atomic<bool> done{false};
  std::thread canceller;
  if (cancel != nullptr) {
    canceller = std::thread([&] {
      while (!done.load() && !cancel->load()) {
        // Polling an external flag is the only option: it has no condvar.
        absl::SleepFor(absl::Milliseconds(50));
      }
      ctx.TryCancel();
    });
  }
  auto reader = stub.Watch(&ctx, req);
  wattlens::v1::WatchResponse ev;
  while (remaining != 0 && reader->Read(&ev)) {
    if (json) {
      out << Json(ev) << "\n";
    } else {
      const std::string when = absl::FormatTime(
          "%H:%M:%S",
          absl::FromUnixNanos(TimeUtil::TimestampToNanoseconds(ev.time())),
          absl::LocalTimeZone());
      if (ev.has_node_status()) {
        const auto& s = ev.node_status();
        out << when << "  " << s.node_name() << "  " << StateName(s.state());
        if (s.previous_state() != wattlens::v1::NODE_STATE_UNSPECIFIED) {
          out << " (was " << StateName(s.previous_state()) << ")";
        }
        out << "  " << s.message() << "\n";
      } else if (ev.has_report()) {
        out << when << "  " << ev.report().node_name() << "  report #"
            << ev.report().sequence() << " (" << ev.report().workloads()
            << " workloads)\n";
      } else if (ev.has_lost_events()) {
        out << when << "  LOST " << ev.lost_events().count()
            << " events (reading too slowly)\n";
      }
    }
    out.flush();
    if (remaining > 0) --remaining;
  }
  if (remaining == 0) ctx.TryCancel();
  done = true;
  grpc::Status st = reader->Finish();
  if (canceller.joinable()) canceller.join();
  if (!st.ok() && st.error_code() != grpc::StatusCode::CANCELLED) {
    return RpcError(st, Flag(a, "server"), err);
  }
  return 0;
}

}  // namespace

int RunCli(const std::vector<std::string>& args, std::ostream& out,
           std::ostream& err, const std::atomic<bool>* cancel) {
  Args a;
  std::string error;
  if (!Parse(args, &a, &error)) {
    err << "wattlens: " << error << "\n" << kUsage;
    return 2;
  }
  if (Has(a, "help") || a.positional.empty()) {
    (Has(a, "help") ? out : err) << kUsage;
    return Has(a, "help") ? 0 : 2;
  }
  const std::string cmd = a.positional[0];
  const std::string output = Flag(a, "output", "table");
  if (output != "table" && output != "json") {
    err << "wattlens: -o must be table or json\n";
    return 2;
  }
  absl::Duration timeout = absl::Seconds(12);
  if (Has(a, "timeout") && !absl::ParseDuration(Flag(a, "timeout"), &timeout)) {
    err << "wattlens: bad --timeout\n";
    return 2;
  }
  const std::string server = Flag(a, "server", "127.0.0.1:9811");
  std::shared_ptr<grpc::ChannelCredentials> creds;
  if (Has(a, "insecure")) {
    creds = grpc::InsecureChannelCredentials();
  } else {
    transport::TlsFiles f;
    f.ca = Flag(a, "tls-ca-file");
    f.cert = Flag(a, "tls-cert-file");
    f.key = Flag(a, "tls-key-file");
    auto c = transport::ClientCredentials(f);
    if (!c.ok()) {
      err << "wattlens: " << c.status().message()
          << " (use --tls-ca-file/--tls-cert-file/--tls-key-file)\n";
      return 2;
    }
    creds = *c;
  }
  grpc::ChannelArguments ch;
  if (Has(a, "tls-server-name")) {
    ch.SetSslTargetNameOverride(Flag(a, "tls-server-name"));
  }
  auto channel = grpc::CreateCustomChannel(server, creds, ch);
  auto stub = wattlens::v1::QueryService::NewStub(channel);
  const bool json = output == "json";
  a.flags["server"] = server;
  if (cmd == "top") return Top(a, *stub, timeout, json, out, err, false);
  if (cmd == "projects") return Top(a, *stub, timeout, json, out, err, true);
  if (cmd == "status") return Status(a, *stub, timeout, json, out, err);
  if (cmd == "watch") return Watch(a, *stub, json, out, err, cancel);
  err << "wattlens: unknown command \"" << cmd << "\"\n" << kUsage;
  return 2;
}

}  // namespace wattlens::cli
