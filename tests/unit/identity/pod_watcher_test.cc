// SPDX-License-Identifier: Apache-2.0
// PodWatcher against a local HTTPS server (k8s_replay_server.py) replaying
// recorded API responses: list, watch events, bookmark, 410 Gone (as an
// ERROR event and as an HTTP status), a 503, a disconnect mid-event, a slow
// response, a stall, and finally the server going away.
#include "agent/identity/pod_watcher.h"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "agent/common/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/unit/identity/k8s_replay.h"

namespace wattlens::identity {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

const std::string kK8s = std::string(WATTLENS_TESTDATA_DIR) + "/identity/k8s";
constexpr char kWebUid[] = "0f4c7a2e-93d1-4b6a-8e25-1c7d9b3f6a08";
constexpr char kPgUid[] = "8e1d0b9a-6c57-4f32-a1e4-93b2c7d5f0a6";
constexpr char kNodeExporterUid[] = "3b7e2c1d-9f84-4a6b-b5d0-e6c2a1f87d39";
constexpr char kJobUid[] = "a7c5e3b1-2d4f-4681-9a3c-5e7b9d1f3a5c";
constexpr char kNewApiUid[] = "9d1f3b5a-7c9e-4b2d-8f4a-6c8e0a2b4d6f";
constexpr char kPendingUid[] = "6a8c0e2f-4b6d-4f81-a3c5-7e9b1d3f5a7c";
constexpr char kNginxId[] =
    "c842e7e9efb61e3cc052505d39c50d0e0ae82d6b04405ac03322df3549cdf6e0";
constexpr char kPendingStartedId[] =
    "d90664a8ff74d213ad96c00f3e1e6668705513ab1a5bc6003a002f89d35b1ad4";
constexpr char kStaticHash[] = "5b3c1f0d2e4a69788c7b6a5d4e3f2a1b";
constexpr int64_t kSecond = 1'000'000'000;

using testing::MakePki;
using testing::ReplayServer;
using testing::Sh;
using testing::Slurp;

class PodWatcherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (access(WATTLENS_PYTHON3, X_OK) != 0 ||
        !Sh("openssl version >/dev/null 2>&1")) {
      GTEST_SKIP() << "needs python3 and openssl for the local HTTPS server";
    }
    dir_ = fs::path(::testing::TempDir()) /
           ("pod-watcher-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "sa");
    ASSERT_TRUE(MakePki(dir_)) << "openssl failed";
    fs::copy_file(dir_ / "ca.crt", dir_ / "sa/ca.crt");
    std::ofstream(dir_ / "sa/token") << "token-1\n";
  }
  void TearDown() override {
    server_.Stop();
    if (!dir_.empty()) fs::remove_all(dir_);
  }
  KubeApiConfig InCluster() {
    std::map<std::string, std::string> env = {
        {"KUBERNETES_SERVICE_HOST", "127.0.0.1"},
        {"KUBERNETES_SERVICE_PORT", std::to_string(server_.port())}};
    auto c = InClusterConfig(
        [env](const char* n) -> std::optional<std::string> {
          auto it = env.find(n);
          if (it == env.end()) return std::nullopt;
          return it->second;
        },
        (dir_ / "sa").string());
    EXPECT_TRUE(c.ok()) << c.status();
    return c.ok() ? *c : KubeApiConfig{};
  }
  fs::path dir_;
  ReplayServer server_;
};

