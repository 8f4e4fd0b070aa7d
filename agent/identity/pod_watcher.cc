// SPDX-License-Identifier: Apache-2.0
#include "agent/identity/pod_watcher.h"

#include <curl/curl.h>

#include <algorithm>
#include <functional>
#include <mutex>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "agent/identity/k8s_json.h"
#include "spdlog/spdlog.h"

namespace wattlens::identity {
namespace {

constexpr size_t kMaxErrorBody = 64 << 10;

std::string UrlEncode(absl::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
        (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
        c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      constexpr char kHex[] = "0123456789ABCDEF";  // RFC 3986: upper case
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xf]);
    }
  }
  return out;
}

absl::Status HttpError(long code, absl::string_view what,
                       const std::string& body) {
  std::string msg = absl::StrCat(what, ": HTTP ", code);
  // metav1.Status carries a useful message; keep a bounded excerpt.
  if (!body.empty()) absl::StrAppend(&msg, ": ", body.substr(0, 300));
  if (code == 401 || code == 403) return absl::PermissionDeniedError(msg);
  if (code == 404) return absl::NotFoundError(msg);
  if (code == 429 || code >= 500) return absl::UnavailableError(msg);
  return absl::UnknownError(msg);
}

}  // namespace

// One libcurl easy handle, reused so the TLS connection survives between
// the list and the watches.
class PodWatcher::Http {
 public:
  using OnData = std::function<bool(absl::string_view)>;

  Http(const KubeApiConfig& config, const PodWatcherOptions& options)
      : config_(config), options_(options) {
    static std::once_flag once;
    std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
    curl_ = curl_easy_init();
  }
  ~Http() {
    if (curl_ != nullptr) curl_easy_cleanup(curl_);
  }

  void set_stop(absl::Notification* stop) { stop_.store(stop); }

