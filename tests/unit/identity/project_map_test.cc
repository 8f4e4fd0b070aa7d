// SPDX-License-Identifier: Apache-2.0
#include "agent/identity/project_map.h"

#include <cstdio>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace wattlens::identity {
namespace {

using ::testing::HasSubstr;

TEST(GlobMatchTest, Basics) {
  EXPECT_TRUE(GlobMatch("abc", "abc"));
  EXPECT_FALSE(GlobMatch("abc", "abcd"));
  EXPECT_TRUE(GlobMatch("*", ""));
  EXPECT_TRUE(
      GlobMatch("*/bitnami/postgresql", "docker.io/bitnami/postgresql"));
  EXPECT_TRUE(GlobMatch("*/bitnami/postgresql", "a/b/c/bitnami/postgresql"));
  EXPECT_FALSE(
      GlobMatch("*/bitnami/postgresql", "docker.io/bitnami/postgresql-repmgr"));
  EXPECT_TRUE(GlobMatch("quay.io/cilium/*", "quay.io/cilium/operator-generic"));
  EXPECT_TRUE(GlobMatch("a*b*c", "aXXbYYc"));
  EXPECT_FALSE(GlobMatch("a*b*c", "aXXbYY"));
  EXPECT_TRUE(GlobMatch("**x**", "yyxyy"));
  // Pathological backtracking stays fast at the bounded sizes.
  std::string text(1024, 'a');
  std::string pattern;
  for (int i = 0; i < 100; ++i) pattern += "a*";
  pattern += "b";
  EXPECT_FALSE(GlobMatch(pattern, text));
}

TEST(ProjectMapTest, ShippedMapParsesAndIsLarge) {
  ProjectMap m;
  ASSERT_TRUE(m.AddLayer(ProjectMap::ShippedText(), "projects.map").ok());
  EXPECT_GT(ProjectMap::Shipped().rule_count(), 250u);
  EXPECT_EQ(ProjectMap::Shipped().rule_count(), m.rule_count());
}

// The 50+ open-source images most common in Kubernetes clusters, as they
// appear in pod specs.
TEST(ProjectMapTest, CommonImages) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"postgres:16", "postgres"},
      {"docker.io/library/postgres:16", "postgres"},
      {"docker.io/bitnami/postgresql:16.3.0-debian-12-r14", "postgres"},
      {"ghcr.io/cloudnative-pg/postgresql:16.3", "postgres"},
      {"mysql:8.4", "mysql"},
      {"docker.io/bitnami/mysql:8.0", "mysql"},
      {"mariadb:11", "mariadb"},
      {"redis:7.2-alpine", "redis"},
      {"docker.io/bitnami/redis:7.2.5", "redis"},
      {"mongo:7", "mongodb"},
      {"docker.io/bitnami/mongodb:7.0", "mongodb"},
      {"nginx:1.27", "nginx"},
      {"nginxinc/nginx-unprivileged:1.27-alpine", "nginx"},
      {"registry.k8s.io/ingress-nginx/controller:v1.10.1", "ingress-nginx"},
      {"registry.k8s.io/ingress-nginx/kube-webhook-certgen:v1.4.1",
       "ingress-nginx"},
      {"envoyproxy/envoy:v1.30.2", "envoy"},
      {"docker.io/istio/proxyv2:1.22.1", "istio"},
      {"docker.io/istio/pilot:1.22.1", "istio"},
      {"registry.k8s.io/coredns/coredns:v1.11.1", "coredns"},
      {"registry.k8s.io/etcd:3.5.12-0", "etcd"},
      {"registry.k8s.io/kube-apiserver:v1.30.2", "kubernetes"},
      {"registry.k8s.io/kube-controller-manager:v1.30.2", "kubernetes"},
      {"registry.k8s.io/kube-scheduler:v1.30.2", "kubernetes"},
      {"registry.k8s.io/kube-proxy:v1.30.2", "kubernetes"},
      {"registry.k8s.io/pause:3.9", "kubernetes"},
      {"quay.io/prometheus/prometheus:v2.53.0", "prometheus"},
      {"prom/prometheus:v2.53.0", "prometheus"},
      {"quay.io/prometheus/alertmanager:v0.27.0", "alertmanager"},
      {"quay.io/prometheus/node-exporter:v1.8.1", "node-exporter"},
      {"quay.io/prometheus/node-exporter", "node-exporter"},
      {"registry.k8s.io/kube-state-metrics/kube-state-metrics:v2.12.0",
       "kube-state-metrics"},
      {"quay.io/prometheus-operator/prometheus-config-reloader:v0.74.0",
       "prometheus-operator"},
      {"docker.io/grafana/grafana:11.1.0", "grafana"},
      {"docker.io/grafana/loki:3.0.0", "loki"},
      {"docker.io/grafana/promtail:3.0.0", "promtail"},
      {"grafana/tempo:2.5.0", "tempo"},
      {"jaegertracing/all-in-one:1.58", "jaeger"},
      {"otel/opentelemetry-collector-contrib:0.103.0",
       "opentelemetry-collector"},
      {"fluent/fluentd-kubernetes-daemonset:v1.16-debian-elasticsearch8-1",
       "fluentd"},
      {"cr.fluentbit.io/fluent/fluent-bit:3.0.7", "fluent-bit"},
      {"docker.elastic.co/elasticsearch/elasticsearch:8.14.1", "elasticsearch"},
      {"docker.elastic.co/kibana/kibana:8.14.1", "kibana"},
      {"docker.elastic.co/logstash/logstash:8.14.1", "logstash"},
      {"docker.io/bitnami/kafka:3.7.0", "kafka"},
      {"confluentinc/cp-kafka:7.6.1", "kafka"},
      {"quay.io/strimzi/kafka:0.41.0-kafka-3.7.0", "kafka"},
      {"zookeeper:3.9", "zookeeper"},
      {"rabbitmq:3.13-management", "rabbitmq"},
      {"nats:2.10-alpine", "nats"},
      {"memcached:1.6", "memcached"},
      {"cassandra:4.1", "cassandra"},
      {"quay.io/cilium/cilium:v1.15.6", "cilium"},
      {"quay.io/cilium/operator-generic:v1.15.6", "cilium"},
      {"quay.io/cilium/tetragon:v1.1.0", "tetragon"},
      {"docker.io/calico/node:v3.28.0", "calico"},
      {"docker.io/flannel/flannel:v0.25.4", "flannel"},
      {"registry.k8s.io/metrics-server/metrics-server:v0.7.1",
       "metrics-server"},
      {"quay.io/jetstack/cert-manager-controller:v1.15.1", "cert-manager"},
      {"quay.io/jetstack/cert-manager-webhook:v1.15.1", "cert-manager"},
      {"quay.io/argoproj/argocd:v2.11.3", "argo-cd"},
      {"hashicorp/vault:1.17", "vault"},
      {"hashicorp/consul:1.19", "consul"},
      {"traefik:v3.0", "traefik"},
      {"haproxy:2.9", "haproxy"},
      {"quay.io/minio/minio:RELEASE.2024-06-13T22-53-53Z", "minio"},
      {"ghcr.io/kedacore/keda:2.14.0", "keda"},
      {"velero/velero:v1.14.0", "velero"},
      {"goharbor/harbor-core:v2.11.0", "harbor"},
      {"gitlab/gitlab-runner:alpine-v17.1.0", "gitlab-runner"},
      {"jenkins/jenkins:lts-jdk17", "jenkins"},
      {"sonarqube:10-community", "sonarqube"},
      {"clickhouse/clickhouse-server:24.5", "clickhouse"},
      {"cockroachdb/cockroach:v24.1.1", "cockroachdb"},
      {"602401143452.dkr.ecr.us-west-2.amazonaws.com/amazon-k8s-cni:v1.18.2",
       "amazon-vpc-cni"},
      {"rancher/mirrored-pause:3.6", "kubernetes"},
      {"rancher/mirrored-coredns-coredns:1.10.1", "coredns"},
      // Through a pull-through mirror.
      {"harbor.corp.example/dockerhub/bitnami/postgresql:16", "postgres"},
      // No rule: the last path component.
      {"ghcr.io/example/payments-api:1.2.3", "payments-api"},
      {"docker.io/library/some-tool", "some-tool"},
      // Not a reference.
      {"sha256:"
       "4c6a1a5b3f2e9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a39281706f5e4d3c2b1a0",
       "unknown"},
  };
  const ProjectMap& m = ProjectMap::Shipped();
  for (const auto& [ref, project] : cases) {
    EXPECT_EQ(m.ProjectForImageRef(ref), project) << ref;
  }
}

