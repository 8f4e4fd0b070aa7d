// SPDX-License-Identifier: Apache-2.0
// A local HTTPS server replaying recorded Kubernetes API responses
// (k8s_replay_server.py) and a throwaway PKI for it: shared by the watch
// client tests and the agent's identity BPF test. Test-only code.
//
// Needs WATTLENS_PYTHON3 and WATTLENS_IDENTITY_TEST_DIR defined by the
// including target.
#pragma once

#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "nlohmann/json.hpp"

namespace wattlens::identity::testing {

namespace fs = std::filesystem;
using json = nlohmann::json;

inline bool Sh(const std::string& cmd) { return std::system(cmd.c_str()) == 0; }

inline std::string Slurp(const fs::path& p) {
  std::ifstream f(p);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// A throwaway PKI: CA, server cert for 127.0.0.1, client cert.
inline bool MakePki(const fs::path& d) {
  std::string o = "openssl";
  std::string q = " >/dev/null 2>&1";
  std::string ec = " -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
  std::ofstream(d / "san.ext") << "subjectAltName=IP:127.0.0.1\n";
  return Sh(o + " req -x509" + ec + " -keyout " + (d / "ca.key").string() +
            " -out " + (d / "ca.crt").string() +
            " -days 1 -subj /CN=wattlens-test-ca" + q) &&
         Sh(o + " req" + ec + " -keyout " + (d / "srv.key").string() +
            " -out " + (d / "srv.csr").string() + " -subj /CN=127.0.0.1" + q) &&
         Sh(o + " x509 -req -in " + (d / "srv.csr").string() + " -CA " +
            (d / "ca.crt").string() + " -CAkey " + (d / "ca.key").string() +
            " -CAcreateserial -days 1 -extfile " + (d / "san.ext").string() +
            " -out " + (d / "srv.crt").string() + q) &&
         Sh(o + " req" + ec + " -keyout " + (d / "cli.key").string() +
            " -out " + (d / "cli.csr").string() + " -subj /CN=wattlens" + q) &&
         Sh(o + " x509 -req -in " + (d / "cli.csr").string() + " -CA " +
            (d / "ca.crt").string() + " -CAkey " + (d / "ca.key").string() +
            " -CAcreateserial -days 1 -out " + (d / "cli.crt").string() + q);
}

// The replay server as a child process; killed by its pid.
class ReplayServer {
 public:
  bool Start(const fs::path& dir, const json& scenario,
             const std::string& client_ca = "") {
    std::ofstream(dir / "scenario.json") << scenario.dump();
    log_ = dir / "requests.log";
    std::ofstream(log_).close();
    int out[2];
    if (pipe(out) != 0) return false;
    pid_ = fork();
    if (pid_ == 0) {
      // The server must not outlive a crashed test.
      prctl(PR_SET_PDEATHSIG, SIGTERM);
      dup2(out[1], 1);
      close(out[0]);
      std::string script =
          std::string(WATTLENS_IDENTITY_TEST_DIR) + "/k8s_replay_server.py";
      std::vector<std::string> args = {
          WATTLENS_PYTHON3, script,
          "--cert",         (dir / "srv.crt").string(),
          "--key",          (dir / "srv.key").string(),
          "--scenario",     (dir / "scenario.json").string(),
          "--log",          log_.string(),
          "--client-ca",    client_ca};
      std::vector<char*> argv;
      for (std::string& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
    close(out[1]);
    FILE* f = fdopen(out[0], "r");
    char line[32] = {};
    bool ok = f != nullptr && fgets(line, sizeof(line), f) != nullptr;
    if (f != nullptr) fclose(f);
    port_ = ok ? std::atoi(line) : 0;
    return port_ > 0;
  }
  void Stop() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      waitpid(pid_, nullptr, 0);
      pid_ = -1;
    }
  }
  ~ReplayServer() { Stop(); }
  int port() const { return port_; }
  // Pod requests (list, watch, kubelet); node requests with `nodes`.
  std::vector<json> Requests(bool nodes = false) const {
    std::vector<json> out;
    for (absl::string_view l : absl::StrSplit(Slurp(log_), '\n')) {
      if (l.empty()) continue;
      json j = json::parse(l);
      if ((j["kind"] == "node") == nodes) out.push_back(std::move(j));
    }
    return out;
  }

 private:
  pid_t pid_ = -1;
  int port_ = 0;
  fs::path log_;
};

// python3 and openssl are there (else the caller skips with this reason).
inline bool ReplayToolsPresent() {
  return access(WATTLENS_PYTHON3, X_OK) == 0 &&
         Sh("openssl version >/dev/null 2>&1");
}

}  // namespace wattlens::identity::testing
