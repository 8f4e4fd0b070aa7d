// SPDX-License-Identifier: Apache-2.0
#include "agent/state/restart_state.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>

#include "agent/bpf/pinning.h"
#include "agent/state/aggregator.h"
#include <bpf/libbpf.h>
#include "syscalls.skel.h"
#include "gtest/gtest.h"

namespace wattlens {
namespace {

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/wl_restart_XXXXXX";
    path_ = mkdtemp(tmpl);
  }
  ~TempDir() { std::system(("rm -rf " + path_).c_str()); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

wl_sched_key SchedKey(uint32_t tgid, uint64_t cg) {
  wl_sched_key k{};
  k.tgid = tgid;
  k.start_ns = 1000 + tgid;
  k.cgroup_id = cg;
  return k;
}

wl_syscall_key SysKey(uint32_t tgid, uint32_t nr, uint64_t cg) {
  wl_syscall_key k{};
  k.tgid = tgid;
  k.nr = nr;
  k.start_ns = 1000 + tgid;
  k.cgroup_id = cg;
  return k;
}

RestartState Sample() {
  RestartState s;
  s.layout = "sched-00aa syscalls-00bb";
  s.node_name = "node-a";
  s.epoch = 42;
  s.sequence = 7;
  s.report_time_ns = 5'000'000'000;
  s.baselines.oncpu = {{SchedKey(10, 100), 123456789}};
  s.baselines.syscalls = {{SysKey(10, 1, 100), wl_syscall_val{55, 3}}};
  wl_net_key nk{};
  nk.tgid = 10;
  wl_net_val nv{};
  nv.tx_bytes = 1000;
  s.baselines.net = {{nk, nv}};
  return s;
}

void Touch(const std::string& path) { std::ofstream(path) << "pin"; }
bool Exists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

TEST(RestartStateTest, RoundTrips) {
  const RestartState s = Sample();
  absl::StatusOr<RestartState> d = DecodeRestartState(EncodeRestartState(s));
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->layout, s.layout);
  EXPECT_EQ(d->node_name, "node-a");
  EXPECT_EQ(d->epoch, 42u);
  EXPECT_EQ(d->sequence, 7u);
  EXPECT_EQ(d->report_time_ns, 5'000'000'000);
  ASSERT_EQ(d->baselines.oncpu.size(), 1u);
  EXPECT_EQ(d->baselines.oncpu[0].second, 123456789u);
  ASSERT_EQ(d->baselines.syscalls.size(), 1u);
  EXPECT_EQ(d->baselines.syscalls[0].second.calls, 55u);
  ASSERT_EQ(d->baselines.net.size(), 1u);
  EXPECT_EQ(d->baselines.net[0].second.tx_bytes, 1000u);
}

TEST(RestartStateTest, CorruptTruncatedAndForeignAreDataLoss) {
  std::string data = EncodeRestartState(Sample());
  std::string flipped = data;
  flipped[20] ^= 0x40;
  EXPECT_EQ(DecodeRestartState(flipped).status().code(),
            absl::StatusCode::kDataLoss);
  EXPECT_EQ(DecodeRestartState(data.substr(0, data.size() / 2)).status().code(),
            absl::StatusCode::kDataLoss);
  EXPECT_EQ(DecodeRestartState("").status().code(),
            absl::StatusCode::kDataLoss);
  EXPECT_EQ(DecodeRestartState("not a state file at all, no").status().code(),
            absl::StatusCode::kDataLoss);
}

TEST(RestartStateTest, FileWritesAtomicallyAndReadsBack) {
  TempDir dir;
  RestartStateFile f(dir.path());
  EXPECT_EQ(f.Read().status().code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(f.Write(Sample()).ok());
  EXPECT_FALSE(Exists(f.path() + ".tmp"));
  absl::StatusOr<RestartState> r = f.Read();
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->sequence, 7u);
  f.Remove();
  EXPECT_FALSE(Exists(f.path()));
}

RestoreInput Adopted(const std::string& layout) {
  RestoreInput in;
  in.layout = layout;
  in.node_name = "node-a";
  in.adopted_oncpu = in.adopted_syscalls = true;
  in.now_ns = 9'000'000'000;
  return in;
}

TEST(PlanRestoreTest, ResumesFromTheAcknowledgedState) {
  TempDir dir;
  RestartStateFile f(dir.path());
  ASSERT_TRUE(f.Write(Sample()).ok());
  RestorePlan p = PlanRestore(Adopted("sched-00aa syscalls-00bb"), &f);
  EXPECT_EQ(p.outcome, "resumed");
  EXPECT_FALSE(p.seed_oncpu_from_maps || p.seed_syscalls_from_maps ||
               p.seed_net_from_maps);
  EXPECT_EQ(p.carried_ns, 4'000'000'000u);
  EXPECT_EQ(p.baselines.oncpu.size(), 1u);
  EXPECT_EQ(p.baselines.syscalls.size(), 1u);
}

TEST(PlanRestoreTest, OnlyAdoptedMapsKeepTheirBaselines) {
  TempDir dir;
  RestartStateFile f(dir.path());
  ASSERT_TRUE(f.Write(Sample()).ok());
  RestoreInput in = Adopted("sched-00aa syscalls-00bb");
  in.adopted_syscalls = false;
  RestorePlan p = PlanRestore(in, &f);
  EXPECT_EQ(p.outcome, "resumed");
  EXPECT_EQ(p.baselines.oncpu.size(), 1u);
  EXPECT_TRUE(p.baselines.syscalls.empty());
}

TEST(PlanRestoreTest, CorruptStateIsAClearErrorAndCountsFromTheMaps) {
  TempDir dir;
  RestartStateFile f(dir.path());
  std::ofstream(f.path()) << "garbage";
  RestorePlan p = PlanRestore(Adopted("sched-00aa syscalls-00bb"), &f);
  EXPECT_EQ(p.outcome, "state_unreadable");
  EXPECT_TRUE(p.seed_oncpu_from_maps && p.seed_syscalls_from_maps);
  EXPECT_FALSE(p.seed_net_from_maps);  // not adopted: counts from zero
  EXPECT_NE(p.reason.find("not a restart state file"), std::string::npos)
      << p.reason;
}

TEST(PlanRestoreTest, LayoutOrNodeMismatchCountsFromTheMaps) {
  TempDir dir;
  RestartStateFile f(dir.path());
  ASSERT_TRUE(f.Write(Sample()).ok());
  // sched changed layout, syscalls did not: only sched counts from its maps.
  RestoreInput in = Adopted("sched-00cc syscalls-00bb");
  RestorePlan p = PlanRestore(in, &f);
  EXPECT_EQ(p.outcome, "resumed");
  EXPECT_TRUE(p.seed_oncpu_from_maps);
  EXPECT_FALSE(p.seed_syscalls_from_maps);
  EXPECT_TRUE(p.baselines.oncpu.empty());
  EXPECT_EQ(p.baselines.syscalls.size(), 1u);
  EXPECT_NE(p.reason.find("layout"), std::string::npos) << p.reason;
  // Every adopted source changed: nothing usable.
  in = Adopted("sched-00cc");
  in.adopted_syscalls = false;
  p = PlanRestore(in, &f);
  EXPECT_EQ(p.outcome, "state_unreadable");
  EXPECT_TRUE(p.seed_oncpu_from_maps);
  EXPECT_NE(p.reason.find("layout"), std::string::npos) << p.reason;
  RestoreInput other = Adopted("sched-00aa syscalls-00bb");
  other.node_name = "node-b";
  p = PlanRestore(other, &f);
  EXPECT_EQ(p.outcome, "state_unreadable");
  EXPECT_NE(p.reason.find("node-a"), std::string::npos) << p.reason;
}

TEST(PlanRestoreTest, FreshMapsRemoveTheOldState) {
  TempDir dir;
  RestartStateFile f(dir.path());
  ASSERT_TRUE(f.Write(Sample()).ok());
  RestoreInput in;
  in.layout = "sched-00dd";
  RestorePlan p = PlanRestore(in, &f);
  EXPECT_EQ(p.outcome, "fresh");
  EXPECT_FALSE(Exists(f.path()));
  EXPECT_EQ(PlanRestore(RestoreInput{}, nullptr).outcome, "off");
}

TEST(RestartLedgerTest, WritesTheBaselinesOfTheAcknowledgedReportOnly) {
  TempDir dir;
  RestartStateFile f(dir.path());
  RestartLedger ledger(f, "sched-00aa", "node-a", /*max_pending=*/2);
  auto b = [](uint64_t v) {
    auto k = std::make_shared<KernelBaselines>();
    k->oncpu = {{SchedKey(1, 100), v}};
    return k;
  };
  ledger.Queued(5, 1, 100, b(10));
  ledger.Queued(5, 2, 200, b(20));
  EXPECT_EQ(f.Read().status().code(), absl::StatusCode::kNotFound);
  ledger.Acked(5, 1);
  absl::StatusOr<RestartState> r = f.Read();
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->sequence, 1u);
  EXPECT_EQ(r->report_time_ns, 100);
  EXPECT_EQ(r->baselines.oncpu[0].second, 10u);
  EXPECT_EQ(r->layout, "sched-00aa");
  ledger.Acked(5, 2);
  EXPECT_EQ(f.Read()->baselines.oncpu[0].second, 20u);
  EXPECT_EQ(ledger.stats().writes, 2u);
  // An acknowledgement whose baselines were dropped (more queued than
  // max_pending since): the older state would count the difference twice,
  // so it goes, counted.
  ledger.Queued(5, 3, 300, b(30));
  ledger.Queued(5, 4, 400, b(40));
  ledger.Queued(5, 5, 500, b(50));
  ledger.Acked(5, 3);
  EXPECT_EQ(ledger.stats().unmatched_acks, 1u);
  EXPECT_EQ(f.Read().status().code(), absl::StatusCode::kNotFound);
  ledger.Acked(5, 5);
  EXPECT_EQ(f.Read()->sequence, 5u);
}

TEST(RestartLedgerTest, WriteFailureIsCounted) {
  RestartLedger ledger(RestartStateFile("/nonexistent/dir"), "l", "n");
  auto k = std::make_shared<KernelBaselines>();
  ledger.Queued(1, 1, 0, k);
  ledger.Acked(1, 1);
  EXPECT_EQ(ledger.stats().write_errors, 1u);
  EXPECT_FALSE(ledger.stats().last_error.empty());
}

TEST(AggregatorSeedTest, CountsOnlyGrowthPastTheSeed) {
  AggregatorEnv env;
  env.cgroup_path = [](uint64_t) { return std::optional<std::string>("/a"); };
  env.read_proc = [](uint32_t) { return std::optional<ProcInfo>(); };
  AggregatorOptions o;
  o.gc_every = 0;
  Aggregator first(o, env);
  KernelReadings r;
  r.oncpu = {{SchedKey(1, 100), 1000}, {SchedKey(2, 100), 500}};
  r.syscalls = {{SysKey(1, 0, 100), wl_syscall_val{40, 1}}};
  first.Update({}, r, 1, 1, {});
  std::shared_ptr<const KernelBaselines> base = first.Baselines();

  // The next agent finds the maps grown (and key 2 deleted since).
  Aggregator next(o, env);
  next.SeedBaselines(*base);
  KernelReadings later;
  later.oncpu = {{SchedKey(1, 100), 1700}, {SchedKey(3, 100), 300}};
  later.syscalls = {{SysKey(1, 0, 100), wl_syscall_val{52, 1}}};
  Aggregator::Result res = next.Update({}, later, 2, 2, {});
  uint64_t cpu = 0, calls = 0;
  for (const CgroupStats& c : res.snapshot->cgroups) {
    cpu += c.cpu_ns;
    calls += c.syscalls;
  }
  EXPECT_EQ(cpu, 700u + 300u);
  EXPECT_EQ(calls, 12u);
  // Seeded keys the maps no longer hold are forgotten.
  EXPECT_EQ(next.Baselines()->oncpu.size(), 2u);
}

TEST(PlanPinsTest, AdoptsACompleteSetAndRemovesOtherLayouts) {
  TempDir root;
  const std::string own = root.path() + "/sched-aaaa";
  const std::string old = root.path() + "/sched-bbbb";
  const std::string other = root.path() + "/syscalls-cccc";
  for (const std::string& d : {own, old, other}) mkdir(d.c_str(), 0700);
  Touch(own + "/oncpu");
  Touch(own + "/link_wl_sched_exit");
  Touch(old + "/oncpu");
  absl::StatusOr<PinPlan> p =
      PlanPins(root.path(), "sched", "aaaa", {"link_wl_sched_exit", "oncpu"});
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_TRUE(p->adopt);
  EXPECT_FALSE(Exists(old));
  EXPECT_TRUE(Exists(other));  // another concern's
  EXPECT_TRUE(Exists(own + "/oncpu"));
}

TEST(PlanPinsTest, LayoutChangeStartsFreshAndSaysSo) {
  TempDir root;
  const std::string old = root.path() + "/sched-bbbb";
  mkdir(old.c_str(), 0700);
  Touch(old + "/oncpu");
  absl::StatusOr<PinPlan> p = PlanPins(root.path(), "sched", "aaaa", {"oncpu"});
  ASSERT_TRUE(p.ok());
  EXPECT_FALSE(p->adopt);
  EXPECT_EQ(p->reason, "layout_changed");
  EXPECT_FALSE(Exists(old));
  EXPECT_TRUE(Exists(root.path() + "/sched-aaaa"));
}

TEST(PlanPinsTest, IncompleteSetIsRemoved) {
  TempDir root;
  const std::string own = root.path() + "/sched-aaaa";
  mkdir(own.c_str(), 0700);
  Touch(own + "/oncpu");  // the link was never pinned
  absl::StatusOr<PinPlan> p =
      PlanPins(root.path(), "sched", "aaaa", {"link_wl_sched_exit", "oncpu"});
  ASSERT_TRUE(p.ok());
  EXPECT_FALSE(p->adopt);
  EXPECT_EQ(p->reason, "incomplete");
  EXPECT_FALSE(Exists(own + "/oncpu"));
  EXPECT_TRUE(Exists(own));
}

TEST(PlanPinsTest, FirstStartIsFreshWithNoReason) {
  TempDir root;
  absl::StatusOr<PinPlan> p = PlanPins(root.path(), "net", "aaaa", {"x"});
  ASSERT_TRUE(p.ok());
  EXPECT_FALSE(p->adopt);
  EXPECT_EQ(p->reason, "none");
}

TEST(RemovePinsTest, RemovesEverySet) {
  TempDir root;
  for (const char* d : {"/sched-a", "/syscalls-b"}) {
    mkdir((root.path() + d).c_str(), 0700);
    Touch(root.path() + d + "/m");
  }
  absl::StatusOr<int> n = RemovePins(root.path());
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 2);
  EXPECT_FALSE(Exists(root.path() + "/sched-a"));
}

// An opened (not loaded) object is enough to plan: no privileges needed.
class ObjectPinsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    skel_ = syscalls_bpf__open();
    ASSERT_NE(skel_, nullptr);
  }
  void TearDown() override { syscalls_bpf__destroy(skel_); }
  std::unique_ptr<ObjectPins> Prepare(const PinConfig& c) {
    size_t n = 0;
    const void* elf = syscalls_bpf__elf_bytes(&n);
    return ObjectPins::Prepare(c, "syscalls", skel_->obj, elf, n, "60 231 1");
  }
  syscalls_bpf* skel_ = nullptr;
};

