// SPDX-License-Identifier: Apache-2.0
#include "collector/ingest_service.h"

#include <algorithm>
#include <deque>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "proto/transport/tls.h"
#include "spdlog/spdlog.h"

namespace wattlens::collector {

using wattlens::v1::UploadRequest;
using wattlens::v1::UploadResponse;

// Lifetime: gRPC calls OnDone once, after Finish and every started operation
// completed; Finish is only called when no store commit is outstanding, so no
// commit callback can outlive the reactor.
class UploadReactor final
    : public grpc::ServerBidiReactor<UploadRequest, UploadResponse> {
 public:
  UploadReactor(IngestServiceImpl& svc, grpc::CallbackServerContext* ctx)
      : svc_(svc), ctx_(ctx) {
    svc_.counters_.active_streams.fetch_add(1);
    svc_.counters_.streams_total.fetch_add(1);
    if (svc_.options_.require_peer_identity) {
      auto auth = ctx_->auth_context();
      if (auth) identities_ = transport::PeerIdentities(*auth);
      if (identities_.empty()) {
        Reject(RejectReason::kNoClientCertificate,
               grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                            "a client certificate naming the node is "
                            "required"));
        return;
      }
      if (svc_.options_.node_tokens) {
        VerifyNodeToken();
        return;
      }
    }
    StartRead(&request_);
  }

