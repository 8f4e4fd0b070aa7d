// SPDX-License-Identifier: Apache-2.0
// The generated completion scripts load in their shells and complete
// commands, flags and flag values.
#include <cstdio>
#include <cstdlib>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "cli/cli.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace wattlens::cli {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

// Runs `script` with `shell` -c and returns its stdout.
std::string RunShell(const std::string& shell, const std::string& script) {
  // One file per test and process: ctest runs the tests of this binary in
  // parallel, each its own process, all in the same TempDir().
  const std::string path =
      absl::StrCat(::testing::TempDir(), "/completion-test.", getpid(), ".sh");
  std::ofstream(path) << script;
  FILE* p = popen(absl::StrCat(shell, " ", path).c_str(), "r");
  if (p == nullptr) return "popen failed";
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  pclose(p);
  return out;
}

std::string Generated(const std::string& shell) {
  std::ostringstream out, err;
  EXPECT_EQ(RunCli({"completion", shell}, out, err), 0) << err.str();
  const std::string path = absl::StrCat(
      ::testing::TempDir(), "/wattlens-completion.", getpid(), ".", shell);
  std::ofstream(path) << out.str();
  return path;
}

// What bash offers for the words typed so far (the last one being
// completed).
std::string BashComplete(const std::string& script, const std::string& words) {
  return RunShell("bash",
                  absl::StrCat("source ", script, "\nCOMP_WORDS=(", words,
                               ")\nCOMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))\n"
                               "_wattlens\necho \"${COMPREPLY[*]}\"\n"));
}

TEST(CompletionTest, BashScriptLoadsAndCompletes) {
  const std::string script = Generated("bash");
  EXPECT_EQ(RunShell("bash", absl::StrCat("source ", script,
                                          " && complete -p wattlens\n")),
            "complete -F _wattlens wattlens\n");
  EXPECT_EQ(BashComplete(script, "wattlens to"), "top\n");
  EXPECT_EQ(BashComplete(script, "wattlens pro"), "projects\n");
  // Flags of the command, and the global ones after it.
  EXPECT_EQ(BashComplete(script, "wattlens top --sort"), "--sort-by=\n");
  EXPECT_EQ(BashComplete(script, "wattlens top --serv"), "--server=\n");
  EXPECT_EQ(BashComplete(script, "wattlens top --rev"), "--reverse\n");
  EXPECT_EQ(BashComplete(script, "wattlens top --insec"), "--insecure\n");
  EXPECT_THAT(BashComplete(script, "wattlens watch --"),
              AllOf(HasSubstr("--follow"), Not(HasSubstr("--window"))));
  // Values: --flag value, --flag=value (bash splits at '='), -o value.
  EXPECT_EQ(BashComplete(script, "wattlens top --sort-by co"), "cost\n");
  EXPECT_EQ(BashComplete(script, "wattlens top --sort-by = ca"), "carbon\n");
  EXPECT_EQ(BashComplete(script, "wattlens status -o ''"),
            "table wide json yaml csv\n");
  EXPECT_THAT(BashComplete(script, "wattlens completion ''"),
              StartsWith("bash zsh "));
}

TEST(CompletionTest, ZshScriptRegistersWithCompinit) {
  const std::string script = Generated("zsh");
  // -f: no user rc files; compinit -D: no dump file written.
  EXPECT_EQ(
      RunShell("zsh -f",
               absl::StrCat("autoload -U compinit && compinit -D -u\n"
                            "source ",
                            script, "\nprint -r -- ${_comps[wattlens]}\n")),
      "_wattlens\n");
}

}  // namespace
}  // namespace wattlens::cli
