// SPDX-License-Identifier: Apache-2.0
#include "agent/bpf/network_classes.h"

#include <sys/socket.h>

#include <fstream>
#include <sstream>

#include "agent/identity/k8s_json.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace wattlens {
namespace {

TEST(NetworkClassesTest, ParsesCidrsAndClearsHostBits) {
  auto c = ParseCidr("10.244.3.7/16");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->family, AF_INET);
  EXPECT_EQ(c->prefix_len, 16u);
  EXPECT_EQ(FormatCidr(*c), "10.244.0.0/16");
  EXPECT_EQ(FormatCidr(*ParseCidr("fd00:1::5/8")), "fd00::/8");
  EXPECT_EQ(FormatCidr(*ParseCidr("192.0.2.1")), "192.0.2.1/32");
  EXPECT_EQ(FormatCidr(*ParseCidr("::1")), "::1/128");
  EXPECT_EQ(FormatCidr(*ParseCidr("0.0.0.0/0")), "0.0.0.0/0");
}

TEST(NetworkClassesTest, RejectsMalformedInputWithAClearError) {
  for (const char* bad :
       {"", "10.0.0.0/33", "::/129", "10.0.0/8", "10.0.0.0/-1", "10.0.0.0/8x",
        "hello", "1.2.3.4/", "10.0.0.0//8"}) {
    auto c = ParseCidr(bad);
    EXPECT_FALSE(c.ok()) << bad;
    EXPECT_NE(std::string(c.status().message()).find(bad), std::string::npos)
        << "error should name the input: " << c.status();
  }
}

uint32_t ClassOf(const std::vector<ClassRule>& rules, const char* addr) {
  // Longest-prefix match, as the kernel's LPM trie does it.
  Cidr a = *ParseCidr(addr);
  int best = -1;
  uint32_t cls = WL_NET_INTERNET;
  for (const ClassRule& r : rules) {
    if (r.cidr.family != a.family) continue;
    bool match = true;
    for (uint32_t bit = 0; bit < r.cidr.prefix_len && match; ++bit) {
      uint8_t m = 0x80 >> (bit % 8);
      match = (r.cidr.addr[bit / 8] & m) == (a.addr[bit / 8] & m);
    }
    if (match && static_cast<int>(r.cidr.prefix_len) > best) {
      best = r.cidr.prefix_len;
      cls = r.net_class;
    }
  }
  return cls;
}

TEST(NetworkClassesTest, DefaultTableClassifiesByLongestPrefix) {
  auto rules =
      BuildClassTable({*ParseCidr("10.244.1.5")},
                      {*ParseCidr("10.244.0.0/16"), *ParseCidr("fd10::/48")});
  EXPECT_EQ(ClassOf(rules, "127.0.0.1"), uint32_t{WL_NET_NODE});
  EXPECT_EQ(ClassOf(rules, "::1"), uint32_t{WL_NET_NODE});
  EXPECT_EQ(ClassOf(rules, "10.244.1.5"), uint32_t{WL_NET_NODE});
  EXPECT_EQ(ClassOf(rules, "10.244.7.9"), uint32_t{WL_NET_CLUSTER});
  EXPECT_EQ(ClassOf(rules, "fd10::9"), uint32_t{WL_NET_CLUSTER});
  EXPECT_EQ(ClassOf(rules, "10.9.0.1"), uint32_t{WL_NET_PRIVATE});
  EXPECT_EQ(ClassOf(rules, "172.20.0.1"), uint32_t{WL_NET_PRIVATE});
  EXPECT_EQ(ClassOf(rules, "192.168.1.1"), uint32_t{WL_NET_PRIVATE});
  EXPECT_EQ(ClassOf(rules, "100.64.0.1"), uint32_t{WL_NET_PRIVATE});
  EXPECT_EQ(ClassOf(rules, "fd99::1"), uint32_t{WL_NET_PRIVATE});
  EXPECT_EQ(ClassOf(rules, "fe80::1"), uint32_t{WL_NET_PRIVATE});
  EXPECT_EQ(ClassOf(rules, "8.8.8.8"), uint32_t{WL_NET_INTERNET});
  EXPECT_EQ(ClassOf(rules, "2001:db8::1"), uint32_t{WL_NET_INTERNET});
  EXPECT_EQ(ClassOf(rules, "172.32.0.1"), uint32_t{WL_NET_INTERNET});
}

TEST(NetworkClassesTest, LaterRuleForTheSamePrefixWins) {
  // A cluster CIDR equal to a private range replaces it; node beats both.
  auto rules = BuildClassTable({}, {*ParseCidr("10.0.0.0/8")});
  EXPECT_EQ(ClassOf(rules, "10.1.2.3"), uint32_t{WL_NET_CLUSTER});
  size_t tens = 0;
  for (const auto& r : rules) tens += FormatCidr(r.cidr) == "10.0.0.0/8";
  EXPECT_EQ(tens, 1u);
}

