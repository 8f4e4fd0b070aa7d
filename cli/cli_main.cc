// SPDX-License-Identifier: Apache-2.0
// wattlens: the command-line client of the collector (see cli.h).
#include <signal.h>

#include <atomic>
#include <iostream>
#include <string>
#include <vector>

#include "cli/cli.h"

namespace {
std::atomic<bool> g_interrupted{false};
void OnSignal(int) { g_interrupted = true; }
}  // namespace

int main(int argc, char** argv) {
  signal(SIGINT, OnSignal);
  signal(SIGTERM, OnSignal);
  std::vector<std::string> args(argv + 1, argv + argc);
  return wattlens::cli::RunCli(args, std::cout, std::cerr, &g_interrupted);
}
