// SPDX-License-Identifier: Apache-2.0
// Power in the running kernel: the frequency/idle program loads and says
// where the frequency comes from; two busy cores draw more than idle; a
// cgroup burning one core gets its window's dynamic energy; every interval
// conserves energy exactly in every zone; and a dead meter is rejected
// while a working one is believed to the microjoule. Each test chooses its
// power source (the model over a fake /proc, or a fake RAPL tree) instead
// of taking whatever meter this host has.
#include <sched.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "agent/bpf/power_program.h"
#include "agent/bpf/sched_program.h"
#include "agent/export/prometheus_collectable.h"
#include "tests/bpf/bpf_test_util.h"

namespace wattlens {
namespace {

using testing::GatedChild;
using testing::TestAgentConfig;
using testing::TestCgroup;

constexpr absl::Duration kInterval = absl::Milliseconds(500);

// A power root (--power_sysfs_root) the test owns: /proc/cpuinfo with this
// host's online CPUs as Cascade Lake at 2.5 GHz (CCF 0.64 / 3.97 W per
// vCPU) and /proc/meminfo, and no meter unless the test adds one.
class PowerRoot {
 public:
  PowerRoot() {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "wl-power-root-XXXXXX")
            .string();
    root_ = mkdtemp(pattern.data());
    std::string cpuinfo;
    for (long cpu = 0; cpu < sysconf(_SC_NPROCESSORS_ONLN); ++cpu) {
      absl::StrAppend(&cpuinfo, "processor\t: ", cpu,
                      "\nvendor_id\t: GenuineIntel\ncpu family\t: 6\n"
                      "model\t\t: 85\nmodel name\t: Intel(R) Xeon(R) "
                      "Platinum 8259CL CPU @ 2.50GHz\nstepping\t: 7\n"
                      "cpu MHz\t\t: 2500.000\n\n");
    }
    Write("/proc/cpuinfo", cpuinfo);
    Write("/proc/meminfo", "MemTotal:        8000000 kB\n");
  }
  ~PowerRoot() {
    std::error_code ec;
    std::filesystem::remove_all(root_, ec);
  }
  void Write(const std::string& path, const std::string& content) const {
    std::filesystem::path full = root_ + path;
    std::filesystem::create_directories(full.parent_path());
    std::ofstream(full, std::ios::trunc) << content;
  }
  // A RAPL package zone whose energy_uj the test sets.
  void Rapl(uint64_t energy_uj) const {
    Write("/sys/class/powercap/intel-rapl:0/name", "package-0\n");
    Write("/sys/class/powercap/intel-rapl:0/max_energy_range_uj",
          "262143328850\n");
    SetRapl(energy_uj);
  }
  void SetRapl(uint64_t energy_uj) const {
    Write("/sys/class/powercap/intel-rapl:0/energy_uj",
          absl::StrCat(energy_uj, "\n"));
  }
  const std::string& root() const { return root_; }

 private:
  std::string root_;
};

// The agent on `root`'s sources, probed in the default order (a meter the
// root has, else the model), without GPUs.
AgentConfig AgentOnPowerRoot(const PowerRoot& root) {
  AgentConfig c = TestAgentConfig();
  c.power.fs_root = root.root();
  c.power.probe.probe_gpu = false;
  return c;
}

// WATTLENS_TEST_DEAD_PERF_POWER=1 puts a dead perf power meter in front of
// every agent: then it must be among the rejected, as stuck.
bool DeadPerfPowerForced() {
  const char* v = std::getenv("WATTLENS_TEST_DEAD_PERF_POWER");
  return v != nullptr && std::string(v) == "1";
}
void ExpectDeadPerfRejectedIfForced(const EnergyStats& e) {
  if (!DeadPerfPowerForced()) return;
  bool rejected = false;
  for (const auto& r : e.power_rejected) {
    rejected |= r.source == "perf-power" && r.reason == "stuck";
  }
  EXPECT_TRUE(rejected) << "the forced dead perf meter was not rejected";
}

// Burns CPU until this thread has used `ns` of it, or `wall_ns` passed.
int Burn(int64_t ns, int64_t wall_ns) {
  timespec c0, c, w0, w;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c0);
  clock_gettime(CLOCK_MONOTONIC, &w0);
  volatile uint64_t x = 0;
  do {
    for (int i = 0; i < 100000; ++i) x = x + i;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c);
    clock_gettime(CLOCK_MONOTONIC, &w);
  } while ((c.tv_sec - c0.tv_sec) * 1'000'000'000L + c.tv_nsec - c0.tv_nsec <
               ns &&
           (w.tv_sec - w0.tv_sec) * 1'000'000'000L + w.tv_nsec - w0.tv_nsec <
               wall_ns);
  return 0;
}

