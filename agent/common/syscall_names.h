// SPDX-License-Identifier: Apache-2.0
// Syscall number -> name for the build machine's native ABI, generated at
// build time from <asm/unistd.h> (scripts/gen-syscall-names.sh).
#pragma once

#include <cstdint>
#include <string>

namespace wattlens {

// The name ("getppid"), or "syscall_<nr>" for numbers the headers at build
// time did not know (a newer kernel).
std::string SyscallName(uint32_t nr);
// Number of names in the generated table.
size_t SyscallTableSize();

}  // namespace wattlens
