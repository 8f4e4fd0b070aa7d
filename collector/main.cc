// wattlens-collector: flags, signals and wiring; the work is in
// collector_core.
#include <signal.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/marshalling.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/time/time.h"
#include "agent/common/clock.h"
#include "agent/common/flag_checks.h"
#include "collector/collector.h"
#include "spdlog/sinks/stdout_color_sinks.h"
#include "spdlog/spdlog.h"

ABSL_FLAG(std::string, listen_address, "0.0.0.0:9811",
          "host:port of the gRPC API (ingest, query, health).");
ABSL_FLAG(std::string, metrics_address, "0.0.0.0:9812",
          "host:port serving Prometheus /metrics (empty: off).");
ABSL_FLAG(bool, insecure, false,
          "Serve plaintext gRPC without client authentication. Only for "
          "development; otherwise the --tls_* files are required.");
ABSL_FLAG(std::string, tls_cert_file, "", "PEM certificate of the collector.");
ABSL_FLAG(std::string, tls_key_file, "", "PEM private key of the collector.");
ABSL_FLAG(std::string, tls_ca_file, "",
          "PEM CA bundle that signs agent (and CLI) certificates. An agent's "
          "certificate CN or a DNS SAN must equal its node name.");
ABSL_FLAG(absl::Duration, tls_reload_interval, absl::Seconds(5),
          "How often the TLS files are checked for changes (reloaded without "
          "a restart; open streams continue).");
ABSL_FLAG(bool, reflection, false,
          "Serve gRPC reflection (grpc.reflection.v1alpha).");
ABSL_FLAG(std::string, db, "/var/lib/wattlens/collector.db",
          "SQLite store (WAL mode) for history and acknowledged state; "
          "empty: memory only.");
ABSL_FLAG(bool, db_sync_full, false,
          "fsync every commit (survives power loss, not only crashes).");
ABSL_FLAG(absl::Duration, resolution, absl::Seconds(10),
          "Width of the history buckets.");
ABSL_FLAG(absl::Duration, retention, absl::Hours(24), "History kept.");
ABSL_FLAG(absl::Duration, stale_ttl, absl::Seconds(30),
          "A node silent this long is STALE.");
ABSL_FLAG(absl::Duration, gone_ttl, absl::Minutes(5),
          "A node silent this long is GONE.");
ABSL_FLAG(uint32_t, max_report_bytes, 4u << 20,
          "Larger reports are refused (INVALID_ARGUMENT) and counted "
          "(4 KiB to 256 MiB).");
ABSL_FLAG(uint32_t, max_workloads, 10000,
          "Reports with more workloads are refused and counted.");
ABSL_FLAG(std::string, cost_config, "",
          "Prices, locations and carbon overrides (docs/cost-carbon.md); "
          "empty: OpenCost default prices and shipped carbon data.");
ABSL_FLAG(std::string, data_dir, "",
          "Carbon and region data files (empty: the installed "
          "share/wattlens, else the source tree's data/).");
ABSL_FLAG(uint32_t, max_metric_workloads, 500,
          "Workloads with their own cost/carbon series on /metrics; the "
          "rest are summed into workload=\"__other__\".");
ABSL_FLAG(std::string, node_identity, "certificate",
          "How an agent proves its node. certificate: the client "
          "certificate's CN or DNS SAN is the node name (one certificate per "
          "node). token: the stream carries a projected service-account "
          "token whose node (TokenReview, Kubernetes >= 1.30) is the node "
          "name; the certificate then only has to be valid.");
ABSL_FLAG(std::string, token_audience, "wattlens-collector",
          "--node_identity=token: the audience agent tokens must carry.");
ABSL_FLAG(std::vector<std::string>, agent_service_accounts,
          {"system:serviceaccount:wattlens:wattlens-agent"},
          "--node_identity=token: users whose tokens may report for their "
          "node.");
