// SPDX-License-Identifier: Apache-2.0
// wattlens-collector: flags, signals and wiring; the work is in
// collector_core.
#include <signal.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <iostream>
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
#include "common/version/daemon_flags.h"
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
ABSL_FLAG(std::string, remote_write_url, "",
          "Prometheus remote-write 1.0 endpoint that receives the "
          "cluster-wide per-workload series (docs/remote-write.md), e.g. "
          "http://prometheus:9090/api/v1/write; empty: off.");
ABSL_FLAG(std::string, remote_write_cluster, "",
          "Value of the cluster label on every written series (needed when "
          "several clusters share a store).");
ABSL_FLAG(absl::Duration, remote_write_interval, absl::Seconds(30),
          "How often a snapshot of every workload's totals is written.");
ABSL_FLAG(absl::Duration, remote_write_delay, absl::Seconds(10),
          "Age of the newest bucket boundary written: late reports of the "
          "last interval have this long to arrive.");
ABSL_FLAG(absl::Duration, remote_write_timeout, absl::Seconds(30),
          "Timeout of one remote-write request.");
ABSL_FLAG(uint32_t, remote_write_queue_samples, 100000,
          "Samples queued for the receiver; beyond it the oldest requests "
          "are dropped (counted, reason queue_full).");
ABSL_FLAG(uint32_t, remote_write_max_samples_per_send, 2000,
          "Samples per remote-write request.");
ABSL_FLAG(uint32_t, remote_write_max_workloads, 1000,
          "Workloads with series of their own; later ones are summed into "
          "workload=\"__other__\".");
ABSL_FLAG(std::string, remote_write_bearer_token_file, "",
          "File with a bearer token for the receiver (re-read per request).");
ABSL_FLAG(std::string, remote_write_tls_ca_file, "",
          "PEM CA bundle that verifies an https receiver (empty: the "
          "system's).");
ABSL_FLAG(std::string, log_level, "info", "trace|debug|info|warn|error");

// --help lists the flags by the part of the collector they configure.
wattlens::version::DaemonUsage CollectorUsage() {
  return {
      "wattlens-collector",
      "Wattlens cluster collector: receives node reports from the agents "
      "(gRPC, mTLS), merges them into cluster views and serves them to "
      "the `wattlens` CLI.",
      {{"Serving and TLS",
        {"listen_address", "metrics_address", "insecure", "tls_",
         "reflection"}},
       {"Agents: identity and limits",
        {"node_identity", "token_audience", "agent_service_accounts",
         "max_report_bytes", "max_workloads"}},
       {"Storage and time windows",
        {"db", "db_sync_full", "resolution", "retention", "stale_ttl",
         "gone_ttl"}},
       {"Cost and carbon", {"cost_config", "data_dir", "max_metric_workloads"}},
       {"Logging", {"log_level"}}}};
}

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Wattlens cluster collector: receives node reports from the agents "
      "(gRPC, mTLS),\nmerges them into cluster views and serves them to the "
      "`wattlens` CLI.");
  if (auto rc = wattlens::version::HandleHelpAndVersion(
          argc, argv, CollectorUsage(), std::cout)) {
    return *rc;
  }
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
  o.remote_write.url = absl::GetFlag(FLAGS_remote_write_url);
  o.remote_write.series.cluster = absl::GetFlag(FLAGS_remote_write_cluster);
  o.remote_write.interval = absl::GetFlag(FLAGS_remote_write_interval);
  o.remote_write.delay = absl::GetFlag(FLAGS_remote_write_delay);
  o.remote_write.timeout = absl::GetFlag(FLAGS_remote_write_timeout);
  o.remote_write.queue.capacity_samples =
      absl::GetFlag(FLAGS_remote_write_queue_samples);
  o.remote_write.queue.max_samples_per_send =
      absl::GetFlag(FLAGS_remote_write_max_samples_per_send);
  o.remote_write.series.max_workloads =
      absl::GetFlag(FLAGS_remote_write_max_workloads);
  o.remote_write.bearer_token_file =
      absl::GetFlag(FLAGS_remote_write_bearer_token_file);
  o.remote_write.ca_file = absl::GetFlag(FLAGS_remote_write_tls_ca_file);
  if (absl::Status st =
          wattlens::collector::remote_write::ValidateRemoteWriteOptions(
              o.remote_write);
      !st.ok()) {
    std::fprintf(stderr, "wattlens-collector: %s\n",
                 std::string(st.message()).c_str());
    return 2;
  }
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
