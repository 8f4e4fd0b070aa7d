// SPDX-License-Identifier: Apache-2.0
// Node identity from Kubernetes service-account tokens (--node_identity=token).
//
// Every agent pod mounts a projected service-account token with the
// collector's audience. The kubelet asks the API server for it, and since
// Kubernetes 1.30 (ServiceAccountTokenPodNodeInfo, GA in 1.32) a token bound
// to a pod also names the pod's node. The agent sends it as
// "authorization: Bearer <token>" on its upload stream; the collector sends
// it to the API server (TokenReview, authentication.k8s.io/v1) and takes the
// node name from the reviewed user's extra field
// authentication.kubernetes.io/node-name, when the user is one of the
// agent's service accounts. A node can only obtain tokens for pods bound to
// it (the Node authorizer and NodeRestriction admission), so a compromised
// node can report as itself only: the guarantee the per-node certificate
// gave, without a certificate per node. docs/deploy.md has the threat model.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "agent/common/clock.h"

namespace wattlens::collector {

// What the API server said about a token.
struct TokenReviewResult {
  bool authenticated = false;
  std::string username;   // system:serviceaccount:<ns>:<name>
  std::string node_name;  // extra authentication.kubernetes.io/node-name
  std::string error;      // status.error when not authenticated
};

// Blocking; called on the verifier's worker threads only.
class TokenReviewer {
 public:
  virtual ~TokenReviewer() = default;
  virtual absl::StatusOr<TokenReviewResult> Review(
      const std::string& token) = 0;
};

// POST /apis/authentication.k8s.io/v1/tokenreviews with the collector's own
// service-account token (re-read every minute: the kubelet rotates it).
struct KubeTokenReviewerOptions {
  std::string server;      // "https://10.96.0.1:443"
  std::string ca_file;     // verifies the API server
  std::string token_file;  // the collector's own token
  std::string audience;    // the agents' tokens must carry this audience
  absl::Duration timeout = absl::Seconds(5);
};

// KUBERNETES_SERVICE_HOST/PORT and the pod's service-account files.
absl::StatusOr<KubeTokenReviewerOptions> InClusterReviewerOptions(
    const std::string& audience);

absl::StatusOr<std::unique_ptr<TokenReviewer>> NewKubeTokenReviewer(
    KubeTokenReviewerOptions options, const Clock& clock);

struct NodeTokenOptions {
  // Users whose tokens may speak for their node, e.g.
  // "system:serviceaccount:wattlens:wattlens-agent".
  std::vector<std::string> service_accounts;
  int threads = 2;
  // Accepted tokens are remembered this long (a deleted pod's token is
  // refused by the API server within this time); refused ones shorter.
  absl::Duration accept_ttl = absl::Seconds(60);
  absl::Duration refuse_ttl = absl::Seconds(5);
  size_t max_cached = 100000;
  size_t max_queued = 20000;  // more waiting reviews: UNAVAILABLE
};

class NodeTokenVerifier {
 public:
  // Node name, or UNAUTHENTICATED (token refused or not an agent's, no
  // node) / UNAVAILABLE (the API server could not be asked).
  using Done = std::function<void(absl::StatusOr<std::string>)>;

  NodeTokenVerifier(std::unique_ptr<TokenReviewer> reviewer,
                    NodeTokenOptions options, const Clock& clock);
  ~NodeTokenVerifier();

  // Calls `done` exactly once: inline when the answer is cached, else on a
  // worker thread after the review.
  void Verify(std::string token, Done done);

  uint64_t reviews() const;  // requests sent to the API server
  uint64_t cache_hits() const;

 private:
  struct Cached {
    absl::StatusOr<std::string> node;
    int64_t expires_ns;
  };
  struct Pending {
    std::string token;
    Done done;
  };
  void Worker();
  absl::StatusOr<std::string> Decide(const std::string& token);

  std::unique_ptr<TokenReviewer> reviewer_;
  const NodeTokenOptions options_;
  const Clock& clock_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, Cached> cache_ ABSL_GUARDED_BY(mu_);
  std::deque<Pending> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t reviews_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t cache_hits_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<std::thread> workers_;
};

// "Bearer <token>" -> token; empty when `value` is not a bearer credential.
std::string BearerToken(const std::string& value);

}  // namespace wattlens::collector
