// SPDX-License-Identifier: Apache-2.0
#include "collector/collector.h"

#include <dlfcn.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "agent/common/prometheus_family.h"
#include "collector/health_http.h"
#include "collector/listener_probe.h"
#include "collector/metrics.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/resource_quota.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server_builder.h"
#include "prometheus/exposer.h"
#include "spdlog/spdlog.h"

namespace wattlens::collector {
namespace {

// TLS failures and role refusals, read from their owners on each scrape.
class SecurityMetrics final : public prometheus::Collectable {
 public:
  explicit SecurityMetrics(const QueryServiceImpl* query) : query_(query) {}
  std::vector<prometheus::MetricFamily> Collect() const override {
    using prom::Add;
    using prom::Family;
    const transport::TlsStats tls = transport::GetTlsStats();
    std::vector<prometheus::MetricFamily> out;
    auto reload = Family(
        "wattlens_collector_tls_reload_errors_total",
        "Changed TLS files refused (the previous material keeps serving), "
        "by reason: unreadable, empty, bad_pem, key_mismatch, expired, "
        "not_yet_valid, bad_ca.",
        prometheus::MetricType::Counter);
    for (const auto& [reason, n] : tls.reload_errors) {
      Add(reload, {{"reason", reason}}, static_cast<double>(n));
    }
    out.push_back(std::move(reload));
    auto handshake =
        Family("wattlens_collector_tls_handshake_errors_total",
               "TLS handshakes that failed, by reason (no_client_certificate, "
               "certificate_verify_failed, certificate_expired, unknown_ca, "
               "bad_certificate, not_tls, handshake_failure, other).",
               prometheus::MetricType::Counter);
    for (const auto& [reason, n] : tls.handshake_errors) {
      Add(handshake, {{"reason", reason}}, static_cast<double>(n));
    }
    out.push_back(std::move(handshake));
    auto role = Family("wattlens_collector_query_role_refusals_total",
                       "Queries refused because the client certificate "
                       "lacks the reader role.",
                       prometheus::MetricType::Counter);
    Add(role, {}, static_cast<double>(query_->role_refusals()));
    out.push_back(std::move(role));
    return out;
  }

