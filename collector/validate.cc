// SPDX-License-Identifier: Apache-2.0
#include "collector/validate.h"

#include <cctype>
#include <cmath>
#include <optional>
#include <string>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "agent/common/status_macros.h"
#include "collector/counters.h"

namespace wattlens::collector {
namespace {

using wattlens::v1::EnergyCounter;
using wattlens::v1::NodeReport;

constexpr uint64_t kMaxEpochOrSequence = uint64_t{1} << 62;
// 100 years of one core: far beyond any real cumulative counter.
constexpr uint64_t kMaxCounter = uint64_t{1} << 62;

absl::Status Invalid(std::string_view field, std::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(
      "report field ", std::string(field), ": ", std::string(why)));
}

bool Printable(const std::string& s) {
  return !report_limits::HasControlBytes(s);
}

absl::Status CheckLabel(std::string_view field, const std::string& s,
                        size_t max) {
  if (s.size() > max) return Invalid(field, "too long");
  if (!Printable(s)) return Invalid(field, "control characters");
  return absl::OkStatus();
}

absl::Status CheckEnergy(
    std::string_view field,
    const google::protobuf::RepeatedPtrField<EnergyCounter>& energy) {
  if (energy.size() > 64) return Invalid(field, "too many entries");
  for (const EnergyCounter& e : energy) {
    if (!wattlens::v1::EnergyZone_IsValid(e.zone()) ||
        !wattlens::v1::EnergyMode_IsValid(e.mode())) {
      return Invalid(field, "unknown zone or mode");
    }
    if (e.microjoules() > kMaxCounter) return Invalid(field, "out of range");
  }
  return absl::OkStatus();
}

}  // namespace

std::string_view RejectReasonName(RejectReason r) {
  switch (r) {
    case RejectReason::kMalformed:
      return "malformed";
    case RejectReason::kOversized:
      return "oversized";
    case RejectReason::kIdentityMismatch:
      return "identity_mismatch";
    case RejectReason::kNoClientCertificate:
      return "no_client_certificate";
    case RejectReason::kNodeChanged:
      return "node_changed";
    case RejectReason::kStoreError:
      return "store_error";
    case RejectReason::kNoNodeToken:
      return "no_node_token";
    case RejectReason::kCount:
      break;
  }
  return "unknown";
}

bool IsValidNodeName(std::string_view name) {
  if (name.empty() || name.size() > 253) return false;
  if (!std::isalnum(static_cast<unsigned char>(name[0]))) return false;
  for (unsigned char c : name) {
    if (!std::isalnum(c) && c != '.' && c != '-' && c != '_') return false;
  }
  return true;
}

namespace {

using wattlens::v1::WorkloadCounters;

// One workload on its own; the report-wide "repeated" check is the caller's.
absl::Status CheckWorkload(const WorkloadCounters& w,
                           const ReportLimits& limits, WorkloadRefusal* why) {
  const auto& id = w.identity();
  const std::string& path = id.cgroup_path();
  *why = WorkloadRefusal::kPath;
  // The kernel threads are a workload without a cgroup. Agents before
  // NodeReport.energy_buckets sent the buckets as workloads by these paths.
  const bool named = IsEnergyBucketPath(path) || path == kKernelPath;
  if (!named && (path.empty() || path[0] != '/')) {
    return Invalid("workloads.identity.cgroup_path",
                   "must start with / (or be kernel, __idle__ or "
                   "__unattributed__)");
  }
  if (path.size() > limits.max_path_bytes || !Printable(path)) {
    return Invalid("workloads.identity.cgroup_path",
                   "too long or control characters");
  }
  *why = WorkloadRefusal::kLabel;
  for (const auto& [field, value] :
       {std::pair<std::string_view, const std::string*>{"systemd_unit",
                                                        &id.systemd_unit()},
        {"namespace", &id.namespace_()},
        {"pod", &id.pod()},
        {"pod_uid", &id.pod_uid()},
        {"container", &id.container()},
        {"container_id", &id.container_id()},
        {"workload_kind", &id.workload_kind()},
        {"workload", &id.workload()},
        {"project", &id.project()}}) {
    if (auto s = CheckLabel(field, *value, limits.max_label_bytes); !s.ok()) {
      return s;
    }
  }
  *why = WorkloadRefusal::kCounterRange;
  if (w.cpu_nanoseconds() > kMaxCounter || w.syscalls() > kMaxCounter ||
      w.syscall_errors() > kMaxCounter) {
    return Invalid("workloads counters", "out of range");
  }
  if (w.tcp_accepted() > kMaxCounter ||
      w.cpu_allocated_core_nanoseconds() > kMaxCounter ||
      w.memory_allocated_byte_seconds() > kMaxCounter) {
    return Invalid("workloads allocation counters", "out of range");
  }
  *why = WorkloadRefusal::kInconsistent;
  if (!std::isfinite(w.cpu_request_cores()) || w.cpu_request_cores() < 0 ||
      w.cpu_request_cores() > 1e6) {
    return Invalid("workloads.cpu_request_cores", "must be finite, 0..1e6");
  }
  if (w.syscall_errors() > w.syscalls()) {
    return Invalid("workloads.syscall_errors", "exceeds syscalls");
  }
  *why = WorkloadRefusal::kNetwork;
  if (w.network_size() > 8) return Invalid("workloads.network", "too many");
  for (const auto& n : w.network()) {
    if (!wattlens::v1::NetworkClass_IsValid(n.network_class())) {
      return Invalid("workloads.network.network_class", "unknown");
    }
    if (n.transmit_bytes() > kMaxCounter || n.receive_bytes() > kMaxCounter) {
      return Invalid("workloads.network", "out of range");
    }
  }
  *why = WorkloadRefusal::kEnergy;
  return CheckEnergy("workloads.energy", w.energy());
}

// One energy bucket on its own; repeats are the caller's.
absl::Status CheckBucket(const wattlens::v1::EnergyBucketCounters& b,
                         WorkloadRefusal* why) {
  *why = WorkloadRefusal::kPath;
  if (EnergyBucketPath(b.bucket()).empty()) {
    return Invalid("energy_buckets.bucket", "unknown");
  }
  *why = WorkloadRefusal::kEnergy;
  return CheckEnergy("energy_buckets.energy", b.energy());
}

}  // namespace

