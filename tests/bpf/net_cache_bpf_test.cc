// SPDX-License-Identifier: Apache-2.0
// The network program's per-CPU byte/packet cache (bpf/network.bpf.c)
// against ground truth: bytes and packets stay exact while the reader
// flushes every CPU's cache concurrently with the traffic, and while more
// processes than a cache has ways evict each other on the same CPUs.
#include <arpa/inet.h>
#include <bpf/libbpf.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>

#include <map>
#include <utility>
#include <vector>

#include "agent/bpf/network_program.h"
#include "tests/bpf/bpf_test_util.h"

namespace wattlens {
namespace {

using testing::GatedChild;

constexpr int kDatagrams = 3'000;
constexpr int kSize = 300;

// A loopback UDP pair: `tx` connected to `rx`.
bool UdpPair(int* tx, int* rx) {
  *rx = socket(AF_INET, SOCK_DGRAM, 0);
  *tx = socket(AF_INET, SOCK_DGRAM, 0);
  if (*rx < 0 || *tx < 0) return false;
  // A datagram lost on loopback fails the test after 30 s instead of
  // blocking its recv forever.
  timeval limit{30, 0};
  setsockopt(*rx, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof(limit));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(a);
  return bind(*rx, reinterpret_cast<sockaddr*>(&a), len) == 0 &&
         getsockname(*rx, reinterpret_cast<sockaddr*>(&a), &len) == 0 &&
         connect(*tx, reinterpret_cast<sockaddr*>(&a), len) == 0;
}

// n datagrams of kSize bytes from tx to rx, each received.
int Ping(int tx, int rx, int n) {
  char buf[kSize] = {};
  for (int i = 0; i < n; ++i) {
    if (send(tx, buf, kSize, 0) != kSize) return 5;
    if (recv(rx, buf, kSize, 0) != kSize) return 6;
  }
  return 0;
}

// Sends kDatagrams of kSize bytes to itself over loopback UDP and receives
// each: tx and rx both kDatagrams × kSize bytes in this process.
int PingSelf() {
  int tx, rx;
  if (!UdpPair(&tx, &rx)) return 4;
  return Ping(tx, rx, kDatagrams);
}

struct Totals {
  uint64_t tx_bytes = 0, rx_bytes = 0, tx_packets = 0, rx_packets = 0;
};

std::map<std::pair<uint32_t, uint64_t>, Totals> ReadByTgidAndCgroup(
    NetworkProgram& p) {
  std::map<std::pair<uint32_t, uint64_t>, Totals> out;
  absl::Status s = p.ReadCounts(
      [&](const wl_net_key& k, const wl_net_val& v) {
        Totals& t = out[{k.tgid, k.cgroup_id}];
        t.tx_bytes += v.tx_bytes;
        t.rx_bytes += v.rx_bytes;
        t.tx_packets += v.tx_packets;
        t.rx_packets += v.rx_packets;
      },
      nullptr);
  EXPECT_TRUE(s.ok()) << s;
  return out;
}

std::unique_ptr<NetworkProgram> Load(NetworkBytesSource source) {
  NetworkProgramConfig config;
  config.bytes_source = source;
  auto p = NetworkProgram::Create(config, libbpf_num_possible_cpus());
  EXPECT_TRUE(p.ok()) << p.status();
  return p.ok() ? std::move(*p) : nullptr;
}

std::map<uint32_t, Totals> ReadByTgid(NetworkProgram& p) {
  std::map<uint32_t, Totals> out;
  absl::Status s = p.ReadCounts(
      [&](const wl_net_key& k, const wl_net_val& v) {
        Totals& t = out[k.tgid];
        t.tx_bytes += v.tx_bytes;
        t.rx_bytes += v.rx_bytes;
        t.tx_packets += v.tx_packets;
        t.rx_packets += v.rx_packets;
      },
      nullptr);
  EXPECT_TRUE(s.ok()) << s;
  return out;
}

// Each byte source this kernel can load has its own path into the cache.
class NetCacheBpfTest : public ::testing::TestWithParam<NetworkBytesSource> {};
INSTANTIATE_TEST_SUITE_P(Sources, NetCacheBpfTest, testing::kNetworkSources,
                         testing::NetworkSourceName);

TEST_P(NetCacheBpfTest, ExactWhileFlushedConcurrentlyAndEvicted) {
  WATTLENS_REQUIRE_BPF_OR_SKIP();
  NetworkProgramConfig config;
  config.bytes_source = GetParam();
  auto prog = NetworkProgram::Create(config, libbpf_num_possible_cpus());
  ASSERT_TRUE(prog.ok()) << prog.status();
  ASSERT_TRUE((*prog)->degraded_reason().empty()) << (*prog)->degraded_reason();
  const int ncpus = static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN));
  // More processes than a CPU's cache has ways (8), on the first and the
  // last CPU.
  constexpr int kProcs = 20;
  std::vector<std::unique_ptr<GatedChild>> children;
  for (int i = 0; i < kProcs; ++i) {
    const int cpu = i % 2 ? ncpus - 1 : 0;
    children.push_back(std::make_unique<GatedChild>([cpu] {
      cpu_set_t set;
      CPU_ZERO(&set);
      CPU_SET(cpu, &set);
      if (sched_setaffinity(0, sizeof(set), &set) != 0) return 2;
      return PingSelf();
    }));
    ASSERT_GT(children.back()->pid(), 0);
  }
  for (auto& c : children) c->Release();

