// SPDX-License-Identifier: Apache-2.0
#include "agent/common/health_http.h"

#include <CivetServer.h>
#include <civetweb.h>

#include <algorithm>
#include <cstring>
#include <exception>
#include <utility>

#include "absl/strings/str_cat.h"
#include "prometheus/exposer.h"

namespace wattlens {

void HealthChecks::Add(HealthProbe probe, std::string name, Check check) {
  absl::MutexLock lock(&mu_);
  entries_.push_back({probe, std::move(name), std::move(check)});
}

HealthChecks::Result HealthChecks::Evaluate(HealthProbe probe) const {
  std::vector<std::pair<std::string, Check>> checks;
  {
    absl::MutexLock lock(&mu_);
    for (const Entry& e : entries_) {
      if (e.probe == probe) checks.emplace_back(e.name, e.check);
    }
  }
  Result r;
  for (const auto& [name, check] : checks) {
    absl::Status st = check();
    if (st.ok()) {
      absl::StrAppend(&r.body, "[+]", name, " ok\n");
    } else {
      r.healthy = false;
      absl::StrAppend(&r.body, "[-]", name, " failed: ", st.message(), "\n");
    }
  }
  const char* what = probe == HealthProbe::kLiveness ? "healthz" : "readyz";
  absl::StrAppend(&r.body, what,
                  r.healthy ? " check passed\n" : " check failed\n");
  return r;
}

ProgressCheck::ProgressCheck(const Clock& clock, int64_t window_ns,
                             std::string what)
    : clock_(clock),
      window_ns_(window_ns),
      what_(std::move(what)),
      last_change_ns_(clock.MonotonicNs()) {}

absl::Status ProgressCheck::Observe(uint64_t value) {
  const int64_t now = clock_.MonotonicNs();
  absl::MutexLock lock(&mu_);
  if (value != last_value_) {
    last_value_ = value;
    last_change_ns_ = now;
    return absl::OkStatus();
  }
  const int64_t idle = now - last_change_ns_;
  if (idle <= window_ns_) return absl::OkStatus();
  return absl::UnavailableError(
      absl::StrCat(what_, ": no progress for ", idle / 1'000'000'000,
                   " s (limit ", window_ns_ / 1'000'000'000, " s)"));
}

namespace {

// civetweb calls init_context synchronously from mg_start, i.e. inside the
// Exposer's constructor on the constructing thread; this carries the context
// out so the health handlers can be added to the same server.
thread_local const mg_context* g_new_context = nullptr;

void OnInitContext(const mg_context* ctx) { g_new_context = ctx; }

int Reply(mg_connection* conn, int code, const std::string& body) {
  const mg_request_info* ri = mg_get_request_info(conn);
  const bool head = ri != nullptr && ri->request_method != nullptr &&
                    std::strcmp(ri->request_method, "HEAD") == 0;
  const char* reason = code == 200   ? "OK"
                       : code == 405 ? "Method Not Allowed"
                                     : "Service Unavailable";
  mg_printf(conn,
            "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\n"
            "Cache-Control: no-store\r\nContent-Length: %zu\r\n"
            "Connection: close\r\n\r\n",
            code, reason, body.size());
  if (!head) mg_write(conn, body.data(), body.size());
  return code;
}

template <HealthProbe kProbe>
int Handle(mg_connection* conn, void* cbdata) {
  const mg_request_info* ri = mg_get_request_info(conn);
  if (ri == nullptr || ri->request_method == nullptr ||
      (std::strcmp(ri->request_method, "GET") != 0 &&
       std::strcmp(ri->request_method, "HEAD") != 0)) {
    return Reply(conn, 405, "only GET and HEAD\n");
  }
  const auto* checks = static_cast<const HealthChecks*>(cbdata);
  HealthChecks::Result r = checks->Evaluate(kProbe);
  return Reply(conn, r.healthy ? 200 : 503, r.body);
}

}  // namespace

absl::StatusOr<std::unique_ptr<prometheus::Exposer>> StartExposerWithHealth(
    const std::string& address, const HealthChecks* checks,
    const HttpServingOptions& serving) {
  CivetCallbacks callbacks;  // its constructor zeroes every callback
  callbacks.init_context = &OnInitContext;
  g_new_context = nullptr;
  std::unique_ptr<prometheus::Exposer> exposer;
  // prometheus-cpp (civetweb) throws on bind failure: converted here.
  try {
    // The same options prometheus-cpp sets for (address, threads), plus the
    // request timeout: a client that has not sent its whole request by then
    // is disconnected and its worker freed.
    std::vector<std::string> options = {
        "listening_ports",
        address,
        "num_threads",
        absl::StrCat(std::max(2, serving.workers)),
        "request_timeout_ms",
        absl::StrCat(absl::ToInt64Milliseconds(serving.request_timeout))};
    exposer =
        std::make_unique<prometheus::Exposer>(std::move(options), &callbacks);
  } catch (const std::exception& e) {
    g_new_context = nullptr;
    return absl::UnavailableError(
        absl::StrCat("cannot serve /metrics on ", address, ": ", e.what()));
  }
  auto* ctx = const_cast<mg_context*>(g_new_context);
  g_new_context = nullptr;
  if (ctx == nullptr) {
    return absl::InternalError("civetweb did not report its context");
  }
  auto* data = const_cast<HealthChecks*>(checks);
  // Exact paths: "$" stops civetweb's prefix match (/healthzfoo is a 404).
  mg_set_request_handler(ctx, "/healthz$", &Handle<HealthProbe::kLiveness>,
                         data);
  mg_set_request_handler(ctx, "/readyz$", &Handle<HealthProbe::kReadiness>,
                         data);
  return exposer;
}

}  // namespace wattlens
