// SPDX-License-Identifier: Apache-2.0
// Readiness through the real gRPC listener: a loopback connection must be
// accepted and answered. gRPC 1.51 stops accepting for good after one
// EMFILE, while the rest of the process (and a check of an in-memory flag)
// looks healthy; only a new connection tells.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace wattlens::collector {

// The address a probe of a server listening on `listen_address` connects
// to: the wildcard addresses become loopback; `port` replaces the port
// (listen_address may say 0).
std::string ProbeHost(const std::string& listen_address);

// Connects to host:port and waits up to `timeout` for the server's first
// answer: to a TLS ClientHello (`tls`) or to the HTTP/2 client preface.
// The connection is closed before any credentials are exchanged, so the
// probe needs no client certificate. An answer or an orderly close counts as
// alive; silence (a connection left in the kernel's backlog) does not.
absl::Status ProbeListener(const std::string& host, int port, bool tls,
                           absl::Duration timeout);

}  // namespace wattlens::collector
