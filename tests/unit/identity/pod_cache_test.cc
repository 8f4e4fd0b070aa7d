// SPDX-License-Identifier: Apache-2.0
#include "agent/identity/pod_cache.h"

#include <string>

#include "agent/common/clock.h"
#include "gtest/gtest.h"

namespace wattlens::identity {
namespace {

PodInfo Pod(std::string uid, std::string cid = "", std::string mirror = "") {
  PodInfo p;
  p.uid = uid;
  p.name = "pod-" + uid;
  p.namespace_name = "ns";
  p.mirror_hash = std::move(mirror);
  ContainerInfo c;
  c.name = "c";
  c.container_id = std::move(cid);
  p.containers.push_back(c);
  return p;
}

TEST(PodCacheTest, UpsertLookupAndIndexes) {
  FakeClock clock;
  PodCache cache(clock);
  cache.Upsert(Pod("u1", "aaaa"));
  cache.Upsert(Pod("u2", "", "hash2"));

  auto m = cache.ByContainerId("aaaa");
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->pod->uid, "u1");
  ASSERT_NE(m->container, nullptr);
  EXPECT_EQ(m->container->name, "c");
  EXPECT_TRUE(cache.ByPodUid("hash2").ok());  // static pod by config hash
  EXPECT_EQ(cache.ByPodUid("u3").status().code(), absl::StatusCode::kNotFound);

  // Update replaces the container index.
  cache.Upsert(Pod("u1", "bbbb"));
  EXPECT_FALSE(cache.ByContainerId("aaaa").ok());
  EXPECT_TRUE(cache.ByContainerId("bbbb").ok());
}

TEST(PodCacheTest, LookupByCgroupIdentity) {
  FakeClock clock;
  PodCache cache(clock);
  cache.Upsert(Pod("0f4c7a2e-93d1-4b6a-8e25-1c7d9b3f6a08", "aaaa"));
  CgroupIdentity id;
  id.pod_uid = "0f4c7a2e-93d1-4b6a-8e25-1c7d9b3f6a08";
  id.container_id = "aaaa";
  auto m = cache.Lookup(id);
  ASSERT_TRUE(m.ok());
  EXPECT_NE(m->container, nullptr);
  // A container the pod status does not list yet: pod-level match.
  id.container_id = "ffff";
  m = cache.Lookup(id);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->container, nullptr);
  // A pod never seen (API server down when it started): unknown.
  id.pod_uid = "11111111-2222-3333-4444-555555555555";
  EXPECT_EQ(cache.Lookup(id).status().code(), absl::StatusCode::kNotFound);
  EXPECT_FALSE(cache.Lookup(CgroupIdentity{}).ok());
}

TEST(PodCacheTest, DeletedPodsAreRetainedThenExpire) {
  FakeClock clock;
  PodCache cache(clock, 16, /*deleted_retention_ns=*/1000);
  cache.Upsert(Pod("u1", "aaaa"));
  auto held = cache.ByPodUid("u1");
  cache.MarkDeleted("u1");
  auto m = cache.ByContainerId("aaaa");
  ASSERT_TRUE(m.ok());
  EXPECT_TRUE(m->deleted);
  clock.AdvanceNs(999);
  cache.ExpireDeleted();
  EXPECT_TRUE(cache.ByPodUid("u1").ok());
  clock.AdvanceNs(1);
  cache.ExpireDeleted();
  EXPECT_FALSE(cache.ByPodUid("u1").ok());
  EXPECT_FALSE(cache.ByContainerId("aaaa").ok());
  EXPECT_EQ(cache.stats().expired, 1u);
  // A reader's snapshot outlives the entry.
  EXPECT_EQ(held->pod->name, "pod-u1");
}

TEST(PodCacheTest, ReplaceAllMarksMissingPodsDeleted) {
  FakeClock clock;
  PodCache cache(clock);
  cache.Upsert(Pod("u1"));
  cache.Upsert(Pod("u2"));
  cache.ReplaceAll({Pod("u2"), Pod("u3")});
  PodCache::Stats s = cache.stats();
  EXPECT_EQ(s.live, 2u);
  EXPECT_EQ(s.deleted, 1u);
  EXPECT_TRUE(cache.ByPodUid("u1")->deleted);
  EXPECT_FALSE(cache.ByPodUid("u3")->deleted);
}

TEST(PodCacheTest, BoundedEvictsDeletedFirstThenOldest) {
  FakeClock clock;
  PodCache cache(clock, /*capacity=*/3);
  cache.Upsert(Pod("a"));
  clock.AdvanceNs(1);
  cache.Upsert(Pod("b"));
  clock.AdvanceNs(1);
  cache.Upsert(Pod("c"));
  cache.MarkDeleted("c");
  cache.Upsert(Pod("d"));  // evicts deleted c
  EXPECT_FALSE(cache.ByPodUid("c").ok());
  cache.Upsert(Pod("e"));  // evicts oldest live a
  EXPECT_FALSE(cache.ByPodUid("a").ok());
  EXPECT_TRUE(cache.ByPodUid("b").ok());
  PodCache::Stats s = cache.stats();
  EXPECT_EQ(s.evicted_deleted, 1u);
  EXPECT_EQ(s.evicted_live, 1u);
  EXPECT_EQ(s.live, 3u);
}

}  // namespace
}  // namespace wattlens::identity
