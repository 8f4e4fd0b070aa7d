// The network program's per-CPU byte/packet cache (bpf/network.bpf.c)
// against ground truth: bytes and packets stay exact while the reader
// flushes every CPU's cache concurrently with the traffic, and while more
// processes than a cache has ways evict each other on the same CPUs.
#include <arpa/inet.h>
#include <bpf/libbpf.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <map>
#include <vector>

#include "agent/bpf/network_program.h"
#include "tests/bpf/bpf_test_util.h"

namespace wattlens {
namespace {

using testing::GatedChild;

constexpr int kDatagrams = 3'000;
constexpr int kSize = 300;

// Sends kDatagrams of kSize bytes to itself over loopback UDP and receives
// each: tx and rx both kDatagrams × kSize bytes in this process.
int PingSelf() {
  int rx = socket(AF_INET, SOCK_DGRAM, 0);
  int tx = socket(AF_INET, SOCK_DGRAM, 0);
  if (rx < 0 || tx < 0) return 3;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(a);
  if (bind(rx, reinterpret_cast<sockaddr*>(&a), len) != 0 ||
      getsockname(rx, reinterpret_cast<sockaddr*>(&a), &len) != 0 ||
      connect(tx, reinterpret_cast<sockaddr*>(&a), len) != 0) {
    return 4;
  }
  char buf[kSize] = {};
  for (int i = 0; i < kDatagrams; ++i) {
    if (send(tx, buf, kSize, 0) != kSize) return 5;
    if (recv(rx, buf, kSize, 0) != kSize) return 6;
  }
  return 0;
}

struct Totals {
  uint64_t tx_bytes = 0, rx_bytes = 0, tx_packets = 0, rx_packets = 0;
};

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

TEST(NetCacheBpfTest, ExactWhileFlushedConcurrentlyAndEvicted) {
  WATTLENS_REQUIRE_BPF_OR_SKIP();
  NetworkProgramConfig config;
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

}  // namespace
}  // namespace wattlens
