// SPDX-License-Identifier: Apache-2.0
// Injected time: production code asks a Clock, tests advance a FakeClock.
#pragma once

#include <time.h>

#include <atomic>
#include <cstdint>

namespace wattlens {

class Clock {
 public:
  virtual ~Clock() = default;
  // CLOCK_MONOTONIC nanoseconds: the clock bpf_ktime_get_ns() uses.
  virtual int64_t MonotonicNs() const = 0;
  // Wall-clock nanoseconds since the Unix epoch, for timestamps users see.
  virtual int64_t RealtimeNs() const = 0;
};

class RealClock final : public Clock {
 public:
  int64_t MonotonicNs() const override { return Read(CLOCK_MONOTONIC); }
  int64_t RealtimeNs() const override { return Read(CLOCK_REALTIME); }
  static const Clock& Get() {
    static const RealClock clock;
    return clock;
  }

 private:
  static int64_t Read(clockid_t id) {
    timespec ts;
    clock_gettime(id, &ts);
    return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
  }
};

class FakeClock final : public Clock {
 public:
  explicit FakeClock(int64_t start_ns = 1'000'000'000) : now_(start_ns) {}
  int64_t MonotonicNs() const override { return now_.load(); }
  int64_t RealtimeNs() const override {
    return now_.load() + 1'700'000'000'000'000'000;
  }
  void AdvanceNs(int64_t ns) { now_ += ns; }

 private:
  std::atomic<int64_t> now_;
};

}  // namespace wattlens
