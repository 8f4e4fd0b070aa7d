// SPDX-License-Identifier: Apache-2.0
// Network accounting against ground truth: bytes and datagrams the test
// itself sent, connections it opened, and what a real server (nginx) sent
// as measured by its client.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sched.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <tuple>
#include <vector>

#include "absl/strings/str_cat.h"
#include "agent/bpf/network_classes.h"
#include "agent/export/agent_health.h"
#include "tests/bpf/bpf_test_util.h"

namespace wattlens {
namespace {

using testing::DrainUntil;
using testing::FindCgroup;
using testing::FindExited;
using testing::GatedChild;
using testing::TestAgentConfig;
using testing::TestCgroup;

constexpr size_t kMiB = 1 << 20;

// Async-signal-safe full read/write (children of a threaded parent).
bool WriteAll(int fd, const char* buf, size_t n) {
  while (n) {
    ssize_t w = write(fd, buf, n);
    if (w <= 0) return false;
    buf += w;
    n -= w;
  }
  return true;
}
bool ReadExactly(int fd, char* buf, size_t n) {
  while (n) {
    ssize_t r = read(fd, buf, n);
    if (r <= 0) return false;
    buf += r;
    n -= r;
  }
  return true;
}

struct Endpoint {
  sockaddr_storage addr{};
  socklen_t len = 0;
};

Endpoint Loopback(int family, uint16_t port) {
  Endpoint e;
  if (family == AF_INET) {
    auto* a = reinterpret_cast<sockaddr_in*>(&e.addr);
    a->sin_family = AF_INET;
    a->sin_port = htons(port);
    a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    e.len = sizeof(*a);
  } else {
    auto* a = reinterpret_cast<sockaddr_in6*>(&e.addr);
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(port);
    a->sin6_addr = in6addr_loopback;
    e.len = sizeof(*a);
  }
  return e;
}

uint16_t PortOf(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
  return ntohs(ss.ss_family == AF_INET
                   ? reinterpret_cast<sockaddr_in*>(&ss)->sin_port
                   : reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
}

// Every byte test runs for each address family and each byte source this
// kernel can load (sock_length on Linux 6.3+, syscalls everywhere).
class NetworkBpfTest
    : public ::testing::TestWithParam<std::tuple<int, NetworkBytesSource>> {
 protected:
  void SetUp() override {
    WATTLENS_REQUIRE_BPF_OR_SKIP();
    AgentConfig config = TestAgentConfig();
    config.network_bytes_request = {false, std::get<1>(GetParam())};
    auto a = Agent::Create(config);
    ASSERT_TRUE(a.ok()) << a.status();
    agent_ = std::move(*a);
    // Source health is published with the first snapshot (before it there
    // is nothing to check). These tests count with the network source and
    // see exits through the sched source: with either down they can only
    // fail, so they stop here with its error instead.
    ASSERT_TRUE(agent_->DrainOnce().ok());
    auto snap = agent_->store().Latest();
    ASSERT_NE(snap, nullptr);
    for (const char* name : {"sched", "network"}) {
      auto it = std::find_if(
          snap->self.sources.begin(), snap->self.sources.end(),
          [name](const SourceHealth& h) { return h.source == name; });
      ASSERT_NE(it, snap->self.sources.end()) << name << " source missing";
      ASSERT_EQ(it->state, SourceState::kUp)
          << name << ": " << HealthReasonName(it->reason) << ": "
          << it->detail;
    }
  }
  // Drains until both pids have exited and `extra` holds.
  void AwaitExits(pid_t a, pid_t b,
                  std::function<bool(const Snapshot&)> extra = nullptr) {
    ASSERT_TRUE(DrainUntil(
        *agent_,
        [&](const Snapshot& s) {
          return seen_.count(a) && seen_.count(b) && (!extra || extra(s));
        },
        [&](const Snapshot& s) {
          for (pid_t p : {a, b}) {
            if (const ProcessStats* ps = FindExited(s, p)) seen_[p] = *ps;
          }
        }));
  }
  std::unique_ptr<Agent> agent_;
  std::map<pid_t, ProcessStats> seen_;
};

TEST_P(NetworkBpfTest, TcpLoopbackBytesExactBothWays) {
  const int family = std::get<0>(GetParam());
  const size_t kUp = 10 * kMiB, kDown = 3 * kMiB;
  std::vector<char> buf(kUp, 'x');
  TestCgroup cga("tcp-client"), cgb("tcp-server");
  ASSERT_TRUE(cga.ok() && cgb.ok());
  int lfd = socket(family, SOCK_STREAM, 0);
  Endpoint any = Loopback(family, 0);
  ASSERT_EQ(bind(lfd, reinterpret_cast<sockaddr*>(&any.addr), any.len), 0);
  ASSERT_EQ(listen(lfd, 8), 0);
  Endpoint server = Loopback(family, PortOf(lfd));

  GatedChild b([&] {
    int c = accept(lfd, nullptr, nullptr);
    if (c < 0 || !ReadExactly(c, buf.data(), kUp)) return 1;
    if (!WriteAll(c, buf.data(), kDown)) return 2;
    close(c);
    return 0;
  });
  GatedChild a([&] {
    int s = socket(family, SOCK_STREAM, 0);
    if (connect(s, reinterpret_cast<sockaddr*>(&server.addr), server.len))
      return 1;
    if (!WriteAll(s, buf.data(), kUp)) return 2;
    if (!ReadExactly(s, buf.data(), kDown)) return 3;
    close(s);
    return 0;
  });
  close(lfd);
  ASSERT_TRUE(cga.Add(a.pid()) && cgb.Add(b.pid()));
  b.Release();
  a.Release();
  ASSERT_EQ(a.Wait(), 0);
  ASSERT_EQ(b.Wait(), 0);
  ASSERT_NO_FATAL_FAILURE(AwaitExits(a.pid(), b.pid(), [&](const Snapshot& s) {
    const CgroupStats* x = FindCgroup(s, cga.id());
    const CgroupStats* y = FindCgroup(s, cgb.id());
    return x && y && x->tcp.closes == 1 && y->tcp.closes == 1;
  }));
  const NetStats& pa = seen_[a.pid()].net[WL_NET_NODE];
  const NetStats& pb = seen_[b.pid()].net[WL_NET_NODE];
  EXPECT_EQ(pa.tx_bytes, kUp);
  EXPECT_EQ(pa.rx_bytes, kDown);
  EXPECT_EQ(pb.rx_bytes, kUp);
  EXPECT_EQ(pb.tx_bytes, kDown);
  EXPECT_EQ(seen_[a.pid()].tcp.connects, 1u);
  EXPECT_EQ(seen_[b.pid()].tcp.accepts, 1u);
  auto snap = agent_->store().Latest();
  const CgroupStats* ca = FindCgroup(*snap, cga.id());
  const CgroupStats* cb = FindCgroup(*snap, cgb.id());
  ASSERT_TRUE(ca && cb) << "a test cgroup is missing from the snapshot";
  EXPECT_EQ(ca->net[WL_NET_NODE].tx_bytes, kUp);
  EXPECT_EQ(ca->net[WL_NET_NODE].rx_bytes, kDown);
  EXPECT_EQ(cb->net[WL_NET_NODE].rx_bytes, kUp);
  EXPECT_EQ(cb->net[WL_NET_NODE].tx_bytes, kDown);
  for (uint32_t k = WL_NET_CLUSTER; k < WL_NET_CLASSES; ++k) {
    EXPECT_EQ(ca->net[k].tx_bytes + ca->net[k].rx_bytes, 0u) << k;
  }
  EXPECT_EQ(ca->tcp.connects, 1u);
  EXPECT_EQ(cb->tcp.accepts, 1u);
  std::printf("tcp %s: client tx %lu rx %lu, server rx %lu tx %lu\n",
              family == AF_INET ? "ipv4" : "ipv6", pa.tx_bytes, pa.rx_bytes,
              pb.rx_bytes, pb.tx_bytes);
}

TEST_P(NetworkBpfTest, UdpDatagramsExact) {
  const int family = std::get<0>(GetParam());
  constexpr int kDatagrams = 500;
  constexpr size_t kSize = 1200;
  TestCgroup cga("udp-tx"), cgb("udp-rx");
  ASSERT_TRUE(cga.ok() && cgb.ok());
  // Both sockets bound and connected to each other before the fork, so both
  // have a peer (a class) and the receiver's buffer holds every datagram.
  int sa = socket(family, SOCK_DGRAM, 0), sb = socket(family, SOCK_DGRAM, 0);
  Endpoint any = Loopback(family, 0);
  ASSERT_EQ(bind(sa, reinterpret_cast<sockaddr*>(&any.addr), any.len), 0);
  ASSERT_EQ(bind(sb, reinterpret_cast<sockaddr*>(&any.addr), any.len), 0);
  Endpoint ea = Loopback(family, PortOf(sa)), eb = Loopback(family, PortOf(sb));
  ASSERT_EQ(connect(sa, reinterpret_cast<sockaddr*>(&eb.addr), eb.len), 0);
  ASSERT_EQ(connect(sb, reinterpret_cast<sockaddr*>(&ea.addr), ea.len), 0);
  int rcvbuf = 16 << 20;
  ASSERT_EQ(setsockopt(sb, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf)),
            0);
  static char payload[kSize];
  GatedChild tx([&] {
    for (int i = 0; i < kDatagrams; ++i) {
      if (send(sa, payload, kSize, 0) != static_cast<ssize_t>(kSize)) return 1;
    }
    return 0;
  });
  ASSERT_TRUE(cga.Add(tx.pid()));
  tx.Release();
  ASSERT_EQ(tx.Wait(), 0);  // all sent before the receiver reads
  // Loopback UDP may drop a datagram without telling the sender (a
  // real-time kernel runs softirqs in threads, and its backlog can fill
  // under an emulated CPU). The ground truth for received bytes is what
  // recv returned, counted by the receiver in shared memory (an exit status
  // holds 8 bits); it stops after 10 s without a datagram instead of
  // blocking on one that will never come.
  auto* received = static_cast<int*>(mmap(nullptr, sizeof(int),
                                          PROT_READ | PROT_WRITE,
                                          MAP_SHARED | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(received, MAP_FAILED);
  *received = 0;
  GatedChild rx([&] {
    pollfd p{sb, POLLIN, 0};
    while (*received < kDatagrams) {
      int ready = poll(&p, 1, 10'000);
      if (ready == 0) return 0;
      if (ready < 0) return 1;
      if (recv(sb, payload, kSize, 0) != static_cast<ssize_t>(kSize)) return 2;
      ++*received;
    }
    return 0;
  });
  ASSERT_TRUE(cgb.Add(rx.pid()));
  rx.Release();
  ASSERT_EQ(rx.Wait(), 0);
  const uint64_t got = static_cast<uint64_t>(*received);
  munmap(received, sizeof(int));
  ASSERT_GT(got, 0u) << "the receiver got no datagram";
  if (got < uint64_t{kDatagrams}) {
    std::printf("note: the kernel dropped %llu of %d datagrams on loopback; "
                "received bytes are compared with the %llu received\n",
                static_cast<unsigned long long>(kDatagrams - got), kDatagrams,
                static_cast<unsigned long long>(got));
  }
  close(sa);
  close(sb);
  ASSERT_NO_FATAL_FAILURE(AwaitExits(tx.pid(), rx.pid()));
  const NetStats& t = seen_[tx.pid()].net[WL_NET_NODE];
  const NetStats& r = seen_[rx.pid()].net[WL_NET_NODE];
  EXPECT_EQ(t.tx_packets, uint64_t{kDatagrams});
  EXPECT_EQ(t.tx_bytes, kDatagrams * kSize);
  EXPECT_EQ(r.rx_packets, got);
  EXPECT_EQ(r.rx_bytes, got * kSize);
  auto snap = agent_->store().Latest();
  const CgroupStats* ctx = FindCgroup(*snap, cga.id());
  const CgroupStats* crx = FindCgroup(*snap, cgb.id());
  ASSERT_TRUE(ctx && crx) << "a test cgroup is missing from the snapshot";
  EXPECT_EQ(ctx->net[WL_NET_NODE].tx_packets, uint64_t{kDatagrams});
  EXPECT_EQ(crx->net[WL_NET_NODE].rx_bytes, got * kSize);
}

TEST_P(NetworkBpfTest, ConnectAcceptCloseCountsExact) {
  const int family = std::get<0>(GetParam());
  constexpr int kConns = 200;
  TestCgroup cga("conn-client"), cgb("conn-server");
  ASSERT_TRUE(cga.ok() && cgb.ok());
  int lfd = socket(family, SOCK_STREAM, 0);
  Endpoint any = Loopback(family, 0);
  ASSERT_EQ(bind(lfd, reinterpret_cast<sockaddr*>(&any.addr), any.len), 0);
  ASSERT_EQ(listen(lfd, 256), 0);
  Endpoint server = Loopback(family, PortOf(lfd));
  GatedChild srv([&] {
    char c;
    for (int i = 0; i < kConns; ++i) {
      int s = accept(lfd, nullptr, nullptr);
      if (s < 0 || read(s, &c, 1) != 1) return 1;
      close(s);
    }
    return 0;
  });
  GatedChild cli([&] {
    for (int i = 0; i < kConns; ++i) {
      int s = socket(family, SOCK_STREAM, 0);
      if (connect(s, reinterpret_cast<sockaddr*>(&server.addr), server.len))
        return 1;
      if (write(s, "x", 1) != 1) return 2;
      close(s);
    }
    return 0;
  });
  close(lfd);
  ASSERT_TRUE(cga.Add(cli.pid()) && cgb.Add(srv.pid()));
  srv.Release();
  cli.Release();
  ASSERT_EQ(cli.Wait(), 0);
  ASSERT_EQ(srv.Wait(), 0);
  ASSERT_NO_FATAL_FAILURE(
      AwaitExits(cli.pid(), srv.pid(), [&](const Snapshot& s) {
        const CgroupStats* x = FindCgroup(s, cga.id());
        const CgroupStats* y = FindCgroup(s, cgb.id());
        return x && y && x->tcp.closes == kConns && y->tcp.closes == kConns;
      }));
  auto snap = agent_->store().Latest();
  const CgroupStats* c = FindCgroup(*snap, cga.id());
  const CgroupStats* s = FindCgroup(*snap, cgb.id());
  ASSERT_TRUE(c && s) << "a test cgroup is missing from the snapshot";
  EXPECT_EQ(c->tcp.connects, uint64_t{kConns});
  EXPECT_EQ(c->tcp.accepts, 0u);
  EXPECT_EQ(c->tcp.closes, uint64_t{kConns});
  EXPECT_EQ(s->tcp.connects, 0u);
  EXPECT_EQ(s->tcp.accepts, uint64_t{kConns});
  EXPECT_EQ(s->tcp.closes, uint64_t{kConns});
  EXPECT_EQ(seen_[cli.pid()].tcp.connects, uint64_t{kConns});
  EXPECT_EQ(seen_[srv.pid()].tcp.accepts, uint64_t{kConns});
}

// Two network namespaces joined by a veth pair, with addresses inside a
// cluster CIDR the agent is configured with. Traffic stays inside them.
class NetnsPair {
 public:
  explicit NetnsPair(const std::string& prefix) {
    const std::string tag = std::to_string(getpid() % 100000);
    a_ = "wl-a-" + tag;
    b_ = "wl-b-" + tag;
    const std::string va = "wla" + tag, vb = "wlb" + tag;
    ip_a_ = prefix + "1";
    ip_b_ = prefix + "2";
    Teardown();
    ok_ = Run("ip netns add " + a_) && Run("ip netns add " + b_) &&
          Run("ip link add " + va + " type veth peer name " + vb) &&
          Run("ip link set " + va + " netns " + a_) &&
          Run("ip link set " + vb + " netns " + b_) &&
          Run("ip -n " + a_ + " addr add " + ip_a_ + "/24 dev " + va) &&
          Run("ip -n " + b_ + " addr add " + ip_b_ + "/24 dev " + vb) &&
          Run("ip -n " + a_ + " link set " + va + " up") &&
          Run("ip -n " + b_ + " link set " + vb + " up") &&
          Run("ip -n " + a_ + " link set lo up") &&
          Run("ip -n " + b_ + " link set lo up");
  }
  ~NetnsPair() { Teardown(); }
  bool ok() const { return ok_; }
  // Enter a namespace (in a child: setns is per thread).
  static bool Enter(const std::string& ns) {
    int fd = open(("/var/run/netns/" + ns).c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    bool ok = setns(fd, CLONE_NEWNET) == 0;
    close(fd);
    return ok;
  }
  std::string a_, b_, ip_a_, ip_b_;

 private:
  static bool Run(const std::string& cmd) {
    return std::system((cmd + " 2>/dev/null").c_str()) == 0;
  }
  void Teardown() {
    std::system(("ip netns del " + a_ + " 2>/dev/null").c_str());
    std::system(("ip netns del " + b_ + " 2>/dev/null").c_str());
  }
  bool ok_ = false;
};

// 256 KiB over TCP from one namespace of `ns` to the other: both ends count
// it as cluster traffic, none as node or private.
void ExpectClusterTrafficBetween(const NetnsPair& ns, Agent& agent) {
  constexpr size_t kBytes = 256 * 1024;
  constexpr uint16_t kPort = 18080;  // inside a private namespace
  static char buf[kBytes];
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  GatedChild server([&] {
    if (!NetnsPair::Enter(ns.b_)) return 1;
    int l = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(kPort);
    inet_pton(AF_INET, ns.ip_b_.c_str(), &sa.sin_addr);
    if (bind(l, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) || listen(l, 1))
      return 2;
    char c = 'r';
    if (write(ready[1], &c, 1) != 1) return 3;
    int s = accept(l, nullptr, nullptr);
    if (s < 0 || !ReadExactly(s, buf, kBytes)) return 4;
    close(s);
    return 0;
  });
  GatedChild client([&] {
    if (!NetnsPair::Enter(ns.a_)) return 1;
    char c;
    if (read(ready[0], &c, 1) != 1) return 2;  // server is listening
    int s = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(kPort);
    inet_pton(AF_INET, ns.ip_b_.c_str(), &sa.sin_addr);
    if (connect(s, reinterpret_cast<sockaddr*>(&sa), sizeof(sa))) return 3;
    if (!WriteAll(s, buf, kBytes)) return 4;
    close(s);
    return 0;
  });
  server.Release();
  client.Release();
  ASSERT_EQ(server.Wait(), 0);
  ASSERT_EQ(client.Wait(), 0);
  std::map<pid_t, ProcessStats> seen;
  ASSERT_TRUE(DrainUntil(
      agent, [&](const Snapshot&) { return seen.size() == 2; },
      [&](const Snapshot& s) {
        for (pid_t p : {server.pid(), client.pid()}) {
          if (const ProcessStats* ps = FindExited(s, p)) seen[p] = *ps;
        }
      }));
  EXPECT_EQ(seen[client.pid()].net[WL_NET_CLUSTER].tx_bytes, kBytes);
  EXPECT_EQ(seen[server.pid()].net[WL_NET_CLUSTER].rx_bytes, kBytes);
  EXPECT_EQ(seen[client.pid()].net[WL_NET_NODE].tx_bytes, 0u);
  EXPECT_EQ(seen[client.pid()].net[WL_NET_PRIVATE].tx_bytes, 0u);
  EXPECT_EQ(seen[client.pid()].tcp.connects, 1u);
  EXPECT_EQ(seen[server.pid()].tcp.accepts, 1u);
}

TEST(NetworkClassBpfTest, TrafficBetweenNamespacesInAClusterCidrIsCluster) {
  WATTLENS_REQUIRE_BPF_OR_SKIP();
  NetnsPair ns("10.244.77.");
  ASSERT_TRUE(ns.ok()) << "could not create network namespaces (ip netns)";
  AgentConfig config = TestAgentConfig();
  config.network.cluster_cidrs = {*ParseCidr("10.244.0.0/16")};
  auto agent = Agent::Create(config);
  ASSERT_TRUE(agent.ok()) << agent.status();
  ExpectClusterTrafficBetween(ns, **agent);
}

// Without --cluster_cidrs, in a pod: the service range is detected from the
// kubernetes Service's address the kubelet puts in the environment, and peers
// in it are cluster traffic, not private egress. The snapshot says where the
// range came from (wattlens_agent_cluster_cidrs_info on /metrics).
TEST(NetworkClassBpfTest, ServiceRangeDetectedFromTheEnvironmentIsCluster) {
  WATTLENS_REQUIRE_BPF_OR_SKIP();
  NetnsPair ns("10.96.77.");
  ASSERT_TRUE(ns.ok()) << "could not create network namespaces (ip netns)";
  AgentConfig config = TestAgentConfig();
  config.identity.env = [](const char* name) -> std::optional<std::string> {
    if (std::string(name) == "KUBERNETES_SERVICE_HOST") return "10.96.0.1";
    return std::nullopt;
  };
  auto agent = Agent::Create(config);
  ASSERT_TRUE(agent.ok()) << agent.status();
  ExpectClusterTrafficBetween(ns, **agent);
  std::shared_ptr<const Snapshot> s = (*agent)->store().Latest();
  ASSERT_NE(s, nullptr);
  ASSERT_EQ(s->cluster_cidrs.size(), 1u);
  EXPECT_EQ(s->cluster_cidrs[0].cidr, "10.96.0.0/12");
  EXPECT_EQ(s->cluster_cidrs[0].source, "kubernetes_service");
  EXPECT_EQ(s->cluster_cidrs[0].observed, "10.96.0.1");
}

// A real server nobody here wrote: nginx sends a 1 MiB file N times; its
// workload's transmit bytes match what the client received within 1 %.
TEST(NetworkNginxBpfTest, NginxTransmitMatchesClientBytes) {
  WATTLENS_REQUIRE_BPF_OR_SKIP();
  if (access("/usr/sbin/nginx", X_OK) != 0) {
    if (const char* r = std::getenv("WATTLENS_REQUIRE_BPF");
        r && std::string(r) == "1") {
      FAIL() << "nginx not installed (scripts/install-deps.sh installs it)";
    }
    GTEST_SKIP() << "nginx not installed";
  }
  char tmpl[] = "/tmp/wl-nginx-XXXXXX";
  const std::string dir = mkdtemp(tmpl);
  {
    std::ofstream f(dir + "/file.bin", std::ios::binary);
    std::string mib(kMiB, 'n');
    f << mib;
  }
  // Port 0 is not an option for nginx: find a free one, then hand it over.
  int probe = socket(AF_INET, SOCK_STREAM, 0);
  Endpoint any = Loopback(AF_INET, 0);
  ASSERT_EQ(bind(probe, reinterpret_cast<sockaddr*>(&any.addr), any.len), 0);
  const uint16_t port = PortOf(probe);
  close(probe);
  {
    std::ofstream conf(dir + "/nginx.conf");
    conf << "daemon off; master_process on; worker_processes 1;\n"
         << "pid " << dir << "/nginx.pid; error_log " << dir << "/error.log;\n"
         << "events { worker_connections 64; }\n"
         << "http { access_log off; sendfile on; keepalive_timeout 0;\n"
         << "  client_body_temp_path " << dir << "; proxy_temp_path " << dir
         << ";\n  server { listen 127.0.0.1:" << port << "; root " << dir
         << "; } }\n";
  }
  TestCgroup cg("nginx");
  ASSERT_TRUE(cg.ok());
  auto agent = Agent::Create(TestAgentConfig());
  ASSERT_TRUE(agent.ok()) << agent.status();
  const std::string conf = dir + "/nginx.conf";
  GatedChild nginx([&] {
    char* const argv[] = {
        const_cast<char*>("nginx"),      const_cast<char*>("-c"),
        const_cast<char*>(conf.c_str()), const_cast<char*>("-p"),
        const_cast<char*>(dir.c_str()),  nullptr};
    char* const envp[] = {nullptr};
    execve("/usr/sbin/nginx", argv, envp);
    return 127;
  });
  ASSERT_TRUE(cg.Add(nginx.pid()));  // master and worker live in it
  nginx.Release();
  // Await the listening socket with a TCP connect only (no bytes moved).
  bool listening = false;
  for (int i = 0; i < 200 && !listening; ++i) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    Endpoint e = Loopback(AF_INET, port);
    listening = connect(s, reinterpret_cast<sockaddr*>(&e.addr), e.len) == 0;
    close(s);
    if (!listening) absl::SleepFor(absl::Milliseconds(25));
  }
  ASSERT_TRUE(listening) << "nginx did not start; see " << dir << "/error.log";
  constexpr int kRequests = 20;
  uint64_t client_bytes = 0;
  const std::string cmd =
      "curl -s -o /dev/null -w '%{size_header} %{size_download}\\n' "
      "http://127.0.0.1:" +
      std::to_string(port) + "/file.bin";
  for (int i = 0; i < kRequests; ++i) {
    FILE* p = popen(cmd.c_str(), "r");
    ASSERT_NE(p, nullptr);
    unsigned long header = 0, body = 0;
    ASSERT_EQ(fscanf(p, "%lu %lu", &header, &body), 2);
    pclose(p);
    ASSERT_EQ(body, kMiB);
    client_bytes += header + body;
  }
  kill(nginx.pid(), SIGQUIT);  // graceful: workers finish, then exit
  nginx.Wait();
  uint64_t nginx_tx = 0;
  ASSERT_TRUE(DrainUntil(**agent,
                         [&](const Snapshot& s) {
                           const CgroupStats* c = FindCgroup(s, cg.id());
                           nginx_tx = c ? c->net[WL_NET_NODE].tx_bytes : 0;
                           return nginx_tx >= client_bytes;
                         }))
      << "nginx tx " << nginx_tx << " < client received " << client_bytes;
  std::printf("nginx: workload tx %lu bytes, clients received %lu (%.3f%%)\n",
              nginx_tx, client_bytes,
              100.0 * (double(nginx_tx) - client_bytes) / client_bytes);
  EXPECT_NEAR(double(nginx_tx), double(client_bytes), client_bytes * 0.01);
  std::filesystem::remove_all(dir);
}

// Without the byte tracepoints the source says so (health, not zeros) and
// connection counting still works.
TEST(NetworkDegradedBpfTest, MissingByteCountsAreReportedNotSilent) {
  WATTLENS_REQUIRE_BPF_OR_SKIP();
  AgentConfig config = TestAgentConfig();
  config.network_bytes_request = {false, NetworkBytesSource::kOff};
  auto agent = Agent::Create(config);
  ASSERT_TRUE(agent.ok()) << agent.status();
  int lfd = socket(AF_INET, SOCK_STREAM, 0);
  Endpoint any = Loopback(AF_INET, 0);
  ASSERT_EQ(bind(lfd, reinterpret_cast<sockaddr*>(&any.addr), any.len), 0);
  ASSERT_EQ(listen(lfd, 1), 0);
  Endpoint server = Loopback(AF_INET, PortOf(lfd));
  GatedChild cli([&] {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(s, reinterpret_cast<sockaddr*>(&server.addr), server.len))
      return 1;
    if (write(s, "hello", 5) != 5) return 2;
    close(s);
    return 0;
  });
  cli.Release();
  ASSERT_EQ(cli.Wait(), 0);
  close(lfd);
  ProcessStats seen;
  ASSERT_TRUE(DrainUntil(**agent, [&](const Snapshot& s) {
    const ProcessStats* p = FindExited(s, cli.pid());
    if (p) seen = *p;
    return p != nullptr;
  }));
  EXPECT_EQ(seen.tcp.connects, 1u);
  EXPECT_EQ(seen.net[WL_NET_NODE].tx_bytes, 0u);
  bool reported = false;
  const auto& sources = (*agent)->store().Latest()->self.sources;
  for (const auto& src : sources) {
    if (src.source != "network") continue;
    EXPECT_EQ(src.state, SourceState::kDegraded);
    EXPECT_EQ(src.reason, HealthReason::kNetworkBytesOff);
    EXPECT_FALSE(src.detail.empty());
    reported = true;
  }
  EXPECT_TRUE(reported);
  // Degraded is not down: the node stays ready.
  EXPECT_TRUE(SourcesReady(sources).ok()) << SourcesReady(sources);
}

INSTANTIATE_TEST_SUITE_P(
    Families, NetworkBpfTest,
    ::testing::Combine(::testing::Values(AF_INET, AF_INET6),
                       testing::kNetworkSources),
    [](const auto& info) {
      return absl::StrCat(std::get<0>(info.param) == AF_INET ? "IPv4" : "IPv6",
                          "_", NetworkBytesSourceName(std::get<1>(info.param)));
    });

}  // namespace
}  // namespace wattlens
