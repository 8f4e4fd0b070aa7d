// SPDX-License-Identifier: Apache-2.0
// In-process cluster for integration tests: a collector on 127.0.0.1:0 and
// fake agents whose uploaders stream synthetic cumulative counters. Each fake
// agent remembers exactly what it produced, so tests compare cluster totals
// against the truth.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "agent/common/clock.h"
#include "agent/export/uploader.h"
#include "collector/collector.h"
#include "collector/counters.h"
#include "google/protobuf/util/time_util.h"

namespace wattlens::testing {

// Writes <dir>/ca.crt + ca.key (CN=<ca_cn>) and, for each name, <name>.crt
// and <name>.key signed by it (CN and DNS SAN = name), with the openssl CLI.
// A name may end in ":reader" (URI SAN spiffe://wattlens/reader) or ":none"
// (no role URI); otherwise the certificate has the agent role (URI SAN
// spiffe://wattlens/agent). Files are named without the suffix.
// Returns whether it worked.
inline bool MakeTestCertificates(const std::string& dir,
                                 const std::string& ca_cn,
                                 const std::vector<std::string>& names) {
  std::string list;
  for (const std::string& n : names) {
    list += n.find(':') == std::string::npos ? n + ":agent " : n + " ";
  }
  const std::string script =
      "set -e; cd " + dir +
      "; openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 "
      "-nodes -keyout ca.key -out ca.crt -days 2 -subj /CN=" +
      ca_cn + " 2>/dev/null; for nr in " + list +
      "; do n=${nr%%:*}; r=${nr#*:}; "
      "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 "
      "-nodes -keyout $n.key -out $n.csr -subj /CN=$n 2>/dev/null; "
      "san=DNS:$n; if [ $r != none ]; then "
      "san=$san,URI:spiffe://wattlens/$r; fi; "
      "printf 'subjectAltName=%s\\n' $san > $n.ext; "
      "openssl x509 -req -in $n.csr -CA ca.crt -CAkey ca.key "
      "-CAcreateserial -out $n.crt -days 2 -extfile $n.ext 2>/dev/null; "
      "done";
  const std::string path = dir + "/make-certs.sh";
  std::ofstream(path) << script << "\n";
  return std::system(("bash " + path).c_str()) == 0;
}

struct FakeWorkload {
  std::string path;
  std::string ns, pod, container, workload_kind, workload;
  uint64_t cgroup_id = 0;
  collector::Counters cumulative;  // since the current epoch
};

class FakeAgent {
 public:
  FakeAgent(std::string node, const FakeClock& clock, uint64_t seed)
      : node_(std::move(node)), clock_(clock), rng_(seed) {
    epoch_ = NextEpoch();
    auto add = [&](std::string path, std::string ns = "", std::string pod = "",
                   std::string kind = "", std::string workload = "") {
      FakeWorkload w;
      w.path = std::move(path);
      w.ns = std::move(ns);
      w.pod = pod;
      w.container = pod.empty() ? "" : "app";
      w.workload_kind = std::move(kind);
      w.workload = std::move(workload);
      w.cgroup_id = workloads_.size() + 100;
      workloads_.push_back(std::move(w));
    };
    add("/system.slice/sshd.service");
    add("/system.slice/containerd.service");
    add("/user.slice/user-0.slice/session-1.scope");
    add("/kubepods.slice/pod-" + node_ + "-web", "shop", "web-" + node_,
        "Deployment", "web");
    add("/kubepods.slice/pod-" + node_ + "-db", "shop", "db-" + node_,
        "StatefulSet", "db");
  }

  const std::string& node() const { return node_; }
  uint64_t epoch() const { return epoch_; }
  uint64_t sequence() const { return sequence_; }

  // One interval of activity; adds to the truth.
  void Step() {
    for (FakeWorkload& w : workloads_) {
      collector::Counters d;
      d.cpu_ns = rng_() % 3'000'000'000ull;
      d.syscalls = rng_() % 100000;
      d.syscall_errors = d.syscalls / 7;
      d.net_tx_bytes = rng_() % 1'000'000;
      d.net_rx_bytes = rng_() % 2'000'000;
      d.energy_uj = rng_() % 5'000'000;
      w.cumulative.Add(d);
      produced_[w.path].Add(d);
      produced_total_.Add(d);
    }
    ++sequence_;
  }

  // The agent restarts: new epoch, counters from zero.
  void Restart() {
    epoch_ = NextEpoch();
    sequence_ = 0;
    for (FakeWorkload& w : workloads_) w.cumulative = {};
  }

  std::optional<wattlens::v1::NodeReport> Build() const {
    if (sequence_ == 0) return std::nullopt;
    wattlens::v1::NodeReport r;
    r.set_node_name(node_);
    r.set_epoch(epoch_);
    r.set_sequence(sequence_);
    *r.mutable_time() =
        google::protobuf::util::TimeUtil::NanosecondsToTimestamp(
            clock_.RealtimeNs());
    r.mutable_interval()->set_seconds(10);
    for (const FakeWorkload& w : workloads_) {
      auto* wc = r.add_workloads();
      auto* id = wc->mutable_identity();
      id->set_cgroup_path(w.path);
      id->set_cgroup_id(w.cgroup_id);
      const auto slash = w.path.rfind('/');
      const std::string last = w.path.substr(slash + 1);
      if (w.pod.empty()) id->set_systemd_unit(last);
      id->set_namespace_(w.ns);
      id->set_pod(w.pod);
      id->set_container(w.container);
      id->set_workload_kind(w.workload_kind);
      id->set_workload(w.workload);
      wc->set_cpu_nanoseconds(w.cumulative.cpu_ns);
      wc->set_syscalls(w.cumulative.syscalls);
      wc->set_syscall_errors(w.cumulative.syscall_errors);
      auto* n = wc->add_network();
      n->set_network_class(wattlens::v1::NETWORK_CLASS_CLUSTER);
      n->set_transmit_bytes(w.cumulative.net_tx_bytes);
      n->set_receive_bytes(w.cumulative.net_rx_bytes);
      auto* e = wc->add_energy();
      e->set_zone(wattlens::v1::ENERGY_ZONE_PACKAGE);
      e->set_mode(wattlens::v1::ENERGY_MODE_DYNAMIC);
      e->set_microjoules(w.cumulative.energy_uj);
    }
    r.mutable_power()->set_source(wattlens::v1::POWER_SOURCE_MODEL);
    r.mutable_power()->set_watts(42.5);
    return r;
  }

  const collector::Counters& produced_total() const { return produced_total_; }
  const std::map<std::string, collector::Counters>& produced() const {
    return produced_;
  }

 private:
  uint64_t NextEpoch() {
    static uint64_t next = 1'700'000'000'000'000'000ull;
    return ++next;
  }

  const std::string node_;
  const FakeClock& clock_;
  std::mt19937_64 rng_;
  uint64_t epoch_ = 0;
  uint64_t sequence_ = 0;
  std::vector<FakeWorkload> workloads_;
  std::map<std::string, collector::Counters> produced_;
  collector::Counters produced_total_;
};

}  // namespace wattlens::testing