TEST_F(PodWatcherTest, ListWatchGoneBackoffAndServerLoss) {
  size_t first_slow_line = Slurp(kK8s + "/watch_slow.jsonl").find('\n');
  json scenario = json::array({
      {{"expect", "list"}, {"body_file", kK8s + "/pod_list.json"}},
      {{"expect", "watch"}, {"lines_file", kK8s + "/watch_events.jsonl"}},
      {{"expect", "watch"}, {"lines_file", kK8s + "/watch_gone.jsonl"}},
      {{"expect", "list"}, {"body_file", kK8s + "/pod_list_relist.json"}},
      {{"expect", "watch"}, {"status", 503}},
      {{"expect", "watch"},
       {"lines_file", kK8s + "/watch_slow.jsonl"},
       {"cut_bytes", first_slow_line + 1 + 40}},
      {{"expect", "watch"},
       {"lines_file", kK8s + "/watch_slow.jsonl"},
       {"chunk", 64},
       {"delay_ms", 5}},
      {{"expect", "watch"}, {"status", 410}},
      {{"expect", "list"}, {"body_file", kK8s + "/pod_list_relist.json"}},
      {{"expect", "watch"}, {"stall_s", 4}},
  });
  ASSERT_TRUE(server_.Start(dir_, scenario));
  FakeClock clock;
  PodCache cache(clock);
  PodWatcherOptions opt;
  opt.initial_backoff_ns = kSecond;
  opt.max_backoff_ns = 4 * kSecond;
  opt.stall_timeout_s = 1;
  opt.connect_timeout_s = 2;
  PodWatcher w(InCluster(), "worker-1", &cache, clock, opt);

  auto workload = [&](const char* uid) {
    auto m = cache.ByPodUid(uid);
    return m.ok() ? m->pod->workload.kind + "/" + m->pod->workload.name
                  : std::string("unknown");
  };

  // 0: list.
  ASSERT_TRUE(w.Step().ok()) << w.last_error();
  EXPECT_TRUE(w.synced());
  EXPECT_EQ(w.resource_version(), "184467");
  EXPECT_EQ(cache.stats().live, 6u);
  EXPECT_EQ(workload(kWebUid), "Deployment/web");
  EXPECT_EQ(workload(kPgUid), "StatefulSet/postgres");
  EXPECT_EQ(workload(kNodeExporterUid), "DaemonSet/node-exporter");
  EXPECT_EQ(workload(kJobUid), "CronJob/backup");
  EXPECT_EQ(workload(kStaticHash), "StaticPod/kube-apiserver");
  auto nginx = cache.ByContainerId(kNginxId);
  ASSERT_TRUE(nginx.ok());
  EXPECT_EQ(nginx->container->image, "nginx:1.27");
  EXPECT_EQ(workload(kNewApiUid), "unknown");

  // 1: watch: ADDED, MODIFIED x2, BOOKMARK, DELETED; clean close.
  ASSERT_TRUE(w.Step().ok()) << w.last_error();
  EXPECT_EQ(w.resource_version(), "184481");
  EXPECT_EQ(workload(kNewApiUid), "Deployment/api");
  EXPECT_EQ(*cache.ByPodUid(kWebUid)->pod->Label("version"), "v2");
  auto started = cache.ByContainerId(kPendingStartedId);
  ASSERT_TRUE(started.ok());
  EXPECT_EQ(started->pod->uid, kPendingUid);
  EXPECT_TRUE(cache.ByPodUid(kJobUid)->deleted);
  EXPECT_EQ(w.stats().bookmarks, 1u);

  // 2: ERROR 410 in the stream: relist next, no backoff.
  ASSERT_TRUE(w.Step().ok()) << w.last_error();
  EXPECT_EQ(w.stats().relists_gone, 1u);
  EXPECT_EQ(w.current_backoff_ns(), 0);

  // The service-account token rotates.
  std::ofstream(dir_ / "sa/token") << "token-2\n";
  clock.AdvanceNs(TokenSource::kRecheckNs);

  // 3: relist: node-exporter went away while we were not watching.
  ASSERT_TRUE(w.Step().ok()) << w.last_error();
  EXPECT_EQ(w.resource_version(), "190020");
  EXPECT_TRUE(cache.ByPodUid(kNodeExporterUid)->deleted);
  EXPECT_FALSE(cache.ByPodUid(kWebUid)->deleted);

  // 4: 503: back off 1 s.
  absl::Status s = w.Step();
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
  EXPECT_EQ(w.current_backoff_ns(), kSecond);
  // Jittered: 1 s plus up to 20%, so agents do not retry in step.
  EXPECT_GE(w.next_attempt_ns(), clock.MonotonicNs() + kSecond);
  EXPECT_LT(w.next_attempt_ns(), clock.MonotonicNs() + kSecond * 6 / 5);

  // 5: disconnect in the middle of the second event: the first one counts.
  s = w.Step();
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
  EXPECT_THAT(std::string(s.message()), ::testing::HasSubstr("middle"));
  EXPECT_EQ(w.current_backoff_ns(), 2 * kSecond);
  EXPECT_EQ(*cache.ByPodUid(kPgUid)->pod->Label("tier"), "db");
  EXPECT_EQ(w.resource_version(), "190025");

  // 6: a slow response (64-byte chunks) completes; backoff resets.
  ASSERT_TRUE(w.Step().ok()) << w.last_error();
  EXPECT_EQ(w.resource_version(), "190030");
  EXPECT_EQ(w.current_backoff_ns(), 0);

  // 7: HTTP 410 on the watch request itself; 8: relist.
  ASSERT_TRUE(w.Step().ok()) << w.last_error();
  EXPECT_EQ(w.stats().relists_gone, 2u);
  ASSERT_TRUE(w.Step().ok()) << w.last_error();
  EXPECT_EQ(w.stats().lists, 3u);

  // 9: the server accepts the watch and then says nothing: stall timeout.
  s = w.Step();
  EXPECT_EQ(s.code(), absl::StatusCode::kDeadlineExceeded) << s;
  EXPECT_EQ(w.current_backoff_ns(), kSecond);

  // The API server goes away: exponential backoff, capped; the cache keeps
  // what it knew and pods it never saw stay unknown.
  std::vector<json> requests = server_.Requests();
  server_.Stop();
  for (int64_t want : {2 * kSecond, 4 * kSecond, 4 * kSecond}) {
    s = w.Step();
    EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
    EXPECT_EQ(w.current_backoff_ns(), want);
  }
  EXPECT_EQ(workload(kWebUid), "Deployment/web");
  EXPECT_FALSE(cache.ByPodUid(kWebUid)->deleted);
  EXPECT_EQ(
      cache.ByPodUid("11111111-2222-3333-4444-555555555555").status().code(),
      absl::StatusCode::kNotFound);

  // What the server saw: the node's field selector everywhere, watches
  // resuming from the right resourceVersion with bookmarks, and the rotated
  // token from the relist on.
  ASSERT_EQ(requests.size(), 10u);
  for (const json& r : requests) {
    EXPECT_TRUE(r["matched"].get<bool>()) << r.dump();
    EXPECT_EQ(r["path"], "/api/v1/pods");
    EXPECT_EQ(r["query"]["fieldSelector"], "spec.nodeName=worker-1");
    EXPECT_EQ(r["auth"],
              r["step"].get<int>() < 3 ? "Bearer token-1" : "Bearer token-2")
        << r.dump();
  }
  EXPECT_EQ(requests[1]["query"]["resourceVersion"], "184467");
  EXPECT_EQ(requests[1]["query"]["allowWatchBookmarks"], "true");
  EXPECT_EQ(requests[2]["query"]["resourceVersion"], "184481");
  EXPECT_EQ(requests[6]["query"]["resourceVersion"], "190025");
}

