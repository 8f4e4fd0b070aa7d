// SPDX-License-Identifier: Apache-2.0
// Runs the fuzz entry points over the seed corpus and a few hostile inputs
// in every build (gcc included), so a crash or broken invariant there fails
// the normal unit run, not only a clang fuzzing session.
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/fuzz/fuzz_targets.h"

namespace wattlens::fuzz {
namespace {

namespace fs = std::filesystem;

using Entry = int (*)(const uint8_t*, size_t);

int RunEntry(Entry fn, const std::string& s) {
  return fn(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}

size_t ReplayDir(Entry fn, const std::string& name) {
  fs::path dir = fs::path(WATTLENS_FUZZ_CORPUS_DIR) / name;
  size_t n = 0;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (!e.is_regular_file()) continue;
    std::ifstream f(e.path(), std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    std::string s = ss.str();
    EXPECT_EQ(RunEntry(fn, s), 0) << e.path();
    // Every prefix too: truncated input is the commonest corruption.
    for (size_t len = 0; len < s.size(); len += 1 + s.size() / 64) {
      RunEntry(fn, s.substr(0, len));
    }
    ++n;
  }
  return n;
}

std::vector<std::string> Hostile() {
  return {"",
          std::string(1, '\0'),
          std::string(5000, '/'),
          std::string(100000, 'a'),
          std::string(3000, '['),
          std::string(3000, '{') + std::string(3000, '}'),
          "\xff\xfe\xfd",
          "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"uid\":\"u\","
          "\"name\":\"n\"},\"spec\":{\"containers\":[{\"name\":\"c\","
          "\"resources\":{\"limits\":{\"memory\":\"99999999Ei\"}}}]}}}"};
}

TEST(FuzzCorpusReplayTest, CgroupPath) {
  EXPECT_GT(ReplayDir(&FuzzCgroupPath, "cgroup_path"), 5u);
  for (const std::string& s : Hostile()) RunEntry(&FuzzCgroupPath, s);
}

TEST(FuzzCorpusReplayTest, ImageReference) {
  EXPECT_GT(ReplayDir(&FuzzImageReference, "image_reference"), 5u);
  for (const std::string& s : Hostile()) RunEntry(&FuzzImageReference, s);
}

TEST(FuzzCorpusReplayTest, K8sJson) {
  EXPECT_GT(ReplayDir(&FuzzK8sJson, "k8s_json"), 3u);
  for (const std::string& s : Hostile()) RunEntry(&FuzzK8sJson, s);
}

}  // namespace
}  // namespace wattlens::fuzz
