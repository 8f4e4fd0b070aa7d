// SPDX-License-Identifier: Apache-2.0
#include "agent/state/restart_state.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace wattlens {
namespace {

constexpr char kMagic[4] = {'W', 'L', 'R', 'S'};
constexpr uint32_t kVersion = 1;
// Caps a corrupt length before it allocates.
constexpr uint32_t kMaxRecords = 1u << 22;
constexpr uint32_t kMaxString = 4096;

uint64_t Fnv1a(absl::string_view data) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : data) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}

template <typename T>
void Put(std::string* out, const T& v) {
  out->append(reinterpret_cast<const char*>(&v), sizeof(T));
}

void PutString(std::string* out, const std::string& s) {
  Put<uint32_t>(out, static_cast<uint32_t>(s.size()));
  out->append(s);
}

template <typename K, typename V>
void PutRecords(std::string* out, const std::vector<std::pair<K, V>>& recs) {
  Put<uint32_t>(out, static_cast<uint32_t>(recs.size()));
  Put<uint32_t>(out, static_cast<uint32_t>(sizeof(K)));
  Put<uint32_t>(out, static_cast<uint32_t>(sizeof(V)));
  for (const auto& [k, v] : recs) {
    Put(out, k);
    Put(out, v);
  }
}

class Reader {
 public:
  explicit Reader(absl::string_view d) : d_(d) {}
  template <typename T>
  bool Get(T* v) {
    if (d_.size() < sizeof(T)) return false;
    std::memcpy(v, d_.data(), sizeof(T));
    d_.remove_prefix(sizeof(T));
    return true;
  }
  bool GetString(std::string* s) {
    uint32_t n;
    if (!Get(&n) || n > kMaxString || d_.size() < n) return false;
    s->assign(d_.data(), n);
    d_.remove_prefix(n);
    return true;
  }
  template <typename K, typename V>
  bool GetRecords(std::vector<std::pair<K, V>>* recs) {
    uint32_t n, ks, vs;
    if (!Get(&n) || !Get(&ks) || !Get(&vs)) return false;
    // A record size other than this build's: another ABI wrote it.
    if (ks != sizeof(K) || vs != sizeof(V) || n > kMaxRecords) return false;
    if (d_.size() / (sizeof(K) + sizeof(V)) < n) return false;
    recs->resize(n);
    for (auto& [k, v] : *recs) {
      Get(&k);
      Get(&v);
    }
    return true;
  }
  bool empty() const { return d_.empty(); }

 private:
  absl::string_view d_;
};

}  // namespace

std::string EncodeRestartState(const RestartState& s) {
  std::string out(kMagic, sizeof(kMagic));
  Put(&out, kVersion);
  PutString(&out, s.layout);
  PutString(&out, s.node_name);
  Put(&out, s.epoch);
  Put(&out, s.sequence);
  Put(&out, s.report_time_ns);
  PutRecords(&out, s.baselines.oncpu);
  PutRecords(&out, s.baselines.syscalls);
  PutRecords(&out, s.baselines.net);
  Put(&out, Fnv1a(out));
  return out;
}

absl::StatusOr<RestartState> DecodeRestartState(absl::string_view data) {
  if (data.size() < sizeof(kMagic) + sizeof(uint32_t) + sizeof(uint64_t) ||
      std::memcmp(data.data(), kMagic, sizeof(kMagic)) != 0) {
    return absl::DataLossError("restart state: not a restart state file");
  }
  uint64_t sum;
  std::memcpy(&sum, data.data() + data.size() - sizeof(sum), sizeof(sum));
  absl::string_view body = data.substr(0, data.size() - sizeof(sum));
  if (Fnv1a(body) != sum) {
    return absl::DataLossError("restart state: checksum mismatch");
  }
  Reader r(body.substr(sizeof(kMagic)));
  uint32_t version;
  RestartState s;
  if (!r.Get(&version) || version != kVersion) {
    return absl::DataLossError(
        absl::StrCat("restart state: version ", version, " is not ", kVersion));
  }
  if (!r.GetString(&s.layout) || !r.GetString(&s.node_name) ||
      !r.Get(&s.epoch) || !r.Get(&s.sequence) || !r.Get(&s.report_time_ns) ||
      !r.GetRecords(&s.baselines.oncpu) ||
      !r.GetRecords(&s.baselines.syscalls) ||
      !r.GetRecords(&s.baselines.net) || !r.empty()) {
    return absl::DataLossError("restart state: truncated or malformed");
  }
  return s;
}

absl::Status RestartStateFile::Write(const RestartState& s) const {
  const std::string data = EncodeRestartState(s);
  const std::string tmp = path() + ".tmp";
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return absl::ErrnoToStatus(errno, absl::StrCat("creating ", tmp));
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = write(fd, data.data() + off, data.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      close(fd);
      unlink(tmp.c_str());
      return absl::ErrnoToStatus(err, absl::StrCat("writing ", tmp));
    }
    off += static_cast<size_t>(n);
  }
  // Durable before it replaces the old state: a crash leaves one or the
  // other whole, never a torn file.
  if (fdatasync(fd) != 0) {
    const int err = errno;
    close(fd);
    unlink(tmp.c_str());
    return absl::ErrnoToStatus(err, absl::StrCat("syncing ", tmp));
  }
  close(fd);
  if (rename(tmp.c_str(), path().c_str()) != 0) {
    const int err = errno;
    unlink(tmp.c_str());
    return absl::ErrnoToStatus(err, absl::StrCat("renaming to ", path()));
  }
  return absl::OkStatus();
}

