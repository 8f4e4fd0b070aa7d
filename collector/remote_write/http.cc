// SPDX-License-Identifier: Apache-2.0
#include "collector/remote_write/http.h"

#include <curl/curl.h>

#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace wattlens::collector::remote_write {
namespace {

size_t Discard(char*, size_t size, size_t n, void*) { return size * n; }

absl::StatusOr<std::string> ReadToken(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot read bearer token file ", path));
  }
  std::stringstream ss;
  ss << in.rdbuf();
  std::string token(absl::StripAsciiWhitespace(ss.str()));
  if (token.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("bearer token file ", path, " is empty"));
  }
  if (token.find_first_of("\r\n") != std::string::npos) {
    return absl::FailedPreconditionError(
        absl::StrCat("bearer token file ", path, " has more than one line"));
  }
  return token;
}

class CurlPoster final : public HttpPoster {
 public:
  explicit CurlPoster(HttpOptions options, CURL* curl)
      : options_(std::move(options)), curl_(curl) {}
  ~CurlPoster() override { curl_easy_cleanup(curl_); }

  absl::StatusOr<int> Post(const std::string& body) override {
    // The protocol's headers; none of them can be overridden by a user.
    curl_slist* headers = nullptr;
    headers = curl_slist_append(headers, "Content-Encoding: snappy");
    headers =
        curl_slist_append(headers, "Content-Type: application/x-protobuf");
    headers =
        curl_slist_append(headers, "X-Prometheus-Remote-Write-Version: 0.1.0");
    // curl would otherwise send "Expect: 100-continue" for larger bodies
    // and wait for an answer some receivers never give.
    headers = curl_slist_append(headers, "Expect:");
    if (!options_.bearer_token_file.empty()) {
      auto token = ReadToken(options_.bearer_token_file);
      if (!token.ok()) {
        curl_slist_free_all(headers);
        return token.status();
      }
      headers = curl_slist_append(
          headers, absl::StrCat("Authorization: Bearer ", *token).c_str());
    }
    char errbuf[CURL_ERROR_SIZE] = {0};
    curl_easy_setopt(curl_, CURLOPT_URL, options_.url.c_str());
    curl_easy_setopt(curl_, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(curl_, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl_, CURLOPT_PROTOCOLS_STR, "https,http");
    curl_easy_setopt(curl_, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(curl_, CURLOPT_USERAGENT, options_.user_agent.c_str());
    curl_easy_setopt(
        curl_, CURLOPT_TIMEOUT_MS,
        static_cast<long>(absl::ToInt64Milliseconds(options_.timeout)));
    curl_easy_setopt(curl_, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl_, CURLOPT_POST, 1L);
    curl_easy_setopt(curl_, CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(curl_, CURLOPT_POSTFIELDSIZE_LARGE,
                     static_cast<curl_off_t>(body.size()));
    curl_easy_setopt(curl_, CURLOPT_WRITEFUNCTION, &Discard);
    if (!options_.ca_file.empty()) {
      curl_easy_setopt(curl_, CURLOPT_CAINFO, options_.ca_file.c_str());
    }
    const CURLcode rc = curl_easy_perform(curl_);
    long code = 0;
    curl_easy_getinfo(curl_, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_setopt(curl_, CURLOPT_HTTPHEADER, nullptr);
    curl_slist_free_all(headers);
    if (rc != CURLE_OK) {
      return absl::UnavailableError(
          absl::StrCat("POST ", options_.url, ": ",
                       errbuf[0] ? errbuf : curl_easy_strerror(rc)));
    }
    return static_cast<int>(code);
  }

 private:
  const HttpOptions options_;
  CURL* const curl_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<HttpPoster>> NewCurlPoster(HttpOptions options) {
  CURL* curl = curl_easy_init();
  if (curl == nullptr) return absl::InternalError("curl_easy_init failed");
  return std::make_unique<CurlPoster>(std::move(options), curl);
}

}  // namespace wattlens::collector::remote_write
