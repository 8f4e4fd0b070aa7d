// SPDX-License-Identifier: Apache-2.0
#include "agent/agent.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <exception>
#include <fstream>
#include <map>
#include <optional>

#include "absl/strings/str_join.h"
#include "agent/common/capabilities.h"
#include "agent/common/status_macros.h"
#include "agent/export/agent_health.h"
#include "agent/power/node_energy.h"
#include "prometheus/exposer.h"
#include "spdlog/spdlog.h"

namespace wattlens {
namespace {

// /proc/<pid>/stat and /proc/<pid>/comm, for processes the agent first meets
// in its counters. Never environ or cmdline.
std::optional<ProcInfo> ReadProc(const std::string& proc_root, uint32_t pid) {
  std::string dir = proc_root + "/" + std::to_string(pid);
  std::ifstream stat(dir + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return std::nullopt;
  // comm may contain spaces and parentheses: fields resume after the last ')'.
  size_t open = line.find('('), close = line.rfind(')');
  if (open == std::string::npos || close == std::string::npos || close < open) {
    return std::nullopt;
  }
  ProcInfo info;
  info.comm = line.substr(open + 1, close - open - 1);
  std::istringstream rest(line.substr(close + 1));
  std::string field;
  // Field 3 is state; ppid is field 4, starttime field 22.
  for (int i = 3; i <= 22 && rest >> field; ++i) {
    if (i == 4) info.ppid = std::strtoul(field.c_str(), nullptr, 10);
    if (i == 22) info.start_ticks = std::strtoull(field.c_str(), nullptr, 10);
  }
  return info;
}

}  // namespace

// The model's utilisation: the on-CPU time the agent measured in the
// interval over the CPU time available. The energy the model creates is then
// exactly the energy split by that CPU time, so nothing busy in /proc/stat
// but invisible to the scheduler's task accounting (this is large on some
// VMs) lands on whichever workloads happened to run.
class Agent::MeasuredUtilisation final : public power::UtilisationSource {
 public:
  // `interval_ns`: between the reads of the CPU time u comes from.
  void Set(double u, int64_t interval_ns) {
    u_ = u;
    interval_ns_ = interval_ns;
  }
  absl::StatusOr<double> Next() override { return u_; }
  std::optional<int64_t> interval_ns() const override {
    return interval_ns_ > 0 ? std::optional<int64_t>(interval_ns_)
                            : std::nullopt;
  }

