// SPDX-License-Identifier: Apache-2.0
#include "agent/bpf/network_classes.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace wattlens {

absl::StatusOr<Cidr> ParseCidr(const std::string& text) {
  Cidr c;
  std::string addr = text;
  int max_len = 0;
  size_t slash = text.find('/');
  if (slash != std::string::npos) addr = text.substr(0, slash);
  if (inet_pton(AF_INET, addr.c_str(), c.addr.data()) == 1) {
    c.family = AF_INET;
    max_len = 32;
  } else if (inet_pton(AF_INET6, addr.c_str(), c.addr.data()) == 1) {
    c.family = AF_INET6;
    max_len = 128;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("not an IP address or CIDR: \"", text, "\""));
  }
  c.prefix_len = max_len;
  if (slash != std::string::npos) {
    uint32_t len;
    if (!absl::SimpleAtoi(text.substr(slash + 1), &len) ||
        len > static_cast<uint32_t>(max_len)) {
      return absl::InvalidArgumentError(
          absl::StrCat("bad prefix length in \"", text, "\""));
    }
    c.prefix_len = len;
  }
  for (uint32_t bit = c.prefix_len; bit < static_cast<uint32_t>(max_len);
       ++bit) {
    c.addr[bit / 8] &= ~(0x80 >> (bit % 8));
  }
  return c;
}

std::string FormatCidr(const Cidr& c) {
  char buf[INET6_ADDRSTRLEN];
  inet_ntop(c.family, c.addr.data(), buf, sizeof(buf));
  return absl::StrCat(buf, "/", c.prefix_len);
}

const char* NetClassName(uint32_t net_class) {
  switch (net_class) {
    case WL_NET_NODE:
      return "node";
    case WL_NET_CLUSTER:
      return "cluster";
    case WL_NET_PRIVATE:
      return "private";
    case WL_NET_INTERNET:
      return "internet";
    default:
      return "unknown";
  }
}

namespace {

uint32_t AddressBits(const Cidr& c) { return c.family == AF_INET ? 32 : 128; }

Cidr Widen(Cidr c, uint32_t prefix_len) {
  if (c.prefix_len <= prefix_len) return c;
  c.prefix_len = prefix_len;
  for (uint32_t bit = prefix_len; bit < AddressBits(c); ++bit) {
    c.addr[bit / 8] &= ~(0x80 >> (bit % 8));
  }
  return c;
}

absl::StatusOr<Cidr> ServiceRangeBelow(const std::string& host) {
  if (host.find('/') != std::string::npos) {
    return absl::InvalidArgumentError("a CIDR, not an address");
  }
  absl::StatusOr<Cidr> ip = ParseCidr(host);
  if (!ip.ok()) return absl::InvalidArgumentError("not an IP address");
  Cidr n = *ip;
  const uint32_t bits = AddressBits(n);
  const uint32_t bytes = bits / 8;
  // n - 1, big-endian.
  int i = static_cast<int>(bytes) - 1;
  while (i >= 0 && n.addr[i] == 0) n.addr[i--] = 0xff;
  if (i < 0) return absl::InvalidArgumentError("the zero address");
  --n.addr[i];
  uint32_t trailing_zeros = 0;
  for (int b = static_cast<int>(bits) - 1; b >= 0; --b) {
    if (n.addr[b / 8] & (0x80 >> (b % 8))) break;
    ++trailing_zeros;
  }
  const uint32_t widest =
      n.family == AF_INET ? kWidestServiceRangeV4 : kWidestServiceRangeV6;
  n.prefix_len = std::max(bits - trailing_zeros, widest);
  // A /29 or narrower block is no evidence of a service range: the address
  // is then most likely not the range's first.
  if (n.prefix_len > bits - 4) {
    return absl::InvalidArgumentError(
        "not the first address of an aligned range");
  }
  return Widen(n, n.prefix_len);
}

}  // namespace

