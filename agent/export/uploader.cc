// SPDX-License-Identifier: Apache-2.0
#include "agent/export/uploader.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "agent/export/token_credentials.h"
#include "grpcpp/create_channel.h"
#include "spdlog/spdlog.h"

namespace wattlens {
namespace {

using wattlens::v1::UploadRequest;
using wattlens::v1::UploadResponse;

std::string StatusText(const grpc::Status& st) {
  static constexpr const char* kNames[] = {"OK",
                                           "CANCELLED",
                                           "UNKNOWN",
                                           "INVALID_ARGUMENT",
                                           "DEADLINE_EXCEEDED",
                                           "NOT_FOUND",
                                           "ALREADY_EXISTS",
                                           "PERMISSION_DENIED",
                                           "RESOURCE_EXHAUSTED",
                                           "FAILED_PRECONDITION",
                                           "ABORTED",
                                           "OUT_OF_RANGE",
                                           "UNIMPLEMENTED",
                                           "INTERNAL",
                                           "UNAVAILABLE",
                                           "DATA_LOSS",
                                           "UNAUTHENTICATED"};
  const int code = static_cast<int>(st.error_code());
  return absl::StrCat(code >= 0 && code <= 16 ? kNames[code] : "UNKNOWN", ": ",
                      st.error_message());
}

}  // namespace

absl::StatusOr<std::unique_ptr<Uploader>> Uploader::Create(
    UploaderOptions options, BuildFn build) {
  if (options.collector.empty()) {
    return absl::InvalidArgumentError("--collector=HOST:PORT is required");
  }
  std::shared_ptr<grpc::ChannelCredentials> creds;
  if (options.insecure && !options.token_file.empty()) {
    return absl::InvalidArgumentError(
        "a service-account token is only sent over TLS (drop --insecure)");
  }
  if (options.insecure) {
    creds = grpc::InsecureChannelCredentials();
  } else {
    auto tls = transport::ClientCredentials(options.tls);
    if (!tls.ok()) return tls.status();
    creds = *tls;
    if (!options.token_file.empty()) {
      creds = grpc::CompositeChannelCredentials(
          creds, ServiceAccountTokenCredentials(options.token_file));
    }
  }
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 30'000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10'000);
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 60'000);
  if (!options.tls_server_name.empty()) {
    args.SetSslTargetNameOverride(options.tls_server_name);
  }
  auto channel = grpc::CreateCustomChannel(options.collector, creds, args);
  return CreateWithChannel(std::move(options), std::move(build),
                           std::move(channel));
}

std::unique_ptr<Uploader> Uploader::CreateWithChannel(
    UploaderOptions options, BuildFn build,
    std::shared_ptr<grpc::Channel> channel) {
  return std::unique_ptr<Uploader>(
      new Uploader(std::move(options), std::move(build), std::move(channel)));
}

Uploader::Uploader(UploaderOptions options, BuildFn build,
                   std::shared_ptr<grpc::Channel> channel)
    : options_(std::move(options)),
      build_(std::move(build)),
      channel_(std::move(channel)),
      stub_(wattlens::v1::IngestService::NewStub(channel_)),
      backoff_(options_.backoff_min),
      rng_(options_.seed != 0
               ? options_.seed
               : static_cast<uint64_t>(absl::ToUnixNanos(absl::Now()))) {}

Uploader::~Uploader() { Stop(absl::ZeroDuration()); }

void Uploader::Start() {
  started_ = true;
  sender_ = std::thread([this] { SenderLoop(); });
  if (options_.interval > absl::ZeroDuration()) {
    timer_ = std::thread([this] { TimerLoop(); });
  }
}

void Uploader::Stop(absl::Duration drain) {
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    draining_ = true;
    // Give the sender `drain` to get what is queued acknowledged.
    auto drained = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
      return outbox_.empty() || !stats_.connected;
    };
    if (started_ && drain > absl::ZeroDuration()) {
      mu_.AwaitWithTimeout(absl::Condition(&drained), drain);
    }
    stopping_ = true;
    if (active_ctx_ != nullptr) active_ctx_->TryCancel();
  }
  if (timer_.joinable()) timer_.join();
  if (sender_.joinable()) sender_.join();
  started_ = false;
}

