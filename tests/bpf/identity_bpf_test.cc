// SPDX-License-Identifier: Apache-2.0
// Workload identity from real cgroups: directories named exactly as
// containerd (systemd driver) and CRI-O (cgroupfs driver) name them for two
// pods, busy children moved in, and the agent's report attributes CPU
// seconds and syscalls to the right pod UID and container id.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include <map>
#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "agent/export/node_report.h"
#include "agent/state/resources.h"
#include "tests/bpf/bpf_test_util.h"
#include "tests/unit/identity/k8s_replay.h"

namespace wattlens {
namespace {

using testing::DrainUntil;
using testing::FindCgroup;
using testing::FindExited;
using testing::GatedChild;
using testing::TestAgentConfig;

constexpr char kUidA[] = "3f2b6d1e-8a4c-4e8f-9b7d-2c1a0e9f8d7c";
constexpr char kUidB[] = "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d";
const std::string kIdA(64, 'a');
const std::string kIdB = std::string(32, 'b') + std::string(32, 'c');

// Creates every directory of `rel` under the cgroup v2 mount; removes them
// (deepest first) on scope exit.
class CgroupTree {
 public:
  explicit CgroupTree(const std::string& rel) {
    auto mount = FindCgroup2Mount("/proc");
    if (!mount.ok()) return;
    std::string path = *mount;
    size_t pos = 1;
    while (pos <= rel.size()) {
      size_t next = rel.find('/', pos);
      if (next == std::string::npos) next = rel.size();
      path += "/" + rel.substr(pos, next - pos);
      if (mkdir(path.c_str(), 0755) != 0 && errno != EEXIST) return;
      made_.push_back(path);
      pos = next + 1;
    }
    leaf_ = path;
  }
  ~CgroupTree() {
    for (auto it = made_.rbegin(); it != made_.rend(); ++it) rmdir(it->c_str());
  }
  bool Add(pid_t pid) const {
    std::ofstream f(leaf_ + "/cgroup.procs");
    f << pid << std::flush;
    return f.good();
  }
  uint64_t id() const {
    struct stat st;
    return stat(leaf_.c_str(), &st) == 0 ? st.st_ino : 0;
  }
  bool ok() const { return !leaf_.empty(); }

 private:
  std::vector<std::string> made_;
  std::string leaf_;
};

std::string Underscored(std::string uid) {
  for (char& c : uid) c = c == '-' ? '_' : c;
  return uid;
}

int Busy(int syscalls) {
  for (int i = 0; i < syscalls; ++i) syscall(SYS_getppid);
  timespec t0, t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t0);
  do {
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  } while ((t.tv_sec - t0.tv_sec) * 1'000'000'000L + t.tv_nsec - t0.tv_nsec <
           300'000'000L);
  return 0;
}

TEST(IdentityBpfTest, PodUidAndContainerIdFromContainerdAndCrioCgroups) {
  WATTLENS_REQUIRE_BPF_OR_SKIP();
  const std::string tag = std::to_string(getpid());
  // containerd, systemd driver; CRI-O, cgroupfs driver. Under a per-run
  // parent so a host's real kubepods hierarchy is never touched.
  CgroupTree a("/wl-id-" + tag +
               "/kubepods.slice/kubepods-burstable.slice/"
               "kubepods-burstable-pod" +
               Underscored(kUidA) + ".slice/cri-containerd-" + kIdA + ".scope");
  CgroupTree b("/wl-id-" + tag + "/kubepods/besteffort/pod" +
               std::string(kUidB) + "/crio-" + kIdB);
  ASSERT_TRUE(a.ok() && b.ok());
  auto agent = Agent::Create(TestAgentConfig());
  ASSERT_TRUE(agent.ok()) << agent.status();
  GatedChild ca([] { return Busy(1000); });
  GatedChild cb([] { return Busy(2000); });
  ASSERT_TRUE(a.Add(ca.pid()) && b.Add(cb.pid()));
  ca.Release();
  cb.Release();
  ASSERT_EQ(ca.Wait(), 0);
  ASSERT_EQ(cb.Wait(), 0);
  bool seen_a = false, seen_b = false;
  ASSERT_TRUE(DrainUntil(
      **agent, [&](const Snapshot&) { return seen_a && seen_b; },
      [&](const Snapshot& s) {
        seen_a |= FindExited(s, ca.pid()) != nullptr;
        seen_b |= FindExited(s, cb.pid()) != nullptr;
      }));
  ASSERT_TRUE((*agent)->DrainOnce().ok());
  auto snap = (*agent)->store().Latest();
  auto report = BuildNodeReport(*snap, {"node", 1, "test"});
  int found = 0;
  for (const auto& w : report.workloads()) {
    const auto& id = w.identity();
    if (id.cgroup_id() == a.id()) {
      ++found;
      EXPECT_EQ(id.pod_uid(), kUidA);
      EXPECT_EQ(id.container_id(), kIdA);
      EXPECT_GE(w.cpu_nanoseconds(), 300'000'000u);
      EXPECT_GE(w.syscalls(), 1000u);
    } else if (id.cgroup_id() == b.id()) {
      ++found;
      EXPECT_EQ(id.pod_uid(), kUidB);
      EXPECT_EQ(id.container_id(), kIdB);
      EXPECT_GE(w.cpu_nanoseconds(), 300'000'000u);
      EXPECT_GE(w.syscalls(), 2000u);
    } else {
      // Nothing else carries these pods' identities.
      EXPECT_NE(id.pod_uid(), kUidA) << id.cgroup_path();
      EXPECT_NE(id.pod_uid(), kUidB) << id.cgroup_path();
    }
  }
  EXPECT_EQ(found, 2);
  // The exact numbers: each pod's cgroup carries its child's CPU and calls.
  const CgroupStats* sa = FindCgroup(*snap, a.id());
  const CgroupStats* sb = FindCgroup(*snap, b.id());
  ASSERT_TRUE(sa && sb);
  std::printf("pod %s: %.3f s CPU, %lu syscalls; pod %s: %.3f s, %lu\n", kUidA,
              sa->cpu_ns / 1e9, sa->syscalls, kUidB, sb->cpu_ns / 1e9,
              sb->syscalls);
}

// GET /metrics from the agent's exposer.
std::string Scrape(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string out;
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0) {
    const std::string req = "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    (void)!write(fd, req.data(), req.size());
    char buf[65536];
    ssize_t n;
    while ((n = read(fd, buf, sizeof(buf))) > 0) out.append(buf, n);
  }
  close(fd);
  return out;
}

