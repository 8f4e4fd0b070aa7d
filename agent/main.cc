// SPDX-License-Identifier: Apache-2.0
// wattlens-agent: flags, signals and wiring; the work is in agent_core.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "agent/agent.h"
#include "agent/common/flag_checks.h"
#include "agent/export/live_view.h"
#include "agent/export/node_report.h"
#include "agent/export/upload_health.h"
#include "agent/export/uploader.h"
#include "common/version/daemon_flags.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/health_check_service_interface.h"
#include "spdlog/sinks/stdout_color_sinks.h"
#include "spdlog/spdlog.h"

ABSL_FLAG(absl::Duration, interval, absl::Seconds(1),
          "How often the kernel maps are drained and a snapshot published.");
ABSL_FLAG(std::string, metrics_address, "0.0.0.0:9810",
          "host:port serving Prometheus /metrics (port 0: any free port; "
          "empty: off).");
ABSL_FLAG(uint32_t, bpf_syscall_map_entries, 16384,
          "Capacity of the (process, syscall) counter map.");
ABSL_FLAG(uint32_t, bpf_sched_map_entries, 16384,
          "Capacity of the (process, cgroup) on-CPU map.");
ABSL_FLAG(uint32_t, bpf_sched_dying_entries, 8192,
          "sampled: how many exiting threads are held until a drain sees "
          "them switched out dead (each pins ~6 KiB of kernel memory for up "
          "to one interval); beyond it their last slice waits for their "
          "free, counted as lost_events{reason=\"sched_dying_full\"}.");
ABSL_FLAG(std::string, cpu_time_source, "auto",
          "How on-CPU time is read: `auto` (the best this kernel accepts, by "
          "feature probe), `sampled` (each thread's scheduler runtime at every "
          "drain and after its final switch; nothing runs on a context switch; "
          "needs the task kfuncs of Linux 6.2) or `sched_switch` (a program on "
          "every context switch: exact per CPU and across cgroup moves "
          "mid-interval, at a cost per switch). An explicit choice this kernel "
          "cannot load is an error (docs/kernels.md).");
ABSL_FLAG(uint32_t, bpf_net_map_entries, 16384,
          "Capacity of the (process, cgroup, traffic class) network map.");
ABSL_FLAG(std::string, network_bytes_source, "auto",
          "Where network bytes come from: `auto` (by feature probe), "
          "`sock_length` (the sock_send/recv_length tracepoints, Linux 6.3), "
          "`syscalls` (the socket I/O syscalls at sys_exit, any kernel) or "
          "`off` (TCP connection counts only; the network source reports "
          "itself degraded).");
ABSL_FLAG(std::vector<std::string>, cluster_cidrs, {},
          "Comma-separated pod and service CIDRs: peers inside them are "
          "traffic class `cluster`.");
ABSL_FLAG(uint32_t, bpf_ringbuf_bytes, 4u << 20,
          "Lifecycle ring buffer size in bytes (a power of two).");
ABSL_FLAG(uint32_t, event_queue_capacity, 65536,
          "Lifecycle events buffered between the reader and drain threads.");
ABSL_FLAG(uint32_t, exe_table_entries, 65536,
          "Processes whose executable (from the kernel, for host project "
          "identity) is kept; past this a new process is left out, counted "
          "as lost_events{reason=\"exe_table_full\"}.");
ABSL_FLAG(bool, drop_capabilities, true,
          "After loading, keep only CAP_DAC_READ_SEARCH: the serving threads "
          "run without CAP_BPF, CAP_PERFMON and CAP_SYS_ADMIN.");
ABSL_FLAG(bool, bpf_stats, false,
          "Enable kernel BPF run-time statistics while the agent runs "
          "(costs ~20 ns per program run) and export them.");
ABSL_FLAG(uint32_t, process_metrics_top_n, 0,
          "Export per-process series for the top N processes by CPU (0: off).");
ABSL_FLAG(bool, live, false,
          "Print a live view of the busiest workloads every interval.");
