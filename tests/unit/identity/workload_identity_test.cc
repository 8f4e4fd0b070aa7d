// SPDX-License-Identifier: Apache-2.0
// The identity stage over recorded pods (testdata pod_list.json) and cgroup
// paths as containerd (systemd driver) and CRI-O (cgroupfs) name them:
// labels, requests (a pod-level cgroup never double-counts its
// containers'), unknown pods, static pods, host projects, and label caching.
#include "agent/identity/workload_identity.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "agent/identity/k8s_json.h"
#include "agent/identity/owner_resolver.h"
#include "gtest/gtest.h"

namespace wattlens::identity {
namespace {

const std::string kK8s = std::string(WATTLENS_TESTDATA_DIR) + "/identity/k8s";
constexpr char kWebUid[] = "0f4c7a2e-93d1-4b6a-8e25-1c7d9b3f6a08";
constexpr char kPgUid[] = "8e1d0b9a-6c57-4f32-a1e4-93b2c7d5f0a6";
constexpr char kNginxId[] =
    "c842e7e9efb61e3cc052505d39c50d0e0ae82d6b04405ac03322df3549cdf6e0";
constexpr char kIstioId[] =
    "5375843269a9ac3c08650fbfc674e391e1c79a9cf5f4e94b0edbc89427e0f178";
constexpr char kPgId[] =
    "d80dc0a202c84e8fa4dcb3023143dff30cb5d99dae8c4731d84dab05aab52efb";
constexpr char kApiserverId[] =
    "14c2529eb4498c5d1ffd6915d05bf58a91bdda796af59f41d480d11c099d0479";
constexpr char kStaticHash[] = "5b3c1f0d2e4a69788c7b6a5d4e3f2a1b";

std::string Under(std::string uid) {
  for (char& c : uid) c = c == '-' ? '_' : c;
  return uid;
}
std::string SdPod(const std::string& qos, const std::string& uid) {
  return "/kubepods.slice/kubepods-" + qos + ".slice/kubepods-" + qos + "-pod" +
         Under(uid) + ".slice";
}

class WorkloadIdentityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::ifstream f(kK8s + "/pod_list.json");
    std::stringstream ss;
    ss << f.rdbuf();
    auto list = DecodePodList(ss.str());
    ASSERT_TRUE(list.ok()) << list.status();
    std::vector<PodInfo> pods;
    for (PodInfo& p : list->pods) {
      p.workload = ResolveWorkload(p);
      pods.push_back(std::move(p));
    }
    cache_.ReplaceAll(std::move(pods));
  }
  CgroupStats Cg(uint64_t id, std::string path) {
    CgroupStats c;
    c.id = id;
    c.path = std::move(path);
    return c;
  }
  FakeClock clock_;
  PodCache cache_{clock_};
};

