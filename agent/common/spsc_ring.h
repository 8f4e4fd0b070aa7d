// SPDX-License-Identifier: Apache-2.0
// A bounded, lock-free, single-producer single-consumer ring buffer.
//
// The producer (e.g. the BPF ring-buffer reader thread) must never block on
// the consumer: TryPush fails when full and the caller counts a drop. Indices
// are free-running 64-bit counters (they never wrap in practice); capacity is
// a power of two so the slot is index & mask. Each side caches the other
// side's index to touch the shared cache line only when it must.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <optional>
#include <type_traits>

namespace wattlens {

template <typename T>
class SpscRing {
  static_assert(std::is_nothrow_move_constructible_v<T>);
  static_assert(std::is_default_constructible_v<T>);

 public:
  // Capacity is rounded up to a power of two (at least 2).
  explicit SpscRing(size_t min_capacity)
      : capacity_(RoundUp(min_capacity)),
        mask_(capacity_ - 1),
        slots_(std::make_unique<T[]>(capacity_)) {}

  SpscRing(const SpscRing&) = delete;
  SpscRing& operator=(const SpscRing&) = delete;

  // Producer side. Returns false (and leaves `v` untouched) when full.
  bool TryPush(T v) {
    const uint64_t head = head_.load(std::memory_order_relaxed);
    if (head - tail_cache_ >= capacity_) {
      tail_cache_ = tail_.load(std::memory_order_acquire);
      if (head - tail_cache_ >= capacity_) {
        dropped_.fetch_add(1, std::memory_order_relaxed);
        return false;
      }
    }
    slots_[head & mask_] = std::move(v);
    head_.store(head + 1, std::memory_order_release);
    return true;
  }

  // Consumer side. Returns nullopt when empty.
  std::optional<T> TryPop() {
    const uint64_t tail = tail_.load(std::memory_order_relaxed);
    if (tail == head_cache_) {
      head_cache_ = head_.load(std::memory_order_acquire);
      if (tail == head_cache_) return std::nullopt;
    }
    std::optional<T> out(std::move(slots_[tail & mask_]));
    tail_.store(tail + 1, std::memory_order_release);
    return out;
  }

  // Consumer side: pops up to `max` items into `fn`; returns how many.
  template <typename Fn>
  size_t Drain(Fn&& fn, size_t max = SIZE_MAX) {
    size_t n = 0;
    while (n < max) {
      std::optional<T> v = TryPop();
      if (!v) break;
      fn(std::move(*v));
      ++n;
    }
    return n;
  }

  size_t capacity() const { return capacity_; }
  // Approximate when called concurrently with push/pop.
  size_t SizeApprox() const {
    return head_.load(std::memory_order_acquire) -
           tail_.load(std::memory_order_acquire);
  }
  // Pushes refused because the ring was full.
  uint64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }

 private:
  static size_t RoundUp(size_t n) {
    size_t c = 2;
    while (c < n) c <<= 1;
    return c;
  }

  static constexpr size_t kLine = 64;

  const size_t capacity_;
  const size_t mask_;
  std::unique_ptr<T[]> slots_;

  alignas(kLine) std::atomic<uint64_t> head_{0};  // written by producer
  uint64_t tail_cache_ = 0;                       // producer's view of tail
  alignas(kLine) std::atomic<uint64_t> tail_{0};  // written by consumer
  uint64_t head_cache_ = 0;                       // consumer's view of head
  alignas(kLine) std::atomic<uint64_t> dropped_{0};
};

}  // namespace wattlens