 private:
  double u_ = 0;
  int64_t interval_ns_ = 0;
};

Agent::Agent(AgentConfig config, const Clock& clock)
    : config_(std::move(config)),
      clock_(clock),
      events_(config_.event_queue_capacity),
      exe_updates_(config_.event_queue_capacity),
      exe_table_(config_.exe_table_entries) {}

absl::StatusOr<std::unique_ptr<Agent>> Agent::Create(AgentConfig config,
                                                     const Clock& clock) {
  InstallLibbpfLogger();
  std::unique_ptr<Agent> a(new Agent(std::move(config), clock));
  AgentConfig& c = a->config_;
  a->features_ = ProbeKernelFeatures(c.btf_path, c.proc_root);
  RETURN_IF_ERROR(CheckBpfPrerequisites(a->features_, c.btf_path));
  const int ncpus = a->features_.possible_cpus;

  using V1Fallback = IdentityAgentConfig::V1Fallback;
  bool v1 = c.identity.cgroup_v1_fallback == V1Fallback::kOn;
  if (c.cgroup_root.empty()) {
    absl::StatusOr<std::string> mount = FindCgroup2Mount(c.proc_root);
    if (mount.ok()) {
      c.cgroup_root = *mount;
    } else if (c.identity.cgroup_v1_fallback == V1Fallback::kAuto) {
      // A v1-only host: every task is in the default hierarchy's root.
      spdlog::warn("no cgroup2 mount ({}): workloads from /proc/<pid>/cgroup",
                   mount.status().ToString());
      v1 = true;
    } else {
      return mount.status();
    }
  }
  if (v1) a->v1_ = std::make_unique<identity::V1Attribution>(c.proc_root);
  a->cgroups_ = std::make_unique<CgroupResolver>(c.cgroup_root, clock);

  if (c.enable_bpf_stats) {
    a->stats_fd_ = bpf_enable_stats(BPF_STATS_RUN_TIME);
    if (a->stats_fd_ < 0) {
      spdlog::warn("cannot enable BPF run-time stats: {}", strerror(errno));
    }
  }

  // Each concern loads on its own, in the variant the kernel's features
  // allow: a verifier failure degrades the agent (with the verifier's
  // reason), it never silently loads another variant.
  c.syscalls.task_pt_regs = a->features_.task_pt_regs;
  c.syscalls.pin = c.sched.pin = c.restart.pin;
  a->source_variants_["syscalls"] =
      c.syscalls.task_pt_regs ? "tp_btf" : "tp_btf_stack_regs";
  auto sys = SyscallsProgram::Create(c.syscalls, ncpus);
  if (sys.ok()) {
    a->syscalls_ = std::move(*sys);
  } else {
    a->syscalls_error_ = std::string(sys.status().message());
    spdlog::error("syscalls source disabled: {}", a->syscalls_error_);
  }
  Agent* self = a.get();
  // The model's first interval starts before on-CPU time is first charged.
  a->power_last_ns_ = clock.MonotonicNs();
  auto on_event = [self](const wl_event& e) {
    self->events_received_.fetch_add(1, std::memory_order_relaxed);
    self->events_.TryPush(e);  // full: counted by the ring, never blocks
  };
  absl::StatusOr<std::unique_ptr<SchedProgram>> sched =
      absl::FailedPreconditionError("");
  if (auto cpu = ChooseCpuTimeSource(a->features_, c.cpu_time_request);
      cpu.ok()) {
    c.sched.cpu_time_source = *cpu;
    c.sched.exe_paths = a->features_.loop;
    a->source_variants_["sched"] = std::string(CpuTimeSourceName(*cpu));
    sched = SchedProgram::Create(c.sched, ncpus, on_event);
  } else {
    sched = cpu.status();
    a->sched_down_reason_ = HealthReason::kNoVariant;
  }
  if (sched.ok()) {
    a->sched_ = std::move(*sched);
    a->sched_->set_exe_handler([self](uint32_t tgid, uint64_t start_ns,
                                      uint64_t ts, std::string path) {
      self->exe_updates_.TryPush({tgid, start_ns, ts, std::move(path)});
    });
  } else {
    a->sched_error_ = std::string(sched.status().message());
    spdlog::error("sched source disabled: {}", a->sched_error_);
  }
  // `cluster` peers: --cluster_cidrs, else detected (the Node's podCIDRs
  // join when the pod watcher has read the Node object; see Identify).
  a->cidr_inputs_.configured = c.network.cluster_cidrs;
  if (c.network.cluster_cidrs.empty()) {
    identity::EnvLookup env =
        c.identity.env ? c.identity.env : identity::ProcessEnv();
    if (std::optional<std::string> host = env("KUBERNETES_SERVICE_HOST")) {
      a->cidr_inputs_.kubernetes_service_host = *host;
    }
  }
  a->DetectClusterCidrs();
  absl::StatusOr<std::unique_ptr<NetworkProgram>> net =
      absl::FailedPreconditionError("");
  if (auto bytes =
          ChooseNetworkBytesSource(a->features_, c.network_bytes_request);
      bytes.ok()) {
    NetworkProgramConfig net_config = c.network;
    net_config.bytes_source = *bytes;
    net_config.cluster_cidrs = CidrsOf(a->cidrs_);
    net_config.pin = c.restart.pin;
    a->source_variants_["network"] =
        std::string(NetworkBytesSourceName(*bytes));
    net = NetworkProgram::Create(net_config, ncpus);
  } else {
    net = bytes.status();
    a->network_down_reason_ = HealthReason::kNoVariant;
  }
  if (net.ok()) {
    a->network_ = std::move(*net);
    a->network_error_ = a->network_->degraded_reason();
  } else {
    a->network_error_ = std::string(net.status().message());
    spdlog::error("network source disabled: {}", a->network_error_);
  }
  for (const auto& [source, variant] : a->source_variants_) {
    spdlog::info("{}: {} variant on kernel {}", source, variant,
                 a->features_.kernel_release);
  }
  if (!a->syscalls_ && !a->sched_ && !a->network_) {
    return absl::FailedPreconditionError(
        absl::StrCat("no BPF source could be loaded: ", a->syscalls_error_));
  }

  if (absl::Status st = a->CreateIdentity(); !st.ok()) return st;
  a->CreatePower();

  a->SeedExecutables();

  // Everything privileged is done: programs loaded and attached, perf
  // counters and the stats fd open. No thread exists yet, so every thread
  // started from here on inherits the reduced set.
  if (c.drop_capabilities) {
    constexpr int kCapDacReadSearch = 2;
    if (absl::Status s = DropCapabilitiesExcept({kCapDacReadSearch}); !s.ok()) {
      spdlog::warn("could not drop capabilities: {}", s.ToString());
    }
  }

  AggregatorEnv env;
  const std::string proc_root = c.proc_root;
  env.cgroup_path = [resolver = a->cgroups_.get()](uint64_t id) {
    return resolver->PathOf(id);
  };
  env.read_proc = [proc_root](uint32_t pid) {
    return ReadProc(proc_root, pid);
  };
  long tck = sysconf(_SC_CLK_TCK);
  env.tick_ns = tck > 0 ? 1'000'000'000 / tck : 10'000'000;
  AggregatorOptions aggregator = c.aggregator;
  // Sampled, EXIT comes at the first drain after the final switch-out:
  // give it at least two intervals.
  aggregator.exit_grace_ns = std::max(aggregator.exit_grace_ns,
                                      2 * absl::ToInt64Nanoseconds(c.interval));
  a->aggregator_ = std::make_unique<Aggregator>(aggregator, std::move(env));
  a->Restore();

  if (!c.metrics_address.empty()) {
    AddAgentHealthChecks(a->health_, a->store_, a->clock_, c.interval);
    ASSIGN_OR_RETURN(a->exposer_,
                     StartExposerWithHealth(c.metrics_address, &a->health_));
    a->collectable_ =
        std::make_shared<SnapshotCollectable>(&a->store_, c.exposition);
    a->exposer_->RegisterCollectable(a->collectable_);
  }
  if (a->sched_) a->event_thread_ = std::thread([self] { self->EventLoop(); });
  if (a->watcher_) {
    a->watch_thread_ =
        std::thread([self] { self->watcher_->Run(&self->watch_stop_); });
  }
  return a;
}

Agent::~Agent() {
  Stop();
  if (event_thread_.joinable()) event_thread_.join();
  if (!watch_stop_.HasBeenNotified()) watch_stop_.Notify();
  if (watch_thread_.joinable()) watch_thread_.join();
  exposer_.reset();  // stop serving before the store goes away
  if (stats_fd_ >= 0) close(stats_fd_);
}

int Agent::metrics_port() const {
  if (!exposer_) return 0;
  auto ports = exposer_->GetListeningPorts();
  return ports.empty() ? 0 : ports.front();
}

void Agent::Restore() {
  RestoreInput in;
  std::vector<std::string> layouts;
  auto note = [&](const char* concern, const ObjectPins& p, bool* adopted) {
    if (p.outcome() == PinOutcome::kFresh ||
        p.outcome() == PinOutcome::kAdopted) {
      layouts.push_back(absl::StrCat(concern, "-", p.layout()));
    }
    *adopted = p.outcome() == PinOutcome::kAdopted;
  };
  if (sched_) note("sched", sched_->pins(), &in.adopted_oncpu);
  if (syscalls_) note("syscalls", syscalls_->pins(), &in.adopted_syscalls);
  if (network_) note("network", network_->pins(), &in.adopted_net);
  in.layout = absl::StrJoin(layouts, " ");
  in.node_name = config_.identity.node_name;
  in.now_ns = clock_.RealtimeNs();
  std::optional<RestartStateFile> file;
  if (!config_.restart.state_dir.empty()) {
    mkdir(config_.restart.state_dir.c_str(), 0750);
    file.emplace(config_.restart.state_dir);
    if (!layouts.empty()) {
      ledger_ = std::make_unique<RestartLedger>(*file, in.layout, in.node_name);
    }
  }
  RestorePlan plan = PlanRestore(in, file ? &*file : nullptr);
  restart_ = plan.outcome;
  restart_reason_ = plan.reason;
  carried_ns_ = plan.carried_ns;
  if (plan.outcome == "state_unreadable") {
    // Nothing the last agent reported is counted twice; what ran since its
    // last acknowledged report is lost.
    spdlog::warn("restart: adopted pinned BPF state but {}: counting from now",
                 plan.reason);
  } else if (plan.outcome == "resumed") {
    spdlog::info("restart: adopted pinned BPF state; counting on from {}",
                 plan.reason);
  }
  MapReadStats stats;
  if (sched_ && plan.seed_oncpu_from_maps) {
    (void)sched_->ReadOnCpu(
        [&](const wl_sched_key& k, uint64_t v) {
          plan.baselines.oncpu.emplace_back(k, v);
        },
        &stats);
  }
  if (syscalls_ && plan.seed_syscalls_from_maps) {
    (void)syscalls_->ReadCounts(
        [&](const wl_syscall_key& k, const wl_syscall_val& v) {
          plan.baselines.syscalls.emplace_back(k, v);
        },
        &stats);
  }
  if (network_ && plan.seed_net_from_maps) {
    (void)network_->ReadCounts(
        [&](const wl_net_key& k, const wl_net_val& v) {
          plan.baselines.net.emplace_back(k, v);
        },
        &stats);
  }
  aggregator_->SeedBaselines(plan.baselines);
}

absl::Status Agent::CreateIdentity() {
  IdentityAgentConfig& ic = config_.identity;
  if (!ic.env) ic.env = identity::ProcessEnv();
  if (ic.node_name.empty()) ic.node_name = identity::NodeName(ic.env);
  projects_ = identity::ProjectMap::Shipped();
  for (const std::string& f : ic.project_map_files) {
    if (absl::Status s = projects_.AddFile(f); !s.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("project map ", f, ": ", s.message()));
    }
  }
  if (!ic.dpkg_root.empty()) {
    dpkg_ = std::make_unique<identity::DpkgIndex>(ic.dpkg_root, clock_);
  }
  pods_ = std::make_unique<identity::PodCache>(clock_);
  absl::StatusOr<identity::KubeApiConfig> api =
      absl::FailedPreconditionError("pod metadata off");
  identity::PodWatcherOptions wo = ic.watcher;
  if (!ic.watch_pods) {
    // paths only
  } else if (!ic.kubelet_url.empty()) {
    identity::KubeApiConfig k;
    k.server = ic.kubelet_url;
    while (!k.server.empty() && k.server.back() == '/') k.server.pop_back();
    k.ca_file = ic.kubelet_ca_file;
    k.insecure_skip_tls_verify = ic.kubelet_insecure_skip_tls_verify;
    const std::string token = ic.service_account_dir + "/token";
    if (access(token.c_str(), R_OK) == 0) k.token_file = token;
    k.source = "kubelet";
    api = k;
    wo.source = identity::PodWatcherOptions::Source::kKubelet;
    metadata_source_ = "kubelet";
  } else if (!ic.kubeconfig.empty()) {
    api = identity::LoadKubeconfig(ic.kubeconfig);
    if (!api.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--kubeconfig: ", api.status().message()));
    }
    metadata_source_ = "api-server";
  } else if (ic.env("KUBERNETES_SERVICE_HOST").has_value()) {
    api = identity::InClusterConfig(ic.env, ic.service_account_dir);
    if (!api.ok()) {
      spdlog::error(
          "in-cluster Kubernetes config: {}; identity from cgroup "
          "paths only",
          api.status().ToString());
    } else {
      metadata_source_ = "api-server";
    }
  }
  if (api.ok()) {
    watcher_ = std::make_unique<identity::PodWatcher>(*api, ic.node_name,
                                                      pods_.get(), clock_, wo);
    spdlog::info("pod metadata for node {} from {} ({})", ic.node_name,
                 metadata_source_, api->server);
  } else {
    spdlog::info(
        "no Kubernetes API configured: pods are identified by "
        "their cgroup paths only");
  }
  identity::WorkloadIdentityOptions io;
  io.proc_root = config_.proc_root;
  io.dpkg = dpkg_.get();
  io.exes = &exe_table_;
  identifier_ = std::make_unique<identity::WorkloadIdentifier>(
      watcher_ ? pods_.get() : nullptr, &projects_, io);
  // Hybrid hosts keep the memory controller on v1: working sets come from
  // there when the v2 directory has no memory.current.
  resources_ = std::make_unique<ResourceAccounting>(
      config_.cgroup_root, clock_.MonotonicNs(), nullptr,
      FindCgroupV1Mount(config_.proc_root, "memory"));
  series_ = std::make_unique<WorkloadSeries>(ic.series);
  ReadNodeCapacity(config_.proc_root, &node_info_);
  return absl::OkStatus();
}

void Agent::Identify(Snapshot* snapshot) {
  if (v1_) v1_->Apply(snapshot);
  identifier_->Label(snapshot);
  resources_->Update(clock_.MonotonicNs(), snapshot);
  if (energy_) {
    // The request-share idle policy: cgroup id -> CPU request.
    CpuAllocation allocation;
    for (const CgroupStats& c : snapshot->cgroups) {
      if (c.resources.cpu_request_millicores) {
        allocation.request_millicores[c.id] =
            c.resources.cpu_request_millicores;
      }
    }
    energy_->SetCpuAllocation(std::move(allocation));
  }
  // The node: capacity from /proc, labels from the Node object when the
  // API gave it, the flags otherwise (flags fill what the object lacks).
  NodeInfo& node = snapshot->node;
  node = node_info_;
  std::map<std::string, std::string> labels(
      config_.identity.node_labels.begin(), config_.identity.node_labels.end());
  node.provider_id = config_.identity.node_provider_id;
  node.labels_source = labels.empty() ? "" : "flags";
  if (watcher_) {
    if (std::optional<identity::NodeMeta> meta = watcher_->node()) {
      for (const auto& [k, v] : meta->labels) labels[k] = v;
      if (!meta->provider_id.empty()) node.provider_id = meta->provider_id;
      if (meta->gpus) node.gpus = static_cast<uint32_t>(*meta->gpus);
      node.labels_source = "node-api";
      if (cidr_inputs_.configured.empty() &&
          meta->pod_cidrs != cidr_inputs_.node_pod_cidrs) {
        cidr_inputs_.node_pod_cidrs = meta->pod_cidrs;
        DetectClusterCidrs();
        if (network_) {
          absl::Status s = network_->SetClusterCidrs(CidrsOf(cidrs_));
          if (!s.ok()) spdlog::warn("cluster CIDRs: {}", s.ToString());
        }
      }
    }
  }
  node.labels.assign(labels.begin(), labels.end());
  snapshot->cluster_cidrs.clear();
  for (const ClusterCidr& c : cidrs_.cidrs) {
    snapshot->cluster_cidrs.push_back(
        {FormatCidr(c.cidr), c.source, c.observed});
  }

  IdentityHealth& h = snapshot->identity;
  h.metadata_source = metadata_source_;
  const identity::WorkloadIdentifier::Stats& is = identifier_->stats();
  h.pod_cgroups = is.pod_cgroups;
  h.pod_cgroups_unknown = is.pods_unknown;
  const identity::PodCache::Stats ps = pods_->stats();
  h.pods_live = ps.live;
  h.pods_deleted = ps.deleted;
  AgentSelfStats& self = snapshot->self;
  self.drops[DropReason::kWorkingSetUnreadable] =
      resources_->working_set_drops();
  self.drops[DropReason::kCgroupPathInvalid] = is.paths_invalid;
  self.drops[DropReason::kPodsEvictedLive] = ps.evicted_live;
  if (watcher_) {
    identity::PodWatcher::Health w = watcher_->health();
    h.synced = w.synced;
    h.lists = w.stats.lists;
    h.watch_events = w.stats.events;
    h.relists_gone = w.stats.relists_gone;
    h.failures = w.stats.failures;
    self.drops[DropReason::kPodWatchEventInvalid] = w.stats.events_invalid;
    // A watch that fails after its first list still serves what it listed.
    SourceHealth k = SourceHealth::Up("kubernetes");
    if (!w.synced) {
      k.state = SourceState::kDown;
      k.reason = HealthReason::kNotSynced;
    } else if (!w.last_error.empty()) {
      k.state = SourceState::kDegraded;
      k.reason = HealthReason::kWatchFailed;
    }
    if (!w.synced || !w.last_error.empty()) k.detail = w.last_error;
    self.sources.push_back(std::move(k));
  }
}

void Agent::DetectClusterCidrs() {
  cidrs_ = wattlens::DetectClusterCidrs(cidr_inputs_);
  for (const std::string& why : cidrs_.rejected) {
    spdlog::warn("cluster CIDRs: ignored {}", why);
  }
  if (cidrs_.cidrs.empty()) {
    spdlog::info(
        "cluster CIDRs: none known (set --cluster_cidrs): pod and service "
        "peers count as private");
  }
  for (const ClusterCidr& c : cidrs_.cidrs) {
    spdlog::info("cluster CIDR {} ({} {})", FormatCidr(c.cidr), c.source,
                 c.observed);
  }
}

void Agent::CreatePower() {
  PowerAgentConfig& pc = config_.power;
  if (!pc.enabled) return;
  const int ncpus = features_.possible_cpus;
  pc.program.fs_root = pc.fs_root;
  pc.program.proc_root = pc.proc_root;
  auto program = PowerProgram::Create(pc.program, ncpus, clock_);
  if (!program.ok()) {
    // The frequency fallback works without BPF: keep it.
    power_error_ = std::string(program.status().message());
    spdlog::error("power BPF source disabled: {}", power_error_);
    PowerProgramConfig fallback = pc.program;
    fallback.load_bpf = false;
    program = PowerProgram::Create(fallback, ncpus, clock_);
  }
  if (program.ok()) power_program_ = std::move(*program);

  auto fs = std::make_shared<power::RootedFileSystem>(pc.fs_root, pc.proc_root);
  power::ProbeDeps deps;
  deps.fs = fs;
  deps.clock = &clock_;
  power_utilisation_ = std::make_shared<MeasuredUtilisation>();
  deps.utilisation = power_utilisation_;
  // Measured CPU time may exceed an interval's capacity by the harvest's
  // lag (see DrainOnce); the model must not clamp that energy away.
  pc.probe.model.max_utilisation = 2.0;
  pc.probe.keep_fallbacks = true;
  // Tests force a dead meter on to show it is rejected (docs/power.md).
  if (const char* dead = getenv("WATTLENS_TEST_DEAD_PERF_POWER")) {
    deps.dead_perf_power_for_test = std::string(dead) == "1";
  }
  power_sources_ = power::ProbePowerSources(deps, pc.probe);
  power::MeterCheckConfig check;
  check.cpus = static_cast<int>(std::max(1L, sysconf(_SC_NPROCESSORS_ONLN)));
  power_guard_ = std::make_unique<power::MeterGuard>(
      power::GuardProbedSources(power_sources_, check));
  power_baseline_ =
      std::make_unique<power::IdleBaselineEstimator>(clock_, pc.baseline);
  if (pc.attribution.node_allocatable_millicores == 0) {
    // Until the node's allocatable CPU is known (#5), its capacity.
    const long online = sysconf(_SC_NPROCESSORS_ONLN);
    if (online > 0) pc.attribution.node_allocatable_millicores = online * 1000;
  }
  energy_ = std::make_unique<EnergyState>(pc.attribution);
  if (!power_guard_->current()) {
    for (const auto& a : power_sources_.attempts) {
      absl::StrAppend(&power_meter_error_,
                      power_meter_error_.empty() ? "" : "; ", a.source, ": ",
                      a.status.message());
    }
    spdlog::error("power: no CPU energy source: {}", power_meter_error_);
    return;
  }
  DescribeEnergyMethod();
}

void Agent::DescribeEnergyMethod() {
  const power::PowerSource* cpu = power_guard_->current();
  energy_method_of_ = cpu;
  energy_method_.clear();
  if (!cpu) return;
  energy_method_.push_back({"source", std::string(cpu->name())});
  if (auto* model = dynamic_cast<const power::ModelSource*>(cpu)) {
    for (auto& kv : model->coefficients().Describe()) {
      energy_method_.push_back(std::move(kv));
    }
    energy_method_.push_back({"utilisation", "measured-cpu-time"});
  }
  if (power_sources_.gpu) {
    energy_method_.push_back(
        {"gpu_source", std::string(power_sources_.gpu->name())});
  }
}

std::vector<ZoneEnergy> Agent::SamplePower(PowerInterval* frequency) {
  std::vector<ZoneEnergy> zones;
  if (!energy_) return zones;
  if (power_program_) *frequency = power_program_->Sample();
  if (!power_guard_) return zones;
  absl::StatusOr<power::PowerSample> sample = power_guard_->Sample(power_load_);
  if (power_guard_->current() != energy_method_of_) DescribeEnergyMethod();
  if (!sample.ok()) {
    spdlog::warn("power: {}", sample.status().ToString());
    return zones;
  }
  if (power_sources_.gpu) {
    absl::StatusOr<power::PowerSample> gpu = power_sources_.gpu->Sample();
    if (gpu.ok()) {
      for (auto& r : gpu->readings) sample->readings.push_back(std::move(r));
      for (auto& p : gpu->gpu_processes) sample->gpu_processes.push_back(p);
    }
  }
  double utilisation = 0;
  if (absl::StatusOr<double> u = power_utilisation_->Next(); u.ok()) {
    utilisation = *u;
  }
  std::map<std::string, std::string> source_of;
  std::map<std::string, int64_t> interval_of;
  for (const power::ZoneReading& r : sample->readings) {
    const std::string zone(power::ZoneName(r.zone));
    source_of.emplace(zone, r.source);
    interval_of[zone] = std::max(interval_of[zone], r.interval_ns);
  }
  // GPU processes map to workloads through the last published snapshot.
  std::function<std::optional<std::string>(int32_t)> workload_of_pid;
  std::shared_ptr<const Snapshot> last = store_.Latest();
  if (!sample->gpu_processes.empty() && last) {
    workload_of_pid = [last](int32_t pid) -> std::optional<std::string> {
      for (const ProcessStats& p : last->processes) {
        if (static_cast<int32_t>(p.pid) == pid) {
          return absl::StrCat(p.cgroup_id);
        }
      }
      return std::nullopt;
    };
  }
  for (power::NodeZone& z : power::NodeZoneInputs(
           *sample, utilisation, *power_baseline_, workload_of_pid)) {
    ZoneEnergy& out = zones.emplace_back();
    out.zone = z.input.zone;
    out.source = source_of[out.zone];
    out.idle_method = z.idle_method;
    out.energy_uj = z.input.energy_uj;
    out.idle_uj = z.input.idle_uj;
    out.interval_ns = interval_of[out.zone];
    out.weight_override = std::move(z.input.weight_override);
    out.unattributed_weight = z.input.unattributed_weight;
  }
  return zones;
}

absl::Status Agent::AttributeEnergy(const std::vector<ZoneEnergy>& zones,
                                    const PowerInterval& frequency,
                                    Snapshot* snapshot) {
  if (!energy_) return absl::OkStatus();
  // Each CPU's on-CPU time (read per CPU in DrainOnce) is weighted by that
  // CPU's average frequency over the interval (docs/power.md).
  IntervalFrequency f{frequency.mean_khz, {}};
  f.cpu_khz.reserve(frequency.cpus.size());
  for (const CpuInterval& c : frequency.cpus) f.cpu_khz.push_back(c.khz);
  // The CPU requests (pod specs) were set by Identify() this interval; with
  // none known, --power_idle_policy=request falls back to none, said in
  // wattlens_energy_attribution_info{idle_policy_in_force}.
  absl::Status status = energy_->Attribute(zones, f, snapshot);
  EnergyStats& e = snapshot->energy;
  e.frequency_source = std::string(FrequencySourceName(frequency.source));
  e.frequency_reason =
      power_program_ ? power_program_->degraded_reason() : power_error_;
  e.frequency_khz = frequency.mean_khz;
  e.idle_tracked = frequency.idle_tracked;
  e.cpu_idle_ns = frequency.idle_ns_total;
  e.cpu_idle_entries = frequency.idle_entries_total;
  e.method = energy_method_;
  const power::PowerSource* meter =
      power_guard_ ? power_guard_->current() : nullptr;
  e.power_source = meter ? std::string(meter->name()) : "";
  e.power_measured = power_guard_ && power_guard_->measured();
  e.power_rejected.clear();
  if (power_guard_) {
    for (const power::RejectedSource& r : power_guard_->rejected()) {
      e.power_rejected.push_back(
          {r.source, std::string(power::SourceRejectReasonName(r.reason)),
           r.detail});
    }
  }
  AgentSelfStats& self = snapshot->self;
  SourceHealth p = SourceHealth::Up("power");
  if (meter == nullptr) {
    p = {"power", SourceState::kDown, HealthReason::kNoMeter,
         power_meter_error_};
  } else if (meter->health() == power::SourceHealth::kDegraded) {
    p = {"power", SourceState::kDegraded, HealthReason::kMeterDegraded,
         meter->last_error()};
  } else if (meter->health() != power::SourceHealth::kHealthy) {
    p = {"power", SourceState::kDown, HealthReason::kMeterUnavailable,
         meter->last_error()};
  }
  self.sources.push_back(std::move(p));
  if (power_program_ && power_program_->bpf_loaded()) {
    self.sources.push_back(SourceHealth::Up("power_bpf"));
  } else {
    self.sources.push_back({"power_bpf", SourceState::kDown,
                            HealthReason::kLoadFailed, power_error_});
  }
  if (power_program_ && self.bpf_stats_enabled) {
    for (auto& p : power_program_->ReadProgramStats()) {
      self.programs.push_back(
          {p.name, p.run_count, p.run_time_ns, p.verified_insns});
    }
  }
  if (!status.ok()) {
    spdlog::warn("energy attribution: {}", status.ToString());
  }
  return status;
}

void Agent::EventLoop() {
  while (!stopping_.load(std::memory_order_acquire)) {
    auto n = sched_->PollEvents(config_.event_poll_ms);
    if (!n.ok()) {
      spdlog::warn("lifecycle events: {}", n.status().ToString());
    }
  }
}

void Agent::Stop() {
  stopping_.store(true, std::memory_order_release);
  if (!stop_.HasBeenNotified()) stop_.Notify();
}

absl::Status Agent::Run(const SnapshotFn& on_snapshot) {
  int64_t next = clock_.MonotonicNs();
  const int64_t interval = absl::ToInt64Nanoseconds(config_.interval);
  while (!stopping_.load(std::memory_order_acquire)) {
    next += interval;
    int64_t wait = next - clock_.MonotonicNs();
    if (wait > 0 &&
        stop_.WaitForNotificationWithTimeout(absl::Nanoseconds(wait))) {
      break;
    }
    absl::Status s = DrainOnce();
    if (!s.ok()) spdlog::warn("drain: {}", s.ToString());
    std::shared_ptr<const Snapshot> cur = store_.Latest();
    if (on_snapshot && cur) on_snapshot(prev_.get(), *cur);
    prev_ = std::move(cur);
  }
  return absl::OkStatus();
}

AgentSelfStats Agent::CollectSelfStats(size_t syscall_entries,
                                       size_t oncpu_entries,
                                       size_t net_entries) {
  AgentSelfStats self;
  auto add_drops = [&](absl::StatusOr<DropCounts> d) {
    if (!d.ok()) return;
    for (size_t r = 0; r < kKernelDropReasons; ++r) {
      self.drops[static_cast<DropReason>(r)] += (*d)[r];
    }
  };
  self.drops[DropReason::kEventQueueFull] = events_.dropped();
  self.drops[DropReason::kExeQueueFull] = exe_updates_.dropped();
  self.drops[DropReason::kExeTableFull] = exe_table_.stats().dropped_full;
  self.drops[DropReason::kExePathTooLong] =
      sched_ ? sched_->exe_unusable() : 0;
  self.drops[DropReason::kShortRecord] = sched_ ? sched_->short_records() : 0;
  self.drops[DropReason::kMalformedEvent] = events_malformed_.load();
  self.events_received = events_received_.load();
  self.bpf_stats_enabled = stats_fd_ >= 0 || features_.bpf_stats_sysctl;
  auto variant = [this](const char* source) {
    auto it = source_variants_.find(source);
    return it == source_variants_.end() ? std::string() : it->second;
  };
  auto down = [&](const char* source, HealthReason why,
                  const std::string& detail) {
    return SourceHealth{source, SourceState::kDown, why, detail,
                        variant(source)};
  };
  self.sources.push_back(
      syscalls_ ? SourceHealth::Up("syscalls", variant("syscalls"))
                : down("syscalls", HealthReason::kLoadFailed, syscalls_error_));
  if (!sched_) {
    self.sources.push_back(down("sched", sched_down_reason_, sched_error_));
  } else if (!sched_->harvest_error().empty()) {
    // Loaded, but on-CPU time of running threads is not read: what it has
    // is incomplete.
    self.sources.push_back({"sched", SourceState::kDegraded,
                            HealthReason::kHarvestFailed,
                            sched_->harvest_error(), variant("sched")});
  } else {
    self.sources.push_back(SourceHealth::Up("sched", variant("sched")));
  }
  if (!network_) {
    self.sources.push_back(
        down("network", network_down_reason_, network_error_));
  } else if (network_->bytes_source() == NetworkBytesSource::kOff) {
    self.sources.push_back({"network", SourceState::kDegraded,
                            HealthReason::kNetworkBytesOff, network_error_,
                            variant("network")});
  } else {
    self.sources.push_back(SourceHealth::Up("network", variant("network")));
  }
  if (syscalls_) {
    add_drops(syscalls_->ReadDrops());
    self.maps.push_back(
        {"syscall_counts", syscall_entries, syscalls_->map_capacity()});
    for (auto& p : syscalls_->ReadProgramStats()) {
      self.programs.push_back(
          {p.name, p.run_count, p.run_time_ns, p.verified_insns});
    }
  }
  auto pins = [&](const char* source, const ObjectPins& p) {
    self.bpf_pins[source] = {std::string(PinOutcomeName(p.outcome())),
                             p.reason()};
  };
  if (syscalls_) pins("syscalls", syscalls_->pins());
  if (sched_) pins("sched", sched_->pins());
  if (network_) pins("network", network_->pins());
  self.restart = restart_;
  self.restart_reason = restart_reason_;
  self.restart_carried_seconds = carried_ns_ / 1e9;
  if (ledger_) {
    const RestartLedger::Stats ls = ledger_->stats();
    self.restart_state_writes = ls.writes;
    self.restart_state_write_errors = ls.write_errors;
    self.drops[DropReason::kRestartStateUnmatchedAck] = ls.unmatched_acks;
  }
  if (sched_) {
    self.cpu_time_source =
        std::string(CpuTimeSourceName(sched_->cpu_time_source()));
    add_drops(sched_->ReadDrops());
    self.maps.push_back({"oncpu", oncpu_entries, sched_->map_capacity()});
    for (auto& p : sched_->ReadProgramStats()) {
      self.programs.push_back(
          {p.name, p.run_count, p.run_time_ns, p.verified_insns});
    }
  }
  if (network_) {
    add_drops(network_->ReadDrops());
    self.maps.push_back({"net_counts", net_entries, network_->map_capacity()});
    for (auto& p : network_->ReadProgramStats()) {
      self.programs.push_back(
          {p.name, p.run_count, p.run_time_ns, p.verified_insns});
    }
  }
  self.last_drain_seconds = last_drain_seconds_;
  return self;
}

void Agent::SeedExecutables() {
  // The kernel's view first: it needs no ptrace access. /proc then names
  // what it could not, where the agent still holds the capabilities to read
  // other users' /proc/<pid>/exe (before they are dropped).
  if (sched_) {
    absl::StatusOr<int> n = sched_->ScanExecutables(
        [this](uint32_t tgid, uint64_t start_ns, uint64_t, std::string path) {
          exe_table_.Seed(tgid, start_ns, std::move(path));
        });
    if (n.ok()) {
      spdlog::info("executables of {} running processes from the kernel", *n);
    } else {
      spdlog::warn("executables from the kernel: {}", n.status().ToString());
    }
  }
  identity::ProcScanResult r =
      identity::SeedFromProc(config_.proc_root, &exe_table_);
  spdlog::info("/proc/<pid>/exe: {} readable, {} not", r.read, r.unreadable);
}

void Agent::ApplyExecutables(const std::vector<LifecycleEvent>& events) {
  std::vector<identity::ExeUpdate> execs;
  exe_updates_.Drain(
      [&](identity::ExeUpdate&& u) { execs.push_back(std::move(u)); });
  // Both queues are in kernel order; merged by timestamp so that a fork
  // inherits what its parent ran at that moment.
  size_t i = 0;
  auto apply_execs_until = [&](uint64_t ts) {
    for (; i < execs.size() && execs[i].timestamp_ns <= ts; ++i) {
      exe_table_.Exec(execs[i].tgid, execs[i].start_ns,
                      std::move(execs[i].path));
    }
  };
  for (const LifecycleEvent& e : events) {
    apply_execs_until(e.timestamp_ns);
    if (e.type == EventType::kFork) {
      exe_table_.Fork(e.proc.tgid, e.proc.start_ns, e.ppid);
    } else if (e.type == EventType::kExit) {
      exe_table_.Exit(e.proc.tgid, e.proc.start_ns);
    }
  }
  apply_execs_until(UINT64_MAX);
}

absl::Status Agent::DrainOnce() {
  const int64_t t0 = clock_.MonotonicNs();
  // Events first: counters read afterwards include everything up to each
  // EXIT (the kernel emits EXIT after charging the final slice).
  std::vector<LifecycleEvent> events;
  events_.Drain([&](wl_event&& e) {
    if (auto ev = FromWire(e)) {
      events.push_back(std::move(*ev));
    } else {
      events_malformed_.fetch_add(1, std::memory_order_relaxed);
    }
  });
  ApplyExecutables(events);
  KernelReadings r;
  absl::Status status;
  MapReadStats sys_stats, cpu_stats, net_stats;
  // The instant the on-CPU time is read (running slices harvested): the
  // model's interval is measured between such instants.
  const int64_t oncpu_read_ns = clock_.MonotonicNs();
  if (sched_) {
    // Per CPU too: energy weights each CPU's time by its own frequency.
    absl::Status s = sched_->ReadOnCpuPerCpu(
        [&](const wl_sched_key& k, uint64_t sum, const uint64_t* per_cpu) {
          r.oncpu.emplace_back(k, sum);
          if (energy_) energy_->ObserveOnCpu(k, per_cpu, sched_->ncpus());
        },
        &cpu_stats);
    if (!s.ok()) status = s;
  }
  if (syscalls_) {
    absl::Status s = syscalls_->ReadCounts(
        [&](const wl_syscall_key& k, const wl_syscall_val& v) {
          r.syscalls.emplace_back(k, v);
        },
        &sys_stats);
    if (!s.ok()) status = s;
  }
  if (network_) {
    absl::Status s = network_->ReadCounts(
        [&](const wl_net_key& k, const wl_net_val& v) {
          r.net.emplace_back(k, v);
        },
        &net_stats);
    if (!s.ok()) status = s;
    if (config_.network_refresh_every &&
        ++drains_ % config_.network_refresh_every == 0) {
      if (absl::Status s = network_->RefreshClasses(); !s.ok()) status = s;
    }
  }
  AgentSelfStats self =
      CollectSelfStats(sys_stats.entries, cpu_stats.entries, net_stats.entries);
  Aggregator::Result res =
      aggregator_->Update(std::move(events), r, clock_.MonotonicNs(),
                          clock_.RealtimeNs(), std::move(self));
  if (sched_ && !res.deletions.oncpu.empty()) {
    absl::Status s = sched_->DeleteKeys(res.deletions.oncpu);
    if (!s.ok()) status = s;
  }
  if (syscalls_ && !res.deletions.syscalls.empty()) {
    absl::Status s = syscalls_->DeleteKeys(res.deletions.syscalls);
    if (!s.ok()) status = s;
  }
  if (network_ && !res.deletions.net.empty()) {
    absl::Status s = network_->DeleteKeys(res.deletions.net);
    if (!s.ok()) status = s;
  }
  aggregator_->ForgetDeleted(res.deletions);
  if (ledger_) {
    std::const_pointer_cast<Snapshot>(res.snapshot)->kernel_baselines =
        aggregator_->Baselines();
  }
  if (energy_) energy_->ForgetOnCpu(res.deletions.oncpu);
  // The aggregator built this snapshot for us alone and nothing reads it
  // before Publish, so it may still be completed here.
  auto snapshot = std::const_pointer_cast<Snapshot>(res.snapshot);
  // Identity first: the request-share idle policy needs the requests.
  Identify(snapshot.get());
  if (energy_) {
    // Node energy over the same interval as the counters just read, the
    // model driven by the CPU time they hold.
    energy_->ObserveCpu(*snapshot);
    const int64_t interval = oncpu_read_ns - power_last_ns_;
    power_last_ns_ = oncpu_read_ns;
    const long online = sysconf(_SC_NPROCESSORS_ONLN);
    if (interval > 0 && online > 0) {
      // Harvested slices lag by up to a tick per CPU (10 ms covers HZ >=
      // 100), so an interval may measure that much beyond its capacity: the
      // model takes it as it is (max_utilisation). More is deferred, with
      // the matching part of each workload's weight, not clamped away.
      const double capacity = static_cast<double>(interval) * online;
      const uint64_t lag = std::min<uint64_t>(online * 10'000'000ull,
                                              static_cast<uint64_t>(capacity));
      const uint64_t used =
          energy_->LimitToCapacity(static_cast<uint64_t>(capacity), lag);
      power_utilisation_->Set(used / capacity, interval);
      power_load_ = {interval, used};
    }
    PowerInterval frequency;
    std::vector<ZoneEnergy> zones = SamplePower(&frequency);
    if (absl::Status s = AttributeEnergy(zones, frequency, snapshot.get());
        !s.ok() && status.ok()) {
      status = s;
    }
  }
  series_->Update(snapshot.get());
  store_.Publish(std::move(res.snapshot));
  last_drain_seconds_ = (clock_.MonotonicNs() - t0) / 1e9;
  return status;
}

}  // namespace wattlens
