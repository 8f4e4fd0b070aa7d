// SPDX-License-Identifier: Apache-2.0
#include "cli/cli.h"

#include <algorithm>
#include <map>
#include <memory>
#include <thread>

#include "CLI/CLI.hpp"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "cli/completion.h"
#include "cli/time_range.h"
#include "common/version/version.h"
#include "google/protobuf/util/time_util.h"
#include "grpcpp/create_channel.h"
#include "wattlens/v1/query.grpc.pb.h"

namespace wattlens::cli {
namespace {

using google::protobuf::util::TimeUtil;
namespace v1 = wattlens::v1;

constexpr int kUsageError = 2;
constexpr char kDefaultServer[] = "127.0.0.1:9811";

// Every flag as typed. Both query commands bind the same fields: only one
// subcommand is parsed per run.
struct Flags {
  std::string server = kDefaultServer;
  bool insecure = false;
  std::string tls_ca, tls_cert, tls_key, tls_server_name;
  std::string timeout = "12s";
  std::string output = "table";
  bool no_headers = false;
  std::string tz;
  bool version = false;

  std::string group_by, sort_by, show;
  bool reverse = false, share_idle = false, all_namespaces = false;
  std::string ns, node, project, limit;
  TimeFlags time;

  bool follow = false, include_reports = false;
  std::string shell;
};

const std::map<std::string, v1::GroupBy>& Groups() {
  static const auto* const kGroups = new std::map<std::string, v1::GroupBy>{
      {"node", v1::GROUP_BY_NODE},
      {"namespace", v1::GROUP_BY_NAMESPACE},
      {"workload", v1::GROUP_BY_WORKLOAD},
      {"pod", v1::GROUP_BY_POD},
      {"container", v1::GROUP_BY_CONTAINER},
      {"project", v1::GROUP_BY_PROJECT},
      {"cgroup", v1::GROUP_BY_CGROUP}};
  return *kGroups;
}

const std::map<std::string, v1::SortBy>& Sorts() {
  static const auto* const kSorts = new std::map<std::string, v1::SortBy>{
      {"cpu", v1::SORT_BY_CPU},         {"energy", v1::SORT_BY_ENERGY},
      {"network", v1::SORT_BY_NETWORK}, {"syscalls", v1::SORT_BY_SYSCALLS},
      {"cost", v1::SORT_BY_COST},       {"carbon", v1::SORT_BY_CARBON},
      {"name", v1::SORT_BY_NAME}};
  return *kSorts;
}

// A value from a fixed set; the error names every accepted value.
CLI::Validator OneOf(std::vector<std::string> values) {
  const std::string accepted = absl::StrJoin(values, ", ");
  return CLI::Validator(
      [values, accepted](std::string& v) -> std::string {
        if (std::find(values.begin(), values.end(), v) != values.end()) {
          return "";
        }
        return absl::StrCat("\"", v, "\" is not accepted; expected one of ",
                            accepted);
      },
      absl::StrCat("{", absl::StrJoin(values, "|"), "}"));
}

CLI::Validator DurationValue() {
  return CLI::Validator(
      [](std::string& v) -> std::string {
        auto d = ParseHumanDuration(v);
        return d.ok() ? "" : std::string(d.status().message());
      },
      "DURATION");
}

CLI::Validator CountValue() {
  return CLI::Validator(
      [](std::string& v) -> std::string {
        uint32_t n = 0;
        return absl::SimpleAtoi(v, &n)
                   ? ""
                   : absl::StrCat("\"", v,
                                  "\" is not a whole number from 0 (all rows) "
                                  "to 4294967295");
      },
      "N");
}

// The whole command tree. `choices` receives every fixed value set, for the
// completion scripts.
std::unique_ptr<CLI::App> BuildApp(Flags& f, ChoiceMap* choices) {
  auto app = std::make_unique<CLI::App>(
      "Wattlens: per-workload CPU, syscalls, network, energy, cost and "
      "carbon, from a Wattlens collector.",
      "wattlens");
  app->allow_extras();  // refused after parsing, with a suggestion
  app->footer(
      "Run 'wattlens <command> --help' for a command's flags.\n"
      "Durations: 90s, 30m, 1h30m, 7d, 2w. Times: 2026-11-03, "
      "2026-11-03T14:00 (in --tz), RFC 3339, or a duration ago.");
  auto choice = [&](CLI::Option* o, std::vector<std::string> values) {
    (*choices)[o->get_name()] = values;
    o->check(OneOf(std::move(values)));
    return o;
  };
  const std::string global = "Global flags (also after the command)";
  app->add_flag("--version", f.version,
                "Print version, git commit and build type");
  app->add_option("--server", f.server,
                  "Collector address HOST:PORT (default 127.0.0.1:9811)")
      ->group(global);
  app->add_flag("--insecure", f.insecure,
                "Plaintext, no certificates (collector --insecure)")
      ->group(global);
  app->add_option("--tls-ca-file", f.tls_ca,
                  "CA that signed the collector's certificate")
      ->group(global);
  app->add_option("--tls-cert-file", f.tls_cert, "Client certificate (mTLS)")
      ->group(global);
  app->add_option("--tls-key-file", f.tls_key, "Client private key")
      ->group(global);
  app->add_option("--tls-server-name", f.tls_server_name,
                  "Name expected in the collector's certificate")
      ->group(global);
  app->add_option("--timeout", f.timeout, "Per request (default 12s)")
      ->check(DurationValue())
      ->group(global);
  choice(app->add_option("-o,--output", f.output,
                         "Output format (default table); csv uses FOCUS "
                         "column names (docs/cli.md)"),
         {"table", "wide", "json", "yaml", "csv"})
      ->group(global);
  app->add_flag("--no-headers", f.no_headers,
                "Tables and CSV without the header line")
      ->group(global);
  app->add_option("--tz", f.tz,
                  "Time zone for dates and times without an offset and for "
                  "times printed in tables: an IANA name such as "
                  "Europe/Paris, or UTC (default UTC)")
      ->group(global);

  auto query = [&](CLI::App* sub, bool projects) {
    sub->fallthrough();
    sub->allow_extras();
    sub->footer("Global flags (--server, -o, --tz, TLS): wattlens --help");
    choice(sub->add_option("--group-by", f.group_by,
                           projects ? "Group rows by (default project)"
                                    : "Group rows by (default workload)"),
           {"node", "namespace", "workload", "pod", "container", "project",
            "cgroup"});
    choice(sub->add_option("--sort-by", f.sort_by,
                           projects ? "Sort rows by (default cost)"
                                    : "Sort rows by (default cpu)"),
           {"cpu", "energy", "network", "syscalls", "cost", "carbon", "name"});
    sub->add_flag("--reverse", f.reverse, "Reverse the sort order");
    choice(
        sub->add_option("--show", f.show,
                        "Column set: usage; cost = money by resource; "
                        "carbon = kWh and g CO2e, SCI per accepted "
                        "connection, else per hour (default " +
                            std::string(projects ? "projects" : "usage") + ")"),
        {"usage", "cost", "carbon", "all", "projects"});
    sub->add_flag("--share-idle", f.share_idle,
                  "Share each node's idle cost among its workloads");
    sub->add_option("-n,--namespace", f.ns,
                    "Only this namespace (\"-\" = host workloads)");
    sub->add_flag("-A,--all-namespaces", f.all_namespaces,
                  "Every namespace (the default)");
    sub->add_option("--node", f.node, "Only this node");
    sub->add_option("--project", f.project, "Only this project");
    sub->add_option("--limit", f.limit, "At most N rows (0 = all)")
        ->check(CountValue());
    sub->add_option("--window", f.time.window,
                    "Length of the range ending at --until or now (default "
                    "5m): 90s, 30m, 1h, 7d, 2w")
        ->check(DurationValue());
    sub->add_option("--since", f.time.since,
                    "Start: 2026-11-03, 2026-11-03T14:00, RFC 3339, or a "
                    "duration ago (2h)");
    sub->add_option("--until", f.time.until,
                    "End (exclusive), same forms as --since (default now)");
    sub->add_option("--month", f.time.month,
                    "A calendar month YYYY-MM in --tz (--month=2026-11)");
  };
  query(app->add_subcommand(
            "top",
            "Per-workload CPU, syscalls, network and energy over a "
            "time range"),
        false);
  query(app->add_subcommand("projects",
                            "The open-source project bill: cost, energy and "
                            "carbon per project across the cluster"),
        true);
  CLI::App* status = app->add_subcommand(
      "status", "Nodes known to the collector and their state");
  status->fallthrough();
  status->allow_extras();
  CLI::App* watch = app->add_subcommand(
      "watch", "Node status events (-f: follow until interrupted)");
  watch->fallthrough();
  watch->allow_extras();
  watch->add_flag("-f,--follow", f.follow, "Follow until interrupted");
  watch->add_flag("--include-reports", f.include_reports,
                  "Also an event per accepted report");
  CLI::App* completion = app->add_subcommand(
      "completion",
      "Shell completion script: source <(wattlens completion bash)");
  completion->allow_extras();
  choice(completion->add_option("shell", f.shell, "bash or zsh")->required(),
         {"bash", "zsh"});
  CLI::App* version = app->add_subcommand(
      "version", "Version, git commit and build type (-o json|yaml too)");
  version->fallthrough();
  version->allow_extras();
  return app;
}

// The known long flag closest to `typed` (a prefix either way, or at most
// two edits away), for "did you mean".
std::string Suggest(const std::string& typed,
                    const std::vector<const CLI::App*>& apps) {
  auto distance = [](const std::string& a, const std::string& b) {
    std::vector<size_t> row(b.size() + 1);
    for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
    for (size_t i = 1; i <= a.size(); ++i) {
      size_t diag = row[0];
      row[0] = i;
      for (size_t j = 1; j <= b.size(); ++j) {
        const size_t up = row[j];
        row[j] = std::min({row[j] + 1, row[j - 1] + 1,
                           diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
        diag = up;
      }
    }
    return row[b.size()];
  };
  std::string best;
  size_t best_score = 3;
  for (const CLI::App* app : apps) {
    for (const CLI::Option* o : app->get_options()) {
      for (const std::string& l : o->get_lnames()) {
        const std::string name = "--" + l;
        size_t score = distance(typed, name);
        if (typed.size() > 3 &&
            (absl::StartsWith(name, typed) || absl::StartsWith(typed, name))) {
          score = 0;
        }
        if (score < best_score) {
          best_score = score;
          best = name;
        }
      }
    }
  }
  return best;
}

// Nothing is left unrecognised: unknown flags and stray words are errors.
bool RefuseExtras(const CLI::App& app, const CLI::App* sub, std::ostream& err) {
  const std::vector<std::string> extras = app.remaining(true);
  if (extras.empty()) return true;
  const std::string where = sub != nullptr
                                ? absl::StrCat("wattlens ", sub->get_name())
                                : std::string("wattlens");
  const std::string& first = extras.front();
  if (sub == nullptr && !absl::StartsWith(first, "-")) {
    std::vector<std::string> names;
    for (const CLI::App* s :
         app.get_subcommands([](const CLI::App*) { return true; })) {
      names.push_back(s->get_name());
    }
    err << "wattlens: unknown command \"" << first
        << "\"; commands: " << absl::StrJoin(names, ", ") << "\n";
    return false;
  }
  if (absl::StartsWith(first, "-")) {
    const std::string name = first.substr(0, first.find('='));
    std::vector<const CLI::App*> apps = {&app};
    if (sub != nullptr) apps.insert(apps.begin(), sub);
    const std::string suggestion = Suggest(name, apps);
    err << where << ": unknown flag " << name;
    if (!suggestion.empty()) err << " (did you mean " << suggestion << "?)";
  } else {
    err << where << ": unexpected argument \"" << first << "\"";
  }
  err << "; see '" << where << " --help'\n";
  return false;
}

}  // namespace

ParseOutcome ParseCommandLine(const std::vector<std::string>& args,
                              absl::Time now, std::ostream& out,
                              std::ostream& err) {
  Flags f;
  ChoiceMap choices;
  std::unique_ptr<CLI::App> app = BuildApp(f, &choices);
  ParseOutcome outcome;
  outcome.exit_code = kUsageError;
  // CLI11 reports through exceptions; they do not leave this function.
  try {
    std::vector<std::string> reversed(args.rbegin(), args.rend());
    app->parse(reversed);
  } catch (const CLI::CallForHelp&) {
    out << app->help();
    outcome.exit_code = 0;
    return outcome;
  } catch (const CLI::ParseError& e) {
    const auto subs = app->get_subcommands();
    err << "wattlens" << (subs.empty() ? "" : " " + subs[0]->get_name()) << ": "
        << e.what() << "\n";
    return outcome;
  }
  const auto selected = app->get_subcommands();
  const CLI::App* sub = selected.empty() ? nullptr : selected[0];
  if (!RefuseExtras(*app, sub, err)) return outcome;

  Invocation inv;
  if (f.version) {
    inv.command = Command::kVersion;
  } else if (sub == nullptr) {
    err << app->help();
    return outcome;
  }
  const std::string name = sub == nullptr ? "version" : sub->get_name();
  if (!f.version) {
    inv.command = name == "top"          ? Command::kTop
                  : name == "projects"   ? Command::kProjects
                  : name == "status"     ? Command::kStatus
                  : name == "watch"      ? Command::kWatch
                  : name == "completion" ? Command::kCompletion
                                         : Command::kVersion;
  }
  inv.server = f.server;
  inv.insecure = f.insecure;
  inv.tls.ca = f.tls_ca;
  inv.tls.cert = f.tls_cert;
  inv.tls.key = f.tls_key;
  inv.tls_server_name = f.tls_server_name;
  inv.timeout = *ParseHumanDuration(f.timeout);      // checked by its validator
  inv.render.format = *ParseOutputFormat(f.output);  // likewise
  inv.render.headers = !f.no_headers;
  inv.render.now = now;
  absl::StatusOr<absl::TimeZone> tz = LoadZone(f.tz);
  if (!tz.ok()) {
    err << "wattlens: " << tz.status().message() << "\n";
    return outcome;
  }
  inv.render.tz = *tz;
  inv.follow = f.follow;
  inv.include_reports = f.include_reports;
  inv.shell = f.shell;

  if (inv.command == Command::kTop || inv.command == Command::kProjects) {
    const bool projects = inv.command == Command::kProjects;
    const std::string where = absl::StrCat("wattlens ", name);
    v1::GetUsageRequest& req = inv.usage;
    req.set_group_by(Groups().at(
        f.group_by.empty() ? (projects ? "project" : "workload") : f.group_by));
    req.set_sort_by(Sorts().at(f.sort_by.empty() ? (projects ? "cost" : "cpu")
                                                 : f.sort_by));
    inv.render.show =
        f.show.empty() ? (projects ? "projects" : "usage") : f.show;
    req.set_reverse(f.reverse);
    req.set_share_idle(f.share_idle);
    if (f.all_namespaces && !f.ns.empty()) {
      err << where << ": -A/--all-namespaces and -n/--namespace exclude "
          << "each other\n";
      return outcome;
    }
    req.set_namespace_(f.ns);
    req.set_node_name(f.node);
    req.set_project(f.project);
    if (!f.limit.empty()) {
      uint32_t limit = 0;
      (void)absl::SimpleAtoi(f.limit, &limit);  // checked by its validator
      req.set_limit(limit);
    }
    // Times without an offset are in --tz, UTC when it is not given.
    f.time.tz = f.tz;
    absl::StatusOr<TimeRange> range = ResolveTimeRange(f.time, now);
    if (!range.ok()) {
      err << where << ": " << range.status().message() << "\n";
      return outcome;
    }
    *req.mutable_window() = TimeUtil::NanosecondsToDuration(
        absl::ToInt64Nanoseconds(range->window.value_or(absl::Minutes(5))));
    if (range->since) {
      *req.mutable_since() =
          TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(*range->since));
    }
    if (range->until) {
      *req.mutable_until() =
          TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(*range->until));
    }
  }
  outcome.invocation = std::move(inv);
  outcome.exit_code = 0;
  return outcome;
}

std::string CompletionScript(const std::string& shell) {
  Flags f;
  ChoiceMap choices;
  std::unique_ptr<CLI::App> app = BuildApp(f, &choices);
  return shell == "zsh" ? ZshCompletion(*app, choices)
                        : BashCompletion(*app, choices);
}

namespace {

int RpcError(const grpc::Status& st, const std::string& server,
             std::ostream& err) {
  err << "wattlens: " << server << ": " << st.error_message() << " (code "
      << static_cast<int>(st.error_code()) << ")\n";
  if (std::string why = transport::ExplainTlsFailure(st); !why.empty()) {
    err << "wattlens: " << why << "\n";
  }
  return 1;
}

int Version(const Invocation& inv, std::ostream& out) {
  switch (inv.render.format) {
    case OutputFormat::kJson:
    case OutputFormat::kYaml: {
      const bool json = inv.render.format == OutputFormat::kJson;
      const std::string v(version::Version()), c(version::GitCommit()),
          b(version::BuildType());
      if (json) {
        out << "{\"version\":\"" << v << "\",\"commit\":\"" << c
            << "\",\"build_type\":\"" << b << "\"}\n";
      } else {
        out << "version: \"" << v << "\"\ncommit: \"" << c
            << "\"\nbuild_type: \"" << b << "\"\n";
      }
      return 0;
    }
    case OutputFormat::kCsv:
      out << CsvLine({"Version", "Commit", "BuildType"})
          << CsvLine({std::string(version::Version()),
                      std::string(version::GitCommit()),
                      std::string(version::BuildType())});
      return 0;
    default:
      out << version::VersionLine("wattlens") << "\n";
      return 0;
  }
}

int Usage(const Invocation& inv, v1::QueryService::Stub& stub,
          std::ostream& out, std::ostream& err) {
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + inv.timeout));
  v1::GetUsageResponse resp;
  grpc::Status st = stub.GetUsage(&ctx, inv.usage, &resp);
  if (!st.ok()) return RpcError(st, inv.server, err);
  RenderUsage(inv.usage, resp, inv.render, out, err);
  return 0;
}

