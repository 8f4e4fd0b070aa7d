// SPDX-License-Identifier: Apache-2.0
// Reads whole BPF hash maps with BPF_MAP_LOOKUP_BATCH (one syscall per
// batch instead of two per key), falling back to get_next_key + lookup on
// kernels or map types without batch support. Per-CPU values are summed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <vector>

#include "absl/status/status.h"

namespace wattlens {

struct MapReadStats {
  size_t entries = 0;
  bool used_batch = false;
};

// Raw reader: calls `fn(key_ptr, values_ptr)` for every entry, where
// values_ptr points at `value_stride * ncpus` bytes for per-CPU maps (each
// CPU's value padded to 8 bytes) or one value otherwise.
absl::Status ForEachMapEntry(
    int map_fd, size_t key_size, size_t value_size, bool per_cpu, int ncpus,
    size_t max_entries,
    const std::function<void(const void* key, const void* values)>& fn,
    MapReadStats* stats);

// Runs `prog_fd` (the flush program of a per-CPU cache,
// bpf/include/percpu_cache.bpf.h) on each of CPUs 0..ncpus-1 through
// BPF_PROG_TEST_RUN with BPF_F_TEST_RUN_ON_CPU, retrying while it returns
// WL_FLUSH_BUSY (it interrupted a program using the cache on that CPU).
// Offline CPUs are skipped and counted in `offline_cpus`.
absl::Status FlushPerCpuCaches(int prog_fd, int ncpus,
                               int* offline_cpus = nullptr);

// Deletes `keys` (contiguous, key_size each). Missing keys are not an error.
absl::Status DeleteMapKeys(int map_fd, const void* keys, size_t key_size,
                           size_t count);

// Typed convenience for per-CPU maps: V must be a struct of u64 fields (or a
// u64); the per-CPU copies are summed field by field.
template <typename K, typename V>
absl::Status ReadPerCpuMap(int map_fd, int ncpus, size_t max_entries,
                           const std::function<void(const K&, const V&)>& fn,
                           MapReadStats* stats) {
  static_assert(sizeof(V) % sizeof(uint64_t) == 0);
  return ForEachMapEntry(
      map_fd, sizeof(K), sizeof(V), /*per_cpu=*/true, ncpus, max_entries,
      [&](const void* kp, const void* vp) {
        K key;
        std::memcpy(&key, kp, sizeof(K));
        constexpr size_t kWords = sizeof(V) / sizeof(uint64_t);
        uint64_t sum[kWords] = {};
        const auto* bytes = static_cast<const unsigned char*>(vp);
        for (int cpu = 0; cpu < ncpus; ++cpu) {
          uint64_t word[kWords];
          std::memcpy(word, bytes + cpu * sizeof(V), sizeof(V));
          for (size_t i = 0; i < kWords; ++i) sum[i] += word[i];
        }
        V value;
        std::memcpy(&value, sum, sizeof(V));
        fn(key, value);
      },
      stats);
}

}  // namespace wattlens