TEST_F(PodWatcherTest, KubeconfigWithClientCertificate) {
  json scenario = json::array(
      {{{"expect", "list"}, {"body_file", kK8s + "/pod_list.json"}}});
  ASSERT_TRUE(server_.Start(dir_, scenario, (dir_ / "ca.crt").string()));
  std::string kubeconfig = absl::StrCat(
      "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
      "clusters:\n- name: k\n  cluster:\n    server: https://127.0.0.1:",
      server_.port(), "\n    certificate-authority-data: ",
      absl::Base64Escape(Slurp(dir_ / "ca.crt")),
      "\nusers:\n- name: u\n  user:\n    client-certificate: cli.crt\n"
      "    client-key-data: ",
      absl::Base64Escape(Slurp(dir_ / "cli.key")),
      "\ncontexts:\n- name: c\n  context: {cluster: k, user: u}\n");
  std::ofstream(dir_ / "kubeconfig") << kubeconfig;
  auto config = LoadKubeconfig((dir_ / "kubeconfig").string());
  ASSERT_TRUE(config.ok()) << config.status();
  // A certificate file (relative to the kubeconfig) with an inline key.
  EXPECT_EQ(config->client_cert_file, (dir_ / "cli.crt").string());
  EXPECT_FALSE(config->client_key_pem.empty());

  FakeClock clock;
  PodCache cache(clock);
  PodWatcher w(*config, "worker-1", &cache, clock);
  ASSERT_TRUE(w.Step().ok()) << w.last_error();
  EXPECT_EQ(cache.stats().live, 6u);
  EXPECT_EQ(server_.Requests()[0]["auth"], "");

  // Without the client certificate the server refuses the handshake.
  KubeApiConfig no_cert = *config;
  no_cert.client_cert_file.clear();
  no_cert.client_key_pem.clear();
  PodWatcher refused(no_cert, "worker-1", &cache, clock);
  EXPECT_FALSE(refused.Step().ok());
}

