#include "proto/transport/tls.h"

#include <fstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "grpcpp/security/tls_certificate_provider.h"
#include "grpcpp/security/tls_credentials_options.h"

namespace wattlens::transport {
namespace {

absl::Status CheckReadable(const std::string& what, const std::string& path) {
  if (path.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("TLS ", what, " file not set (or pass --insecure)"));
  }
  std::ifstream in(path);
  if (!in.good()) {
    return absl::NotFoundError(
        absl::StrCat("TLS ", what, " file ", path, " is not readable"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> ServerCredentials(
    const TlsFiles& f) {
  for (const auto& [what, path] :
       {std::pair<std::string, std::string>{"certificate", f.cert},
        {"key", f.key},
        {"CA", f.ca}}) {
    if (auto st = CheckReadable(what, path); !st.ok()) return st;
  }
  auto provider =
      std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
          f.key, f.cert, f.ca, f.refresh_seconds);
  grpc::experimental::TlsServerCredentialsOptions options(provider);
  options.watch_root_certs();
  options.watch_identity_key_cert_pairs();
  options.set_cert_request_type(GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY);
  return grpc::experimental::TlsServerCredentials(options);
}

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> ClientCredentials(
    const TlsFiles& f) {
  if (auto st = CheckReadable("CA", f.ca); !st.ok()) return st;
  const bool with_identity = !f.cert.empty() || !f.key.empty();
  if (with_identity) {
    if (auto st = CheckReadable("certificate", f.cert); !st.ok()) return st;
    if (auto st = CheckReadable("key", f.key); !st.ok()) return st;
  }
  auto provider = with_identity
                      ? std::make_shared<
                            grpc::experimental::FileWatcherCertificateProvider>(
                            f.key, f.cert, f.ca, f.refresh_seconds)
                      : std::make_shared<
                            grpc::experimental::FileWatcherCertificateProvider>(
                            f.ca, f.refresh_seconds);
  grpc::experimental::TlsChannelCredentialsOptions options;
  options.set_certificate_provider(provider);
  options.watch_root_certs();
  if (with_identity) options.watch_identity_key_cert_pairs();
  return grpc::experimental::TlsCredentials(options);
}

std::vector<std::string> PeerIdentities(const grpc::AuthContext& auth) {
  std::vector<std::string> out;
  for (const char* prop :
       {"x509_common_name", "x509_subject_alternative_name"}) {
    for (const auto& v : auth.FindPropertyValues(prop)) {
      std::string s(v.data(), v.size());
      if (!s.empty()) out.push_back(std::move(s));
    }
  }
  return out;
}

bool IdentityMatchesNode(const std::string& id, const std::string& node) {
  return id == node;
}

}  // namespace wattlens::transport
