// SPDX-License-Identifier: Apache-2.0
#include "agent/bpf/map_reader.h"

#include <bpf/bpf.h>
#include <errno.h>
#include <sched.h>

#include <string>

#include "agent/bpf/abi.h"
#include "agent/common/status_macros.h"

namespace wattlens {
namespace {

size_t Round8(size_t n) { return (n + 7) & ~size_t{7}; }

}  // namespace

absl::Status ForEachMapEntry(
    int map_fd, size_t key_size, size_t value_size, bool per_cpu, int ncpus,
    size_t max_entries,
    const std::function<void(const void* key, const void* values)>& fn,
    MapReadStats* stats) {
  const size_t stride = per_cpu ? Round8(value_size) * ncpus : value_size;
  MapReadStats local;
  // Batch path. A hash map's batch walk is per bucket; `batch` must hold at
  // least one bucket's entries, so ask for generous chunks.
  const uint32_t chunk = std::min<size_t>(max_entries ? max_entries : 1, 4096);
  std::vector<unsigned char> keys(key_size * chunk);
  std::vector<unsigned char> values(stride * chunk);
  uint64_t in_batch = 0, out_batch = 0;  // opaque bucket cursor (8 bytes)
  bool first = true;
  bool batch_ok = true;
  for (;;) {
    uint32_t count = chunk;
    LIBBPF_OPTS(bpf_map_batch_opts, opts);
    int err =
        bpf_map_lookup_batch(map_fd, first ? nullptr : &in_batch, &out_batch,
                             keys.data(), values.data(), &count, &opts);
    int e = err ? errno : 0;
    if (err && e != ENOENT) {
      if (first &&
          (e == EINVAL || e == ENOTSUP || e == EOPNOTSUPP || e == ENOSYS)) {
        batch_ok = false;  // old kernel: fall back to per-key reads
        break;
      }
      if (e == ENOSPC) {
        return absl::ErrnoToStatus(e,
                                   "bpf map batch lookup: bucket larger than "
                                   "chunk");
      }
      return absl::ErrnoToStatus(e, "bpf map batch lookup");
    }
    for (uint32_t i = 0; i < count; ++i) {
      fn(keys.data() + i * key_size, values.data() + i * stride);
    }
    local.entries += count;
    local.used_batch = true;
    if (err) break;  // ENOENT: walked the whole map
    in_batch = out_batch;
    first = false;
  }
  if (!batch_ok) {
    std::vector<unsigned char> key(key_size), next(key_size), value(stride);
    const void* prev = nullptr;
    while (bpf_map_get_next_key(map_fd, prev, next.data()) == 0) {
      if (bpf_map_lookup_elem(map_fd, next.data(), value.data()) == 0) {
        fn(next.data(), value.data());
        ++local.entries;
      }  // else: deleted between the two calls
      key.swap(next);
      prev = key.data();
    }
  }
  if (stats) *stats = local;
  return absl::OkStatus();
}

absl::Status FlushPerCpuCaches(int prog_fd, int ncpus, int* offline_cpus) {
  // Busy lasts nanoseconds (microseconds when the interrupted program is
  // itself flushing a way): retry, yielding now and then.
  constexpr int kAttempts = 10000;
  int offline = 0;
  for (int cpu = 0; cpu < ncpus; ++cpu) {
    for (int attempt = 0;; ++attempt) {
      LIBBPF_OPTS(bpf_test_run_opts, opts, .flags = BPF_F_TEST_RUN_ON_CPU,
                  .cpu = static_cast<uint32_t>(cpu));
      if (bpf_prog_test_run_opts(prog_fd, &opts) != 0) {
        if (errno == ENXIO) {  // possible but offline
          ++offline;
          break;
        }
        return absl::ErrnoToStatus(errno, "flushing a per-CPU cache");
      }
      if (opts.retval != WL_FLUSH_BUSY) break;
      if (attempt == kAttempts) {
        return absl::UnavailableError("flushing a per-CPU cache: CPU " +
                                      std::to_string(cpu) + " stayed busy");
      }
      if (attempt % 64 == 63) sched_yield();
    }
  }
  if (offline_cpus) *offline_cpus = offline;
  return absl::OkStatus();
}

absl::Status DeleteMapKeys(int map_fd, const void* keys, size_t key_size,
                           size_t count) {
  const auto* p = static_cast<const unsigned char*>(keys);
  for (size_t i = 0; i < count; ++i) {
    // Per-key deletes: batch delete stops at the first missing key, and a
    // key may legitimately be gone already.
    if (bpf_map_delete_elem(map_fd, p + i * key_size) != 0 && errno != ENOENT) {
      return absl::ErrnoToStatus(errno, "bpf map delete");
    }
  }
  return absl::OkStatus();
}

}  // namespace wattlens
