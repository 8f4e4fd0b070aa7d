// SPDX-License-Identifier: Apache-2.0
#include "agent/state/aggregator.h"

#include <algorithm>
#include <cstring>
#include <type_traits>

#include "absl/strings/str_cat.h"
#include "agent/common/report_limits.h"
#include "common/counters/counter_growth.h"

namespace wattlens {

static_assert(WL_CGROUP_KERNEL == kKernelCgroupId);
static_assert(kKernelCgroupId >= kFirstReservedCgroupId);

std::optional<LifecycleEvent> FromWire(const wl_event& e) {
  LifecycleEvent out;
  switch (e.type) {
    case WL_EVENT_EXEC:
      out.type = EventType::kExec;
      break;
    case WL_EVENT_FORK:
      out.type = EventType::kFork;
      break;
    case WL_EVENT_EXIT:
      out.type = EventType::kExit;
      break;
    case WL_EVENT_EXITING:
      out.type = EventType::kExiting;
      break;
    default:
      return std::nullopt;
  }
  out.proc = {e.tgid, e.start_ns};
  out.ppid = e.ppid;
  out.exit_code = static_cast<int32_t>(e.exit_code);
  out.cgroup_id = e.cgroup_id;
  out.timestamp_ns = e.timestamp_ns;
  out.comm.assign(e.comm, strnlen(e.comm, sizeof(e.comm)));
  return out;
}

namespace {

void AddNet(const wl_net_val& d, uint32_t net_class, NetStats* net,
            TcpStats* tcp) {
  NetStats& n =
      net[net_class < kNetClasses ? net_class : uint32_t{WL_NET_UNKNOWN}];
  n.tx_bytes += d.tx_bytes;
  n.rx_bytes += d.rx_bytes;
  n.tx_packets += d.tx_packets;
  n.rx_packets += d.rx_packets;
  tcp->connects += d.connects;
  tcp->accepts += d.accepts;
  tcp->closes += d.closes;
  tcp->retransmits += d.retransmits;
}

template <typename V>
bool IsZero(const V& v) {
  static constexpr V kZero{};
  return std::memcmp(&v, &kZero, sizeof(V)) == 0;
}

}  // namespace

template <typename K, typename V>
V Aggregator::Delta(LastValues<K, V>& last, const K& key, const V& cum) {
  static_assert(sizeof(V) % sizeof(uint64_t) == 0);
  constexpr size_t kWords = sizeof(V) / sizeof(uint64_t);
  V& prev = last[key];
  uint64_t c[kWords], p[kWords], d[kWords];
  std::memcpy(c, &cum, sizeof(V));
  std::memcpy(p, &prev, sizeof(V));
  if (RecordGrowth(p, c, d)) ++counter_resets_;
  prev = cum;
  V out;
  std::memcpy(&out, d, sizeof(V));
  return out;
}

Aggregator::Aggregator(AggregatorOptions options, AggregatorEnv env)
    : options_(options), env_(std::move(env)) {}

Aggregator::Proc* Aggregator::FindOrCreate(const ProcessKey& k) {
  auto it = procs_.find(k);
  if (it != procs_.end()) return &it->second;
  if (procs_.size() >= options_.max_processes) {
    ++process_table_full_;
    return nullptr;
  }
  return &procs_[k];
}

Aggregator::Cgroup* Aggregator::CgroupFor(uint64_t id) {
  auto it = cgroups_.find(id);
  if (it != cgroups_.end()) return &it->second;
  // The kernel threads always get their row.
  if (cgroups_.size() >= options_.max_cgroups && id != kKernelCgroupId) {
    ++cgroup_table_full_;
    // Keep the totals: charge the overflow bucket (id 0) instead.
    id = 0;
    it = cgroups_.find(0);
    if (it != cgroups_.end()) return &it->second;
  }
  Cgroup& cg = cgroups_[id];
  if (id == 0) {
    cg.path = report_limits::kOverflowCgroupPath;
    cg.resolved = true;
  } else if (id == kKernelCgroupId) {
    cg.path = kKernelCgroupPath;  // no cgroup to resolve, never gone
    cg.resolved = true;
  }
  return &cg;
}

void Aggregator::ApplyEvent(const LifecycleEvent& e) {
  if (graveyard_.contains(e.proc)) return;  // duplicate EXIT of a retired one
  Proc* p = FindOrCreate(e.proc);
  if (!p) return;
  // A process first seen at its end (it predates the agent, or its FORK
  // was lost) takes its name from the event.
  auto adopt_name = [&] {
    if (p->comm_known) return;
    p->comm = e.comm;
    p->ppid = e.ppid;
    p->comm_known = true;
  };
  switch (e.type) {
    case EventType::kFork:
      p->ppid = e.ppid;
      if (!p->comm_known) p->comm = e.comm;  // the parent's, until exec
      p->comm_known = true;
      if (!p->cgroup_id) p->cgroup_id = e.cgroup_id;
      break;
    case EventType::kExec:
      p->ppid = e.ppid;
      p->comm = e.comm;
      p->comm_known = true;
      p->cgroup_id = e.cgroup_id;
      break;
    case EventType::kExiting:
      if (!p->exiting_since_ns) p->exiting_since_ns = mono_now_;
      adopt_name();
      break;
    case EventType::kExit:
      if (p->exited) return;
      adopt_name();
      p->exited = true;
      p->exit_code = e.exit_code;
      p->cgroup_id = e.cgroup_id;
      break;
  }
}

Aggregator::Result Aggregator::Update(std::vector<LifecycleEvent> events,
                                      const KernelReadings& readings,
                                      int64_t monotonic_ns, int64_t realtime_ns,
                                      AgentSelfStats self) {
  ++seq_;
  mono_now_ = monotonic_ns;
  Result result;
  for (const LifecycleEvent& e : events) ApplyEvent(e);

  // On-CPU time: exact per cgroup because the key carries it. A live
  // process is placed in the cgroup whose key grew most this interval: one
  // that moved stops growing its old key, and in the interval of the move
  // (both grew) it goes where it ran most, whatever order keys are read in.
  // Its EXIT names the cgroup it ended in, and that stays.
  absl::flat_hash_map<ProcessKey, uint64_t> grew_most;
  for (const auto& [key, cum] : readings.oncpu) {
    const uint64_t delta = Delta(last_oncpu_, key, cum);
    const ProcessKey pk{key.tgid, key.start_ns};
    if (graveyard_.contains(pk)) result.deletions.oncpu.push_back(key);
    if (!delta) continue;
    Cgroup* cg = CgroupFor(key.cgroup_id);
    cg->cpu_ns += delta;
    cg->last_active = seq_;
    if (graveyard_.contains(pk)) continue;  // late tail: cgroup only
    if (Proc* p = FindOrCreate(pk)) {
      p->cpu_ns += delta;
      uint64_t& most = grew_most[pk];
      if (!p->exited &&
          (delta > most || (delta == most && key.cgroup_id > p->cgroup_id))) {
        most = delta;
        p->cgroup_id = key.cgroup_id;
      }
    }
  }

  for (const auto& [key, cum] : readings.syscalls) {
    const wl_syscall_val delta = Delta(last_syscalls_, key, cum);
    const ProcessKey pk{key.tgid, key.start_ns};
    const bool grave = graveyard_.contains(pk);
    if (grave) result.deletions.syscalls.push_back(key);
    if (!delta.calls && !delta.failed) continue;
    SyscallStats& node = node_syscalls_[key.nr];
    node.nr = key.nr;
    node.calls += delta.calls;
    node.errors += delta.failed;
    // The key carries the cgroup, so the cgroup total is exact even for a
    // process that moved.
    const uint64_t cgroup_id = key.cgroup_id;
    if (!grave) {
      if (Proc* p = FindOrCreate(pk)) {
        p->syscalls += delta.calls;
        p->errors += delta.failed;
        SyscallStats& per = p->by_syscall[key.nr];
        per.nr = key.nr;
        per.calls += delta.calls;
        per.errors += delta.failed;
        if (!p->cgroup_id) p->cgroup_id = cgroup_id;
      }
    }
    Cgroup* cg = CgroupFor(cgroup_id);
    cg->syscalls += delta.calls;
    cg->errors += delta.failed;
    cg->last_active = seq_;
  }

  // Network: keys carry the cgroup, like on-CPU time. tgid 0 is a socket
  // whose owner process was never seen: its cgroup still gets the count.
  for (const auto& [key, cum] : readings.net) {
    const wl_net_val delta = Delta(last_net_, key, cum);
    const ProcessKey pk{key.tgid, key.start_ns};
    const bool grave = graveyard_.contains(pk);
    if (grave) result.deletions.net.push_back(key);
    if (IsZero(delta)) continue;
    Cgroup* cg = CgroupFor(key.cgroup_id);
    AddNet(delta, key.net_class, cg->net.data(), &cg->tcp);
    cg->last_active = seq_;
    if (grave || key.tgid == 0) continue;
    if (Proc* p = FindOrCreate(pk)) {
      AddNet(delta, key.net_class, p->net.data(), &p->tcp);
    }
  }

  // Fill in names of processes first seen in counters (they predate the
  // agent or their events were lost).
  for (auto& [k, p] : procs_) {
    if (p.comm_known || !env_.read_proc) continue;
    p.comm_known = true;
    if (auto info = env_.read_proc(k.tgid);
        info && info->start_ticks == k.start_ns / env_.tick_ns) {
      p.comm = info->comm;
      p.ppid = info->ppid;
    } else {
      p.comm = "?";
    }
  }

  if (options_.gc_every && seq_ % options_.gc_every == 0) CollectGarbage();

  // Processes that exited now are exported once, then go to the graveyard.
  for (auto it = graveyard_.begin(); it != graveyard_.end();) {
    if (monotonic_ns - it->second >= options_.graveyard_ns) {
      graveyard_.erase(it++);
    } else {
      ++it;
    }
  }
  exited_now_.clear();
  for (auto it = procs_.begin(); it != procs_.end();) {
    // EXITING without its EXIT for a whole grace period: its leader never
    // finished exiting within it, or was neither held nor seen freed (what
    // it ran after its exit began is not in the maps). Retire it now,
    // counted.
    Proc& p = it->second;
    if (!p.exited && p.exiting_since_ns &&
        monotonic_ns - p.exiting_since_ns >= options_.exit_grace_ns) {
      p.exited = true;
      ++exit_free_unseen_;
    }
    if (p.exited) {
      graveyard_[it->first] = monotonic_ns;
      exited_now_.emplace_back(it->first, std::move(it->second));
      procs_.erase(it++);
    } else {
      ++it;
    }
  }
  if (seeded_) {
    // Seeded keys the kernel no longer has (deleted by the earlier agent)
    // would otherwise be kept for ever.
    seeded_ = false;
    auto keep = [](auto& last, const auto& read) {
      using Map = std::decay_t<decltype(last)>;
      Map present;
      for (const auto& [k, v] : read) {
        auto it = last.find(k);
        if (it != last.end()) present.insert(*it);
      }
      last = std::move(present);
    };
    keep(last_oncpu_, readings.oncpu);
    keep(last_syscalls_, readings.syscalls);
    keep(last_net_, readings.net);
  }
  result.snapshot = Build(monotonic_ns, realtime_ns, std::move(self));
  return result;
}

std::shared_ptr<const KernelBaselines> Aggregator::Baselines() const {
  auto b = std::make_shared<KernelBaselines>();
  b->oncpu.assign(last_oncpu_.begin(), last_oncpu_.end());
  b->syscalls.assign(last_syscalls_.begin(), last_syscalls_.end());
  b->net.assign(last_net_.begin(), last_net_.end());
  return b;
}

void Aggregator::SeedBaselines(const KernelBaselines& b) {
  for (const auto& [k, v] : b.oncpu) last_oncpu_[k] = v;
  for (const auto& [k, v] : b.syscalls) last_syscalls_[k] = v;
  for (const auto& [k, v] : b.net) last_net_[k] = v;
  seeded_ = true;
}

void Aggregator::ForgetDeleted(const Deletions& d) {
  for (const auto& k : d.oncpu) last_oncpu_.erase(k);
  for (const auto& k : d.syscalls) last_syscalls_.erase(k);
  for (const auto& k : d.net) last_net_.erase(k);
}

void Aggregator::CollectGarbage() {
  if (!env_.read_proc) return;
  for (auto& [k, p] : procs_) {
    if (p.exited) continue;
    auto info = env_.read_proc(k.tgid);
    if (!info || info->start_ticks != k.start_ns / env_.tick_ns) {
      p.exited = true;  // its EXIT event was lost
      ++exits_inferred_;
    }
  }
  // Cgroups idle for a whole GC period that no longer resolve are gone:
  // export them once more (flagged), then forget them.
  for (auto it = cgroups_.begin(); it != cgroups_.end();) {
    Cgroup& cg = it->second;
    if (cg.gone) {
      cgroups_.erase(it++);
      continue;
    }
    if (it->first != 0 && it->first != kKernelCgroupId &&
        cg.last_active + options_.gc_every <= seq_ && env_.cgroup_path &&
        !env_.cgroup_path(it->first)) {
      cg.gone = true;
    }
    ++it;
  }
}

std::shared_ptr<const Snapshot> Aggregator::Build(int64_t mono, int64_t real,
                                                  AgentSelfStats self) {
  auto snap = std::make_shared<Snapshot>();
  snap->sequence = seq_;
  snap->monotonic_ns = mono;
  snap->realtime_ns = real;
  snap->interval_ns = last_mono_ ? mono - last_mono_ : 0;
  last_mono_ = mono;

  absl::flat_hash_map<uint64_t, uint32_t> live_by_cgroup;
  snap->processes.reserve(procs_.size() + exited_now_.size());
  auto add = [&](const ProcessKey& k, const Proc& p) {
    ProcessStats& out = snap->processes.emplace_back();
    out.pid = k.tgid;
    out.start_ns = k.start_ns;
    out.ppid = p.ppid;
    out.comm = p.comm;
    out.cgroup_id = p.cgroup_id;
    out.cpu_ns = p.cpu_ns;
    out.syscalls = p.syscalls;
    out.syscall_errors = p.errors;
    out.exited = p.exited;
    out.exit_code = p.exit_code;
    out.net = p.net;
    out.tcp = p.tcp;
    out.by_syscall.reserve(p.by_syscall.size());
    for (const auto& [nr, st] : p.by_syscall) out.by_syscall.push_back(st);
    std::sort(out.by_syscall.begin(), out.by_syscall.end(),
              [](const auto& a, const auto& b) { return a.nr < b.nr; });
  };
  for (const auto& [k, p] : procs_) {
    add(k, p);
    ++live_by_cgroup[p.cgroup_id];
  }
  for (const auto& [k, p] : exited_now_) add(k, p);

  snap->cgroups.reserve(cgroups_.size());
  for (auto& [id, cg] : cgroups_) {
    if (!cg.resolved && env_.cgroup_path && cg.resolve_attempts < 3) {
      ++cg.resolve_attempts;
      if (auto path = env_.cgroup_path(id)) {
        cg.path = *path;
        cg.resolved = true;
      }
    }
    // Removed before its path resolved: a placeholder the collector accepts
    // (a path under /, unique by id), so its counts are kept.
    std::string path =
        cg.resolved ? cg.path
                    : absl::StrCat(report_limits::kDeletedCgroupPrefix, id);
    auto live = live_by_cgroup.find(id);
    CgroupStats& out = snap->cgroups.emplace_back();
    out.id = id;
    out.path = std::move(path);
    out.cpu_ns = cg.cpu_ns;
    out.syscalls = cg.syscalls;
    out.syscall_errors = cg.errors;
    out.live_processes = live == live_by_cgroup.end() ? 0 : live->second;
    out.gone = cg.gone;
    out.net = cg.net;
    out.tcp = cg.tcp;
  }
  std::sort(snap->cgroups.begin(), snap->cgroups.end(),
            [](const auto& a, const auto& b) { return a.id < b.id; });

  snap->syscalls.reserve(node_syscalls_.size());
  for (const auto& [nr, s] : node_syscalls_) snap->syscalls.push_back(s);
  std::sort(snap->syscalls.begin(), snap->syscalls.end(),
            [](const auto& a, const auto& b) { return a.nr < b.nr; });

  self.exits_inferred = exits_inferred_;
  self.counter_resets = counter_resets_;
  self.processes_tracked = procs_.size();
  self.cgroups_tracked = cgroups_.size();
  self.drops[DropReason::kProcessTableFull] = process_table_full_;
  self.drops[DropReason::kExitFreeUnseen] = exit_free_unseen_;
  self.drops[DropReason::kCgroupTableFull] = cgroup_table_full_;
  snap->self = std::move(self);
  return snap;
}

}  // namespace wattlens