  // Read while they run: no count may ever go down.
  std::map<uint32_t, Totals> last;
  int reads = 0;
  auto running = [&] {
    for (auto& c : children) {
      siginfo_t info{};
      if (waitid(P_PID, c->pid(), &info, WEXITED | WNOHANG | WNOWAIT) == 0 &&
          info.si_pid == 0) {
        return true;
      }
    }
    return false;
  };
  while (running()) {
    auto now = ReadByTgid(**prog);
    ++reads;
    for (const auto& [tgid, t] : now) {
      auto it = last.find(tgid);
      if (it == last.end()) continue;
      ASSERT_GE(t.tx_bytes, it->second.tx_bytes) << tgid;
      ASSERT_GE(t.rx_bytes, it->second.rx_bytes) << tgid;
      ASSERT_GE(t.tx_packets, it->second.tx_packets) << tgid;
      ASSERT_GE(t.rx_packets, it->second.rx_packets) << tgid;
    }
    last = std::move(now);
  }
  for (auto& c : children) ASSERT_EQ(c->Wait(), 0);
  auto final_counts = ReadByTgid(**prog);
  std::printf("%d concurrent reads while %d processes ran\n", reads, kProcs);
  EXPECT_GT(reads, 10);
  for (auto& c : children) {
    const Totals& t = final_counts[static_cast<uint32_t>(c->pid())];
    EXPECT_EQ(t.tx_bytes, uint64_t{kDatagrams} * kSize) << c->pid();
    EXPECT_EQ(t.rx_bytes, uint64_t{kDatagrams} * kSize) << c->pid();
    EXPECT_EQ(t.tx_packets, uint64_t{kDatagrams}) << c->pid();
    EXPECT_EQ(t.rx_packets, uint64_t{kDatagrams}) << c->pid();
  }
}

