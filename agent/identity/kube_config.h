// SPDX-License-Identifier: Apache-2.0
// How the agent reaches the Kubernetes API server: the standard in-cluster
// configuration (KUBERNETES_SERVICE_HOST/PORT and the service-account token
// and CA files) or a kubeconfig file (--kubeconfig=FILE) with a token or a
// client-certificate user. Also this node's name: NODE_NAME (downward API),
// else the hostname.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "agent/common/clock.h"

namespace wattlens::identity {

inline constexpr char kServiceAccountDir[] =
    "/var/run/secrets/kubernetes.io/serviceaccount";

struct KubeApiConfig {
  std::string server;  // "https://10.96.0.1:443", no trailing slash
  // Trust: a CA file, inline PEM (kubeconfig certificate-authority-data),
  // or neither (system store). insecure_skip_tls_verify only from a
  // kubeconfig that asks for it.
  std::string ca_file;
  std::string ca_pem;
  bool insecure_skip_tls_verify = false;
  // Credentials: a bearer token (re-read from token_file when it rotates),
  // or a client certificate and key (files or inline PEM).
  std::string token_file;
  std::string token;
  std::string client_cert_file;
  std::string client_key_file;
  std::string client_cert_pem;
  std::string client_key_pem;
  std::string source;  // "in-cluster" or the kubeconfig path, for logs
};

// Reads an environment variable; injectable for tests.
using EnvLookup = std::function<std::optional<std::string>(const char*)>;
EnvLookup ProcessEnv();

// KUBERNETES_SERVICE_HOST/PORT + <sa_dir>/token and <sa_dir>/ca.crt.
// FailedPrecondition when not running in a pod.
absl::StatusOr<KubeApiConfig> InClusterConfig(
    const EnvLookup& env, const std::string& sa_dir = kServiceAccountDir);

// A kubeconfig (YAML or JSON): the named context, else current-context.
// Relative file paths are relative to the kubeconfig's directory. Exec and
// auth-provider plugins are not supported (Unimplemented).
absl::StatusOr<KubeApiConfig> LoadKubeconfig(const std::string& path,
                                             absl::string_view context = "");

// NODE_NAME, else `hostname` (gethostname() when not given).
std::string NodeName(const EnvLookup& env,
                     std::optional<std::string> hostname = std::nullopt);

// The bearer token for each request: a static one, or the token file
// re-read at most once per kRecheckNs (kubelet rotates projected tokens
// well before they expire; client-go re-reads every minute). A failed
// re-read keeps the last good token.
class TokenSource {
 public:
  static constexpr int64_t kRecheckNs = 60'000'000'000;
  TokenSource(const KubeApiConfig& config, const Clock& clock);
  // Empty when the config uses no token.
  std::string Token() ABSL_LOCKS_EXCLUDED(mu_);
  uint64_t reloads() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  const std::string file_;
  const Clock& clock_;
  mutable absl::Mutex mu_;
  std::string token_ ABSL_GUARDED_BY(mu_);
  int64_t last_read_ns_ ABSL_GUARDED_BY(mu_) = 0;
  bool read_once_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t reloads_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace wattlens::identity
