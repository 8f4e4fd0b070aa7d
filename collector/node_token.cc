// SPDX-License-Identifier: Apache-2.0
#include "collector/node_token.h"

#include <curl/curl.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <sstream>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "spdlog/spdlog.h"

namespace wattlens::collector {
namespace {

constexpr char kServiceAccountDir[] =
    "/var/run/secrets/kubernetes.io/serviceaccount";
constexpr char kNodeNameExtra[] = "authentication.kubernetes.io/node-name";

absl::StatusOr<std::string> ReadTrimmed(const std::string& path) {
  std::ifstream in(path);
  if (!in.good()) {
    return absl::NotFoundError(absl::StrCat(path, " is not readable"));
  }
  std::stringstream ss;
  ss << in.rdbuf();
  return std::string(absl::StripAsciiWhitespace(ss.str()));
}

class KubeTokenReviewer final : public TokenReviewer {
 public:
  KubeTokenReviewer(KubeTokenReviewerOptions options, const Clock& clock)
      : options_(std::move(options)), clock_(clock) {}

  absl::StatusOr<TokenReviewResult> Review(const std::string& token) override {
    std::string own;
    {
      absl::StatusOr<std::string> t = OwnToken();
      if (!t.ok()) return t.status();
      own = *t;
    }
    nlohmann::json req = {
        {"apiVersion", "authentication.k8s.io/v1"},
        {"kind", "TokenReview"},
        {"spec", {{"token", token}, {"audiences", {options_.audience}}}}};
    const std::string body = req.dump();
    std::string response;
    long code = 0;
    if (absl::Status st = Post(body, own, &response, &code); !st.ok()) {
      return st;
    }
    if (code != 201 && code != 200) {
      // 403: the collector may not create tokenreviews (its ClusterRole).
      return absl::UnavailableError(absl::StrCat(
          "TokenReview answered HTTP ", code, ": ", response.substr(0, 200)));
    }
    nlohmann::json j = nlohmann::json::parse(response, nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
      return absl::UnavailableError("TokenReview answer is not JSON");
    }
    TokenReviewResult r;
    const nlohmann::json& status = j.value("status", nlohmann::json::object());
    r.authenticated = status.value("authenticated", false);
    r.error = status.value("error", "");
    if (r.authenticated) {
      // The API server only authenticates a token for the audiences asked
      // for; check that it says so rather than trust a default.
      const auto& auds = status.value("audiences", nlohmann::json::array());
      bool ours = false;
      for (const auto& a : auds) {
        ours = ours ||
               (a.is_string() && a.get<std::string>() == options_.audience);
      }
      if (!ours) {
        r.authenticated = false;
        r.error =
            absl::StrCat("token not valid for audience ", options_.audience);
        return r;
      }
      const auto& user = status.value("user", nlohmann::json::object());
      r.username = user.value("username", "");
      const auto& extra = user.value("extra", nlohmann::json::object());
      auto it = extra.find(kNodeNameExtra);
      if (it != extra.end() && it->is_array() && it->size() == 1 &&
          (*it)[0].is_string()) {
        r.node_name = (*it)[0].get<std::string>();
      }
    }
    return r;
  }

 private:
  absl::StatusOr<std::string> OwnToken() {
    absl::MutexLock lock(&mu_);
    const int64_t now = clock_.MonotonicNs();
    if (own_token_.empty() || now - own_read_ns_ > 60'000'000'000) {
      absl::StatusOr<std::string> t = ReadTrimmed(options_.token_file);
      if (t.ok() && !t->empty()) {
        own_token_ = *t;
        own_read_ns_ = now;
      } else if (own_token_.empty()) {
        return absl::UnavailableError(
            absl::StrCat("collector service-account token: ",
                         t.ok() ? "empty" : t.status().message()));
      }
    }
    return own_token_;
  }

  static size_t Write(char* data, size_t size, size_t n, void* out) {
    static_cast<std::string*>(out)->append(data, size * n);
    return size * n;
  }

