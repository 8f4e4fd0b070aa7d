// SPDX-License-Identifier: Apache-2.0
#include "proto/transport/tls.h"

#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>
#include <utility>

#include "absl/base/call_once.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "grpc/support/log.h"
#include "grpcpp/security/tls_certificate_provider.h"
#include "grpcpp/security/tls_credentials_options.h"

// gRPC's own log writer (libgpr, C++ linkage): the handshake hook forwards to
// it so gRPC's log output is unchanged.
void gpr_default_log(gpr_log_func_args* args);

namespace wattlens::transport {
namespace {

// ---------------------------------------------------------------- counters

class Stats {
 public:
  static Stats& Get() {
    static Stats* s = new Stats();  // read by gRPC's threads until exit
    return *s;
  }
  void Reload(const std::string& reason) {
    absl::MutexLock lock(&mu_);
    ++stats_.reload_errors[reason];
  }
  void Handshake(const std::string& reason, std::string detail) {
    absl::MutexLock lock(&mu_);
    ++stats_.handshake_errors[reason];
    stats_.last_handshake_error = std::move(detail);
  }
  TlsStats Snapshot() {
    absl::MutexLock lock(&mu_);
    return stats_;
  }

 private:
  absl::Mutex mu_;
  TlsStats stats_ ABSL_GUARDED_BY(mu_);
};

// OpenSSL's reason text as gRPC logs it ("...:certificate verify failed")
// mapped to a bounded label. Order matters: the specific ones first.
struct HandshakeReason {
  const char* needle;
  const char* reason;
  const char* meaning;
};
constexpr HandshakeReason kHandshakeReasons[] = {
    {"peer did not return a certificate", "no_client_certificate",
     "the client sent no certificate"},
    {"certificate required", "no_client_certificate",
     "the server requires a client certificate and none was sent"},
    {"certificate expired", "certificate_expired",
     "the peer rejected a certificate as expired"},
    {"certificate has expired", "certificate_expired",
     "a certificate has expired"},
    {"unknown ca", "unknown_ca",
     "the peer does not trust the CA that signed the certificate"},
    {"certificate verify failed", "certificate_verify_failed",
     "the peer's certificate did not verify against the CA"},
    {"bad certificate", "bad_certificate", "the peer rejected the certificate"},
    {"unsupported certificate", "bad_certificate",
     "the peer rejected the certificate (wrong key usage?)"},
    {"wrong version number", "not_tls", "the peer does not speak TLS"},
    {"http request", "not_tls", "the peer does not speak TLS"},
    {"packet length too long", "not_tls", "the peer does not speak TLS"},
    {"record layer failure", "not_tls", "the peer does not speak TLS"},
    {"handshake failure", "handshake_failure",
     "TLS parameters could not be agreed"},
};

bool IsHandshakeFailureLog(absl::string_view msg) {
  // Server side: "Handshake failed with fatal error SSL_ERROR_SSL: ...".
  // Client side under TLS 1.3 the server's verdict arrives as an alert after
  // the client finished, logged from OpenSSL's error stack.
  return absl::StrContains(msg, "andshake failed") ||
         (absl::StrContains(msg, "SSL routines") &&
          absl::StrContains(msg, "alert"));
}

void HandshakeLogHook(gpr_log_func_args* args) {
  const absl::string_view msg = args->message ? args->message : "";
  if (IsHandshakeFailureLog(msg)) {
    const char* reason = "other";
    const char* meaning = "TLS handshake failed";
    for (const HandshakeReason& r : kHandshakeReasons) {
      if (absl::StrContains(msg, r.needle)) {
        reason = r.reason;
        meaning = r.meaning;
        break;
      }
    }
    Stats::Get().Handshake(reason, absl::StrCat(meaning, " (", reason, ")"));
  }
  gpr_default_log(args);
}

// ---------------------------------------------------------------- checks

absl::StatusOr<std::string> ReadWhole(const std::string& what,
                                      const std::string& path,
                                      std::string* reason) {
  if (path.empty()) {
    if (reason) *reason = "unreadable";
    return absl::InvalidArgumentError(
        absl::StrCat("TLS ", what, " file not set (or pass --insecure)"));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in.good()) {
    if (reason) *reason = "unreadable";
    return absl::NotFoundError(
        absl::StrCat("TLS ", what, " file ", path, " is not readable"));
  }
  std::stringstream ss;
  ss << in.rdbuf();
  if (ss.str().empty()) {
    if (reason) *reason = "empty";
    return absl::InvalidArgumentError(
        absl::StrCat("TLS ", what, " file ", path, " is empty"));
  }
  return ss.str();
}

struct BioDeleter {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct X509Deleter {
  void operator()(X509* x) const { X509_free(x); }
};
struct KeyDeleter {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using X509Ptr = std::unique_ptr<X509, X509Deleter>;

std::vector<X509Ptr> ParseCerts(const std::string& pem) {
  std::unique_ptr<BIO, BioDeleter> bio(
      BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  std::vector<X509Ptr> out;
  while (X509* x = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
    out.emplace_back(x);
  }
  return out;
}

// Within [notBefore, notAfter] at `now`; else the reason.
const char* ValidityProblem(const X509* x, int64_t now) {
  const time_t t = static_cast<time_t>(now);
  if (ASN1_TIME_cmp_time_t(X509_get0_notAfter(x), t) < 0) return "expired";
  if (ASN1_TIME_cmp_time_t(X509_get0_notBefore(x), t) > 0) {
    return "not_yet_valid";
  }
  return nullptr;
}

absl::Status Fail(std::string* reason_out, const char* reason,
                  std::string message) {
  if (reason_out) *reason_out = reason;
  return absl::InvalidArgumentError(std::move(message));
}

absl::Status CheckCa(const std::string& path, const std::string& pem,
                     int64_t now, std::string* reason) {
  std::vector<X509Ptr> cas = ParseCerts(pem);
  if (cas.empty()) {
    return Fail(
        reason, "bad_ca",
        absl::StrCat("TLS CA file ", path, " holds no PEM certificate"));
  }
  for (const X509Ptr& ca : cas) {
    if (X509_check_ca(ca.get()) < 1) {
      return Fail(reason, "bad_ca",
                  absl::StrCat("TLS CA file ", path,
                               " holds a certificate that is not a CA"));
    }
    if (const char* p = ValidityProblem(ca.get(), now)) {
      return Fail(
          reason, "bad_ca",
          absl::StrCat(
              "TLS CA file ", path, ": a CA certificate is ",
              absl::string_view(p) == "expired" ? "expired" : "not yet valid"));
    }
  }
  return absl::OkStatus();
}

struct Material {
  std::string cert, key, ca;
  bool operator==(const Material& o) const {
    return cert == o.cert && key == o.key && ca == o.ca;
  }
};

absl::StatusOr<Material> LoadChecked(const TlsFiles& f, bool with_identity,
                                     int64_t now, std::string* reason) {
  Material m;
  auto ca = ReadWhole("CA", f.ca, reason);
  if (!ca.ok()) return ca.status();
  m.ca = std::move(ca).value();
  if (absl::Status st = CheckCa(f.ca, m.ca, now, reason); !st.ok()) return st;
  if (!with_identity) return m;
  auto cert = ReadWhole("certificate", f.cert, reason);
  if (!cert.ok()) return cert.status();
  m.cert = std::move(cert).value();
  auto key = ReadWhole("key", f.key, reason);
  if (!key.ok()) return key.status();
  m.key = std::move(key).value();

  std::vector<X509Ptr> chain = ParseCerts(m.cert);
  if (chain.empty()) {
    return Fail(reason, "bad_pem",
                absl::StrCat("TLS certificate file ", f.cert,
                             " holds no PEM certificate"));
  }
  std::unique_ptr<BIO, BioDeleter> kb(
      BIO_new_mem_buf(m.key.data(), static_cast<int>(m.key.size())));
  std::unique_ptr<EVP_PKEY, KeyDeleter> pkey(
      PEM_read_bio_PrivateKey(kb.get(), nullptr, nullptr, nullptr));
  if (!pkey) {
    return Fail(
        reason, "bad_pem",
        absl::StrCat("TLS key file ", f.key, " holds no PEM private key"));
  }
  if (X509_check_private_key(chain.front().get(), pkey.get()) != 1) {
    return Fail(reason, "key_mismatch",
                absl::StrCat("TLS key file ", f.key,
                             " does not match the certificate in ", f.cert));
  }
  if (const char* p = ValidityProblem(chain.front().get(), now)) {
    return Fail(
        reason, p,
        absl::StrCat(
            "TLS certificate ", f.cert, " is ",
            absl::string_view(p) == "expired" ? "expired" : "not yet valid"));
  }
  return m;
}

// ---------------------------------------------------------------- staging

absl::Status WriteAtomically(const std::string& path, const std::string& data) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << data;
    out.flush();
    if (!out.good()) {
      return absl::InternalError(absl::StrCat("cannot write ", tmp));
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    return absl::InternalError(absl::StrCat("cannot rename ", tmp));
  }
  return absl::OkStatus();
}

// Copies checked material from the configured files into a private
// directory gRPC watches, re-checking every refresh period. Lives until the
// process exits: gRPC channels and servers keep reading the staged files
// after the C++ credential objects are gone.
class Stage {
 public:
  Stage(TlsFiles files, bool with_identity)
      : files_(std::move(files)), with_identity_(with_identity) {}