// The opt-in kubelet source: GET /pods on the kubelet (the complete set for
// the node), polled, with the same backoff on errors.
TEST_F(PodWatcherTest, KubeletPodsPolled) {
  json scenario = json::array({
      {{"expect", "list"}, {"body_file", kK8s + "/pod_list.json"}},
      {{"expect", "list"}, {"status", 503}},
      {{"expect", "list"}, {"body_file", kK8s + "/pod_list_relist.json"}},
  });
  ASSERT_TRUE(server_.Start(dir_, scenario));
  FakeClock clock;
  PodCache cache(clock);
  PodWatcherOptions opt;
  opt.source = PodWatcherOptions::Source::kKubelet;
  opt.kubelet_poll_ns = 10 * kSecond;
  opt.backoff_jitter = 0;
  PodWatcher w(InCluster(), "worker-1", &cache, clock, opt);
  ASSERT_TRUE(w.Step().ok()) << w.last_error();
  EXPECT_TRUE(w.synced());
  EXPECT_EQ(cache.stats().live, 6u);
  EXPECT_EQ(w.next_attempt_ns(), clock.MonotonicNs() + 10 * kSecond);
  ASSERT_TRUE(cache.ByContainerId(kNginxId).ok());
  EXPECT_EQ(cache.ByPodUid(kWebUid)->pod->workload.name, "web");
  clock.AdvanceNs(10 * kSecond);
  absl::Status s = w.Step();
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
  EXPECT_EQ(w.next_attempt_ns(), clock.MonotonicNs() + kSecond);
  EXPECT_EQ(cache.stats().live, 6u);  // kept while the kubelet is away
  EXPECT_FALSE(w.health().last_error.empty());
  clock.AdvanceNs(kSecond);
  ASSERT_TRUE(w.Step().ok()) << w.last_error();
  EXPECT_TRUE(cache.ByPodUid(kNodeExporterUid)->deleted);
  EXPECT_TRUE(w.health().last_error.empty());
  EXPECT_EQ(w.health().stats.lists, 3u);
  std::vector<json> requests = server_.Requests();
  ASSERT_EQ(requests.size(), 3u);
  for (const json& r : requests) {
    EXPECT_EQ(r["path"], "/pods");
    EXPECT_EQ(r["auth"], "Bearer token-1");
  }
  EXPECT_TRUE(server_.Requests(/*nodes=*/true).empty());
}