const NodeZoneEnergy* FindZone(const Snapshot& s, const std::string& zone) {
  for (const auto& z : s.energy.zones) {
    if (z.zone == zone) return &z;
  }
  return nullptr;
}

double Watts(const NodeZoneEnergy& z) {
  return z.interval_ns ? z.interval_energy_uj * 1e3 / z.interval_ns : 0;
}

class PowerAgentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    WATTLENS_REQUIRE_BPF_OR_SKIP();
    // The model, for exactness: the root has no meter.
    auto a = Agent::Create(AgentOnPowerRoot(root_));
    ASSERT_TRUE(a.ok()) << a.status();
    agent_ = std::move(*a);
    ASSERT_TRUE(agent_->DrainOnce().ok());  // start a fresh interval
  }

  // One interval of kInterval; checks exact conservation in every zone.
  std::shared_ptr<const Snapshot> Interval() {
    absl::SleepFor(kInterval);
    EXPECT_TRUE(agent_->DrainOnce().ok());
    auto s = agent_->store().Latest();
    const EnergyStats& e = s->energy;
    EXPECT_TRUE(e.enabled);
    EXPECT_EQ(e.attribution_errors, 0u);
    EXPECT_FALSE(e.zones.empty());
    EXPECT_EQ(e.power_source, "model:ccf");
    EXPECT_FALSE(e.power_measured);
    ExpectDeadPerfRejectedIfForced(e);
    for (const NodeZoneEnergy& z : e.zones) {
      int64_t sum = 0;
      bool idle = false, unattributed = false;
      for (const WorkloadEnergy& w : e.workloads) {
        if (w.zone != z.zone) continue;
        sum += w.interval_dynamic_uj + w.interval_idle_uj;
        idle |= w.workload == "__idle__";
        unattributed |= w.workload == "__unattributed__";
      }
      EXPECT_EQ(sum, z.interval_energy_uj) << z.zone;  // exactly, in µJ
      EXPECT_TRUE(idle && unattributed) << z.zone;
      ++conserved_;
    }
    return s;
  }

  PowerRoot root_;
  std::unique_ptr<Agent> agent_;
  int conserved_ = 0;
};

