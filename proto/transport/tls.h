// gRPC transport security shared by the agent, the collector and the CLI:
// mTLS credentials whose files are watched and reloaded when they change
// (new connections use the new certificates; open streams continue), and the
// peer identity a server reads from a verified client certificate.
// Plaintext exists only behind an explicit --insecure.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server_context.h"

namespace wattlens::transport {

struct TlsFiles {
  std::string cert;  // PEM certificate chain
  std::string key;   // PEM private key
  std::string ca;    // PEM CA bundle that signs the peers
  // How often the files are checked for changes.
  unsigned refresh_seconds = 5;
};

// Server: TLS 1.2+ with the files in `files`; a client certificate is
// requested and, when sent, verified against the CA. Handlers decide what a
// missing certificate means (PeerIdentities() returns none).
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> ServerCredentials(
    const TlsFiles& files);

// Client: verifies the server against the CA; presents cert/key when set.
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> ClientCredentials(
    const TlsFiles& files);

// Common name and DNS subject alternative names of the verified client
// certificate; empty without one.
std::vector<std::string> PeerIdentities(const grpc::AuthContext& auth);

// Node name `node` matches identity `id` only when equal: a prefix rule
// would let "a.b" speak for node "a".
bool IdentityMatchesNode(const std::string& id, const std::string& node);

}  // namespace wattlens::transport
