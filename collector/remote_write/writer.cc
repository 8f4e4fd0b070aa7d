// SPDX-License-Identifier: Apache-2.0
#include "collector/remote_write/writer.h"

#include <algorithm>
#include <fstream>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/util/time_util.h"
#include "spdlog/spdlog.h"

namespace wattlens::collector::remote_write {
namespace {

using google::protobuf::util::TimeUtil;

int64_t FloorDiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

absl::Status Readable(const std::string& flag, const std::string& path) {
  if (path.empty()) return absl::OkStatus();
  std::ifstream in(path);
  if (!in) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, ": cannot read ", path));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateRemoteWriteOptions(const RemoteWriteOptions& o) {
  if (o.url.empty()) return absl::OkStatus();
  const bool https = absl::StartsWith(o.url, "https://");
  if (!https && !absl::StartsWith(o.url, "http://")) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--remote_write_url must start with http:// or https://, got \"", o.url,
        "\""));
  }
  const size_t host = o.url.find("://") + 3;
  if (host >= o.url.size() || o.url[host] == '/' ||
      o.url.find_first_of(" \t\r\n") != std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("--remote_write_url has no host: \"", o.url, "\""));
  }
  if (!o.ca_file.empty() && !https) {
    return absl::InvalidArgumentError(
        "--remote_write_tls_ca_file needs an https:// --remote_write_url");
  }
  if (absl::Status st =
          Readable("--remote_write_bearer_token_file", o.bearer_token_file);
      !st.ok()) {
    return st;
  }
  if (absl::Status st = Readable("--remote_write_tls_ca_file", o.ca_file);
      !st.ok()) {
    return st;
  }
  if (o.interval < absl::Seconds(1)) {
    return absl::InvalidArgumentError("--remote_write_interval must be >= 1s");
  }
  if (o.delay < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("--remote_write_delay must be >= 0");
  }
  if (o.rebase_after <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("rebase interval must be > 0");
  }
  if (o.timeout < absl::Milliseconds(100)) {
    return absl::InvalidArgumentError(
        "--remote_write_timeout must be >= 100ms");
  }
  if (o.queue.capacity_samples == 0) {
    return absl::InvalidArgumentError(
        "--remote_write_queue_samples must be > 0");
  }
  if (o.queue.max_samples_per_send == 0) {
    return absl::InvalidArgumentError(
        "--remote_write_max_samples_per_send must be > 0");
  }
  if (o.series.max_workloads == 0) {
    return absl::InvalidArgumentError(
        "--remote_write_max_workloads must be > 0");
  }
  for (char c : o.series.cluster) {
    if (static_cast<unsigned char>(c) < 0x20) {
      return absl::InvalidArgumentError(
          "--remote_write_cluster has a control character");
    }
  }
  return absl::OkStatus();
}

RemoteWriter::RemoteWriter(RemoteWriteOptions options, UsageFn usage,
                           int64_t resolution_ns, int64_t retention_ns,
                           const Clock& clock,
                           std::unique_ptr<HttpPoster> poster)
    : options_(std::move(options)),
      usage_(std::move(usage)),
      resolution_ns_(resolution_ns),
      rebase_after_ns_(
          std::max(resolution_ns,
                   std::min(absl::ToInt64Nanoseconds(options_.rebase_after),
                            retention_ns / 2))),
      clock_(clock),
      queue_(std::make_unique<SendQueue>(options_.queue, std::move(poster))),
      builder_(options_.series) {
  anchor_ns_ = BoundaryNs();
  last_ns_ = anchor_ns_.load();
}

absl::StatusOr<std::unique_ptr<RemoteWriter>> RemoteWriter::Create(
    RemoteWriteOptions options, UsageFn usage, int64_t resolution_ns,
    int64_t retention_ns, const Clock& clock,
    std::unique_ptr<HttpPoster> poster) {
  if (resolution_ns <= 0) {
    return absl::InvalidArgumentError("resolution must be > 0");
  }
  if (!poster) {
    HttpOptions h;
    h.url = options.url;
    h.bearer_token_file = options.bearer_token_file;
    h.ca_file = options.ca_file;
    h.timeout = options.timeout;
    auto p = NewCurlPoster(std::move(h));
    if (!p.ok()) return p.status();
    poster = std::move(p).value();
  }
  return std::unique_ptr<RemoteWriter>(
      new RemoteWriter(std::move(options), std::move(usage), resolution_ns,
                       retention_ns, clock, std::move(poster)));
}

RemoteWriter::~RemoteWriter() { Stop(); }

int64_t RemoteWriter::BoundaryNs() const {
  const int64_t t =
      clock_.RealtimeNs() - absl::ToInt64Nanoseconds(options_.delay);
  return FloorDiv(t, resolution_ns_) * resolution_ns_;
}

size_t RemoteWriter::admitted_workloads() const {
  absl::MutexLock lock(&build_mu_);
  return builder_.admitted();
}

void RemoteWriter::Start() {
  queue_->Start();
  absl::MutexLock lock(&mu_);
  if (options_.interval <= absl::ZeroDuration() || thread_.joinable()) return;
  thread_ = std::thread([this] { Loop(); });
}

void RemoteWriter::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
  queue_->Stop();
}

void RemoteWriter::Loop() {
  absl::MutexLock lock(&mu_);
  while (!stopping_) {
    // Periodic work: waking early on stop is the only condition.
    if (mu_.AwaitWithTimeout(absl::Condition(&stopping_), options_.interval)) {
      break;
    }
    mu_.Unlock();
    if (absl::Status st = CollectNow(); !st.ok()) {
      spdlog::warn("remote write: snapshot failed: {}", st.ToString());
    }
    mu_.Lock();
  }
}

absl::Status RemoteWriter::CollectNow() {
  absl::MutexLock lock(&build_mu_);
  const int64_t t = BoundaryNs();
  const int64_t anchor = anchor_ns_.load();
  if (t <= last_ns_.load()) return absl::OkStatus();
  wattlens::v1::GetUsageRequest req;
  req.set_group_by(wattlens::v1::GROUP_BY_WORKLOAD);
  // Order decides which workloads are admitted first: the costliest.
  req.set_sort_by(wattlens::v1::SORT_BY_COST);
  *req.mutable_since() = TimeUtil::NanosecondsToTimestamp(anchor);
  *req.mutable_until() = TimeUtil::NanosecondsToTimestamp(t);
  absl::StatusOr<wattlens::v1::GetUsageResponse> usage = usage_(req);
  if (!usage.ok()) {
    snapshot_errors_.fetch_add(1, std::memory_order_relaxed);
    return usage.status();
  }
  queue_->Enqueue(builder_.Build(*usage, t / 1'000'000));
  last_ns_ = t;
  if (t - anchor >= rebase_after_ns_) {
    builder_.Rebase();
    anchor_ns_ = t;
  }
  return absl::OkStatus();
}

}  // namespace wattlens::collector::remote_write