TEST_F(ObjectPinsTest, WithoutBpffsPinningIsUnavailableNotAnError) {
  TempDir root;
  PinConfig c;
  c.enabled = true;
  c.root = root.path() + "/wattlens";  // its parent is no bpffs mount
  std::unique_ptr<ObjectPins> p = Prepare(c);
  EXPECT_EQ(p->outcome(), PinOutcome::kUnavailable);
  EXPECT_EQ(p->reason(), "no_bpffs");
}

TEST_F(ObjectPinsTest, LayoutFollowsTheConfiguration) {
  TempDir root;
  PinConfig c;
  c.enabled = true;
  c.root = root.path() + "/wattlens";
  c.require_bpffs = false;
  std::unique_ptr<ObjectPins> a = Prepare(c);
  EXPECT_EQ(a->outcome(), PinOutcome::kFresh);
  EXPECT_EQ(a->reason(), "none");
  const std::string layout = a->layout();
  EXPECT_EQ(Prepare(c)->layout(), layout);  // stable across starts
  bpf_map__set_max_entries(skel_->maps.syscall_counts, 1234);
  std::unique_ptr<ObjectPins> b = Prepare(c);
  EXPECT_NE(b->layout(), layout);
  EXPECT_EQ(b->reason(), "layout_changed");
  EXPECT_FALSE(Exists(c.root + "/syscalls-" + layout));
}

TEST_F(ObjectPinsTest, OffByDefault) {
  EXPECT_EQ(Prepare(PinConfig{})->outcome(), PinOutcome::kOff);
}

}  // namespace
}  // namespace wattlens