  // GET `path`. For a 200, `on_data` receives the body as it arrives and
  // may stop it by returning false; other statuses' bodies go to
  // `error_body`. Returns the HTTP status, or the transport error.
  absl::StatusOr<long> Get(const std::string& path, const std::string& token,
                           int total_timeout_s, const OnData& on_data,
                           std::string* error_body) {
    if (curl_ == nullptr) return absl::InternalError("curl_easy_init failed");
    curl_easy_reset(curl_);
    Transfer t{this, &on_data, error_body, false};
    char errbuf[CURL_ERROR_SIZE] = {};
    std::string url = config_.server + path;
    curl_easy_setopt(curl_, CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl_, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(curl_, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl_, CURLOPT_PROTOCOLS_STR, "https,http");
    curl_easy_setopt(curl_, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(curl_, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(curl_, CURLOPT_USERAGENT, "wattlens-agent");
    curl_easy_setopt(curl_, CURLOPT_CONNECTTIMEOUT,
                     static_cast<long>(options_.connect_timeout_s));
    curl_easy_setopt(curl_, CURLOPT_TIMEOUT,
                     static_cast<long>(total_timeout_s));
    curl_easy_setopt(curl_, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(curl_, CURLOPT_LOW_SPEED_TIME,
                     static_cast<long>(options_.stall_timeout_s));
    curl_easy_setopt(curl_, CURLOPT_WRITEFUNCTION, &Http::Write);
    curl_easy_setopt(curl_, CURLOPT_WRITEDATA, &t);
    curl_easy_setopt(curl_, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(curl_, CURLOPT_XFERINFOFUNCTION, &Http::Progress);
    curl_easy_setopt(curl_, CURLOPT_XFERINFODATA, this);

    curl_blob ca{}, cert{}, key{};
    if (config_.insecure_skip_tls_verify) {
      curl_easy_setopt(curl_, CURLOPT_SSL_VERIFYPEER, 0L);
      curl_easy_setopt(curl_, CURLOPT_SSL_VERIFYHOST, 0L);
    } else if (!config_.ca_pem.empty()) {
      ca = Blob(config_.ca_pem);
      curl_easy_setopt(curl_, CURLOPT_CAINFO_BLOB, &ca);
    } else if (!config_.ca_file.empty()) {
      curl_easy_setopt(curl_, CURLOPT_CAINFO, config_.ca_file.c_str());
    }
    // Certificate and key each from inline PEM or a file; mixing is fine.
    if (!config_.client_cert_pem.empty()) {
      cert = Blob(config_.client_cert_pem);
      curl_easy_setopt(curl_, CURLOPT_SSLCERT_BLOB, &cert);
    } else if (!config_.client_cert_file.empty()) {
      curl_easy_setopt(curl_, CURLOPT_SSLCERT,
                       config_.client_cert_file.c_str());
    }
    if (!config_.client_key_pem.empty()) {
      key = Blob(config_.client_key_pem);
      curl_easy_setopt(curl_, CURLOPT_SSLKEY_BLOB, &key);
    } else if (!config_.client_key_file.empty()) {
      curl_easy_setopt(curl_, CURLOPT_SSLKEY, config_.client_key_file.c_str());
    }
    curl_slist* headers =
        curl_slist_append(nullptr, "Accept: application/json");
    std::string auth;
    if (!token.empty()) {
      auth = absl::StrCat("Authorization: Bearer ", token);
      headers = curl_slist_append(headers, auth.c_str());
    }
    curl_easy_setopt(curl_, CURLOPT_HTTPHEADER, headers);

    CURLcode rc = curl_easy_perform(curl_);
    curl_slist_free_all(headers);
    long code = 0;
    curl_easy_getinfo(curl_, CURLINFO_RESPONSE_CODE, &code);
    if (rc == CURLE_OK || (rc == CURLE_WRITE_ERROR && t.stopped_by_caller)) {
      return code;
    }
    std::string detail = errbuf[0] != '\0' ? errbuf : curl_easy_strerror(rc);
    if (rc == CURLE_OPERATION_TIMEDOUT) {
      return absl::DeadlineExceededError(absl::StrCat(
          "GET ", path.substr(0, 64), ": stalled or timed out: ", detail));
    }
    if (rc == CURLE_ABORTED_BY_CALLBACK) {
      return absl::CancelledError("stopping");
    }
    return absl::UnavailableError(
        absl::StrCat("GET ", config_.server, ": ", detail));
  }

 private:
  struct Transfer {
    Http* http;
    const OnData* on_data;
    std::string* error_body;
    bool stopped_by_caller;
  };

  static curl_blob Blob(const std::string& s) {
    curl_blob b{};
    b.data = const_cast<char*>(s.data());
    b.len = s.size();
    b.flags = CURL_BLOB_COPY;
    return b;
  }

  static size_t Write(char* ptr, size_t size, size_t n, void* user) {
    auto* t = static_cast<Transfer*>(user);
    size_t len = size * n;
    long code = 0;
    curl_easy_getinfo(t->http->curl_, CURLINFO_RESPONSE_CODE, &code);
    if (code != 200) {
      size_t room =
          kMaxErrorBody - std::min(kMaxErrorBody, t->error_body->size());
      t->error_body->append(ptr, std::min(room, len));
      return len;
    }
    if (!(*t->on_data)(absl::string_view(ptr, len))) {
      t->stopped_by_caller = true;
      return 0;  // makes curl stop with CURLE_WRITE_ERROR
    }
    return len;
  }

  static int Progress(void* user, curl_off_t, curl_off_t, curl_off_t,
                      curl_off_t) {
    auto* http = static_cast<Http*>(user);
    absl::Notification* stop = http->stop_.load();
    return stop != nullptr && stop->HasBeenNotified() ? 1 : 0;
  }

  const KubeApiConfig& config_;
  const PodWatcherOptions& options_;
  CURL* curl_ = nullptr;
  std::atomic<absl::Notification*> stop_{nullptr};
};

PodWatcher::PodWatcher(KubeApiConfig config, std::string node_name,
                       PodCache* cache, const Clock& clock,
                       PodWatcherOptions options, const OwnerLookup* owners)
    : config_(std::move(config)),
      node_name_(std::move(node_name)),
      cache_(cache),
      clock_(clock),
      options_(options),
      owners_(owners),
      token_(config_, clock),
      http_(std::make_unique<Http>(config_, options_)),
      rng_(options.jitter_seed != 0 ? options.jitter_seed
                                    : std::random_device()()) {}

PodWatcher::~PodWatcher() = default;

std::string PodWatcher::ListPath(const std::string& continue_token) const {
  std::string p =
      absl::StrCat("/api/v1/pods?fieldSelector=",
                   UrlEncode(absl::StrCat("spec.nodeName=", node_name_)),
                   "&limit=", options_.list_page_size);
  if (!continue_token.empty()) {
    absl::StrAppend(&p, "&continue=", UrlEncode(continue_token));
  }
  return p;
}

std::string PodWatcher::WatchPath() const {
  return absl::StrCat(
      "/api/v1/pods?watch=1&fieldSelector=",
      UrlEncode(absl::StrCat("spec.nodeName=", node_name_)),
      "&resourceVersion=", UrlEncode(resource_version_),
      "&allowWatchBookmarks=true&timeoutSeconds=", options_.watch_timeout_s);
}

PodInfo PodWatcher::Prepare(PodInfo pod) const {
  pod.workload = ResolveWorkload(pod, owners_);
  return pod;
}

absl::Status PodWatcher::List() {
  ++stats_.lists;
  std::vector<PodInfo> all;
  std::string continue_token, rv;
  do {
    absl::StatusOr<std::string> body =
        GetDocument(ListPath(continue_token), "list pods");
    if (!body.ok()) return body.status();
    absl::StatusOr<PodList> list = DecodePodList(*body);
    if (!list.ok()) return list.status();
    for (PodInfo& p : list->pods) all.push_back(Prepare(std::move(p)));
    continue_token = list->continue_token;
    rv = list->resource_version;
  } while (!continue_token.empty());
  if (rv.empty()) {
    return absl::InvalidArgumentError("pod list without resourceVersion");
  }
  size_t n = all.size();
  cache_->ReplaceAll(std::move(all));
  resource_version_ = rv;
  need_list_ = false;
  synced_ = true;
  spdlog::info("pods on node {}: listed {} at resourceVersion {}", node_name_,
               n, resource_version_);
  return absl::OkStatus();
}

absl::Status PodWatcher::Watch() {
  ++stats_.watches;
  JsonLineSplitter splitter;
  std::vector<std::string> lines;
  absl::Status stream_error;
  bool gone = false;
  auto on_data = [&](absl::string_view chunk) {
    lines.clear();
    if (absl::Status s = splitter.Feed(chunk, &lines); !s.ok()) {
      stream_error = s;
      return false;
    }
    for (const std::string& line : lines) {
      absl::StatusOr<WatchEvent> ev = DecodeWatchEvent(line);
      if (!ev.ok()) {
        ++stats_.events_invalid;
        spdlog::warn("skipping watch event: {}", ev.status().ToString());
        continue;
      }
      ++stats_.events;
      switch (ev->type) {
        case WatchEvent::Type::kAdded:
        case WatchEvent::Type::kModified:
          cache_->Upsert(Prepare(*std::move(ev->pod)));
          break;
        case WatchEvent::Type::kDeleted:
          cache_->MarkDeleted(ev->pod->uid);
          break;
        case WatchEvent::Type::kBookmark:
          ++stats_.bookmarks;
          break;
        case WatchEvent::Type::kError:
          if (ev->IsGone()) {
            gone = true;
            return false;
          }
          stream_error = absl::UnavailableError(
              absl::StrCat("watch error ", ev->error_code, " ",
                           ev->error_reason, ": ", ev->error_message));
          return false;
      }
      if (!ev->resource_version.empty()) {
        resource_version_ = ev->resource_version;
      }
    }
    return true;
  };
  std::string error_body;
  absl::StatusOr<long> code =
      http_->Get(WatchPath(), token_.Token(), options_.watch_timeout_s + 30,
                 on_data, &error_body);
  if (gone || (code.ok() && *code == 410)) {
    ++stats_.relists_gone;
    need_list_ = true;
    spdlog::info("resourceVersion {} expired (410 Gone): relisting",
                 resource_version_);
    return absl::OkStatus();
  }
  if (!code.ok()) return code.status();
  if (*code != 200) return HttpError(*code, "watch pods", error_body);
  if (!stream_error.ok()) return stream_error;
  if (splitter.buffered() > 0) {
    return absl::UnavailableError(
        "watch stream ended in the middle of an event");
  }
  return absl::OkStatus();
}

void PodWatcher::Finish(const absl::Status& s) {
  int64_t now = clock_.MonotonicNs();
  last_error_ = s;
  if (s.ok()) {
    backoff_ns_ = 0;
    next_attempt_ns_ = options_.source == PodWatcherOptions::Source::kKubelet
                           ? now + options_.kubelet_poll_ns
                           : now;
    Publish();
    return;
  }
  ++stats_.failures;
  backoff_ns_ = backoff_ns_ == 0
                    ? options_.initial_backoff_ns
                    : std::min(backoff_ns_ * 2, options_.max_backoff_ns);
  int64_t jitter = 0;
  if (options_.backoff_jitter > 0) {
    std::uniform_real_distribution<double> u(0, options_.backoff_jitter);
    jitter = static_cast<int64_t>(static_cast<double>(backoff_ns_) * u(rng_));
  }
  next_attempt_ns_ = now + backoff_ns_ + jitter;
  Publish();
  spdlog::warn("pod metadata: {}; retrying in {} ms (keeping {} known pods)",
               s.ToString(), backoff_ns_ / 1'000'000, cache_->stats().live);
}

void PodWatcher::Publish() {
  absl::MutexLock lock(&mu_);
  health_.synced = synced_;
  health_.last_error = last_error_.ok() ? "" : last_error_.ToString();
  health_.stats = stats_;
}

PodWatcher::Health PodWatcher::health() const {
  absl::MutexLock lock(&mu_);
  return health_;
}

std::optional<NodeMeta> PodWatcher::node() const {
  absl::MutexLock lock(&mu_);
  return node_;
}

void PodWatcher::MaybeFetchNode() {
  if (options_.node_refresh_ns <= 0 ||
      options_.source != PodWatcherOptions::Source::kApiServer) {
    return;
  }
  const int64_t now = clock_.MonotonicNs();
  if (now < next_node_fetch_ns_) return;
  next_node_fetch_ns_ = now + options_.node_refresh_ns;
  absl::StatusOr<std::string> body = GetDocument(
      absl::StrCat("/api/v1/nodes/", UrlEncode(node_name_)), "get node");
  absl::StatusOr<NodeMeta> node =
      body.ok() ? DecodeNode(*body) : absl::StatusOr<NodeMeta>(body.status());
  if (!node.ok()) {
    // Not fatal: pod metadata does not need it, and the labels can come
    // from --node_labels instead.
    spdlog::warn("node {}: {} (node labels from flags only)", node_name_,
                 node.status().ToString());
    return;
  }
  absl::MutexLock lock(&mu_);
  node_ = *std::move(node);
}

absl::StatusOr<std::string> PodWatcher::GetDocument(const std::string& path,
                                                    absl::string_view what) {
  std::string body, error_body;
  absl::StatusOr<long> code = http_->Get(
      path, token_.Token(), options_.list_timeout_s,
      [&](absl::string_view chunk) {
        if (body.size() + chunk.size() > kMaxJsonDocumentBytes) return false;
        body.append(chunk.data(), chunk.size());
        return true;
      },
      &error_body);
  if (!code.ok()) return code.status();
  if (*code != 200) return HttpError(*code, what, error_body);
  return body;
}

absl::Status PodWatcher::KubeletPods() {
  ++stats_.lists;
  absl::StatusOr<std::string> body = GetDocument("/pods", "kubelet pods");
  if (!body.ok()) return body.status();
  absl::StatusOr<PodList> list = DecodePodList(*body);
  if (!list.ok()) return list.status();
  std::vector<PodInfo> pods;
  for (PodInfo& p : list->pods) {
    // The kubelet only lists its own pods; a stray one is not ours.
    if (!p.node_name.empty() && p.node_name != node_name_) continue;
    pods.push_back(Prepare(std::move(p)));
  }
  cache_->ReplaceAll(std::move(pods));
  synced_ = true;
  return absl::OkStatus();
}

absl::Status PodWatcher::Step() {
  MaybeFetchNode();
  absl::Status s;
  if (options_.source == PodWatcherOptions::Source::kKubelet) {
    s = KubeletPods();
  } else {
    s = need_list_ ? List() : Watch();
  }
  Finish(s);
  return s;
}

void PodWatcher::Run(absl::Notification* stop) {
  http_->set_stop(stop);
  while (!stop->HasBeenNotified()) {
    int64_t wait = next_attempt_ns_ - clock_.MonotonicNs();
    if (wait > 0 &&
        stop->WaitForNotificationWithTimeout(absl::Nanoseconds(wait))) {
      break;
    }
    // Errors are logged, kept in last_error() and backed off in Finish().
    Step().IgnoreError();
    cache_->ExpireDeleted();
  }
  http_->set_stop(nullptr);
}

}  // namespace wattlens::identity
