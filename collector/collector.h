// SPDX-License-Identifier: Apache-2.0
// The collector assembled: state, optional store, gRPC server (ingest, query,
// health, optional reflection), /metrics and the state ticker. main.cc and
// the in-process tests both build it through Collector::Start.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "agent/common/clock.h"
#include "agent/common/health_http.h"
#include "collector/cluster_state.h"
#include "collector/ingest_service.h"
#include "collector/query_service.h"
#include "collector/remote_write/writer.h"
#include "collector/store.h"
#include "grpcpp/server.h"
#include "proto/transport/tls.h"

namespace prometheus {
class Collectable;
class Exposer;
}  // namespace prometheus

namespace wattlens::collector {

class CollectorMetrics;

struct CollectorOptions {
  std::string listen_address = "0.0.0.0:9811";
  // Empty: no /metrics endpoint.
  std::string metrics_address = "0.0.0.0:9812";
  bool insecure = false;
  transport::TlsFiles tls;
  bool reflection = false;
  // Empty: memory only (history is lost on restart).
  std::string db_path;
  bool db_sync_full = false;
  ClusterOptions cluster;
  IngestOptions ingest;
  // Period of the node-state ticker; 0 disables it (tests call Tick()).
  absl::Duration tick_period = absl::Seconds(1);
  size_t max_metric_namespaces = 100;
  size_t max_metric_workloads = 500;
  // Cost and carbon (docs/cost-carbon.md): the --cost_config file (empty:
  // defaults) and the data directory (empty: pricing::DefaultDataDir()).
  bool cost = true;
  std::string cost_config;
  std::string data_dir;
  // Prometheus remote write of the cluster-wide series (url empty: off).
  remote_write::RemoteWriteOptions remote_write;

  // Bounds under abuse (docs/collector.md#limits). gRPC 1.51 has no
  // connection cap: idle and half-open connections are bounded by the
  // handshake timeout and the idle timeout, and descriptors by
  // RLIMIT_NOFILE (raised to its hard limit by main).
  // Threads of the synchronous services (queries, health).
  int max_threads = 64;
  // gRPC's resource quota for its buffers and calls. In gRPC 1.51 it slows
  // a rapid-reset flood (5 s: +31 MiB instead of +328 MiB) but does not
  // bound it (60 s: +1.4 GiB); see docs/collector.md#limits.
  size_t max_grpc_memory_bytes = 64u << 20;
  // HTTP/2 streams one connection may have open.
  int max_concurrent_streams = 100;
  // Request metadata (headers) per call.
  int max_metadata_bytes = 16 << 10;
  // A connection must finish TLS (and the HTTP/2 preface) within this.
  absl::Duration handshake_timeout = absl::Seconds(10);
  // A connection with no call for this long is closed.
  absl::Duration max_connection_idle = absl::Minutes(5);
  // /readyz connects to the gRPC listener and waits this long for the
  // connection to be accepted.
  absl::Duration listener_probe_timeout = absl::Seconds(1);
};

class Collector {
 public:
  static absl::StatusOr<std::unique_ptr<Collector>> Start(
      CollectorOptions options, const Clock& clock);
  ~Collector();

  // Stops accepting, ends streams, commits the store.
  void Shutdown();
  void Wait();

  int port() const { return port_; }
  int metrics_port() const;
  ClusterState& state() { return *state_; }
  Store* store() { return store_.get(); }
  // Null without --remote_write_url.
  remote_write::RemoteWriter* remote_writer() { return remote_writer_.get(); }
  const IngestCounters& ingest_counters() const { return ingest_counters_; }
  void Tick() { state_->Tick(); }
  // /healthz and /readyz on the metrics port.
  const HealthChecks& health() const { return health_; }

 private:
  Collector(CollectorOptions options, const Clock& clock);
  void TickLoop();

  const CollectorOptions options_;
  const Clock& clock_;
  std::unique_ptr<ClusterState> state_;
  std::unique_ptr<Store> store_;
  IngestCounters ingest_counters_;
  std::unique_ptr<IngestServiceImpl> ingest_;
  std::unique_ptr<QueryServiceImpl> query_;
  std::unique_ptr<remote_write::RemoteWriter> remote_writer_;
  std::shared_ptr<grpc::ServerCredentials> creds_;
  std::unique_ptr<grpc::Server> server_;
  std::shared_ptr<CollectorMetrics> metrics_;
  // The exposer keeps only weak references to what it serves.
  std::shared_ptr<prometheus::Collectable> security_metrics_;
  HealthChecks health_;  // outlives exposer_, whose handlers read it
  std::atomic<uint64_t> ticks_{0};
  std::atomic<bool> serving_{false};
  std::unique_ptr<prometheus::Exposer> exposer_;
  int port_ = 0;

  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread ticker_;
};

}  // namespace wattlens::collector
