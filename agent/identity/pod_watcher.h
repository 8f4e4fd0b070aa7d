// SPDX-License-Identifier: Apache-2.0
// Keeps a PodCache in step with the API server's view of the pods on this
// node: list, then watch from the list's resourceVersion, restricted with
// fieldSelector=spec.nodeName=<node> (needs only pods get/list/watch).
// Bookmarks advance the resourceVersion; 410 Gone (as an HTTP status or an
// ERROR event) forces a relist; connection errors, 5xx and stalls back off
// exponentially. While the API server is away the cache keeps the last known
// metadata and pods it never saw stay unknown.
//
// Step() performs one request synchronously and is what tests drive; Run()
// loops Step() on a thread, sleeping until next_attempt_ns(). With
// Source::kKubelet each step is one GET /pods of the kubelet (the complete
// set for this node), repeated every kubelet_poll_ns.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <random>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "agent/common/clock.h"
#include "agent/identity/k8s_json.h"
#include "agent/identity/kube_config.h"
#include "agent/identity/owner_resolver.h"
#include "agent/identity/pod_cache.h"

namespace wattlens::identity {

struct PodWatcherOptions {
  // Where pod metadata comes from: the API server (list + watch, the
  // default), or the kubelet's /pods endpoint (opt-in; polled, no watch,
  // no API server load; `server` is then the kubelet's URL, e.g.
  // https://<node-ip>:10250 with a token, or the read-only
  // http://127.0.0.1:10255 where it is still enabled).
  enum class Source { kApiServer, kKubelet };
  Source source = Source::kApiServer;
  int64_t kubelet_poll_ns = 10'000'000'000;
  int64_t initial_backoff_ns = 1'000'000'000;
  int64_t max_backoff_ns = 60'000'000'000;
  // Each retry waits backoff x (1 + U[0, backoff_jitter)), so the agents of
  // a cluster do not all return at once after an API server outage.
  double backoff_jitter = 0.2;
  uint64_t jitter_seed = 0;  // 0: from std::random_device
  // The Node object (labels: region, zone, instance type; providerID) is
  // read on the first step and then this often; 0 disables (needs RBAC
  // get on nodes).
  int64_t node_refresh_ns = 600'000'000'000;
  // The server ends each watch after this long; we then resume it.
  int watch_timeout_s = 300;
  // A watch or list that delivers no byte for this long is dropped. The API
  // server sends a bookmark about once a minute, so a healthy watch is
  // never this quiet.
  int stall_timeout_s = 150;
  int connect_timeout_s = 10;
  int list_timeout_s = 120;
  int list_page_size = 500;
};

class PodWatcher {
 public:
  struct Stats {
    uint64_t lists = 0;
    uint64_t watches = 0;
    uint64_t events = 0;
    uint64_t bookmarks = 0;
    uint64_t relists_gone = 0;    // 410 Gone / Expired
    uint64_t failures = 0;        // requests that ended in an error
    uint64_t events_invalid = 0;  // undecodable watch lines, skipped
  };

  PodWatcher(KubeApiConfig config, std::string node_name, PodCache* cache,
             const Clock& clock, PodWatcherOptions options = {},
             const OwnerLookup* owners = nullptr);
  ~PodWatcher();
  PodWatcher(const PodWatcher&) = delete;
  PodWatcher& operator=(const PodWatcher&) = delete;

  // One list (when needed) or one watch session. OK when the request ended
  // normally (the server closed the watch, or sent 410: relist next);
  // the error otherwise, after which the next attempt is backed off.
  absl::Status Step();

  // Loops until `stop` is notified.
  void Run(absl::Notification* stop);

  // For any thread: a copy of the state the watch thread last recorded.
  struct Health {
    bool synced = false;
    std::string last_error;  // empty when the last request succeeded
    Stats stats;
  };
  Health health() const;
  // This node's labels and providerID once the Node object has been read.
  std::optional<NodeMeta> node() const;

  // The accessors below belong to the thread that calls Step() or Run();
  // other threads read pod state through the PodCache.
  int64_t next_attempt_ns() const { return next_attempt_ns_; }
  int64_t current_backoff_ns() const { return backoff_ns_; }
  const std::string& resource_version() const { return resource_version_; }
  bool synced() const { return synced_; }  // a list has succeeded
  Stats stats() const { return stats_; }
  const absl::Status& last_error() const { return last_error_; }

  // "/api/v1/pods?..." for the list (continue token optional) and watch.
  std::string ListPathForTest(const std::string& continue_token) const {
    return ListPath(continue_token);
  }
  std::string WatchPathForTest() const { return WatchPath(); }

 private:
  class Http;
  absl::Status List();
  absl::Status Watch();
  absl::Status KubeletPods();
  // One bounded JSON document (list, kubelet /pods, the Node object): the
  // body of a 200, else the API's error.
  absl::StatusOr<std::string> GetDocument(const std::string& path,
                                          absl::string_view what);
  void MaybeFetchNode();
  void Publish();
  std::string ListPath(const std::string& continue_token) const;
  std::string WatchPath() const;
  void Finish(const absl::Status& s);
  PodInfo Prepare(PodInfo pod) const;

  const KubeApiConfig config_;
  const std::string node_name_;
  PodCache* const cache_;
  const Clock& clock_;
  const PodWatcherOptions options_;
  const OwnerLookup* const owners_;
  TokenSource token_;
  std::unique_ptr<Http> http_;

  // Only touched by the thread calling Step().
  std::string resource_version_;
  bool need_list_ = true;
  bool synced_ = false;
  int64_t backoff_ns_ = 0;
  int64_t next_attempt_ns_ = 0;
  absl::Status last_error_;
  Stats stats_;
  int64_t next_node_fetch_ns_ = 0;
  std::mt19937_64 rng_;

  mutable absl::Mutex mu_;
  Health health_ ABSL_GUARDED_BY(mu_);
  std::optional<NodeMeta> node_ ABSL_GUARDED_BY(mu_);
};

}  // namespace wattlens::identity