TEST(PowerProgramTest, LoadsAndSaysWhereTheFrequencyComesFrom) {
  WATTLENS_REQUIRE_BPF_OR_SKIP();
  const int ncpus =
      ProbeKernelFeatures("/sys/kernel/btf/vmlinux").possible_cpus;
  auto p = PowerProgram::Create(PowerProgramConfig{}, ncpus);
  ASSERT_TRUE(p.ok()) << p.status();
  ASSERT_TRUE((*p)->bpf_loaded());
  GatedChild child([] { return Burn(200'000'000, 2'000'000'000); });
  child.Release();
  absl::SleepFor(absl::Milliseconds(400));
  ASSERT_EQ(child.Wait(), 0);
  PowerInterval i = (*p)->Sample();
  ASSERT_EQ(i.cpus.size(), static_cast<size_t>(ncpus));
  const std::string& reason = (*p)->degraded_reason();
  std::printf(
      "frequency: %s, mean %lu kHz, %lu cpu_frequency events; idle tracked "
      "%d, %lu idle entries, %.3f s idle; reason: %s\n",
      std::string(FrequencySourceName(i.source)).c_str(), i.mean_khz,
      i.freq_changes_total, i.idle_tracked, i.idle_entries_total,
      i.idle_ns_total / 1e9, reason.c_str());
  if (i.freq_changes_total == 0) {
    // The tracepoint never fired (this VM): the fallback is named, with why.
    EXPECT_NE(i.source, FrequencySource::kTracepoint);
    EXPECT_EQ(i.fallback_cpus, ncpus);
    EXPECT_FALSE(reason.empty());
    if (i.source == FrequencySource::kNone) {
      EXPECT_EQ(i.fallback_source, FrequencySource::kNone);
      EXPECT_EQ(i.mean_khz, 0u);
    } else {
      EXPECT_EQ(i.fallback_source, i.source) << reason;
      EXPECT_GT(i.mean_khz, 100'000u);  // a real clock, not a silent zero
    }
  } else {
    EXPECT_EQ(i.source, FrequencySource::kTracepoint);
    EXPECT_GT(i.mean_khz, 0u);
  }
  if (i.idle_tracked) {
    uint64_t idle = 0;
    for (const CpuInterval& c : i.cpus) {
      EXPECT_LE(c.idle_ns, static_cast<uint64_t>(i.interval_ns));
      idle += c.idle_ns;
    }
    EXPECT_GT(i.idle_entries_total, 0u);
    EXPECT_LE(idle, static_cast<uint64_t>(i.interval_ns) * ncpus);
  } else {
    EXPECT_TRUE(absl::StrContains(reason, "power:cpu_idle has not fired"))
        << reason;
  }
  // Verifier budget (instructions processed on this kernel, clang 14).
  auto stats = (*p)->ReadProgramStats();
  EXPECT_EQ(stats.size(), 2u);
  for (const ProgramStats& s : stats) {
    std::printf("%-18s verified_insns %u (budget 100)\n", s.name.c_str(),
                s.verified_insns);
    EXPECT_GT(s.verified_insns, 0u);
    EXPECT_LE(s.verified_insns, 100u) << s.name;
  }
}

// A task that never switches out (a burner alone on its CPU) is charged for
// its running slice at each read, not in one chunk when it finally
// switches out: CPU time and energy land in the interval they were used in.
TEST(SchedHarvestTest, RunningSliceIsChargedBeforeItSwitchesOut) {
  WATTLENS_REQUIRE_BPF_OR_SKIP();
  const int ncpus =
      ProbeKernelFeatures("/sys/kernel/btf/vmlinux").possible_cpus;
  SchedProgramConfig sched_config;
  sched_config.cpu_time_source =
      ChooseCpuTimeSource(ProbeKernelFeatures("/sys/kernel/btf/vmlinux"), {})
          .value_or(CpuTimeSource::kSchedSwitch);
  auto sched =
      SchedProgram::Create(sched_config, ncpus, [](const wl_event&) {});
  ASSERT_TRUE(sched.ok()) << sched.status();
  // The child publishes its own CPU time (CLOCK_THREAD_CPUTIME_ID, which
  // includes the slice in progress) in shared memory as it burns.
  auto* shared = static_cast<std::atomic<int64_t>*>(
      mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
           -1, 0));
  ASSERT_NE(shared, MAP_FAILED);
  shared[0] = 0;  // CPU time so far
  shared[1] = 0;  // 1: stop
  shared[2] = 0;  // the child got SCHED_FIFO
  // On this shared node a normal task is preempted every few milliseconds
  // (each a switch-out that charges it anyway), so the child runs SCHED_FIFO
  // on the last CPU: nothing of normal priority preempts it there, and it
  // switches out only at RT throttling (50 ms per second). It stops after
  // 600 ms of CPU whatever happens, to hold that CPU only briefly.
  const int last_cpu = static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN)) - 1;
  GatedChild child([shared, last_cpu] {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(last_cpu, &set);
    sched_param prio{};
    prio.sched_priority = 1;
    shared[2].store(sched_setaffinity(0, sizeof(set), &set) == 0 &&
                    sched_setscheduler(0, SCHED_FIFO, &prio) == 0);
    timespec c;
    volatile uint64_t x = 0;
    int64_t ns = 0;
    while (shared[1].load() == 0 && ns < 600'000'000) {
      for (int i = 0; i < 10000; ++i) x = x + i;
      clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c);
      ns = c.tv_sec * 1'000'000'000L + c.tv_nsec;
      shared[0].store(ns);
    }
    return 0;
  });
  child.Release();
  constexpr int64_t kTick = 1'000'000'000 / 100;  // HZ >= 100
  int64_t worst_lag = INT64_MIN;
  for (int read = 1; read <= 4; ++read) {
    // Await another 100 ms of the child's CPU time.
    while (shared[0].load() < read * 100'000'000L) {
      absl::SleepFor(absl::Milliseconds(5));
    }
    const int64_t before = shared[0].load();
    uint64_t charged = 0;
    MapReadStats stats;
    ASSERT_TRUE((*sched)
                    ->ReadOnCpu(
                        [&](const wl_sched_key& k, uint64_t ns) {
                          if (k.tgid == static_cast<uint32_t>(child.pid())) {
                            charged += ns;
                          }
                        },
                        &stats)
                    .ok());
    const int64_t after = shared[0].load();
    worst_lag = std::max(worst_lag, before - static_cast<int64_t>(charged));
    // Everything up to the CPU's last tick before the read, and never
    // more than the child had used when the read ended.
    EXPECT_GE(static_cast<int64_t>(charged), before - kTick) << "read " << read;
    EXPECT_LE(static_cast<int64_t>(charged), after + kTick) << "read " << read;
  }
  shared[1].store(1);
  ASSERT_EQ(child.Wait(), 0);
  EXPECT_EQ((*sched)->harvest_error(), "");
  std::printf(
      "running slice charged at each read: at most %.3f ms behind the "
      "child's own CPU time read just before (negative: ahead); child "
      "SCHED_FIFO on CPU %d: %s\n",
      worst_lag / 1e6, last_cpu, shared[2].load() ? "yes" : "no");
  munmap(shared, 4096);
}

