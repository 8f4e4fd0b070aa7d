// The collector reloads its certificates when their files change: new
// connections get the new certificate, verified against the new CA, without
// a restart. Certificates are made with the openssl CLI in temp dirs.
#include <unistd.h>

#include <filesystem>

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
  ASSERT_TRUE(
      MakeTestCertificates(old_ca, "wattlens-old-ca", {"collector", "cli"}));
  ASSERT_TRUE(
      MakeTestCertificates(new_ca, "wattlens-new-ca", {"collector", "cli"}));
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

}  // namespace
}  // namespace wattlens::testing
