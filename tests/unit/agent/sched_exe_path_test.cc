// SPDX-License-Identifier: Apache-2.0
// The executable path as sched.bpf.c writes it (names leaf first, each
// NUL-terminated) back into a path; a truncated one is not used.
#include <cstring>
#include <string>

#include "agent/bpf/sched_program.h"
#include "gtest/gtest.h"

namespace wattlens {
namespace {

wl_exe_path Wire(const std::string& names, bool truncated = false) {
  wl_exe_path p{};
  std::memcpy(p.names, names.data(), names.size());
  p.len = static_cast<uint32_t>(names.size());
  p.truncated = truncated ? 1 : 0;
  return p;
}

TEST(ExePathFromWireTest, ReversesTheNames) {
  using namespace std::string_literals;
  EXPECT_EQ(ExePathFromWire(Wire("stress-ng\0bin\0usr\0"s)),
            "/usr/bin/stress-ng");
  EXPECT_EQ(ExePathFromWire(Wire("init\0"s)), "/init");
}

TEST(ExePathFromWireTest, TruncatedOrEmptyIsNotAPath) {
  using namespace std::string_literals;
  EXPECT_EQ(ExePathFromWire(Wire("x\0deep\0"s, true)), std::nullopt);
  EXPECT_EQ(ExePathFromWire(Wire("")), std::nullopt);
  wl_exe_path bad = Wire("a\0"s);
  bad.len = sizeof(bad.names) + 1;
  EXPECT_EQ(ExePathFromWire(bad), std::nullopt);
}

}  // namespace
}  // namespace wattlens
