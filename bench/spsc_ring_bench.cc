// SPDX-License-Identifier: Apache-2.0
// Throughput of wattlens::SpscRing (agent/common/spsc_ring.h), the bounded
// queue between the BPF ring-buffer reader thread and the aggregator.
//
// Two shapes:
//  * BM_PushPop: one thread pushes a burst then pops it. The cost of the ring
//    itself (index arithmetic, slot copy, cached-index refresh) without any
//    cross-core traffic.
//  * BM_ProducerConsumer: a producer thread and a consumer thread, pinned to
//    different CPUs when at least two are allowed. Measures items/s through
//    the ring including cache-line transfers; the producer spins when the
//    ring is full (counted as full_retries per item).
// Both run for uint64_t and for a 56-byte record, the size of a lifecycle
// event (struct wl_event in bpf/shared/wattlens_abi.h); the two-thread case
// also runs that record padded to 64 bytes, to show what slots that share a
// cache line cost.
//
// Every popped item is checked against the expected sequence number, so a
// reordering or loss bug fails the benchmark instead of flattering it.

#include <benchmark/benchmark.h>
#include <pthread.h>
#include <sched.h>

#include <atomic>
#include <cstdint>
#include <optional>
#include <thread>
#include <vector>

#include "agent/common/spsc_ring.h"

namespace wattlens {
namespace {

// Mirrors the size of struct wl_event without depending on the ABI header,
// which may grow; the benchmark is about 56-byte moves, not the layout.
struct Record56 {
  uint64_t seq = 0;
  uint64_t fields[6] = {};
};
static_assert(sizeof(Record56) == 56);

// The same payload padded to a cache line: neighbouring slots then never
// share a line, which isolates what false sharing between the producer's
// slot and the consumer's slot costs the 56-byte case.
struct alignas(64) Record56Padded {
  uint64_t seq = 0;
  uint64_t fields[6] = {};
};
static_assert(sizeof(Record56Padded) == 64);

template <typename T>
T Make(uint64_t seq);
template <>
uint64_t Make<uint64_t>(uint64_t seq) {
  return seq;
}
template <>
Record56 Make<Record56>(uint64_t seq) {
  Record56 r;
  r.seq = seq;
  r.fields[0] = seq;
  return r;
}

template <>
Record56Padded Make<Record56Padded>(uint64_t seq) {
  Record56Padded r;
  r.seq = seq;
  r.fields[0] = seq;
  return r;
}

uint64_t SeqOf(uint64_t v) { return v; }
uint64_t SeqOf(const Record56& r) { return r.seq; }
uint64_t SeqOf(const Record56Padded& r) { return r.seq; }

inline void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#else
  std::this_thread::yield();
#endif
}

std::vector<int> AllowedCpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  std::vector<int> cpus;
  if (sched_getaffinity(0, sizeof(set), &set) != 0) return cpus;
  for (int c = 0; c < CPU_SETSIZE; ++c)
    if (CPU_ISSET(c, &set)) cpus.push_back(c);
  return cpus;
}

bool PinThread(pthread_t thread, int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  return pthread_setaffinity_np(thread, sizeof(set), &set) == 0;
}

// Restores the calling thread's CPU mask when the benchmark ends, so pinning
// in one benchmark does not leak into the next.
class AffinityGuard {
 public:
  AffinityGuard() {
    CPU_ZERO(&saved_);
    ok_ = pthread_getaffinity_np(pthread_self(), sizeof(saved_), &saved_) == 0;
  }
  ~AffinityGuard() {
    if (ok_) pthread_setaffinity_np(pthread_self(), sizeof(saved_), &saved_);
  }
  AffinityGuard(const AffinityGuard&) = delete;
  AffinityGuard& operator=(const AffinityGuard&) = delete;

 private:
  cpu_set_t saved_;
  bool ok_ = false;
};

// Args: {capacity, burst}.
template <typename T>
void BM_PushPop(benchmark::State& state) {
  const auto burst = static_cast<uint64_t>(state.range(1));
  SpscRing<T> ring(static_cast<size_t>(state.range(0)));
  if (burst > ring.capacity()) {
    state.SkipWithError("burst larger than capacity");
    return;
  }
  uint64_t next_push = 0;
  uint64_t next_pop = 0;
  bool ok = true;
  for (auto _ : state) {
    for (uint64_t i = 0; i < burst; ++i)
      ok &= ring.TryPush(Make<T>(next_push++));
    for (uint64_t i = 0; i < burst; ++i) {
      std::optional<T> v = ring.TryPop();
      ok &= v.has_value() && SeqOf(*v) == next_pop++;
      benchmark::DoNotOptimize(v);
    }
    if (!ok) {
      state.SkipWithError("ring lost or reordered an item");
      break;
    }
  }
  state.SetItemsProcessed(static_cast<int64_t>(next_pop));
  state.SetBytesProcessed(static_cast<int64_t>(next_pop * sizeof(T)));
}