ABSL_FLAG(uint32_t, live_top, 15, "Rows in the live view.");
ABSL_FLAG(std::string, btf_path, "/sys/kernel/btf/vmlinux",
          "Kernel BTF the CO-RE programs are relocated against.");
ABSL_FLAG(std::string, proc_root, "/proc", "Where procfs is mounted.");
ABSL_FLAG(std::string, cgroup_root, "",
          "cgroup v2 mount (default: found in /proc/self/mountinfo).");
ABSL_FLAG(uint32_t, max_processes, 65536, "Processes tracked individually.");
ABSL_FLAG(uint32_t, max_cgroups, 8192, "Workloads (cgroups) tracked.");
ABSL_FLAG(std::string, log_level, "info", "trace|debug|info|warn|error");
ABSL_FLAG(std::string, node_name, "",
          "This node's name in reports (default: $NODE_NAME, else the "
          "hostname). With mTLS it must match the agent certificate.");
ABSL_FLAG(std::string, collector, "",
          "HOST:PORT of wattlens-collector to stream reports to (empty: no "
          "upload).");
ABSL_FLAG(bool, insecure, false,
          "Talk to the collector in plaintext instead of mTLS.");
ABSL_FLAG(std::string, tls_cert_file, "", "Agent certificate (mTLS).");
ABSL_FLAG(std::string, tls_key_file, "", "Agent private key (mTLS).");
ABSL_FLAG(std::string, tls_ca_file, "", "CA that signed the collector.");
ABSL_FLAG(std::string, collector_token_file, "",
          "Projected service-account token sent to the collector "
          "(for its --node_identity=token); re-read for every stream.");
ABSL_FLAG(std::string, tls_server_name, "",
          "Name expected in the collector's certificate (default: host).");
ABSL_FLAG(absl::Duration, upload_interval, absl::Seconds(10),
          "How often a report is streamed to the collector.");
ABSL_FLAG(absl::Duration, upload_jitter, absl::Seconds(1),
          "Random extra delay per report, so nodes do not send in step.");
ABSL_FLAG(uint32_t, outbox_reports, 360,
          "Reports kept while the collector is away (oldest dropped, "
          "counted).");
ABSL_FLAG(bool, bpf_pin, false,
          "Pin the BPF maps and links in bpffs (--bpf_pin_root) so that they "
          "keep counting while no agent runs, and adopt a pinned set left by "
          "an earlier agent of the same BPF layout (docs/deploy.md, Restarts "
          "and upgrades). Without bpffs the agent runs unpinned.");
ABSL_FLAG(std::string, bpf_pin_root, "/sys/fs/bpf/wattlens",
          "bpffs directory for --bpf_pin.");
ABSL_FLAG(std::string, restart_state_dir, "/run/wattlens",
          "Where the agent keeps, at each acknowledged report, what the next "
          "agent needs to count on from it (with --bpf_pin); must survive the "
          "pod (a hostPath). Empty: not kept.");
ABSL_FLAG(bool, bpf_unpin, false,
          "Remove every pinned set under --bpf_pin_root (detaching its "
          "programs) and the restart state, then exit: for uninstalling.");
ABSL_FLAG(std::string, node_api_address, "unix:///run/wattlens/node.sock",
          "gRPC NodeService (this node's view, per-process detail): a unix "
          "socket by default, never unauthenticated TCP; empty: off.");
ABSL_FLAG(bool, power, true,
          "Measure (or model) node energy and attribute it to workloads.");
ABSL_FLAG(std::string, power_idle_policy, "none",
          "Idle (static) energy: none (stays in __idle__), usage (shared by "
          "CPU use) or request (shared by CPU requests).");
ABSL_FLAG(std::string, power_sysfs_root, "/",
          "Root under which the power meters (powercap, hwmon, the perf "
          "power PMU) and cpufreq are read from sysfs, e.g. /host when the "
          "host's /sys is mounted at /host/sys. /proc files come from "
          "--proc_root.");
ABSL_FLAG(std::string, power_model, "ccf",
          "Model for nodes without a meter: ccf or tdp-curve.");