TEST_F(PowerAgentTest, TwoBusyCoresDrawMoreThanIdle) {
  // Idle: the lowest of the intervals before the load. On a shared node
  // even the quietest "idle" interval may already use most of the CPUs;
  // two more busy tasks then only displace others, and the model (driven
  // by measured CPU time) cannot draw more: the bar applies when an
  // interval left at least half the CPU time. So await such an interval
  // (at once on a quiet node), for up to 30 of them.
  const long online = sysconf(_SC_NPROCESSORS_ONLN);
  auto busy_bar = [online](const Snapshot& s, const NodeZoneEnergy& z) {
    double max_w = -1;
    for (const auto& [k, v] : s.energy.method) {
      if (k == "max_watts_per_vcpu") max_w = std::stod(v);
    }
    const double idle_term =
        z.interval_ns ? z.interval_idle_uj * 1e3 / z.interval_ns : 0;
    const double full_w = max_w > 0 ? max_w * online : 0;
    // No model coefficients (a meter): no bar.
    return full_w > idle_term ? idle_term + 0.5 * (full_w - idle_term) : 1e9;
  };
  double idle_w = 1e9, bar = 1e9;
  std::string source;
  for (int i = 0; i < 30; ++i) {
    auto s = Interval();
    const NodeZoneEnergy* z = FindZone(*s, "package");
    ASSERT_NE(z, nullptr);
    idle_w = std::min(idle_w, Watts(*z));
    bar = busy_bar(*s, *z);
    source = z->source;
    if (i >= 3 && idle_w <= bar) break;  // a few intervals, one quiet
  }
  // Two children, each burning a core for 2.5 s of CPU time.
  GatedChild a([] { return Burn(2'500'000'000, 10'000'000'000); });
  GatedChild b([] { return Burn(2'500'000'000, 10'000'000'000); });
  a.Release();
  b.Release();
  Interval();  // the interval in which they started
  std::vector<double> busy;
  for (int i = 0; i < 3; ++i) {
    auto s = Interval();
    busy.push_back(Watts(*FindZone(*s, "package")));
  }
  ASSERT_EQ(a.Wait(), 0);
  ASSERT_EQ(b.Wait(), 0);
  const double busy_w = *std::min_element(busy.begin(), busy.end());
  double max_w = -1;
  for (const auto& [k, v] : agent_->store().Latest()->energy.method) {
    if (k == "max_watts_per_vcpu") max_w = std::stod(v);
  }
  const double idle_term =
      FindZone(*agent_->store().Latest(), "package")->interval_idle_uj * 1e3 /
      FindZone(*agent_->store().Latest(), "package")->interval_ns;
  std::printf(
      "package (%s): idle intervals min %.3f W, two busy cores min %.3f W "
      "(model idle term %.3f W); %d zone-intervals conserved exactly\n",
      source.c_str(), idle_w, busy_w, idle_term, conserved_);
  EXPECT_GT(busy_w, idle_term);
  // On a node that stayed busy before the load (a shared machine, an
  // emulated CPU), two more busy tasks only displace others and the model
  // cannot draw more; what applies there is asserted above.
  if (idle_w > bar) {
    std::printf(
        "the node stayed busy before the test's load: its quietest of 30 "
        "intervals drew %.3f W, above half-load %.3f W (model max %.3f W per "
        "vCPU), so busy > idle does not apply\n",
        idle_w, bar, max_w);
    return;
  }
  EXPECT_GT(busy_w, idle_w);
}