TEST_F(WorkloadIdentityTest, PodsContainersOwnersProjectsAndRequests) {
  WorkloadIdentifier id(&cache_, &ProjectMap::Shipped());
  Snapshot s;
  s.cgroups = {
      // containerd + systemd driver: nginx and its istio sidecar.
      Cg(1, SdPod("burstable", kWebUid) + "/cri-containerd-" + kNginxId +
                ".scope"),
      Cg(2, SdPod("burstable", kWebUid) + "/cri-containerd-" + kIstioId +
                ".scope"),
      // The pod sandbox (pause): a container the status does not list.
      Cg(3, SdPod("burstable", kWebUid) + "/cri-containerd-" +
                std::string(64, 'e') + ".scope"),
      // CRI-O + cgroupfs driver, Guaranteed pod.
      Cg(4, std::string("/kubepods/pod") + kPgUid + "/crio-" + kPgId),
      // The postgres pod-level cgroup: its one container has a cgroup of
      // its own, so the pod level carries no requests.
      Cg(5, std::string("/kubepods/pod") + kPgUid),
      // A static pod: the path carries the config hash.
      Cg(6, SdPod("burstable", kStaticHash) + "/cri-containerd-" +
                kApiserverId + ".scope"),
      // A pod the API has never described.
      Cg(7, SdPod("besteffort", "11111111-2222-3333-4444-555555555555") +
                "/cri-containerd-" + std::string(64, 'f') + ".scope"),
      Cg(8, "/system.slice/containerd.service"),
      Cg(9, "/"),
  };
  id.Label(&s);
  const WorkloadLabels& nginx = s.cgroups[0].identity;
  EXPECT_EQ(nginx.kind, "pod_container");
  EXPECT_TRUE(nginx.pod_known);
  EXPECT_EQ(nginx.namespace_name, "shop");
  EXPECT_EQ(nginx.pod, "web-7c9f6d5b8-x2k4p");
  EXPECT_EQ(nginx.pod_uid, kWebUid);
  EXPECT_EQ(nginx.container, "nginx");
  EXPECT_EQ(nginx.container_id, kNginxId);
  EXPECT_EQ(nginx.workload_kind, "Deployment");
  EXPECT_EQ(nginx.workload, "web");
  EXPECT_EQ(nginx.project, "nginx");
  EXPECT_EQ(s.cgroups[0].resources.cpu_request_millicores, 250u);
  EXPECT_EQ(s.cgroups[0].resources.memory_request_bytes, 64u << 20);
  const WorkloadLabels& istio = s.cgroups[1].identity;
  EXPECT_EQ(istio.container, "istio-proxy");
  EXPECT_EQ(istio.project, "istio");
  EXPECT_EQ(istio.pod_project, "nginx");  // the pod's first container
  EXPECT_EQ(s.cgroups[1].resources.cpu_request_millicores, 100u);
  const WorkloadLabels& pause = s.cgroups[2].identity;
  EXPECT_EQ(pause.pod, "web-7c9f6d5b8-x2k4p");
  EXPECT_EQ(pause.container, "");
  EXPECT_EQ(pause.workload, "web");
  EXPECT_EQ(s.cgroups[2].resources.cpu_request_millicores, 0u);
  const WorkloadLabels& pg = s.cgroups[3].identity;
  EXPECT_EQ(pg.namespace_name, "data");
  EXPECT_EQ(pg.workload_kind, "StatefulSet");
  EXPECT_EQ(pg.workload, "postgres");
  EXPECT_EQ(pg.container, "postgresql");
  EXPECT_EQ(pg.project, "postgres");
  EXPECT_EQ(s.cgroups[3].resources.cpu_request_millicores, 2000u);
  EXPECT_EQ(s.cgroups[3].resources.memory_request_bytes, 4ull << 30);
  EXPECT_EQ(s.cgroups[4].identity.kind, "pod");
  EXPECT_EQ(s.cgroups[4].identity.pod, "postgres-0");
  EXPECT_EQ(s.cgroups[4].resources.cpu_request_millicores, 0u);
  const WorkloadLabels& api = s.cgroups[5].identity;
  EXPECT_EQ(api.pod, "kube-apiserver-worker-1");
  EXPECT_EQ(api.workload_kind, "StaticPod");
  EXPECT_EQ(api.project, "kubernetes");
  EXPECT_EQ(api.pod_uid, "4c2f8e6a-0b1d-4e3f-a5c7-9e1b3d5f7a9c");
  const WorkloadLabels& unknown = s.cgroups[6].identity;
  EXPECT_FALSE(unknown.pod_known);
  EXPECT_EQ(unknown.pod, "");
  EXPECT_EQ(unknown.pod_uid, "11111111-2222-3333-4444-555555555555");
  EXPECT_EQ(unknown.container_id, std::string(64, 'f'));
  EXPECT_EQ(s.cgroups[7].identity.kind, "systemd_unit");
  EXPECT_EQ(s.cgroups[7].identity.systemd_unit, "containerd.service");
  EXPECT_EQ(s.cgroups[8].identity.kind, "root");
  EXPECT_EQ(id.stats().pod_cgroups, 7u);
  EXPECT_EQ(id.stats().pods_unknown, 1u);

  // The container leaves (its cgroup is gone): the pod-level cgroup now
  // carries the pod's requests itself.
  s.cgroups.erase(s.cgroups.begin() + 3);
  id.Label(&s);
  EXPECT_EQ(s.cgroups[3].identity.kind, "pod");
  EXPECT_EQ(s.cgroups[3].resources.cpu_request_millicores, 2000u);
  EXPECT_EQ(s.cgroups[3].resources.memory_request_bytes, 4ull << 30);
}