// The recorded-style API objects for the two pods: a Deployment's nginx
// (containerd) and a StatefulSet's PostgreSQL (CRI-O).
identity::testing::json PodList() {
  using identity::testing::json;
  json a = {
      {"metadata",
       {{"name", "web-7c9f6d5b8-abcde"},
        {"namespace", "shop"},
        {"uid", kUidA},
        {"resourceVersion", "501"},
        {"labels", {{"app", "web"}, {"pod-template-hash", "7c9f6d5b8"}}},
        {"ownerReferences", json::array({{{"apiVersion", "apps/v1"},
                                          {"kind", "ReplicaSet"},
                                          {"name", "web-7c9f6d5b8"},
                                          {"uid", "rs-1"},
                                          {"controller", true}}})}}},
      {"spec",
       {{"nodeName", "worker-1"},
        {"containers",
         json::array(
             {{{"name", "nginx"},
               {"image", "nginx:1.27"},
               {"resources",
                {{"requests", {{"cpu", "250m"}, {"memory", "64Mi"}}}}}}})}}},
      {"status",
       {{"phase", "Running"},
        {"qosClass", "Burstable"},
        {"containerStatuses",
         json::array({{{"name", "nginx"},
                       {"image", "docker.io/library/nginx:1.27"},
                       {"containerID", "containerd://" + kIdA}}})}}}};
  json b = {
      {"metadata",
       {{"name", "postgres-0"},
        {"namespace", "data"},
        {"uid", kUidB},
        {"resourceVersion", "502"},
        {"ownerReferences", json::array({{{"apiVersion", "apps/v1"},
                                          {"kind", "StatefulSet"},
                                          {"name", "postgres"},
                                          {"uid", "sts-1"},
                                          {"controller", true}}})}}},
      {"spec",
       {{"nodeName", "worker-1"},
        {"containers",
         json::array({{{"name", "postgresql"},
                       {"image", "docker.io/bitnami/postgresql:16.3.0"},
                       {"resources", {{"requests", {{"cpu", "1500m"}}}}}}})}}},
      {"status",
       {{"phase", "Running"},
        {"qosClass", "BestEffort"},
        {"containerStatuses",
         json::array({{{"name", "postgresql"},
                       {"image", "docker.io/bitnami/postgresql:16.3.0"},
                       {"containerID", "cri-o://" + kIdB}}})}}}};
  return {{"kind", "PodList"},
          {"apiVersion", "v1"},
          {"metadata", {{"resourceVersion", "510"}}},
          {"items", json::array({a, b})}};
}

