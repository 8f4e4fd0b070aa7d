// SPDX-License-Identifier: Apache-2.0
#include "agent/common/syscall_names.h"

#include <string_view>
#include <utility>

#include "absl/container/flat_hash_map.h"

namespace wattlens {
namespace {

const absl::flat_hash_map<uint32_t, std::string_view>& Table() {
  static const auto* table =
      new absl::flat_hash_map<uint32_t, std::string_view>{
#include "syscall_names_generated.inc"
      };
  return *table;
}

}  // namespace

std::string SyscallName(uint32_t nr) {
  auto it = Table().find(nr);
  if (it != Table().end()) return std::string(it->second);
  return "syscall_" + std::to_string(nr);
}

size_t SyscallTableSize() { return Table().size(); }

}  // namespace wattlens