TEST_F(WorkloadIdentityTest, MetadataArrivingLaterAndApiLoss) {
  WorkloadIdentifier id(&cache_, &ProjectMap::Shipped());
  const std::string uid = "9d1f3b5a-7c9e-4b2d-8f4a-6c8e0a2b4d6f";
  const std::string cid(64, 'd');
  Snapshot s;
  s.cgroups = {
      Cg(1, SdPod("burstable", uid) + "/cri-containerd-" + cid + ".scope")};
  id.Label(&s);
  EXPECT_FALSE(s.cgroups[0].identity.pod_known);
  // The watch delivers the pod: the next interval has its labels.
  PodInfo p;
  p.uid = uid;
  p.name = "api-5d8f7c6b9-abcde";
  p.namespace_name = "shop";
  p.labels = {{"pod-template-hash", "5d8f7c6b9"}};
  p.owners = {{"ReplicaSet", "api-5d8f7c6b9", "rs-uid", true}};
  ContainerInfo c;
  c.name = "api";
  c.image = "ghcr.io/example/api:1.0";
  c.container_id = cid;
  c.requests.cpu_millis = 500;
  p.containers = {c};
  p.workload = ResolveWorkload(p);
  cache_.Upsert(p);
  id.Label(&s);
  EXPECT_TRUE(s.cgroups[0].identity.pod_known);
  EXPECT_EQ(s.cgroups[0].identity.workload, "api");
  EXPECT_EQ(s.cgroups[0].identity.project, "api");
  EXPECT_EQ(s.cgroups[0].resources.cpu_request_millicores, 500u);
  // The pod is deleted and expires from the cache while its cgroup is still
  // reported: it keeps its last labels.
  cache_.MarkDeleted(uid);
  clock_.AdvanceNs(PodCache::kDefaultDeletedRetentionNs + 1);
  cache_.ExpireDeleted();
  id.Label(&s);
  EXPECT_EQ(s.cgroups[0].identity.workload, "api");
  EXPECT_EQ(s.cgroups[0].resources.cpu_request_millicores, 500u);
}

TEST_F(WorkloadIdentityTest, WithoutApiPathsOnly) {
  WorkloadIdentifier id(nullptr, &ProjectMap::Shipped());
  Snapshot s;
  s.cgroups = {Cg(1, SdPod("burstable", kWebUid) + "/cri-containerd-" +
                         kNginxId + ".scope")};
  id.Label(&s);
  EXPECT_FALSE(s.cgroups[0].identity.pod_known);
  EXPECT_EQ(s.cgroups[0].identity.pod_uid, kWebUid);
  EXPECT_EQ(s.cgroups[0].identity.container_id, kNginxId);
  EXPECT_EQ(s.cgroups[0].identity.pod, "");
}

TEST_F(WorkloadIdentityTest, HostProjectFromExecutableOncePerCgroup) {
  int reads = 0;
  WorkloadIdentityOptions o;
  o.read_exe = [&](uint32_t pid) -> std::optional<std::string> {
    ++reads;
    if (pid == 10) return std::nullopt;  // not readable (exited, denied)
    return std::string("/usr/sbin/nginx");
  };
  WorkloadIdentifier id(&cache_, &ProjectMap::Shipped(), o);
  Snapshot s;
  s.cgroups = {Cg(1, "/system.slice/nginx.service"),
               Cg(2, "/wattlens-test/no-processes")};
  s.cgroups[0].live_processes = 2;
  ProcessStats a, b;
  a.pid = 10;
  a.cgroup_id = 1;
  b.pid = 11;
  b.cgroup_id = 1;
  s.processes = {a, b};
  id.Label(&s);
  EXPECT_EQ(s.cgroups[0].identity.systemd_unit, "nginx.service");
  EXPECT_EQ(s.cgroups[0].identity.project, "nginx");
  EXPECT_EQ(s.cgroups[1].identity.project, "");
  id.Label(&s);
  id.Label(&s);
  EXPECT_EQ(reads, 2);  // resolved once, then cached
  EXPECT_EQ(s.cgroups[0].identity.project, "nginx");
}

