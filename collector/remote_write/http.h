// SPDX-License-Identifier: Apache-2.0
//
// The POST of one remote-write request. An interface so that the queue's
// retry rules are tested against scripted answers as well as real servers.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace wattlens::collector::remote_write {

class HttpPoster {
 public:
  virtual ~HttpPoster() = default;
  // POSTs an encoded (snappy) WriteRequest. Returns the HTTP status code;
  // an error status when no response came (connection, TLS, timeout).
  virtual absl::StatusOr<int> Post(const std::string& body) = 0;
};

struct HttpOptions {
  std::string url;
  // Read before every request, so a rotated token is picked up; empty: no
  // Authorization header.
  std::string bearer_token_file;
  // PEM bundle that verifies an https receiver; empty: the system's.
  std::string ca_file;
  absl::Duration timeout = absl::Seconds(30);
  std::string user_agent = "wattlens-collector";
};

// libcurl, one connection kept alive between requests. Call from one thread.
absl::StatusOr<std::unique_ptr<HttpPoster>> NewCurlPoster(HttpOptions options);

}  // namespace wattlens::collector::remote_write
