// SPDX-License-Identifier: Apache-2.0
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

// Where a `cluster` range came from (wattlens_agent_cluster_cidrs_info).
inline constexpr char kCidrConfigured[] = "configured";
inline constexpr char kCidrNodeSpec[] = "node_spec";
inline constexpr char kCidrKubernetesService[] = "kubernetes_service";

// Node pod ranges are slices of the cluster's pod range: each is widened to
// this prefix so that pods on other nodes are `cluster` too. /16 is the
// cluster range of kubeadm (flannel, kind), k3s and AKS kubenet defaults.
inline constexpr uint32_t kPodRangePrefixV4 = 16;
inline constexpr uint32_t kPodRangePrefixV6 = 48;
// The API server refuses service ranges wider than 20 host bits.
inline constexpr uint32_t kWidestServiceRangeV4 = 12;
inline constexpr uint32_t kWidestServiceRangeV6 = 108;

struct ClusterCidrInputs {
  std::vector<Cidr> configured;             // --cluster_cidrs
  std::vector<std::string> node_pod_cidrs;  // the Node's spec.podCIDRs
  std::string kubernetes_service_host;      // $KUBERNETES_SERVICE_HOST
  friend bool operator==(const ClusterCidrInputs&,
                         const ClusterCidrInputs&) = default;
};

struct ClusterCidr {
  Cidr cidr;
  std::string source;    // kCidrConfigured, kCidrNodeSpec, ...
  std::string observed;  // what it was derived from
  friend bool operator==(const ClusterCidr&, const ClusterCidr&) = default;
};

struct ClusterCidrDetection {
  std::vector<ClusterCidr> cidrs;     // empty: no cluster range known
  std::vector<std::string> rejected;  // inputs that gave none, and why
};

// The ranges classed `cluster`. Configured ranges are used alone. Otherwise:
//  - each of the Node's spec.podCIDRs, widened to kPodRangePrefixV4/V6 (a
//    heuristic: exact for clusters whose pod range is that size, wider or
//    narrower otherwise; --cluster_cidrs is exact);
//  - the service range: the kubernetes Service's ClusterIP (given to every
//    pod as $KUBERNETES_SERVICE_HOST) is the first address of the range, so
//    the range starts one below it; its size is the largest block aligned
//    there that the API server would accept (10.96.0.1 -> 10.96.0.0/12,
//    10.43.0.1 -> 10.43.0.0/16). An address that is not one above such a
//    block (a host name, an external API server address) is rejected.
ClusterCidrDetection DetectClusterCidrs(const ClusterCidrInputs& in);
std::vector<Cidr> CidrsOf(const ClusterCidrDetection& d);

}  // namespace wattlens
