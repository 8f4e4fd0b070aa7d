// Traffic classes by peer address: the prefixes the agent loads into the
// network program's LPM tries. Longest prefix wins, no match is `internet`.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "agent/bpf/abi.h"

namespace wattlens {

struct Cidr {
  int family = 0;                  // AF_INET or AF_INET6
  std::array<uint8_t, 16> addr{};  // network byte order; IPv4 in the first 4
  uint32_t prefix_len = 0;
  friend bool operator==(const Cidr&, const Cidr&) = default;
};

// "10.244.0.0/16", "fd00::/8", or a bare address (a host prefix). Host bits
// beyond the prefix are cleared.
absl::StatusOr<Cidr> ParseCidr(const std::string& text);
std::string FormatCidr(const Cidr& c);

const char* NetClassName(uint32_t net_class);  // "node", "cluster", ...

struct ClassRule {
  Cidr cidr;
  uint32_t net_class = WL_NET_INTERNET;
};

// The default table: loopback and `node_addresses` are node, `cluster` CIDRs
// are cluster, RFC 1918 / RFC 6598 / link-local / ULA are private.
std::vector<ClassRule> BuildClassTable(const std::vector<Cidr>& node_addresses,
                                       const std::vector<Cidr>& cluster);

// This host's interface addresses (getifaddrs), as host prefixes.
std::vector<Cidr> LocalAddresses();

}  // namespace wattlens
