// SPDX-License-Identifier: Apache-2.0
#include "common/version/daemon_flags.h"

#include <algorithm>
#include <map>

#include "absl/flags/commandlineflag.h"
#include "absl/flags/reflection.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "common/version/version.h"

namespace wattlens::version {
namespace {

bool Matches(const FlagGroup& g, absl::string_view name) {
  for (const std::string& m : g.match) {
    if (!m.empty() && m.back() == '_' ? absl::StartsWith(name, m) : name == m) {
      return true;
    }
  }
  return false;
}

// Abseil's built-in flags (--help*, --flagfile, --fromenv, ...) are defined
// in its own sources; they are summarised once at the end instead.
bool IsAbseilFlag(const absl::CommandLineFlag& f) {
  return absl::StrContains(f.Filename(), "absl/");
}

void AppendWrapped(absl::string_view text, std::string* out) {
  constexpr size_t kWidth = 72;
  std::string line;
  for (absl::string_view word : absl::StrSplit(text, ' ', absl::SkipEmpty())) {
    if (!line.empty() && line.size() + 1 + word.size() > kWidth) {
      absl::StrAppend(out, "      ", line, "\n");
      line.clear();
    }
    absl::StrAppend(&line, line.empty() ? "" : " ", word);
  }
  if (!line.empty()) absl::StrAppend(out, "      ", line, "\n");
}

}  // namespace

std::string GroupedHelp(const DaemonUsage& usage) {
  std::vector<const absl::CommandLineFlag*> flags;
  for (const auto& [name, flag] : absl::GetAllFlags()) {
    if (!IsAbseilFlag(*flag)) flags.push_back(flag);
  }
  std::sort(flags.begin(), flags.end(),
            [](const auto* a, const auto* b) { return a->Name() < b->Name(); });
  // Group order is the order given; "Other" last.
  std::vector<std::vector<const absl::CommandLineFlag*>> by_group(
      usage.groups.size() + 1);
  for (const auto* f : flags) {
    size_t g = 0;
    while (g < usage.groups.size() && !Matches(usage.groups[g], f->Name())) ++g;
    by_group[g].push_back(f);
  }
  std::string out =
      absl::StrCat(usage.program, ": ", usage.summary,
                   "\n\nUsage: ", usage.program, " [--flag=value ...]\n");
  for (size_t g = 0; g < by_group.size(); ++g) {
    if (by_group[g].empty()) continue;
    absl::StrAppend(&out, "\n",
                    g < usage.groups.size() ? usage.groups[g].title : "Other",
                    ":\n");
    for (const auto* f : by_group[g]) {
      const std::string def = f->DefaultValue();
      absl::StrAppend(&out, "  --", f->Name(),
                      def.empty() ? "" : absl::StrCat(" (default ", def, ")"),
                      "\n");
      AppendWrapped(f->Help(), &out);
    }
  }
  absl::StrAppend(&out,
                  "\nGeneral:\n"
                  "  --help       this text\n"
                  "  --version    version, git commit and build type\n"
                  "  --helpfull   every flag, including Abseil's own "
                  "(--flagfile, --fromenv, ...)\n");
  return out;
}

std::optional<int> HandleHelpAndVersion(int argc, char** argv,
                                        const DaemonUsage& usage,
                                        std::ostream& out) {
  absl::FlagsUsageConfig config;
  const std::string program = usage.program;
  config.version_string = [program] { return VersionLine(program) + "\n"; };
  absl::SetFlagsUsageConfig(config);
  for (int i = 1; i < argc; ++i) {
    const absl::string_view a = argv[i];
    if (a == "--") break;  // what follows is not a flag
    if (a == "--version" || a == "-version" || a == "--version=true") {
      out << VersionLine(program) << "\n";
      return 0;
    }
    if (a == "--help" || a == "-help" || a == "-h" || a == "--helpshort" ||
        a == "--help=true") {
      out << GroupedHelp(usage);
      return 0;
    }
  }
  return std::nullopt;
}

}  // namespace wattlens::version