  ~Stage() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
    if (!dir_.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(dir_, ec);
    }
  }

  absl::Status Start() {
    std::string reason;
    auto m = LoadChecked(files_, with_identity_, std::time(nullptr), &reason);
    if (!m.ok()) return m.status();
    if (absl::Status st = MakeDir(); !st.ok()) return st;
    if (absl::Status st = Publish(*m); !st.ok()) return st;
    thread_ = std::thread([this] { Loop(); });
    return absl::OkStatus();
  }

  std::string cert() const { return dir_ + "/cert.pem"; }
  std::string key() const { return dir_ + "/key.pem"; }
  std::string ca() const { return dir_ + "/ca.pem"; }

 private:
  absl::Status MakeDir() {
    std::vector<std::string> bases;
    if (const char* t = std::getenv("TMPDIR"); t != nullptr && *t) {
      bases.push_back(t);
    }
    // A tmpfs: key material stays in memory; writable in containers whose
    // root filesystem is read-only.
    bases.push_back("/dev/shm");
    bases.push_back("/tmp");
    for (const std::string& b : bases) {
      std::string tmpl = b + "/wattlens-tls-XXXXXX";
      if (char* d = mkdtemp(tmpl.data()); d != nullptr) {
        dir_ = d;
        return absl::OkStatus();
      }
    }
    return absl::FailedPreconditionError(
        "cannot create a private directory for TLS material under $TMPDIR, "
        "/dev/shm or /tmp");
  }

