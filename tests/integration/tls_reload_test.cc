// SPDX-License-Identifier: Apache-2.0
// The collector reloads its certificates when their files change: new
// connections get the new certificate, verified against the new CA, without
// a restart. Files are checked before use: a bad one at start is a clear
// error, a bad one on reload is refused and counted while the previous
// material keeps serving. Certificates are made with the openssl CLI in temp
// dirs.
#include <unistd.h>

#include <ctime>
#include <filesystem>
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "proto/transport/tls.h"
#include "tests/integration/cluster_harness.h"
#include "wattlens/v1/query.grpc.pb.h"

namespace wattlens::testing {
namespace {

namespace fs = std::filesystem;

// Whether a brand-new TLS connection that trusts `ca` (and presents
// `identity` from the same dir) can call the collector.
bool Connects(const std::string& target, const fs::path& dir,
              const std::string& identity) {
  static int attempt = 0;
  transport::TlsFiles f;
  f.ca = (dir / "ca.crt").string();
  f.cert = (dir / (identity + ".crt")).string();
  f.key = (dir / (identity + ".key")).string();
  auto creds = transport::ClientCredentials(f);
  if (!creds.ok()) return false;
  grpc::ChannelArguments args;
  args.SetSslTargetNameOverride("collector");
  args.SetInt("wattlens.test.attempt", ++attempt);  // no connection reuse
  auto stub = wattlens::v1::QueryService::NewStub(
      grpc::CreateCustomChannel(target, *creds, args));
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(3)));
  wattlens::v1::ListNodesResponse nodes;
  return stub->ListNodes(&ctx, {}, &nodes).ok();
}

TEST(TlsReloadTest, CollectorServesNewCertificatesAfterFilesChange) {
  const fs::path root =
      fs::temp_directory_path() / absl::StrCat("wattlens-reload-", getpid());
  const fs::path live = root / "live", old_ca = root / "old",
                 new_ca = root / "new";
  for (const auto& d : {live, old_ca, new_ca}) fs::create_directories(d);
  ASSERT_TRUE(MakeTestCertificates(old_ca, "wattlens-old-ca",
                                   {"collector:none", "cli:reader"}));
  ASSERT_TRUE(MakeTestCertificates(new_ca, "wattlens-new-ca",
                                   {"collector:none", "cli:reader"}));
  for (const char* f : {"collector.crt", "collector.key", "ca.crt"}) {
    fs::copy_file(old_ca / f, live / f);
  }

  collector::CollectorOptions o;
  o.listen_address = "127.0.0.1:0";
  o.metrics_address = "";
  o.tls = {(live / "collector.crt").string(), (live / "collector.key").string(),
           (live / "ca.crt").string(), /*refresh_seconds=*/1};
  o.tick_period = absl::ZeroDuration();
  FakeClock clock(1'000'000'000'000);
  auto c = collector::Collector::Start(o, clock);
  ASSERT_TRUE(c.ok()) << c.status();
  const std::string target = absl::StrCat("127.0.0.1:", (*c)->port());

  EXPECT_TRUE(Connects(target, old_ca, "cli"));
  EXPECT_FALSE(Connects(target, new_ca, "cli"));

  // Rotate: write the new files next to the live ones, then rename them in,
  // as a Secret update or cert-manager does.
  for (const char* f : {"collector.crt", "collector.key", "ca.crt"}) {
    fs::copy_file(new_ca / f, live / (std::string(f) + ".tmp"));
    fs::rename(live / (std::string(f) + ".tmp"), live / f);
  }
  // Await the condition (bounded): a fresh connection trusting the new CA.
  bool rotated = false;
  for (absl::Time deadline = absl::Now() + absl::Seconds(20);
       !rotated && absl::Now() < deadline;) {
    rotated = Connects(target, new_ca, "cli");
    if (!rotated) absl::SleepFor(absl::Milliseconds(200));
  }
  EXPECT_TRUE(rotated) << "new certificates not served within 20 s";
  EXPECT_FALSE(Connects(target, old_ca, "cli"))
      << "a client of the old CA still gets through after the rotation";
  fs::remove_all(root);
}

std::string Slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void Spit(const fs::path& p, const std::string& data) {
  std::ofstream(p, std::ios::binary | std::ios::trunc) << data;
}

uint64_t ReloadErrors(const std::string& reason) {
  const auto stats = transport::GetTlsStats();
  auto it = stats.reload_errors.find(reason);
  return it == stats.reload_errors.end() ? 0 : it->second;
}

class TlsFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ =
        fs::temp_directory_path() /
        absl::StrCat(
            "wattlens-tlsfiles-", getpid(), "-",
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    fs::create_directories(root_ / "good");
    fs::create_directories(root_ / "live");
    ASSERT_TRUE(MakeTestCertificates(root_ / "good", "wattlens-test-ca",
                                     {"collector:none", "cli:reader"}));
    for (const char* f : {"collector.crt", "collector.key", "ca.crt"}) {
      fs::copy_file(root_ / "good" / f, root_ / "live" / f);
    }
  }
  void TearDown() override { fs::remove_all(root_); }

  transport::TlsFiles Live(unsigned refresh = 1) const {
    return {(root_ / "live/collector.crt").string(),
            (root_ / "live/collector.key").string(),
            (root_ / "live/ca.crt").string(), refresh};
  }
  absl::StatusOr<std::unique_ptr<collector::Collector>> Start() {
    collector::CollectorOptions o;
    o.listen_address = "127.0.0.1:0";
    o.metrics_address = "";
    o.tls = Live();
    o.tick_period = absl::ZeroDuration();
    return collector::Collector::Start(o, clock_);
  }

  fs::path root_;
  FakeClock clock_{1'000'000'000'000};
};

TEST_F(TlsFilesTest, BadFilesAtStartAreClearErrors) {
  const std::string cert = Slurp(root_ / "good/collector.crt");
  const std::string key = Slurp(root_ / "good/collector.key");
  const std::string ca = Slurp(root_ / "good/ca.crt");
  struct Case {
    const char* file;
    std::string content;
    const char* expect;
  };
  const Case cases[] = {
      {"collector.crt", "", "is empty"},
      {"collector.crt", cert.substr(0, cert.size() / 2),
       "holds no PEM certificate"},
      {"collector.key", key.substr(0, key.size() / 2),
       "holds no PEM private key"},
      {"collector.key", Slurp(root_ / "good/cli.key"), "does not match"},
      {"ca.crt", "garbage\n", "holds no PEM certificate"},
      {"ca.crt", cert, "not a CA"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(absl::StrCat(c.file, " -> ", c.expect));
    Spit(root_ / "live" / c.file, c.content);
    auto started = Start();
    ASSERT_FALSE(started.ok());
    EXPECT_NE(started.status().message().find(c.expect), std::string::npos)
        << started.status();
    EXPECT_NE(started.status().message().find(c.file), std::string::npos)
        << started.status();
    Spit(root_ / "live" / c.file, c.file == std::string("ca.crt") ? ca
                                  : c.file == std::string("collector.crt")
                                      ? cert
                                      : key);
  }
  EXPECT_TRUE(Start().ok());
}

TEST_F(TlsFilesTest, ExpiredAndNotYetValidCertificatesAreRefused) {
  const int64_t now = std::time(nullptr);
  std::string reason;
  EXPECT_TRUE(transport::CheckTlsFiles(Live(), true, now, &reason).ok());
  // The test certificates are valid for 2 days from their making.
  absl::Status st =
      transport::CheckTlsFiles(Live(), true, now + 3 * 86400, &reason);
  EXPECT_FALSE(st.ok());
  EXPECT_EQ(reason, "bad_ca") << st;  // the CA expires with the leaf
  st = transport::CheckTlsFiles(Live(), true, now - 86400, &reason);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("not yet valid"), std::string::npos) << st;
}

TEST_F(TlsFilesTest, BadFileOnReloadKeepsTheOldMaterialAndIsCounted) {
  auto c = Start();
  ASSERT_TRUE(c.ok()) << c.status();
  const std::string target = absl::StrCat("127.0.0.1:", (*c)->port());
  ASSERT_TRUE(Connects(target, root_ / "good", "cli"));
  const uint64_t bad_pem = ReloadErrors("bad_pem");
  const uint64_t mismatch = ReloadErrors("key_mismatch");

  // A rotation caught half-way: a truncated certificate written in place.
  const std::string cert = Slurp(root_ / "good/collector.crt");
  Spit(root_ / "live/collector.crt", cert.substr(0, cert.size() / 3));
  bool counted = false;
  for (absl::Time deadline = absl::Now() + absl::Seconds(10);
       !counted && absl::Now() < deadline;) {
    counted = ReloadErrors("bad_pem") > bad_pem;
    if (!counted) absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_TRUE(counted) << "a truncated certificate was not refused";
  // gRPC reads the staged copy every second: give it two periods to pick up
  // anything it should not have.
  absl::SleepFor(absl::Seconds(2));
  EXPECT_TRUE(Connects(target, root_ / "good", "cli"))
      << "the collector stopped serving its previous certificate";

  // A key that belongs to another certificate.
  Spit(root_ / "live/collector.crt", cert);
  Spit(root_ / "live/collector.key", Slurp(root_ / "good/cli.key"));
  counted = false;
  for (absl::Time deadline = absl::Now() + absl::Seconds(10);
       !counted && absl::Now() < deadline;) {
    counted = ReloadErrors("key_mismatch") > mismatch;
    if (!counted) absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_TRUE(counted);
  EXPECT_TRUE(Connects(target, root_ / "good", "cli"));
}

}  // namespace
}  // namespace wattlens::testing
