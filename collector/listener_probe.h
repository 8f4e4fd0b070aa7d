// SPDX-License-Identifier: Apache-2.0
// Readiness through the real gRPC listener: a loopback connection must be
// accepted. gRPC 1.51 stops accepting for good after one EMFILE, while the
// rest of the process (and a check of an in-memory flag) looks healthy; only
// a new connection tells.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace wattlens::collector {

// The address a probe of a server listening on `listen_address` connects
// to: the wildcard addresses become loopback.
std::string ProbeHost(const std::string& listen_address);

// Connects to host:port and waits up to `timeout` until the listening
// socket's accept queue is empty again, i.e. the server took the connection
// (the queue length is the kernel's, from /proc/net/tcp{,6} under
// `proc_root`). Nothing is sent, so the probe costs the server no handshake
// and no handshake error; a listener that no longer accepts keeps
// connections queued and fails the probe.
absl::Status ProbeListener(const std::string& host, int port,
                           absl::Duration timeout,
                           const std::string& proc_root = "/proc");

}  // namespace wattlens::collector