// The agent without ptrace access (its capabilities dropped): what the
// kernel reported decides, /proc/<pid>/exe only for what it did not report.
TEST_F(WorkloadIdentityTest, HostProjectFromTheKernelsExecutables) {
  ExeTable exes(16);
  exes.Exec(10, 1, "/usr/bin/stress-ng");
  exes.Fork(11, 2, 10);
  int reads = 0;
  WorkloadIdentityOptions o;
  o.exes = &exes;
  o.read_exe = [&](uint32_t pid) -> std::optional<std::string> {
    ++reads;
    if (pid == 30) return std::string("/usr/sbin/nginx");
    return std::nullopt;  // denied, as for root's processes
  };
  WorkloadIdentifier id(&cache_, &ProjectMap::Shipped(), o);
  Snapshot s;
  s.cgroups = {Cg(1, "/wattlens-test/after"), Cg(2, "/wattlens-test/child"),
               Cg(3, "/system.slice/nginx.service")};
  for (CgroupStats& c : s.cgroups) c.live_processes = 1;
  ProcessStats a, b, c;
  a.pid = 10;
  a.cgroup_id = 1;
  b.pid = 11;
  b.cgroup_id = 2;
  c.pid = 30;
  c.cgroup_id = 3;
  s.processes = {a, b, c};
  id.Label(&s);
  EXPECT_EQ(s.cgroups[0].identity.project, "stress-ng");
  EXPECT_EQ(s.cgroups[2].identity.project, "nginx");
  EXPECT_EQ(reads, 1);
  // The child has not exec'd since its fork: its parent's executable
  // decides only once no exec has come for the cgroup's attempts.
  EXPECT_EQ(s.cgroups[1].identity.project, "");
  for (int i = 0; i < 4; ++i) id.Label(&s);
  EXPECT_EQ(s.cgroups[1].identity.project, "stress-ng");
}

// A new container's first process is the runtime's init, forked from the
// runtime, which then execs the container's command: the command decides.
TEST_F(WorkloadIdentityTest, ContainerInitDoesNotNameTheProject) {
  ExeTable exes(16);
  exes.Exec(10, 1, "/usr/sbin/runc");
  exes.Fork(20, 2, 10);  // runc init, in the container's cgroup
  WorkloadIdentityOptions o;
  o.exes = &exes;
  o.read_exe = [](uint32_t) -> std::optional<std::string> {
    return std::nullopt;
  };
  WorkloadIdentifier id(&cache_, &ProjectMap::Shipped(), o);
  Snapshot s;
  s.cgroups = {Cg(1, "/system.slice/wattlens-init-test.service")};
  s.cgroups[0].live_processes = 1;
  ProcessStats init;
  init.pid = 20;
  init.cgroup_id = 1;
  s.processes = {init};
  id.Label(&s);
  EXPECT_EQ(s.cgroups[0].identity.project, "");
  // runc re-executes itself as the container's init (runc init).
  exes.Exec(20, 2, "/usr/sbin/runc");
  id.Label(&s);
  EXPECT_EQ(s.cgroups[0].identity.project, "");
  exes.Exec(20, 2, "/usr/sbin/nginx");
  id.Label(&s);
  EXPECT_EQ(s.cgroups[0].identity.project, "nginx");
}