int Status(const Invocation& inv, v1::QueryService::Stub& stub,
           std::ostream& out, std::ostream& err) {
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + inv.timeout));
  v1::ListNodesResponse resp;
  grpc::Status st = stub.ListNodes(&ctx, {}, &resp);
  if (!st.ok()) return RpcError(st, inv.server, err);
  RenderNodes(resp, inv.render, out);
  return 0;
}

int Watch(const Invocation& inv, v1::QueryService::Stub& stub,
          std::ostream& out, std::ostream& err,
          const std::atomic<bool>* cancel) {
  grpc::ClientContext ctx;
  v1::WatchRequest req;
  req.set_include_reports(inv.include_reports);
  // Without -f only the current state is printed: as many events as nodes.
  int remaining = -1;
  if (!inv.follow) {
    grpc::ClientContext lctx;
    lctx.set_deadline(absl::ToChronoTime(absl::Now() + inv.timeout));
    v1::ListNodesResponse nodes;
    grpc::Status st = stub.ListNodes(&lctx, {}, &nodes);
    if (!st.ok()) return RpcError(st, inv.server, err);
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
  v1::WatchResponse ev;
  size_t index = 0;
  while (remaining != 0 && reader->Read(&ev)) {
    RenderWatchEvent(ev, index++, inv.render, out);
    out.flush();
    if (remaining > 0) --remaining;
  }
  if (remaining == 0) ctx.TryCancel();
  done = true;
  grpc::Status st = reader->Finish();
  if (canceller.joinable()) canceller.join();
  if (!st.ok() && st.error_code() != grpc::StatusCode::CANCELLED) {
    return RpcError(st, inv.server, err);
  }
  return 0;
}

}  // namespace

