// SPDX-License-Identifier: Apache-2.0
// --help and --version for the daemons, whose flags are Abseil flags.
//
// Abseil's own --help groups flags by the source file that defines them, and
// every daemon flag lives in its main.cc, so users get one long alphabetical
// list. Here flags are grouped by the component they configure (a name prefix
// or an exact name per group), and --version prints the shared build
// identity instead of Abseil's NDEBUG guess.
#pragma once

#include <optional>
#include <ostream>
#include <string>
#include <vector>

namespace wattlens::version {

struct FlagGroup {
  std::string title;
  // A flag belongs to the first group with a matching entry: an entry ending
  // in '_' is a prefix ("bpf_"), any other entry an exact flag name.
  std::vector<std::string> match;
};

struct DaemonUsage {
  std::string program;  // "wattlens-collector"
  std::string summary;  // one paragraph: what the daemon does
  std::vector<FlagGroup> groups;
};

// The --help text: summary, then every flag the program defines (Abseil's
// built-in flags excluded) under its group's title, with default and help.
// Flags matching no group are listed under "Other".
std::string GroupedHelp(const DaemonUsage& usage);

// Call before absl::ParseCommandLine. Routes Abseil's --version to
// VersionLine, and answers --help/-h/--helpshort and --version itself.
// Returns the exit code to return from main when it answered, else nullopt.
std::optional<int> HandleHelpAndVersion(int argc, char** argv,
                                        const DaemonUsage& usage,
                                        std::ostream& out);

}  // namespace wattlens::version
