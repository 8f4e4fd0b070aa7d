// SPDX-License-Identifier: Apache-2.0
// The `wattlens` command line: what a new user types first (--version,
// top --help, --window=7d, --month, a mistyped flag) is answered, or refused
// with the flag's name and what it accepts; durations and calendar periods
// become the query's time range.
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "cli/cli.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/time_util.h"
#include "gtest/gtest.h"

namespace wattlens::cli {
namespace {

using google::protobuf::util::TimeUtil;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

// 2026-11-15T12:00:00Z: every relative time below is anchored here.
const absl::Time kNow = absl::FromUnixSeconds(1794744000);

struct Result {
  ParseOutcome outcome;
  std::string out, err;
};

Result Parse(const std::vector<std::string>& args) {
  std::ostringstream out, err;
  Result r;
  r.outcome = ParseCommandLine(args, kNow, out, err);
  r.out = out.str();
  r.err = err.str();
  return r;
}

absl::Time Utc(const char* rfc3339) {
  absl::Time t;
  std::string err;
  EXPECT_TRUE(absl::ParseTime(absl::RFC3339_full, rfc3339, &t, &err)) << err;
  return t;
}

absl::Time Since(const Invocation& inv) {
  return absl::FromUnixNanos(
      TimeUtil::TimestampToNanoseconds(inv.usage.since()));
}
absl::Time Until(const Invocation& inv) {
  return absl::FromUnixNanos(
      TimeUtil::TimestampToNanoseconds(inv.usage.until()));
}

TEST(CliParseTest, VersionPrintsVersionCommitAndBuildType) {
  std::ostringstream out, err;
  ASSERT_EQ(RunCli({"--version"}, out, err), 0) << err.str();
  EXPECT_THAT(
      out.str(),
      AllOf(StartsWith(
                absl::StrCat("wattlens ", WATTLENS_TEST_VERSION, " (commit ")),
            HasSubstr(absl::StrCat(", ", WATTLENS_TEST_BUILD_TYPE, ")\n"))));
  // The subcommand says the same.
  std::ostringstream vout, verr;
  ASSERT_EQ(RunCli({"version"}, vout, verr), 0) << verr.str();
  EXPECT_EQ(vout.str(), out.str());
  std::ostringstream jout, jerr;
  ASSERT_EQ(RunCli({"version", "-o", "json"}, jout, jerr), 0);
  EXPECT_THAT(jout.str(),
              HasSubstr(absl::StrCat("\"build_type\":\"",
                                     WATTLENS_TEST_BUILD_TYPE, "\"")));
}

TEST(CliParseTest, CommandHelpIsThatCommandsFlags) {
  Result r = Parse({"top", "--help"});
  EXPECT_EQ(r.outcome.exit_code, 0);
  EXPECT_FALSE(r.outcome.invocation.has_value());
  EXPECT_THAT(r.out, AllOf(HasSubstr("--window"), HasSubstr("--month"),
                           HasSubstr("--sort-by"), HasSubstr("--group-by")));
  // Not the global usage: watch's and completion's flags are not listed.
  EXPECT_THAT(r.out, AllOf(Not(HasSubstr("--include-reports")),
                           Not(HasSubstr("--follow"))));
  Result w = Parse({"watch", "--help"});
  EXPECT_EQ(w.outcome.exit_code, 0);
  EXPECT_THAT(w.out, AllOf(HasSubstr("--follow"), Not(HasSubstr("--window"))));
  Result root = Parse({"--help"});
  EXPECT_EQ(root.outcome.exit_code, 0);
  EXPECT_THAT(root.out, AllOf(HasSubstr("top"), HasSubstr("completion"),
                              HasSubstr("--server")));
}

TEST(CliParseTest, NoCommandPrintsUsageAndFails) {
  Result r = Parse({});
  EXPECT_EQ(r.outcome.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("top"));
}

TEST(CliParseTest, WindowTakesDaysAndWeeks) {
  Result r = Parse({"top", "--window=7d"});
  ASSERT_TRUE(r.outcome.invocation) << r.err;
  EXPECT_EQ(TimeUtil::DurationToSeconds(r.outcome.invocation->usage.window()),
            7 * 24 * 3600);
  EXPECT_FALSE(r.outcome.invocation->usage.has_since());
  r = Parse({"top", "--window", "2w"});
  ASSERT_TRUE(r.outcome.invocation) << r.err;
  EXPECT_EQ(TimeUtil::DurationToSeconds(r.outcome.invocation->usage.window()),
            14 * 24 * 3600);
  r = Parse({"top", "--window=1h30m"});
  ASSERT_TRUE(r.outcome.invocation) << r.err;
  EXPECT_EQ(TimeUtil::DurationToSeconds(r.outcome.invocation->usage.window()),
            5400);
  r = Parse({"top"});  // the documented default
  ASSERT_TRUE(r.outcome.invocation) << r.err;
  EXPECT_EQ(TimeUtil::DurationToSeconds(r.outcome.invocation->usage.window()),
            300);
}

TEST(CliParseTest, MonthIsTheCalendarMonthInUtc) {
  Result r = Parse({"projects", "--month=2026-11"});
  ASSERT_TRUE(r.outcome.invocation) << r.err;
  EXPECT_EQ(Since(*r.outcome.invocation), Utc("2026-11-01T00:00:00Z"));
  EXPECT_EQ(Until(*r.outcome.invocation), Utc("2026-12-01T00:00:00Z"));
  // December runs into the next year.
  r = Parse({"projects", "--month=2026-12"});
  ASSERT_TRUE(r.outcome.invocation) << r.err;
  EXPECT_EQ(Until(*r.outcome.invocation), Utc("2027-01-01T00:00:00Z"));
}

// The system tz database (tzdata): Paris is UTC+1 in November and UTC+2
// until the last Sunday of October.
TEST(CliParseTest, MonthAndDatesFollowTz) {
  Result r = Parse({"top", "--month=2026-11", "--tz=Europe/Paris"});
  ASSERT_TRUE(r.outcome.invocation) << r.err;
  EXPECT_EQ(Since(*r.outcome.invocation), Utc("2026-10-31T23:00:00Z"));
  EXPECT_EQ(Until(*r.outcome.invocation), Utc("2026-11-30T23:00:00Z"));
  r = Parse({"top", "--since=2026-10-20", "--until=2026-11-03T14:30", "--tz",
             "Europe/Paris"});
  ASSERT_TRUE(r.outcome.invocation) << r.err;
  EXPECT_EQ(Since(*r.outcome.invocation), Utc("2026-10-19T22:00:00Z"));
  EXPECT_EQ(Until(*r.outcome.invocation), Utc("2026-11-03T13:30:00Z"));
}

TEST(CliParseTest, SinceAndUntilTakeDatesTimesAndDurationsAgo) {
  Result r =
      Parse({"top", "--since=2026-11-03", "--until=2026-11-05T12:00:00+02:00"});
  ASSERT_TRUE(r.outcome.invocation) << r.err;
  EXPECT_EQ(Since(*r.outcome.invocation), Utc("2026-11-03T00:00:00Z"));
  EXPECT_EQ(Until(*r.outcome.invocation), Utc("2026-11-05T10:00:00Z"));
  r = Parse({"top", "--since=2h"});
  ASSERT_TRUE(r.outcome.invocation) << r.err;
  EXPECT_EQ(Since(*r.outcome.invocation), kNow - absl::Hours(2));
  EXPECT_FALSE(r.outcome.invocation->usage.has_until());
  r = Parse({"top", "--until=1d", "--window=6h"});
  ASSERT_TRUE(r.outcome.invocation) << r.err;
  EXPECT_EQ(Until(*r.outcome.invocation), kNow - absl::Hours(24));
  EXPECT_EQ(TimeUtil::DurationToSeconds(r.outcome.invocation->usage.window()),
            6 * 3600);
}

TEST(CliParseTest, UnknownFlagsAreRefusedWithTheirName) {
  Result r = Parse({"top", "--bogus=1"});
  EXPECT_EQ(r.outcome.exit_code, 2);
  EXPECT_FALSE(r.outcome.invocation);
  EXPECT_THAT(r.err, HasSubstr("unknown flag --bogus"));
  r = Parse({"top", "--sort=cost"});
  EXPECT_EQ(r.outcome.exit_code, 2);
  EXPECT_THAT(r.err,
              HasSubstr("unknown flag --sort (did you mean --sort-by?)"));
  r = Parse({"--bogus", "status"});
  EXPECT_EQ(r.outcome.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("--bogus"));
  r = Parse({"status", "extra"});
  EXPECT_EQ(r.outcome.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("unexpected argument \"extra\""));
  r = Parse({"frobnicate"});
  EXPECT_EQ(r.outcome.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("unknown command \"frobnicate\""));
  // A flag of another command is unknown here.
  r = Parse({"status", "--window=1h"});
  EXPECT_EQ(r.outcome.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("unknown flag --window"));
}

TEST(CliParseTest, BadValuesNameTheFlagAndWhatItAccepts) {
  struct Case {
    std::vector<std::string> args;
    std::vector<std::string> expected;
  };
  const Case cases[] = {
      {{"top", "--sort-by=price"},
       {"--sort-by", "\"price\"", "cpu, energy, network, syscalls, cost"}},
      {{"top", "--group-by=team"}, {"--group-by", "node, namespace, workload"}},
      {{"-o", "xml", "status"},
       {"--output", "\"xml\"", "table, wide, json, yaml, csv"}},
      {{"top", "--window=7x"}, {"--window", "unit \"x\"", "d, w"}},
      {{"top", "--window=0s"}, {"--window", "positive"}},
      {{"top", "--month=2026-13"}, {"--month", "YYYY-MM"}},
      {{"top", "--month=November"}, {"--month", "YYYY-MM"}},
      {{"top", "--month=2026-11", "--since=2026-11-02"},
       {"--month", "cannot be combined"}},
      {{"top", "--since=yesterday"}, {"--since", "RFC 3339", "2026-11-03"}},
      {{"top", "--since=2026-02-30"}, {"--since", "a date"}},
      {{"top", "--since=2026-11-05", "--until=2026-11-04"},
       {"--since", "must be before --until"}},
      {{"top", "--tz=Mars/Olympus_Mons", "--month=2026-11"},
       {"--tz", "Mars/Olympus_Mons", "Europe/Paris"}},
      {{"top", "--limit=-1"}, {"--limit", "whole number"}},
      {{"--timeout=soon", "status"}, {"--timeout", "duration"}},
      {{"completion", "fish"}, {"shell", "bash, zsh"}},
      {{"top", "-A", "-n", "shop"}, {"--all-namespaces", "--namespace"}},
  };
  for (const Case& c : cases) {
    Result r = Parse(c.args);
    EXPECT_EQ(r.outcome.exit_code, 2) << c.args.back();
    EXPECT_FALSE(r.outcome.invocation) << c.args.back();
    for (const std::string& e : c.expected) {
      EXPECT_THAT(r.err, HasSubstr(e)) << c.args.back();
    }
  }
}

TEST(CliParseTest, EveryOutputFormatIsAcceptedForEveryView) {
  const std::pair<const char*, OutputFormat> formats[] = {
      {"table", OutputFormat::kTable},
      {"wide", OutputFormat::kWide},
      {"json", OutputFormat::kJson},
      {"yaml", OutputFormat::kYaml},
      {"csv", OutputFormat::kCsv}};
  for (const auto& [name, format] : formats) {
    for (const char* view : {"top", "projects", "status", "watch"}) {
      Result r = Parse({view, "-o", name});
      ASSERT_TRUE(r.outcome.invocation) << view << " -o " << name << r.err;
      EXPECT_EQ(r.outcome.invocation->render.format, format);
      r = Parse({absl::StrCat("--output=", name), view});
      ASSERT_TRUE(r.outcome.invocation) << r.err;
      EXPECT_EQ(r.outcome.invocation->render.format, format);
    }
  }
}

TEST(CliParseTest, QueryFlagsReachTheRequest) {
  Result r = Parse({"--server=10.0.0.1:9811", "top", "--group-by=pod",
                    "--sort-by=cost", "--reverse", "-n", "shop",
                    "--node=node-a", "--limit=5", "--share-idle", "--show=all",
                    "--insecure", "--no-headers"});
  ASSERT_TRUE(r.outcome.invocation) << r.err;
  const Invocation& inv = *r.outcome.invocation;
  EXPECT_EQ(inv.command, Command::kTop);
  EXPECT_EQ(inv.server, "10.0.0.1:9811");
  EXPECT_TRUE(inv.insecure);
  EXPECT_FALSE(inv.render.headers);
  EXPECT_EQ(inv.render.show, "all");
  EXPECT_EQ(inv.usage.group_by(), wattlens::v1::GROUP_BY_POD);
  EXPECT_EQ(inv.usage.sort_by(), wattlens::v1::SORT_BY_COST);
  EXPECT_TRUE(inv.usage.reverse());
  EXPECT_TRUE(inv.usage.share_idle());
  EXPECT_EQ(inv.usage.namespace_(), "shop");
  EXPECT_EQ(inv.usage.node_name(), "node-a");
  EXPECT_EQ(inv.usage.limit(), 5u);
  // projects defaults: by project, by cost.
  r = Parse({"projects"});
  ASSERT_TRUE(r.outcome.invocation) << r.err;
  EXPECT_EQ(r.outcome.invocation->usage.group_by(),
            wattlens::v1::GROUP_BY_PROJECT);
  EXPECT_EQ(r.outcome.invocation->usage.sort_by(), wattlens::v1::SORT_BY_COST);
  EXPECT_EQ(r.outcome.invocation->render.show, "projects");
}

TEST(CliParseTest, TimeoutAndTlsFlags) {
  Result r = Parse({"--timeout", "1m", "--tls-ca-file", "/ca.crt",
                    "--tls-cert-file=/c.crt", "--tls-key-file=/c.key",
                    "--tls-server-name=collector", "status"});
  ASSERT_TRUE(r.outcome.invocation) << r.err;
  EXPECT_EQ(r.outcome.invocation->timeout, absl::Minutes(1));
  EXPECT_EQ(r.outcome.invocation->tls.ca, "/ca.crt");
  EXPECT_EQ(r.outcome.invocation->tls.cert, "/c.crt");
  EXPECT_EQ(r.outcome.invocation->tls.key, "/c.key");
  EXPECT_EQ(r.outcome.invocation->tls_server_name, "collector");
}

}  // namespace
}  // namespace wattlens::cli
