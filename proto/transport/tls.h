// SPDX-License-Identifier: Apache-2.0
// gRPC transport security shared by the agent, the collector and the CLI:
// mTLS credentials whose files are checked before use and reloaded when they
// change (new connections use the new certificates; open streams continue),
// and the peer identity and role a server reads from a verified client
// certificate. Plaintext exists only behind an explicit --insecure.
//
// gRPC never reads the configured files directly: they are parsed and
// checked here (PEM, key matches certificate, validity period, CA bundle),
// and only material that passed is copied, by atomic rename, into a private
// staging directory that gRPC's file watcher reads. A truncated or foreign
// file written during a rotation therefore cannot reach gRPC (which aborts on
// some of them); it is counted in TlsStats::reload_errors and the previous
// material keeps serving.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
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

// What a client certificate may do, from its URI subject alternative name.
// A certificate with neither URI has no role and is refused by both
// services, so a CLI certificate can never report as a node and an agent
// certificate can never read the cluster.
enum class PeerRole { kNone, kAgent, kReader };
inline constexpr char kAgentRoleUri[] = "spiffe://wattlens/agent";
inline constexpr char kReaderRoleUri[] = "spiffe://wattlens/reader";

// Server: TLS 1.2+ with the files in `files`. The TLS layer requires a
// client certificate and verifies it against the CA, so no unauthenticated
// peer reaches HTTP/2. Fails (with the file and the reason) when a file is
// missing or its content does not pass CheckTlsFiles.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> ServerCredentials(
    const TlsFiles& files);

// Client: verifies the server against the CA; presents cert/key when set.
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> ClientCredentials(
    const TlsFiles& files);

// Parses and checks the files as ServerCredentials/ClientCredentials do:
// every PEM parses, the key matches the first certificate, which is within
// its validity period at `now_unix`, and the CA bundle holds only valid CA
// certificates. `with_identity` false: only the CA is checked. The error
// message names the file; `reason` (when not null) receives a short metric
// label: unreadable, empty, bad_pem, key_mismatch, expired, not_yet_valid,
// bad_ca.
absl::Status CheckTlsFiles(const TlsFiles& files, bool with_identity,
                           int64_t now_unix, std::string* reason = nullptr);

// Role of the verified client certificate (kNone without one).
PeerRole RoleOf(const grpc::AuthContext& auth);

// The node names an *agent* certificate may speak for: its common name and
// DNS subject alternative names. Empty for a certificate without the agent
// role (a reader's, or one without a role) and without a certificate.
std::vector<std::string> PeerIdentities(const grpc::AuthContext& auth);

// Node name `node` matches identity `id` only when equal: a prefix rule
// would let "a.b" speak for node "a".
bool IdentityMatchesNode(const std::string& id, const std::string& node);

// Process-wide TLS failure counts by reason (exported by the collector as
// wattlens_collector_tls_{reload,handshake}_errors_total{reason}).
struct TlsStats {
  std::map<std::string, uint64_t> reload_errors;
  std::map<std::string, uint64_t> handshake_errors;
  // The newest handshake failure seen by this process ("" when none), for
  // error messages that would otherwise only say "Socket closed".
  std::string last_handshake_error;
};
TlsStats GetTlsStats();

// Installs (once) a gRPC log hook that counts TLS handshake failures by
// reason and remembers the newest one, then logs as gRPC would. Credentials
// built here install it; exposed for tests and mains.
void WatchHandshakeFailures();

// A short, user-facing explanation of a failed call when it was caused by
// TLS (a named reason instead of "Socket closed"); "" otherwise.
std::string ExplainTlsFailure(const grpc::Status& status);

}  // namespace wattlens::transport
