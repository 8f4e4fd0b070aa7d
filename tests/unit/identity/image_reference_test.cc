// SPDX-License-Identifier: Apache-2.0
#include "agent/identity/image_reference.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace wattlens::identity {
namespace {

using ::testing::HasSubstr;

constexpr char kDigest[] =
    "sha256:"
    "4c6a1a5b3f2e9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a39281706f5e4d3c2b1a0";

struct Good {
  std::string ref;
  std::string registry;
  std::string repository;
  std::string tag;
  std::string digest;
};

TEST(ImageReferenceTest, ParsesAndNormalises) {
  std::vector<Good> cases = {
      {"postgres", "docker.io", "library/postgres", "", ""},
      {"postgres:16", "docker.io", "library/postgres", "16", ""},
      {"docker.io/library/postgres:16", "docker.io", "library/postgres", "16",
       ""},
      {"index.docker.io/library/redis:7.2-alpine", "docker.io", "library/redis",
       "7.2-alpine", ""},
      {"bitnami/postgresql:16.3.0-debian-12-r14", "docker.io",
       "bitnami/postgresql", "16.3.0-debian-12-r14", ""},
      {"quay.io/prometheus/node-exporter", "quay.io",
       "prometheus/node-exporter", "", ""},
      {"quay.io/prometheus/node-exporter:v1.8.1", "quay.io",
       "prometheus/node-exporter", "v1.8.1", ""},
      {"registry.k8s.io/ingress-nginx/controller:v1.10.1@" +
           std::string(kDigest),
       "registry.k8s.io", "ingress-nginx/controller", "v1.10.1", kDigest},
      {"docker.io/library/nginx@" + std::string(kDigest), "docker.io",
       "library/nginx", "", kDigest},
      {"docker-pullable://nginx@" + std::string(kDigest), "docker.io",
       "library/nginx", "", kDigest},
      {"localhost:5000/team/app:1.0", "localhost:5000", "team/app", "1.0", ""},
      {"localhost/app", "localhost", "app", "", ""},
      {"myregistry.local:5000/a/b/c/d:latest", "myregistry.local:5000",
       "a/b/c/d", "latest", ""},
      {"Registry.Example.COM/ns/img", "Registry.Example.COM", "ns/img", "", ""},
      {"[::1]:5000/img:x", "[::1]:5000", "img", "x", ""},
      {"602401143452.dkr.ecr.us-west-2.amazonaws.com/amazon-k8s-cni:v1.18.2",
       "602401143452.dkr.ecr.us-west-2.amazonaws.com", "amazon-k8s-cni",
       "v1.18.2", ""},
      {"ghcr.io/open-telemetry/opentelemetry-collector-releases/"
       "opentelemetry-collector-k8s:0.102.1",
       "ghcr.io",
       "open-telemetry/opentelemetry-collector-releases/"
       "opentelemetry-collector-k8s",
       "0.102.1", ""},
      {"quay.io/sustainable_computing_io/kepler:release-0.7.11", "quay.io",
       "sustainable_computing_io/kepler", "release-0.7.11", ""},
      {"a__b/c-d--e.f:T_1", "docker.io", "a__b/c-d--e.f", "T_1", ""},
  };
  for (const Good& c : cases) {
    absl::StatusOr<ImageReference> r = ParseImageReference(c.ref);
    ASSERT_TRUE(r.ok()) << c.ref << ": " << r.status();
    EXPECT_EQ(r->registry, c.registry) << c.ref;
    EXPECT_EQ(r->repository, c.repository) << c.ref;
    EXPECT_EQ(r->tag, c.tag) << c.ref;
    EXPECT_EQ(r->digest, c.digest) << c.ref;
  }
}

TEST(ImageReferenceTest, NameAndShortName) {
  auto r = ParseImageReference("quay.io/prometheus/node-exporter:v1.8.1");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->Name(), "quay.io/prometheus/node-exporter");
  EXPECT_EQ(r->ShortName(), "node-exporter");
  r = ParseImageReference("postgres:16");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->Name(), "docker.io/library/postgres");
  EXPECT_EQ(r->ShortName(), "postgres");
}

TEST(ImageReferenceTest, RejectsWithReasons) {
  struct Bad {
    std::string ref;
    std::string why;
  };
  std::vector<Bad> cases = {
      {"", "empty"},
      {std::string(2000, 'a'), "longer than"},
      {"Postgres", "lower-case"},
      {"docker.io/Library/postgres", "lower-case"},
      {"nginx latest", "whitespace"},
      {"nginx\n", "whitespace"},
      {std::string("ngi\0nx", 6), "control"},
      {"caf\xc3\xa9:1", "non-ASCII"},
      {"sha256:"
       "4c6a1a5b3f2e9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a39281706f5e4d3c2b1a0",
       "image ID"},
      {"4c6a1a5b3f2e9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a39281706f5e4d3c2b1a0",
       "image ID"},
      {"nginx@sha256:abc", "64 hex"},
      {"nginx@sha256:" + std::string(64, 'G'), "hex"},
      {"nginx@", "algorithm:hex"},
      {"nginx:", "bad tag"},
      {"nginx:-x", "bad tag"},
      {"nginx:" + std::string(200, 'a'), "bad tag"},
      {":tag", "no repository"},
      {"a//b", "empty path component"},
      {"/nginx", "empty path component"},
      {"nginx/", "empty path component"},
      {"-nginx", "lower-case"},
      {"bad_host:99999999/x", "bad registry"},
      {"exa mple.com/x", "whitespace"},
      {"example..com/x", "bad registry"},
      {"-bad.com/x", "bad registry"},
      {"../../etc/passwd", "bad registry"},
  };
  for (const Bad& c : cases) {
    absl::StatusOr<ImageReference> r = ParseImageReference(c.ref);
    ASSERT_FALSE(r.ok()) << c.ref;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(r.status().message(), HasSubstr(c.why)) << c.ref;
  }
}

}  // namespace
}  // namespace wattlens::identity
