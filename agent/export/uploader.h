// SPDX-License-Identifier: Apache-2.0
// Streams this node's reports to the collector (IngestService.Upload).
//
// Every upload interval (plus a per-agent phase and per-send jitter, so a
// cluster's agents do not report in lockstep) the uploader asks `build` for a
// report from the latest snapshot and puts it in a bounded outbox. A sender
// thread streams the outbox in order and drops each report once the collector
// acknowledges it. While the collector is away the outbox keeps the newest
// reports (the oldest are dropped and counted); reconnects back off
// exponentially with jitter (1 s .. 60 s, factor 2). Counters are cumulative
// per epoch, so a dropped report loses no counts: the next one carries them.
// A report the collector refuses as invalid (INVALID_ARGUMENT) max_refusals
// times leaves the outbox, counted, so it cannot hold back every report
// behind it.
// Must not depend on: collector/.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "proto/transport/tls.h"
#include "wattlens/v1/ingest.grpc.pb.h"

namespace wattlens {

struct UploaderOptions {
  std::string collector;  // host:port (--collector)
  bool insecure = false;  // plaintext (--insecure); else mTLS with `tls`
  transport::TlsFiles tls;
  // With TLS: a projected service-account token sent with every stream, for
  // a collector with --node_identity=token (agent/export/token_credentials.h).
  std::string token_file;
  // Expected name in the collector's certificate (default: the host part).
  std::string tls_server_name;
  // Zero: no timer; reports are queued only by CollectNow() (tests).
  absl::Duration interval = absl::Seconds(10);
  // Each send waits interval + uniform[0, jitter).
  absl::Duration jitter = absl::Seconds(1);
  size_t outbox_capacity = 360;
  absl::Duration backoff_min = absl::Seconds(1);
  absl::Duration backoff_max = absl::Seconds(60);
  double backoff_jitter = 0.2;  // +-20 %
  uint64_t seed = 0;            // jitter seed (0: from the clock)
  int max_refusals = 3;
  // Runs on the stream's reader thread after each acknowledgement (epoch,
  // acked sequence), in order; what it makes durable is what the collector
  // has applied.
  std::function<void(uint64_t epoch, uint64_t sequence)> on_acked;
};

struct UploaderStats {
  uint64_t queued = 0;             // reports put in the outbox
  uint64_t sent = 0;               // writes on a stream (resends included)
  uint64_t acked = 0;              // reports acknowledged
  uint64_t duplicates = 0;         // acknowledged as already applied
  uint64_t outbox_dropped = 0;     // oldest reports dropped from a full outbox
  uint64_t refused_dropped = 0;    // dropped after max_refusals refusals
  uint64_t skipped_unchanged = 0;  // build returned an already-queued sequence
  uint64_t reconnects = 0;         // streams (re)opened after the first
  uint64_t stream_failures = 0;    // streams that ended with an error
  size_t outbox_size = 0;
  bool connected = false;
  uint64_t last_acked_epoch = 0;
  uint64_t last_acked_sequence = 0;
  std::string last_error;  // last stream status, e.g. "PERMISSION_DENIED: .."
};

class Uploader {
 public:
  using BuildFn = std::function<std::optional<wattlens::v1::NodeReport>()>;

  static absl::StatusOr<std::unique_ptr<Uploader>> Create(
      UploaderOptions options, BuildFn build);
  // For tests: a channel made by the caller (e.g. in-process).
  static std::unique_ptr<Uploader> CreateWithChannel(
      UploaderOptions options, BuildFn build,
      std::shared_ptr<grpc::Channel> channel);
  ~Uploader();

  void Start();
  // Sends what is queued (bounded by `drain`), then closes the stream.
  void Stop(absl::Duration drain = absl::Seconds(2));

  // Builds a report now and queues it (the timer does this every interval).
  void CollectNow();
  // Queues a report directly.
  void Enqueue(wattlens::v1::NodeReport report);

  UploaderStats stats() const;
  // Waits until (epoch, sequence) or a later report is acknowledged.
  bool WaitForAcked(uint64_t epoch, uint64_t sequence,
                    absl::Duration timeout) const;
  // Waits until the current stream has ended with an error (tests).
  bool WaitForStreamFailures(uint64_t n, absl::Duration timeout) const;

 private:
  Uploader(UploaderOptions options, BuildFn build,
           std::shared_ptr<grpc::Channel> channel);
  void TimerLoop();
  void SenderLoop();
  // One stream: returns its final status.
  grpc::Status RunStream();
  absl::Duration NextBackoff();
  void DropIfRefusedLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const UploaderOptions options_;
  const BuildFn build_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<wattlens::v1::IngestService::Stub> stub_;

  mutable absl::Mutex mu_;
  struct Entry {
    wattlens::v1::NodeReport report;
  };
  std::deque<Entry> outbox_ ABSL_GUARDED_BY(mu_);
  // Entries [0, sent_) of outbox_ were written on the current stream.
  size_t sent_ ABSL_GUARDED_BY(mu_) = 0;
  bool stream_broken_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool draining_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t last_queued_epoch_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t last_queued_seq_ ABSL_GUARDED_BY(mu_) = 0;
  // The outbox head the collector last refused, and how many times.
  uint64_t refused_epoch_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t refused_seq_ ABSL_GUARDED_BY(mu_) = 0;
  int refusals_ ABSL_GUARDED_BY(mu_) = 0;
  UploaderStats stats_ ABSL_GUARDED_BY(mu_);
  grpc::ClientContext* active_ctx_ ABSL_GUARDED_BY(mu_) = nullptr;
  absl::Duration backoff_ ABSL_GUARDED_BY(mu_);
  std::mt19937_64 rng_ ABSL_GUARDED_BY(mu_);
  bool started_ = false;
  std::thread timer_;
  std::thread sender_;
};

}  // namespace wattlens