  absl::Status Publish(const Material& m) {
    // Key before certificate: gRPC re-reads when either file's mtime moves,
    // and the CA last so a new CA never pairs with an old leaf for long.
    if (with_identity_) {
      if (absl::Status st = WriteAtomically(key(), m.key); !st.ok()) {
        return st;
      }
      if (absl::Status st = WriteAtomically(cert(), m.cert); !st.ok()) {
        return st;
      }
    }
    if (absl::Status st = WriteAtomically(ca(), m.ca); !st.ok()) return st;
    published_ = m;
    return absl::OkStatus();
  }

  void Loop() {
    std::unique_lock<std::mutex> lock(mu_);
    while (!stopping_) {
      cv_.wait_for(lock, std::chrono::seconds(files_.refresh_seconds),
                   [this] { return stopping_; });
      if (stopping_) return;
      lock.unlock();
      Refresh();
      lock.lock();
    }
  }

  void Refresh() {
    std::string reason;
    auto m = LoadChecked(files_, with_identity_, std::time(nullptr), &reason);
    if (m.ok()) {
      rejected_ = {};
      if (*m == published_) return;
      if (absl::Status st = Publish(*m); !st.ok()) {
        Stats::Get().Reload("stage");
        std::fprintf(stderr, "TLS reload: %s\n",
                     std::string(st.message()).c_str());
      }
      return;
    }
    // Count each bad state once, not once per refresh period.
    const std::string seen = std::string(m.status().message());
    if (seen == rejected_) return;
    rejected_ = seen;
    Stats::Get().Reload(reason);
    std::fprintf(stderr,
                 "TLS reload refused, still using the previous material: "
                 "%s\n",
                 seen.c_str());
  }

