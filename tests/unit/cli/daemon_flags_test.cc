// SPDX-License-Identifier: Apache-2.0
// The daemons' --help groups their flags by component; --version prints the
// shared build identity instead of Abseil's NDEBUG guess.
#include "common/version/daemon_flags.h"

#include <sstream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "common/version/version.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

ABSL_FLAG(int, test_bpf_map_entries, 128, "Entries of the test map.");
ABSL_FLAG(bool, test_insecure, false, "Plaintext.");
ABSL_FLAG(std::string, test_tls_cert_file, "", "Certificate.");
ABSL_FLAG(std::string, test_orphan, "x", "Belongs to no group.");

namespace wattlens::version {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

DaemonUsage Usage() {
  return {
      "test-daemon",
      "does things.",
      {{"BPF", {"test_bpf_"}}, {"Transport", {"test_insecure", "test_tls_"}}}};
}

std::vector<char*> Argv(std::vector<std::string>& args) {
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  return argv;
}

TEST(VersionTest, LineNamesVersionCommitAndBuildType) {
  EXPECT_EQ(Version(), WATTLENS_TEST_VERSION);
  EXPECT_EQ(BuildType(), WATTLENS_TEST_BUILD_TYPE);
  EXPECT_FALSE(GitCommit().empty());
  EXPECT_EQ(
      VersionLine("wattlens-collector"),
      absl::StrCat("wattlens-collector ", WATTLENS_TEST_VERSION, " (commit ",
                   GitCommit(), ", ", WATTLENS_TEST_BUILD_TYPE, ")"));
}

TEST(DaemonFlagsTest, HelpGroupsFlagsByComponent) {
  const std::string help = GroupedHelp(Usage());
  EXPECT_THAT(help, HasSubstr("test-daemon: does things."));
  EXPECT_THAT(help, HasSubstr("\nBPF:\n  --test_bpf_map_entries (default 128)\n"
                              "      Entries of the test map.\n"));
  EXPECT_THAT(help, HasSubstr("\nTransport:\n  --test_insecure (default "
                              "false)\n      Plaintext.\n  --test_tls_cert_file"
                              "\n"));
  EXPECT_THAT(help, HasSubstr("\nOther:\n"));
  EXPECT_LT(help.find("Other:"), help.find("--test_orphan"));
  EXPECT_LT(help.find("Transport:"), help.find("Other:"));
  // Abseil's own flags are not listed one by one.
  EXPECT_THAT(help, Not(HasSubstr("--flagfile (")));
}

TEST(DaemonFlagsTest, AnswersHelpAndVersionBeforeParsing) {
  for (const char* flag : {"--version", "-version"}) {
    std::vector<std::string> args = {"test-daemon", "--test_insecure", flag};
    auto argv = Argv(args);
    std::ostringstream out;
    auto rc = HandleHelpAndVersion(static_cast<int>(argv.size()), argv.data(),
                                   Usage(), out);
    ASSERT_TRUE(rc.has_value()) << flag;
    EXPECT_EQ(*rc, 0);
    EXPECT_EQ(out.str(), VersionLine("test-daemon") + "\n");
  }
  for (const char* flag : {"--help", "-h", "--helpshort"}) {
    std::vector<std::string> args = {"test-daemon", flag};
    auto argv = Argv(args);
    std::ostringstream out;
    auto rc = HandleHelpAndVersion(static_cast<int>(argv.size()), argv.data(),
                                   Usage(), out);
    ASSERT_TRUE(rc.has_value()) << flag;
    EXPECT_EQ(out.str(), GroupedHelp(Usage()));
  }
  // Neither: parsing goes on; after "--" nothing is a flag.
  std::vector<std::string> args = {"test-daemon", "--test_insecure", "--",
                                   "--version"};
  auto argv = Argv(args);
  std::ostringstream out;
  EXPECT_FALSE(HandleHelpAndVersion(static_cast<int>(argv.size()), argv.data(),
                                    Usage(), out)
                   .has_value());
  EXPECT_EQ(out.str(), "");
}

}  // namespace
}  // namespace wattlens::version
