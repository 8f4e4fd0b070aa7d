// SPDX-License-Identifier: Apache-2.0
// Fuzz entry points, one per parser that takes untrusted input. Each is
// built as a libFuzzer binary when WATTLENS_FUZZ=ON (clang), and replayed
// over tests/fuzz/corpus by a gtest in every normal build, so gcc builds
// exercise the same code and invariants.
#pragma once

#include <cstddef>
#include <cstdint>

namespace wattlens::fuzz {

// Each returns 0, and traps when a parser invariant is broken.
int FuzzCgroupPath(const uint8_t* data, size_t size);
int FuzzImageReference(const uint8_t* data, size_t size);
int FuzzK8sJson(const uint8_t* data, size_t size);

}  // namespace wattlens::fuzz

// Defines LLVMFuzzerTestOneInput for one entry point in a fuzzer binary.
#define WATTLENS_FUZZ_MAIN(fn)                                              \
  extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) { \
    return ::wattlens::fuzz::fn(data, size);                                \
  }