ClusterCidrDetection DetectClusterCidrs(const ClusterCidrInputs& in) {
  ClusterCidrDetection d;
  if (!in.configured.empty()) {
    for (const Cidr& c : in.configured) {
      d.cidrs.push_back({c, kCidrConfigured, FormatCidr(c)});
    }
    return d;
  }
  auto add = [&d](ClusterCidr c) {
    for (const ClusterCidr& have : d.cidrs) {
      if (have.cidr == c.cidr) return;
    }
    d.cidrs.push_back(std::move(c));
  };
  for (const std::string& text : in.node_pod_cidrs) {
    absl::StatusOr<Cidr> c = ParseCidr(text);
    if (!c.ok() || text.find('/') == std::string::npos) {
      d.rejected.push_back(
          absl::StrCat("node spec.podCIDRs \"", text, "\": not a CIDR"));
      continue;
    }
    add({Widen(*c,
               c->family == AF_INET ? kPodRangePrefixV4 : kPodRangePrefixV6),
         kCidrNodeSpec, text});
  }
  if (!in.kubernetes_service_host.empty()) {
    absl::StatusOr<Cidr> c = ServiceRangeBelow(in.kubernetes_service_host);
    if (c.ok()) {
      add({*c, kCidrKubernetesService, in.kubernetes_service_host});
    } else {
      d.rejected.push_back(absl::StrCat("KUBERNETES_SERVICE_HOST \"",
                                        in.kubernetes_service_host,
                                        "\": ", c.status().message()));
    }
  }
  return d;
}

std::vector<Cidr> CidrsOf(const ClusterCidrDetection& d) {
  std::vector<Cidr> out;
  out.reserve(d.cidrs.size());
  for (const ClusterCidr& c : d.cidrs) out.push_back(c.cidr);
  return out;
}

std::vector<ClassRule> BuildClassTable(const std::vector<Cidr>& node_addresses,
                                       const std::vector<Cidr>& cluster) {
  std::vector<ClassRule> rules;
  auto add = [&](const char* cidr, uint32_t cls) {
    rules.push_back({*ParseCidr(cidr), cls});
  };
  // Private ranges first; longer, more specific prefixes win in the trie
  // regardless of insertion order.
  for (const char* p :
       {"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10",
        "169.254.0.0/16", "fc00::/7", "fe80::/10"}) {
    add(p, WL_NET_PRIVATE);
  }
  for (const Cidr& c : cluster) rules.push_back({c, WL_NET_CLUSTER});
  add("127.0.0.0/8", WL_NET_NODE);
  add("::1/128", WL_NET_NODE);
  for (const Cidr& c : node_addresses) rules.push_back({c, WL_NET_NODE});
  // A later rule for the same prefix overrides an earlier one.
  std::vector<ClassRule> out;
  for (const ClassRule& r : rules) {
    bool replaced = false;
    for (ClassRule& o : out) {
      if (o.cidr == r.cidr) {
        o.net_class = r.net_class;
        replaced = true;
      }
    }
    if (!replaced) out.push_back(r);
  }
  return out;
}

std::vector<Cidr> LocalAddresses() {
  std::vector<Cidr> out;
  ifaddrs* ifs = nullptr;
  if (getifaddrs(&ifs) != 0) return out;
  for (ifaddrs* i = ifs; i; i = i->ifa_next) {
    if (!i->ifa_addr) continue;
    Cidr c;
    if (i->ifa_addr->sa_family == AF_INET) {
      c.family = AF_INET;
      c.prefix_len = 32;
      std::memcpy(c.addr.data(),
                  &reinterpret_cast<sockaddr_in*>(i->ifa_addr)->sin_addr, 4);
    } else if (i->ifa_addr->sa_family == AF_INET6) {
      c.family = AF_INET6;
      c.prefix_len = 128;
      std::memcpy(c.addr.data(),
                  &reinterpret_cast<sockaddr_in6*>(i->ifa_addr)->sin6_addr, 16);
    } else {
      continue;
    }
    out.push_back(c);
  }
  freeifaddrs(ifs);
  return out;
}

}  // namespace wattlens