// A process that moves to another cgroup charges each cgroup the bytes it
// sent there, also on a socket it already used (the owner record is checked
// again after a migration).
TEST_P(NetCacheBpfTest, MoveMidRunChargesEachCgroupItsOwnBytes) {
  WATTLENS_REQUIRE_BPF_OR_SKIP();
  auto prog = Load(GetParam());
  ASSERT_NE(prog, nullptr);
  testing::TestCgroup a("net-a"), b("net-b");
  ASSERT_TRUE(a.ok() && b.ok());
  constexpr int kBefore = 700, kAfter = 300;
  int done[2], moved[2];
  ASSERT_EQ(pipe2(done, O_CLOEXEC), 0);
  ASSERT_EQ(pipe2(moved, O_CLOEXEC), 0);
  GatedChild child([&] {
    int tx, rx;
    if (!UdpPair(&tx, &rx)) return 3;
    if (int e = Ping(tx, rx, kBefore)) return e;
    char c = 'd';
    if (write(done[1], &c, 1) != 1) return 7;
    if (read(moved[0], &c, 1) != 1) return 8;
    return Ping(tx, rx, kAfter);
  });
  ASSERT_GT(child.pid(), 0);
  ASSERT_TRUE(a.Add(child.pid()));
  child.Release();
  char c;
  ASSERT_EQ(read(done[0], &c, 1), 1);
  ASSERT_TRUE(b.Add(child.pid()));
  ASSERT_EQ(write(moved[1], &c, 1), 1);
  ASSERT_EQ(child.Wait(), 0);
  for (int fd : {done[0], done[1], moved[0], moved[1]}) close(fd);

  auto counts = ReadByTgidAndCgroup(*prog);
  const uint32_t tgid = static_cast<uint32_t>(child.pid());
  const Totals& in_a = counts[{tgid, a.id()}];
  const Totals& in_b = counts[{tgid, b.id()}];
  EXPECT_EQ(in_a.tx_bytes, uint64_t{kBefore} * kSize);
  EXPECT_EQ(in_a.rx_packets, uint64_t{kBefore});
  EXPECT_EQ(in_b.tx_bytes, uint64_t{kAfter} * kSize);
  EXPECT_EQ(in_b.rx_packets, uint64_t{kAfter});
}

// Two processes sharing sockets (inherited across fork) take turns: each
// is charged exactly what it sent and received.
TEST_P(NetCacheBpfTest, SharedSocketChargesEachProcessItsOwnBytes) {
  WATTLENS_REQUIRE_BPF_OR_SKIP();
  auto prog = Load(GetParam());
  ASSERT_NE(prog, nullptr);
  constexpr int kTurns = 50, kPerTurn = 20;
  int pids[2];
  ASSERT_EQ(pipe2(pids, O_CLOEXEC), 0);
  GatedChild parent([&] {
    int tx, rx;
    if (!UdpPair(&tx, &rx)) return 3;
    int to_child[2], to_parent[2];
    if (pipe(to_child) != 0 || pipe(to_parent) != 0) return 4;
    pid_t kid = fork();
    if (kid == 0) {
      char c;
      for (int t = 0; t < kTurns; ++t) {
        if (read(to_child[0], &c, 1) != 1) _exit(5);
        if (Ping(tx, rx, kPerTurn) != 0) _exit(6);
        if (write(to_parent[1], &c, 1) != 1) _exit(7);
      }
      _exit(0);
    }
    if (write(pids[1], &kid, sizeof(kid)) != sizeof(kid)) return 8;
    char c = 't';
    for (int t = 0; t < kTurns; ++t) {
      if (int e = Ping(tx, rx, kPerTurn)) return e;
      if (write(to_child[1], &c, 1) != 1) return 9;
      if (read(to_parent[0], &c, 1) != 1) return 10;
    }
    int status = 0;
    waitpid(kid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 11;
  });
  ASSERT_GT(parent.pid(), 0);
  parent.Release();
  pid_t kid = 0;
  ASSERT_EQ(read(pids[0], &kid, sizeof(kid)), ssize_t{sizeof(kid)});
  ASSERT_EQ(parent.Wait(), 0);
  close(pids[0]);
  close(pids[1]);

  auto counts = ReadByTgid(*prog);
  for (pid_t p : {parent.pid(), kid}) {
    const Totals& t = counts[static_cast<uint32_t>(p)];
    EXPECT_EQ(t.tx_bytes, uint64_t{kTurns} * kPerTurn * kSize) << p;
    EXPECT_EQ(t.rx_bytes, uint64_t{kTurns} * kPerTurn * kSize) << p;
    EXPECT_EQ(t.tx_packets, uint64_t{kTurns} * kPerTurn) << p;
  }
}

}  // namespace
}  // namespace wattlens