// No readable executable yet: retried for a few intervals, then given up.
TEST_F(WorkloadIdentityTest, HostProjectRetriedWhileNoExeIsReadable) {
  int reads = 0;
  bool readable = false;
  WorkloadIdentityOptions o;
  o.read_exe = [&](uint32_t) -> std::optional<std::string> {
    ++reads;
    if (!readable) return std::nullopt;
    return std::string("/usr/bin/redis-server");
  };
  WorkloadIdentifier id(&cache_, &ProjectMap::Shipped(), o);
  Snapshot s;
  s.cgroups = {Cg(1, "/system.slice/redis.service"),
               Cg(2, "/system.slice/never.service")};
  s.cgroups[0].live_processes = 1;
  s.cgroups[1].live_processes = 1;
  ProcessStats a, b;
  a.pid = 10;
  a.cgroup_id = 1;
  b.pid = 20;
  b.cgroup_id = 2;
  s.processes = {a, b};
  id.Label(&s);
  id.Label(&s);
  EXPECT_EQ(s.cgroups[0].identity.project, "");
  readable = true;
  s.processes = {a};  // the never.service process is gone from view
  id.Label(&s);
  EXPECT_EQ(s.cgroups[0].identity.project, "redis-server");
  for (int i = 0; i < 10; ++i) id.Label(&s);
  // redis: 3 reads; never: 2 with its process, then none to read.
  EXPECT_EQ(reads, 5);
}

// Kernel threads (kKernelCgroupId) are the workload `kernel` of project
// `linux`: no namespace, pod, container or unit, and no executable read
// (they have none). A real cgroup named /kernel stays a host cgroup.
TEST_F(WorkloadIdentityTest, KernelThreadsAreTheKernelWorkload) {
  int reads = 0;
  WorkloadIdentityOptions o;
  o.read_exe = [&](uint32_t) -> std::optional<std::string> {
    ++reads;
    return std::string("/usr/sbin/nginx");
  };
  WorkloadIdentifier id(&cache_, &ProjectMap::Shipped(), o);
  Snapshot s;
  s.cgroups = {Cg(1, "/"), Cg(2, "/kernel"),
               Cg(kKernelCgroupId, kKernelCgroupPath)};
  s.cgroups[2].live_processes = 1;
  ProcessStats kworker;
  kworker.pid = 40;
  kworker.ppid = 2;
  kworker.cgroup_id = kKernelCgroupId;
  s.processes = {kworker};
  for (int i = 0; i < 3; ++i) id.Label(&s);
  const WorkloadLabels& k = s.cgroups[2].identity;
  EXPECT_EQ(k.kind, "kernel");
  EXPECT_EQ(k.workload_kind, "kernel");
  EXPECT_EQ(k.workload, "kernel");
  EXPECT_EQ(k.project, "linux");
  EXPECT_EQ(k.pod_project, "linux");
  EXPECT_EQ(k.namespace_name, "");
  EXPECT_EQ(k.pod, "");
  EXPECT_EQ(k.pod_uid, "");
  EXPECT_EQ(k.container, "");
  EXPECT_EQ(k.container_id, "");
  EXPECT_EQ(k.systemd_unit, "");
  EXPECT_EQ(reads, 0);
  EXPECT_EQ(id.stats().paths_invalid, 0u);
  EXPECT_EQ(id.stats().pod_cgroups, 0u);
  EXPECT_EQ(s.cgroups[0].identity.kind, "root");
  EXPECT_EQ(s.cgroups[0].identity.workload_kind, "");
  EXPECT_EQ(s.cgroups[1].identity.kind, "host_other");
  EXPECT_EQ(s.cgroups[1].identity.workload, "");
  // The same labels from the path alone (a snapshot that skipped the
  // identity stage), whatever the path says.
  EXPECT_EQ(HintForCgroup(kKernelCgroupId), TaskHint::kKernelThread);
  EXPECT_EQ(HintForCgroup(1), TaskHint::kNone);
  const WorkloadLabels alone =
      ResolveCgroup("/", nullptr, ProjectMap::Shipped(),
                    HintForCgroup(kKernelCgroupId))
          .labels;
  EXPECT_EQ(alone.workload, "kernel");
  EXPECT_EQ(alone.project, "linux");
}