void Uploader::CollectNow() {
  std::optional<wattlens::v1::NodeReport> r = build_();
  if (r) Enqueue(std::move(*r));
}

void Uploader::Enqueue(wattlens::v1::NodeReport report) {
  absl::MutexLock lock(&mu_);
  if (report.epoch() == last_queued_epoch_ &&
      report.sequence() <= last_queued_seq_) {
    ++stats_.skipped_unchanged;  // same snapshot as last time: nothing new
    return;
  }
  last_queued_epoch_ = report.epoch();
  last_queued_seq_ = report.sequence();
  report.mutable_health()->set_outbox_dropped_reports(stats_.outbox_dropped);
  report.mutable_health()->set_reconnects(stats_.reconnects);
  if (stats_.refused_dropped > 0) {
    auto* d = report.mutable_health()->add_drops();
    d->set_reason("report_refused");
    d->set_count(stats_.refused_dropped);
  }
  if (outbox_.size() >= options_.outbox_capacity) {
    // Oldest first: the newest report carries every count the dropped one
    // had (counters are cumulative), so only time resolution is lost.
    outbox_.pop_front();
    if (sent_ > 0) --sent_;
    ++stats_.outbox_dropped;
  }
  outbox_.push_back({std::move(report)});
  ++stats_.queued;
}

void Uploader::DropIfRefusedLocked() {
  // Acknowledgements come in order and the collector ends the stream at the
  // report it refuses, so the refused one is the oldest unacknowledged.
  if (outbox_.empty()) return;
  const auto& head = outbox_.front().report;
  if (head.epoch() == refused_epoch_ && head.sequence() == refused_seq_) {
    ++refusals_;
  } else {
    refused_epoch_ = head.epoch();
    refused_seq_ = head.sequence();
    refusals_ = 1;
  }
  if (refusals_ < options_.max_refusals) return;
  spdlog::error(
      "report (epoch {}, sequence {}) refused by the collector {} times, "
      "dropped: {}",
      head.epoch(), head.sequence(), refusals_, stats_.last_error);
  outbox_.pop_front();
  if (sent_ > 0) --sent_;
  ++stats_.refused_dropped;
  refusals_ = 0;
}

void Uploader::TimerLoop() {
  absl::MutexLock lock(&mu_);
  // A per-agent phase spreads a cluster's reports over the interval.
  absl::Duration wait =
      options_.jitter > absl::ZeroDuration()
          ? absl::Nanoseconds(rng_() %
                              absl::ToInt64Nanoseconds(options_.interval))
          : absl::ZeroDuration();
  while (!stopping_) {
    mu_.AwaitWithTimeout(absl::Condition(&stopping_), wait);
    if (stopping_) break;
    mu_.Unlock();
    CollectNow();
    mu_.Lock();
    wait = options_.interval;
    if (options_.jitter > absl::ZeroDuration()) {
      wait +=
          absl::Nanoseconds(rng_() % absl::ToInt64Nanoseconds(options_.jitter));
    }
  }
}

absl::Duration Uploader::NextBackoff() {
  absl::MutexLock lock(&mu_);
  const double j = options_.backoff_jitter;
  std::uniform_real_distribution<double> dist(1 - j, 1 + j);
  const absl::Duration d = backoff_ * dist(rng_);
  backoff_ = std::min(backoff_ * 2, options_.backoff_max);
  return d;
}