// Args: {capacity, pin (1 = producer and consumer on different CPUs)}.
template <typename T>
void BM_ProducerConsumer(benchmark::State& state) {
  // Items per benchmark iteration: large enough that the end-of-iteration
  // hand-shake (waiting for the consumer to catch up) is amortised.
  constexpr uint64_t kPerIteration = 1 << 16;
  const bool want_pin = state.range(1) != 0;
  SpscRing<T> ring(static_cast<size_t>(state.range(0)));
  AffinityGuard guard;

  const std::vector<int> cpus = AllowedCpus();
  const bool pin = want_pin && cpus.size() >= 2;
  if (want_pin && !pin) {
    state.SkipWithError("pinning needs two allowed CPUs");
    return;
  }

  alignas(64) std::atomic<uint64_t> consumed{0};
  alignas(64) std::atomic<bool> done{false};
  std::atomic<bool> bad_order{false};

  std::thread consumer([&] {
    uint64_t expect = 0;
    auto take = [&](T v) {
      if (SeqOf(v) != expect) bad_order.store(true, std::memory_order_relaxed);
      ++expect;
      benchmark::DoNotOptimize(v);
    };
    while (!done.load(std::memory_order_acquire)) {
      if (ring.Drain(take, 256) > 0) {
        consumed.store(expect, std::memory_order_release);
      } else {
        CpuRelax();
      }
    }
  });
  if (pin && (!PinThread(pthread_self(), cpus[0]) ||
              !PinThread(consumer.native_handle(), cpus[1]))) {
    done.store(true, std::memory_order_release);
    consumer.join();
    state.SkipWithError("pthread_setaffinity_np failed");
    return;
  }

  uint64_t seq = 0;
  for (auto _ : state) {
    const uint64_t end = seq + kPerIteration;
    while (seq < end) {
      if (ring.TryPush(Make<T>(seq))) {
        ++seq;
      } else {
        CpuRelax();
      }
    }
    // The iteration ends when every item has arrived, not when it was
    // queued, so items/s is end-to-end throughput.
    while (consumed.load(std::memory_order_acquire) < end) CpuRelax();
  }
  done.store(true, std::memory_order_release);
  consumer.join();

  if (bad_order.load()) state.SkipWithError("ring lost or reordered an item");
  state.SetItemsProcessed(static_cast<int64_t>(seq));
  state.SetBytesProcessed(static_cast<int64_t>(seq * sizeof(T)));
  // TryPush counts every refused push as a drop; here each is a retry.
  state.counters["full_retries_per_item"] =
      seq ? static_cast<double>(ring.dropped()) / static_cast<double>(seq) : 0;
  state.counters["pinned"] = pin ? 1 : 0;
}

BENCHMARK_TEMPLATE(BM_PushPop, uint64_t)
    ->ArgNames({"capacity", "burst"})
    ->Args({1024, 1})
    ->Args({1024, 64})
    ->Args({65536, 1024});
BENCHMARK_TEMPLATE(BM_PushPop, Record56)
    ->ArgNames({"capacity", "burst"})
    ->Args({1024, 1})
    ->Args({1024, 64})
    ->Args({65536, 1024});

BENCHMARK_TEMPLATE(BM_ProducerConsumer, uint64_t)
    ->ArgNames({"capacity", "pin"})
    ->Args({1024, 1})
    ->Args({65536, 1})
    ->Args({65536, 0})
    ->UseRealTime();
BENCHMARK_TEMPLATE(BM_ProducerConsumer, Record56)
    ->ArgNames({"capacity", "pin"})
    ->Args({1024, 1})
    ->Args({65536, 1})
    ->Args({65536, 0})
    ->UseRealTime();
BENCHMARK_TEMPLATE(BM_ProducerConsumer, Record56Padded)
    ->ArgNames({"capacity", "pin"})
    ->Args({1024, 1})
    ->Args({65536, 1})
    ->UseRealTime();

}  // namespace
}  // namespace wattlens

BENCHMARK_MAIN();