absl::StatusOr<RestartState> RestartStateFile::Read() const {
  int fd = open(path().c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat("opening ", path()));
  }
  std::string data;
  char buf[65536];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      close(fd);
      return absl::ErrnoToStatus(err, absl::StrCat("reading ", path()));
    }
    if (n == 0) break;
    data.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  return DecodeRestartState(data);
}

void RestartStateFile::Remove() const { unlink(path().c_str()); }

RestorePlan PlanRestore(const RestoreInput& in, const RestartStateFile* file) {
  RestorePlan plan;
  if (!in.adopted_oncpu && !in.adopted_syscalls && !in.adopted_net) {
    // New maps count from zero: an older state describes other maps.
    if (file) file->Remove();
    plan.outcome = in.layout.empty() ? "off" : "fresh";
    return plan;
  }
  absl::StatusOr<RestartState> state =
      file ? file->Read() : absl::NotFoundError("no restart state kept");
  if (state.ok() && !in.node_name.empty() && !state->node_name.empty() &&
      state->node_name != in.node_name) {
    state = absl::FailedPreconditionError(
        absl::StrCat("restart state is node ", state->node_name, "'s, not ",
                     in.node_name, "'s"));
  }
  // Per source: its baselines count only for the very maps it adopted (the
  // same "<source>-<layout>" in the state); another source's layout change
  // does not void them.
  const std::vector<absl::string_view> mine =
      absl::StrSplit(in.layout, ' ', absl::SkipEmpty());
  auto same_maps = [&](absl::string_view source) {
    if (!state.ok()) return false;
    const std::vector<absl::string_view> theirs =
        absl::StrSplit(state->layout, ' ', absl::SkipEmpty());
    for (absl::string_view t : mine) {
      if (!absl::StartsWith(t, absl::StrCat(source, "-"))) continue;
      return std::find(theirs.begin(), theirs.end(), t) != theirs.end();
    }
    return false;
  };
  plan.seed_oncpu_from_maps = in.adopted_oncpu && !same_maps("sched");
  plan.seed_syscalls_from_maps = in.adopted_syscalls && !same_maps("syscalls");
  plan.seed_net_from_maps = in.adopted_net && !same_maps("network");
  if (state.ok() && (plan.seed_oncpu_from_maps ||
                     plan.seed_syscalls_from_maps || plan.seed_net_from_maps)) {
    const bool none = (!in.adopted_oncpu || plan.seed_oncpu_from_maps) &&
                      (!in.adopted_syscalls || plan.seed_syscalls_from_maps) &&
                      (!in.adopted_net || plan.seed_net_from_maps);
    const std::string why =
        absl::StrCat("restart state is for BPF layout '", state->layout,
                     "', not '", in.layout, "'");
    if (none) state = absl::FailedPreconditionError(why);
    else plan.reason = why;
  }
  if (!state.ok()) {
    plan.outcome = "state_unreadable";
    plan.reason = std::string(state.status().message());
    return plan;
  }
  plan.outcome = "resumed";
  plan.reason = absl::StrCat("the report of epoch ", state->epoch,
                             " sequence ", state->sequence,
                             plan.reason.empty() ? "" : "; ", plan.reason);
  plan.carried_ns = in.now_ns > state->report_time_ns
                        ? static_cast<uint64_t>(in.now_ns -
                                                state->report_time_ns)
                        : 0;
  plan.baselines = std::move(state->baselines);
  // A source that started fresh counts from zero, and one whose maps the
  // state does not describe from its maps as they are now.
  if (!in.adopted_oncpu || plan.seed_oncpu_from_maps) {
    plan.baselines.oncpu.clear();
  }
  if (!in.adopted_syscalls || plan.seed_syscalls_from_maps) {
    plan.baselines.syscalls.clear();
  }
  if (!in.adopted_net || plan.seed_net_from_maps) plan.baselines.net.clear();
  return plan;
}

void RestartLedger::Queued(uint64_t epoch, uint64_t sequence,
                           int64_t report_time_ns,
                           std::shared_ptr<const KernelBaselines> baselines) {
  if (!baselines) return;
  absl::MutexLock lock(&mu_);
  if (epoch != epoch_) {
    pending_.clear();
    epoch_ = epoch;
  }
  pending_[sequence] = {report_time_ns, std::move(baselines)};
  while (pending_.size() > max_pending_) pending_.erase(pending_.begin());
}

void RestartLedger::Acked(uint64_t epoch, uint64_t sequence) {
  RestartState s;
  {
    absl::MutexLock lock(&mu_);
    if (epoch != epoch_) return;
    auto it = pending_.find(sequence);
    if (it == pending_.end()) {
      // The state on disk is older than what the collector now has: the
      // next agent would report the difference again. Without it the next
      // agent starts from its maps as they are then (loses, never doubles).
      ++stats_.unmatched_acks;
      pending_.erase(pending_.begin(), pending_.upper_bound(sequence));
      file_.Remove();
      return;
    }
    s.baselines = *it->second.baselines;
    s.report_time_ns = it->second.time_ns;
    pending_.erase(pending_.begin(), pending_.upper_bound(sequence));
  }
  s.layout = layout_;
  s.node_name = node_name_;
  s.epoch = epoch;
  s.sequence = sequence;
  // Writes for one ledger come from one thread (the uploader's sender), so
  // a later acknowledgement never lands before an earlier one.
  absl::Status st = file_.Write(s);
  absl::MutexLock lock(&mu_);
  if (st.ok()) {
    ++stats_.writes;
  } else {
    ++stats_.write_errors;
    stats_.last_error = std::string(st.message());
  }
}

RestartLedger::Stats RestartLedger::stats() const {
  absl::MutexLock lock(&mu_);
  return stats_;
}

}  // namespace wattlens
