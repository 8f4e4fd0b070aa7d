// SPDX-License-Identifier: Apache-2.0
// gRPC call credentials carrying this pod's projected service-account token
// ("authorization: Bearer <token>") for the collector's
// --node_identity=token (collector/node_token.h). The file is re-read for
// every call that needs it (a stream opens rarely), so the kubelet's
// rotation of the token needs nothing from the agent. gRPC sends call
// credentials over TLS only.
#pragma once

#include <memory>
#include <string>

#include "grpcpp/security/credentials.h"

namespace wattlens {

std::shared_ptr<grpc::CallCredentials> ServiceAccountTokenCredentials(
    const std::string& token_file);

}  // namespace wattlens