 private:
  const QueryServiceImpl* query_;
};

}  // namespace

Collector::Collector(CollectorOptions options, const Clock& clock)
    : options_(std::move(options)), clock_(clock) {}

absl::StatusOr<std::unique_ptr<Collector>> Collector::Start(
    CollectorOptions options, const Clock& clock) {
  std::unique_ptr<Collector> c(new Collector(std::move(options), clock));
  const CollectorOptions& o = c->options_;
  c->state_ = std::make_unique<ClusterState>(clock, o.cluster);
  if (o.cost) {
    auto model = pricing::CostModel::Load(o.cost_config, o.data_dir);
    if (!model.ok()) return model.status();
    for (const std::string& w : model->warnings()) {
      spdlog::warn("cost config: {}", w);
    }
    c->state_->SetCostEngine(
        std::make_shared<const CostEngine>(std::move(model).value()));
  }
  if (!o.db_path.empty()) {
    StoreOptions so;
    so.path = o.db_path;
    so.resolution_ns = o.cluster.resolution_ns;
    so.retention_ns = o.cluster.retention_ns;
    so.sync_full = o.db_sync_full;
    auto store = Store::Open(so, clock);
    if (!store.ok()) return store.status();
    c->store_ = std::move(store).value();
    if (absl::Status st = c->store_->LoadInto(*c->state_); !st.ok()) {
      return st;
    }
    c->store_->Start();
  }

  if (!o.remote_write.url.empty()) {
    // main.cc validated the flags (ValidateRemoteWriteOptions); tests may
    // set a zero interval and snapshot with CollectNow().
    ClusterState* state = c->state_.get();
    auto writer = remote_write::RemoteWriter::Create(
        o.remote_write,
        [state](const wattlens::v1::GetUsageRequest& req) {
          return state->GetUsage(req);
        },
        o.cluster.resolution_ns, o.cluster.retention_ns, clock);
    if (!writer.ok()) return writer.status();
    c->remote_writer_ = std::move(writer).value();
  }

  std::shared_ptr<grpc::ServerCredentials> creds;
  IngestOptions ingest = o.ingest;
  if (o.insecure) {
    creds = grpc::InsecureServerCredentials();
    ingest.require_peer_identity = false;
  } else {
    auto tls = transport::ServerCredentials(o.tls);
    if (!tls.ok()) return tls.status();
    creds = *tls;
  }
  c->creds_ = creds;
  c->ingest_ = std::make_unique<IngestServiceImpl>(
      *c->state_, c->store_.get(), ingest, c->ingest_counters_, clock);
  c->query_ = std::make_unique<QueryServiceImpl>(*c->state_, !o.insecure);

  grpc::EnableDefaultHealthCheckService(true);
  if (o.reflection) {
    // Loading gRPC's reflection library registers its plugin for every
    // server the process builds (a static initializer). Linked in, it served
    // reflection whatever the flag said; loaded only on request, it is
    // really behind --reflection.
    if (!dlopen("libgrpc++_reflection.so.1.51", RTLD_NOW | RTLD_GLOBAL)) {
      return absl::FailedPreconditionError(absl::StrCat(
          "--reflection: cannot load gRPC reflection: ", dlerror()));
    }
  }
  grpc::ServerBuilder builder;
  builder.AddListeningPort(o.listen_address, creds, &c->port_);
  // Without a cap every synchronous call gets a thread: a reset flood
  // creates them faster than they finish.
  grpc::ResourceQuota quota("wattlens-collector");
  quota.SetMaxThreads(o.max_threads);
  quota.Resize(o.max_grpc_memory_bytes);
  builder.SetResourceQuota(quota);
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS,
                             o.max_concurrent_streams);
  builder.AddChannelArgument(GRPC_ARG_MAX_METADATA_SIZE, o.max_metadata_bytes);
  builder.AddChannelArgument(
      GRPC_ARG_SERVER_HANDSHAKE_TIMEOUT_MS,
      static_cast<int>(absl::ToInt64Milliseconds(o.handshake_timeout)));
  builder.AddChannelArgument(
      GRPC_ARG_MAX_CONNECTION_IDLE_MS,
      static_cast<int>(absl::ToInt64Milliseconds(o.max_connection_idle)));
  // A second collector on the same port must fail, not share the port and
  // split the agents between the two.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.RegisterService(c->ingest_.get());
  builder.RegisterService(c->query_.get());
  // Reports between the limit and twice the limit reach the handler, which
  // refuses and counts them; larger ones gRPC refuses by itself.
  builder.SetMaxReceiveMessageSize(
      static_cast<int>(2 * o.ingest.limits.max_report_bytes));
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 60'000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 20'000);
  builder.AddChannelArgument(
      GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 20'000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  c->server_ = builder.BuildAndStart();
  if (!c->server_ || c->port_ == 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", o.listen_address));
  }
  auto* health = c->server_->GetHealthCheckService();
  health->SetServingStatus("", true);
  health->SetServingStatus("wattlens.v1.IngestService", true);
  health->SetServingStatus("wattlens.v1.QueryService", true);

  if (!o.metrics_address.empty()) {
    // /metrics, /healthz and /readyz share the port (collector/health_http.h).
    c->serving_ = true;
    AddCollectorHealthChecks(
        c->health_,
        {o.tick_period > absl::ZeroDuration() ? &c->ticks_ : nullptr,
         o.tick_period, &c->serving_, c->store_.get()},
        clock);
    c->health_.Add(HealthProbe::kReadiness, "grpc-listener",
                   [host = ProbeHost(o.listen_address), port = c->port_,
                    timeout = o.listener_probe_timeout] {
                     return ProbeListener(host, port, timeout);
                   });
    auto exposer = StartExposerWithHealth(o.metrics_address, &c->health_);
    if (!exposer.ok()) return exposer.status();
    c->exposer_ = std::move(exposer).value();
    c->metrics_ = std::make_shared<CollectorMetrics>(
        *c->state_, c->ingest_counters_, c->store_.get(),
        o.max_metric_namespaces, o.max_metric_workloads,
        c->remote_writer_.get());
    c->exposer_->RegisterCollectable(c->metrics_);
    c->security_metrics_ = std::make_shared<SecurityMetrics>(c->query_.get());
    c->exposer_->RegisterCollectable(c->security_metrics_);
  }
  if (c->remote_writer_) c->remote_writer_->Start();
  if (o.tick_period > absl::ZeroDuration()) {
    c->ticker_ = std::thread([p = c.get()] { p->TickLoop(); });
  }
  spdlog::info("collector listening on port {} ({}){}{}, metrics port {}",
               c->port_, o.insecure ? "plaintext: --insecure" : "mTLS",
               c->store_ ? absl::StrCat(", store ", o.db_path)
                         : std::string(", no store"),
               c->remote_writer_ ? ", remote write on" : "", c->metrics_port());
  return c;
}

int Collector::metrics_port() const {
  if (!exposer_) return 0;
  auto ports = exposer_->GetListeningPorts();
  return ports.empty() ? 0 : ports.front();
}

void Collector::TickLoop() {
  absl::MutexLock lock(&mu_);
  while (!stopping_) {
    mu_.Unlock();
    state_->Tick();
    ticks_.fetch_add(1, std::memory_order_relaxed);
    mu_.Lock();
    // Periodic work: waking early on stop is the only condition.
    mu_.AwaitWithTimeout(absl::Condition(&stopping_), options_.tick_period);
  }
}

void Collector::Shutdown() {
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  if (ticker_.joinable()) ticker_.join();
  serving_ = false;
  if (server_) {
    server_->GetHealthCheckService()->SetServingStatus(false);
    server_->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(2)));
  }
  if (remote_writer_) remote_writer_->Stop();
  if (store_) store_->Stop();
  exposer_.reset();
}

void Collector::Wait() {
  if (server_) server_->Wait();
}

Collector::~Collector() { Shutdown(); }

}  // namespace wattlens::collector