// The Node object: region, zone and instance type (GA keys beat the
// deprecated beta ones), providerID and GPUs, read once and then every
// node_refresh_ns.
TEST_F(PodWatcherTest, NodeObjectLabels) {
  json scenario = {
      {"steps", json::array({{{"expect", "list"},
                              {"body_file", kK8s + "/pod_list.json"}},
                             {{"expect", "watch"}, {"status", 410}}})},
      {"node_file", kK8s + "/node.json"}};
  ASSERT_TRUE(server_.Start(dir_, scenario));
  FakeClock clock;
  PodCache cache(clock);
  PodWatcherOptions opt;
  opt.node_refresh_ns = 60 * kSecond;
  PodWatcher w(InCluster(), "worker-1", &cache, clock, opt);
  EXPECT_FALSE(w.node().has_value());
  ASSERT_TRUE(w.Step().ok()) << w.last_error();
  std::optional<NodeMeta> node = w.node();
  ASSERT_TRUE(node.has_value());
  std::map<std::string, std::string> labels(node->labels.begin(),
                                            node->labels.end());
  EXPECT_EQ(labels["topology.kubernetes.io/region"], "eu-west-1");
  EXPECT_EQ(labels["topology.kubernetes.io/zone"], "eu-west-1b");
  EXPECT_EQ(labels["node.kubernetes.io/instance-type"], "m6i.2xlarge");
  EXPECT_EQ(labels["karpenter.sh/capacity-type"], "spot");
  EXPECT_EQ(labels.count("team"), 0u);  // only what pricing needs
  EXPECT_EQ(node->provider_id, "aws:///eu-west-1b/i-0a1b2c3d4e5f67890");
  EXPECT_EQ(node->cpu_capacity_millis, 8000);
  EXPECT_EQ(node->memory_capacity_bytes, 32386520LL * 1024);
  ASSERT_TRUE(w.Step().ok());  // the 410: not yet time for the node again
  EXPECT_EQ(server_.Requests(/*nodes=*/true).size(), 1u);
  EXPECT_EQ(server_.Requests(/*nodes=*/true)[0]["path"],
            "/api/v1/nodes/worker-1");
}

// Jitter spreads retries over [backoff, 1.2 x backoff).
TEST(PodWatcherBackoffTest, JitterSpreadsRetries) {
  FakeClock clock;
  PodCache cache(clock);
  KubeApiConfig c;
  c.server = "http://127.0.0.1:1";  // nothing listens: every step fails
  PodWatcherOptions opt;
  opt.initial_backoff_ns = kSecond;
  opt.max_backoff_ns = kSecond;
  opt.connect_timeout_s = 1;
  opt.node_refresh_ns = 0;
  std::set<int64_t> waits;
  for (uint64_t seed = 1; seed <= 8; ++seed) {
    opt.jitter_seed = seed;
    PodWatcher w(c, "n", &cache, clock, opt);
    EXPECT_FALSE(w.Step().ok());
    const int64_t wait = w.next_attempt_ns() - clock.MonotonicNs();
    EXPECT_GE(wait, kSecond);
    EXPECT_LT(wait, kSecond * 6 / 5);
    waits.insert(wait);
  }
  EXPECT_GE(waits.size(), 7u);  // not in step
}

TEST(PodWatcherPathTest, Paths) {
  FakeClock clock;
  PodCache cache(clock);
  KubeApiConfig c;
  c.server = "https://127.0.0.1:1";
  PodWatcher w(c, "node a/b", &cache, clock);
  EXPECT_EQ(
      w.ListPathForTest(""),
      "/api/v1/pods?fieldSelector=spec.nodeName%3Dnode%20a%2Fb&limit=500");
  EXPECT_EQ(w.ListPathForTest("x=y"),
            "/api/v1/pods?fieldSelector=spec.nodeName%3Dnode%20a%2Fb&limit=500"
            "&continue=x%3Dy");
  EXPECT_THAT(w.WatchPathForTest(),
              ::testing::HasSubstr("watch=1&fieldSelector=spec.nodeName%3D"));
  EXPECT_THAT(w.WatchPathForTest(),
              ::testing::HasSubstr("allowWatchBookmarks=true&timeoutSeconds="));
}

}  // namespace
}  // namespace wattlens::identity
