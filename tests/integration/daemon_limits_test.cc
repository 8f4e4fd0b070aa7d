// SPDX-License-Identifier: Apache-2.0
// The real wattlens-collector and wattlens-agent binaries at their limits:
// flags that would wrap or be reinterpreted are refused at start; a
// collector started at the container runtimes' soft open-file limit (1024)
// keeps accepting agents while 1,100 idle connections are open; and when
// its listener does wedge (a hard limit it cannot raise), /readyz says so.
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <regex>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/http_get.h"
#include "tests/integration/cluster_harness.h"
#include "tests/integration/h2_attacker.h"

namespace wattlens::testing {
namespace {

namespace fs = std::filesystem;

// A child process with its stderr in a file; killed on destruction.
class Daemon {
 public:
  // `nofile`: RLIMIT_NOFILE {soft, hard} for the child (unset: inherited).
  Daemon(const std::string& binary, const std::vector<std::string>& args,
         std::optional<std::pair<rlim_t, rlim_t>> nofile = std::nullopt) {
    static int n = 0;
    log_ = fs::temp_directory_path() /
           absl::StrCat("wattlens-daemon-", getpid(), "-", ++n, ".log");
    std::vector<std::string> argv = {binary};
    argv.insert(argv.end(), args.begin(), args.end());
    std::vector<char*> cargv;
    for (auto& a : argv) cargv.push_back(a.data());
    cargv.push_back(nullptr);
    const std::string log = log_.string();
    pid_ = fork();
    if (pid_ == 0) {
      const int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      dup2(fd, 2);
      dup2(fd, 1);
      if (nofile) {
        rlimit rl{nofile->first, nofile->second};
        setrlimit(RLIMIT_NOFILE, &rl);
      }
      execv(cargv[0], cargv.data());
      _exit(127);
    }
  }
  ~Daemon() {
    if (pid_ > 0 && !exited_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    fs::remove(log_);
  }

  // Exit code once the process ends within `timeout`; nullopt if it runs on.
  std::optional<int> WaitExit(absl::Duration timeout) {
    for (absl::Time end = absl::Now() + timeout; absl::Now() < end;) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        exited_ = true;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
      }
      absl::SleepFor(absl::Milliseconds(20));  // polling the child's state
    }
    return std::nullopt;
  }

  std::string Log() const {
    std::ifstream in(log_);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }

  // Waits for the collector's start-up line; fills the two ports.
  bool Ports(int* grpc_port, int* metrics_port, absl::Duration timeout) {
    static const std::regex re(
        "listening on port ([0-9]+) .*metrics port ([0-9]+)");
    for (absl::Time end = absl::Now() + timeout; absl::Now() < end;) {
      std::smatch m;
      const std::string log = Log();
      if (std::regex_search(log, m, re)) {
        *grpc_port = std::stoi(m[1]);
        *metrics_port = std::stoi(m[2]);
        return true;
      }
      absl::SleepFor(absl::Milliseconds(20));  // polling the log file
    }
    return false;
  }