// Per-process energy through the real agent: a process alone in its cgroup
// gets all of the cgroup's dynamic energy, exported (behind
// --process_metrics_top_n) until and including its exit, under the cgroup
// it ended in. It forks in the test's cgroup and is moved before it runs
// its body, so it also has a sliver of CPU time there (often in the same
// interval as the burn): that part is charged at that cgroup's rate, and
// the process's energy is the sum.
TEST_F(PowerAgentTest, ProcessEnergyIsExportedForTopProcesses) {
  TestCgroup cg("penergy");
  ASSERT_TRUE(cg.ok());
  GatedChild child([] { return Burn(300'000'000, 5'000'000'000); });
  ASSERT_TRUE(cg.Add(child.pid()));
  child.Release();
  ASSERT_EQ(child.Wait(), 0);
  std::shared_ptr<const Snapshot> last;
  int intervals = 0;
  ASSERT_TRUE(testing::DrainUntil(*agent_, [&](const Snapshot& s) {
    ++intervals;
    if (testing::FindExited(s, child.pid()) == nullptr) return false;
    last = agent_->store().Latest();
    return true;
  }));
  uint64_t process_uj = 0, cgroup_uj = 0, process_ns = 0, cgroup_ns = 0;
  bool listed = false;
  for (const ProcessEnergy& p : last->energy.processes) {
    if (p.pid == static_cast<uint32_t>(child.pid()) && p.zone == "package") {
      listed = true;
      EXPECT_TRUE(p.exited);
      EXPECT_EQ(p.cgroup_id, cg.id());  // where it ended, whatever it read
      process_uj = p.dynamic_uj;
    }
  }
  EXPECT_TRUE(listed) << "no per-process energy for the burner";
  for (const WorkloadEnergy& w : last->energy.workloads) {
    if (w.cgroup_id == cg.id() && w.zone == "package") {
      cgroup_uj = w.dynamic_uj;
    }
  }
  process_ns = testing::FindExited(*last, child.pid())->cpu_ns;
  if (const CgroupStats* c = testing::FindCgroup(*last, cg.id())) {
    cgroup_ns = c->cpu_ns;
  }
  // Its CPU time outside its cgroup (from fork to the move), by the
  // kernel's per-cgroup keys.
  const uint64_t outside_ns = process_ns - cgroup_ns;
  std::printf(
      "pid %d: %lu uJ dynamic, its cgroup %lu uJ; %lu ns CPU, %lu ns of it "
      "before the move\n",
      child.pid(), process_uj, cgroup_uj, process_ns, outside_ns);
  EXPECT_GE(process_ns, 300'000'000u);
  EXPECT_LE(cgroup_ns, process_ns);
  EXPECT_GT(cgroup_uj, 0u);
  // All of its cgroup's energy (the only process there), plus the part for
  // its time outside: none without any. Under the model, dynamic energy is
  // (max - idle) W per vCPU-second; that part is charged about that (per-CPU
  // frequency weighting may move it: half again is allowed), to the
  // microjoule per interval.
  EXPECT_GE(process_uj, cgroup_uj);
  if (outside_ns == 0) {
    EXPECT_EQ(process_uj, cgroup_uj);
  }
  double idle_w = -1, max_w = -1;
  for (const auto& [k, v] : last->energy.method) {
    if (k == "idle_watts_per_vcpu") idle_w = std::stod(v);
    if (k == "max_watts_per_vcpu") max_w = std::stod(v);
  }
  if (idle_w >= 0 && max_w >= 0 && last->energy.cpu_deferred_ns == 0) {
    EXPECT_LE(static_cast<double>(process_uj) - static_cast<double>(cgroup_uj),
              outside_ns / 1e3 * (max_w - idle_w) * 1.5 + 2 * intervals + 1);
  }
  ExpositionOptions top;
  top.process_top_n = 100'000;  // every process
  const std::string text = RenderSnapshotText(*last, top);
  EXPECT_TRUE(absl::StrContains(
      text, absl::StrCat("wattlens_process_energy_joules_total{pid=\"",
                         child.pid(), "\"")))
      << "no energy series for the burner";
  EXPECT_FALSE(absl::StrContains(RenderSnapshotText(*last, ExpositionOptions{}),
                                 "wattlens_process_"));
}

// A removed cgroup's energy moves into __removed__: sums over the exported
// workload series keep equalling the node total after it is gone.
TEST(PowerRemovedTest, RemovedCgroupsEnergyStaysInTheSum) {
  WATTLENS_REQUIRE_BPF_OR_SKIP();
  PowerRoot root;
  AgentConfig c = AgentOnPowerRoot(root);
  c.aggregator.gc_every = 1;  // find removed cgroups at every drain
  auto agent = Agent::Create(c);
  ASSERT_TRUE(agent.ok()) << agent.status();
  uint64_t id = 0, energy_uj = 0;
  {
    TestCgroup cg("removed");
    ASSERT_TRUE(cg.ok());
    id = cg.id();
    GatedChild child([] { return Burn(200'000'000, 5'000'000'000); });
    ASSERT_TRUE(cg.Add(child.pid()));
    child.Release();
    ASSERT_EQ(child.Wait(), 0);
    ASSERT_TRUE(testing::DrainUntil(**agent, [&](const Snapshot& s) {
      for (const WorkloadEnergy& w : s.energy.workloads) {
        if (w.cgroup_id == id && w.zone == "package") {
          energy_uj = w.dynamic_uj + w.idle_uj;
        }
      }
      return testing::FindExited(s, child.pid()) != nullptr;
    }));
    ASSERT_TRUE((*agent)->DrainOnce().ok());  // the tail after the exit
  }                                           // rmdir
  uint64_t removed_uj = 0;
  ASSERT_TRUE(testing::DrainUntil(**agent, [&](const Snapshot& s) {
    if (testing::FindCgroup(s, id) != nullptr) return false;
    for (const WorkloadEnergy& r : s.energy.removed) {
      if (r.zone == "package") removed_uj = r.dynamic_uj + r.idle_uj;
    }
    return true;
  })) << "the removed cgroup never left the snapshot";
  auto s = (*agent)->store().Latest();
  std::printf("removed cgroup had %lu uJ; __removed__ holds %lu uJ\n",
              energy_uj, removed_uj);
  EXPECT_GT(energy_uj, 0u);
  EXPECT_GE(removed_uj, energy_uj);
  for (const NodeZoneEnergy& z : s->energy.zones) {
    uint64_t sum = 0;
    for (const WorkloadEnergy& w : s->energy.workloads) {
      if (w.zone == z.zone) sum += w.dynamic_uj + w.idle_uj;
    }
    for (const WorkloadEnergy& w : s->energy.removed) {
      if (w.zone == z.zone) sum += w.dynamic_uj + w.idle_uj;
    }
    EXPECT_EQ(sum, z.energy_uj) << z.zone;  // cumulative, exactly
  }
}

TEST_F(PowerAgentTest, CgroupBurningOneCoreGetsItsWindowsDynamicEnergy) {
  TestCgroup cg("energy");
  ASSERT_TRUE(cg.ok());
  // The rest of the node must be idle for the bar to apply: this node is
  // shared, so retry a few windows and skip (saying so) if never quiet.
  for (int attempt = 1; attempt <= 3; ++attempt) {
    GatedChild child([] { return Burn(5'000'000'000, 20'000'000'000); });
    ASSERT_TRUE(cg.Add(child.pid()));
    child.Release();
    int64_t burner_dyn = 0, dyn = 0;
    uint64_t burner_cpu_start = 0, others_cpu = 0, burner_cpu = 0;
    std::map<uint64_t, uint64_t> last_cpu;
    for (const CgroupStats& c : agent_->store().Latest()->cgroups) {
      last_cpu[c.id] = c.cpu_ns;
    }
    burner_cpu_start = last_cpu[cg.id()];
    bool exited = false;
    int intervals = 0, saturated = 0, deferred_intervals = 0;
    uint64_t deferred_before = agent_->store().Latest()->energy.cpu_deferred_ns;
    int64_t proportional_error = 0;
    const long online = sysconf(_SC_NPROCESSORS_ONLN);
    // Until the burner's exit has been drained, plus one tail interval.
    for (int tail = 0; tail < 2 && intervals < 60; ++intervals) {
      auto s = Interval();
      const NodeZoneEnergy* z = FindZone(*s, "package");
      ASSERT_NE(z, nullptr);
      const int64_t zone_dyn = z->interval_energy_uj - z->interval_idle_uj;
      dyn += zone_dyn;
      int64_t mine = 0;
      for (const WorkloadEnergy& w : s->energy.workloads) {
        if (w.zone == "package" && w.cgroup_id == cg.id()) {
          mine = w.interval_dynamic_uj;
        }
      }
      burner_dyn += mine;
      uint64_t total_cpu = 0, my_cpu = 0;
      for (const CgroupStats& c : s->cgroups) {
        const uint64_t d = c.cpu_ns - last_cpu[c.id];
        last_cpu[c.id] = c.cpu_ns;
        total_cpu += d;
        if (c.id == cg.id()) {
          my_cpu = d;
        } else {
          others_cpu += d;
        }
      }
      // The node's CPU time reached its capacity (the agent's own interval
      // differs from the zone's by microseconds, hence the margin).
      if (total_cpu >= 0.98 * static_cast<double>(z->interval_ns) * online) {
        ++saturated;
      }
      // Dynamic energy follows CPU time (uniform frequency here): the
      // burner's part is its CPU share of the interval's, to rounding
      // (every cgroup's time counts, the kernel workload's too), unless
      // CPU time beyond capacity was deferred into or out of the interval
      // (then its weights moved with it).
      const bool deferral =
          deferred_before > 0 || s->energy.cpu_deferred_ns > 0;
      deferred_before = s->energy.cpu_deferred_ns;
      if (deferral) ++deferred_intervals;
      if (total_cpu > 0 && !deferral) {
        proportional_error = std::max<int64_t>(
            proportional_error,
            std::abs(mine - static_cast<int64_t>(static_cast<double>(zone_dyn) *
                                                 my_cpu / total_cpu)));
      }
      if (std::getenv("WL_POWER_TEST_VERBOSE")) {
        int64_t unattributed = 0;
        for (const WorkloadEnergy& w : s->energy.workloads) {
          if (w.zone == "package" && w.workload == "__unattributed__") {
            unattributed = w.interval_dynamic_uj;
          }
        }
        std::printf(
            "  interval %d: %.3f s, dynamic %ld uJ, burner %ld uJ, "
            "unattributed %ld uJ; cpu burner %lu ns of %lu ns\n",
            intervals, z->interval_ns / 1e9, zone_dyn, mine, unattributed,
            my_cpu, total_cpu);
      }
      for (const ProcessStats& p : s->processes) {
        exited |= p.exited && p.pid == static_cast<uint32_t>(child.pid());
      }
      if (exited) ++tail;
    }
    ASSERT_TRUE(exited);
    ASSERT_EQ(child.Wait(), 0);
    burner_cpu = last_cpu[cg.id()] - burner_cpu_start;
    const double share = dyn > 0 ? static_cast<double>(burner_dyn) / dyn : 0;
    std::printf(
        "attempt %d: burner %.3f s CPU, rest of node %.3f s CPU over %d "
        "intervals (%d with the node's CPU at capacity, %d with CPU time "
        "deferred); burner got %.3f of %.3f J dynamic = %.1f %% (largest "
        "per-interval deviation from its CPU share: %ld uJ of %.3f J); %d "
        "zone-intervals conserved exactly\n",
        attempt, burner_cpu / 1e9, others_cpu / 1e9, intervals, saturated,
        deferred_intervals, burner_dyn / 1e6, dyn / 1e6, 100 * share,
        proportional_error, dyn / 1e6, conserved_);
    EXPECT_GE(burner_cpu, 4'900'000'000u);
    // Under the linear CCF model driven by measured CPU time, a workload's
    // dynamic energy is its CPU seconds × (max − idle) watts per vCPU,
    // whatever else runs.
    double idle_w = -1, max_w = -1;
    for (const auto& [k, v] : agent_->store().Latest()->energy.method) {
      if (k == "idle_watts_per_vcpu") idle_w = std::stod(v);
      if (k == "max_watts_per_vcpu") max_w = std::stod(v);
    }
    if (idle_w >= 0 && max_w >= 0) {
      const double expected = burner_cpu / 1e9 * (max_w - idle_w) * 1e6;
      std::printf(
          "burner: %.0f uJ dynamic, %.0f uJ expected from its CPU "
          "time x %.2f W per vCPU (%+.4f %%)\n",
          static_cast<double>(burner_dyn), expected, max_w - idle_w,
          100 * (burner_dyn - expected) / expected);
      // Exact, to the microjoule rounding of each interval (the zone's
      // energy, then the burner's part of it): running slices are
      // harvested at each drain (wl_sched_harvest), so CPU time lands in
      // the interval it was used in; an interval may measure up to a tick
      // per CPU beyond its capacity, which the model takes as it is
      // (max_utilisation); the model integrates over the interval the CPU
      // time was read over (UtilisationSource::interval_ns). So every
      // interval's dynamic energy is (max − idle) × its CPU seconds. CPU
      // time deferred past the window (beyond that lag) would be missing
      // from it: at most (max − idle) × what is deferred at the end.
      const double pending = (max_w - idle_w) *
                             agent_->store().Latest()->energy.cpu_deferred_ns /
                             1e3;
      EXPECT_NEAR(burner_dyn, expected, 2.0 * intervals + 1 + pending);
    }
    EXPECT_LE(proportional_error, dyn / 1000 + 2);
    // "The rest is idle": dynamic energy follows CPU time (checked per
    // interval above), so the burner's share is its CPU share, and the
    // >= 90 % bar applies when the rest used at most a tenth of the
    // burner's CPU time (share >= 1/1.1). On a quiet node (CI: 2 cores)
    // the rest uses a few percent of a core, far from 0.5 s in a 5 s
    // window; only a busy shared node fails it three windows in a row.
    if (others_cpu * 10 <= burner_cpu) {
      EXPECT_GE(share, 0.90);
      return;
    }
  }
  // The rest of the node was never idle during a window (a shared machine,
  // an emulated CPU): the >= 90 % bar does not apply, and each window's
  // share was checked against CPU time above.
  std::printf("the rest of the node was never idle during a 5 s window: the "
              ">= 90 %% bar does not apply\n");
}

// Checks exact conservation of one interval in every zone.
void ExpectConserved(const EnergyStats& e) {
  for (const NodeZoneEnergy& z : e.zones) {
    int64_t sum = 0;
    for (const WorkloadEnergy& w : e.workloads) {
      if (w.zone == z.zone) sum += w.interval_dynamic_uj + w.interval_idle_uj;
    }
    EXPECT_EQ(sum, z.interval_energy_uj) << z.zone;
  }
}

// A RAPL package counter that never advances (dead, as the field's psys
// counter): rejected as stuck in the agent's first interval, the model
// supplies every interval's energy, and /metrics and the provenance say so.
TEST(PowerMeterAgentTest, DeadMeterIsRejectedAndTheModelTakesOver) {
  WATTLENS_REQUIRE_BPF_OR_SKIP();
  PowerRoot root;
  root.Rapl(123'456'789);  // and never again
  auto agent = Agent::Create(AgentOnPowerRoot(root));
  ASSERT_TRUE(agent.ok()) << agent.status();
  int modelled = 0;
  for (int i = 0; i < 4; ++i) {
    absl::SleepFor(absl::Milliseconds(200));
    ASSERT_TRUE((*agent)->DrainOnce().ok());
    const EnergyStats& e = (*agent)->store().Latest()->energy;
    EXPECT_EQ(e.power_source, "model:ccf");
    EXPECT_FALSE(e.power_measured);
    EXPECT_EQ(e.attribution_errors, 0u);
    ExpectConserved(e);
    for (const NodeZoneEnergy& z : e.zones) {
      if (z.zone == "package") {
        EXPECT_EQ(z.source, "model:ccf");
        EXPECT_GT(z.interval_energy_uj, 0);
        ++modelled;
      }
    }
  }
  EXPECT_EQ(modelled, 4);  // from the first interval on
  const Snapshot& s = *(*agent)->store().Latest();
  bool stuck = false;
  for (const auto& r : s.energy.power_rejected) {
    stuck |= r.source == "rapl-powercap" && r.reason == "stuck";
  }
  EXPECT_TRUE(stuck);
  ExpectDeadPerfRejectedIfForced(s.energy);
  const std::string text = RenderSnapshotText(s, ExpositionOptions{});
  EXPECT_TRUE(absl::StrContains(
      text,
      "wattlens_agent_power_source_rejected{source=\"rapl-powercap\","
      "reason=\"stuck\"} 1"))
      << text;
  EXPECT_TRUE(absl::StrContains(
      text,
      "wattlens_agent_power_source_in_use{source=\"model:ccf\","
      "provenance=\"modelled\"} 1"));
}

// A working meter (the test advances a fake RAPL counter before each
// drain) is believed: the node's package energy is exactly what the counter
// advanced by, and every interval conserves it.
TEST(PowerMeterAgentTest, WorkingMeterIsBelievedToTheMicrojoule) {
  WATTLENS_REQUIRE_BPF_OR_SKIP();
  PowerRoot root;
  uint64_t counter = 1'000'000'000;
  root.Rapl(counter);
  auto agent = Agent::Create(AgentOnPowerRoot(root));
  ASSERT_TRUE(agent.ok()) << agent.status();
  constexpr uint64_t kStepUj = 2'000'000;  // 2 J per ~200 ms: about 10 W
  uint64_t advanced = 0, measured = 0;
  for (int i = 0; i < 5; ++i) {
    absl::SleepFor(absl::Milliseconds(200));
    counter += kStepUj;
    advanced += kStepUj;
    root.SetRapl(counter);
    ASSERT_TRUE((*agent)->DrainOnce().ok());
    const EnergyStats& e = (*agent)->store().Latest()->energy;
    EXPECT_EQ(e.power_source, "rapl-powercap");
    EXPECT_TRUE(e.power_measured);
    EXPECT_EQ(e.attribution_errors, 0u);
    ExpectConserved(e);
    for (const NodeZoneEnergy& z : e.zones) {
      if (z.zone == "package") {
        EXPECT_EQ(z.source, "rapl-powercap");
        measured += z.interval_energy_uj;
      }
    }
  }
  EXPECT_EQ(measured, advanced);
  const EnergyStats& e = (*agent)->store().Latest()->energy;
  ExpectDeadPerfRejectedIfForced(e);
  for (const auto& r : e.power_rejected) {
    EXPECT_NE(r.source, "rapl-powercap") << r.reason << ": " << r.detail;
  }
}

}  // namespace
}  // namespace wattlens
