// SPDX-License-Identifier: Apache-2.0
// Shell completion generated from the CLI11 command tree, so a flag added to
// the parser is completed without touching a hand-written script.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"

namespace wattlens::cli {

// Long flag name ("--sort-by") or positional name ("shell") -> the values it
// accepts, for flags with a fixed set.
using ChoiceMap = std::map<std::string, std::vector<std::string>>;

// The script completes the root command's name (app.get_name()). Flags of
// the root command are offered under every subcommand: they are accepted
// there too.
std::string BashCompletion(const CLI::App& app, const ChoiceMap& choices);
std::string ZshCompletion(const CLI::App& app, const ChoiceMap& choices);

}  // namespace wattlens::cli
