// SPDX-License-Identifier: Apache-2.0
#include "agent/identity/quantity.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace wattlens::identity {
namespace {

TEST(QuantityTest, CpuMillis) {
  const std::vector<std::pair<std::string, int64_t>> cases = {
      {"250m", 250},    {"1", 1000},    {"1.5", 1500}, {"0.5", 500},
      {"2", 2000},      {"100m", 100},  {"0", 0},      {"0.0001", 1},
      {"1e3", 1000000}, {"1500u", 2},   {"+1", 1000},  {".5", 500},
      {"1.", 1000},     {"500000n", 1}, {"64", 64000}, {"1k", 1000000},
  };
  for (const auto& [q, want] : cases) {
    absl::StatusOr<int64_t> v = ParseCpuMillis(q);
    ASSERT_TRUE(v.ok()) << q << ": " << v.status();
    EXPECT_EQ(*v, want) << q;
  }
}

TEST(QuantityTest, Bytes) {
  const std::vector<std::pair<std::string, int64_t>> cases = {
      {"512Mi", 512LL << 20},
      {"1G", 1000000000},
      {"1Gi", 1LL << 30},
      {"1.5Gi", 3LL << 29},
      {"128974848", 128974848},
      {"129e6", 129000000},
      {"129M", 129000000},
      {"123Mi", 123LL << 20},
      {"2Ki", 2048},
      {"1Ti", 1LL << 40},
      {"1Pi", 1LL << 50},
      {"7Ei", 7LL << 60},
      {"1E", 1000000000000000000LL},
      {"0.5Ki", 512},
      {"1.1", 2},  // rounds up
      {"100m", 1},
      {"1E-3", 1},
      {"0Mi", 0},
  };
  for (const auto& [q, want] : cases) {
    absl::StatusOr<int64_t> v = ParseBytes(q);
    ASSERT_TRUE(v.ok()) << q << ": " << v.status();
    EXPECT_EQ(*v, want) << q;
  }
}

TEST(QuantityTest, Rejects) {
  for (const std::string& q :
       std::vector<std::string>{"", "-1", "abc", "1x", "1KiB", "Mi", ".",
                                "1..2", "1 Gi", "1e", "1e+", "1e1000", "1.2.3",
                                std::string(100, '1'), std::string("1\0", 2)}) {
    absl::StatusOr<int64_t> v = ParseBytes(q);
    EXPECT_FALSE(v.ok()) << q;
  }
  EXPECT_EQ(ParseBytes("8Ei").status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(ParseBytes("99999999999999999999").status().code(),
            absl::StatusCode::kOutOfRange);
  EXPECT_EQ(ParseCpuMillis("1e30").status().code(),
            absl::StatusCode::kOutOfRange);
}

}  // namespace
}  // namespace wattlens::identity
