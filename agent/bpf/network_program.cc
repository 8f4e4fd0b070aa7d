// SPDX-License-Identifier: Apache-2.0
#include "agent/bpf/network_program.h"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <sys/socket.h>

#include <cstring>

#include "absl/strings/str_cat.h"
#include "agent/bpf/libbpf_log.h"
#include "agent/common/status_macros.h"
#include "network.skel.h"

namespace wattlens {

absl::StatusOr<std::unique_ptr<NetworkProgram>> NetworkProgram::Create(
    const NetworkProgramConfig& config, int ncpus) {
  network_bpf* skel = network_bpf__open();
  if (!skel) return absl::ErrnoToStatus(errno, "opening network BPF object");
  std::unique_ptr<NetworkProgram> owner(
      new NetworkProgram(skel, ncpus, config));
  int err = bpf_map__set_max_entries(skel->maps.net_counts, config.map_entries);
  if (err) return LibbpfError(err, "sizing net_counts");
  // One byte source is loaded (chosen from the kernel's features by the
  // caller); the other's programs stay out of the kernel.
  const NetworkBytesSource source = config.bytes_source;
  if (source == NetworkBytesSource::kOff) {
    owner->degraded_ =
        "network byte counting switched off: TCP connection counts only";
  }
  const bool tracepoints = source == NetworkBytesSource::kSockLength;
  const bool syscalls = source == NetworkBytesSource::kSyscalls;
  bpf_program__set_autoload(skel->progs.wl_sock_send, tracepoints);
  bpf_program__set_autoload(skel->progs.wl_sock_recv, tracepoints);
  bpf_program__set_autoload(skel->progs.wl_net_sys_exit, syscalls);
  skel->rodata->owner_by_addr = syscalls;
  bpf_map__set_autocreate(skel->maps.sock_owners_by_addr, syscalls);
  // wl_net_flush is run on demand (ReadCounts), never attached.
  bpf_program__set_autoattach(skel->progs.wl_net_flush, false);
  size_t elf_size = 0;
  const void* elf = network_bpf__elf_bytes(&elf_size);
  owner->pins_ = ObjectPins::Prepare(config.pin, "network", skel->obj, elf,
                                     elf_size, absl::StrCat(syscalls));
  LibbpfLogCapture log;
  if ((err = network_bpf__load(skel))) {
    return log.Error(err, absl::StrCat("loading the network BPF object (",
                                       NetworkBytesSourceName(source), ")"));
  }
  RETURN_IF_ERROR(owner->RefreshClasses());
  RETURN_IF_ERROR(owner->pins_->Attach(skel->obj));
  return owner;
}

NetworkProgram::~NetworkProgram() {
  pins_.reset();  // links first: they hold the programs
  network_bpf__destroy(skel_);
}

absl::Status NetworkProgram::RefreshClasses() {
  std::vector<Cidr> node = config_.extra_node_addresses;
  if (config_.node_addresses_from_interfaces) {
    for (const Cidr& c : LocalAddresses()) node.push_back(c);
  }
  std::vector<ClassRule> rules = BuildClassTable(node, config_.cluster_cidrs);
  if (rules.size() == loaded_.size()) {
    bool same = true;
    for (size_t i = 0; i < rules.size() && same; ++i) {
      same = rules[i].cidr == loaded_[i].cidr &&
             rules[i].net_class == loaded_[i].net_class;
    }
    if (same) return absl::OkStatus();
  }
  return LoadClasses(rules);
}

absl::Status NetworkProgram::SetClusterCidrs(std::vector<Cidr> cidrs) {
  config_.cluster_cidrs = std::move(cidrs);
  return RefreshClasses();
}

absl::Status NetworkProgram::LoadClasses(const std::vector<ClassRule>& rules) {
  int v4 = bpf_map__fd(skel_->maps.class_v4);
  int v6 = bpf_map__fd(skel_->maps.class_v6);
  // Insert the new rules first, then remove prefixes no longer wanted, so a
  // lookup never sees an empty table.
  for (const ClassRule& r : rules) {
    if (r.cidr.family == AF_INET) {
      wl_lpm_v4_key k{r.cidr.prefix_len, {}};
      std::memcpy(k.addr, r.cidr.addr.data(), 4);
      if (bpf_map_update_elem(v4, &k, &r.net_class, BPF_ANY) != 0) {
        return absl::ErrnoToStatus(errno,
                                   "loading IPv4 class " + FormatCidr(r.cidr));
      }
    } else {
      wl_lpm_v6_key k{r.cidr.prefix_len, {}};
      std::memcpy(k.addr, r.cidr.addr.data(), 16);
      if (bpf_map_update_elem(v6, &k, &r.net_class, BPF_ANY) != 0) {
        return absl::ErrnoToStatus(errno,
                                   "loading IPv6 class " + FormatCidr(r.cidr));
      }
    }
  }
  for (const ClassRule& old : loaded_) {
    bool kept = false;
    for (const ClassRule& r : rules) kept |= r.cidr == old.cidr;
    if (kept) continue;
    if (old.cidr.family == AF_INET) {
      wl_lpm_v4_key k{old.cidr.prefix_len, {}};
      std::memcpy(k.addr, old.cidr.addr.data(), 4);
      bpf_map_delete_elem(v4, &k);
    } else {
      wl_lpm_v6_key k{old.cidr.prefix_len, {}};
      std::memcpy(k.addr, old.cidr.addr.data(), 16);
      bpf_map_delete_elem(v6, &k);
    }
  }
  loaded_ = rules;
  return absl::OkStatus();
}

absl::Status NetworkProgram::ReadCounts(
    const std::function<void(const wl_net_key&, const wl_net_val&)>& fn,
    MapReadStats* stats) {
  RETURN_IF_ERROR(
      FlushPerCpuCaches(bpf_program__fd(skel_->progs.wl_net_flush), ncpus_));
  return ReadPerCpuMap<wl_net_key, wl_net_val>(
      bpf_map__fd(skel_->maps.net_counts), ncpus_, config_.map_entries, fn,
      stats);
}

absl::Status NetworkProgram::DeleteKeys(const std::vector<wl_net_key>& keys) {
  return DeleteMapKeys(bpf_map__fd(skel_->maps.net_counts), keys.data(),
                       sizeof(wl_net_key), keys.size());
}

absl::StatusOr<DropCounts> NetworkProgram::ReadDrops() {
  return ReadDropCounts(skel_->maps.drops, ncpus_);
}

std::vector<ProgramStats> NetworkProgram::ReadProgramStats() {
  return wattlens::ReadProgramStats(skel_->obj);
}

}  // namespace wattlens