// A fake root with a dpkg database in which `package` (of source `source`)
// owns `exe`.
void WriteDpkgRoot(const std::filesystem::path& root,
                   const std::string& package, const std::string& source,
                   const std::string& exe) {
  std::filesystem::create_directories(root / "var/lib/dpkg/info");
  std::ofstream(root / "var/lib/dpkg/status")
      << "Package: " << package << "\nStatus: install ok installed\n"
      << "Source: " << source << " (1.0-1)\n\n";
  std::ofstream(root / "var/lib/dpkg/info" / (package + ":amd64.list"))
      << "/.\n/usr\n"
      << exe << "\n";
}

// A podman/docker container's executable is looked up in the container's
// own dpkg database (/proc/<pid>/root/var/lib/dpkg), not the host's, which
// may own the same path through another package. Without a database there
// (distroless), the file name. Host cgroups keep using the host's index.
TEST_F(WorkloadIdentityTest, ContainerProjectFromTheContainersOwnRoot) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::path(::testing::TempDir()) / "wl-container-root";
  fs::remove_all(dir);
  const fs::path host = dir / "host";
  const fs::path proc = dir / "proc";
  WriteDpkgRoot(host, "openresty", "openresty", "/usr/sbin/nginx");
  WriteDpkgRoot(proc / "101/root", "nginx-light", "nginx", "/usr/sbin/nginx");
  fs::create_directories(proc / "202/root/app");  // no dpkg database
  DpkgIndex host_index(host.string(), clock_);

  WorkloadIdentityOptions o;
  o.proc_root = proc.string();
  o.dpkg = &host_index;
  o.read_exe = [](uint32_t pid) -> std::optional<std::string> {
    if (pid == 202) return std::string("/app/server");
    return std::string("/usr/sbin/nginx");
  };
  WorkloadIdentifier id(&cache_, &ProjectMap::Shipped(), o);
  const std::string podman_id(64, 'a');
  const std::string docker_id(64, 'b');
  Snapshot s;
  s.cgroups = {Cg(1, "/libpod_parent/libpod-" + podman_id),
               Cg(2, "/system.slice/docker-" + docker_id + ".scope"),
               Cg(3, "/system.slice/openresty.service")};
  uint32_t pids[] = {101, 202, 303};
  for (size_t i = 0; i < 3; ++i) {
    s.cgroups[i].live_processes = 1;
    ProcessStats p;
    p.pid = pids[i];
    p.cgroup_id = s.cgroups[i].id;
    s.processes.push_back(p);
  }
  id.Label(&s);
  const WorkloadLabels& podman = s.cgroups[0].identity;
  EXPECT_EQ(podman.kind, "container");
  EXPECT_EQ(podman.container_id, podman_id);
  EXPECT_EQ(podman.project, "nginx");
  EXPECT_EQ(podman.pod_project, "nginx");
  EXPECT_EQ(s.cgroups[1].identity.kind, "container");
  EXPECT_EQ(s.cgroups[1].identity.project, "server");
  EXPECT_EQ(s.cgroups[2].identity.project, "openresty");
  EXPECT_EQ(host_index.stats().lookups, 1u);  // the host cgroup's only
}

TEST_F(WorkloadIdentityTest, HostileOrOddPathsAreCountedNotFatal) {
  WorkloadIdentifier id(&cache_, &ProjectMap::Shipped());
  Snapshot s;
  s.cgroups = {Cg(1, "/a/../b"), Cg(2, std::string(5000, 'x')), Cg(3, "/ok")};
  id.Label(&s);
  EXPECT_EQ(s.cgroups[0].identity.kind, "invalid");
  EXPECT_EQ(s.cgroups[1].identity.kind, "invalid");
  EXPECT_EQ(s.cgroups[2].identity.kind, "host_other");
  EXPECT_EQ(id.stats().paths_invalid, 2u);
}

}  // namespace
}  // namespace wattlens::identity
