// Network accounting against ground truth: bytes and datagrams the test
// itself sent, connections it opened, and what a real server (nginx) sent
// as measured by its client.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/socket.h>

#include <cstring>
#include <vector>

#include "tests/bpf/bpf_test_util.h"

namespace wattlens {
namespace {

using testing::DrainUntil;
using testing::GatedChild;
using testing::TestAgentConfig;
using testing::TestCgroup;

constexpr size_t kMiB = 1 << 20;

const ProcessStats* FindExited(const Snapshot& s, pid_t pid) {
  for (const auto& p : s.processes) {
    if (p.pid == static_cast<uint32_t>(pid) && p.exited) return &p;
  }
  return nullptr;
}

const CgroupStats* FindCgroup(const Snapshot& s, uint64_t id) {
  for (const auto& c : s.cgroups) {
    if (c.id == id) return &c;
  }
  return nullptr;
}

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

class NetworkBpfTest : public ::testing::TestWithParam<int> {
 protected:
  void SetUp() override {
    WATTLENS_REQUIRE_BPF_OR_SKIP();
    auto a = Agent::Create(TestAgentConfig());
    ASSERT_TRUE(a.ok()) << a.status();
    agent_ = std::move(*a);
    for (const auto& s : agent_->store().Latest()
                             ? agent_->store().Latest()->self.sources
                             : std::vector<SourceHealth>{}) {
      ASSERT_TRUE(s.healthy) << s.source << ": " << s.last_error;
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
  const int family = GetParam();
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
  AwaitExits(a.pid(), b.pid(), [&](const Snapshot& s) {
    const CgroupStats* x = FindCgroup(s, cga.id());
    const CgroupStats* y = FindCgroup(s, cgb.id());
    return x && y && x->tcp.closes == 1 && y->tcp.closes == 1;
  });
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
  ASSERT_TRUE(ca && cb);
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
  const int family = GetParam();
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
  ASSERT_EQ(tx.Wait(), 0);  // all queued at the receiver before it reads
  GatedChild rx([&] {
    for (int i = 0; i < kDatagrams; ++i) {
      if (recv(sb, payload, kSize, 0) != static_cast<ssize_t>(kSize)) return 1;
    }
    return 0;
  });
  ASSERT_TRUE(cgb.Add(rx.pid()));
  rx.Release();
  ASSERT_EQ(rx.Wait(), 0);  // ground truth: it received all of them
  close(sa);
  close(sb);
  AwaitExits(tx.pid(), rx.pid());
  const NetStats& t = seen_[tx.pid()].net[WL_NET_NODE];
  const NetStats& r = seen_[rx.pid()].net[WL_NET_NODE];
  EXPECT_EQ(t.tx_packets, uint64_t{kDatagrams});
  EXPECT_EQ(t.tx_bytes, kDatagrams * kSize);
  EXPECT_EQ(r.rx_packets, uint64_t{kDatagrams});
  EXPECT_EQ(r.rx_bytes, kDatagrams * kSize);
  auto snap = agent_->store().Latest();
  EXPECT_EQ(FindCgroup(*snap, cga.id())->net[WL_NET_NODE].tx_packets,
            uint64_t{kDatagrams});
  EXPECT_EQ(FindCgroup(*snap, cgb.id())->net[WL_NET_NODE].rx_bytes,
            kDatagrams * kSize);
}

TEST_P(NetworkBpfTest, ConnectAcceptCloseCountsExact) {
  const int family = GetParam();
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
  AwaitExits(cli.pid(), srv.pid(), [&](const Snapshot& s) {
    const CgroupStats* x = FindCgroup(s, cga.id());
    const CgroupStats* y = FindCgroup(s, cgb.id());
    return x && y && x->tcp.closes == kConns && y->tcp.closes == kConns;
  });
  auto snap = agent_->store().Latest();
  const CgroupStats* c = FindCgroup(*snap, cga.id());
  const CgroupStats* s = FindCgroup(*snap, cgb.id());
  EXPECT_EQ(c->tcp.connects, uint64_t{kConns});
  EXPECT_EQ(c->tcp.accepts, 0u);
  EXPECT_EQ(c->tcp.closes, uint64_t{kConns});
  EXPECT_EQ(s->tcp.connects, 0u);
  EXPECT_EQ(s->tcp.accepts, uint64_t{kConns});
  EXPECT_EQ(s->tcp.closes, uint64_t{kConns});
  EXPECT_EQ(seen_[cli.pid()].tcp.connects, uint64_t{kConns});
  EXPECT_EQ(seen_[srv.pid()].tcp.accepts, uint64_t{kConns});
}

INSTANTIATE_TEST_SUITE_P(Families, NetworkBpfTest,
                         ::testing::Values(AF_INET, AF_INET6),
                         [](const auto& info) {
                           return info.param == AF_INET ? "IPv4" : "IPv6";
                         });

}  // namespace
}  // namespace wattlens
