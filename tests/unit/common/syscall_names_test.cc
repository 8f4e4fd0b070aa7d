// SPDX-License-Identifier: Apache-2.0
#include "agent/common/syscall_names.h"

#include <sys/syscall.h>

#include "gtest/gtest.h"

namespace wattlens {
namespace {

TEST(SyscallNamesTest, GeneratedFromSystemHeaders) {
  EXPECT_GT(SyscallTableSize(), 300u);
  EXPECT_EQ(SyscallName(SYS_getppid), "getppid");
  EXPECT_EQ(SyscallName(SYS_read), "read");
  EXPECT_EQ(SyscallName(SYS_exit_group), "exit_group");
}

TEST(SyscallNamesTest, UnknownNumbersGetAStableName) {
  EXPECT_EQ(SyscallName(9999), "syscall_9999");
}

}  // namespace
}  // namespace wattlens
