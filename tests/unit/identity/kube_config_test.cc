// SPDX-License-Identifier: Apache-2.0
#include "agent/identity/kube_config.h"

#include <filesystem>
#include <fstream>
#include <map>

#include "absl/strings/escaping.h"
#include "agent/common/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace wattlens::identity {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

EnvLookup FakeEnv(std::map<std::string, std::string> vars) {
  return [vars](const char* name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

class KubeConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) /
           ("kubeconfig-" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string Write(const std::string& name, const std::string& text) {
    fs::path p = dir_ / name;
    std::ofstream(p) << text;
    return p.string();
  }
  fs::path dir_;
};

TEST_F(KubeConfigTest, InCluster) {
  EXPECT_EQ(InClusterConfig(FakeEnv({}), dir_.string()).status().code(),
            absl::StatusCode::kFailedPrecondition);
  auto env = FakeEnv({{"KUBERNETES_SERVICE_HOST", "10.96.0.1"},
                      {"KUBERNETES_SERVICE_PORT", "443"}});
  // Env set but no service-account files mounted.
  auto c = InClusterConfig(env, dir_.string());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(c.status().message(), HasSubstr("token"));
  Write("token", "tok\n");
  Write("ca.crt", "pem");
  c = InClusterConfig(env, dir_.string());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->server, "https://10.96.0.1:443");
  EXPECT_EQ(c->token_file, (dir_ / "token").string());
  EXPECT_EQ(c->ca_file, (dir_ / "ca.crt").string());
  c = InClusterConfig(FakeEnv({{"KUBERNETES_SERVICE_HOST", "fd00::1"},
                               {"KUBERNETES_SERVICE_PORT", "6443"}}),
                      dir_.string());
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->server, "https://[fd00::1]:6443");
}

TEST_F(KubeConfigTest, KubeconfigUsers) {
  std::string ca = absl::Base64Escape("-----BEGIN CERTIFICATE-----\nCA\n");
  std::string cert = absl::Base64Escape("CERT");
  std::string key = absl::Base64Escape("KEY");
  std::string path = Write("config", R"(apiVersion: v1
kind: Config
current-context: token-ctx
clusters:
- name: prod
  cluster:
    server: https://api.prod.example:6443/
    certificate-authority-data: )" + ca + R"(
- name: lab
  cluster:
    server: https://127.0.0.1:6443
    certificate-authority: pki/ca.crt
    insecure-skip-tls-verify: true
users:
- name: reader
  user:
    token: abc.def
- name: cert-files
  user:
    client-certificate: pki/client.crt
    client-key: /abs/client.key
- name: cert-data
  user:
    client-certificate-data: )" + cert + R"(
    client-key-data: )" + key + R"(
- name: sso
  user:
    exec:
      command: kubelogin
- name: half
  user:
    client-certificate: a.crt
contexts:
- name: token-ctx
  context: {cluster: prod, user: reader, namespace: default}
- name: files-ctx
  context: {cluster: lab, user: cert-files}
- name: data-ctx
  context: {cluster: prod, user: cert-data}
- name: sso-ctx
  context: {cluster: prod, user: sso}
- name: half-ctx
  context: {cluster: prod, user: half}
- name: dangling
  context: {cluster: nowhere, user: reader}
)");
  auto c = LoadKubeconfig(path);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->server, "https://api.prod.example:6443");
  EXPECT_EQ(c->ca_pem, "-----BEGIN CERTIFICATE-----\nCA\n");
  EXPECT_EQ(c->token, "abc.def");
  EXPECT_FALSE(c->insecure_skip_tls_verify);

  c = LoadKubeconfig(path, "files-ctx");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->ca_file, (dir_ / "pki/ca.crt").string());
  EXPECT_EQ(c->client_cert_file, (dir_ / "pki/client.crt").string());
  EXPECT_EQ(c->client_key_file, "/abs/client.key");
  EXPECT_TRUE(c->insecure_skip_tls_verify);

  c = LoadKubeconfig(path, "data-ctx");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->client_cert_pem, "CERT");
  EXPECT_EQ(c->client_key_pem, "KEY");

  EXPECT_EQ(LoadKubeconfig(path, "sso-ctx").status().code(),
            absl::StatusCode::kUnimplemented);
  EXPECT_EQ(LoadKubeconfig(path, "half-ctx").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(LoadKubeconfig(path, "nope").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(LoadKubeconfig(path, "dangling").status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(KubeConfigTest, KubeconfigErrors) {
  EXPECT_EQ(LoadKubeconfig((dir_ / "missing").string()).status().code(),
            absl::StatusCode::kNotFound);
  auto bad = LoadKubeconfig(Write("bad", "clusters: [\n  - {name: a\n"));
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr("bad:"));
  EXPECT_EQ(LoadKubeconfig(Write("empty", "")).status().code(),
            absl::StatusCode::kInvalidArgument);
  // YAML alias expansion ("billion laughs") is bounded.
  std::string bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n";
  char prev = 'a';
  for (char c = 'b'; c <= 'k'; ++c, ++prev) {
    bomb += std::string(1, c) + ": &" + c + " [*" + prev + ", *" + prev +
            ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" +
            prev + ", *" + prev + ", *" + prev + ", *" + prev + "]\n";
  }
  bomb += "current-context: x\n";
  EXPECT_EQ(LoadKubeconfig(Write("bomb", bomb)).status().code(),
            absl::StatusCode::kInvalidArgument);
  // JSON is YAML: kubeconfigs written by tools as JSON load too.
  auto json = LoadKubeconfig(
      Write("json", R"({"current-context":"c","contexts":[{"name":"c","context":
      {"cluster":"k"}}],"clusters":[{"name":"k","cluster":
      {"server":"http://127.0.0.1:8001"}}]})"));
  ASSERT_TRUE(json.ok()) << json.status();
  EXPECT_EQ(json->server, "http://127.0.0.1:8001");
  EXPECT_EQ(LoadKubeconfig(Write("ftp", R"({"current-context":"c","contexts":
      [{"name":"c","context":{"cluster":"k"}}],"clusters":[{"name":"k",
      "cluster":{"server":"ftp://x"}}]})"))
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(NodeNameTest, DownwardApiThenHostname) {
  EXPECT_EQ(NodeName([](const char*) -> std::optional<std::string> {
              return "worker-1";
            }),
            "worker-1");
  EXPECT_EQ(NodeName([](const char*) { return std::optional<std::string>(); },
                     "host-a"),
            "host-a");
  EXPECT_FALSE(NodeName([](const char*) {
                 return std::optional<std::string>();
               }).empty());
}

TEST_F(KubeConfigTest, TokenSourceRereadsRotatedTokens) {
  FakeClock clock;
  KubeApiConfig c;
  c.token_file = Write("token", "first\n");
  TokenSource tokens(c, clock);
  EXPECT_EQ(tokens.Token(), "first");
  Write("token", "second");
  EXPECT_EQ(tokens.Token(), "first");  // not re-read within the interval
  clock.AdvanceNs(TokenSource::kRecheckNs);
  EXPECT_EQ(tokens.Token(), "second");
  EXPECT_EQ(tokens.reloads(), 1u);
  fs::remove(dir_ / "token");  // a failed re-read keeps the last good token
  clock.AdvanceNs(TokenSource::kRecheckNs);
  EXPECT_EQ(tokens.Token(), "second");

  KubeApiConfig fixed;
  fixed.token = "static";
  TokenSource s(fixed, clock);
  EXPECT_EQ(s.Token(), "static");
}

}  // namespace
}  // namespace wattlens::identity