int RunCli(const std::vector<std::string>& args, std::ostream& out,
           std::ostream& err, const std::atomic<bool>* cancel,
           const CliEnvironment& env) {
  ParseOutcome parsed = ParseCommandLine(args, env.now(), out, err);
  if (!parsed.invocation) return parsed.exit_code;
  const Invocation& inv = *parsed.invocation;
  if (inv.command == Command::kVersion) return Version(inv, out);
  if (inv.command == Command::kCompletion) {
    out << CompletionScript(inv.shell);
    return 0;
  }
  std::shared_ptr<grpc::ChannelCredentials> creds;
  if (inv.insecure) {
    creds = grpc::InsecureChannelCredentials();
  } else {
    auto c = transport::ClientCredentials(inv.tls);
    if (!c.ok()) {
      err << "wattlens: " << c.status().message()
          << " (use --tls-ca-file/--tls-cert-file/--tls-key-file, or "
             "--insecure)\n";
      return kUsageError;
    }
    creds = *c;
  }
  grpc::ChannelArguments ch;
  if (!inv.tls_server_name.empty()) {
    ch.SetSslTargetNameOverride(inv.tls_server_name);
  }
  auto channel = grpc::CreateCustomChannel(inv.server, creds, ch);
  auto stub = v1::QueryService::NewStub(channel);
  switch (inv.command) {
    case Command::kTop:
    case Command::kProjects:
      return Usage(inv, *stub, out, err);
    case Command::kStatus:
      return Status(inv, *stub, out, err);
    case Command::kWatch:
      return Watch(inv, *stub, out, err, cancel);
    default:
      return kUsageError;
  }
}

}  // namespace wattlens::cli