ABSL_FLAG(double, power_model_min_watts_per_vcpu, -1,
          "ccf: idle watts per vCPU (default: the CCF row for this CPU).");
ABSL_FLAG(double, power_model_max_watts_per_vcpu, -1,
          "ccf: watts per vCPU at 100% (default: the CCF row for this CPU).");
ABSL_FLAG(double, power_model_memory_watts_per_gb, 0.392,
          "ccf: watts per GB of memory (0: CPU only).");
ABSL_FLAG(double, power_model_tdp_watts_per_thread, 5.0,
          "tdp-curve: TDP per hardware thread in watts.");
ABSL_FLAG(bool, power_gpu, true, "Probe NVIDIA GPUs through NVML.");
ABSL_FLAG(std::string, kubeconfig, "",
          "Pod metadata from the API server this kubeconfig names (token or "
          "client-certificate users). Default: the in-cluster configuration "
          "when KUBERNETES_SERVICE_HOST is set, else none (pods are then "
          "identified by UID and container id from their cgroup paths).");
ABSL_FLAG(bool, watch_pods, true,
          "Read pod metadata (names, owners, images, requests) from "
          "Kubernetes; false: cgroup paths only.");
ABSL_FLAG(std::string, kubelet_url, "",
          "Opt-in: poll this kubelet's /pods (e.g. https://127.0.0.1:10250, "
          "or the read-only http://127.0.0.1:10255) instead of watching the "
          "API server.");
ABSL_FLAG(std::string, kubelet_ca_file, "",
          "CA that signed the kubelet's serving certificate.");
ABSL_FLAG(bool, kubelet_insecure_skip_tls_verify, false,
          "Do not verify the kubelet's certificate (self-signed kubelets).");
ABSL_FLAG(absl::Duration, kubelet_poll_interval, absl::Seconds(10),
          "How often the kubelet's /pods is read.");
ABSL_FLAG(std::vector<std::string>, identity_project_map, {},
          "Comma-separated project map files layered over the shipped one "
          "(format: docs/identity.md).");
ABSL_FLAG(std::string, dpkg_root, "/",
          "Root of the host filesystem whose dpkg database maps host "
          "executables to packages and projects (empty: no lookup).");
ABSL_FLAG(std::vector<std::string>, node_labels, {},
          "k=v,... node labels for cost and carbon "
          "(topology.kubernetes.io/region=..., "
          "node.kubernetes.io/instance-type=...) when the Node object cannot "
          "be read; the Node object's labels win.");
ABSL_FLAG(std::string, node_provider_id, "",
          "spec.providerID when the Node object cannot be read.");
ABSL_FLAG(std::string, metrics_workload_level, "auto",
          "Grain of the wattlens_workload_* series: cgroup, pod, workload, "
          "namespace, or auto (the finest that fits "
          "--metrics_max_workload_series).");
ABSL_FLAG(std::string, cgroup_v1_fallback, "auto",
          "Attribute processes left in the cgroup v2 root to their cgroup v1 "
          "path from /proc/<pid>/cgroup: auto (when there is no cgroup2 "
          "mount), on (also on hybrid hosts), off.");
ABSL_FLAG(uint64_t, metrics_max_workload_series, 2000,
          "Bound on wattlens_workload_* series on /metrics; past it the "
          "least busy rows are folded into cgroup=\"__other__\".");