void Uploader::SenderLoop() {
  bool first = true;
  for (;;) {
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) return;
      // Connect only when there is something to send.
      auto ready = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
        return stopping_ || !outbox_.empty();
      };
      mu_.Await(absl::Condition(&ready));
      if (stopping_) return;
      if (!first) ++stats_.reconnects;
    }
    first = false;
    grpc::Status st = RunStream();
    {
      absl::MutexLock lock(&mu_);
      stats_.connected = false;
      if (stopping_) return;
      if (!st.ok()) {
        ++stats_.stream_failures;
        stats_.last_error = StatusText(st);
      }
      if (st.error_code() == grpc::StatusCode::INVALID_ARGUMENT) {
        DropIfRefusedLocked();
      }
    }
    if (!st.ok()) {
      spdlog::warn("upload stream to {} ended: {}", options_.collector,
                   StatusText(st));
    }
    const absl::Duration wait = NextBackoff();
    absl::MutexLock lock(&mu_);
    mu_.AwaitWithTimeout(absl::Condition(&stopping_), wait);
  }
}

grpc::Status Uploader::RunStream() {
  grpc::ClientContext ctx;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return grpc::Status::CANCELLED;
    active_ctx_ = &ctx;
    sent_ = 0;  // resend every unacknowledged report on a new stream
    stream_broken_ = false;
  }
  std::unique_ptr<grpc::ClientReaderWriter<UploadRequest, UploadResponse>>
      stream = stub_->Upload(&ctx);

  std::thread reader([this, &stream] {
    UploadResponse ack;
    while (stream->Read(&ack)) {
      if (options_.on_acked) options_.on_acked(ack.epoch(), ack.acked_sequence());
      absl::MutexLock lock(&mu_);
      stats_.connected = true;
      backoff_ = options_.backoff_min;  // the collector is back
      ++stats_.acked;
      if (ack.duplicate()) ++stats_.duplicates;
      if (ack.epoch() > stats_.last_acked_epoch ||
          (ack.epoch() == stats_.last_acked_epoch &&
           ack.acked_sequence() > stats_.last_acked_sequence)) {
        stats_.last_acked_epoch = ack.epoch();
        stats_.last_acked_sequence = ack.acked_sequence();
      }
      // Acks come in order: drop every report they cover.
      while (!outbox_.empty()) {
        const auto& r = outbox_.front().report;
        const bool covered =
            r.epoch() < ack.epoch() ||
            (r.epoch() == ack.epoch() && r.sequence() <= ack.acked_sequence());
        if (!covered || sent_ == 0) break;
        outbox_.pop_front();
        --sent_;
      }
    }
    absl::MutexLock lock(&mu_);
    stream_broken_ = true;
  });

  for (;;) {
    UploadRequest req;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
        return stopping_ || stream_broken_ || sent_ < outbox_.size();
      };
      mu_.Await(absl::Condition(&ready));
      if (stopping_ || stream_broken_) break;
      *req.mutable_report() = outbox_[sent_].report;
      ++sent_;
      ++stats_.sent;
    }
    if (!stream->Write(req)) break;
  }
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) {
      ctx.TryCancel();
    } else {
      // The server ended the stream (a failed write means it is over too):
      // WritesDone lets Finish return the server's status. Cancelling here
      // would replace the collector's reason (e.g. UNAUTHENTICATED) with
      // CANCELLED.
    }
  }
  stream->WritesDone();
  reader.join();
  grpc::Status st = stream->Finish();
  absl::MutexLock lock(&mu_);
  active_ctx_ = nullptr;
  return st;
}

UploaderStats Uploader::stats() const {
  absl::MutexLock lock(&mu_);
  UploaderStats s = stats_;
  s.outbox_size = outbox_.size();
  return s;
}

bool Uploader::WaitForAcked(uint64_t epoch, uint64_t sequence,
                            absl::Duration timeout) const {
  absl::MutexLock lock(&mu_);
  auto done = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    return stats_.last_acked_epoch > epoch ||
           (stats_.last_acked_epoch == epoch &&
            stats_.last_acked_sequence >= sequence);
  };
  return mu_.AwaitWithTimeout(absl::Condition(&done), timeout);
}

bool Uploader::WaitForStreamFailures(uint64_t n, absl::Duration timeout) const {
  absl::MutexLock lock(&mu_);
  auto done = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    return stats_.stream_failures >= n;
  };
  return mu_.AwaitWithTimeout(absl::Condition(&done), timeout);
}

}  // namespace wattlens
