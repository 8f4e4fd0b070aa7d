// SPDX-License-Identifier: Apache-2.0
// Owner of bpf/network.bpf.c: bytes, packets and TCP connection life per
// (process, cgroup, traffic class).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "agent/bpf/abi.h"
#include "agent/bpf/kernel_features.h"
#include "agent/bpf/map_reader.h"
#include "agent/bpf/network_classes.h"
#include "agent/bpf/pinning.h"
#include "agent/bpf/program_info.h"

struct network_bpf;

namespace wattlens {

struct NetworkProgramConfig {
  uint32_t map_entries = 16384;
  std::vector<Cidr> cluster_cidrs;  // pod and service CIDRs
  bool node_addresses_from_interfaces = true;
  // Where bytes come from (chosen by ChooseNetworkBytesSource). kOff loads
  // no byte-counting program: connection counts only, reported degraded.
  NetworkBytesSource bytes_source = NetworkBytesSource::kSockLength;
  std::vector<Cidr> extra_node_addresses;
  PinConfig pin;
};

class NetworkProgram {
 public:
  static absl::StatusOr<std::unique_ptr<NetworkProgram>> Create(
      const NetworkProgramConfig& config, int ncpus);
  ~NetworkProgram();
  NetworkProgram(const NetworkProgram&) = delete;
  NetworkProgram& operator=(const NetworkProgram&) = delete;

  // Replaces the LPM tries' contents (e.g. after interface addresses
  // changed).
  absl::Status LoadClasses(const std::vector<ClassRule>& rules);
  // Rebuilds the table from the config and current interface addresses.
  absl::Status RefreshClasses();
  // Replaces the `cluster` ranges (detected after start, when the Node
  // object arrives) and reloads the table.
  absl::Status SetClusterCidrs(std::vector<Cidr> cidrs);

  // Flushes every CPU's byte/packet cache into net_counts (wl_net_flush),
  // then reads it: every byte moved before the call is in the counts.
  absl::Status ReadCounts(
      const std::function<void(const wl_net_key&, const wl_net_val&)>& fn,
      MapReadStats* stats);
  absl::Status DeleteKeys(const std::vector<wl_net_key>& keys);
  absl::StatusOr<DropCounts> ReadDrops();
  std::vector<ProgramStats> ReadProgramStats();
  uint32_t map_capacity() const { return config_.map_entries; }
  // Empty when complete; otherwise what is not counted.
  const std::string& degraded_reason() const { return degraded_; }
  NetworkBytesSource bytes_source() const { return config_.bytes_source; }
  const ObjectPins& pins() const { return *pins_; }

 private:
  NetworkProgram(network_bpf* skel, int ncpus, NetworkProgramConfig config)
      : skel_(skel), ncpus_(ncpus), config_(std::move(config)) {}
  network_bpf* skel_;
  int ncpus_;
  NetworkProgramConfig config_;
  std::string degraded_;
  std::vector<ClassRule> loaded_;
  std::unique_ptr<ObjectPins> pins_;
};

}  // namespace wattlens
