#include "agent/bpf/network_classes.h"

#include <sys/socket.h>

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

}  // namespace
}  // namespace wattlens
