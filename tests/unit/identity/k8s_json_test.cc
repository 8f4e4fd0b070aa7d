// SPDX-License-Identifier: Apache-2.0
#include "agent/identity/k8s_json.h"

#include <fstream>
#include <sstream>
#include <string>

#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace wattlens::identity {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;

constexpr char kNginxId[] =
    "c842e7e9efb61e3cc052505d39c50d0e0ae82d6b04405ac03322df3549cdf6e0";
constexpr char kInitId[] =
    "752850bd9a0fbc7faf55ac000f8f3932b93308f7fc08656d38962994bfa1b370";

std::string ReadTestdata(const std::string& name) {
  std::ifstream f(std::string(WATTLENS_TESTDATA_DIR) + "/identity/k8s/" + name);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

TEST(K8sJsonTest, DecodesSinglePod) {
  DecodeStats stats;
  absl::StatusOr<PodInfo> pod = DecodePod(ReadTestdata("pod_web.json"), &stats);
  ASSERT_TRUE(pod.ok()) << pod.status();
  EXPECT_EQ(pod->uid, "0f4c7a2e-93d1-4b6a-8e25-1c7d9b3f6a08");
  EXPECT_EQ(pod->name, "web-7c9f6d5b8-x2k4p");
  EXPECT_EQ(pod->namespace_name, "shop");
  EXPECT_EQ(pod->node_name, "worker-1");
  EXPECT_EQ(pod->phase, "Running");
  EXPECT_EQ(pod->qos_class, "Burstable");
  EXPECT_EQ(pod->resource_version, "184401");
  EXPECT_FALSE(pod->terminating);
  EXPECT_THAT(pod->labels,
              testing::ElementsAre(Pair("app", "web"),
                                   Pair("pod-template-hash", "7c9f6d5b8"),
                                   Pair("security.istio.io/tlsMode", "istio")));
  ASSERT_EQ(pod->owners.size(), 1u);
  EXPECT_EQ(pod->owners[0].kind, "ReplicaSet");
  EXPECT_EQ(pod->owners[0].name, "web-7c9f6d5b8");
  EXPECT_TRUE(pod->owners[0].controller);

  ASSERT_EQ(pod->containers.size(), 3u);
  const ContainerInfo& init = pod->containers[0];
  EXPECT_EQ(init.name, "istio-init");
  EXPECT_EQ(init.type, ContainerInfo::Type::kInit);
  EXPECT_EQ(init.container_id, kInitId);
  const ContainerInfo& nginx = pod->containers[1];
  EXPECT_EQ(nginx.name, "nginx");
  EXPECT_EQ(nginx.image, "nginx:1.27");
  EXPECT_THAT(nginx.image_id, HasSubstr("docker.io/library/nginx@sha256:"));
  EXPECT_EQ(nginx.container_id, kNginxId);
  EXPECT_EQ(nginx.runtime, ContainerRuntime::kContainerd);
  EXPECT_EQ(nginx.requests.cpu_millis, 250);
  EXPECT_EQ(nginx.requests.memory_bytes, 64LL << 20);
  EXPECT_EQ(nginx.limits.cpu_millis, 1000);
  EXPECT_EQ(nginx.limits.memory_bytes, 128LL << 20);
  const ContainerInfo& proxy = pod->containers[2];
  EXPECT_EQ(proxy.name, "istio-proxy");  // matched by name, not position
  EXPECT_EQ(proxy.limits.memory_bytes, 1LL << 30);
  EXPECT_EQ(stats.quantities_invalid, 0u);
  EXPECT_EQ(pod->FindContainerById(kNginxId), &pod->containers[1]);
}

TEST(K8sJsonTest, NeverKeepsEnvOrCommandLines) {
  std::string text = ReadTestdata("pod_web.json");
  ASSERT_THAT(text, HasSubstr("s3cr3t-do-not-export"));  // fixture has them
  absl::StatusOr<PodInfo> pod = DecodePod(text);
  ASSERT_TRUE(pod.ok());
  // Nothing of the pod's env or command survives into PodInfo.
  for (const ContainerInfo& c : pod->containers) {
    for (const std::string* s : {&c.name, &c.image, &c.image_id}) {
      EXPECT_THAT(*s, ::testing::Not(HasSubstr("s3cr3t")));
    }
  }
  for (const auto& [k, v] : pod->labels) {
    EXPECT_THAT(v, ::testing::Not(HasSubstr("s3cr3t")));
  }
}

TEST(K8sJsonTest, DecodesPodList) {
  DecodeStats stats;
  absl::StatusOr<PodList> list =
      DecodePodList(ReadTestdata("pod_list.json"), &stats);
  ASSERT_TRUE(list.ok()) << list.status();
  EXPECT_EQ(list->resource_version, "184467");
  EXPECT_TRUE(list->continue_token.empty());
  ASSERT_EQ(list->pods.size(), 6u);
  EXPECT_EQ(stats.pods_dropped, 0u);

  const PodInfo& pg = list->pods[1];
  EXPECT_EQ(pg.name, "postgres-0");
  EXPECT_EQ(pg.qos_class, "Guaranteed");
  EXPECT_EQ(pg.containers[0].requests.cpu_millis, 2000);
  EXPECT_EQ(pg.containers[0].limits.memory_bytes, 4LL << 30);

  const PodInfo& job = list->pods[3];
  EXPECT_EQ(job.phase, "Succeeded");
  EXPECT_EQ(job.containers[0].requests.cpu_millis, 500);
  EXPECT_EQ(job.containers[0].requests.memory_bytes, 1000000000);
  EXPECT_FALSE(job.containers[0].limits.cpu_millis.has_value());

  const PodInfo& api = list->pods[4];
  EXPECT_EQ(api.mirror_hash, "5b3c1f0d2e4a69788c7b6a5d4e3f2a1b");
  EXPECT_EQ(api.owners[0].kind, "Node");

  const PodInfo& pending = list->pods[5];
  EXPECT_EQ(pending.phase, "Pending");
  ASSERT_EQ(pending.containers.size(), 1u);
  EXPECT_TRUE(pending.containers[0].container_id.empty());
}

TEST(K8sJsonTest, DecodesWatchStream) {
  std::vector<std::string> lines;
  JsonLineSplitter splitter;
  std::string body = ReadTestdata("watch_events.jsonl");
  // Feed in awkward chunks, as a network would deliver them.
  for (size_t i = 0; i < body.size(); i += 777) {
    ASSERT_TRUE(
        splitter.Feed(absl::string_view(body).substr(i, 777), &lines).ok());
  }
  ASSERT_EQ(lines.size(), 5u);
  EXPECT_EQ(splitter.buffered(), 0u);

  std::vector<WatchEvent> ev;
  for (const std::string& l : lines) {
    absl::StatusOr<WatchEvent> e = DecodeWatchEvent(l);
    ASSERT_TRUE(e.ok()) << e.status();
    ev.push_back(*std::move(e));
  }
  EXPECT_EQ(ev[0].type, WatchEvent::Type::kAdded);
  EXPECT_EQ(ev[0].pod->name, "api-5f6d7c8b9-t7wq2");
  EXPECT_EQ(ev[0].resource_version, "184470");
  EXPECT_EQ(ev[1].type, WatchEvent::Type::kModified);
  EXPECT_EQ(*ev[1].pod->Label("version"), "v2");
  EXPECT_EQ(ev[2].type, WatchEvent::Type::kModified);
  EXPECT_FALSE(ev[2].pod->containers[0].container_id.empty());
  EXPECT_EQ(ev[3].type, WatchEvent::Type::kBookmark);
  EXPECT_EQ(ev[3].resource_version, "184480");
  EXPECT_TRUE(ev[3].initial_events_end);
  EXPECT_FALSE(ev[3].pod.has_value());
  EXPECT_EQ(ev[4].type, WatchEvent::Type::kDeleted);
  EXPECT_TRUE(ev[4].pod->terminating);
  EXPECT_EQ(WatchEventTypeName(ev[4].type), "DELETED");

  absl::StatusOr<WatchEvent> gone =
      DecodeWatchEvent(ReadTestdata("watch_gone.jsonl"));
  ASSERT_TRUE(gone.ok()) << gone.status();
  EXPECT_EQ(gone->type, WatchEvent::Type::kError);
  EXPECT_EQ(gone->error_code, 410);
  EXPECT_EQ(gone->error_reason, "Expired");
  EXPECT_TRUE(gone->IsGone());
}

TEST(K8sJsonTest, MalformedInputIsAnError) {
  struct Bad {
    std::string text;
    std::string why;
  };
  std::vector<Bad> cases = {
      {"", "malformed"},
      {"{", "malformed"},
      {"[]", "not an object"},
      {"\"x\"", "not an object"},
      {"{\"kind\":\"Pod\"}", "without metadata"},
      {"{\"metadata\":{\"name\":\"a\"}}", "metadata.uid"},
      {"{\"metadata\":{\"uid\":7,\"name\":\"a\"}}", "metadata.uid"},
      {"{\"metadata\":{\"uid\":\"u\"}}", "metadata.name"},
      {"{\"kind\":\"Service\",\"metadata\":{\"uid\":\"u\",\"name\":\"a\"}}",
       "expected kind Pod"},
      {std::string(100, '[') + std::string(100, ']'), "nested deeper"},
      {"{\"a\":\"\xff\"}", "malformed"},
  };
  for (const Bad& b : cases) {
    absl::StatusOr<PodInfo> pod = DecodePod(b.text);
    ASSERT_FALSE(pod.ok()) << b.text;
    EXPECT_THAT(pod.status().message(), HasSubstr(b.why)) << b.text;
  }
  EXPECT_FALSE(DecodeWatchEvent("{\"type\":\"ADDED\"}").ok());
  EXPECT_FALSE(DecodeWatchEvent("{\"type\":\"WHAT\",\"object\":{}}").ok());
  EXPECT_FALSE(DecodeWatchEvent("{\"type\":\"BOOKMARK\",\"object\":{}}").ok());
  EXPECT_FALSE(DecodePodList("{\"kind\":\"PodList\",\"items\":5}").ok());
}

TEST(K8sJsonTest, WrongTypesDegradeFieldByFieldAndAreCounted) {
  std::string labels;
  for (int i = 0; i < 100; ++i) {
    labels += "\"k" + std::to_string(i) + "\":\"v\",";
  }
  labels += "\"num\":5";
  std::string text = R"({"metadata":{"uid":"u1","name":"p","namespace":7,
    "labels":{)" + labels +
                     R"(},
    "ownerReferences":[{"kind":"ReplicaSet"},{"kind":"Job","name":"j",
      "controller":"yes"}, 5]},
    "spec":{"containers":[{"name":"a","image":5,
      "resources":{"requests":{"cpu":"lots","memory":1024},
                   "limits":{"cpu":{"x":1}}}},
      {"image":"no-name"}, 7],
      "initContainers":"nope"},
    "status":{"containerStatuses":[{"name":"a","containerID":"garbage"}],
      "phase":["Running"]}})";
  DecodeStats stats;
  absl::StatusOr<PodInfo> pod = DecodePod(text, &stats);
  ASSERT_TRUE(pod.ok()) << pod.status();
  EXPECT_EQ(pod->namespace_name, "");
  EXPECT_EQ(pod->phase, "");
  EXPECT_EQ(pod->labels.size(), kMaxLabelsPerPod);
  EXPECT_EQ(stats.labels_dropped, 101u - kMaxLabelsPerPod);
  ASSERT_EQ(pod->owners.size(), 1u);
  EXPECT_EQ(pod->owners[0].kind, "Job");
  EXPECT_FALSE(pod->owners[0].controller);
  ASSERT_EQ(pod->containers.size(), 1u);
  EXPECT_EQ(pod->containers[0].image, "");
  EXPECT_EQ(pod->containers[0].container_id, "");
  EXPECT_FALSE(pod->containers[0].requests.cpu_millis.has_value());
  EXPECT_EQ(pod->containers[0].requests.memory_bytes, 1024);
  EXPECT_EQ(stats.quantities_invalid, 2u);
  EXPECT_EQ(stats.containers_dropped, 2u);

  DecodeStats list_stats;
  absl::StatusOr<PodList> list = DecodePodList(
      R"({"kind":"PodList","metadata":{"resourceVersion":"9",
          "continue":"tok"},
          "items":[{"metadata":{"uid":"a","name":"a"}}, 5, {"metadata":{}}]})",
      &list_stats);
  ASSERT_TRUE(list.ok()) << list.status();
  EXPECT_EQ(list->pods.size(), 1u);
  EXPECT_EQ(list->continue_token, "tok");
  EXPECT_EQ(list_stats.pods_dropped, 2u);
}