TEST(ProjectMapTest, UserLayerOverridesShippedAndSpecificityInsideLayer) {
  ProjectMap m = ProjectMap::Shipped();
  ASSERT_TRUE(m.AddLayer(R"(# site rules
image  */bitnami/postgresql   pg-platform   # our fork
image  ghcr.io/acme/*         acme
image  ghcr.io/acme/billing*  billing
image  ghcr.io/acme/billing   billing-exact
image  ghcr.io/acme/x         first
image  ghcr.io/acme/x         second
package  nginx-core           my-nginx
)",
                         "site.map")
                  .ok());
  EXPECT_EQ(m.layer_count(), 2);
  EXPECT_EQ(m.ProjectForImageRef("bitnami/postgresql:16"), "pg-platform");
  EXPECT_EQ(m.ProjectForImageRef("postgres:16"), "postgres");
  EXPECT_EQ(m.ProjectForImageRef("ghcr.io/acme/frontend:1"), "acme");
  EXPECT_EQ(m.ProjectForImageRef("ghcr.io/acme/billing-worker:1"), "billing");
  EXPECT_EQ(m.ProjectForImageRef("ghcr.io/acme/billing:1"), "billing-exact");
  EXPECT_EQ(m.ProjectForImageRef("ghcr.io/acme/x"), "second");
  EXPECT_EQ(m.ProjectForPackage("nginx-core"), "my-nginx");
  EXPECT_EQ(m.ProjectForPackage("nginx"), "nginx");
  EXPECT_EQ(m.ProjectForPackage("no-such-package"), std::nullopt);
}

TEST(ProjectMapTest, BadLayersAreRejectedWithLineAndLeaveMapUnchanged) {
  struct Bad {
    std::string text;
    std::string why;
  };
  std::vector<Bad> cases = {
      {"image a", "site.map:1: expected <kind> <pattern> <project>"},
      {"\n\nimage a b c", "site.map:3: expected"},
      {"container a b", "site.map:1: unknown kind"},
      {"image a Postgres", "bad project name"},
      {"image a " + std::string(64, 'x'), "bad project name"},
      {"image " + std::string(600, 'x') + " p", "pattern longer than"},
      {"image a\x01 p", "non-printable"},
      {std::string(kMaxProjectMapBytes + 1, '#'), "larger than"},
  };
  for (const Bad& b : cases) {
    ProjectMap m;
    ASSERT_TRUE(m.AddLayer("image x/y z", "base").ok());
    absl::Status s = m.AddLayer(b.text, "site.map");
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << b.text;
    EXPECT_THAT(s.message(), HasSubstr(b.why));
    EXPECT_EQ(m.rule_count(), 1u);
    EXPECT_EQ(m.layer_count(), 1);
  }
}

TEST(ProjectMapTest, AddFile) {
  std::string path = ::testing::TempDir() + "/projects_test.map";
  {
    std::ofstream f(path);
    f << "image docker.io/library/postgres  pg\r\n";
  }
  ProjectMap m = ProjectMap::Shipped();
  ASSERT_TRUE(m.AddFile(path).ok());
  EXPECT_EQ(m.ProjectForImageRef("postgres:16"), "pg");
  std::remove(path.c_str());
  EXPECT_EQ(m.AddFile(path).code(), absl::StatusCode::kNotFound);
}

TEST(ProjectMapTest, EveryShippedProjectNameIsValid) {
  for (absl::string_view line :
       absl::StrSplit(ProjectMap::ShippedText(), '\n')) {
    line = line.substr(0, line.find('#'));
    std::vector<absl::string_view> f =
        absl::StrSplit(line, ' ', absl::SkipEmpty());
    if (f.empty()) continue;
    ASSERT_EQ(f.size(), 3u) << line;
    EXPECT_TRUE(IsValidProjectName(f[2])) << line;
  }
}

}  // namespace
}  // namespace wattlens::identity