  absl::Status Post(const std::string& body, const std::string& bearer,
                    std::string* response, long* code) {
    CURL* curl = curl_easy_init();
    if (curl == nullptr) return absl::InternalError("curl_easy_init failed");
    const std::string url = absl::StrCat(
        options_.server, "/apis/authentication.k8s.io/v1/tokenreviews");
    char errbuf[CURL_ERROR_SIZE] = {0};
    curl_slist* headers = nullptr;
    const std::string auth = absl::StrCat("Authorization: Bearer ", bearer);
    headers = curl_slist_append(headers, auth.c_str());
    headers = curl_slist_append(headers, "Content-Type: application/json");
    headers = curl_slist_append(headers, "Accept: application/json");
    const long timeout_ms =
        static_cast<long>(absl::ToInt64Milliseconds(options_.timeout));
    curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "https,http");
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(curl, CURLOPT_USERAGENT, "wattlens-collector");
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.c_str());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE,
                     static_cast<long>(body.size()));
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &Write);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, response);
    if (!options_.ca_file.empty()) {
      curl_easy_setopt(curl, CURLOPT_CAINFO, options_.ca_file.c_str());
    }
    CURLcode rc = curl_easy_perform(curl);
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, code);
    curl_slist_free_all(headers);
    curl_easy_cleanup(curl);
    if (rc != CURLE_OK) {
      return absl::UnavailableError(
          absl::StrCat("TokenReview request to ", options_.server, ": ",
                       errbuf[0] ? errbuf : curl_easy_strerror(rc)));
    }
    return absl::OkStatus();
  }

  const KubeTokenReviewerOptions options_;
  const Clock& clock_;
  absl::Mutex mu_;
  std::string own_token_ ABSL_GUARDED_BY(mu_);
  int64_t own_read_ns_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace

absl::StatusOr<KubeTokenReviewerOptions> InClusterReviewerOptions(
    const std::string& audience) {
  const char* host = std::getenv("KUBERNETES_SERVICE_HOST");
  const char* port = std::getenv("KUBERNETES_SERVICE_PORT");
  if (host == nullptr || port == nullptr || *host == '\0') {
    return absl::FailedPreconditionError(
        "--node_identity=token needs the Kubernetes API (run in a pod: "
        "KUBERNETES_SERVICE_HOST/PORT are not set)");
  }
  KubeTokenReviewerOptions o;
  const std::string h = host;
  // An IPv6 service address needs brackets in a URL.
  o.server = absl::StrCat(
      "https://",
      h.find(':') != std::string::npos ? absl::StrCat("[", h, "]") : h, ":",
      port);
  o.ca_file = absl::StrCat(kServiceAccountDir, "/ca.crt");
  o.token_file = absl::StrCat(kServiceAccountDir, "/token");
  o.audience = audience;
  return o;
}

absl::StatusOr<std::unique_ptr<TokenReviewer>> NewKubeTokenReviewer(
    KubeTokenReviewerOptions options, const Clock& clock) {
  if (options.server.empty() || options.audience.empty()) {
    return absl::InvalidArgumentError(
        "token review needs an API server and an audience");
  }
  return std::unique_ptr<TokenReviewer>(
      new KubeTokenReviewer(std::move(options), clock));
}

std::string BearerToken(const std::string& value) {
  constexpr absl::string_view kPrefix = "Bearer ";
  if (value.size() <= kPrefix.size() ||
      !absl::StartsWithIgnoreCase(value, kPrefix)) {
    return "";
  }
  return std::string(absl::StripAsciiWhitespace(
      absl::string_view(value).substr(kPrefix.size())));
}

NodeTokenVerifier::NodeTokenVerifier(std::unique_ptr<TokenReviewer> reviewer,
                                     NodeTokenOptions options,
                                     const Clock& clock)
    : reviewer_(std::move(reviewer)),
      options_(std::move(options)),
      clock_(clock) {
  for (int i = 0; i < std::max(1, options_.threads); ++i) {
    workers_.emplace_back([this] { Worker(); });
  }
}