TEST(JsonLineSplitterTest, BoundsLinesAndSkipsBlanks) {
  JsonLineSplitter s(/*max_line=*/10);
  std::vector<std::string> out;
  ASSERT_TRUE(s.Feed("abc\n\r\n  \nde", &out).ok());
  EXPECT_THAT(out, testing::ElementsAre("abc"));
  EXPECT_EQ(s.buffered(), 2u);
  ASSERT_TRUE(s.Feed("f\n", &out).ok());
  EXPECT_THAT(out, testing::ElementsAre("abc", "def"));
  absl::Status st = s.Feed("0123456789abc", &out);
  EXPECT_EQ(st.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(s.buffered(), 0u);
}

TEST(K8sJsonTest, NodePodCidrsFromSpec) {
  // Single-stack, spec.podCIDR only (servers before 1.16 set no podCIDRs).
  absl::StatusOr<NodeMeta> single = DecodeNode(ReadTestdata("node.json"));
  ASSERT_TRUE(single.ok()) << single.status();
  EXPECT_THAT(single->pod_cidrs, ElementsAre("10.244.1.0/24"));
  // Dual-stack: spec.podCIDRs wins over the (duplicated) spec.podCIDR.
  absl::StatusOr<NodeMeta> dual =
      DecodeNode(ReadTestdata("node_dualstack.json"));
  ASSERT_TRUE(dual.ok()) << dual.status();
  EXPECT_THAT(dual->pod_cidrs,
              ElementsAre("10.244.1.0/24", "fd00:10:244:1::/64"));
}

TEST(K8sJsonTest, NodePodCidrsOfHostileNodesAreBoundedNotFatal) {
  // Wrong types, empty and over-long strings are dropped whole (a cut CIDR
  // would be a different one); at most kMaxPodCidrs are kept; the rest of
  // the Node still decodes.
  const std::string long_cidr(kMaxCidrBytes + 1, '1');
  const std::string json = R"({"kind": "Node", "metadata": {"name": "n"},
      "spec": {"providerID": "p", "podCIDRs": [7, "", ")" +
                           long_cidr + R"(", {"a": 1}, "10.0.1.0/24",
                           "10.0.2.0/24", "10.0.3.0/24", "10.0.4.0/24",
                           "10.0.5.0/24"]}})";
  absl::StatusOr<NodeMeta> node = DecodeNode(json);
  ASSERT_TRUE(node.ok()) << node.status();
  EXPECT_EQ(node->provider_id, "p");
  EXPECT_THAT(node->pod_cidrs, ElementsAre("10.0.1.0/24", "10.0.2.0/24",
                                           "10.0.3.0/24", "10.0.4.0/24"));
  // podCIDRs not an array, podCIDR not a string: none.
  node = DecodeNode(R"({"kind": "Node", "metadata": {"name": "n"},
      "spec": {"podCIDRs": "10.0.0.0/24", "podCIDR": 10}})");
  ASSERT_TRUE(node.ok()) << node.status();
  EXPECT_TRUE(node->pod_cidrs.empty());
}

}  // namespace
}  // namespace wattlens::identity
