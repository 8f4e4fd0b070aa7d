// SPDX-License-Identifier: Apache-2.0
// What the identity stage adds to each agent interval on a busy node: 200
// pods (pod cgroup, sandbox and 2 containers each, metadata in the pod
// cache) plus 40 host services, 840 cgroups in all. Steady state: every
// benchmark iteration is one interval with all counters grown.
//   build/bin/identity_stage_bench
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "agent/common/clock.h"
#include "agent/export/prometheus_collectable.h"
#include "agent/export/workload_series.h"
#include "agent/identity/owner_resolver.h"
#include "agent/identity/pod_cache.h"
#include "agent/identity/project_map.h"
#include "agent/identity/workload_identity.h"
#include "agent/state/resources.h"
#include "benchmark/benchmark.h"

namespace wattlens {
namespace {

constexpr int kPods = 200;
constexpr int kUnits = 40;

std::string Uid(int p) {
  return absl::StrFormat("%08x-0000-4000-8000-%012x", p, p);
}
std::string Cid(int p, int k) { return absl::StrFormat("%056x%08x", p, k); }

struct Node {
  FakeClock clock;
  identity::PodCache cache{clock};
  Snapshot snapshot;
  Node() {
    std::vector<identity::PodInfo> pods;
    uint64_t id = 100;
    for (int p = 0; p < kPods; ++p) {
      identity::PodInfo pod;
      pod.uid = Uid(p);
      pod.name = absl::StrCat("app", p / 4, "-7c9f6d5b8-", p);
      pod.namespace_name = absl::StrCat("ns", (p / 4) % 20);
      pod.labels = {{"pod-template-hash", "7c9f6d5b8"}};
      pod.owners = {
          {"ReplicaSet", absl::StrCat("app", p / 4, "-7c9f6d5b8"), "rs", true}};
      std::string under = Uid(p);
      for (char& c : under) c = c == '-' ? '_' : c;
      const std::string pod_path =
          "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" +
          under + ".slice";
      CgroupStats pc;
      pc.id = id++;
      pc.path = pod_path;
      snapshot.cgroups.push_back(pc);
      for (int k = 0; k <= 2; ++k) {
        if (k > 0) {
          identity::ContainerInfo c;
          c.name = absl::StrCat("c", k);
          c.image = k == 1 ? "docker.io/library/postgres:16" : "nginx:1.27";
          c.container_id = Cid(p, k);
          c.requests.cpu_millis = 250;
          c.requests.memory_bytes = 64 << 20;
          pod.containers.push_back(c);
        }
        CgroupStats cc;
        cc.id = id++;
        cc.path = pod_path + "/cri-containerd-" + Cid(p, k) + ".scope";
        cc.live_processes = 1;
        snapshot.cgroups.push_back(cc);
      }
      pod.workload = identity::ResolveWorkload(pod);
      pods.push_back(std::move(pod));
    }
    cache.ReplaceAll(std::move(pods));
    for (int u = 0; u < kUnits; ++u) {
      CgroupStats c;
      c.id = id++;
      c.path = absl::StrCat("/system.slice/svc", u, ".service");
      snapshot.cgroups.push_back(c);
    }
    snapshot.energy.enabled = true;
  }
  // One interval of growth everywhere.
  void Grow(uint64_t i) {
    snapshot.energy.workloads.clear();
    for (CgroupStats& c : snapshot.cgroups) {
      c.cpu_ns += 1'000'000 + c.id;
      c.syscalls += 100;
      c.net[1].tx_bytes += 1000;
      c.net[1].rx_bytes += 2000;
      c.tcp.accepts += i % 2;
      for (const char* zone : {"package", "dram"}) {
        snapshot.energy.workloads.push_back(
            {c.id, c.path, zone, c.cpu_ns / 1000, 0, 0, 0});
      }
    }
  }
};

void BM_IdentityLabel(benchmark::State& state) {
  Node node;
  identity::WorkloadIdentityOptions o;
  o.read_exe = [](uint32_t) { return std::optional<std::string>(); };
  identity::WorkloadIdentifier id(&node.cache, &identity::ProjectMap::Shipped(),
                                  o);
  id.Label(&node.snapshot);  // first sight: parse and project per cgroup
  for (auto _ : state) id.Label(&node.snapshot);
  state.counters["cgroups"] = node.snapshot.cgroups.size();
}
BENCHMARK(BM_IdentityLabel)->Unit(benchmark::kMicrosecond);

void BM_IdentityFirstSight(benchmark::State& state) {
  Node node;
  identity::WorkloadIdentityOptions o;
  o.read_exe = [](uint32_t) { return std::optional<std::string>(); };
  for (auto _ : state) {
    identity::WorkloadIdentifier id(&node.cache,
                                    &identity::ProjectMap::Shipped(), o);
    id.Label(&node.snapshot);
  }
}
BENCHMARK(BM_IdentityFirstSight)->Unit(benchmark::kMicrosecond);

void BM_ResourceAccounting(benchmark::State& state) {
  Node node;
  // The file reads are faked: this is the bookkeeping; the real cost adds
  // two small cgroupfs reads per cgroup.
  ResourceAccounting acc("/cg", 0, [](const std::string& p) {
    return std::optional<std::string>(
        p.back() == 't' ? "8388608\n" : "anon 1\ninactive_file 4096\n");
  });
  int64_t now = 0;
  for (auto _ : state) acc.Update(now += 1'000'000'000, &node.snapshot);
}
BENCHMARK(BM_ResourceAccounting)->Unit(benchmark::kMicrosecond);

void BM_SeriesAndScrape(benchmark::State& state) {
  Node node;
  identity::WorkloadIdentityOptions o;
  o.read_exe = [](uint32_t) { return std::optional<std::string>(); };
  identity::WorkloadIdentifier id(&node.cache, &identity::ProjectMap::Shipped(),
                                  o);
  id.Label(&node.snapshot);
  WorkloadSeries series;
  uint64_t i = 0;
  size_t bytes = 0;
  for (auto _ : state) {
    node.Grow(++i);
    series.Update(&node.snapshot);
    bytes = RenderSnapshotText(node.snapshot, {}).size();
  }
  state.counters["series"] = node.snapshot.rows.series;
  state.counters["scrape_bytes"] = bytes;
  state.SetLabel(node.snapshot.rows.level);
}
BENCHMARK(BM_SeriesAndScrape)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace wattlens

BENCHMARK_MAIN();