// Real cgroups + Kubernetes JSON replayed by a local HTTPS server through
// --kubeconfig: every series of each pod, on /metrics and in the
// NodeReport, carries its namespace, pod, container, owner and project;
// the report also has the pods' requests and the node's labels.
TEST(IdentityBpfTest, KubernetesLabelsOnEverySeriesAndInTheReport) {
  WATTLENS_REQUIRE_BPF_OR_SKIP();
  namespace fs = std::filesystem;
  using identity::testing::json;
  if (!identity::testing::ReplayToolsPresent()) {
    GTEST_SKIP() << "needs python3 and openssl for the local API server";
  }
  const std::string tag = std::to_string(getpid());
  const fs::path dir = fs::path(::testing::TempDir()) / ("identity-bpf-" + tag);
  fs::remove_all(dir);
  fs::create_directories(dir);
  ASSERT_TRUE(identity::testing::MakePki(dir));
  std::ofstream(dir / "pods.json") << PodList().dump();
  const std::string k8s = std::string(WATTLENS_TESTDATA_DIR) + "/identity/k8s";
  json scenario = {
      {"steps", json::array({{{"expect", "list"},
                              {"body_file", (dir / "pods.json").string()}},
                             {{"expect", "watch"}, {"stall_s", 120}}})},
      {"node_file", k8s + "/node.json"}};
  identity::testing::ReplayServer server;
  ASSERT_TRUE(server.Start(dir, scenario));
  std::ofstream(dir / "kubeconfig") << absl::StrCat(
      "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
      "clusters:\n- name: k\n  cluster:\n    server: https://127.0.0.1:",
      server.port(), "\n    certificate-authority-data: ",
      absl::Base64Escape(identity::testing::Slurp(dir / "ca.crt")),
      "\nusers:\n- name: u\n  user:\n    token: wattlens-test-token\n"
      "contexts:\n- name: c\n  context: {cluster: k, user: u}\n");

  const std::string relA = "/wl-id-" + tag +
                           "/kubepods.slice/kubepods-burstable.slice/"
                           "kubepods-burstable-pod" +
                           Underscored(kUidA) + ".slice/cri-containerd-" +
                           kIdA + ".scope";
  const std::string relB = "/wl-id-" + tag + "/kubepods/besteffort/pod" +
                           std::string(kUidB) + "/crio-" + kIdB;
  CgroupTree a(relA);
  CgroupTree b(relB);
  ASSERT_TRUE(a.ok() && b.ok());
  AgentConfig config = TestAgentConfig();
  config.metrics_address = "127.0.0.1:0";
  config.identity.kubeconfig = (dir / "kubeconfig").string();
  config.identity.node_name = "worker-1";
  config.identity.series.fixed_level = SeriesLevel::kCgroup;
  auto agent = Agent::Create(config);
  ASSERT_TRUE(agent.ok()) << agent.status();
  EXPECT_EQ((*agent)->metadata_source(), "api-server");
  // The watch thread lists the pods: await it.
  absl::Time deadline = absl::Now() + absl::Seconds(20);
  while ((*agent)->pods().stats().live < 2 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  ASSERT_EQ((*agent)->pods().stats().live, 2u);

  GatedChild ca([] { return Busy(1000); });
  GatedChild cb([] { return Busy(2000); });
  ASSERT_TRUE(a.Add(ca.pid()) && b.Add(cb.pid()));
  ca.Release();
  cb.Release();
  ASSERT_EQ(ca.Wait(), 0);
  ASSERT_EQ(cb.Wait(), 0);
  bool seen_a = false, seen_b = false;
  ASSERT_TRUE(DrainUntil(
      **agent, [&](const Snapshot&) { return seen_a && seen_b; },
      [&](const Snapshot& s) {
        seen_a |= FindExited(s, ca.pid()) != nullptr;
        seen_b |= FindExited(s, cb.pid()) != nullptr;
      }));
  ASSERT_TRUE((*agent)->DrainOnce().ok());
  auto snap = (*agent)->store().Latest();

  // The NodeReport.
  auto report = BuildNodeReport(*snap, {"worker-1", 1, "test"});
  int found = 0;
  for (const auto& w : report.workloads()) {
    const auto& id = w.identity();
    if (id.cgroup_id() == a.id()) {
      ++found;
      EXPECT_EQ(id.namespace_(), "shop");
      EXPECT_EQ(id.pod(), "web-7c9f6d5b8-abcde");
      EXPECT_EQ(id.pod_uid(), kUidA);
      EXPECT_EQ(id.container(), "nginx");
      EXPECT_EQ(id.container_id(), kIdA);
      EXPECT_EQ(id.workload_kind(), "Deployment");
      EXPECT_EQ(id.workload(), "web");
      EXPECT_EQ(id.project(), "nginx");
      EXPECT_DOUBLE_EQ(w.cpu_request_cores(), 0.25);
      EXPECT_EQ(w.memory_request_bytes(), 64u << 20);
      EXPECT_GE(w.cpu_nanoseconds(), 300'000'000u);
      EXPECT_GE(w.syscalls(), 1000u);
      // Allocated CPU: at least what it used, and at least its request.
      EXPECT_GE(w.cpu_allocated_core_nanoseconds(), w.cpu_nanoseconds());
    } else if (id.cgroup_id() == b.id()) {
      ++found;
      EXPECT_EQ(id.namespace_(), "data");
      EXPECT_EQ(id.pod(), "postgres-0");
      EXPECT_EQ(id.pod_uid(), kUidB);
      EXPECT_EQ(id.container(), "postgresql");
      EXPECT_EQ(id.container_id(), kIdB);
      EXPECT_EQ(id.workload_kind(), "StatefulSet");
      EXPECT_EQ(id.workload(), "postgres");
      EXPECT_EQ(id.project(), "postgres");
      EXPECT_DOUBLE_EQ(w.cpu_request_cores(), 1.5);
      EXPECT_GE(w.syscalls(), 2000u);
    } else {
      EXPECT_NE(id.pod_uid(), kUidA) << id.cgroup_path();
      EXPECT_NE(id.pod_uid(), kUidB) << id.cgroup_path();
    }
  }
  EXPECT_EQ(found, 2);
  EXPECT_EQ(report.node().labels().at("topology.kubernetes.io/region"),
            "eu-west-1");
  EXPECT_EQ(report.node().labels().at("node.kubernetes.io/instance-type"),
            "m6i.2xlarge");
  EXPECT_EQ(report.node().provider_id(),
            "aws:///eu-west-1b/i-0a1b2c3d4e5f67890");
  EXPECT_GT(report.node().cpus(), 0u);
  EXPECT_GT(report.node().memory_bytes(), 0u);
  EXPECT_GT(report.elapsed_nanoseconds(), 0u);

  // /metrics: every wattlens_workload_* series of each pod has its labels.
  const std::string text = Scrape((*agent)->metrics_port());
  const std::string want_a =
      "namespace=\"shop\",pod=\"web-7c9f6d5b8-abcde\",container=\"nginx\","
      "workload_kind=\"Deployment\",workload=\"web\",project=\"nginx\"";
  const std::string want_b =
      "namespace=\"data\",pod=\"postgres-0\",container=\"postgresql\","
      "workload_kind=\"StatefulSet\",workload=\"postgres\","
      "project=\"postgres\"";
  std::map<std::string, int> families_a, families_b;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (!absl::StartsWith(line, "wattlens_workload_")) continue;
    const std::string family(line.substr(0, line.find('{')));
    if (absl::StrContains(line, "cgroup=\"" + relA + "\"")) {
      EXPECT_TRUE(absl::StrContains(line, want_a)) << line;
      ++families_a[family];
    } else if (absl::StrContains(line, "cgroup=\"" + relB + "\"")) {
      EXPECT_TRUE(absl::StrContains(line, want_b)) << line;
      ++families_b[family];
    } else {
      EXPECT_FALSE(absl::StrContains(line, "pod=\"web-7c9f6d5b8-abcde\""))
          << line;
    }
  }
  for (const char* f : {"wattlens_workload_cpu_seconds_total",
                        "wattlens_workload_syscalls_total",
                        "wattlens_workload_syscall_errors_total",
                        "wattlens_workload_processes"}) {
    EXPECT_EQ(families_a[f], 1) << f;
    EXPECT_EQ(families_b[f], 1) << f;
  }
  EXPECT_TRUE(absl::StrContains(
      text, "wattlens_agent_source_up{source=\"kubernetes\"} 1"));
  EXPECT_TRUE(absl::StrContains(text, "wattlens_agent_pods{state=\"live\"} 2"));
  std::printf("pod A: %d families, pod B: %d families labelled on /metrics\n",
              static_cast<int>(families_a.size()),
              static_cast<int>(families_b.size()));

  // The node API groups by the same identity.
  NodeApiService api({"worker-1", 1, "test"});
  api.Update(*snap);
  wattlens::v1::GetNodeUsageRequest req;
  req.set_group_by(wattlens::v1::GROUP_BY_POD);
  req.set_namespace_("shop");
  wattlens::v1::GetNodeUsageResponse resp;
  ASSERT_TRUE(api.GetNodeUsage(nullptr, &req, &resp).ok());
  ASSERT_EQ(resp.rows_size(), 1);
  EXPECT_EQ(resp.rows(0).key().pod(), "web-7c9f6d5b8-abcde");
  EXPECT_GE(resp.rows(0).usage().cpu_nanoseconds(), 300'000'000u);
  agent->reset();
  server.Stop();
  fs::remove_all(dir);
}