// --help lists the flags by the part of the agent they configure.
wattlens::version::DaemonUsage AgentUsage() {
  return {"wattlens-agent",
          "Per-node Wattlens agent: per-workload CPU time, syscalls, network "
          "and energy from eBPF, served as Prometheus metrics on /metrics and "
          "uploaded to the collector.",
          {{"Sampling and BPF",
            {"interval", "bpf_", "cpu_time_source", "event_queue_capacity",
             "btf_path", "max_processes", "max_cgroups", "cluster_cidrs",
             "drop_capabilities", "exe_table_entries"}},
           {"Workload identity",
            {"node_name", "node_labels", "node_provider_id", "kubeconfig",
             "watch_pods", "kubelet_", "identity_", "dpkg_root", "proc_root",
             "cgroup_"}},
           {"Power and energy", {"power", "power_"}},
           {"Metrics and local API",
            {"metrics_", "process_metrics_top_n", "node_api_address", "live",
             "live_top"}},
           {"Upload to the collector",
            {"collector", "collector_", "insecure", "tls_", "upload_",
             "outbox_reports"}},
           {"Logging", {"log_level"}}}};
}

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Per-node Wattlens agent: per-workload CPU time and syscalls from eBPF,\n"
      "served as Prometheus metrics on /metrics.");
  if (auto rc = wattlens::version::HandleHelpAndVersion(
          argc, argv, AgentUsage(), std::cout)) {
    return *rc;
  }
  absl::ParseCommandLine(argc, argv);
  {
    // gRPC targets with a scheme (dns:///, unix:) are left to gRPC.
    const std::string collector = absl::GetFlag(FLAGS_collector);
    const bool plain_collector = collector.find(':') != std::string::npos &&
                                 collector.find("://") == std::string::npos &&
                                 collector.rfind("unix:", 0) != 0 &&
                                 collector.rfind("dns:", 0) != 0;
    for (const absl::Status& st : {
             wattlens::CheckLogLevel("log_level",
                                     absl::GetFlag(FLAGS_log_level)),
             wattlens::CheckHostPort(
                 "metrics_address", absl::GetFlag(FLAGS_metrics_address), true),
             plain_collector
                 ? wattlens::CheckHostPort("collector", collector, true)
                 : absl::OkStatus(),
             wattlens::CheckRange("outbox_reports",
                                  absl::GetFlag(FLAGS_outbox_reports), 1,
                                  1'000'000),
         }) {
      if (!st.ok()) {
        std::fprintf(stderr, "wattlens-agent: %s\n",
                     std::string(st.message()).c_str());
        return 2;
      }
    }
  }
  // Logs go to stderr: stdout carries the live view.
  spdlog::set_default_logger(spdlog::stderr_color_mt("wattlens-agent"));
  spdlog::set_level(spdlog::level::from_str(absl::GetFlag(FLAGS_log_level)));
  if (absl::Status st = wattlens::RaiseFileLimit(); !st.ok()) {
    spdlog::warn("{}", std::string(st.message()));
  }

  // Signals are taken by one thread with sigwait: no work in a handler.
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);

  if (absl::GetFlag(FLAGS_bpf_unpin)) {
    auto removed = wattlens::RemovePins(absl::GetFlag(FLAGS_bpf_pin_root));
    if (!removed.ok()) {
      std::fprintf(stderr, "wattlens-agent: --bpf_unpin: %s\n",
                   std::string(removed.status().message()).c_str());
      return 1;
    }
    rmdir(absl::GetFlag(FLAGS_bpf_pin_root).c_str());
    if (std::string dir = absl::GetFlag(FLAGS_restart_state_dir); !dir.empty()) {
      wattlens::RestartStateFile(dir).Remove();
    }
    std::printf("removed %d pinned BPF sets\n", *removed);
    return 0;
  }

  wattlens::AgentConfig config;
  config.restart.pin.enabled = absl::GetFlag(FLAGS_bpf_pin);
  config.restart.pin.root = absl::GetFlag(FLAGS_bpf_pin_root);
  if (config.restart.pin.enabled) {
    config.restart.state_dir = absl::GetFlag(FLAGS_restart_state_dir);
  }
  config.interval = absl::GetFlag(FLAGS_interval);
  if (config.interval < absl::Milliseconds(10)) {
    std::fprintf(stderr, "wattlens-agent: --interval must be at least 10ms\n");
    return 2;
  }
  config.metrics_address = absl::GetFlag(FLAGS_metrics_address);
  config.syscalls.map_entries = absl::GetFlag(FLAGS_bpf_syscall_map_entries);
  config.sched.map_entries = absl::GetFlag(FLAGS_bpf_sched_map_entries);
  config.sched.dying_entries = absl::GetFlag(FLAGS_bpf_sched_dying_entries);
  config.sched.ringbuf_bytes = absl::GetFlag(FLAGS_bpf_ringbuf_bytes);
  if (auto source =
          wattlens::ParseCpuTimeSource(absl::GetFlag(FLAGS_cpu_time_source));
      source.ok()) {
    config.cpu_time_request = *source;
  } else {
    std::fprintf(stderr, "wattlens-agent: --cpu_time_source: %s\n",
                 std::string(source.status().message()).c_str());
    return 2;
  }
  if (auto source = wattlens::ParseNetworkBytesSource(
          absl::GetFlag(FLAGS_network_bytes_source));
      source.ok()) {
    config.network_bytes_request = *source;
  } else {
    std::fprintf(stderr, "wattlens-agent: --network_bytes_source: %s\n",
                 std::string(source.status().message()).c_str());
    return 2;
  }
  config.network.map_entries = absl::GetFlag(FLAGS_bpf_net_map_entries);
  for (const std::string& text : absl::GetFlag(FLAGS_cluster_cidrs)) {
    auto cidr = wattlens::ParseCidr(text);
    if (!cidr.ok()) {
      std::fprintf(stderr, "wattlens-agent: --cluster_cidrs: %s\n",
                   std::string(cidr.status().message()).c_str());
      return 2;
    }
    config.network.cluster_cidrs.push_back(*cidr);
  }
  config.event_queue_capacity = absl::GetFlag(FLAGS_event_queue_capacity);
  config.exe_table_entries = absl::GetFlag(FLAGS_exe_table_entries);
  config.enable_bpf_stats = absl::GetFlag(FLAGS_bpf_stats);
  config.drop_capabilities = absl::GetFlag(FLAGS_drop_capabilities);
  config.exposition.process_top_n = absl::GetFlag(FLAGS_process_metrics_top_n);
  config.btf_path = absl::GetFlag(FLAGS_btf_path);
  config.proc_root = absl::GetFlag(FLAGS_proc_root);
  config.cgroup_root = absl::GetFlag(FLAGS_cgroup_root);
  config.aggregator.max_processes = absl::GetFlag(FLAGS_max_processes);
  config.aggregator.max_cgroups = absl::GetFlag(FLAGS_max_cgroups);
  config.power.enabled = absl::GetFlag(FLAGS_power);
  config.power.fs_root = absl::GetFlag(FLAGS_power_sysfs_root);
  config.power.proc_root = config.proc_root;
  const std::string policy = absl::GetFlag(FLAGS_power_idle_policy);
  if (policy == "none") {
    config.power.attribution.idle_policy = wattlens::power::IdlePolicy::kNone;
  } else if (policy == "usage") {
    config.power.attribution.idle_policy =
        wattlens::power::IdlePolicy::kUsageShare;
  } else if (policy == "request") {
    config.power.attribution.idle_policy =
        wattlens::power::IdlePolicy::kRequestShare;
  } else {
    std::fprintf(stderr,
                 "wattlens-agent: --power_idle_policy must be none, usage or "
                 "request\n");
    return 2;
  }
  wattlens::power::ModelConfig& model = config.power.probe.model;
  const std::string method = absl::GetFlag(FLAGS_power_model);
  if (method == "ccf") {
    model.method = wattlens::power::ModelMethod::kCcf;
  } else if (method == "tdp-curve") {
    model.method = wattlens::power::ModelMethod::kTdpCurve;
  } else {
    std::fprintf(stderr,
                 "wattlens-agent: --power_model must be ccf or tdp-curve\n");
    return 2;
  }
  if (double w = absl::GetFlag(FLAGS_power_model_min_watts_per_vcpu); w >= 0) {
    model.min_watts_per_vcpu = w;
  }
  if (double w = absl::GetFlag(FLAGS_power_model_max_watts_per_vcpu); w >= 0) {
    model.max_watts_per_vcpu = w;
  }
  model.memory_watts_per_gb =
      absl::GetFlag(FLAGS_power_model_memory_watts_per_gb);
  model.tdp_watts_per_thread =
      absl::GetFlag(FLAGS_power_model_tdp_watts_per_thread);
  config.power.probe.probe_gpu = absl::GetFlag(FLAGS_power_gpu);

  std::string node_name = absl::GetFlag(FLAGS_node_name);
  if (node_name.empty()) {
    node_name = wattlens::identity::NodeName(wattlens::identity::ProcessEnv());
  }
  wattlens::IdentityAgentConfig& id = config.identity;
  id.node_name = node_name;
  id.kubeconfig = absl::GetFlag(FLAGS_kubeconfig);
  id.watch_pods = absl::GetFlag(FLAGS_watch_pods);
  id.kubelet_url = absl::GetFlag(FLAGS_kubelet_url);
  id.kubelet_ca_file = absl::GetFlag(FLAGS_kubelet_ca_file);
  id.kubelet_insecure_skip_tls_verify =
      absl::GetFlag(FLAGS_kubelet_insecure_skip_tls_verify);
  id.watcher.kubelet_poll_ns =
      absl::ToInt64Nanoseconds(absl::GetFlag(FLAGS_kubelet_poll_interval));
  id.project_map_files = absl::GetFlag(FLAGS_identity_project_map);
  id.dpkg_root = absl::GetFlag(FLAGS_dpkg_root);
  for (const std::string& kv : absl::GetFlag(FLAGS_node_labels)) {
    size_t eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) {
      std::fprintf(stderr, "wattlens-agent: --node_labels: \"%s\" is not k=v\n",
                   kv.c_str());
      return 2;
    }
    id.node_labels.emplace_back(kv.substr(0, eq), kv.substr(eq + 1));
  }
  id.node_provider_id = absl::GetFlag(FLAGS_node_provider_id);
  auto level =
      wattlens::ParseSeriesLevel(absl::GetFlag(FLAGS_metrics_workload_level));
  if (!level.ok()) {
    std::fprintf(stderr, "wattlens-agent: --metrics_workload_level: %s\n",
                 std::string(level.status().message()).c_str());
    return 2;
  }
  id.series.fixed_level = *level;
  const std::string v1 = absl::GetFlag(FLAGS_cgroup_v1_fallback);
  using V1Fallback = wattlens::IdentityAgentConfig::V1Fallback;
  if (v1 == "auto") {
    id.cgroup_v1_fallback = V1Fallback::kAuto;
  } else if (v1 == "on") {
    id.cgroup_v1_fallback = V1Fallback::kOn;
  } else if (v1 == "off") {
    id.cgroup_v1_fallback = V1Fallback::kOff;
  } else {
    std::fprintf(stderr,
                 "wattlens-agent: --cgroup_v1_fallback must be auto, on or "
                 "off\n");
    return 2;
  }
  id.series.max_series = absl::GetFlag(FLAGS_metrics_max_workload_series);

  auto agent = wattlens::Agent::Create(config);
  if (!agent.ok()) {
    std::fprintf(stderr, "wattlens-agent: %s\n",
                 std::string(agent.status().message()).c_str());
    return 1;
  }
  spdlog::info("wattlens-agent {} running; /metrics on port {}",
               WATTLENS_VERSION, (*agent)->metrics_port());

  std::thread signals([&agent, sigs] {
    int sig = 0;
    sigwait(&sigs, &sig);
    spdlog::info("signal {}: detaching", sig);
    (*agent)->Stop();
  });
  signals.detach();

  // The node API and the uploader read the published snapshots; neither is
  // on the drain path.
  const wattlens::NodeReportOptions report_options{
      node_name, static_cast<uint64_t>(absl::ToUnixNanos(absl::Now())),
      WATTLENS_VERSION,
      absl::ToInt64Nanoseconds(absl::GetFlag(FLAGS_upload_interval)),
      (*agent)->carried_ns()};
  auto node_api = std::make_unique<wattlens::NodeApiService>(report_options);
  std::unique_ptr<grpc::Server> node_server;
  if (std::string addr = absl::GetFlag(FLAGS_node_api_address); !addr.empty()) {
    if (addr.rfind("unix://", 0) == 0) {
      std::string dir = addr.substr(7, addr.rfind('/') - 7);
      mkdir(dir.c_str(), 0750);
      unlink(addr.substr(7).c_str());  // a stale socket from a crash
    }
    grpc::EnableDefaultHealthCheckService(true);
    grpc::ServerBuilder builder;
    builder.AddListeningPort(addr, grpc::InsecureServerCredentials());
    builder.RegisterService(node_api.get());
    node_server = builder.BuildAndStart();
    if (!node_server) {
      spdlog::warn("node API not served: cannot listen on {}", addr);
    } else {
      spdlog::info("node API on {}", addr);
    }
  }
  std::unique_ptr<wattlens::Uploader> uploader;
  if (std::string collector = absl::GetFlag(FLAGS_collector);
      !collector.empty()) {
    wattlens::UploaderOptions uo;
    uo.collector = collector;
    uo.insecure = absl::GetFlag(FLAGS_insecure);
    uo.tls = {absl::GetFlag(FLAGS_tls_cert_file),
              absl::GetFlag(FLAGS_tls_key_file),
              absl::GetFlag(FLAGS_tls_ca_file)};
    uo.tls_server_name = absl::GetFlag(FLAGS_tls_server_name);
    uo.token_file = absl::GetFlag(FLAGS_collector_token_file);
    uo.interval = absl::GetFlag(FLAGS_upload_interval);
    uo.jitter = absl::GetFlag(FLAGS_upload_jitter);
    uo.outbox_capacity = absl::GetFlag(FLAGS_outbox_reports);
    wattlens::Agent* a = agent->get();
    wattlens::RestartLedger* ledger = a->restart_ledger();
    if (ledger) {
      uo.on_acked = [ledger](uint64_t epoch, uint64_t seq) {
        ledger->Acked(epoch, seq);
      };
    }
    auto u = wattlens::Uploader::Create(
        uo,
        [a, ledger,
         report_options]() -> std::optional<wattlens::v1::NodeReport> {
          auto snap = a->store().Latest();
          if (!snap || snap->sequence == 0) return std::nullopt;
          wattlens::v1::NodeReport r =
              wattlens::BuildNodeReport(*snap, report_options);
          if (ledger) {
            ledger->Queued(r.epoch(), r.sequence(), snap->realtime_ns,
                           snap->kernel_baselines);
          }
          return r;
        });
    if (!u.ok()) {
      std::fprintf(stderr, "wattlens-agent: --collector: %s\n",
                   std::string(u.status().message()).c_str());
      return 1;
    }
    uploader = std::move(*u);
    uploader->Start();
    // Not ready while the collector acknowledges nothing (the agent object,
    // and with it the HTTP server, is destroyed before the uploader).
    wattlens::AddUploaderHealthCheck(
        a->health(), *uploader, wattlens::RealClock::Get(),
        std::max(3 * uo.interval + uo.jitter, absl::Seconds(60)));
    spdlog::info("streaming reports for node {} to {}", node_name, collector);
  }

  const bool live = absl::GetFlag(FLAGS_live);
  const bool tty = isatty(STDOUT_FILENO);
  const size_t top = absl::GetFlag(FLAGS_live_top);
  absl::Status s = (*agent)->Run(
      [&](const wattlens::Snapshot* prev, const wattlens::Snapshot& cur) {
        node_api->Update(cur);
        if (!live) return;
        std::string view = wattlens::RenderLiveView(prev, cur, top);
        std::cout << (tty ? "\033[H\033[2J" : "\n") << view << std::flush;
      });
  if (uploader) uploader->Stop(absl::Seconds(2));  // flush what is queued
  if (node_server) node_server->Shutdown();
  agent->reset();  // detach programs before exit
  if (!s.ok()) {
    std::fprintf(stderr, "wattlens-agent: %s\n",
                 std::string(s.message()).c_str());
    return 1;
  }
  return 0;
}
