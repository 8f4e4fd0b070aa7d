// SPDX-License-Identifier: Apache-2.0
// The `wattlens` command: top, projects, status, watch against a collector's
// QueryService, plus completion and version. RunCli is the whole program
// (main only forwards), so tests run it in-process against a collector on
// 127.0.0.1:0; ParseCommandLine is the parser alone, so tests check what a
// command line asks for without any server.
#pragma once

#include <atomic>
#include <functional>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "cli/output.h"
#include "proto/transport/tls.h"
#include "wattlens/v1/query.pb.h"

namespace wattlens::cli {

enum class Command { kTop, kProjects, kStatus, kWatch, kCompletion, kVersion };

// A command line that parsed and checked: everything needed to run it.
struct Invocation {
  Command command = Command::kTop;
  std::string server;
  bool insecure = false;
  transport::TlsFiles tls;
  std::string tls_server_name;
  absl::Duration timeout;
  RenderOptions render;
  wattlens::v1::GetUsageRequest usage;  // top, projects
  bool follow = false;                  // watch
  bool include_reports = false;         // watch
  std::string shell;                    // completion: bash or zsh
};

struct ParseOutcome {
  // Absent when the command line was answered (--help) or refused; then
  // exit_code is 0 or 2 and the text went to out or err.
  std::optional<Invocation> invocation;
  int exit_code = 0;
};

// `now` anchors relative times (--since=2h) and ages in tables.
ParseOutcome ParseCommandLine(const std::vector<std::string>& args,
                              absl::Time now, std::ostream& out,
                              std::ostream& err);

// The completion script for `shell` ("bash" or "zsh"), generated from the
// same command definitions the parser uses.
std::string CompletionScript(const std::string& shell);

struct CliEnvironment {
  std::function<absl::Time()> now = [] { return absl::Now(); };
};

// Returns the exit code: 0 ok, 1 RPC/server error, 2 usage error.
// `cancel` (optional) ends `watch -f` when set.
int RunCli(const std::vector<std::string>& args, std::ostream& out,
           std::ostream& err, const std::atomic<bool>* cancel = nullptr,
           const CliEnvironment& env = {});

}  // namespace wattlens::cli