  // The certificate proved "a Wattlens agent"; the node is the one the
  // service-account token names. Reading starts only once it is known.
  void VerifyNodeToken() {
    std::string token;
    const auto& md = ctx_->client_metadata();
    if (auto it = md.find("authorization"); it != md.end()) {
      token = BearerToken(std::string(it->second.data(), it->second.size()));
    }
    identities_.clear();
    if (token.empty()) {
      Reject(RejectReason::kNoNodeToken,
             grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                          "a service-account token naming the node is "
                          "required (authorization: Bearer)"));
      return;
    }
    svc_.options_.node_tokens->Verify(
        std::move(token), [this](absl::StatusOr<std::string> node) {
          if (!node.ok()) {
            Reject(RejectReason::kNoNodeToken,
                   grpc::Status(absl::IsUnauthenticated(node.status())
                                    ? grpc::StatusCode::UNAUTHENTICATED
                                    : grpc::StatusCode::UNAVAILABLE,
                                std::string(node.status().message())));
            return;
          }
          identities_ = {*node};
          StartRead(&request_);
        });
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      absl::MutexLock lock(&mu_);
      read_done_ = true;
      MaybeFinishLocked();
      return;
    }
    Handle();
  }

  void OnWriteDone(bool ok) override {
    absl::MutexLock lock(&mu_);
    pending_.pop_front();
    if (!ok) {
      broken_ = true;
      pending_.clear();
    }
    if (!pending_.empty() && !broken_) {
      StartWrite(&pending_.front());
    } else {
      writing_ = false;
    }
    if (paused_ && unacked_ < svc_.options_.max_unacked_per_stream &&
        !read_done_) {
      paused_ = false;
      StartRead(&request_);
    }
    MaybeFinishLocked();
  }

  void OnDone() override {
    svc_.counters_.active_streams.fetch_sub(1);
    delete this;
  }

 private:
  void Handle() {
    const size_t bytes = request_.ByteSizeLong();
    if (bytes > svc_.options_.limits.max_report_bytes) {
      Reject(RejectReason::kOversized,
             grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          absl::StrCat("report of ", bytes,
                                       " bytes exceeds the limit of ",
                                       svc_.options_.limits.max_report_bytes)));
      return;
    }
    // A workload the collector cannot take is left out and counted; the
    // rest of the report still counts (one odd cgroup must not blind the
    // node).
    if (absl::StatusOr<size_t> st = ValidateAndFilterReport(
            *request_.mutable_report(), svc_.options_.limits,
            &svc_.counters_.refused_workloads);
        !st.ok()) {
      Reject(RejectReason::kMalformed,
             grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          std::string(st.status().message())));
      return;
    }
    const wattlens::v1::NodeReport& report = request_.report();
    if (svc_.options_.require_peer_identity) {
      bool match = false;
      for (const auto& id : identities_) {
        match = match || transport::IdentityMatchesNode(id, report.node_name());
      }
      if (!match) {
        Reject(
            RejectReason::kIdentityMismatch,
            grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                         absl::StrCat("report for node \"", report.node_name(),
                                      "\" but the client certificate is "
                                      "for: ",
                                      absl::StrJoin(identities_, ", "))));
        return;
      }
    }
    if (node_.empty()) {
      node_ = report.node_name();
    } else if (node_ != report.node_name()) {
      Reject(RejectReason::kNodeChanged,
             grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                          absl::StrCat("stream started for node \"", node_,
                                       "\" cannot report for \"",
                                       report.node_name(), "\"")));
      return;
    }
    const uint64_t epoch = report.epoch();
    const uint64_t seq = report.sequence();
    // Validated up to year 9999: beyond int64 nanoseconds from 2262 on.
    const int64_t report_ns =
        std::min<int64_t>(report.time().seconds(), 9'000'000'000) *
            1'000'000'000 +
        report.time().nanos();
    bool submitted = false;
    ApplyResult res;
    if (svc_.store_ != nullptr) {
      res = svc_.state_.Apply(report, [&](NodeWrite&& w) {
        submitted = true;
        {
          absl::MutexLock lock(&mu_);
          ++outstanding_;
          ++unacked_;
        }
        svc_.store_->Submit(std::move(w), [this, epoch, seq,
                                           report_ns](const absl::Status& st) {
          OnCommitted(epoch, seq, report_ns, /*duplicate=*/false, st);
        });
      });
      if (res.duplicate) {
        // Already applied, but maybe not yet durable (its commit is queued,
        // or failing and being retried): the acknowledgement waits for
        // every write queued before this point, the original's included.
        // Apply saw the original's effect under the node's lock, so its
        // write is already in the store's queue.
        submitted = true;
        {
          absl::MutexLock lock(&mu_);
          ++outstanding_;
          ++unacked_;
        }
        svc_.store_->SubmitBarrier(
            [this, epoch, seq, report_ns](const absl::Status& st) {
              OnCommitted(epoch, seq, report_ns, /*duplicate=*/true, st);
            });
      }
    } else {
      res = svc_.state_.Apply(report, nullptr);
    }
    absl::MutexLock lock(&mu_);
    if (!submitted) {
      ObserveLag(report_ns);
      UploadResponse ack;
      ack.set_epoch(epoch);
      ack.set_acked_sequence(seq);
      ack.set_duplicate(res.duplicate);
      QueueLocked(std::move(ack));
    }
    if (unacked_ >= svc_.options_.max_unacked_per_stream) {
      paused_ = true;  // OnWriteDone resumes reading
    } else {
      StartRead(&request_);
    }
  }

  void ObserveLag(int64_t report_ns) {
    const double lag =
        static_cast<double>(svc_.clock_.RealtimeNs() - report_ns) / 1e9;
    svc_.counters_.lag.Observe(lag < 0 ? 0 : lag);
  }

  void OnCommitted(uint64_t epoch, uint64_t seq, int64_t report_ns,
                   bool duplicate, const absl::Status& st) {
    if (st.ok()) ObserveLag(report_ns);
    absl::MutexLock lock(&mu_);
    --outstanding_;
    --unacked_;
    if (!st.ok()) {
      svc_.counters_.rejected.Inc(RejectReason::kStoreError);
      if (!finish_status_) {
        finish_status_ =
            grpc::Status(grpc::StatusCode::UNAVAILABLE,
                         absl::StrCat("store: ", std::string(st.message())));
      }
    } else if (!finish_status_) {
      UploadResponse ack;
      ack.set_epoch(epoch);
      ack.set_acked_sequence(seq);
      ack.set_duplicate(duplicate);
      QueueLocked(std::move(ack));
    }
    MaybeFinishLocked();
  }

  void QueueLocked(UploadResponse ack) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (broken_ || finished_) return;
    pending_.push_back(std::move(ack));
    if (!writing_) {
      writing_ = true;
      StartWrite(&pending_.front());
    }
  }

  void Reject(RejectReason reason, grpc::Status status) {
    svc_.counters_.rejected.Inc(reason);
    spdlog::warn("ingest from {}: rejected ({}): {}", ctx_->peer(),
                 RejectReasonName(reason), status.error_message());
    absl::MutexLock lock(&mu_);
    if (!finish_status_) finish_status_ = std::move(status);
    read_done_ = true;  // no further reads are started
    MaybeFinishLocked();
  }

  void MaybeFinishLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finished_ || outstanding_ > 0 || writing_) return;
    if (!read_done_ && !broken_ && !finish_status_) return;
    // With broken_ a read may still be outstanding: Finish cancels it.
    finished_ = true;
    Finish(finish_status_.value_or(grpc::Status::OK));
  }

  IngestServiceImpl& svc_;
  grpc::CallbackServerContext* const ctx_;
  std::vector<std::string> identities_;
  std::string node_;
  UploadRequest request_;

  absl::Mutex mu_;
  std::deque<UploadResponse> pending_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool read_done_ ABSL_GUARDED_BY(mu_) = false;
  bool broken_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  bool paused_ ABSL_GUARDED_BY(mu_) = false;
  int outstanding_ ABSL_GUARDED_BY(mu_) = 0;
  int unacked_ ABSL_GUARDED_BY(mu_) = 0;
  std::optional<grpc::Status> finish_status_ ABSL_GUARDED_BY(mu_);
};

grpc::ServerBidiReactor<UploadRequest, UploadResponse>*
IngestServiceImpl::Upload(grpc::CallbackServerContext* context) {
  return new UploadReactor(*this, context);
}

}  // namespace wattlens::collector