// Working set and memory allocation from the kernel's own accounting: a
// child allocates and touches 64 MiB in its own cgroup; its working set is
// at least that, and memory_allocated_byte_seconds grows by the working set
// times the interval.
TEST(IdentityBpfTest, WorkingSetAndMemoryAllocation) {
  WATTLENS_REQUIRE_BPF_OR_SKIP();
  constexpr size_t kBytes = 64u << 20;
  const std::string rel = "/wl-ws-" + std::to_string(getpid());
  CgroupTree v2(rel);
  ASSERT_TRUE(v2.ok());
  // Hybrid hosts keep the memory controller on v1: the same path there.
  const std::string v1_root = FindCgroupV1Mount("/proc", "memory");
  std::string v1_dir;
  if (!v1_root.empty()) {
    v1_dir = v1_root + rel;
    ASSERT_EQ(mkdir(v1_dir.c_str(), 0755), 0) << strerror(errno);
  }
  int ready[2], go[2];
  ASSERT_EQ(pipe(ready), 0);
  ASSERT_EQ(pipe(go), 0);
  GatedChild child([&] {
    char* p = static_cast<char*>(mmap(nullptr, kBytes, PROT_READ | PROT_WRITE,
                                      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    if (p == MAP_FAILED) return 1;
    for (size_t i = 0; i < kBytes; i += 4096) p[i] = 1;
    char c = 'r';
    (void)!write(ready[1], &c, 1);
    while (read(go[0], &c, 1) < 0) {
    }
    return 0;
  });
  auto agent = Agent::Create(TestAgentConfig());
  ASSERT_TRUE(agent.ok()) << agent.status();
  ASSERT_TRUE(v2.Add(child.pid()));
  if (!v1_dir.empty()) {
    std::ofstream(v1_dir + "/cgroup.procs") << child.pid() << std::flush;
  }
  child.Release();
  char c;
  ASSERT_EQ(read(ready[0], &c, 1), 1);
  const CgroupStats* cg = nullptr;
  std::shared_ptr<const Snapshot> s1, s2;
  ASSERT_TRUE(DrainUntil(**agent, [&](const Snapshot& s) {
    cg = FindCgroup(s, v2.id());
    return cg && cg->resources.memory_working_set_bytes >= kBytes;
  }));
  s1 = (*agent)->store().Latest();
  absl::SleepFor(absl::Milliseconds(500));  // an interval of known length
  ASSERT_TRUE((*agent)->DrainOnce().ok());
  s2 = (*agent)->store().Latest();
  const CgroupStats* c1 = FindCgroup(*s1, v2.id());
  const CgroupStats* c2 = FindCgroup(*s2, v2.id());
  ASSERT_TRUE(c1 && c2);
  const uint64_t ws = c2->resources.memory_working_set_bytes;
  const double dt = static_cast<double>(s2->elapsed_ns - s1->elapsed_ns) / 1e9;
  const double grown =
      static_cast<double>(c2->resources.memory_allocated_byte_seconds -
                          c1->resources.memory_allocated_byte_seconds);
  std::printf(
      "working set %.1f MiB; allocation grew %.0f byte-s over %.3f s "
      "(ws x dt = %.0f)\n",
      ws / 1048576.0, grown, dt, ws * dt);
  EXPECT_GE(ws, kBytes);
  EXPECT_LT(ws, kBytes + (32u << 20));  // the touched pages, not the host's
  EXPECT_NEAR(grown, ws * dt, ws * dt * 0.02);
  (void)!write(go[1], &c, 1);
  EXPECT_EQ(child.Wait(), 0);
  agent->reset();
  if (!v1_dir.empty()) rmdir(v1_dir.c_str());
}

}  // namespace
}  // namespace wattlens
