// SPDX-License-Identifier: Apache-2.0
// Output formats of every view, on responses the test builds: exact text
// where the format is a contract (CSV columns, YAML), content otherwise.
#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "cli/output.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/time_util.h"
#include "gtest/gtest.h"

namespace wattlens::cli {
namespace {

using google::protobuf::util::TimeUtil;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

// A two-row bill: shop/web and a host service, 1 h ending 2026-11-15 12:00.
wattlens::v1::GetUsageResponse Bill() {
  wattlens::v1::GetUsageResponse r;
  *r.mutable_since() = TimeUtil::SecondsToTimestamp(1794740400);
  *r.mutable_until() = TimeUtil::SecondsToTimestamp(1794744000);
  r.set_currency("EUR");
  auto* web = r.add_rows();
  web->mutable_key()->set_namespace_("shop");
  web->mutable_key()->set_workload_kind("Deployment");
  web->mutable_key()->set_workload("web");
  web->set_series(3);
  auto* u = web->mutable_usage();
  u->set_cpu_seconds(5400);
  u->set_cpu_cores(1.5);
  u->set_syscalls(120000);
  u->set_network_transmit_bytes(1 << 20);
  u->mutable_cost()->set_cpu(0.047);
  u->mutable_cost()->set_ram(0.0125);
  u->mutable_cost()->set_total(0.1);  // not the sum: printed as given
  u->set_cost_share(0.8);
  u->mutable_carbon()->set_total_grams(12.5);
  auto* host = r.add_rows();
  host->mutable_key()->set_workload("sshd.service, \"the\" daemon");
  host->mutable_usage()->mutable_cost()->set_total(0.025);
  host->mutable_usage()->set_cost_share(0.2);
  return r;
}

wattlens::v1::GetUsageRequest ByWorkload() {
  wattlens::v1::GetUsageRequest q;
  q.set_group_by(wattlens::v1::GROUP_BY_WORKLOAD);
  return q;
}

std::string Render(OutputFormat f, bool headers = true,
                   const std::string& show = "usage") {
  RenderOptions o;
  o.format = f;
  o.headers = headers;
  o.show = show;
  std::ostringstream out, err;
  RenderUsage(ByWorkload(), Bill(), o, out, err);
  return out.str();
}

TEST(CsvTest, QuotesOnlyWhatNeedsIt) {
  EXPECT_EQ(CsvLine({"a", "b c", ""}), "a,b c,\r\n");
  EXPECT_EQ(CsvLine({"x,y", "say \"hi\"", "two\nlines"}),
            "\"x,y\",\"say \"\"hi\"\"\",\"two\nlines\"\r\n");
}

TEST(CsvTest, NumbersReadBackExactly) {
  for (double v : {0.1, 1.0 / 3, 0.031611 * 3 + 0.004237 * 8, 1e-12, 42.0}) {
    EXPECT_EQ(std::strtod(ExactNumber(v).c_str(), nullptr), v);
  }
  EXPECT_EQ(ExactNumber(42), "42");
}

TEST(UsageCsvTest, FocusColumnsOneRowPerGroup) {
  const std::string csv = Render(OutputFormat::kCsv);
  std::vector<std::string> lines =
      absl::StrSplit(csv, "\r\n", absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 3u) << csv;
  std::vector<std::string> header = absl::StrSplit(lines[0], ',');
  ASSERT_GE(header.size(), 9u);
  EXPECT_THAT(
      std::vector<std::string>(header.begin(), header.begin() + 9),
      ElementsAre("ChargePeriodStart", "ChargePeriodEnd", "ChargeCategory",
                  "BillingCurrency", "BilledCost", "EffectiveCost",
                  "ResourceId", "ResourceName", "ResourceType"));
  std::vector<std::string> web = absl::StrSplit(lines[1], ',');
  ASSERT_EQ(web.size(), header.size());
  auto col = [&](const std::vector<std::string>& row, const std::string& name) {
    for (size_t i = 0; i < header.size(); ++i) {
      if (header[i] == name) return row[i];
    }
    ADD_FAILURE() << "no column " << name;
    return std::string();
  };
  EXPECT_EQ(col(web, "ChargePeriodStart"), "2026-11-15T11:00:00Z");
  EXPECT_EQ(col(web, "ChargePeriodEnd"), "2026-11-15T12:00:00Z");
  EXPECT_EQ(col(web, "ChargeCategory"), "Usage");
  EXPECT_EQ(col(web, "BillingCurrency"), "EUR");
  EXPECT_EQ(col(web, "BilledCost"), "0.1");
  EXPECT_EQ(col(web, "ResourceId"), "shop/Deployment/web");
  EXPECT_EQ(col(web, "ResourceName"), "web");
  EXPECT_EQ(col(web, "ResourceType"), "Workload");
  EXPECT_EQ(col(web, "x_Namespace"), "shop");
  EXPECT_EQ(col(web, "x_CostCpu"), "0.047");
  EXPECT_EQ(col(web, "x_CostRam"), "0.0125");
  EXPECT_EQ(col(web, "x_CpuSeconds"), "5400");
  EXPECT_EQ(col(web, "x_Syscalls"), "120000");
  EXPECT_EQ(col(web, "x_NetworkTransmitBytes"), "1048576");
  EXPECT_EQ(col(web, "x_Co2eGrams"), "12.5");
  EXPECT_EQ(col(web, "x_Series"), "3");
  // A name with a comma and quotes stays one field.
  EXPECT_THAT(lines[2], HasSubstr("\"sshd.service, \"\"the\"\" daemon\""));
  EXPECT_EQ(Render(OutputFormat::kCsv, /*headers=*/false),
            csv.substr(lines[0].size() + 2));
}

TEST(UsageYamlTest, SameTreeAsJson) {
  wattlens::v1::GetUsageResponse r;
  r.set_currency("USD");
  r.set_total_rows(1);
  auto* row = r.add_rows();
  row->mutable_key()->set_namespace_("shop");
  row->mutable_key()->set_workload("on");  // a YAML 1.1 boolean
  row->mutable_usage()->set_cpu_cores(0.25);
  row->mutable_usage()->set_watts(1e-05);
  row->mutable_usage()->set_syscalls(7);
  r.add_missing_nodes("node-2");
  const std::string yaml = ToYaml(r);
  EXPECT_THAT(yaml, HasSubstr("rows:\n- key:\n    node_name: \"\"\n"
                              "    namespace: shop\n"));
  EXPECT_THAT(yaml, HasSubstr("    workload: \"on\"\n"));
  EXPECT_THAT(yaml, HasSubstr("    cpu_cores: 0.25\n"));
  EXPECT_THAT(yaml, HasSubstr("    watts: 1.0e-05\n"));
  // uint64 is a string in the JSON mapping; YAML keeps it a string.
  EXPECT_THAT(yaml, HasSubstr("    syscalls: \"7\"\n"));
  EXPECT_THAT(yaml, HasSubstr("currency: USD\n"));
  EXPECT_THAT(yaml, HasSubstr("missing_nodes:\n- node-2\n"));
  EXPECT_THAT(yaml, HasSubstr("warnings: []\n"));
  EXPECT_THAT(yaml, Not(HasSubstr("{\"")));
}

TEST(UsageTableTest, WideShowsEveryColumnSet) {
  const std::string table = Render(OutputFormat::kTable);
  EXPECT_THAT(table, HasSubstr("CPU(cores)"));
  EXPECT_THAT(table, Not(HasSubstr("COST(EUR)")));
  EXPECT_THAT(table, HasSubstr("Deployment/web"));
  const std::string wide = Render(OutputFormat::kWide);
  for (const char* h :
       {"CPU(cores)", "COST(EUR)", "CO2e(g)", "SHARE", "SERIES", "80.0%"}) {
    EXPECT_THAT(wide, HasSubstr(h));
  }
  EXPECT_THAT(Render(OutputFormat::kTable, false), Not(HasSubstr("WORKLOAD")));
}

TEST(NodesViewTest, EveryFormat) {
  wattlens::v1::ListNodesResponse r;
  auto* n = r.add_nodes();
  n->set_node_name("node-a");
  n->set_state(wattlens::v1::NODE_STATE_CONNECTED);
  n->set_epoch(9);
  n->set_epochs_seen(3);
  n->set_reports_accepted(40);
  n->mutable_power()->set_watts(42.5);
  n->mutable_power()->set_source(wattlens::v1::POWER_SOURCE_RAPL);
  *n->mutable_last_seen_time() = TimeUtil::SecondsToTimestamp(1794743990);
  RenderOptions o;
  o.now = absl::FromUnixSeconds(1794744000);
  auto render = [&](OutputFormat f) {
    o.format = f;
    std::ostringstream out;
    RenderNodes(r, o, out);
    return out.str();
  };
  EXPECT_THAT(render(OutputFormat::kTable),
              HasSubstr("node-a   Connected   10s"));
  EXPECT_THAT(render(OutputFormat::kWide), HasSubstr("rapl"));
  EXPECT_THAT(render(OutputFormat::kCsv),
              HasSubstr("\r\nnode-a,Connected,2026-11-15T11:59:50Z,,9,"));
  EXPECT_THAT(render(OutputFormat::kJson),
              HasSubstr("\"node_name\":\"node-a\""));
  EXPECT_THAT(render(OutputFormat::kYaml), HasSubstr("- node_name: node-a\n"));
}

TEST(WatchViewTest, CsvHeaderOnceYamlDocumentPerEvent) {
  wattlens::v1::WatchResponse ev;
  *ev.mutable_time() = TimeUtil::SecondsToTimestamp(1794744000);
  ev.mutable_node_status()->set_node_name("node-a");
  ev.mutable_node_status()->set_state(wattlens::v1::NODE_STATE_STALE);
  ev.mutable_node_status()->set_previous_state(
      wattlens::v1::NODE_STATE_CONNECTED);
  RenderOptions o;
  o.format = OutputFormat::kCsv;
  std::ostringstream csv;
  RenderWatchEvent(ev, 0, o, csv);
  RenderWatchEvent(ev, 1, o, csv);
  EXPECT_EQ(csv.str(),
            "Time,NodeName,Event,State,PreviousState,Epoch,Sequence,"
            "Workloads,LostEvents,Message\r\n"
            "2026-11-15T12:00:00Z,node-a,node_status,Stale,Connected,0,,,,\r\n"
            "2026-11-15T12:00:00Z,node-a,node_status,Stale,Connected,0,,,,"
            "\r\n");
  o.format = OutputFormat::kYaml;
  std::ostringstream yaml;
  RenderWatchEvent(ev, 0, o, yaml);
  EXPECT_EQ(yaml.str().rfind("---\n", 0), 0u) << yaml.str();
  EXPECT_THAT(yaml.str(), HasSubstr("\ntime: \"2026-11-15T12:00:00Z\"\n"));
  EXPECT_THAT(yaml.str(), HasSubstr("node_status:\n  node_name: node-a\n"
                                    "  state: NODE_STATE_STALE\n"));
  o.format = OutputFormat::kTable;
  o.tz = absl::FixedTimeZone(3600);
  std::ostringstream table;
  RenderWatchEvent(ev, 0, o, table);
  EXPECT_EQ(table.str(), "13:00:00  node-a  Stale (was Connected)  \n");
}

}  // namespace
}  // namespace wattlens::cli