TEST(NetworkClassesTest, NamesAreBounded) {
  EXPECT_STREQ(NetClassName(WL_NET_NODE), "node");
  EXPECT_STREQ(NetClassName(WL_NET_INTERNET), "internet");
  EXPECT_STREQ(NetClassName(99), "unknown");
}

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::string ReadNodeJson(const std::string& name) {
  std::ifstream f(std::string(WATTLENS_TESTDATA_DIR) + "/identity/k8s/" + name);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// (cidr, source, observed) for compact expectations.
std::vector<std::string> Describe(const ClusterCidrDetection& d) {
  std::vector<std::string> out;
  for (const ClusterCidr& c : d.cidrs) {
    out.push_back(FormatCidr(c.cidr) + " " + c.source + " " + c.observed);
  }
  return out;
}

TEST(ClusterCidrsTest, FromTheNodeObjectAndTheKubernetesService) {
  // The Node as the API server returns it (dual-stack), and the address the
  // kubelet gives every pod for the kubernetes Service.
  absl::StatusOr<identity::NodeMeta> node =
      identity::DecodeNode(ReadNodeJson("node_dualstack.json"));
  ASSERT_TRUE(node.ok()) << node.status();
  ClusterCidrInputs in;
  in.node_pod_cidrs = node->pod_cidrs;
  in.kubernetes_service_host = "10.96.0.1";
  ClusterCidrDetection d = DetectClusterCidrs(in);
  EXPECT_THAT(Describe(d),
              ElementsAre("10.244.0.0/16 node_spec 10.244.1.0/24",
                          "fd00:10:244::/48 node_spec fd00:10:244:1::/64",
                          "10.96.0.0/12 kubernetes_service 10.96.0.1"));
  EXPECT_TRUE(d.rejected.empty());

  // The classes the network program then loads: another node's pod and a
  // Service are cluster; a node-network peer stays private.
  std::vector<ClassRule> rules = BuildClassTable({}, CidrsOf(d));
  EXPECT_EQ(ClassOf(rules, "10.244.7.9"), uint32_t{WL_NET_CLUSTER});
  EXPECT_EQ(ClassOf(rules, "fd00:10:244:7::9"), uint32_t{WL_NET_CLUSTER});
  EXPECT_EQ(ClassOf(rules, "10.100.20.30"), uint32_t{WL_NET_CLUSTER});
  EXPECT_EQ(ClassOf(rules, "10.112.0.1"), uint32_t{WL_NET_PRIVATE});
  EXPECT_EQ(ClassOf(rules, "172.18.0.4"), uint32_t{WL_NET_PRIVATE});
  // Without detection, the same pod peer was billed as private traffic.
  EXPECT_EQ(ClassOf(BuildClassTable({}, {}), "10.244.7.9"),
            uint32_t{WL_NET_PRIVATE});
}

TEST(ClusterCidrsTest, ServiceRangeIsTheWidestAlignedBlockBelowTheClusterIp) {
  auto range = [](const char* host) {
    ClusterCidrInputs in;
    in.kubernetes_service_host = host;
    ClusterCidrDetection d = DetectClusterCidrs(in);
    return d.cidrs.empty() ? "rejected: " + d.rejected.at(0)
                           : FormatCidr(d.cidrs.at(0).cidr);
  };
  EXPECT_EQ(range("10.96.0.1"), "10.96.0.0/12");    // kubeadm default
  EXPECT_EQ(range("10.43.0.1"), "10.43.0.0/16");    // k3s default
  EXPECT_EQ(range("10.100.0.1"), "10.100.0.0/14");  // EKS /16: wider
  EXPECT_EQ(range("10.0.0.1"), "10.0.0.0/12");      // capped at 20 bits
  EXPECT_EQ(range("34.118.224.1"), "34.118.224.0/19");
  EXPECT_EQ(range("fd00:10:96::1"), "fd00:10:96::/108");
}

TEST(ClusterCidrsTest, AddressesThatAreNoServiceRangeAreRejectedAndSaid) {
  for (const char* host : {"kubernetes.default.svc", "10.0.0.10", "0.0.0.0",
                           "10.96.0.0/12", "::", "192.0.2.7", "10.96.1.0"}) {
    ClusterCidrInputs in;
    in.kubernetes_service_host = host;
    ClusterCidrDetection d = DetectClusterCidrs(in);
    EXPECT_TRUE(d.cidrs.empty())
        << host << " gave " << FormatCidr(d.cidrs[0].cidr);
    ASSERT_EQ(d.rejected.size(), 1u) << host;
    EXPECT_THAT(d.rejected[0], HasSubstr(host));
  }
}

TEST(ClusterCidrsTest, ConfiguredRangesAreUsedAlone) {
  ClusterCidrInputs in;
  in.configured = {*ParseCidr("10.8.0.0/14"), *ParseCidr("10.12.0.0/20")};
  in.node_pod_cidrs = {"10.244.1.0/24"};
  in.kubernetes_service_host = "10.96.0.1";
  EXPECT_THAT(Describe(DetectClusterCidrs(in)),
              ElementsAre("10.8.0.0/14 configured 10.8.0.0/14",
                          "10.12.0.0/20 configured 10.12.0.0/20"));
}

TEST(ClusterCidrsTest, NothingKnownAndBadNodeValues) {
  EXPECT_TRUE(DetectClusterCidrs({}).cidrs.empty());
  ClusterCidrInputs in;
  // A bare address is no range; garbage is said, not fatal; a duplicate
  // (both node ranges widen to the same /16) is loaded once.
  in.node_pod_cidrs = {"10.244.1.7", "not-a-cidr", "10.244.1.0/24",
                       "10.244.2.0/24"};
  ClusterCidrDetection d = DetectClusterCidrs(in);
  EXPECT_THAT(Describe(d),
              ElementsAre("10.244.0.0/16 node_spec 10.244.1.0/24"));
  EXPECT_EQ(d.rejected.size(), 2u);
  // A node range already wider than the widening target is kept as it is.
  in.node_pod_cidrs = {"10.128.0.0/14"};
  EXPECT_THAT(Describe(DetectClusterCidrs(in)),
              ElementsAre("10.128.0.0/14 node_spec 10.128.0.0/14"));
}

}  // namespace
}  // namespace wattlens