NodeTokenVerifier::~NodeTokenVerifier() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  for (auto& t : workers_) t.join();
  // Nobody is left to review what is still queued.
  std::deque<Pending> left;
  {
    absl::MutexLock lock(&mu_);
    left.swap(queue_);
  }
  for (Pending& p : left) {
    p.done(absl::UnavailableError("collector shutting down"));
  }
}

void NodeTokenVerifier::Verify(std::string token, Done done) {
  std::optional<absl::StatusOr<std::string>> answer;
  {
    absl::MutexLock lock(&mu_);
    auto it = cache_.find(token);
    if (it != cache_.end() && it->second.expires_ns > clock_.MonotonicNs()) {
      ++cache_hits_;
      answer = it->second.node;
    } else if (!stopping_ && queue_.size() < options_.max_queued) {
      queue_.push_back({std::move(token), std::move(done)});
      return;
    } else {
      answer = absl::UnavailableError("too many token reviews waiting; retry");
    }
  }
  done(std::move(*answer));
}

void NodeTokenVerifier::Worker() {
  absl::MutexLock lock(&mu_);
  while (true) {
    mu_.Await(absl::Condition(
        +[](NodeTokenVerifier* v) ABSL_EXCLUSIVE_LOCKS_REQUIRED(v->mu_) {
          return v->stopping_ || !v->queue_.empty();
        },
        this));
    if (stopping_) return;
    Pending p = std::move(queue_.front());
    queue_.pop_front();
    // Another worker may have reviewed the same token meanwhile.
    auto it = cache_.find(p.token);
    absl::StatusOr<std::string> node;
    if (it != cache_.end() && it->second.expires_ns > clock_.MonotonicNs()) {
      ++cache_hits_;
      node = it->second.node;
    } else {
      ++reviews_;
      mu_.Unlock();
      node = Decide(p.token);
      mu_.Lock();
      // API-server trouble is not an answer about the token: not cached.
      if (node.ok() || absl::IsUnauthenticated(node.status())) {
        if (cache_.size() >= options_.max_cached) {
          const int64_t now = clock_.MonotonicNs();
          absl::erase_if(cache_, [now](const auto& kv) {
            return kv.second.expires_ns <= now;
          });
          if (cache_.size() >= options_.max_cached) cache_.clear();
        }
        const absl::Duration ttl =
            node.ok() ? options_.accept_ttl : options_.refuse_ttl;
        cache_[p.token] = {
            node, clock_.MonotonicNs() + absl::ToInt64Nanoseconds(ttl)};
      }
    }
    mu_.Unlock();
    p.done(std::move(node));
    mu_.Lock();
  }
}

absl::StatusOr<std::string> NodeTokenVerifier::Decide(
    const std::string& token) {
  absl::StatusOr<TokenReviewResult> r = reviewer_->Review(token);
  if (!r.ok()) {
    spdlog::warn("token review failed: {}", r.status().ToString());
    return absl::UnavailableError(r.status().message());
  }
  if (!r->authenticated) {
    return absl::UnauthenticatedError(
        absl::StrCat("service-account token refused by the API server",
                     r->error.empty() ? "" : ": ", r->error));
  }
  if (std::find(options_.service_accounts.begin(),
                options_.service_accounts.end(),
                r->username) == options_.service_accounts.end()) {
    return absl::UnauthenticatedError(absl::StrCat(
        "token of ", r->username, ", which is not an agent service account"));
  }
  if (r->node_name.empty()) {
    return absl::UnauthenticatedError(
        "the token names no node: it must be a projected token of a pod "
        "(Kubernetes >= 1.30, ServiceAccountTokenPodNodeInfo)");
  }
  return r->node_name;
}

uint64_t NodeTokenVerifier::reviews() const {
  absl::MutexLock lock(&mu_);
  return reviews_;
}

uint64_t NodeTokenVerifier::cache_hits() const {
  absl::MutexLock lock(&mu_);
  return cache_hits_;
}

}  // namespace wattlens::collector
