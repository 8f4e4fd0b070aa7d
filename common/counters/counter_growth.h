// SPDX-License-Identifier: Apache-2.0
// Growth of cumulative counters between two readings: the one rule for
// turning counters into interval sums and rates, in the agent (state,
// series, node API, live view) and in the collector (ingest).
//
// A counter never goes backwards while its source lives, so a reading below
// the previous one means the source started again from zero (an agent
// restart, a kernel map entry deleted and recreated): all of the new reading
// is growth. A 64-bit wrap cannot be told apart from a restart and takes
// centuries at any real rate, so it is read as one: the result may
// undercount, but never jumps by nearly 2^64.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace wattlens {

// True when `cur` is below `prev`: the counter restarted.
constexpr bool CounterRestarted(uint64_t prev, uint64_t cur) {
  return cur < prev;
}

// Growth from `prev` to `cur`. A counter first seen passes prev = 0 when it
// is known to have counted from zero (then all of it is growth); callers
// that cannot know that skip the first reading instead.
constexpr uint64_t CounterGrowth(uint64_t prev, uint64_t cur) {
  return CounterRestarted(prev, cur) ? cur : cur - prev;
}

// Growth since `last`, which then becomes `cur`.
constexpr uint64_t AdvanceCounter(uint64_t& last, uint64_t cur) {
  const uint64_t growth = CounterGrowth(last, cur);
  last = cur;
  return growth;
}

// Growth of a record whose counters restart together (one kernel map
// entry): when any field went back the whole record is new, so every field's
// growth is its whole value, even those that happen to be above their old
// one. `out` has the size of `prev` and `cur`. Returns true on a restart.
inline bool RecordGrowth(std::span<const uint64_t> prev,
                         std::span<const uint64_t> cur,
                         std::span<uint64_t> out) {
  bool restarted = false;
  for (size_t i = 0; i < cur.size(); ++i) {
    restarted |= CounterRestarted(prev[i], cur[i]);
  }
  for (size_t i = 0; i < cur.size(); ++i) {
    out[i] = restarted ? cur[i] : cur[i] - prev[i];
  }
  return restarted;
}

}  // namespace wattlens