  const TlsFiles files_;
  const bool with_identity_;
  std::string dir_;
  Material published_;
  std::string rejected_;  // message of the refused state last counted
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;
};

// One stage per set of files for the life of the process (see Stage).
absl::StatusOr<Stage*> StageFor(const TlsFiles& f, bool with_identity) {
  static absl::Mutex mu(absl::kConstInit);
  static auto* stages =
      new absl::flat_hash_map<std::string, std::unique_ptr<Stage>>();
  const std::string key = absl::StrCat(f.cert, "\n", f.key, "\n", f.ca, "\n",
                                       f.refresh_seconds, with_identity);
  absl::MutexLock lock(&mu);
  if (auto it = stages->find(key); it != stages->end()) {
    return it->second.get();
  }
  auto stage = std::make_unique<Stage>(f, with_identity);
  if (absl::Status st = stage->Start(); !st.ok()) return st;
  Stage* raw = stage.get();
  (*stages)[key] = std::move(stage);
  return raw;
}

}  // namespace

absl::Status CheckTlsFiles(const TlsFiles& files, bool with_identity,
                           int64_t now_unix, std::string* reason) {
  return LoadChecked(files, with_identity, now_unix, reason).status();
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> ServerCredentials(
    const TlsFiles& f) {
  WatchHandshakeFailures();
  auto stage = StageFor(f, /*with_identity=*/true);
  if (!stage.ok()) return stage.status();
  auto provider =
      std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
          (*stage)->key(), (*stage)->cert(), (*stage)->ca(), f.refresh_seconds);
  grpc::experimental::TlsServerCredentialsOptions options(provider);
  options.watch_root_certs();
  options.watch_identity_key_cert_pairs();
  // Authenticate before HTTP/2: a peer without a certificate the CA signed
  // never gets past the handshake, so no handler, stream or thread is spent
  // on it.
  options.set_cert_request_type(
      GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  return grpc::experimental::TlsServerCredentials(options);
}

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> ClientCredentials(
    const TlsFiles& f) {
  WatchHandshakeFailures();
  const bool with_identity = !f.cert.empty() || !f.key.empty();
  auto stage = StageFor(f, with_identity);
  if (!stage.ok()) return stage.status();
  auto provider = with_identity
                      ? std::make_shared<
                            grpc::experimental::FileWatcherCertificateProvider>(
                            (*stage)->key(), (*stage)->cert(), (*stage)->ca(),
                            f.refresh_seconds)
                      : std::make_shared<
                            grpc::experimental::FileWatcherCertificateProvider>(
                            (*stage)->ca(), f.refresh_seconds);
  grpc::experimental::TlsChannelCredentialsOptions options;
  options.set_certificate_provider(provider);
  options.watch_root_certs();
  if (with_identity) options.watch_identity_key_cert_pairs();
  return grpc::experimental::TlsCredentials(options);
}

PeerRole RoleOf(const grpc::AuthContext& auth) {
  bool agent = false, reader = false;
  for (const auto& v :
       auth.FindPropertyValues("x509_subject_alternative_name")) {
    const absl::string_view s(v.data(), v.size());
    agent = agent || s == kAgentRoleUri;
    reader = reader || s == kReaderRoleUri;
  }
  // Both roles in one certificate is a misissued certificate: no role.
  if (agent == reader) return PeerRole::kNone;
  return agent ? PeerRole::kAgent : PeerRole::kReader;
}

std::vector<std::string> PeerIdentities(const grpc::AuthContext& auth) {
  std::vector<std::string> out;
  if (RoleOf(auth) != PeerRole::kAgent) return out;
  for (const char* prop :
       {"x509_common_name", "x509_subject_alternative_name"}) {
    for (const auto& v : auth.FindPropertyValues(prop)) {
      std::string s(v.data(), v.size());
      // The role URI is not a node name.
      if (s.empty() || s == kAgentRoleUri) continue;
      // The CN is usually repeated as a DNS SAN.
      if (std::find(out.begin(), out.end(), s) == out.end()) {
        out.push_back(std::move(s));
      }
    }
  }
  return out;
}

bool IdentityMatchesNode(const std::string& id, const std::string& node) {
  return id == node;
}

TlsStats GetTlsStats() { return Stats::Get().Snapshot(); }

void WatchHandshakeFailures() {
  static absl::once_flag once;
  absl::call_once(once, [] { gpr_set_log_function(&HandshakeLogHook); });
}

std::string ExplainTlsFailure(const grpc::Status& status) {
  if (status.error_code() != grpc::StatusCode::UNAVAILABLE) return "";
  const std::string& m = status.error_message();
  for (const HandshakeReason& r : kHandshakeReasons) {
    if (absl::StrContains(m, r.needle)) {
      return absl::StrCat("TLS handshake failed: ", r.meaning, " (", r.reason,
                          ")");
    }
  }
  const std::string last = GetTlsStats().last_handshake_error;
  if (!last.empty()) return absl::StrCat("TLS handshake failed: ", last);
  if (absl::StrContains(m, "Socket closed") ||
      absl::StrContains(m, "Connection reset")) {
    return "the collector closed the connection during or right after the "
           "TLS handshake: it most likely refused this client's certificate "
           "(missing, expired, or not signed by the collector's CA); its "
           "wattlens_collector_tls_handshake_errors_total{reason} says which";
  }
  return "";
}

}  // namespace wattlens::transport
