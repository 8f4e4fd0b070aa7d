// SPDX-License-Identifier: Apache-2.0
#include "agent/identity/owner_resolver.h"

#include <map>
#include <string>
#include <tuple>

#include "gtest/gtest.h"

namespace wattlens::identity {
namespace {

PodInfo Pod(std::string name, std::vector<OwnerReference> owners,
            std::vector<std::pair<std::string, std::string>> labels = {}) {
  PodInfo p;
  p.uid = "u-" + name;
  p.name = std::move(name);
  p.namespace_name = "ns";
  p.owners = std::move(owners);
  p.labels = std::move(labels);
  return p;
}

OwnerReference Ctl(std::string kind, std::string name) {
  return OwnerReference{std::move(kind), std::move(name), "uid", true};
}

class FakeLookup : public OwnerLookup {
 public:
  absl::StatusOr<std::optional<OwnerReference>> ControllerOf(
      absl::string_view kind, absl::string_view ns,
      absl::string_view name) const override {
    auto it =
        owners_.find({std::string(kind), std::string(ns), std::string(name)});
    if (it == owners_.end()) return absl::NotFoundError("not cached");
    return it->second;
  }
  void Set(std::string kind, std::string name,
           std::optional<OwnerReference> owner) {
    owners_[{std::move(kind), "ns", std::move(name)}] = std::move(owner);
  }

 private:
  std::map<std::tuple<std::string, std::string, std::string>,
           std::optional<OwnerReference>>
      owners_;
};

TEST(OwnerResolverTest, HeuristicsWithoutLookup) {
  EXPECT_EQ(ResolveWorkload(Pod("web-7c9f6d5b8-x2k4p",
                                {Ctl("ReplicaSet", "web-7c9f6d5b8")},
                                {{"pod-template-hash", "7c9f6d5b8"}})),
            (WorkloadRef{"Deployment", "web", true}));
  // A bare ReplicaSet has no pod-template-hash: it is the top.
  EXPECT_EQ(ResolveWorkload(Pod("rs-abcde", {Ctl("ReplicaSet", "rs")})),
            (WorkloadRef{"ReplicaSet", "rs", false}));
  EXPECT_EQ(ResolveWorkload(
                Pod("backup-28712345-9xk2m", {Ctl("Job", "backup-28712345")})),
            (WorkloadRef{"CronJob", "backup", true}));
  EXPECT_EQ(ResolveWorkload(Pod("migrate-x", {Ctl("Job", "migrate")})),
            (WorkloadRef{"Job", "migrate", false}));
  EXPECT_EQ(
      ResolveWorkload(Pod("db-migrate-v2-abc", {Ctl("Job", "db-migrate-v2")})),
      (WorkloadRef{"Job", "db-migrate-v2", false}));
  EXPECT_EQ(
      ResolveWorkload(Pod("postgres-0", {Ctl("StatefulSet", "postgres")})),
      (WorkloadRef{"StatefulSet", "postgres", false}));
  EXPECT_EQ(ResolveWorkload(Pod("ne-kq8vz", {Ctl("DaemonSet", "ne")})),
            (WorkloadRef{"DaemonSet", "ne", false}));
  EXPECT_EQ(ResolveWorkload(
                Pod("kube-apiserver-worker-1", {Ctl("Node", "worker-1")})),
            (WorkloadRef{"StaticPod", "kube-apiserver", false}));
  EXPECT_EQ(ResolveWorkload(Pod("debug", {})),
            (WorkloadRef{"Pod", "debug", false}));
  // Non-controller owners only: the first one.
  EXPECT_EQ(
      ResolveWorkload(Pod("x", {OwnerReference{"Foo", "bar", "", false}})),
      (WorkloadRef{"Foo", "bar", false}));
}

TEST(OwnerResolverTest, LookupIsExactAndFollowsCustomControllers) {
  FakeLookup lookup;
  lookup.Set("ReplicaSet", "web-7c9f6d5b8", Ctl("Deployment", "web"));
  lookup.Set("Deployment", "web", std::nullopt);
  lookup.Set("ReplicaSet", "canary-5d8f", Ctl("Rollout", "canary"));
  lookup.Set("Job", "nightly-123", Ctl("CronJob", "nightly"));
  lookup.Set("Job", "manual", std::nullopt);

  EXPECT_EQ(ResolveWorkload(
                Pod("web-7c9f6d5b8-a", {Ctl("ReplicaSet", "web-7c9f6d5b8")}),
                &lookup),
            (WorkloadRef{"Deployment", "web", false}));
  // Argo Rollouts: RS owned by a Rollout; the lookup does not know the
  // Rollout, so it is the top.
  EXPECT_EQ(
      ResolveWorkload(Pod("canary-5d8f-b", {Ctl("ReplicaSet", "canary-5d8f")},
                          {{"rollouts-pod-template-hash", "5d8f"}}),
                      &lookup),
      (WorkloadRef{"Rollout", "canary", false}));
  // Short suffix the heuristic would miss; the lookup knows.
  EXPECT_EQ(ResolveWorkload(Pod("nightly-123-c", {Ctl("Job", "nightly-123")}),
                            &lookup),
            (WorkloadRef{"CronJob", "nightly", false}));
  EXPECT_EQ(ResolveWorkload(Pod("manual-d", {Ctl("Job", "manual")}), &lookup),
            (WorkloadRef{"Job", "manual", false}));
  // Unknown to the lookup: heuristics.
  EXPECT_EQ(ResolveWorkload(
                Pod("api-5f6d7c8b9-t", {Ctl("ReplicaSet", "api-5f6d7c8b9")},
                    {{"pod-template-hash", "5f6d7c8b9"}}),
                &lookup),
            (WorkloadRef{"Deployment", "api", true}));
}

TEST(OwnerResolverTest, CyclesAreBounded) {
  FakeLookup lookup;
  lookup.Set("A", "a", Ctl("B", "b"));
  lookup.Set("B", "b", Ctl("A", "a"));
  WorkloadRef w = ResolveWorkload(Pod("p", {Ctl("A", "a")}), &lookup);
  EXPECT_FALSE(w.kind.empty());
}

TEST(OwnerResolverTest, NamingHelpers) {
  EXPECT_EQ(DeploymentFromReplicaSetName("web-abc", "abc"), "web");
  EXPECT_EQ(DeploymentFromReplicaSetName("-abc", "abc"), std::nullopt);
  EXPECT_EQ(DeploymentFromReplicaSetName("web-abc", ""), std::nullopt);
  EXPECT_EQ(DeploymentFromReplicaSetName("web-abd", "abc"), std::nullopt);
  EXPECT_EQ(CronJobFromJobName("a-b-28712345"), "a-b");
  EXPECT_EQ(CronJobFromJobName("x-1234567"), std::nullopt);
  EXPECT_EQ(CronJobFromJobName("x-12345678901"), std::nullopt);
  EXPECT_EQ(CronJobFromJobName("-28712345"), std::nullopt);
  EXPECT_EQ(CronJobFromJobName("x-2871234a"), std::nullopt);
}

}  // namespace
}  // namespace wattlens::identity