ABSL_FLAG(std::string, log_level, "info", "trace|debug|info|warn|error");

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Wattlens cluster collector: receives node reports from the agents "
      "(gRPC, mTLS),\nmerges them into cluster views and serves them to the "
      "`wattlens` CLI.");
  absl::ParseCommandLine(argc, argv);
  // A value that would wrap, be reinterpreted or silence the logs is
  // refused before anything starts.
  for (const absl::Status& st : {
           wattlens::CheckLogLevel("log_level", absl::GetFlag(FLAGS_log_level)),
           wattlens::CheckHostPort("listen_address",
                                   absl::GetFlag(FLAGS_listen_address), false),
           wattlens::CheckHostPort("metrics_address",
                                   absl::GetFlag(FLAGS_metrics_address), true),
           wattlens::CheckRange("max_report_bytes",
                                absl::GetFlag(FLAGS_max_report_bytes), 4096,
                                256u << 20),
           wattlens::CheckRange("max_workloads",
                                absl::GetFlag(FLAGS_max_workloads), 1,
                                1'000'000),
           wattlens::CheckRange("max_metric_workloads",
                                absl::GetFlag(FLAGS_max_metric_workloads), 1,
                                100'000),
       }) {
    if (!st.ok()) {
      std::fprintf(stderr, "wattlens-collector: %s\n",
                   std::string(st.message()).c_str());
      return 2;
    }
  }
  spdlog::set_default_logger(spdlog::stderr_color_mt("wattlens-collector"));
  spdlog::set_level(spdlog::level::from_str(absl::GetFlag(FLAGS_log_level)));
  uint64_t nofile = 0;
  if (absl::Status st = wattlens::RaiseFileLimit(&nofile); !st.ok()) {
    spdlog::warn("{}", std::string(st.message()));
  } else {
    spdlog::info("open-file limit {}", nofile);
  }

  // Signals are taken synchronously by this thread; block them before any
  // other thread starts so they inherit the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  wattlens::collector::CollectorOptions o;
  o.listen_address = absl::GetFlag(FLAGS_listen_address);
  o.metrics_address = absl::GetFlag(FLAGS_metrics_address);
  o.insecure = absl::GetFlag(FLAGS_insecure);
  o.tls.cert = absl::GetFlag(FLAGS_tls_cert_file);
  o.tls.key = absl::GetFlag(FLAGS_tls_key_file);
  o.tls.ca = absl::GetFlag(FLAGS_tls_ca_file);
  o.tls.refresh_seconds = static_cast<unsigned>(std::clamp<int64_t>(
      absl::ToInt64Seconds(absl::GetFlag(FLAGS_tls_reload_interval)), 1,
      86400));
  o.reflection = absl::GetFlag(FLAGS_reflection);
  o.db_path = absl::GetFlag(FLAGS_db);
  o.db_sync_full = absl::GetFlag(FLAGS_db_sync_full);
  o.cluster.resolution_ns =
      absl::ToInt64Nanoseconds(absl::GetFlag(FLAGS_resolution));
  o.cluster.retention_ns =
      absl::ToInt64Nanoseconds(absl::GetFlag(FLAGS_retention));
  o.cluster.stale_ttl_ns =
      absl::ToInt64Nanoseconds(absl::GetFlag(FLAGS_stale_ttl));
  o.cluster.gone_ttl_ns =
      absl::ToInt64Nanoseconds(absl::GetFlag(FLAGS_gone_ttl));
  o.ingest.limits.max_report_bytes = absl::GetFlag(FLAGS_max_report_bytes);
  o.ingest.limits.max_workloads = absl::GetFlag(FLAGS_max_workloads);
  o.cost_config = absl::GetFlag(FLAGS_cost_config);
  o.data_dir = absl::GetFlag(FLAGS_data_dir);
  o.max_metric_workloads = absl::GetFlag(FLAGS_max_metric_workloads);
  if (o.cluster.resolution_ns < 1'000'000'000 ||
      o.cluster.retention_ns < o.cluster.resolution_ns ||
      o.cluster.gone_ttl_ns < o.cluster.stale_ttl_ns) {
    std::fprintf(stderr,
                 "wattlens-collector: need --resolution >= 1s, --retention >= "
                 "--resolution and --gone_ttl >= --stale_ttl\n");
    return 2;
  }
  if (const std::string mode = absl::GetFlag(FLAGS_node_identity);
      mode == "token") {
    // A Kubernetes token proves the node (collector/node_token.h).
    auto ro = wattlens::collector::InClusterReviewerOptions(
        absl::GetFlag(FLAGS_token_audience));
    if (!ro.ok()) {
      std::fprintf(stderr, "wattlens-collector: %s\n",
                   std::string(ro.status().message()).c_str());
      return 2;
    }
    auto reviewer = wattlens::collector::NewKubeTokenReviewer(
        *ro, wattlens::RealClock::Get());
    if (!reviewer.ok()) {
      std::fprintf(stderr, "wattlens-collector: %s\n",
                   std::string(reviewer.status().message()).c_str());
      return 2;
    }
    wattlens::collector::NodeTokenOptions no;
    no.service_accounts = absl::GetFlag(FLAGS_agent_service_accounts);
    o.ingest.node_tokens =
        std::make_shared<wattlens::collector::NodeTokenVerifier>(
            std::move(reviewer).value(), no, wattlens::RealClock::Get());
  } else if (mode != "certificate") {
    std::fprintf(stderr,
                 "wattlens-collector: --node_identity must be certificate or "
                 "token\n");
    return 2;
  }
  if (!o.db_path.empty()) {
    std::error_code ec;
    auto parent = std::filesystem::path(o.db_path).parent_path();
    if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  }

  auto collector =
      wattlens::collector::Collector::Start(o, wattlens::RealClock::Get());
  if (!collector.ok()) {
    std::fprintf(stderr, "wattlens-collector: %s\n",
                 collector.status().ToString().c_str());
    return 1;
  }
  int sig = 0;
  sigwait(&signals, &sig);
  spdlog::info("signal {}: shutting down", sig);
  (*collector)->Shutdown();
  return 0;
}