namespace wattlens::cli {
namespace {

// A window node-b has not reported up to: the table marks its rows and names
// it under the table, stderr says how far behind it is, and json carries
// the per-node detail.
TEST(UsagePartialTest, TableMarksAndJsonNamesTheNodesBehind) {
  wattlens::v1::GetUsageRequest req;
  req.set_group_by(wattlens::v1::GROUP_BY_NODE);
  wattlens::v1::GetUsageResponse r;
  for (const char* n : {"node-a", "node-b"}) {
    auto* row = r.add_rows();
    row->mutable_key()->set_node_name(n);
    row->mutable_usage()->set_cpu_cores(0.5);
  }
  r.set_partial(true);
  auto* p = r.add_partial_nodes();
  p->set_node_name("node-b");
  p->set_reason(wattlens::v1::PARTIAL_REASON_CATCHING_UP);
  *p->mutable_reported_until() = TimeUtil::SecondsToTimestamp(1794744000);
  *p->mutable_behind() = TimeUtil::SecondsToDuration(150);
  *p->mutable_upload_interval() = TimeUtil::SecondsToDuration(10);

  RenderOptions o;
  std::ostringstream out, err;
  RenderUsage(req, r, o, out, err);
  EXPECT_THAT(out.str(), HasSubstr("node-b*"));
  EXPECT_THAT(out.str(), Not(HasSubstr("node-a*")));
  EXPECT_THAT(out.str(),
              HasSubstr("PARTIAL*: not reported up to the window's end: "
                        "node-b\n"));
  EXPECT_THAT(err.str(),
              HasSubstr("node node-b is catching up: reported up to "
                        "2026-11-15T12:00:00+00:00, 2m30s before the "
                        "window's end (upload interval 10s)"));

  o.headers = false;
  std::ostringstream bare, bare_err;
  RenderUsage(req, r, o, bare, bare_err);
  EXPECT_THAT(bare.str(), Not(HasSubstr("PARTIAL")));

  o.format = OutputFormat::kJson;
  std::ostringstream json, json_err;
  RenderUsage(req, r, o, json, json_err);
  EXPECT_THAT(json.str(), HasSubstr("\"partial\":true"));
  EXPECT_THAT(json.str(),
              HasSubstr("\"partial_nodes\":[{\"node_name\":\"node-b\","
                        "\"reason\":\"PARTIAL_REASON_CATCHING_UP\","
                        "\"reported_until\":\"2026-11-15T12:00:00Z\","
                        "\"behind\":\"150s\",\"upload_interval\":\"10s\"}]"));
  EXPECT_EQ(json_err.str(), "");
}

}  // namespace
}  // namespace wattlens::cli