std::string_view WorkloadRefusalName(WorkloadRefusal r) {
  switch (r) {
    case WorkloadRefusal::kPath:
      return "path";
    case WorkloadRefusal::kLabel:
      return "label";
    case WorkloadRefusal::kRepeated:
      return "repeated_path";
    case WorkloadRefusal::kCounterRange:
      return "counter_range";
    case WorkloadRefusal::kInconsistent:
      return "inconsistent";
    case WorkloadRefusal::kNetwork:
      return "network";
    case WorkloadRefusal::kEnergy:
      return "energy";
    case WorkloadRefusal::kCount:
      break;
  }
  return "unknown";
}

// The report's own fields, workloads aside.
static absl::Status CheckReportFields(const NodeReport& r,
                                      const ReportLimits& limits) {
  if (!IsValidNodeName(r.node_name())) {
    return Invalid("node_name", "empty, too long or not [A-Za-z0-9._-]");
  }
  if (r.epoch() == 0 || r.epoch() > kMaxEpochOrSequence) {
    return Invalid("epoch", "must be in 1..2^62");
  }
  if (r.sequence() == 0 || r.sequence() > kMaxEpochOrSequence) {
    return Invalid("sequence", "must be in 1..2^62");
  }
  if (!r.has_time() || r.time().seconds() <= 0 ||
      r.time().seconds() > 253402300799 || r.time().nanos() < 0 ||
      r.time().nanos() > 999999999) {
    return Invalid("time", "missing or out of range");
  }
  if (r.interval().seconds() < 0 || r.interval().seconds() > 3600 ||
      r.interval().nanos() < 0 || r.interval().nanos() > 999999999) {
    return Invalid("interval", "must be in 0..1h");
  }
  if (static_cast<size_t>(r.workloads_size()) > limits.max_workloads) {
    return Invalid("workloads", "too many");
  }
  if (static_cast<size_t>(r.energy_buckets_size()) >
      report_limits::kMaxEnergyBuckets) {
    return Invalid("energy_buckets", "too many");
  }
  if (auto s = CheckLabel("agent_version", r.agent_version(),
                          limits.max_label_bytes);
      !s.ok()) {
    return s;
  }
  // The node's capacity and labels price every workload on it.
  const auto& spec = r.node();
  if (spec.cpus() > (1u << 20) || spec.gpus() > 4096) {
    return Invalid("node.cpus/gpus", "out of range");
  }
  if (static_cast<size_t>(spec.labels_size()) > limits.max_health_entries) {
    return Invalid("node.labels", "too many");
  }
  for (const auto& [k, v] : spec.labels()) {
    if (k.empty()) return Invalid("node.labels", "empty key");
    if (auto s = CheckLabel("node.labels key", k, limits.max_label_bytes);
        !s.ok()) {
      return s;
    }
    if (auto s = CheckLabel("node.labels value", v, limits.max_label_bytes);
        !s.ok()) {
      return s;
    }
  }
  if (auto s = CheckLabel("node.provider_id", spec.provider_id(),
                          limits.max_label_bytes);
      !s.ok()) {
    return s;
  }
  if (r.elapsed_nanoseconds() > kMaxCounter) {
    return Invalid("elapsed_nanoseconds", "out of range");
  }
  const auto& p = r.power();
  if (!std::isfinite(p.watts()) || p.watts() < 0 || p.watts() > 1e7) {
    return Invalid("power.watts", "must be finite, 0..1e7");
  }
  if (!wattlens::v1::PowerSource_IsValid(p.source())) {
    return Invalid("power.source", "unknown");
  }
  if (auto s = CheckEnergy("power.energy", p.energy()); !s.ok()) return s;
  const auto& h = r.health();
  if (static_cast<size_t>(h.sources_size()) > limits.max_health_entries ||
      static_cast<size_t>(h.drops_size()) > limits.max_health_entries) {
    return Invalid("health", "too many entries");
  }
  for (const auto& s : h.sources()) {
    if (auto st = CheckLabel("health.sources.source", s.source(), 64);
        !st.ok()) {
      return st;
    }
    if (auto st = CheckLabel("health.sources.last_error", s.last_error(), 1024);
        !st.ok()) {
      return st;
    }
  }
  for (const auto& d : h.drops()) {
    if (auto st = CheckLabel("health.drops.reason", d.reason(), 64); !st.ok()) {
      return st;
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateReport(const NodeReport& r, const ReportLimits& limits) {
  RETURN_IF_ERROR(CheckReportFields(r, limits));
  absl::flat_hash_set<std::string_view> paths;
  paths.reserve(r.workloads_size() + r.energy_buckets_size());
  WorkloadRefusal why;
  for (const auto& b : r.energy_buckets()) {
    RETURN_IF_ERROR(CheckBucket(b, &why));
    if (!paths.insert(EnergyBucketPath(b.bucket())).second) {
      return Invalid("energy_buckets.bucket", "repeated in report");
    }
  }
  for (const auto& w : r.workloads()) {
    RETURN_IF_ERROR(CheckWorkload(w, limits, &why));
    if (!paths.insert(w.identity().cgroup_path()).second) {
      return Invalid("workloads.identity.cgroup_path", "repeated in report");
    }
  }
  return absl::OkStatus();
}

namespace {

// Removes from `items` those `refusal` gives a reason for, counting each in
// `refused` (may be null), and keeps the order of the rest. Returns how many
// were removed.
template <typename T, typename Refusal>
size_t RemoveRefused(google::protobuf::RepeatedPtrField<T>* items,
                     Refusal refusal, WorkloadRefusalCounters* refused) {
  int kept = 0;
  for (int i = 0; i < items->size(); ++i) {
    if (std::optional<WorkloadRefusal> why = refusal(items->Get(i))) {
      if (refused != nullptr) refused->Inc(*why);
      continue;
    }
    if (kept != i) items->SwapElements(kept, i);
    ++kept;
  }
  const size_t removed = static_cast<size_t>(items->size() - kept);
  items->DeleteSubrange(kept, items->size() - kept);
  return removed;
}

}  // namespace

absl::StatusOr<size_t> ValidateAndFilterReport(
    NodeReport& r, const ReportLimits& limits,
    WorkloadRefusalCounters* refused) {
  RETURN_IF_ERROR(CheckReportFields(r, limits));
  absl::flat_hash_set<std::string> paths;
  paths.reserve(r.workloads_size() + r.energy_buckets_size());
  // A bucket also sent the old way, as a workload, is a repeat of it.
  size_t removed = RemoveRefused(
      r.mutable_energy_buckets(),
      [&](const wattlens::v1::EnergyBucketCounters& b)
          -> std::optional<WorkloadRefusal> {
        WorkloadRefusal why;
        if (!CheckBucket(b, &why).ok()) return why;
        if (!paths.emplace(EnergyBucketPath(b.bucket())).second) {
          return WorkloadRefusal::kRepeated;
        }
        return std::nullopt;
      },
      refused);
  removed += RemoveRefused(
      r.mutable_workloads(),
      [&](const WorkloadCounters& w) -> std::optional<WorkloadRefusal> {
        WorkloadRefusal why;
        if (!CheckWorkload(w, limits, &why).ok()) return why;
        if (!paths.insert(w.identity().cgroup_path()).second) {
          return WorkloadRefusal::kRepeated;
        }
        return std::nullopt;
      },
      refused);
  return removed;
}

}  // namespace wattlens::collector