 private:
  fs::path log_;
  pid_t pid_ = -1;
  bool exited_ = false;
};

std::vector<std::string> CollectorArgs(std::vector<std::string> extra) {
  std::vector<std::string> a = {"--insecure",
                                "--db=", "--listen_address=127.0.0.1:0",
                                "--metrics_address=127.0.0.1:0"};
  a.insert(a.end(), extra.begin(), extra.end());
  return a;
}

TEST(DaemonFlagsTest, CollectorRefusesValuesThatWouldWrapOrBeReinterpreted) {
  struct Case {
    std::string flag, expect;
  };
  const Case cases[] = {
      {"--max_report_bytes=2147483648", "--max_report_bytes"},
      {"--log_level=verbose", "--log_level=verbose"},
      {"--listen_address=127.0.0.1:99999", "port must be"},
      {"--metrics_address=127.0.0.1:99999", "port must be"},
      {"--listen_address=nonsense", "host:port"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.flag);
    Daemon d(COLLECTOR_BINARY, CollectorArgs({c.flag}));
    const std::optional<int> rc = d.WaitExit(absl::Seconds(10));
    ASSERT_TRUE(rc.has_value()) << "the collector started with " << c.flag;
    EXPECT_EQ(*rc, 2) << d.Log();
    EXPECT_NE(d.Log().find(c.expect), std::string::npos) << d.Log();
  }
}

TEST(DaemonFlagsTest, AgentRefusesBadLogLevelAndPort) {
  for (const std::string flag :
       {"--log_level=verbose", "--metrics_address=0.0.0.0:99999",
        "--collector=collector:70000"}) {
    SCOPED_TRACE(flag);
    Daemon d(AGENT_BINARY, {flag});
    const std::optional<int> rc = d.WaitExit(absl::Seconds(10));
    ASSERT_TRUE(rc.has_value()) << "the agent ran on with " << flag;
    EXPECT_EQ(*rc, 2) << d.Log();
    EXPECT_NE(d.Log().find(flag.substr(0, flag.find('='))), std::string::npos)
        << d.Log();
  }
}

// 1,100 idle TCP connections; each fails the test when it cannot be made.
std::vector<int> OpenIdle(int port, int n) {
  std::vector<int> fds;
  for (int i = 0; i < n; ++i) {
    const int fd = DialLoopback(port);
    if (fd < 0) break;
    fds.push_back(fd);
  }
  return fds;
}

bool HonestReportAcked(int port, absl::Duration timeout) {
  FakeClock clock(1'000'000'000'000);
  FakeAgent a("node-a", clock, 1);
  a.Step();
  UploaderOptions uo;
  uo.collector = absl::StrCat("127.0.0.1:", port);
  uo.insecure = true;
  uo.interval = absl::ZeroDuration();
  uo.backoff_min = absl::Milliseconds(20);
  auto up = Uploader::Create(uo, [&a] { return a.Build(); });
  if (!up.ok()) return false;
  (*up)->Start();
  (*up)->CollectNow();
  const bool acked = (*up)->WaitForAcked(a.epoch(), a.sequence(), timeout);
  (*up)->Stop(absl::ZeroDuration());
  return acked;
}

class FileLimitTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // This process holds the attacker's side of every connection.
    rlimit rl{};
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_max < 4096) {
      GTEST_SKIP() << "RLIMIT_NOFILE hard limit " << rl.rlim_max
                   << " < 4096: cannot hold 1,100 connections";
    }
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
};

TEST_F(FileLimitTest, IdleConnectionsAtSoftLimit1024DoNotStopIngest) {
  Daemon d(COLLECTOR_BINARY, CollectorArgs({}), std::make_pair(1024, 4096));
  int port = 0, metrics = 0;
  ASSERT_TRUE(d.Ports(&port, &metrics, absl::Seconds(20))) << d.Log();
  std::vector<int> idle = OpenIdle(port, 1100);
  EXPECT_EQ(idle.size(), 1100u);
  EXPECT_TRUE(HonestReportAcked(port, absl::Seconds(15)))
      << "ingest stopped behind 1,100 idle connections\n"
      << d.Log();
  EXPECT_EQ(HttpGet(metrics, "/readyz").code, 200);
  for (int fd : idle) close(fd);
}

TEST_F(FileLimitTest, WedgedListenerFailsReadiness) {
  // A hard limit of 1024: the collector cannot raise it, 1,100 connections
  // exhaust it and gRPC stops accepting for good.
  Daemon d(COLLECTOR_BINARY, CollectorArgs({}), std::make_pair(1024, 1024));
  int port = 0, metrics = 0;
  ASSERT_TRUE(d.Ports(&port, &metrics, absl::Seconds(20))) << d.Log();
  ASSERT_EQ(HttpGet(metrics, "/readyz").code, 200);
  std::vector<int> idle = OpenIdle(port, 1100);
  // Let the listener hit EMFILE, then free every descriptor again.
  absl::SleepFor(absl::Seconds(1));  // the accept loop's turn; nothing to await
  for (int fd : idle) close(fd);
  // Ground truth: the listener really is wedged (no agent gets through).
  EXPECT_FALSE(HonestReportAcked(port, absl::Seconds(3)));
  HttpResponse r;
  for (absl::Time end = absl::Now() + absl::Seconds(15); absl::Now() < end;) {
    r = HttpGet(metrics, "/readyz");
    if (r.code == 503) break;
    absl::SleepFor(absl::Milliseconds(200));
  }
  EXPECT_EQ(r.code, 503) << r.body;
  EXPECT_NE(r.body.find("[-]grpc-listener failed"), std::string::npos)
      << r.body;
}

}  // namespace
}  // namespace wattlens::testing
