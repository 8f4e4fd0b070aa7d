// The `wattlens` command: top, status, watch against a collector's
// QueryService. RunCli is the whole program (main only forwards), so tests
// run it in-process against a collector on 127.0.0.1:0.
#pragma once

#include <atomic>
#include <ostream>
#include <string>
#include <vector>

namespace wattlens::cli {

// Returns the exit code: 0 ok, 1 RPC/server error, 2 usage error.
// `cancel` (optional) ends `watch -f` when set.
int RunCli(const std::vector<std::string>& args, std::ostream& out,
           std::ostream& err, const std::atomic<bool>* cancel = nullptr);

}  // namespace wattlens::cli
